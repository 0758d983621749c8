import { randomUUID } from 'node:crypto';
import { EsdbEventStore, matchesFilter, type EventFilter, type RecordedEvent } from '@snapcat/event-store';
import { EsdbTestServer } from './test-server';
import { eventually } from '../support/wait';
import { seedBusyLog } from './busy-log';

// A filtered readAll on the EventStoreDB adapter (the real client against the protocol test server): the
// server filters, so only the matching events cross the wire, not the system events, the standard
// projections' links and the 1 MB aggregate snapshots that share $all with them on a real cluster.
const JOB_PREFIX = 'snapcat-job-';
const JOB_EVENTS = 200;
const OTHER_EVENTS = 20_000;
const SNAPSHOTS = 4;
const SNAPSHOT_BYTES = 900_000;

describe('filtered readAll on EventStoreDB: filtered on the server', () => {
  let server: EsdbTestServer;
  let store: EsdbEventStore;
  beforeAll(async () => {
    server = new EsdbTestServer(); // seeded with system events; standard projections link every event
    await server.start();
    store = new EsdbEventStore(server.connectionString);
    await seedLog();
  });
  afterAll(async () => {
    await store.close();
    await server.stop();
  });

  /**
   * 20,000 events of webhook and other streams (each with its `$>` links), 200 job events appended through
   * the client among them (types `JobRegistered` and `JobConfigured`), and a few snapshots of 900 KB.
   */
  const seedLog = () =>
    seedBusyLog(server.data, {
      otherEvents: OTHER_EVENTS,
      snapshots: SNAPSHOTS,
      snapshotBytes: SNAPSHOT_BYTES,
      every: OTHER_EVENTS / JOB_EVENTS,
      between: async (job) => {
        const type = job % 2 === 0 ? 'JobRegistered' : 'JobConfigured';
        await store.append(`${JOB_PREFIX}${job % 40}`, [{ id: randomUUID(), type, data: { job } }], 'any');
      },
    });

  /** What the client-side filter keeps of the whole log, as the old path read it. */
  const expected = (filter: EventFilter) =>
    server.data.log
      .filter((e) => !e.streamName.startsWith('$') && !e.type.startsWith('$'))
      .filter((e) => matchesFilter({ streamId: e.streamName, type: e.type }, filter))
      .map((e) => e.id);
  /** The catch-up subscriptions are ended once read: none stays open, following the log live. */
  const subscriptionsEnded = () =>
    eventually(() => server.data.appended.listenerCount('appended') === 0, 5000, 'subscriptions ended');
  const ids = (events: RecordedEvent[]) => events.map((e) => e.id);

  /** Runs `read` and returns what it gave and what the server sent for it. */
  async function counted<T>(read: () => Promise<T>) {
    const before = { ...server.sent };
    const result = await read();
    return {
      result,
      sent: { events: server.sent.events - before.events, bytes: server.sent.bytes - before.bytes },
    };
  }

  it('returns exactly the job events, and the server sends only those: no links, system events or snapshots', async () => {
    expect(server.data.log.length).toBeGreaterThan(3 * OTHER_EVENTS);
    const filter = { streamNamePrefixes: [JOB_PREFIX] };
    const { result, sent } = await counted(() => store.readAll({ filter }));
    expect(ids(result)).toEqual(expected(filter));
    expect(result).toHaveLength(JOB_EVENTS);
    expect(sent.events).toBe(JOB_EVENTS);
    expect(sent.bytes).toBeLessThan(JOB_EVENTS * 100);
    await subscriptionsEnded();
  });

  it('with stream prefixes and event types, the server filters on the types and sends only the matching events', async () => {
    const filter = { streamNamePrefixes: [JOB_PREFIX], eventTypes: ['JobRegistered'] };
    const { result, sent } = await counted(() => store.readAll({ filter }));
    expect(ids(result)).toEqual(expected(filter));
    expect(result).toHaveLength(JOB_EVENTS / 2);
    expect(sent.events).toBe(JOB_EVENTS / 2);
  });

  it('pages of maxCount after the last event read give the same events, and each read stops at its count', async () => {
    const filter = { streamNamePrefixes: [JOB_PREFIX] };
    const pages: RecordedEvent[][] = [];
    const { sent } = await counted(async () => {
      let after;
      for (;;) {
        const page = await store.readAll({ filter, maxCount: 64, ...(after ? { after } : {}) });
        pages.push(page);
        if (page.length < 64) return;
        after = page.at(-1)!.position;
      }
    });
    expect(pages.map((p) => p.length)).toEqual([64, 64, 64, 8]);
    expect(ids(pages.flat())).toEqual(expected(filter));
    // The server sends on until the client cancels: at most the matching events after each page's start.
    expect(sent.events).toBeLessThanOrEqual(200 + 136 + 72 + 8);
    await subscriptionsEnded();
  });

  it('the last event (/readyz, metrics, reconcile) is read backwards in a first page of 32 records, not 1,000', async () => {
    const { result, sent } = await counted(() => store.readAll({ direction: 'backwards', maxCount: 1 }));
    const last = server.data.log.filter((e) => !e.streamName.startsWith('$')).at(-1)!;
    expect(ids(result)).toEqual([last.id]);
    expect(sent.events).toBeLessThanOrEqual(32);
  });
});
