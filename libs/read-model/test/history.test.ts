import { randomUUID } from 'node:crypto';
import { Command, decide, encodeState, fold, initialState, type Event, type JobState } from '@snapcat/domain';
import { aggregateStream, jobStream, readJobState } from '@snapcat/application';
import { MemoryEventStore, type EventStore } from '@snapcat/event-store';
import { stateAt } from '../src';

// stateAt over a memory store: the job's state at a revision or a time, from an aggregate snapshot when
// one fits, folding the rest of the stream.
const JOB = 'c0ffee00c0ffee00c0ffee00c0ffee00';
const T0 = Date.parse('2026-11-30T10:00:00.000Z');

/** Decides `count` commands one second apart (a registration, then suspensions and resumptions): one event each. */
async function writeHistory(store: EventStore, count: number): Promise<Event[]> {
  let state = initialState(JOB);
  const events: Event[] = [];
  for (let i = 0; i < count; i += 1) {
    const command = Command.parse(
      i === 0
        ? {
            type: 'ConfigureJob',
            jobId: JOB,
            name: 'history',
            tasks: ['a'],
            checkpointing: {},
            storage: { checkpointDir: '/data/c', savepointDir: '/data/s' },
          }
        : { type: 'ChangeJobStatus', jobId: JOB, status: i % 2 === 1 ? 'SUSPENDED' : 'RUNNING' },
    );
    const decision = decide(state, command, T0 + i * 1000);
    state = decision.state;
    events.push(...decision.events);
    await store.append(
      jobStream(JOB),
      decision.events.map((data) => ({ id: randomUUID(), type: data.type, data })),
      'any',
    );
  }
  return events;
}

/** An aggregate snapshot of the state after `revision`. */
async function snapshotAt(store: EventStore, events: Event[], revision: number, state?: JobState) {
  const at = state ?? fold(initialState(JOB), events.slice(0, revision + 1));
  await store.append(
    aggregateStream(JOB),
    [
      {
        id: randomUUID(),
        type: 'AggregateSnapshot',
        data: { revision: String(revision), state: encodeState(at) },
      },
    ],
    'any',
  );
}

