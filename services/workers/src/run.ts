import {
  closeOps,
  openStoreNamespace,
  refuseOthersRoots,
  opsAddress,
  redisHealth,
  startOpsEndpoints,
  stopOnSignalOrStoreFailure,
  workerMetricSources,
  type Config,
  type Core,
} from '@snapcat/runtime';
import { openSnapshotStorage } from '@snapcat/storage';
import { startWorkers, type RunningWorkers } from './start';

/** What its /metrics reads of the running workers. */
const sources = (workers: RunningWorkers) => workerMetricSources(workers.queues, workers);

/**
 * A process that runs the workers only: `npm run start:workers`, or `npm start` with SNAPCAT_ROLE=workers.
 * With SNAPCAT_OPS_PORT it serves /healthz, /readyz and /metrics there (its queues, its process manager's
 * and webhook dispatcher's leases, which only this process can report), from before the workers start.
 */
export async function runWorkersOnly(config: Config, core: Core): Promise<void> {
  const { log, store, bus } = core;
  let workers: RunningWorkers | undefined = undefined; // set once they run: the ops endpoints come first
  const ops = await startOpsEndpoints(config, core, {
    role: 'workers',
    starting: () => (workers ? undefined : 'the workers (the store’s namespace in Redis, the queues)'),
    // Until the workers run, `starting` says what is missing; Redis is named only if it has failed.
    redisState: () => (workers ? workers.redisState() : redisHealth.reachable ? 'ready' : 'unreachable'),
    waitingForRedis: 'the queues, the process manager and webhook deliveries wait for it',
    // Read on scrape: nothing until the workers run.
    service: {
      queues: () => (workers ? sources(workers).queues() : []),
      consumers: () => (workers ? sources(workers).consumers() : []),
    },
  });
  const prefix = await openStoreNamespace(config, store, log);
  const storage = openSnapshotStorage(config.storageRoots, config.s3);
  await refuseOthersRoots(config, storage, store, log);
  const running = await startWorkers({ config, prefix, store, bus, storage, log });
  workers = running;
  // Signals are handled before `listening` is logged: a supervisor may stop the process at once.
  stopOnSignalOrStoreFailure(log, store, config.shutdownGraceMs, {
    drain: () => running.close(),
    close: async () => {
      await bus.flush();
      await store.close();
      closeOps(ops); // the probes answer until the end: a supervisor sees a draining process as alive
    },
  });
  log.info('listening', { role: 'workers', ...opsAddress(ops) });
}
