import type { Server } from 'node:http';
import { CommandBus } from '@snapcat/application';
import { InstrumentedEventStore, openEventStore } from '@snapcat/event-store';
import { createApp } from './app';
import { ConfigError, connectRedis, createLogger, loadConfig } from '@snapcat/runtime';
import { LocalSnapshotStorage } from '@snapcat/storage';
import { redisKeys, startWorkers, type RunningWorkers } from '@snapcat/workers';

/**
 * Composition root: configuration, event store, command bus, HTTP, and (unless SNAPCAT_WORKERS=off)
 * the workers in the same process, which is what `npm start` runs.
 */
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
  const storage = new LocalSnapshotStorage(config.storageRoots);
  const embedWorkers = process.env.SNAPCAT_WORKERS !== 'off';
  const workers: RunningWorkers | undefined = embedWorkers
    ? await startWorkers({ config, store, bus, storage, log })
    : undefined;
  const redis = connectRedis(config.redisUrl);
  const orphanKey = redisKeys(config.queuePrefix).orphanReport;
  const app = createApp({
    bus,
    store,
    storage,
    orphanReport: async () => {
      const text = await redis.get(orphanKey);
      return text ? JSON.parse(text) : null;
    },
    storeCounters: store.counters,
    defaults: { checkpointDir: config.defaultCheckpointDir, savepointDir: config.defaultSavepointDir },
    log: log.error,
  });
  const server: Server = app.listen(config.port, config.host, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    log.info('listening', {
      port,
      host: config.host,
      eventStore: redactStore(config.eventStore),
      workers: embedWorkers ? 'embedded' : 'off',
    });
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    server.close(() => {
      void (async () => {
        await workers?.close();
        await redis.quit().catch(() => undefined);
        await bus.flush();
        await store.close();
        process.exit(0);
      })();
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** Connection strings may carry credentials (esdb://user:pass@host): never log them. */
function redactStore(connection: string): string {
  return connection.replace(/\/\/[^@/]*@/, '//***@');
}

void main();
