import type { Worker } from 'bullmq';
import {
  OwnersUnknownError,
  recentJobEventPosition,
  type CataloguedJobIds,
  type CommandBus,
} from '@snapcat/application';
import type { EventStore } from '@snapcat/event-store';
import { ReadModel } from '@snapcat/read-model';
import {
  connectRedis,
  logQueueErrors,
  openQueues,
  connectionState,
  storeOutlivesProcess,
  workerKeys,
  type Config,
  type LogFn,
} from '@snapcat/runtime';
import type { SnapshotStorage } from '@snapcat/storage';
import { openClusters, openWebhooks } from '@snapcat/webhooks';
import { Enqueuer } from './enqueue';
import { ProcessManager } from './process-manager';
import { startProcessors } from './processors';
import { UrgentWork } from './urgent-work';
import { ScheduleIndex } from './schedule-index';
import { FlinkEnqueuer, startFlinkWorker, type FlinkApis } from './flink';
import { flinkApisFrom, servesNamespace } from './flink-clusters';

export interface WorkerDeps {
  config: Config;
  /** This store's Redis namespace (openStoreNamespace). */
  prefix: string;
  store: EventStore;
  bus: CommandBus;
  storage: SnapshotStorage;
  log: { info: LogFn; warn: LogFn; error: LogFn };
  /** The Flink clusters managed jobs run on (issue 19); without them a managed job's work waits and retries. */
  flinkApis?: FlinkApis;
  /** How often each managed job's mirror polls Flink (SNAPCAT_FLINK_POLL). */
  flinkPollMs?: number;
}

/** The orphan sweep's settings: a store in memory claims no storage root, so deletes no orphan (decision 0044). */
const orphanSweep = (config: Config) => ({
  orphanGraceMs: config.orphanGraceMs,
  deleteOrphans: config.deleteOrphans,
  claimsRoots: storeOutlivesProcess(config.eventStore),
});

/** Starts the process manager (active on one process at a time) and the BullMQ workers (on every process). */
export async function startWorkers({
  config,
  prefix,
  store,
  bus,
  storage,
  log,
  flinkApis,
  flinkPollMs,
}: WorkerDeps) {
  const redis = connectRedis(config.redisUrl);
  const connection = connectRedis(config.redisUrl);
  const keys = workerKeys(prefix);
  const queues = openQueues(connection, prefix);
  for (const queue of Object.values(queues)) logQueueErrors(queue, log.error, { queue: queue.name });
  const schedules = new ScheduleIndex(redis, prefix);
  const enqueue = new Enqueuer(queues, redis, keys.knownJobs, schedules, {
    discardAttempts: config.discardAttempts,
    discardBackoffMs: config.discardBackoffMs,
    retentionSweepMs: config.retentionSweepMs,
    now: () => Date.now(),
  });
  const pollMs = flinkPollMs ?? config.flinkPollMs;
  const flink = new FlinkEnqueuer(queues.flink, redis, prefix, pollMs);
  // Firing periodic savepoints is due on the second: the process manager and the sweep wait while it runs.
  const common = { store, bus, redis, log, urgent: new UrgentWork() };
  const readModel = new ReadModel(redis, prefix);
  const catalogued = cataloguedJobIds(enqueue, readModel, store);
  const processManager = new ProcessManager({ ...common, enqueue, flink, keyPrefix: prefix });
  const workers: Worker[] = startProcessors(connection, prefix, {
    ...common,
    storage,
    keys,
    schedules,
    catalogued,
    fence: readModel.deletionFence(),
    ...orphanSweep(config),
  });
  // The clusters registered through the API (their header values unsealed with SNAPCAT_SECRET_KEY).
  const clusters = openClusters(config, store);
  const apis: FlinkApis = flinkApis ?? flinkApisFrom(clusters, log);
  workers.push(
    startFlinkWorker(connection, prefix, {
      bus,
      apis,
      serves: servesNamespace(clusters),
      catalogued,
      pollMs,
      redis,
      keyPrefix: prefix,
      storage,
      queue: queues.flink,
      log,
    }),
  );
  processManager.start();
  const webhooks = openWebhooks(config, prefix, store, log);
  webhooks?.startDelivery();
  log.info('workers started', { prefix, webhooks: webhooks ? 'on' : 'off' });
  logDeletionCaveats(storage, log);

  return {
    processManager,
    queues,
    /** Whether the workers' Redis answers (a workers process's /readyz). */
    redisState: () => connectionState(redis),
    /** Undefined when webhooks are disabled (no SNAPCAT_SECRET_KEY outside development). */
    webhooks,
    /** Graceful: stop consuming the log, let active jobs finish, close the connections. */
    async close() {
      await processManager.stop();
      await webhooks?.close();
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await Promise.all([redis.quit(), connection.quit()]).catch(() => undefined);
    },
  };
}
export type RunningWorkers = Awaited<ReturnType<typeof startWorkers>>;

/** What the storage says deletions there cannot do, logged; in the background, so a slow store holds nothing up. */
function logDeletionCaveats(storage: SnapshotStorage, log: WorkerDeps['log']): void {
  void storage
    .deletionCaveats?.()
    .then((caveats) => caveats.forEach((caveat) => log.warn(caveat)))
    .catch(() => undefined);
}

/**
 * Whose snapshot a path a managed job was restored from is: a savepoint's candidates are the jobs the process
 * manager knows; an imported snapshot's, the read model's index of directories. That index not complete yet
 * (the projector catching up, or none running) fails the poll, which is retried: a restore recorded without
 * its hold would let the owner's discard delete what the job restored from.
 */
function cataloguedJobIds(
  enqueue: Enqueuer,
  readModel: ReadModel,
  store: EventStore,
): Required<CataloguedJobIds> {
  const notIndexed = (places: readonly string[]) =>
    new OwnersUnknownError(
      `cannot tell whose snapshot ${places.slice(0, 3).join(', ')}${places.length > 3 ? ', …' : ''} is: the read model has not indexed every job yet (is a projector running?)`,
    );
  return {
    startingWith: (idPrefix) => enqueue.knownJobsStartingWith(idPrefix),
    async withSnapshotsIn(directories) {
      const found = await readModel.jobIdsWithSnapshotsIn(directories);
      if (found) return found;
      throw notIndexed(directories);
    },
    withSnapshotsTouching: (locations, { asOfNow } = { asOfNow: true }) =>
      asked(locations, () => readModel.jobIdsWithSnapshotsTouching(locations), asOfNow),
    referencingFiles: (files, directories) =>
      asked([...files, ...directories], () => readModel.jobIdsReferencingFiles(files, directories)),
  };

  /**
   * A deletion's question to the read model, `asOfNow`: once the newest job event is projected (an import or
   * an acknowledgement recorded a moment ago is seen). Undefined, it cannot tell yet.
   */
  async function asked<T>(places: readonly string[], ask: () => Promise<T | undefined>, asOfNow = true) {
    const newest = asOfNow ? await recentJobEventPosition(store) : undefined;
    const found = (!newest || (await readModel.waitFor(newest, CATCH_UP_MS))) && (await ask());
    if (found) return found;
    throw notIndexed(places);
  }
}

/**
 * How long a deletion's owner lookup waits for the projection of the newest job event (the lag is tens of
 * milliseconds); longer, the deletion waits its turn again (`discard`), with the storage worker's slot free.
 */
const CATCH_UP_MS = 2000;
