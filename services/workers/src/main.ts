import { loadConfigOrExit, openCore, openStoreNamespace, stopOnSignals } from '@snapcat/runtime';
import { openSnapshotStorage } from '@snapcat/storage';
import { startWorkers } from './index';

/** The workers on their own: `npm run start:workers`. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const { log, store, bus } = openCore(config);
  const workers = await startWorkers({
    config,
    prefix: await openStoreNamespace(config, store, log),
    store,
    bus,
    storage: openSnapshotStorage(config.storageRoots, config.s3),
    log,
  });
  log.info('listening', { role: 'workers' });
  stopOnSignals(log, async () => {
    await workers.close();
    await bus.flush();
    await store.close();
  });
}

void main();
