import { randomUUID } from 'node:crypto';
import {
  InstrumentedEventStore,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
} from '@snapcat/event-store';
import { DeciderHandler, OptimisticRetry, oneCommandAtATime, type HandlerStats } from '../src';
import { embeddedStores } from './stores';

// A counter: `add` adds, `take` takes what is there or is refused. Small enough to see every rule of the
// handler on it: group commit, optimistic retry, catch-up before a reply that writes nothing.
type Counted = { type: 'Added'; n: number } | { type: 'Taken'; n: number };
type Count = { type: 'add'; n: number } | { type: 'take'; n: number };
const counter = oneCommandAtATime<number, Count, Counted, { actor?: string }>({
  initialState: () => 0,
  decide: (total, command) => {
    if (command.type === 'add') return command.n === 0 ? [] : [{ type: 'Added', n: command.n }];
    if (command.n > total) throw new Error(`only ${total} to take`);
    return [{ type: 'Taken', n: command.n }];
  },
  evolve: (total, event) => total + (event.type === 'Added' ? event.n : -event.n),
});
const streamOf = (id: string) => `counter-${id}`;
const naming = { streamOf, eventOf: (recorded: { data: unknown }) => recorded.data as Counted };

function handler(
  store: EventStore,
  options: { maxBatch?: number; attempts?: number; stats?: HandlerStats } = {},
) {
  return new DeciderHandler(store, counter, naming, {
    retry: new OptimisticRetry({ attempts: options.attempts ?? 10 }),
    maxBatch: options.maxBatch,
    eventMetadata: (metadata) => (metadata.actor ? { actor: metadata.actor } : undefined),
    ...(options.stats ? { stats: options.stats } : {}),
  });
}

/** A real adapter whose appends take a little while, as over a network, so two writers can interleave. */
class SlowAppends extends InstrumentedEventStore {
  override async append(streamId: string, events: NewEvent[], expected: ExpectedRevision) {
    await new Promise((r) => setTimeout(r, 2));
    return super.append(streamId, events, expected);
  }
}

describe.each(embeddedStores)('decider handler on $name', (adapter) => {
  let opened: ReturnType<(typeof adapter)['open']>;
  beforeEach(() => {
    opened = adapter.open();
  });
  afterEach(() => opened.close());

  it('group-commits concurrent commands in one append, each answered with its own reply and events', async () => {
    const counted = new InstrumentedEventStore(opened.store);
    const h = handler(counted);
    const results = await Promise.all([1, 2, 3, 4].map((n) => h.execute('a', { type: 'add', n }, {})));
    expect(results.map((r) => r.reply)).toEqual([1, 3, 6, 10]);
    expect(results[1]!.events).toEqual([{ type: 'Added', n: 2 }]);
    expect(results[0]!.position).toEqual(results[3]!.position); // one append
    expect(counted.counters.appends).toBe(1);
    expect(h.stats).toMatchObject({ commands: 4, appends: 1, eventsAppended: 4, conflicts: 0 });
    expect(await h.load('a', {})).toBe(10);
    const stored = await opened.store.readStream(streamOf('a'));
    expect(stored.map((e) => (e.data as Counted).n)).toEqual([1, 2, 3, 4]);
  });

  it('writes the request’s metadata and each event’s schema version on its events; a refused command fails alone', async () => {
    const h = handler(opened.store);
    const results = await Promise.allSettled([
      h.execute('b', { type: 'add', n: 5 }, { actor: 'ops' }),
      h.execute('b', { type: 'take', n: 9 }, {}),
      h.execute('b', { type: 'take', n: 2 }, {}),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('only 5 to take');
    const stored = await opened.store.readStream(streamOf('b'));
    expect(stored.map((e) => [e.type, e.metadata])).toEqual([
      ['Added', { actor: 'ops', schemaVersion: 1 }],
      ['Taken', { schemaVersion: 1 }],
    ]);
  });

  it('executeAll is one entry (past maxBatch too) and all or nothing: the first refusal, nothing written', async () => {
    const counted = new InstrumentedEventStore(opened.store);
    const h = handler(counted, { maxBatch: 2 });
    const adds = [1, 1, 1, 1, 1].map((n) => ({ type: 'add' as const, n }));
    expect((await h.executeAll('c', adds, {})).map((r) => r.reply)).toEqual([1, 2, 3, 4, 5]);
    expect(counted.counters.appends).toBe(1);
    await expect(
      h.executeAll(
        'c',
        [
          { type: 'take', n: 1 },
          { type: 'take', n: 99 },
          { type: 'take', n: 1 },
        ],
        {},
      ),
    ).rejects.toThrow('only 4 to take');
    expect(await h.load('c', {})).toBe(5);
    expect(counted.counters.appends).toBe(1);
  });

  it('two processes on one stream: lost races are decided again, every command lands once', async () => {
    const slow = new SlowAppends(opened.store);
    const stats = {
      commands: 0,
      appends: 0,
      eventsAppended: 0,
      conflicts: 0,
      eventsRead: 0,
      appendsSplit: 0,
    };
    const [a, b] = [handler(slow, { stats }), handler(slow, { stats })];
    await a.load('d', {});
    await b.load('d', {});
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).execute('d', { type: 'add', n: 1 }, {})),
    );
    expect(results).toHaveLength(40);
    expect(stats.conflicts).toBeGreaterThan(0);
    expect(await a.load('d', {})).toBe(40);
    expect(await b.load('d', {})).toBe(40);
    expect(await opened.store.readStream(streamOf('d'))).toHaveLength(40);
  });

  it('a warm aggregate decides without reading; a reply that writes nothing is decided on a fresh read', async () => {
    const counted = new InstrumentedEventStore(opened.store);
    const a = handler(counted);
    const b = handler(opened.store); // another process
    await a.execute('e', { type: 'add', n: 1 }, {});
    const reads = counted.counters.streamReads;
    await a.execute('e', { type: 'add', n: 1 }, {});
    expect(counted.counters.streamReads).toBe(reads);
    await b.execute('e', { type: 'add', n: 5 }, {}); // a caches 2; the stream says 7
    await expect(a.execute('e', { type: 'take', n: 6 }, {})).resolves.toMatchObject({ reply: 1 });
    expect(a.cachedState('e', 3n)).toBe(1);
    expect(a.cachedState('e', 2n)).toBeUndefined();
  });

  it('gives up after its attempts when every append loses, with what the retry says', async () => {
    const racing = new (class extends InstrumentedEventStore {
      override async append(streamId: string, events: NewEvent[], expected: ExpectedRevision) {
        // Another writer slips an event in before each of ours.
        await super.append(streamId, [{ ...events[0]!, id: randomUUID() }], 'any');
        return super.append(streamId, events, expected);
      }
    })(opened.store);
    const h = handler(racing, { attempts: 3 });
    await expect(h.execute('f', { type: 'add', n: 1 }, {})).rejects.toThrow(/gave up/);
    expect(h.stats.conflicts).toBe(3);
  });
});
