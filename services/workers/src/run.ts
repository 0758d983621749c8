import {
  closeOps,
  leasedConsumerState,
  openStoreNamespace,
  opsAddress,
  startOpsEndpoints,
  stopOnSignals,
  type Config,
  type Core,
} from '@snapcat/runtime';
import { openSnapshotStorage } from '@snapcat/storage';
import { startWorkers } from './start';

/**
 * A process that runs the workers only: `npm run start:workers`, or `npm start` with SNAPCAT_ROLE=workers.
 * With SNAPCAT_OPS_PORT it serves /healthz, /readyz and /metrics there (its queues, its process manager's
 * and webhook dispatcher's leases, which only this process can report).
 */
export async function runWorkersOnly(config: Config, core: Core): Promise<void> {
  const { log, store, bus } = core;
  const workers = await startWorkers({
    config,
    prefix: await openStoreNamespace(config, store, log),
    store,
    bus,
    storage: openSnapshotStorage(config.storageRoots, config.s3),
    log,
  });
  const { processManager, webhooks } = workers;
  const ops = await startOpsEndpoints(config, core, {
    role: 'workers',
    redisReady: workers.redisReady,
    waitingForRedis: 'the queues, the process manager and webhook deliveries wait for it',
    service: {
      queues: () => [...Object.values(workers.queues), ...(webhooks ? [webhooks.deliveries.queue] : [])],
      consumers: () => [
        leasedConsumerState('process_manager', processManager),
        ...(webhooks?.dispatcher ? [leasedConsumerState('webhook_dispatcher', webhooks.dispatcher)] : []),
      ],
    },
  });
  // Signals are handled before `listening` is logged: a supervisor may stop the process at once.
  stopOnSignals(log, config.shutdownGraceMs, {
    drain: () => workers.close(),
    // The probes answer until the end: a supervisor sees a draining process as alive.
    close: async () => {
      await closeOps(ops);
      await bus.flush();
      await store.close();
    },
  });
  log.info('listening', { role: 'workers', ...opsAddress(ops) });
}