/** The store, with each readStream call recorded. */
function recording(store: EventStore) {
  const reads: { stream: string; fromRevision?: bigint; direction?: string }[] = [];
  const proxy = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'readStream') {
        return (stream: string, options: { fromRevision?: bigint; direction?: string } = {}) => {
          reads.push({ stream, fromRevision: options.fromRevision, direction: options.direction });
          return target.readStream(stream, options as never);
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
  return { store: proxy, reads };
}

const folded = (events: Event[], upTo: number) => fold(initialState(JOB), events.slice(0, upTo + 1));

describe('stateAt', () => {
  it('without a bound: every event folded, and the last revision', async () => {
    const store = new MemoryEventStore();
    const events = await writeHistory(store, 5);
    const { state, revision } = await stateAt(store, JOB);
    expect(revision).toBe(BigInt(events.length - 1));
    expect(state).toEqual(folded(events, events.length - 1));
  });

  it('a job without events: the initial state at revision -1', async () => {
    const { state, revision } = await stateAt(new MemoryEventStore(), JOB, { revision: 3n });
    expect(revision).toBe(-1n);
    expect(state).toEqual(initialState(JOB));
    expect((await stateAt(new MemoryEventStore(), JOB)).revision).toBe(-1n);
  });

  it('at a revision: the events up to it, from the newest aggregate snapshot at or below it', async () => {
    const base = new MemoryEventStore();
    const events = await writeHistory(base, 12);
    await snapshotAt(base, events, 3);
    await snapshotAt(base, events, 6);
    await snapshotAt(base, events, 9);
    const { store, reads } = recording(base);
    const at7 = await stateAt(store, JOB, { revision: 7n });
    expect(at7.revision).toBe(7n);
    expect(at7.state).toEqual(folded(events, 7));
    expect(reads).toEqual([
      { stream: aggregateStream(JOB), fromRevision: undefined, direction: 'backwards' },
      { stream: jobStream(JOB), fromRevision: 7n, direction: undefined },
    ]);
    // Exactly at a snapshot: nothing more to read.
    reads.length = 0;
    const at6 = await stateAt(store, JOB, { revision: 6n });
    expect(at6).toEqual({ state: folded(events, 6), revision: 6n });
    expect(reads).toHaveLength(1);
    // Below every snapshot: from the start.
    reads.length = 0;
    expect(await stateAt(store, JOB, { revision: 2n })).toEqual({ state: folded(events, 2), revision: 2n });
    expect(reads[1]).toEqual({ stream: jobStream(JOB), fromRevision: 0n, direction: undefined });
  });

  it('skips an aggregate snapshot of another codec version', async () => {
    const base = new MemoryEventStore();
    const events = await writeHistory(base, 6);
    await snapshotAt(base, events, 4);
    await base.append(
      aggregateStream(JOB),
      [{ id: randomUUID(), type: 'AggregateSnapshot', data: { revision: '4', state: { codecVersion: -1 } } }],
      'any',
    );
    const { store, reads } = recording(base);
    expect(await stateAt(store, JOB, { revision: 5n })).toEqual({ state: folded(events, 5), revision: 5n });
    expect(reads[1]!.fromRevision).toBe(5n);
  });

  it('at a time: the events that occurred at or before it, and the revision of the last of them', async () => {
    const base = new MemoryEventStore();
    const events = await writeHistory(base, 6); // commands at T0, T0+1s, ... one event each
    await snapshotAt(base, events, 4);
    const { store, reads } = recording(base);
    expect(await stateAt(store, JOB, { at: T0 + 2000 })).toEqual({ state: folded(events, 2), revision: 2n });
    expect(reads.map((r) => r.stream)).toEqual([jobStream(JOB)]); // no snapshot: times are not in it
    expect(await stateAt(store, JOB, { at: T0 + 2999 })).toEqual({ state: folded(events, 2), revision: 2n });
    expect(await stateAt(store, JOB, { at: T0 - 1 })).toEqual({ state: initialState(JOB), revision: -1n });
    expect(await stateAt(store, JOB, { at: T0 + 60_000 })).toEqual({
      state: folded(events, 5),
      revision: 5n,
    });
    // A time and a revision: whichever comes first.
    expect(await stateAt(store, JOB, { at: T0 + 4000, revision: 1n })).toEqual({
      state: folded(events, 1),
      revision: 1n,
    });
    expect(await stateAt(store, JOB, { at: T0 + 1000, revision: 4n })).toEqual({
      state: folded(events, 1),
      revision: 1n,
    });
  });

  it('reads a stream longer than one page', async () => {
    const base = new MemoryEventStore();
    const events = await writeHistory(base, 1003);
    expect(events).toHaveLength(1003);
    const { store, reads } = recording(base);
    expect(await stateAt(store, JOB)).toEqual({ state: folded(events, 1002), revision: 1002n });
    // Two pages, the second short: the end of the stream, no read after it.
    expect(reads.map((r) => r.fromRevision)).toEqual([0n, 1000n]);
    expect(await stateAt(store, JOB, { revision: 1001n })).toEqual({
      state: folded(events, 1001),
      revision: 1001n,
    });
    expect(await stateAt(store, JOB, { at: T0 + 1001_000 })).toEqual({
      state: folded(events, 1001),
      revision: 1001n,
    });
  });
});

describe('readJobState: the sweeps read jobs past the command bus', () => {
  it('the current state, from the newest aggregate snapshot and the events after it', async () => {
    const base = new MemoryEventStore();
    const events = await writeHistory(base, 12);
    await snapshotAt(base, events, 6);
    await snapshotAt(base, events, 9);
    const { store, reads } = recording(base);
    expect(await readJobState(store, JOB)).toEqual(folded(events, 11));
    expect(reads).toEqual([
      { stream: aggregateStream(JOB), fromRevision: undefined, direction: 'backwards' },
      { stream: jobStream(JOB), fromRevision: 10n, direction: undefined },
    ]);
  });
});
