import { CommandBus } from '@snapcat/application';
import { InstrumentedEventStore, openEventStore } from '@snapcat/event-store';
import { ConfigError, loadConfig, type Config } from './config';
import { createLogger, type Logger } from './log';

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
