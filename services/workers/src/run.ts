import { openStoreNamespace, stopOnSignals, type Config, type Core } from '@snapcat/runtime';
import { openSnapshotStorage } from '@snapcat/storage';
import { startWorkers } from './start';

/** A process that runs the workers only: `npm run start:workers`, or `npm start` with SNAPCAT_ROLE=workers. */
export async function runWorkersOnly(config: Config, { log, store, bus }: Core): Promise<void> {
  const workers = await startWorkers({
    config,
    prefix: await openStoreNamespace(config, store, log),
    store,
    bus,
    storage: openSnapshotStorage(config.storageRoots, config.s3),
    log,
  });
  // Signals are handled before `listening` is logged: a supervisor may stop the process at once.
  stopOnSignals(log, config.shutdownGraceMs, {
    drain: () => workers.close(),
    close: async () => {
      await bus.flush();
      await store.close();
    },
  });
  log.info('listening', { role: 'workers' });
}
