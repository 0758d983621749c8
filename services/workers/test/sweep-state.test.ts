import { CommandBus, jobStream } from '@snapcat/application';
import { Command } from '@snapcat/domain';
import {
  MemoryEventStore,
  StreamDeletedError,
  type EventStore,
  type ReadStreamOptions,
} from '@snapcat/event-store';
import { sweepState } from '../src/processors';
import { configureJob } from './jobs';

/** A memory store that records every stream read (its stream and direction). */
function countingStore(deleted = new Set<string>()) {
  const store = new MemoryEventStore();
  const reads: string[] = [];
  const counting = new Proxy(store, {
    get(target, name, receiver) {
      if (name !== 'readStream') return Reflect.get(target, name, receiver);
      return (streamId: string, options?: ReadStreamOptions) => {
        reads.push(`${streamId} ${options?.direction ?? 'forwards'}`);
        if (deleted.has(streamId)) throw new StreamDeletedError(streamId);
        return target.readStream(streamId, options);
      };
    },
  }) as EventStore;
  return { store: counting, reads };
}

const jobId = 'f0000000000000000000000000000001';
const configure = configureJob(jobId);
const trigger = Command.parse({
  type: 'TriggerSnapshot',
  jobId,
  kind: 'SAVEPOINT',
  triggerId: 'w1',
  triggerType: 'MANUAL',
  formatType: 'CANONICAL',
});

// The retention sweep reads every job each minute: a job the bus holds at its newest revision is taken from
// the bus's cache (one read of the newest event), not decoded again from the store (bench #10).
describe('the retention sweep’s state of a job', () => {
  it('is the bus’s cached state when that is at the stream’s newest revision: one backwards read, nothing decoded', async () => {
    const { store, reads } = countingStore();
    const bus = new CommandBus(store);
    await bus.execute(configure);
    await bus.execute(trigger);
    const cached = await bus.load(jobId);
    reads.length = 0;
    const state = await sweepState({ bus, store }, jobId);
    expect(state).toBe(cached);
    expect(reads).toEqual([`${jobStream(jobId)} backwards`]);
  });

  it('is read from the store when another writer moved the stream past the cached state', async () => {
    const { store, reads } = countingStore();
    const bus = new CommandBus(store);
    await bus.execute(configure);
    const stale = await bus.load(jobId);
    await new CommandBus(store).execute(trigger); // another replica
    reads.length = 0;
    const state = await sweepState({ bus, store }, jobId);
    expect(state).not.toBe(stale);
    expect(state!.snapshots.size).toBe(1);
    expect(stale.snapshots.size).toBe(0);
    expect(reads.length).toBeGreaterThan(1);
  });

  it('is read from the store for a job the bus does not hold, and is undefined for a hard-deleted stream', async () => {
    const { store } = countingStore(new Set([jobStream('f0000000000000000000000000000002')]));
    const bus = new CommandBus(store);
    await new CommandBus(store).execute(configure);
    expect((await sweepState({ bus, store }, jobId))!.version).toBe(1);
    expect(await sweepState({ bus, store }, 'f0000000000000000000000000000002')).toBeUndefined();
  });

  it('read once in a sweep that deletes orphans: taken again while the stream has not moved, read again once it has', async () => {
    const { store, reads } = countingStore();
    const bus = new CommandBus(store);
    await new CommandBus(store).execute(configure); // another replica: this bus holds nothing
    const seen = new Map();
    const first = await sweepState({ bus, store }, jobId, seen);
    reads.length = 0;
    expect(await sweepState({ bus, store }, jobId, seen)).toBe(first);
    expect(reads).toEqual([`${jobStream(jobId)} backwards`]);
    await new CommandBus(store).execute(trigger);
    const moved = await sweepState({ bus, store }, jobId, seen);
    expect(moved).not.toBe(first);
    expect(moved!.snapshots.size).toBe(1);
  });
});
