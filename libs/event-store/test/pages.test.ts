import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStoreDBClient } from '@eventstore/db-client';
import {
  EsdbEventStore,
  InstrumentedEventStore,
  MemoryEventStore,
  SqliteEventStore,
  StreamDeletedError,
  foldStream,
  readAllPages,
  readStreamPages,
  type EventStore,
  type RecordedEvent,
} from '../src';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import { collect } from '../../../test/support/async';

interface Fixture {
  store: EventStore;
  cleanup(): Promise<void>;
}

/** Appends `n` events numbered 0..n-1 (their data's `n`), a thousand at a time. */
async function fill(store: EventStore, stream: string, n: number): Promise<void> {
  for (let start = 0; start < n; start += 1000) {
    const events = Array.from({ length: Math.min(1000, n - start) }, (_, i) => ({
      id: randomUUID(),
      type: 'Counted',
      data: { n: start + i },
    }));
    await store.append(stream, events, 'any');
  }
}

const revisionsOf = (page: RecordedEvent[]) => page.map((e) => Number(e.revision));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

const sum = (state: number, events: RecordedEvent[]) =>
  events.reduce((total, e) => total + (e.data as { n: number }).n, state);

function pagingSuite(name: string, open: () => Promise<Fixture>): void {
  describe(`paging through streams: ${name}`, () => {
    let fx: Fixture;
    let store: InstrumentedEventStore;
    beforeEach(async () => {
      fx = await open();
      store = new InstrumentedEventStore(fx.store);
    });
    afterEach(() => fx.cleanup());

    it.each([
      [0, [], 1],
      [999, [999], 1],
      [1000, [1000], 2],
      [1001, [1000, 1], 2],
      [2500, [1000, 1000, 500], 3],
    ])('a stream of %i events reads as pages of %j in %i reads', async (n, sizes, reads) => {
      const s = `pages-${randomUUID()}`;
      await fill(fx.store, s, n);
      const pages = await collect(readStreamPages(store, s));
      expect(pages.map((p) => p.length)).toEqual(sizes);
      expect(pages.flatMap(revisionsOf)).toEqual(range(0, n));
      expect(store.counters.streamReads).toBe(reads);
    });

    it('pages from a revision, and backwards from the end down to revision 0 without a read past it', async () => {
      const s = `pages-${randomUUID()}`;
      await fill(fx.store, s, 2500);
      const from = await collect(readStreamPages(store, s, { fromRevision: 1500n, pageSize: 400 }));
      expect(from.map((p) => p.length)).toEqual([400, 400, 200]);
      expect(from.flatMap(revisionsOf)).toEqual(range(1500, 2500));
      const reads = store.counters.streamReads;
      const backwards = await collect(readStreamPages(store, s, { direction: 'backwards', pageSize: 1250 }));
      expect(backwards.flatMap(revisionsOf)).toEqual(range(0, 2500).reverse());
      expect(store.counters.streamReads - reads).toBe(2);
      const below = await collect(readStreamPages(store, s, { direction: 'backwards', fromRevision: 1200n }));
      expect(below.map((p) => p.length)).toEqual([1000, 201]);
      expect(below.flatMap(revisionsOf)).toEqual(range(0, 1201).reverse());
    });

    it('reads no further than its consumer asks', async () => {
      const s = `pages-${randomUUID()}`;
      await fill(fx.store, s, 2500);
      for await (const page of readStreamPages(store, s)) {
        expect(revisionsOf(page)).toEqual(range(0, 1000));
        break;
      }
      expect(store.counters.streamReads).toBe(1);
    });

    it('pages a stream whose $maxCount hides its older events from the first event kept', async () => {
      const s = `pages-${randomUUID()}`;
      await fill(fx.store, s, 2500);
      await fx.store.setStreamMaxCount!(s, 1500); // both stores here keep a max count
      await fill(fx.store, s, 1); // SQLite trims on the next append
      const pages = await collect(readStreamPages(store, s));
      expect(pages.flatMap(revisionsOf)).toEqual(range(1001, 2501));
    });

    it('pages $all forwards after a position, with a filter', async () => {
      const prefix = `pages-all-${randomUUID()}-`;
      await fill(fx.store, `${prefix}a`, 1500);
      await fill(fx.store, `other-${randomUUID()}`, 10);
      await fill(fx.store, `${prefix}b`, 1000);
      const filter = { streamNamePrefixes: [prefix] };
      const pages = await collect(readAllPages(store, { filter, pageSize: 1000 }));
      expect(pages.map((p) => p.length)).toEqual([1000, 1000, 500]);
      const events = pages.flat();
      expect(events.map((e) => `${e.streamId}/${e.revision}`)).toEqual([
        ...range(0, 1500).map((r) => `${prefix}a/${r}`),
        ...range(0, 1000).map((r) => `${prefix}b/${r}`),
      ]);
      const after = await collect(readAllPages(store, { filter, after: events[1499]!.position }));
      expect(after.flat().map((e) => e.id)).toEqual(events.slice(1500).map((e) => e.id));
    });

    it('folds a stream a page at a time, from a revision, up to a revision or while a condition holds', async () => {
      const s = `fold-${randomUUID()}`;
      await fill(fx.store, s, 2500);
      const whole = await foldStream(store, s, { initialState: 0, evolve: sum });
      expect(whole).toEqual({ state: (2499 * 2500) / 2, revision: 2499n });
      expect(store.counters.streamReads).toBe(3);
      const tail = await foldStream(store, s, { initialState: 7, evolve: sum, from: 2000n });
      expect(tail).toEqual({ state: 7 + (2000 + 2499) * 250, revision: 2499n });
      const head = await foldStream(store, s, { initialState: 0, evolve: sum, until: 999n });
      expect(head).toEqual({ state: (999 * 1000) / 2, revision: 999n });
      const cut = await foldStream(store, s, {
        initialState: 0,
        evolve: sum,
        from: 10n,
        takeWhile: (e) => (e.data as { n: number }).n < 1500,
      });
      expect(cut).toEqual({ state: ((10 + 1499) * 1490) / 2, revision: 1499n });
      const none = await foldStream(store, s, {
        initialState: 5,
        evolve: sum,
        from: 3n,
        takeWhile: () => false,
      });
      expect(none).toEqual({ state: 5, revision: 2n });
    });

    it('folds an empty or missing stream to its initial state at revision from - 1, and reads nothing past `until`', async () => {
      const s = `fold-${randomUUID()}`;
      expect(await foldStream(store, s, { initialState: 'empty', evolve: () => 'folded' })).toEqual({
        state: 'empty',
        revision: -1n,
      });
      await fill(fx.store, s, 3);
      const reads = store.counters.streamReads;
      const at = await foldStream(store, s, {
        initialState: 'at 1',
        evolve: () => 'folded',
        from: 2n,
        until: 1n,
      });
      expect(at).toEqual({ state: 'at 1', revision: 1n });
      expect(store.counters.streamReads).toBe(reads);
    });
  });
}

