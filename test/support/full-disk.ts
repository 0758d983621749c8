import express from 'express';
import type { NewEvent, SqliteEventStore } from '@snapcat/event-store';
import { problemMiddleware, problemResponder } from '../../services/api/src/problem';

export const event = (size = 2000): NewEvent[] => [
  { id: crypto.randomUUID(), type: 'Filler', data: { blob: 'x'.repeat(size) }, metadata: {} },
];

/**
 * Appends twenty at a time until some are refused: twenty share a group commit, which fails whole. How many
 * were stored, and the refusals of the last group.
 */
export async function appendUntilRefused(store: SqliteEventStore) {
  let appended = 0;
  let refusals: PromiseSettledResult<unknown>[] = [];
  for (let round = 0; round < 1000 && refusals.length === 0; round += 1) {
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => store.append(`job-${i}`, event(), 'any')),
    );
    refusals = results.filter((r) => r.status === 'rejected');
    appended += results.length - refusals.length;
  }
  return { appended, refusals };
}

/** An API route appending `bytes` through the API's problem responder, and what the responder logged. */
export function appendRoute(store: SqliteEventStore, bytes = 300_000) {
  const app = express();
  app.post('/append', async (_req, res, next) => {
    try {
      await store.append('job-api', event(bytes), 'any');
      res.status(201).json({ appended: true });
    } catch (error) {
      next(error);
    }
  });
  const logged: string[] = [];
  app.use(problemMiddleware(problemResponder((msg) => logged.push(msg))));
  return { app, logged };
}

/** What test/support/file-size-limit-child.ts reports. */
export interface FileSizeLimitRun {
  appended: number;
  refusal: { name: string; sqliteCode?: string; message: string };
  stored: number;
  api: { status: number; retryAfter: string | undefined; body: unknown; logged: string[] };
  afterLift: { status: number; stored: number };
}
