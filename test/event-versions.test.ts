import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  CLUSTER_EVENT_TYPES,
  ClusterEvent,
  EVENT_TYPES,
  Event,
  SUBSCRIPTION_EVENT_TYPES,
  SubscriptionEvent,
  UPCASTERS,
  WebhookDeliveryFailed,
  currentSchemaVersion,
  readEvent,
  versionedMetadata,
  type StoredEvent,
} from '@snapcat/domain';
import { domainEvent } from '@snapcat/application';
import type { z } from 'zod';
import { SqliteEventStore, type RecordedEvent } from '@snapcat/event-store';

// Decision 0023: every event type has a golden file per schema version it was ever written at. Each holds
// the event as stored (its data and metadata) and what reading it must give today; the test writes it to a
// real store, reads it back and reads it as snapcat's readers do.

const FIXTURES = join(__dirname, 'fixtures', 'events');

interface Kind {
  types: readonly string[];
  /** How snapcat's readers read it (the job streams', the repositories'). */
  read: (recorded: RecordedEvent) => unknown;
  /** Its schema today: every golden event must pass it in full, even where readers only check its shape. */
  schema: z.ZodType;
}
const READERS: Record<string, Kind> = {
  job: { types: EVENT_TYPES, read: domainEvent, schema: Event },
  subscription: {
    types: SUBSCRIPTION_EVENT_TYPES,
    read: (r) => readEvent(SubscriptionEvent, r),
    schema: SubscriptionEvent,
  },
  cluster: { types: CLUSTER_EVENT_TYPES, read: (r) => readEvent(ClusterEvent, r), schema: ClusterEvent },
  deliveryFailure: {
    types: ['WebhookDeliveryFailed'],
    read: (r) => readEvent(WebhookDeliveryFailed, r),
    schema: WebhookDeliveryFailed,
  },
};
const ALL_TYPES = Object.values(READERS).flatMap((kind) => kind.types);

interface GoldenEvent {
  stored: Pick<StoredEvent, 'data' | 'metadata'>;
  current: unknown;
}

const goldenFile = (type: string, version: number) => `${type}.v${version}.json`;
const golden = (file: string): GoldenEvent => JSON.parse(readFileSync(join(FIXTURES, file), 'utf8'));
const cases = Object.entries(READERS).flatMap(([kind, { types }]) =>
  types.flatMap((type) =>
    Array.from({ length: currentSchemaVersion(type) }, (_, i) => ({ kind, type, version: i + 1 })),
  ),
);

describe('event schema versions: golden events', () => {
  let dir: string;
  let store: SqliteEventStore;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-golden-'));
    store = new SqliteEventStore(join(dir, 'events.db'));
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has a golden file for every event type at every version it had, and none for another', () => {
    const expected = cases.map(({ type, version }) => goldenFile(type, version)).sort();
    expect(readdirSync(FIXTURES).sort()).toEqual(expected);
  });

  it('upcasts only types it knows', () => {
    for (const type of Object.keys(UPCASTERS)) expect(ALL_TYPES).toContain(type);
  });

  it.each(cases)('reads $type v$version as stored then as it is today', async ({ kind, type, version }) => {
    const { stored, current } = golden(goldenFile(type, version));
    const declared = stored.metadata.schemaVersion ?? 1;
    expect(declared).toBe(version);
    const stream = `golden-${randomUUID()}`;
    await store.append(
      stream,
      [{ id: randomUUID(), type, data: stored.data, metadata: stored.metadata }],
      'any',
    );
    const [recorded] = await store.readStream(stream);
    expect(READERS[kind]!.read(recorded!)).toEqual(current);
    // A field renamed or removed since fails here (the schemas are strict): it needs an upcaster.
    expect(readEvent(READERS[kind]!.schema, recorded!)).toEqual(current);
  });

  it('writes each type at its current version, which reads back unchanged', async () => {
    for (const { kind, type, version } of cases) {
      if (version !== currentSchemaVersion(type)) continue;
      const { current } = golden(goldenFile(type, version));
      const stream = `golden-${randomUUID()}`;
      const metadata = versionedMetadata(type, { actor: 'golden' });
      expect(metadata).toEqual({ actor: 'golden', schemaVersion: version });
      await store.append(stream, [{ id: randomUUID(), type, data: current, metadata }], 'any');
      const [recorded] = await store.readStream(stream);
      expect(READERS[kind]!.read(recorded!)).toEqual(current);
    }
  });
});
