import { CommandBus } from '@snapcat/application';
import {
  InstrumentedEventStore,
  StoreUnavailableError,
  openEventStore,
  storeIdentity,
  type EventStore,
} from '@snapcat/event-store';
import { ConfigError, loadConfig, type Config } from './config';
import { createLogger, type Logger } from './log';
import { connectRedis } from './redis';
import { ForeignStateError, claimStoreNamespace, storeNamespace } from './store-namespace';

/** The configuration, or a message naming the bad variable and exit code 2. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`snapcat: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/** What every snapcat process opens first: the logger, the event store (instrumented) and the command bus. */
export function openCore(config: Config) {
  const log = createLogger(config.logLevel);
  const store = new InstrumentedEventStore(openEventStore(config.eventStore));
  const bus = new CommandBus(store, {
    snapshotEvery: config.aggregateSnapshotEvery,
    onBackgroundError: (error) => log.warn('aggregate snapshot failed', { error: String(error) }),
  });
  return { log, store, bus };
}
export type Core = ReturnType<typeof openCore>;

/**
 * The store's id (waiting up to a minute for a store that is still starting), then this store's Redis
 * namespace. The prefix is claimed for the store in the background (a Redis that is down does not stop the
 * API from serving commands), except with SNAPCAT_ON_FOREIGN_READ_MODEL=refuse: then the claim is awaited,
 * and another store's state on the prefix exits 2 with the message.
 */
export async function openStoreNamespace(config: Config, store: EventStore, log: Logger): Promise<string> {
  const storeId = await identifyStore(store, log);
  const namespace = storeNamespace(config.queuePrefix, storeId);
  log.info('event store identified', { store: storeId, redisNamespace: namespace });
  const redis = connectRedis(config.redisUrl);
  const claim = claimStoreNamespace(
    redis,
    config.queuePrefix,
    storeId,
    config.onForeignReadModel,
    log,
  ).finally(() => redis.quit().catch(() => undefined));
  if (config.onForeignReadModel === 'refuse') {
    try {
      await claim;
    } catch (error) {
      if (!(error instanceof ForeignStateError)) throw error;
      log.error(error.message);
      process.stderr.write(`snapcat: ${error.message}\n`);
      process.exit(2);
    }
  } else {
    claim.catch((error: unknown) =>
      log.error('could not record the store on the Redis prefix', { error: String(error) }),
    );
  }
  return namespace;
}

async function identifyStore(store: EventStore, log: Logger, waitMs = 60_000): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await storeIdentity(store);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || Date.now() >= deadline) {
        log.error('cannot read the event store: stopping', { error: String(error) });
        process.exit(1);
      }
      if (attempt % 5 === 1) log.warn('event store unavailable; retrying', { error: String(error) });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Runs `stop` once on SIGTERM or SIGINT, exiting 0 after it, or 1 if it takes longer than `graceMs`. */
export function stopOnSignals(log: Logger, stop: () => Promise<void>, graceMs = 30_000): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    setTimeout(() => process.exit(1), graceMs).unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error('stop failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}
