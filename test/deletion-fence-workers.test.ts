import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import IORedis from 'ioredis';
import { CommandBus } from '@snapcat/application';
import type { Command } from '@snapcat/domain';
import { MemoryEventStore } from '@snapcat/event-store';
import { Projector, RedisDeletionFence } from '@snapcat/read-model';
import { loadConfig } from '@snapcat/runtime';
import { LocalSnapshotStorage, type DeletionRequest } from '@snapcat/storage';
import { startWorkers, type RunningWorkers } from '@snapcat/workers';
import { deleteKeys } from './support/redis';
import { testPrefix } from './support/service';
import { newJobId } from './support/ids';
import { until } from './support/wait';

/**
 * A storage that stops its first measurement until the test lets it go: the moment between a deletion's
 * lookups and its deletion, which decision 0047's marks must cover.
 */
class StorageHeldBeforeDeleting extends LocalSnapshotStorage {
  private reached!: () => void;
  readonly measuring = new Promise<void>((resolve) => (this.reached = resolve));
  private go!: () => void;
  private readonly released = new Promise<void>((resolve) => (this.go = resolve));
  private first = true;

  override async measure(request: DeletionRequest): Promise<number> {
    if (this.first) {
      this.first = false;
      this.reached();
      await this.released;
    }
    return super.measure(request);
  }

  letGo(): void {
    this.go();
  }
}

// In process (the composition root's own startWorkers, real Redis, real BullMQ workers, real files): the
// deletion has to be held at one exact moment.
describe('a discard between its lookups and its deletion (decision 0047, real Redis, BullMQ and files)', () => {
  const prefix = testPrefix('fence-workers');
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
    dir = mkdtempSync(join(tmpdir(), 'snapcat-fence-workers-'));
    redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await workers?.close();
    await projector?.stop();
    redis.disconnect();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps its marks until it deletes; marks lost meanwhile (a Redis that restarted empty) make it look again, and keep what another job acknowledged since', async () => {
    const root = join(dir, 'root');
    const config = loadConfig({
      SNAPCAT_EVENT_STORE: 'memory:',
      SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379',
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_STORAGE_ROOTS: root,
    });
    const store = new MemoryEventStore();
    const bus = new CommandBus(store);
    const storage = new StorageHeldBeforeDeleting([root]);
    projector = new Projector({ store, redis, prefix, log });
    await projector.start();
    workers = await startWorkers({ config, prefix, store, bus, storage, log });
    const fence = new RedisDeletionFence(redis, prefix);

    const [first, second] = [newJobId(), newJobId()];
    const run = (jobId: string, command: object) => bus.execute({ jobId, ...command } as Command);
    const put = (path: string) => {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, 'state');
      return { path, sizeBytes: 5 };
    };
    const checkpoint = async (jobId: string, handles: { path: string; sizeBytes: number }[]) => {
      await run(jobId, {
        type: 'TriggerSnapshot',
        kind: 'CHECKPOINT',
        triggerId: `t-${jobId}`,
        triggerType: 'MANUAL',
        formatType: 'NATIVE',
      });
      await run(jobId, {
        type: 'AcknowledgeTask',
        snapshotId: 1,
        taskId: 'a',
        stateSize: 5,
        stateHandles: handles,
      });
    };
    for (const jobId of [first, second]) {
      await run(jobId, {
        type: 'ConfigureJob',
        name: 'fence',
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
    }
    // A client's own layout: no Flink layout names whose the file is (decision 0046).
    const loose = put(join(root, 'data', 'shared', 'f'));
    const own = put(join(root, 'chk', first, 'chk-1', 'p'));
    await checkpoint(first, [loose, own]);
    await run(first, { type: 'RequestDiscard', snapshotId: 1, force: true });

    // Its lookups done (the file is the first job's alone), the deletion is held before it deletes.
    const meanwhile = async () => {
      const recorded = await fence.recording(second, [loose.path]);
      expect([...recorded.conflicts]).toEqual([[loose.path, [loose.path]]]); // still marked
      await recorded.release();
      // Redis loses the marks; the second job's acknowledgement of the file then passes the fence unseen.
      await redis.del(`${prefix}:fence:deleting`, `${prefix}:fence:deleting:lapses`);
      const unseen = await fence.recording(second, [loose.path]);
      expect(unseen.conflicts.size).toBe(0);
      await checkpoint(second, [loose]);
      await unseen.release();
    };
    await storage.measuring;
    try {
      await meanwhile();
    } finally {
      storage.letGo(); // whatever the checks say, so that the workers can close
    }

    // The deletion sees its marks gone, looks again, and keeps the file the second job's checkpoint names.
    const discard = async () => (await bus.load(first)).snapshots.get(1)!.discard;
    await until(
      async () => ((await discard())?.state === 'DONE' ? true : undefined),
      20_000,
      'the discard done',
    );
    expect(logged.some((line) => line.startsWith('deletion lost its marks before it deleted'))).toBe(true);
    expect(existsSync(loose.path)).toBe(true);
    expect(existsSync(own.path)).toBe(false);
    expect(await redis.zcard(`${prefix}:fence:deleting`)).toBe(0); // let go once done
  }, 40_000);
});
