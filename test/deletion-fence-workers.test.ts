import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from '@snapcat/domain';
import { RedisDeletionFence } from '@snapcat/read-model';
import { LocalSnapshotStorage, type DeletionRequest } from '@snapcat/storage';
import { inProcessWorkers } from './support/in-process-workers';
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
  const harness = inProcessWorkers('fence-workers');
  const { prefix, redis, logged, bus, root } = harness;
  afterAll(() => harness.close());

  it('keeps its marks until it deletes; marks lost meanwhile (a Redis that restarted empty) make it look again, and keep what another job acknowledged since', async () => {
    const storage = new StorageHeldBeforeDeleting([root]);
    await harness.start(storage);
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
    for (const jobId of [first, second]) await harness.register(jobId);
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
