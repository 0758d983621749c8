import { CommandBus } from '@snapcat/application';
import { InstrumentedEventStore, openEventStore } from '@snapcat/event-store';
import { ConfigError, createLogger, loadConfig } from '@snapcat/runtime';
import { LocalSnapshotStorage } from '@snapcat/storage';
import { startWorkers } from './index';

/** The workers on their own: `npm run start:workers`. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`snapcat: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  const store = new InstrumentedEventStore(openEventStore(config.eventStore));
  const bus = new CommandBus(store, {
    onBackgroundError: (error) => log.warn('aggregate snapshot failed', { error: String(error) }),
  });
  const workers = await startWorkers({
    config,
    store,
    bus,
    storage: new LocalSnapshotStorage(config.storageRoots),
    log,
  });
  log.info('listening', { role: 'workers' });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    setTimeout(() => process.exit(1), 30_000).unref();
    await workers.close();
    await bus.flush();
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

void main();