pagingSuite('memory', async () => {
  const store = new MemoryEventStore();
  return { store, cleanup: () => store.close() };
});

pagingSuite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-pages-'));
  const store = new SqliteEventStore(join(dir, 'events.db'));
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('paging through a hard-deleted stream (EventStoreDB adapter, protocol test server)', () => {
  let server: EsdbTestServer;
  let client: EventStoreDBClient;
  let store: EsdbEventStore;
  beforeAll(async () => {
    server = new EsdbTestServer();
    await server.start();
    client = EventStoreDBClient.connectionString(server.connectionString);
    store = new EsdbEventStore(server.connectionString);
  });
  afterAll(async () => {
    await store.close();
    await client.dispose();
    await server.stop();
  });

  it('pages and folds as the adapter reads: StreamDeletedError once tombstoned, the events before it', async () => {
    const s = `snapcat-job-${randomUUID()}`;
    await fill(store, s, 1001);
    expect((await collect(readStreamPages(store, s))).map((p) => p.length)).toEqual([1000, 1]);
    expect(await foldStream(store, s, { initialState: 0, evolve: sum })).toEqual({
      state: (1000 * 1001) / 2,
      revision: 1000n,
    });
    await client.tombstoneStream(s);
    await expect(collect(readStreamPages(store, s))).rejects.toEqual(new StreamDeletedError(s));
    await expect(foldStream(store, s, { initialState: 0, evolve: sum })).rejects.toEqual(
      new StreamDeletedError(s),
    );
    const log = (await collect(readAllPages(store, { filter: { streamNamePrefixes: [s] } }))).flat();
    expect(log.map((e) => e.type)).toEqual([...Array<string>(1001).fill('Counted'), '$streamDeleted']);
  });
});
