import { randomUUID } from 'node:crypto';
import {
  START,
  WrongExpectedVersionError,
  comparePositions,
  type EventStore,
  type NewEvent,
  type Position,
  type RecordedEvent,
} from '../src';

export interface StoreFixture {
  store: EventStore;
  /** A second client of the same store (another connection or process view), for races. */
  other?: EventStore;
  cleanup(): Promise<void>;
}

const ev = (type: string, data: unknown = { n: 1 }): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { m: type },
});
const stream = () => `test-${randomUUID()}`;

async function waitFor<T>(probe: () => T | undefined, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The contract every EventStore adapter passes, unchanged. */
export function eventStoreContract(name: string, open: () => Promise<StoreFixture>): void {
  describe(`EventStore contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: EventStore;
    beforeEach(async () => {
      fx = await open();
      store = fx.store;
    });
    afterEach(() => fx.cleanup());

    it('appends to a new stream with no_stream and reads it back in order with data, metadata and ids', async () => {
      const s = stream();
      const events = [ev('A', { a: 1 }), ev('B', { b: [1, 2] }), ev('C', { c: 'x' })];
      const result = await store.append(s, events, 'no_stream');
      expect(result.nextExpectedRevision).toBe(2n);
      const read = await store.readStream(s);
      expect(read.map((e) => [e.id, e.type, e.revision, e.data, e.metadata, e.streamId])).toEqual(
        events.map((e, i) => [e.id, e.type, BigInt(i), e.data, e.metadata, s]),
      );
      expect(read[0]!.created).toBeInstanceOf(Date);
      expect(comparePositions(read[2]!.position, result.position)).toBe(0);
    });

    it('enforces every expected-revision form', async () => {
      const s = stream();
      await expect(store.append(s, [ev('A')], 'stream_exists')).rejects.toBeInstanceOf(
        WrongExpectedVersionError,
      );
      await expect(store.append(s, [ev('A')], 0n)).rejects.toMatchObject({ actual: 'no_stream' });
      await store.append(s, [ev('A')], 'no_stream');
      await expect(store.append(s, [ev('B')], 'no_stream')).rejects.toMatchObject({ actual: 0n });
      await expect(store.append(s, [ev('B')], 5n)).rejects.toMatchObject({ expected: 5n, actual: 0n });
      await store.append(s, [ev('B')], 0n);
      await store.append(s, [ev('C')], 'stream_exists');
      await store.append(s, [ev('D')], 'any');
      expect((await store.readStream(s)).map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
      await store.append(stream(), [ev('E')], 'any');
    });

    it('a rejected append writes nothing', async () => {
      const s = stream();
      await store.append(s, [ev('A')], 'no_stream');
      await expect(store.append(s, [ev('B'), ev('C')], 7n)).rejects.toBeInstanceOf(WrongExpectedVersionError);
      expect(await store.readStream(s)).toHaveLength(1);
    });

    it('a retried append with the same event ids is not written twice', async () => {
      const s = stream();
      const events = [ev('A'), ev('B')];
      const first = await store.append(s, events, 'no_stream');
      const again = await store.append(s, events, 'no_stream');
      expect(again.nextExpectedRevision).toBe(first.nextExpectedRevision);
      expect(await store.readStream(s)).toHaveLength(2);
    });

    it('reads a stream backwards, from a revision, with a max count; a missing stream reads empty', async () => {
      const s = stream();
      await store.append(
        s,
        ['A', 'B', 'C', 'D', 'E'].map((t) => ev(t)),
        'no_stream',
      );
      const types = (events: RecordedEvent[]) => events.map((e) => e.type).join('');
      expect(types(await store.readStream(s, { direction: 'backwards' }))).toBe('EDCBA');
      expect(
        types(await store.readStream(s, { direction: 'backwards', fromRevision: 2n, maxCount: 2 })),
      ).toBe('CB');
      expect(types(await store.readStream(s, { fromRevision: 3n }))).toBe('DE');
      expect(types(await store.readStream(s, { fromRevision: 1n, maxCount: 2 }))).toBe('BC');
      expect(await store.readStream(stream())).toEqual([]);
    });

    it('reads $all forwards after a position and backwards, with filters on stream prefix and event type', async () => {
      const prefix = `p${randomUUID().slice(0, 8)}-`;
      const s1 = `${prefix}one`;
      const s2 = `${prefix}two`;
      await store.append(s1, [ev('X'), ev('Y')], 'no_stream');
      await store.append(`other-${randomUUID()}`, [ev('X')], 'no_stream');
      await store.append(s2, [ev('X'), ev('Z')], 'no_stream');
      const mine = await store.readAll({ filter: { streamNamePrefixes: [prefix] } });
      expect(mine.map((e) => `${e.streamId.slice(prefix.length)}:${e.type}`)).toEqual([
        'one:X',
        'one:Y',
        'two:X',
        'two:Z',
      ]);
      for (let i = 1; i < mine.length; i += 1) {
        expect(comparePositions(mine[i - 1]!.position, mine[i]!.position)).toBe(-1);
      }
      const after = await store.readAll({
        after: mine[1]!.position,
        filter: { streamNamePrefixes: [prefix] },
      });
      expect(after.map((e) => e.id)).toEqual([mine[2]!.id, mine[3]!.id]);
      const typed = await store.readAll({ filter: { streamNamePrefixes: [prefix], eventTypes: ['X'] } });
      expect(typed).toHaveLength(2);
      const back = await store.readAll({
        direction: 'backwards',
        maxCount: 2,
        filter: { streamNamePrefixes: [prefix] },
      });
      expect(back.map((e) => e.id)).toEqual([mine[3]!.id, mine[2]!.id]);
      const fromStart = await store.readAll({ after: START, filter: { streamNamePrefixes: [prefix] } });
      expect(fromStart.map((e) => e.id)).toEqual(mine.map((e) => e.id));
      const limited = await store.readAll({ maxCount: 1, filter: { streamNamePrefixes: [prefix] } });
      expect(limited.map((e) => e.id)).toEqual([mine[0]!.id]);
    });

    it('lastPosition is the position of the newest event readAll gives, and moves with each append', async () => {
      await store.append(stream(), [ev('A'), ev('B')], 'no_stream');
      const [newest] = await store.readAll({ direction: 'backwards', maxCount: 1 });
      expect(comparePositions((await store.lastPosition())!, newest!.position)).toBe(0);
      const appended = await store.append(stream(), [ev('C')], 'no_stream');
      expect(comparePositions((await store.lastPosition())!, appended.position)).toBe(0);
    });

    it('logEnd, where the store has it, is at or past lastPosition and every append', async () => {
      const appended = await store.append(stream(), [ev('A')], 'no_stream');
      // EventStoreDB's checkpoints lie past its last record, where no read reaches: it has none.
      if (!store.logEnd) return expect(store.constructor.name).toBe('EsdbEventStore');
      const end = (await store.logEnd())!;
      expect(comparePositions(end, (await store.lastPosition())!)).toBe(0);
      expect(comparePositions(end, appended.position)).toBe(0);
      const later = await store.append(stream(), [ev('B')], 'no_stream');
      expect(comparePositions((await store.logEnd())!, later.position)).toBe(0);
      expect(comparePositions(later.position, end)).toBeGreaterThan(0);
    });

    it('a stream with a max count reads as its newest events; revisions go on counting', async () => {
      const s = stream();
      await store.append(
        s,
        ['A', 'B', 'C'].map((t) => ev(t)),
        'no_stream',
      );
      await store.setStreamMaxCount!(s, 2);
      await store.setStreamMaxCount!(s, 2); // idempotent
      const types = (events: RecordedEvent[]) => events.map((e) => `${e.type}${e.revision}`).join(' ');
      expect(types(await store.readStream(s))).toBe('B1 C2');
      await store.append(s, [ev('D'), ev('E')], 2n);
      expect(types(await store.readStream(s))).toBe('D3 E4');
      expect(types(await store.readStream(s, { direction: 'backwards', maxCount: 1 }))).toBe('E4');
      expect(types(await store.readStream(s, { fromRevision: 4n }))).toBe('E4');
      await expect(store.append(s, [ev('F')], 3n)).rejects.toBeInstanceOf(WrongExpectedVersionError);
      const other = stream();
      await store.append(other, [ev('A'), ev('B')], 'no_stream');
      expect(await store.readStream(other)).toHaveLength(2); // the cap is the stream's alone
    });

    it('two appenders racing on one stream: exactly one wins, the other gets the conflict error', async () => {
      const s = stream();
      await store.append(s, [ev('A')], 'no_stream');
      const second = fx.other ?? store;
      const results = await Promise.allSettled([
        store.append(s, [ev('B')], 0n),
        second.append(s, [ev('C')], 0n),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(failed.reason).toBeInstanceOf(WrongExpectedVersionError);
      expect(await store.readStream(s)).toHaveLength(2);
    });

    it('many concurrent appenders with the same expected revision: one winner per round', async () => {
      const s = stream();
      await store.append(s, [ev('A')], 'no_stream');
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => (i % 2 && fx.other ? fx.other : store).append(s, [ev('B')], 0n)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    });

    it('a subscription catches up on stored events, then receives live ones, in order', async () => {
      const prefix = `sub${randomUUID().slice(0, 8)}-`;
      await store.append(`${prefix}a`, [ev('A1'), ev('A2')], 'no_stream');
      const seen: RecordedEvent[] = [];
      const sub = store.subscribeToAll({ from: START, filter: { streamNamePrefixes: [prefix] } }, (e) => {
        seen.push(e);
      });
      try {
        await waitFor(() => (seen.length >= 2 ? true : undefined));
        await store.append(`${prefix}b`, [ev('B1')], 'no_stream');
        await store.append(`${prefix}a`, [ev('A3')], 1n);
        await waitFor(() => (seen.length >= 4 ? true : undefined));
        expect(seen.map((e) => e.type)).toEqual(['A1', 'A2', 'B1', 'A3']);
      } finally {
        await sub.close();
      }
      await store.append(`${prefix}b`, [ev('B2')], 0n);
      await new Promise((r) => setTimeout(r, 300));
      expect(seen).toHaveLength(4);
    });

    it('a subscription from a position delivers only the events after it, filtered by type', async () => {
      const prefix = `pos${randomUUID().slice(0, 8)}-`;
      const first = await store.append(`${prefix}a`, [ev('Keep'), ev('Drop')], 'no_stream');
      const seen: string[] = [];
      const sub = store.subscribeToAll(
        { from: first.position, filter: { streamNamePrefixes: [prefix], eventTypes: ['Keep'] } },
        (e) => {
          seen.push(e.type);
        },
      );
      try {
        await store.append(`${prefix}a`, [ev('Drop'), ev('Keep')], 'any');
        await waitFor(() => (seen.length >= 1 ? true : undefined));
        await new Promise((r) => setTimeout(r, 100));
        expect(seen).toEqual(['Keep']);
      } finally {
        await sub.close();
      }
    });

    it('a filtered subscription reports checkpoints past the events it skips, in order; from one, only later events come', async () => {
      const prefix = `cp${randomUUID().slice(0, 8)}-`;
      const others = (n: number) => Array.from({ length: n }, () => ev('Other'));
      const first = await store.append(`${prefix}a`, [ev('M1')], 'no_stream');
      // More than one checkpoint interval of EventStoreDB (1,024 events scanned) of other streams.
      await store.append(`other-${randomUUID()}`, others(1100), 'no_stream');
      const seen: ({ event: string; position: Position } | { checkpoint: Position })[] = [];
      const subscribe = (from: Position) =>
        store.subscribeToAll(
          {
            from,
            filter: { streamNamePrefixes: [prefix] },
            onCheckpoint: (checkpoint) => {
              seen.push({ checkpoint });
            },
          },
          (e) => {
            seen.push({ event: e.type, position: e.position });
          },
        );
      const checkpoints = () => seen.flatMap((s) => ('checkpoint' in s ? [s.checkpoint] : []));
      const events = () => seen.flatMap((s) => ('event' in s ? [s.event] : []));
      const checkpointAfter = (position: Position) => () =>
        checkpoints().some((c) => comparePositions(c, position) > 0) ? true : undefined;
      const sub = subscribe(START);
      let resumeFrom: Position;
      try {
        await waitFor(checkpointAfter(first.position));
        const second = await store.append(`${prefix}a`, [ev('M2')], 0n);
        await store.append(`other-${randomUUID()}`, others(1100), 'no_stream');
        await waitFor(checkpointAfter(second.position));
        // Each after what came before it: events and checkpoints in one order.
        const positions = seen.map((s) => ('checkpoint' in s ? s.checkpoint : s.position));
        for (let i = 1; i < positions.length; i += 1) {
          expect(comparePositions(positions[i - 1]!, positions[i]!)).toBe(-1);
        }
        expect(events()).toEqual(['M1', 'M2']);
        resumeFrom = checkpoints().at(-1)!;
      } finally {
        await sub.close();
      }
      seen.length = 0;
      const again = subscribe(resumeFrom);
      try {
        await store.append(`${prefix}a`, [ev('M3')], 1n);
        await waitFor(() => (seen.some((s) => 'event' in s) ? true : undefined));
        await new Promise((r) => setTimeout(r, 100));
        expect(events()).toEqual(['M3']);
      } finally {
        await again.close();
      }
    });

    it('a handler that throws stops the subscription and reports the error', async () => {
      const prefix = `err${randomUUID().slice(0, 8)}-`;
      await store.append(`${prefix}a`, [ev('A'), ev('B')], 'no_stream');
      const seen: string[] = [];
      let reported: unknown;
      const sub = store.subscribeToAll(
        { from: START, filter: { streamNamePrefixes: [prefix] } },
        (e) => {
          seen.push(e.type);
          throw new Error('boom');
        },
        (error) => {
          reported = error;
        },
      );
      await waitFor(() => reported);
      expect(seen).toEqual(['A']);
      expect((reported as Error).message).toBe('boom');
      await sub.close();
    });
  });
}
