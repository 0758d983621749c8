import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jobStream } from '@snapcat/application';
import type { Command } from '@snapcat/domain';
import { LocalSnapshotStorage, type DeletionRequest } from '@snapcat/storage';
import { inProcessWorkers } from './support/in-process-workers';
import { newJobId } from './support/ids';
import { until } from './support/wait';

/**
 * A storage whose first measurement of a discard loses the BullMQ job under it, as a FLUSHDB (or a Redis
 * restarted without persistence) does while the worker holds it: the job's keys are gone when the worker
 * next writes to it.
 */
class StorageLosingTheQueue extends LocalSnapshotStorage {
  lost = false;
  constructor(
    roots: string[],
    private readonly loseQueue: () => Promise<void>,
  ) {
    super(roots);
  }

  override async measure(request: DeletionRequest): Promise<number> {
    const bytes = await super.measure(request);
    if (!this.lost) {
      this.lost = true;
      await this.loseQueue();
    }
    return bytes;
  }
}

// In process (the composition root's own startWorkers, real Redis, real BullMQ workers, real files): the
// storage has to lose the queue at one exact moment of the discard.
describe('a discard whose queue job vanishes under the worker (real Redis and BullMQ)', () => {
  const harness = inProcessWorkers('queue-lost');
  const { prefix, redis, logged, store, bus } = harness;
  afterAll(() => harness.close());

  it('records no failed discard (the files were never the problem): the reconcile after the wipe queues it again, and it is done once', async () => {
    const root = harness.root;
    // Everything of this namespace, as a FLUSHDB wipes it (other tests share the database).
    const storage = new StorageLosingTheQueue([root], async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    });
    await harness.start(storage);

    const jobId = newJobId();
    const run = (command: object) => bus.execute({ jobId, ...command } as Command);
    await harness.register(jobId);
    await run({
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: 't1',
      triggerType: 'MANUAL',
      formatType: 'NATIVE',
    });
    await run({ type: 'AcknowledgeTask', snapshotId: 1, taskId: 'a', stateSize: 5, stateHandles: [] });
    const state = await bus.load(jobId);
    const directory = state.snapshots.get(1)!.externalPath;
    mkdirSync(directory, { recursive: true });
    writeFileSync(join(directory, '_metadata'), 'state');
    await run({ type: 'RequestDiscard', snapshotId: 1, force: true });

    await until(async () => (storage.lost ? true : undefined), 20_000, 'the discard measured, its job lost');
    // The worker's next write to its job fails ("Missing key for job"); give it the time to be recorded.
    await until(
      async () => (logged.some((line) => line.includes('Missing key')) ? true : undefined),
      10_000,
      'the lost job said',
    );
    // Nothing recorded of it: the process manager finds its position wiped, reconciles, and queues the
    // discard again, done once (a SnapshotDiscardFailed was recorded first, BullMQ's message as the cause).
    const discard = async () => (await bus.load(jobId)).snapshots.get(1)!.discard;
    await until(
      async () => ((await discard())?.state === 'DONE' ? true : undefined),
      20_000,
      'the discard done',
    );
    expect(existsSync(directory)).toBe(false);
    const events = (await store.readStream(jobStream(jobId))).map((e) => e.type);
    expect(events.filter((type) => type.startsWith('SnapshotDiscard'))).toEqual([
      'SnapshotDiscardRequested',
      'SnapshotDiscarded',
    ]);
  }, 40_000);
});
