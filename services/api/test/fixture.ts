import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterRepository, CommandBus } from '@snapcat/application';
import { SecretBox } from '@snapcat/webhooks';
import { SqliteEventStore, type EventStore } from '@snapcat/event-store';
import { LocalSnapshotStorage } from '@snapcat/storage';
import { createApp, type AppDeps } from '../src/app';
import { createUseCases, type UseCases } from '../src/use-cases';
import { CONSOLE_DIR } from './files';

export const JOB = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
export const BASE = '/api/v1';
/** The SNAPCAT_SECRET_KEY of the tests: the fixture's clusters seal their header values with it. */
export const TEST_SECRET_KEY = 'test-secret-key-0123456789-abcdefghij';

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
      | 'clusters'
    > & {
      graphql: (core: {
        bus: CommandBus;
        store: EventStore;
        useCases: UseCases;
        clusters: ClusterRepository;
      }) => AppDeps['graphql'];
    }
  > = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-api-'));
  const store: EventStore = new SqliteEventStore(join(dir, 'events.db'));
  const bus = new CommandBus(store);
  const defaults = { checkpointDir: join(dir, 'chk'), savepointDir: join(dir, 'sp') };
  const storage = options.storage ?? new LocalSnapshotStorage([dir]);
  const useCases = createUseCases({ bus, storage, defaults });
  const clusters = options.clusters ?? new ClusterRepository(store, { box: new SecretBox(TEST_SECRET_KEY) });
  const app = createApp({
    bus,
    store,
    defaults,
    storage,
    consoleDir: CONSOLE_DIR,
    ...options,
    clusters,
    graphql: options.graphql?.({ bus, store, useCases, clusters }),
    log: () => {},
  });
  return {
    app,
    bus,
    store,
    clusters,
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
