import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterRepository, CommandBus } from '@snapcat/application';
import { Deliveries, SecretBox, SubscriptionRepository, WebhookService } from '@snapcat/webhooks';
import { MemoryEventStore, SqliteEventStore, type EventStore } from '@snapcat/event-store';
import { LocalSnapshotStorage } from '@snapcat/storage';
import type { Redis } from 'ioredis';
import type request from 'supertest';
import { Projector, type ReadModel } from '@snapcat/read-model';
import type { TokenEntry } from '@snapcat/runtime';
import { createApp, type AppDeps } from '../src/app';
import { createGraphql, createSnapshotEventsPubSub } from '../src/graphql';
import { createUseCases, type UseCases } from '../src/use-cases';
import { CONSOLE_DIR, SCHEMA_FILE } from './files';

export const JOB = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
export const BASE = '/api/v1';
/** The SNAPCAT_SECRET_KEY of the tests: the fixture's clusters seal their header values with it. */
export const TEST_SECRET_KEY = 'test-secret-key-0123456789-abcdefghij';

/** What the fixture's GraphQL is made over: its bus, store, use cases and clusters. */
export interface GraphqlCore {
  bus: CommandBus;
  store: EventStore;
  useCases: UseCases;
  clusters: ClusterRepository;
}

/** The fixture's `graphql` option: the real GraphQL over the fixture's own parts, reading `readModel`. */
export function graphqlOver(options: {
  readModel: ReadModel;
  /** The pub/sub topic of snapshot events (the subscriptions'). */
  topic: string;
  tokens?: readonly TokenEntry[];
  pubsub?: ReturnType<typeof createSnapshotEventsPubSub>;
  /** Whether the read model's Redis answers (the process's heartbeat); always, by default. */
  readModelAvailable?: () => boolean;
  maxStreamsPerToken?: number;
}) {
  return ({ store, useCases, clusters }: GraphqlCore) =>
    createGraphql({
      schemaFile: SCHEMA_FILE,
      useCases,
      store,
      readModel: options.readModel,
      pubsub: options.pubsub ?? createSnapshotEventsPubSub(),
      topic: options.topic,
      tokens: options.tokens,
      clusters,
      ...(options.readModelAvailable ? { readModelAvailable: options.readModelAvailable } : {}),
      ...(options.maxStreamsPerToken !== undefined ? { maxStreamsPerToken: options.maxStreamsPerToken } : {}),
    });
}

/**
 * A GraphQL subscription over server-sent events, read as it arrives: the text received so far, and `close`,
 * which ends the stream from the client's side and waits for the request to settle.
 */
export function graphqlStream(http: ReturnType<typeof request>, token: string, query: string) {
  let received = '';
  let response: { destroy(): void } | undefined;
  const settled = http
    .post('/graphql')
    .set({ authorization: `Bearer ${token}`, accept: 'text/event-stream' })
    .send({ query })
    .buffer(false)
    .parse((res, done) => {
      response = res as unknown as { destroy(): void };
      res.on('data', (chunk: Buffer) => void (received += chunk.toString()));
      res.on('end', () => done(null, ''));
    })
    .then(
      () => {},
      () => {},
    );
  return {
    received: () => received,
    async close() {
      response?.destroy();
      await settled;
    },
  };
}

/** The read model's projector of `store` under `prefix`, quiet and ticking every 50 ms, started. */
export async function startProjector(store: EventStore, redis: Redis, prefix: string): Promise<Projector> {
  const projector = new Projector({
    store,
    redis,
    prefix,
    log: { info: () => {}, error: () => {} },
    publish: () => {},
    tickMs: 50,
  });
  await projector.start();
  return projector;
}

/**
 * Webhook subscriptions for the fixture's `webhooks` option: in a store of their own (the fixture opens its
 * store with the app), their deliveries queued on the real Redis under `prefix`; private addresses allowed.
 */
export function webhooksFixture(redis: Redis, prefix: string) {
  const deliveries = new Deliveries(redis, { host: '127.0.0.1', port: 6379 }, `${prefix}:wh`, 3);
  const webhooks = new WebhookService({
    subscriptions: new SubscriptionRepository(new MemoryEventStore(), Date.now),
    deliveries,
    box: new SecretBox('k'.repeat(32)),
    allowPrivate: true,
    rotationOverlapMs: 60_000,
    now: Date.now,
  });
  return { webhooks, close: () => deliveries.close() };
}

/** The API on a real SQLite store in a temporary directory; supertest serves it over real HTTP. */
export function apiFixture(
  options: Partial<
    Pick<
      AppDeps,
      | 'redisState'
      | 'readModel'
      | 'readModelAvailable'
      | 'storage'
      | 'webhooks'
      | 'tokens'
      | 'rateLimiter'
      | 'requestLog'
      | 'consoleDir'
      | 'clusters'
      | 'flinkJobStatus'
    > & {
      /** SNAPCAT_NAMESPACE_ROOTS, made from the fixture's temporary directory (the storage root). */
      namespaceRoots: (dir: string) => NonNullable<AppDeps['namespaceRoots']>;
      graphql: (core: GraphqlCore) => AppDeps['graphql'];
      /** The event store (closed with the fixture); an SQLite store in the fixture's directory by default. */
      store: EventStore;
    }
  > = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-api-'));
  const store: EventStore = options.store ?? new SqliteEventStore(join(dir, 'events.db'));
  const bus = new CommandBus(store);
  const defaults = { checkpointDir: join(dir, 'chk'), savepointDir: join(dir, 'sp') };
  const storage = options.storage ?? new LocalSnapshotStorage([dir]);
  const namespaceRoots = options.namespaceRoots?.(dir);
  const useCases = createUseCases({ bus, storage, defaults, namespaceRoots });
  const clusters = options.clusters ?? new ClusterRepository(store, { box: new SecretBox(TEST_SECRET_KEY) });
  const app = createApp({
    bus,
    store,
    defaults,
    storage,
    consoleDir: CONSOLE_DIR,
    ...options,
    namespaceRoots,
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
    defaults,
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
