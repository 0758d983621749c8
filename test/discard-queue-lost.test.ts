import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { CommandBus, jobStream } from '@snapcat/application';
import type { Command } from '@snapcat/domain';
import { MemoryEventStore } from '@snapcat/event-store';
import { Projector } from '@snapcat/read-model';
import { loadConfig } from '@snapcat/runtime';
import { LocalSnapshotStorage, type DeletionRequest } from '@snapcat/storage';
import { startWorkers, type RunningWorkers } from '@snapcat/workers';
import { deleteKeys } from './support/redis';
import { testPrefix } from './support/service';
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
  const prefix = testPrefix('queue-lost');
  let dir: string;
  let redis: IORedis;
  let workers: RunningWorkers | undefined;
  let projector: Projector | undefined;
  const logged: string[] = [];
  const log = {
    info: () => {},
    warn: (message: string, fields?: object) => logged.push(`${message} ${JSON.stringify(fields ?? {})}`),
    error: (message: string, fields?: object) => logged.push(`${message} ${JSON.stringify(fields ?? {})}`),
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-queue-lost-'));
    redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await workers?.close();
    await projector?.stop();
    redis.disconnect();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('records no failed discard (the files were never the problem): the reconcile after the wipe queues it again, and it is done once', async () => {
    const root = join(dir, 'root');
    const config = loadConfig({
      SNAPCAT_EVENT_STORE: 'memory:',
      SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379',
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_STORAGE_ROOTS: root,
    });
    const store = new MemoryEventStore();
    const bus = new CommandBus(store);
    // Everything of this namespace, as a FLUSHDB wipes it (other tests share the database).
    const storage = new StorageLosingTheQueue([root], async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    });
    // The read model says whose snapshots lie where a discard deletes (decision 0043): a projector keeps it.
    projector = new Projector({ store, redis, prefix, log });
    await projector.start();
    workers = await startWorkers({ config, prefix, store, bus, storage, log });

    const jobId = newJobId();
    const run = (command: object) => bus.execute({ jobId, ...command } as Command);
    await run({
      type: 'ConfigureJob',
      name: 'queue-lost',
      tasks: ['a'],
      checkpointing: {
        numRetained: 5,
        timeoutMs: 60_000,
        maxConcurrent: 1,
        minPauseMs: 0,
        tolerableFailures: 0,
        retention: 'RETAIN_ON_CANCELLATION',
      },
      storage: { checkpointDir: join(root, 'chk'), savepointDir: join(root, 'sp') },
    });
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
