import { setFlagsFromString } from 'node:v8';
import { CommandBus } from '@snapcat/application';
import { newerSchemaVersion } from '@snapcat/domain';
import {
  InstrumentedEventStore,
  StoreAccessDeniedError,
  StoreUnavailableError,
  openEventStore,
  storeIdentity,
  type EventStore,
} from '@snapcat/event-store';
import { ConfigError, loadConfig, storeOutlivesProcess, type Config } from './config';
import { createLogger, type Logger } from './log';
import type { Redis } from 'ioredis';
import { closeRedis, connectRedis, redisHealth } from './redis';
import {
  ForeignStateError,
  claimStoreNamespace,
  keepStoreRecorded,
  markTimeline,
  storeLogView,
  storeNamespace,
} from './store-namespace';

/** The configuration, or a message naming the bad variable and exit code 2. */
export function loadConfigOrExit(options?: Parameters<typeof loadConfig>[1]): Config {
  try {
    return loadConfig(process.env, options);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`snapcat: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/**
 * How far V8 lets the old generation grow past what the last full collection left live: 50 %, where V8
 * would take up to 300 % on a machine with this much memory. A catch-up (the projector, the process
 * manager) makes garbage fast, and V8's own factor let it pile up: 1,011-1,128 MB resident at the peak of
 * bench #10's catch-up against 481-509 MB with this, for 4 % more wall time (decision 0027). A
 * `--heap-growing-percent` given to node on its command line is left as it is (NODE_OPTIONS refuses it).
 */
export const HEAP_GROWING_PERCENT = 50;

export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): boolean {
  const given = execArgv.some((flag) => /^--heap[-_]growing[-_]percent/.test(flag));
  if (!given) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return !given;
}

/** What every snapcat process opens first: the logger, the event store (instrumented) and the command bus. */
export function openCore(config: Config, { servesApi = config.role !== 'workers' } = {}) {
  limitHeapGrowth();
  const log = createLogger(config.logLevel);
  redisHealth.reportTo(log, {
    servesApi,
    onMisconfigured: (reason) => stopMisconfigured(log, reason, `cannot use Redis: ${reason}; stopping`),
  });
  for (const warning of config.eventStoreWarnings) log.warn(warning);
  const store = new InstrumentedEventStore(openEventStore(config.eventStore), {
    newerSchemaVersion,
  });
  const bus = new CommandBus(store, {
    snapshotEvery: config.aggregateSnapshotEvery,
    onBackgroundError: (error) => log.warn('aggregate snapshot failed', { error: String(error) }),
  });
  return { log, store, bus };
}
export type Core = ReturnType<typeof openCore>;

/**
 * The store's id (waiting a few seconds for a store that is still starting), then this store's Redis
 * namespace. The prefix is claimed for the store before the process goes on, unless Redis is unreachable
 * (then in the background: a Redis that is down does not stop the API from serving commands). With
 * SNAPCAT_ON_FOREIGN_READ_MODEL=refuse the claim is always awaited, and another store's state on the prefix
 * exits 2 with the message.
 */
export async function openStoreNamespace(config: Config, store: EventStore, log: Logger): Promise<string> {
  const storeId = await identifyStore(store, log);
  redisHealth.heartbeat(config.redisUrl);
  const namespace = storeNamespace(config.queuePrefix, storeId);
  log.info('event store identified', { store: storeId, redisNamespace: namespace });
  const redis = connectRedis(config.redisUrl);
  const logView = storeLogView(store);
  let wentOn = false;
  const claim = claimStoreNamespace(
    redis,
    config.queuePrefix,
    storeId,
    config.onForeignReadModel,
    log,
    logView,
    () => wentOn,
  ).finally(() => closeRedis(redis));
  // Once claimed, kept recorded (a FLUSHDB under the running process took the record with it).
  void claim.then(
    () =>
      redisHealth.everyBeat(async (beat) => {
        await keepStoreRecorded(beat, config.queuePrefix, storeId, log);
        if (logView) await markTimeline(beat, namespace, logView);
      }),
    () => undefined,
  );
  const refused = (error: ForeignStateError) => stopMisconfigured(log, error.message);
  if (config.onForeignReadModel === 'refuse') {
    try {
      await claim;
    } catch (error) {
      if (!(error instanceof ForeignStateError)) throw error;
      refused(error);
    }
  } else {
    claim.catch((error: unknown) => {
      // Finished in the background (Redis came back after the start): this process's consumers run on that
      // state already, so it stops, loudly, rather than project and enqueue from another timeline's
      // positions (a walkthrough's restored backup skipped every event written since). A restart claims
      // again before they start.
      if (error instanceof ForeignStateError) refused(error);
      log.error('could not record the store on the Redis prefix', { error: String(error) });
    });
    await settledOrUnreachable(claim, redis);
    wentOn = true;
  }
  return namespace;
}

/** The longest a start waits for the claim (a drop of a large namespace may take longer: it goes on). */
const CLAIM_WAIT_MS = 5000;

/**
 * Waits for the claim while Redis answers, so that the process's queue workers and consumers start after it,
 * not on state a drop (another timeline's or a foreign store's, decision 0012) is deleting under them (BullMQ
 * logged its own jobs' keys missing). Not while Redis is unreachable, nor for more than CLAIM_WAIT_MS (a
 * proxy that accepts connections to a Redis that is down, a cluster slot without a master): the API serves
 * commands meanwhile, and the claim finishes in the background.
 */
function settledOrUnreachable(claim: Promise<void>, redis: Redis): Promise<void> {
  return new Promise((resolve) => {
    const unreachable = () => resolve();
    const timer = setTimeout(resolve, CLAIM_WAIT_MS);
    redis.once('error', unreachable);
    void claim.then(resolve, resolve).finally(() => {
      clearTimeout(timer);
      redis.off('error', unreachable);
    });
  });
}

/**
 * Fails fast: a store that does not answer within a few seconds of start is a misconfiguration or an
 * outage the operator must see, in one line and an exit code, not a service that seems up. (Supervisors
 * restart it; compose waits for the store's healthcheck first.) A store that refuses the login, or the
 * identity stream, stops it at once: waiting does not change credentials.
 */
async function identifyStore(store: EventStore, log: Logger, waitMs = 5000): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await storeIdentity(store);
    } catch (error) {
      const retry = error instanceof StoreUnavailableError && !(error instanceof StoreAccessDeniedError);
      if (!retry || Date.now() >= deadline) {
        log.error('cannot read the event store: stopping', { error: String(error) });
        process.exit(1);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * Runs the shutdown once on SIGTERM or SIGINT and exits 0, or 1 if it fails or outlasts the grace. First
 * `drain`: what talks to Redis or to clients (HTTP server, workers, projector), abandoned with a warning
 * two seconds before the grace ends, since a Redis that is down never lets it finish. Then `close`: flush
 * and close the event store, which must always happen (a clean SQLite close leaves no -wal behind).
 *
 * A store that fails beyond repair (the embedded store's writer thread stopped: every call fails from then
 * on) runs the same shutdown and exits 1, so that the supervisor (systemd, Docker's restart policy,
 * Kubernetes) starts a new process: staying up unready would need a person to notice, as liveness is fine.
 */
export function stopOnSignalOrStoreFailure(
  log: Logger,
  store: Pick<EventStore, 'onUnrecoverable'>,
  graceMs: number,
  steps: { drain: () => Promise<void>; close: () => Promise<void> },
): void {
  let stopping = false;
  const stop = (why: { signal: string } | { failure: string }, exitCode: 0 | 1) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    log.info('stopping', why);
    // Both deadlines keep the event loop alive (not unref'd): once the drain has closed the HTTP server and
    // Redis, a step waiting on a promise that never settles (a stream whose connection is gone) would
    // otherwise leave node an empty loop, and node ends such a process at once, with exit code 0, the store
    // not closed and nothing said.
    setTimeout(() => {
      log.error('shutdown: SNAPCAT_SHUTDOWN_GRACE ran out before the store was closed; exiting 1', {
        graceMs,
      });
      process.exit(1);
    }, graceMs);
    const drainMs = Math.max(graceMs - 2000, graceMs / 2);
    const abandoned = new Promise<boolean>((resolve) => setTimeout(() => resolve(true), drainMs));
    const drained = steps.drain().then(
      () => false,
      (error: unknown) => {
        log.warn('shutdown: draining failed; closing the store', { error: String(error) });
        return false;
      },
    );
    Promise.race([drained, abandoned])
      .then(async (timedOut) => {
        if (timedOut) log.warn('shutdown: stopped waiting for Redis and clients', { afterMs: drainMs });
        await redisHealth.stopHeartbeat();
        await steps.close();
        log.info('stopped', { ms: Date.now() - started, drained: !timedOut });
        process.exit(exitCode);
      })
      .catch((error: unknown) => {
        log.error('stop failed', { error: String(error) });
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop({ signal: 'SIGTERM' }, 0));
  process.on('SIGINT', () => stop({ signal: 'SIGINT' }, 0));
  store.onUnrecoverable?.((error) => {
    log.error('the event store cannot go on: stopping with exit code 1 so that a new process takes over', {
      error: error.message,
    });
    stop({ failure: error.message }, 1);
  });
}

/** What the start asks of the storage: its roots' claims (`SnapshotStorage.claimRoots`, decision 0044). */
interface ClaimableStorage {
  claimRoots(catalogue: string): Promise<{ root: string; catalogue: string | null }[]>;
}

/**
 * Claims the storage roots at start (an empty one is this catalogue's from now on), and stops the process
 * (exit 2) when a root is another catalogue's: that catalogue's orphan sweep would delete every file this one
 * wrote there (a walkthrough's second deployment on one root lost a live checkpoint's shared file and a
 * persisted manifest). A storage that cannot be asked now is said, and the sweeps ask again.
 */
export async function refuseOthersRoots(
  config: Pick<Config, 'eventStore'>,
  storage: ClaimableStorage,
  store: EventStore,
  log: Logger,
): Promise<void> {
  if (!storeOutlivesProcess(config.eventStore)) return; // a store in memory claims nothing
  let catalogue: string;
  let claims: { root: string; catalogue: string | null }[];
  try {
    catalogue = await storeIdentity(store);
    claims = await storage.claimRoots(catalogue);
  } catch (error) {
    if ((error as Error | null)?.name === 'StorageConfigurationError')
      stopMisconfigured(log, (error as Error).message);
    log.warn('the storage roots could not be claimed at start: the orphan sweep tries again', {
      error: String(error),
    });
    return;
  }
  const others = claims.filter((claim) => claim.catalogue !== null && claim.catalogue !== catalogue);
  if (others.length === 0) return;
  const named = others.map((claim) => `${claim.root} (event store ${claim.catalogue})`).join(', ');
  const message =
    `storage roots claimed by another catalogue: ${named}; this one is event store ${catalogue}. Its orphan ` +
    'sweep would delete the files this one writes there: give this catalogue roots of its own, or, once the ' +
    "other catalogue is gone for good, delete the root's .snapcat-root.json (npx snapcat storage claim then " +
    'gives it to this one)';
  stopMisconfigured(log, message);
}

/** A setting the process cannot run with: said in the log and on stderr, and exit 2 (as a bad variable). */
function stopMisconfigured(log: Logger, message: string, logged = message): never {
  log.error(logged);
  process.stderr.write(`snapcat: ${message}\n`);
  process.exit(2);
}
