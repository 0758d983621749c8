import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandBus } from '@snapcat/application';
import { SqliteEventStore, type EventStore } from '@snapcat/event-store';
import { LocalSnapshotStorage } from '@snapcat/storage';
import { createApp, type AppDeps } from '../src/app';
import { createUseCases, type UseCases } from '../src/use-cases';

export const JOB = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
export const BASE = '/api/v1';

/** The API on a real SQLite store in a temporary directory; supertest serves it over real HTTP. */
export function apiFixture(
  options: Partial<
    Pick<
      AppDeps,
      | 'redisReady'
      | 'readModel'
      | 'readModelAvailable'
      | 'storage'
      | 'webhooks'
      | 'tokens'
      | 'rateLimiter'
      | 'requestLog'
      | 'consoleDir'
    > & {
      graphql: (core: { bus: CommandBus; store: EventStore; useCases: UseCases }) => AppDeps['graphql'];
    }
  > = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-api-'));
  const store: EventStore = new SqliteEventStore(join(dir, 'events.db'));
  const bus = new CommandBus(store);
  const defaults = { checkpointDir: join(dir, 'chk'), savepointDir: join(dir, 'sp') };
  const storage = options.storage ?? new LocalSnapshotStorage([dir]);
  const useCases = createUseCases({ bus, storage, defaults });
  const app = createApp({
    bus,
    store,
    defaults,
    storage,
    ...options,
    graphql: options.graphql?.({ bus, store, useCases }),
    log: () => {},
  });
  return {
    app,
    bus,
    store,
    dir,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Asserts an RFC 9457 problem that names the field and the rule. */
export function expectProblem(
  res: {
    status: number;
    headers: Record<string, string>;
    body: { errors?: { field: string; rule: string }[] };
  },
  status: number,
  field?: string,
  rule?: string,
): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (field) {
    expect(res.body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ field, ...(rule ? { rule } : {}) })]),
    );
  }
}
