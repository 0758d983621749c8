import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { CommandBus } from '@snapcat/application';
import type { Command } from '@snapcat/domain';
import { MemoryEventStore } from '@snapcat/event-store';
import { Projector } from '@snapcat/read-model';
import { loadConfig } from '@snapcat/runtime';
import type { SnapshotStorage } from '@snapcat/storage';
import { startWorkers, type RunningWorkers } from '@snapcat/workers';
import { deleteKeys } from './redis';
import { testPrefix } from './service';

/**
 * The composition root's own workers in this process (startWorkers: real Redis, real BullMQ workers, real
 * files under `root`), on a store in memory, with a projector beside them (a deletion asks the read model
 * whose snapshots lie where it deletes, decision 0043): for a test that must act at one exact moment inside
 * a worker, through a storage of its own. What the workers log at warn and error is kept in `logged`.
 */
export function inProcessWorkers(name: string) {
  const prefix = testPrefix(name);
  const dir = mkdtempSync(join(tmpdir(), `snapcat-${name}-`));
  const root = join(dir, 'root');
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const logged: string[] = [];
  const said = (message: string, fields?: object) =>
    logged.push(`${message} ${JSON.stringify(fields ?? {})}`);
  const log = { info: () => {}, warn: said, error: said };
  const store = new MemoryEventStore();
  const bus = new CommandBus(store);
  let workers: RunningWorkers | undefined;
  let projector: Projector | undefined;
  return {
    prefix,
    root,
    redis,
    logged,
    store,
    bus,
    /** Registers a job of one task `a`, its checkpoints and savepoints under `root`, five retained. */
    async register(jobId: string): Promise<void> {
      await bus.execute({
        type: 'ConfigureJob',
        jobId,
        name,
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
      } as Command);
    },
    async start(storage: SnapshotStorage): Promise<void> {
      const config = loadConfig({
        SNAPCAT_EVENT_STORE: 'memory:',
        SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379',
        SNAPCAT_QUEUE_PREFIX: prefix,
        SNAPCAT_STORAGE_ROOTS: root,
      });
      projector = new Projector({ store, redis, prefix, log });
      await projector.start();
      workers = await startWorkers({ config, prefix, store, bus, storage, log });
    },
    async close(): Promise<void> {
      await workers?.close();
      await projector?.stop();
      redis.disconnect();
      await deleteKeys(prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
