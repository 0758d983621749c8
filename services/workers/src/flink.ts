import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { posix } from 'node:path';
import {
  DelayedError,
  UnrecoverableError,
  Worker,
  type ConnectionOptions,
  type Job,
  type Queue,
} from 'bullmq';
import {
  FormatType,
  Location,
  MAX_FLINK_TIMEOUT_MS,
  isTerminal,
  isWithin,
  normaliseLocation,
  FLINK_METADATA_FILE,
  parentOf,
  pendingWhere,
  sizeDisposedByFlink,
  disposedByFlink,
  takenInFlink,
  type Command,
  type CommandOf,
  type FlinkCheckpointReport,
  type JobState,
  type Obligation,
  type SnapshotState,
} from '@snapcat/domain';
import {
  JobDeletedError,
  otherJobsSnapshotsAt,
  type CataloguedJobIds,
  type CommandBus,
} from '@snapcat/application';
import {
  FlinkError,
  type FlinkCheckpoint,
  type FlinkCheckpoints,
  type FlinkJob,
  type FlinkOperationStatus,
  type FlinkRestClient,
} from '@snapcat/flink';
import type { SnapshotStorage } from '@snapcat/storage';
import { QUEUES, logQueueErrors, type LogFn } from '@snapcat/runtime';
import { executeUnlessRejected } from './execute';
import { KEEP } from './queues';

/** What the connector asks of a Flink cluster: the part of `@snapcat/flink`'s client it uses. */
export type FlinkApi = Pick<
  FlinkRestClient,
  | 'jobsOverview'
  | 'job'
  | 'checkpointConfig'
  | 'checkpoints'
  | 'triggerSavepoint'
  | 'stopWithSavepoint'
  | 'savepointStatus'
  | 'disposeSavepoint'
  | 'disposalStatus'
>;

/** The Flink API of a cluster by its registered name; throws when the cluster is not registered. */
export type FlinkApis = (cluster: string) => Promise<FlinkApi>;

export const FLINK_QUEUE = QUEUES.flink;
export interface MirrorJob {
  jobId: string;
}
export interface StatusJob {
  cluster: string;
}

/** The managed jobs of a cluster (Redis set), whose statuses its status poll follows. */
export const clusterJobsKey = (keyPrefix: string, cluster: string) => `${keyPrefix}:flink:jobs:${cluster}`;
export interface SavepointJob {
  jobId: string;
  snapshotId: number;
  /**
   * The id Flink answered the trigger with (TriggerResponse's `request-id`), once it did: later runs of the job
   * follow that operation and never trigger again. A server may answer with an id of its own.
   */
  requestId?: string;
  /**
   * When the trigger Flink answered was sent (ms), as versions before `mayHaveStartedAt` kept it: read for
   * their jobs only (a job of this version always has `mayHaveStartedAt`, which is never later).
   */
  triggeredAt?: number;
  /**
   * When the first attempt that may have started a savepoint was sent (ms): kept before each attempt is sent
   * (a crash leaves it), taken back when Flink's answer shows that attempt started nothing. A savepoint started
   * by an attempt whose answer was lost is looked for from then on, not from the answered attempt's time.
   */
  mayHaveStartedAt?: number;
  /** Since when (ms) Flink has answered the trigger 404 (job not found), attempt after attempt. */
  notFoundSince?: number;
  /**
   * The last attempt failed because the cluster did not answer (unreachable, a timeout, a 5xx, its circuit
   * open): the cluster's status poll runs it again as soon as the cluster answers (`retryOnceAnswered`), rather
   * than after BullMQ's backoff, which reaches a minute within a few attempts.
   */
  waitsForCluster?: boolean;
}
export interface DisposeJob {
  jobId: string;
  snapshotId: number;
  path: string;
  /** Flink's trigger id of the disposal under way, once requested: later runs of the job follow it. */
  triggerId?: string;
}

export const flinkJobIds = {
  mirror: (jobId: string) => `flink-mirror-${jobId}`,
  lastMirror: (jobId: string) => `flink-last-mirror-${jobId}`,
  status: (cluster: string) => `flink-status-${cluster}`,
  savepoint: (jobId: string, snapshotId: number) => `flink-savepoint-${jobId}-${snapshotId}`,
  dispose: (jobId: string, snapshotId: number) => `flink-dispose-${jobId}-${snapshotId}`,
};

/**
 * Flink's trigger ids are 32 lowercase hex (`TriggerId`). A periodic savepoint's already is (R48, one slot
 * each, never used again); any other snapcat trigger id is hashed with its snapshot's id to one, the same
 * each time, so that a retried request is answered with the operation it started instead of taking a second
 * savepoint. With the snapshot's id: a trigger id the catalogue forgot (compacted, decision 0035) and a client
 * used again makes another snapshot, which Flink (keeping an operation's result for
 * `rest.async.store-duration`, 5 minutes) answered with the earlier savepoint's result, a failure or a
 * savepoint since disposed of (a review).
 */
export function flinkTriggerId({
  triggerId,
  snapshotId,
  triggerType,
}: Pick<SnapshotState, 'triggerId' | 'snapshotId' | 'triggerType'>): string {
  // A client's own 32-hex id is hashed too: it may be used again once the catalogue forgot it.
  if (triggerType === 'PERIODIC' && /^[0-9a-f]{32}$/.test(triggerId)) return triggerId;
  return createHash('sha256').update(`${snapshotId}/${triggerId}`).digest('hex').slice(0, 32);
}

/**
 * Flink's `Path.toString()` writes `//authority` only when the URI has one: a local path is `file:/…`, and a
 * file system's default authority too (`hdfs:///flink/sp` is reported as `hdfs:/flink/sp/…`, `viewfs:/…`).
 * The catalog's locations are `<scheme>:///…` URIs or plain paths: without it a savepoint Flink reported was
 * not found under its own directory (and was catalogued twice), nor a restore's source (no hold).
 */
export function catalogLocation(flinkPath: string): string {
  return flinkPath.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*):\/(?!\/)/, '$1:///');
}

/** A path Flink reported, as a catalog location; null where it is none the catalog can hold (a relative path). */
function reportedLocation(flinkPath: string | null): string | null {
  const path = flinkPath === null ? null : catalogLocation(flinkPath);
  return path !== null && Location.safeParse(path).success ? path : null;
}

/** Flink's CheckpointStatistics in the domain's terms (R68). */
export function checkpointReport(stats: FlinkCheckpoint): FlinkCheckpointReport {
  // FULL_CHECKPOINT and every savepoint share no files; CHECKPOINT is "full or incremental" (R58).
  const full = stats.isSavepoint || /FULL|SAVEPOINT/.test(stats.checkpointType);
  return {
    id: stats.id,
    status: stats.status,
    isSavepoint: stats.isSavepoint,
    checkpointType: full ? 'FULL' : 'INCREMENTAL',
    triggerTimestamp: stats.triggerTimestamp,
    ...(stats.latestAckTimestamp > 0 ? { latestAckTimestamp: stats.latestAckTimestamp } : {}),
    stateSize: stats.stateSize,
    checkpointedSize: stats.checkpointedSize,
    externalPath: reportedLocation(stats.externalPath),
    ...(stats.externallyAddressable ? {} : { externallyAddressable: false as const }),
    discarded: stats.discarded,
    failureMessage: stats.failureMessage,
    ...(stats.isSavepoint && isFormatType(stats.savepointFormat)
      ? { savepointFormat: stats.savepointFormat }
      : {}),
  };
}

const isFormatType = (format: string | null): format is FormatType => FormatType.safeParse(format).success;

export interface FlinkConnectorDeps {
  bus: CommandBus;
  apis: FlinkApis;
  /**
   * Whether the cluster serves the namespace now (decision 0033): an admin may narrow a cluster after jobs
   * were registered on it, and snapcat then drives none of theirs through it with the admin's credentials.
   */
  serves: (cluster: string, namespace: string) => Promise<boolean>;
  /** The catalogued jobs a path may be a snapshot of: whose snapshot a managed job was restored from in Flink. */
  catalogued?: CataloguedJobIds;
  pollMs: number;
  /**
   * Where snapcat can see the savepoints' files (its storage roots): a disposal Flink reports failed for a
   * savepoint that is no longer there was done by an earlier request whose answer was lost.
   */
  storage?: Pick<SnapshotStorage, 'isWithinRoots' | 'holdsFiles'>;
  /** The managed jobs of each cluster (`clusterJobsKey`), for its status poll. */
  redis: Redis;
  keyPrefix: string;
  /** How long a savepoint's status is polled before the job is tried again later. */
  statusPollMs?: number;
  /**
   * The connector's queue: a savepoint job waiting out its backoff after the cluster did not answer is run
   * again as soon as the cluster's status poll gets an answer. Without it, the backoff alone decides.
   */
  queue?: Pick<Queue, 'getJob'>;
  log: { info: LogFn; warn: LogFn; error: LogFn };
}

/** Enqueues the connector's work (R67, R68): idempotent, like every Enqueuer method. */
export class FlinkEnqueuer {
  constructor(
    private readonly queue: Queue,
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly pollMs: number,
  ) {}

  /**
   * The job's mirror: every poll interval, at an offset of its own, so that 1,000 jobs do not poll at once;
   * and its cluster's status poll, one request for every job of the cluster (`GET /jobs/overview`), so that
   * each job costs one request per interval.
   */
  async mirror(jobId: string, cluster: string): Promise<void> {
    await this.redis.sadd(clusterJobsKey(this.keyPrefix, cluster), jobId);
    await this.queue.upsertJobScheduler(
      flinkJobIds.status(cluster),
      { every: this.pollMs },
      {
        name: 'status',
        data: { cluster },
        opts: { removeOnComplete: { count: 10 }, removeOnFail: { count: 100 } },
      },
    );
    await this.queue.upsertJobScheduler(
      flinkJobIds.mirror(jobId),
      { every: this.pollMs, offset: mirrorOffset(jobId, this.pollMs) },
      {
        name: 'mirror',
        data: { jobId },
        opts: { removeOnComplete: { count: 10 }, removeOnFail: { count: 100 } },
      },
    );
  }

  /**
   * One read of the history of a managed job Flink had ended when it was registered (R67): it is not polled,
   * and what Flink's history kept of it (its last checkpoints, a final savepoint) is catalogued all the same.
   */
  async lastMirror(jobId: string): Promise<void> {
    await this.queue.add(
      'lastMirror',
      { jobId },
      {
        jobId: flinkJobIds.lastMirror(jobId),
        attempts: 10,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: true,
        removeOnFail: { count: 100 },
      },
    );
  }

  async stopMirror(jobId: string, cluster: string): Promise<void> {
    await this.queue.removeJobScheduler(flinkJobIds.mirror(jobId));
    await this.redis.srem(clusterJobsKey(this.keyPrefix, cluster), jobId);
  }

  /**
   * A job whose stream was hard-deleted: its mirror stops. Its cluster can no longer be read from its state;
   * the cluster's status poll drops it from the cluster's jobs when it meets it.
   */
  async forget(jobId: string): Promise<void> {
    await this.queue.removeJobScheduler(flinkJobIds.mirror(jobId));
  }

  async savepoint(jobId: string, snapshotId: number): Promise<void> {
    await this.queue.add(
      'savepoint',
      { jobId, snapshotId },
      {
        ...KEEP,
        jobId: flinkJobIds.savepoint(jobId, snapshotId),
        attempts: 20,
        backoff: { type: 'exponential', delay: 1000 },
      },
    );
  }

  async dispose(jobId: string, snapshotId: number, path: string): Promise<void> {
    await this.queue.add(
      'dispose',
      { jobId, snapshotId, path },
      {
        ...KEEP,
        jobId: flinkJobIds.dispose(jobId, snapshotId),
        attempts: 20,
        backoff: { type: 'exponential', delay: 1000 },
      },
    );
  }

  /** Enqueues a managed job's obligation to the connector; any other is the Enqueuer's. */
  async owe(jobId: string, obligation: Obligation): Promise<void> {
    if (obligation.kind === 'mirror') return this.mirror(jobId, obligation.cluster);
    if (obligation.kind === 'lastMirror') return this.lastMirror(jobId);
    if (obligation.kind === 'flinkSavepoint') return this.savepoint(jobId, obligation.snapshotId);
    if (obligation.kind === 'dispose') return this.dispose(jobId, obligation.snapshotId, obligation.path);
  }

  /** What a managed job's state still owes the connector (`owed`: its `obligations`): mirror, savepoints, disposals. */
  async reconcile(jobId: string, owed: readonly Obligation[]): Promise<void> {
    for (const obligation of owed) await this.owe(jobId, obligation);
  }
}

/**
 * A job's offset within the poll interval, from a hash of its whole id: Flink's fixed job ids (HA application
 * mode, operators that derive them) are a 32-bit hash followed by zeros, so ids of one cluster may share
 * their first digits, and an offset taken from those would put every such job's poll on the same instant.
 */
export function mirrorOffset(jobId: string, pollMs: number): number {
  return createHash('sha256').update(jobId).digest().readUInt32BE(0) % pollMs;
}

/** Runs the connector's jobs: mirrors, savepoints taken in Flink, disposals through Flink. */
export function startFlinkWorker(
  connection: ConnectionOptions,
  prefix: string,
  deps: FlinkConnectorDeps,
): Worker {
  const worker = new Worker<MirrorJob | StatusJob | SavepointJob | DisposeJob>(
    FLINK_QUEUE,
    async (job, token) => {
      try {
        if (job.name === 'mirror' || job.name === 'lastMirror')
          return await mirror(job.data as MirrorJob, deps);
        if (job.name === 'status') return await followStatuses(job.data as StatusJob, deps);
        if (job.name === 'savepoint') return await savepoint(job as Job<SavepointJob>, token, deps);
        if (job.name === 'dispose') return await dispose(job as Job<DisposeJob>, token, deps);
      } catch (error) {
        // The job's stream was hard-deleted: there is nothing left to mirror, take or dispose of for it.
        if (error instanceof JobDeletedError) return { skipped: 'job deleted' };
        // A poll while the cluster's circuit is open sent nothing: the outage is logged once (and recorded),
        // the next poll asks again. A savepoint or a disposal fails, to be retried by its own backoff.
        const polling = job.name === 'mirror' || job.name === 'status';
        if (polling && error instanceof FlinkError && error.details.failedFast)
          return { skipped: 'circuit open' };
        if (job.name === 'savepoint') await noteWhetherClusterAnswered(job as Job<SavepointJob>, error);
        throw error;
      }
      throw new UnrecoverableError(`unknown flink job ${job.name}`);
    },
    { connection, prefix, concurrency: 32, lockDuration: 30_000, stalledInterval: 10_000 },
  );
  worker.on('failed', (job, error) =>
    deps.log.warn('flink job failed', { job: job?.id, attempt: job?.attemptsMade, error: error.message }),
  );
  logQueueErrors(worker, deps.log.error, { queue: FLINK_QUEUE });
  return worker;
}

/** The connector's commands, audited as its own. */
const execute = <C extends Command>(bus: CommandBus, command: C) =>
  executeUnlessRejected(bus, command, { correlationId: `flink-${command.type}`, actor: 'flink-connector' });

/**
 * R68: records what Flink's checkpoint history reports: one request per job per poll interval. The first
 * time, it also reads the job's checkpoint retention (R67: a warning when Flink would delete its
 * checkpoints on failure).
 */
async function mirror({ jobId }: MirrorJob, deps: FlinkConnectorDeps) {
  const state = await deps.bus.load(jobId);
  if (!state.source) return { skipped: 'not managed' };
  const refusal = await clusterRefusal(state, deps);
  if (refusal) return warnRefusedOnce(state, refusal, deps);
  refusedJobs.over(jobId);
  const api = await deps.apis(state.source.cluster);
  if (!state.flinkRetention) await readRetentionOnce(api, jobId, deps);
  // A job without checkpoint statistics (404: no checkpoint coordinator, or a server's job that does not
  // checkpoint) has nothing to mirror; its savepoints and status are followed all the same (FLIP-10).
  const stats = await unlessNotFound(api.checkpoints(jobId));
  if (!stats) return { skipped: 'no checkpoint statistics' };
  const { latest, unreadable } = stats;
  if (unreadable > 0) {
    deps.log.warn('flink checkpoint history entries left out: they could not be read', {
      job: jobId,
      unreadable,
    });
  }
  const checkpoints = mirroredCheckpoints(stats)
    .sort((a, b) => a.id - b.id)
    .map(checkpointReport);
  const rerun = idsWentBack(state, checkpoints);
  if (rerun) return warnRerunOnce(state, rerun, deps);
  rerunJobs.over(jobId);
  const restored = latest.restored && {
    ...latest.restored,
    externalPath: reportedLocation(latest.restored.externalPath),
  };
  // A restore not seen before, from another catalogued job's snapshot: recorded with that job, which holds it.
  const fromJobId =
    restored?.externalPath && restored.restoreTimestamp > (state.flinkRestore?.restoredAt ?? -1)
      ? await restoredFromOtherJob(jobId, restored.externalPath, deps)
      : undefined;
  const { deleted, completed } = await outOfSight(state, checkpoints, deps);
  const recorded = await execute(deps.bus, {
    type: 'RecordFlinkCheckpoints',
    jobId,
    checkpoints,
    ...(restored ? { restored: { ...restored, ...(fromJobId ? { fromJobId } : {}) } } : {}),
    ...(deleted.length > 0 ? { deleted } : {}),
    ...(completed.length > 0 ? { completed } : {}),
  });
  const newestTriggeredAt = Math.max(0, ...checkpoints.map((c) => c.triggerTimestamp));
  return { reported: checkpoints.length, newestTriggeredAt, ...(recorded?.reply ?? {}) };
}

/**
 * How far below Flink's newest checkpoint id `outOfSight` looks: Flink retains no more unless its
 * num-retained is about this high, and a previous run's retained checkpoint (which Flink never deletes) is
 * looked for at most this many times rather than at every completion for good.
 */
const OUT_OF_SIGHT_IDS_LOOKED_AT = 100;

/**
 * Decision 0019: the mirrored checkpoints whose end Flink's history never showed. Flink deletes the
 * checkpoints a completion subsumes (`CheckpointSubsumeHelper`, beyond num-retained); with num-retained at
 * least `web.checkpoints.history`, or after a JobManager failover (the new one's history starts empty), such
 * a checkpoint has left the history and is never reported `discarded`. Likewise one the mirror saw in progress
 * may complete and leave the history between two polls (more completions than the history holds, a failover):
 * the next recorded completion would abort it as subsumed while Flink retains it. So when the history shows a
 * completion not recorded yet, each mirrored checkpoint older than anything the history reports is looked for
 * in snapcat's storage roots: a completed one with no file left is `deleted` (Flink deletes asynchronously:
 * one still being deleted is found at the next completion), a pending one whose `_metadata` is there is
 * `completed` (Flink writes it when it finalises the checkpoint, `PendingCheckpoint.finalizeCheckpoint`).
 * Retained ones (a previous run's, one restored from in NO_CLAIM) are still there and stay. Where snapcat's
 * storage does not show Flink's newest checkpoint (outside the roots, another volume at the same path, a
 * server that writes no files) nothing is said. Ids more than OUT_OF_SIGHT_IDS_LOOKED_AT below the newest are
 * not looked for (one listing each per completion).
 */
export async function outOfSight(
  state: JobState,
  reports: readonly FlinkCheckpointReport[],
  deps: Pick<FlinkConnectorDeps, 'storage'>,
): Promise<{ deleted: number[]; completed: number[] }> {
  const found = { deleted: [] as number[], completed: [] as number[] };
  const recordedAs = (flinkId: number) => state.snapshots.get(state.flinkCheckpoints.get(flinkId) ?? -1);
  const completed = reports.filter((c) => c.status === 'COMPLETED');
  // A completion not recorded yet (new, or recorded in progress): not one recorded discarded since, nor
  // one compacted out of the state, which every later poll of the same history would report again.
  const isNew = (c: FlinkCheckpointReport) =>
    c.id > state.flinkCheckpointFloor && [undefined, 'PENDING'].includes(recordedAs(c.id)?.status);
  if (!completed.some(isNew)) return found;
  const ids = reports.map((c) => c.id);
  const [oldestReported, lowest] = [Math.min(...ids), Math.max(...ids) - OUT_OF_SIGHT_IDS_LOOKED_AT];
  // Only a storage that shows Flink's newest checkpoint is the one Flink writes to (not another volume
  // mounted at the same path, not a server that writes no files), and only beside it: a path the mirror
  // made up for a checkpoint Flink reported without one may lie where Flink never wrote.
  const newest = completed
    .filter((c) => !c.isSavepoint && !c.discarded && c.externalPath)
    .at(-1)?.externalPath;
  if (!newest) return found;
  const beside = parentOf(newest);
  const candidates = [...state.flinkCheckpoints.keys()].filter((flinkId) => {
    const snapshot = recordedAs(flinkId);
    if (flinkId >= oldestReported || flinkId < lowest || snapshot?.kind !== 'CHECKPOINT') return false;
    const unfinished = snapshot.status === 'PENDING';
    if (!unfinished && (snapshot.status !== 'COMPLETED' || snapshot.discard)) return false;
    if (!snapshot.externallyAddressable) return false;
    return parentOf(snapshot.externalPath) === beside;
  });
  if (candidates.length === 0 || (await storageShows(newest, deps)) !== 'files') return found;
  for (const flinkId of candidates) {
    const { externalPath, status } = recordedAs(flinkId)!;
    if (status === 'PENDING') {
      const metadata = `${externalPath.replace(/\/+$/, '')}/${FLINK_METADATA_FILE}`;
      if ((await storageShows(metadata, deps)) === 'files') found.completed.push(flinkId);
    } else if ((await storageShows(externalPath, deps)) === 'nothing') found.deleted.push(flinkId);
  }
  return found;
}

/**
 * Decision 0032: the other catalogued job whose completed snapshot a managed job was restored from in Flink,
 * found as the API finds it for a restore by path (`otherJobsSnapshotsAt`), the candidates of a savepoint
 * from the known jobs, an imported snapshot's from the read model's index; none when there is no one owner.
 */
async function restoredFromOtherJob(jobId: string, path: string, deps: FlinkConnectorDeps) {
  const found = await otherJobsSnapshotsAt(deps.bus, deps.catalogued, jobId, path);
  // Flink restores from completed snapshots only (a pending one has no `_metadata` yet); one being discarded
  // is found too (decision 0047), but no hold can keep it.
  const completed = found.filter(
    ({ owner, snapshot }) => !owner.pending.has(snapshot.snapshotId) && snapshot.discard === undefined,
  );
  return completed.length === 1 ? completed[0]!.owner.jobId : undefined;
}

/** Flink answered 404: it has not got the job's statistics, or no longer knows an operation. */
const isNotFound = (error: unknown) => error instanceof FlinkError && error.kind === 'not-found';

/** The answer, or undefined where Flink answers 404 (what it has not got). */
async function unlessNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * What snapcat's storage roots show at a path: `files`, `nothing` left, or `unknown` (outside the roots, or
 * the storage failed). A savepoint disposal has no trigger id of the caller's: when the worker died between
 * asking Flink and noting the answer, the next attempt asks again, and Flink fails that one for a savepoint
 * already deleted: nothing there means the first disposal did it. A checkpoint Flink deleted out of its
 * history's sight shows nothing too (`outOfSight`).
 */
async function storageShows(
  path: string,
  { storage }: Pick<FlinkConnectorDeps, 'storage'>,
): Promise<'files' | 'nothing' | 'unknown'> {
  if (!storage || !(await storage.isWithinRoots(path).catch(() => false))) return 'unknown';
  const holds = await storage.holdsFiles(path).catch(() => undefined);
  return holds === undefined ? 'unknown' : holds ? 'files' : 'nothing';
}

/**
 * Whether the connector is following one of the job's savepoints in Flink (pending, taken by snapcat, not
 * past its deadline: one whose savepoint job was lost waits for no answer; the status recorded expires it).
 */
const followingSavepoint = (state: JobState): boolean =>
  pendingWhere(state, (snapshot) => takenInFlink(snapshot) && snapshot.deadline > Date.now()) !== undefined;

/**
 * A condition of a job that this process says once while it lasts, not at every poll of the job: `say` logs
 * it the first time, `over` forgets it, to be said again should it come back.
 */
class SaidOnce {
  private readonly said = new Set<string>();

  say(jobId: string, log: () => void): void {
    if (this.said.has(jobId)) return;
    this.said.add(jobId);
    log();
  }

  over(jobId: string): void {
    this.said.delete(jobId);
  }
}

/** The managed jobs this process has said are missing from their cluster's overview (said once, until back). */
const notInOverview = new SaidOnce();

/**
 * A managed job its JobManager does not list: not submitted yet, or gone (a JobManager restarted without HA,
 * Flink's job history expired). Its status cannot be followed, so it would stay as it is without a word: said
 * once (per process) while it lasts, for a job that has not ended.
 */
function warnUnknownOnce(jobId: string, current: JobState, cluster: string, deps: FlinkConnectorDeps) {
  if (isTerminal(current.status)) return;
  notInOverview.say(jobId, () =>
    deps.log.warn('managed job not in its Flink cluster’s job overview: its status is not followed', {
      job: jobId,
      cluster,
      status: current.status,
      why: 'not submitted yet, or gone from Flink (a JobManager restarted without HA, its job history expired)',
    }),
  );
}

/**
 * The statuses of a cluster's managed jobs follow Flink's (every JobStatus, with the usual termination
 * rules), read for all of them in one request per poll interval.
 */
async function followStatuses({ cluster }: StatusJob, deps: FlinkConnectorDeps) {
  const jobIds = await deps.redis.smembers(clusterJobsKey(deps.keyPrefix, cluster));
  if (jobIds.length === 0) return { jobs: 0 };
  const api = await deps.apis(cluster);
  const overview = new Map((await api.jobsOverview()).map((job) => [job.jobId, job]));
  let changed = 0;
  for (const jobId of jobIds) {
    const status = overview.get(jobId)?.state;
    const current = await deps.bus.loadUnlessDeleted(jobId);
    if (!current) {
      await deps.redis.srem(clusterJobsKey(deps.keyPrefix, cluster), jobId);
      continue;
    }
    if (!status) {
      warnUnknownOnce(jobId, current, cluster, deps);
      continue;
    }
    notInOverview.over(jobId);
    if (current.source?.cluster === cluster) await retryOnceAnswered(current, deps);
    if (current.source?.cluster !== cluster || status === current.status || isTerminal(current.status))
      continue;
    // A job of a namespace the cluster no longer serves: the id may now be another team's job there.
    if (!(await deps.serves(cluster, current.namespace))) continue;
    // While a savepoint snapcat took is in progress in Flink, Flink's answer for it says how it ended; a
    // status recorded first would abort it (R45) though Flink may have written it: a stop-with-savepoint
    // ends the job as soon as its savepoint is written, a job that fails while stopping
    // (StopWithSavepointStoppingException) or right after a savepoint restarts. The status waits for that
    // answer (it comes within a status poll, or the savepoint expires at its deadline); R66 then finishes a
    // stopped job itself. A savepoint Flink aborts because the job failed over is answered FAILED.
    if (followingSavepoint(current)) continue;
    const mirrored = await mirroredFirst(jobId, deps);
    if (!mirrored || overviewOlderThanHistory(overview.get(jobId)!, mirrored)) continue;
    if (await execute(deps.bus, { type: 'ChangeJobStatus', jobId, status })) changed += 1;
  }
  return { jobs: jobIds.length, changed };
}

/**
 * Whether the savepoint job failed because the cluster did not answer (kept in its data for
 * `retryOnceAnswered`): any other failure (Flink's 404 for a job it has not recovered yet, a 429) keeps its
 * backoff.
 */
async function noteWhetherClusterAnswered(job: Job<SavepointJob>, error: unknown): Promise<void> {
  const waitsForCluster = error instanceof FlinkError && error.transient;
  if (waitsForCluster === (job.data.waitsForCluster ?? false)) return;
  await job.updateData({ ...job.data, waitsForCluster });
}

/**
 * The cluster answered its status poll: the job's savepoints taken in Flink whose last attempt failed because
 * the cluster did not answer are run now, not at the end of BullMQ's exponential backoff (a walkthrough's
 * periodic savepoint waited 64 s after Flink was back). The job is the same BullMQ job, with the same trigger
 * id, run earlier: the schedule's slot still takes one savepoint at most (R48, R67).
 */
async function retryOnceAnswered(state: JobState, { queue }: Pick<FlinkConnectorDeps, 'queue'>) {
  if (!queue) return;
  for (const snapshotId of state.pending) {
    if (!takenInFlink(state.snapshots.get(snapshotId)!)) continue;
    const job = (await queue.getJob(flinkJobIds.savepoint(state.jobId, snapshotId))) as
      Job<SavepointJob> | undefined;
    if (!job?.data.waitsForCluster || !(await job.isDelayed())) continue;
    // Moved meanwhile (another worker's promotion, or its delay ran out): it runs anyway.
    await job.promote().catch(() => undefined);
  }
}

/**
 * Reads the job's checkpoint history before its new status is recorded (R68), so that what Flink completed
 * before the job stopped, failed or restarted is catalogued as completed: a stop from outside snapcat (the
 * Kubernetes operator, `flink stop`, the web UI) ends the job within a second of its savepoint, and the status
 * recorded first ended the mirror with that savepoint unread (a review lost it in 3 runs of 6); a checkpoint
 * completed just before a failover was aborted by RESTARTING (R45). When the history cannot be read now, the
 * status waits for the next poll, for a minute at most: a history Flink never answers must not freeze the
 * status (recorded then, said as an error).
 */
async function mirroredFirst(
  jobId: string,
  deps: FlinkConnectorDeps,
): Promise<{ newestTriggeredAt?: number } | false> {
  try {
    const mirrored = await mirror({ jobId }, deps);
    historyUnreadableSince.delete(jobId);
    return 'newestTriggeredAt' in mirrored ? { newestTriggeredAt: mirrored.newestTriggeredAt } : {};
  } catch (error) {
    const since = historyUnreadableSince.get(jobId) ?? Date.now();
    historyUnreadableSince.set(jobId, since);
    const fields = { job: jobId, error: (error as Error).message };
    if (Date.now() - since < HISTORY_WAIT_MS) {
      deps.log.warn(
        'flink job status not recorded yet: its checkpoint history could not be read first',
        fields,
      );
      return false;
    }
    historyUnreadableSince.delete(jobId);
    deps.log.error(
      'flink job status recorded without its checkpoint history, unreadable for a minute',
      fields,
    );
    return {};
  }
}

/**
 * Whether the history, read after the overview, shows a checkpoint Flink triggered after the job's last state
 * change (`last-modification`, both by the JobManager's clock): the job ran again since the overview's status
 * (Flink triggers checkpoints only while its tasks run), which is then no longer the job's. A RESTARTING read
 * just before the job ran again and took a checkpoint, recorded after the history read had recorded that
 * checkpoint pending, aborted it (R45) though Flink completed and retained it (a CI run). The next poll
 * reads the status afresh. Never for RUNNING, nor where Flink did not say when the job last changed.
 */
function overviewOlderThanHistory(job: FlinkJob, mirrored: { newestTriggeredAt?: number }): boolean {
  if (job.state === 'RUNNING' || job.lastModification === undefined) return false;
  return (mirrored.newestTriggeredAt ?? 0) > job.lastModification;
}
/** Since when each job's history could not be read before a status change (per process). */
const historyUnreadableSince = new Map<string, number>();
const HISTORY_WAIT_MS = 60_000;

/**
 * R67: takes a pending savepoint of a managed job in Flink (stop-with-savepoint for a terminating one),
 * with a trigger id derived from snapcat's, then follows its status until Flink says how it ended. The
 * trigger is sent once: later runs (the job is delayed while the savepoint is in progress) follow the id Flink
 * answered with. Flink keeps an operation's result for `rest.async.store-duration` (5 minutes) and not across
 * a JobManager failover: when it no longer knows the operation, the next attempt triggers again with the same
 * trigger id. A retry after a crash before the answer was noted does the same, and Flink, still holding the
 * operation, answers with the one already started (DispatcherCachedOperationsHandler).
 */
async function savepoint(job: Job<SavepointJob>, token: string | undefined, deps: FlinkConnectorDeps) {
  const { jobId, snapshotId } = job.data;
  const state = await deps.bus.load(jobId);
  const snapshot = state.snapshots.get(snapshotId);
  if (!state.source || !snapshot || snapshot.status !== 'PENDING') return { skipped: 'not pending' };
  const refusal = !job.data.requestId && (await clusterRefusal(state, deps));
  if (refusal) {
    // Not sent: the savepoint fails at once with the reason, as one Flink failed would.
    await execute(deps.bus, {
      type: 'RecordFlinkSavepoint',
      jobId,
      snapshotId,
      outcome: { status: 'FAILED', cause: refusal },
    });
    return { outcome: 'FAILED', refused: refusal };
  }
  const api = await deps.apis(state.source.cluster);
  let requestId = job.data.requestId;
  if (!requestId) {
    const sent = await sendTrigger(job, api, snapshot, deps);
    if ('refused' in sent) return { outcome: 'FAILED', refused: sent.refused };
    requestId = sent.requestId;
  }
  const since = job.data.mayHaveStartedAt ?? job.data.triggeredAt;
  const outcome = await followed(
    job,
    () => savepointStatus(api, state, snapshot, requestId, since),
    'requestId',
  );
  const later = async () => {
    await job.moveToDelayed(Date.now() + (deps.statusPollMs ?? 500), token);
    throw new DelayedError();
  };
  if (outcome.status === 'IN_PROGRESS') return later();
  const recorded = recordedOutcome(outcome, snapshot);
  // A completed stop finishes the job (R66), which aborts what is pending in the catalogue: what Flink
  // completed before the stop's savepoint (its barrier follows them) is read from the history first, as the
  // status poll does (`mirroredFirst`): a walkthrough's checkpoint completed in Flink was recorded FAILED.
  const stops = recorded.status === 'COMPLETED' && snapshot.terminate && !recorded.stopFailure;
  if (stops && !(await mirroredFirst(jobId, deps))) return later();
  return recordSavepoint(deps, api, { jobId, snapshotId }, recorded);
}

/**
 * Sends the savepoint's trigger once: Flink's request id, or, when Flink refused it for good, the refusal (the
 * savepoint recorded FAILED with it). Throws what is worth trying again later.
 */
async function sendTrigger(
  job: Job<SavepointJob>,
  api: FlinkApi,
  snapshot: PendingSavepoint,
  deps: FlinkConnectorDeps,
): Promise<{ requestId: string } | { refused: string }> {
  const { jobId, snapshotId } = job.data;
  // Kept before it is sent: a trigger whose answer was lost may have started the savepoint (a review: kept
  // only once answered, a lost answer and a failover took a second savepoint).
  const earlier = job.data.mayHaveStartedAt;
  if (earlier === undefined) await job.updateData({ ...job.data, mayHaveStartedAt: Date.now() });
  let requestId: string;
  try {
    requestId = (await triggerInFlink(api, jobId, snapshot)).triggerId;
  } catch (error) {
    // A 404 may pass (a JobManager that took over and has not recovered its jobs yet); one that lasts is a job
    // Flink does not run (a walkthrough's savepoint stayed PENDING to its deadline, 11 minutes, no cause).
    // Counted from the first 404, not from the queueing: after an outage longer than the grace, the first
    // 404 of the new JobManager failed the savepoint at once (a review).
    const notFoundSince = isNotFound(error) ? (job.data.notFoundSince ?? Date.now()) : undefined;
    const unknownJob = notFoundSince !== undefined && Date.now() - notFoundSince >= UNKNOWN_JOB_GRACE_MS;
    if (!refusedByFlink(error) && !unknownJob) {
      // A savepoint someone else took while attempts that started nothing failed is no lost answer's (a
      // review recorded another's savepoint, or its failure, as this one's).
      const { notFoundSince: _before, mayHaveStartedAt, ...data } = job.data;
      const started = earlier === undefined && startedNothing(error) ? undefined : mayHaveStartedAt;
      await job.updateData({
        ...data,
        ...(started === undefined ? {} : { mayHaveStartedAt: started }),
        ...(notFoundSince === undefined ? {} : { notFoundSince }),
      });
      throw error;
    }
    // Flink answered that it will not take it (a 4xx other than 404, 408 and 429: a request an older or stricter
    // Flink does not accept, credentials it refuses): failed now, with Flink's answer as its cause,
    // rather than sent again until the deadline with no cause recorded.
    const message = (error as Error).message;
    const cause = unknownJob
      ? `Flink does not know job ${jobId} (404 for ${Math.round((Date.now() - notFoundSince!) / 1000)} s): ${message}`
      : `Flink refused the savepoint: ${message}`;
    deps.log.warn('flink refused the savepoint', { job: jobId, snapshot: snapshotId, error: message });
    await execute(deps.bus, {
      type: 'RecordFlinkSavepoint',
      jobId,
      snapshotId,
      outcome: { status: 'FAILED', cause },
    });
    return { refused: message };
  }
  const { waitsForCluster: _answered, notFoundSince: _known, ...data } = job.data;
  await job.updateData({ ...data, requestId });
  return { requestId };
}

/** Records Flink's outcome of a savepoint, with its figures from the history when it completed. */
async function recordSavepoint(
  deps: FlinkConnectorDeps,
  api: FlinkApi,
  { jobId, snapshotId }: SavepointJob,
  recorded: CommandOf<'RecordFlinkSavepoint'>['outcome'],
) {
  if (recorded.status === 'COMPLETED' && recorded.stopFailure) {
    // The savepoint is consistent and catalogued; the job did not stop (Flink fails it over).
    deps.log.warn('flink took the savepoint of a stop, but the job failed while stopping', {
      job: jobId,
      snapshot: snapshotId,
      error: recorded.stopFailure,
    });
  }
  const result = await execute(deps.bus, {
    type: 'RecordFlinkSavepoint',
    jobId,
    snapshotId,
    outcome:
      recorded.status === 'COMPLETED'
        ? { ...recorded, ...(await savepointFigures(api, jobId, recorded.location)) }
        : recorded,
  });
  return { outcome: recorded.status, changed: result?.reply.changed ?? false };
}

/**
 * Flink's figures of the savepoint it wrote at `location` (its sizes and completion time), from its checkpoint
 * history: the operation's answer names only the location (a walkthrough's savepoints showed 0 bytes for good).
 * None when the history cannot be read or does not show it (it left a busy job's history): the savepoint is
 * catalogued without them.
 */
async function savepointFigures(api: FlinkApi, jobId: string, location: string) {
  const stats = await unlessNotFound(api.checkpoints(jobId)).catch(() => undefined);
  const at = normaliseLocation(location);
  for (const c of reportedCheckpoints(stats)) {
    if (!c?.isSavepoint || c.status !== 'COMPLETED' || c.externalPath === null) continue;
    if (normaliseLocation(catalogLocation(c.externalPath)) !== at) continue;
    return {
      stateSize: c.stateSize,
      checkpointedSize: c.checkpointedSize,
      ...(c.latestAckTimestamp > 0 ? { latestAckTimestamp: c.latestAckTimestamp } : {}),
    };
  }
  return {};
}

/**
 * What the mirror records: the history, and the newest completed checkpoint `latest` keeps after it left it
 * (a review: after a streak of failures longer than the history, that completion was never seen, nor the
 * deletion of the one it subsumed, `outOfSight`). Not `latest.savepoint` nor `latest.failed`: they may be far
 * older than the history (looking below them would find nothing for `outOfSight`), and a savepoint snapcat
 * took, disposed of and compacted out of the state would be catalogued again, at a path with no files.
 */
function mirroredCheckpoints({ history, latest }: FlinkCheckpoints): FlinkCheckpoint[] {
  const completed = latest.completed;
  const left = completed && !completed.isSavepoint && !history.some((c) => c.id === completed.id);
  return left ? [...history, completed] : history;
}

/**
 * The checkpoints Flink's statistics report, each once: the history (the last `web.checkpoints.history`), and
 * the newest savepoint and failure `latest` keeps after they left it (`CheckpointStatsHistory`).
 */
function reportedCheckpoints(stats: FlinkCheckpoints | undefined): FlinkCheckpoint[] {
  const reported = new Map<number, FlinkCheckpoint>();
  for (const c of [...(stats?.history ?? []), stats?.latest.savepoint, stats?.latest.failed]) {
    if (c && !reported.has(c.id)) reported.set(c.id, c);
  }
  return [...reported.values()];
}

/** The savepoint operation's state, from Flink's checkpoint history where the operation's answer cannot tell. */
async function savepointStatus(
  api: FlinkApi,
  state: JobState,
  snapshot: PendingSavepoint,
  requestId: string,
  since: number | undefined,
): Promise<FlinkOperationStatus> {
  try {
    const answer = await api.savepointStatus(state.jobId, requestId);
    if (answer.status !== 'COMPLETED' || answer.location !== null) return answer;
    // Completed, its location left out (the spec allows it): Flink's checkpoint history names it.
    const seen = await savepointSince(api, state, snapshot, since);
    if (seen?.status === 'COMPLETED') return seen;
    throw new Error(
      'Flink answered the savepoint completed without its location, and its checkpoint history does not show it yet',
    );
  } catch (error) {
    // Flink dropped the operation's result (`rest.async.store-duration` after it ended, or a JobManager
    // failover): the savepoint it took is in its history. Triggered again, Flink would take another.
    const seen = isNotFound(error) && (await savepointSince(api, state, snapshot, since));
    if (seen) return seen.status === 'COMPLETED' ? await stopOutcome(api, state.jobId, snapshot, seen) : seen;
    throw error;
  }
}

/**
 * A stop's savepoint found in the history after Flink forgot the operation: the history cannot tell whether the
 * job then stopped, which the operation's answer told (`StopWithSavepointStoppingException` when its tasks did
 * not finish). The job's status tells: Flink answers a stop only once the job reached FINISHED
 * (`StopWithSavepointTerminationHandlerImpl.handleExecutionsTermination`), and a JobManager that took over runs
 * the job again. A job Flink no longer knows is taken as stopped (only a terminal job leaves its job store).
 */
async function stopOutcome(
  api: FlinkApi,
  jobId: string,
  snapshot: PendingSavepoint,
  seen: Extract<FlinkOperationStatus, { status: 'COMPLETED' }>,
): Promise<FlinkOperationStatus> {
  if (!snapshot.terminate) return seen;
  const job = await unlessNotFound(api.job(jobId));
  if (job === undefined || job.state === 'FINISHED') return seen;
  return {
    ...seen,
    stopFailure:
      `Flink no longer knows the stop's operation; its savepoint completed, but job ${jobId} is ` +
      `${job.state}, not FINISHED: it did not stop`,
  };
}

/**
 * What is recorded of Flink's outcome. A savepoint named by a stop's failure (the job failed while stopping) is
 * this snapshot's only when the snapshot is a stop and the path lies in its target directory: the text of a
 * failure is no proof, as a job's own exception could name any path.
 */
function recordedOutcome(
  outcome: Exclude<FlinkOperationStatus, { status: 'IN_PROGRESS' }>,
  snapshot: PendingSavepoint,
): CommandOf<'RecordFlinkSavepoint'>['outcome'] {
  if (outcome.status === 'FAILED') return { status: 'FAILED', cause: outcome.cause };
  // Null only where the history was asked and named it (the savepoint's status probe above).
  const location = catalogLocation(outcome.location!);
  if (outcome.stopFailure === undefined) return { status: 'COMPLETED', location };
  if (!snapshot.terminate || !inTargetDirectory(location, snapshot)) {
    return { status: 'FAILED', cause: outcome.stopFailure };
  }
  return { status: 'COMPLETED', location, stopFailure: outcome.stopFailure.slice(0, 4096) };
}

/**
 * The outcome of the savepoint Flink's checkpoint history shows taken for this one: a savepoint triggered
 * `since` the first attempt that may have started it (a second of clock skew allowed), in progress, failed,
 * or completed inside the target directory; undefined when there is none (or the time is not known: a job
 * from before it was kept).
 */
async function savepointSince(
  api: FlinkApi,
  state: JobState,
  snapshot: PendingSavepoint,
  since: number | undefined,
): Promise<FlinkOperationStatus | undefined> {
  if (since === undefined) return undefined;
  const stats = await unlessNotFound(api.checkpoints(state.jobId));
  // Another savepoint of the catalogue's (the trigger of one taken meanwhile) is not this one.
  const catalogued = new Set<string>();
  for (const s of state.snapshots.values()) {
    if (s.kind === 'SAVEPOINT' && s.status !== 'PENDING') catalogued.add(normaliseLocation(s.externalPath));
  }
  const mayBeThis = (path: string | null) => {
    if (path === null) return true;
    const location = catalogLocation(path);
    return inTargetDirectory(location, snapshot) && !catalogued.has(normaliseLocation(location));
  };
  // Flink drops an operation's result 5 minutes after it ended, by which time its savepoint may be out of a
  // busy job's history (`latest` keeps it). The oldest such savepoint: a later one is another trigger's.
  const taken = reportedCheckpoints(stats)
    .sort((a, b) => a.id - b.id)
    .find((c) => c.isSavepoint && c.triggerTimestamp >= since - 1_000 && mayBeThis(c.externalPath));
  if (!taken) return undefined;
  if (taken.status === 'IN_PROGRESS') return { status: 'IN_PROGRESS' };
  if (taken.status === 'FAILED') {
    return { status: 'FAILED', cause: taken.failureMessage ?? 'Flink reported the savepoint failed' };
  }
  return taken.externalPath === null ? undefined : { status: 'COMPLETED', location: taken.externalPath };
}

/**
 * Whether a savepoint location Flink reported lies in the directory the pending savepoint targets. Flink
 * qualifies a savepoint's directory with its file system's scheme and authority
 * (`AbstractFsCheckpointStorageAccess.initializeLocationForSavepoint`: `path.makeQualified(fs)`), so a target
 * naming none (`hdfs:///flink/sp`) comes back with the default's (`hdfs://namenode:8020/flink/sp/savepoint-…`).
 */
function inTargetDirectory(location: string, snapshot: PendingSavepoint): boolean {
  const target = normaliseLocation(posix.dirname(snapshot.externalPath));
  const at = normaliseLocation(location);
  if (isWithin(at, target)) return true;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//.exec(target)?.[0];
  if (scheme === undefined || !target.startsWith(`${scheme}/`) || !at.startsWith(scheme)) return false;
  const path = at.indexOf('/', scheme.length);
  return path > scheme.length && isWithin(`${scheme}${at.slice(path)}`, target);
}

/**
 * Whether Flink's answers to a trigger show it started nothing: every request the client sent (it retries
 * some) was refused before it was taken, or none was sent (`FlinkError.details.mayHaveBeenTaken`). A timeout,
 * a lost connection or a 5xx other than 503 may have started one (a review: the client's own retries of a 503
 * made every outage look like one that may have).
 */
function startedNothing(error: unknown): boolean {
  return error instanceof FlinkError && error.details.mayHaveBeenTaken === false;
}

/** How long a savepoint's trigger may be answered 404 (job not found) before it fails with that answer. */
const UNKNOWN_JOB_GRACE_MS = 15_000;

const refusedByFlink = (error: unknown): error is FlinkError =>
  error instanceof FlinkError && error.kind === 'rejected' && error.status !== 429;

/**
 * Decision 0033: why snapcat may not drive the managed job through its cluster now (the cluster no longer
 * serves the job's namespace), or undefined. Asked before anything is sent; an operation Flink already
 * started is followed to its end.
 */
async function clusterRefusal(state: JobState, deps: FlinkConnectorDeps): Promise<string | undefined> {
  const { cluster } = state.source!;
  if (await deps.serves(cluster, state.namespace)) return undefined;
  return (
    `Flink cluster ${cluster} no longer serves namespace ${state.namespace} (decision 0033): snapcat sends ` +
    `nothing for job ${state.jobId} to it. An admin gives the namespace back (PUT /api/v1/clusters/${cluster}) ` +
    'or registers the job with another cluster'
  );
}

/**
 * Jobs whose checkpoint configuration this process has read (R67): once per process. One that records the
 * retention is not asked again anyway; one whose configuration leaves it out (the spec requires none of
 * its fields) keeps the catalogue's own properties for Flink's, and is warned about once. A 404 (no
 * checkpointing, or a JobManager that does not know the job yet) is asked again at the next poll. A poll
 * overlapping a slow read of the same job waits for that read (`retentionReads`) rather than asking again.
 */
const retentionRead = new Set<string>();
const retentionReads = new Map<string, Promise<void>>();

function readRetentionOnce(api: FlinkApi, jobId: string, deps: FlinkConnectorDeps): Promise<void> {
  if (retentionRead.has(jobId)) return Promise.resolve();
  let read = retentionReads.get(jobId);
  if (!read) {
    read = recordRetention(api, jobId, deps)
      .then((answered) => void (answered && retentionRead.add(jobId)))
      .finally(() => retentionReads.delete(jobId));
    retentionReads.set(jobId, read);
  }
  return read;
}

/** Whether Flink answered with the job's configuration (false: 404). */
async function recordRetention(api: FlinkApi, jobId: string, deps: FlinkConnectorDeps): Promise<boolean> {
  const config = await unlessNotFound(api.checkpointConfig(jobId));
  if (!config) return false;
  if (!config.externalization) {
    deps.log.warn(
      "flink checkpoint configuration without externalization: what Flink does with the job's checkpoints when it ends is not known; the catalogue keeps its own retention for them",
      { job: jobId },
    );
    return true;
  }
  await execute(deps.bus, {
    type: 'RecordFlinkCheckpointConfig',
    jobId,
    externalized: config.externalization.enabled,
    deleteOnCancellation: config.externalization.deleteOnCancellation,
    ...(config.timeoutMs !== null && config.timeoutMs > 0 && config.timeoutMs <= MAX_FLINK_TIMEOUT_MS
      ? { timeoutMs: config.timeoutMs }
      : {}),
  });
  return true;
}

/** Jobs whose refusal was logged by this process: a mirror is polled every few seconds. */
const refusedJobs = new SaidOnce();

/**
 * Flink's newest checkpoint id below the newest the mirror recorded: the job runs again under the same JobID
 * with its ids from 1 (a resubmission, or a JobManager restarted without HA; with HA the id counter goes on,
 * `CheckpointIDCounter`). Within one run Flink's ids only grow and its history always holds its newest, so
 * this is no failover. Recording such a history would take its checkpoints for the earlier run's ones of the
 * same ids (and the earlier run's as deleted when the new run deletes its own): the mirror stops instead,
 * and says so, until Flink's ids pass the recorded ones. Undefined when the ids go on.
 */
export function idsWentBack(
  state: JobState,
  checkpoints: readonly { id: number }[],
): { reported: number; recorded: number } | undefined {
  const reported = checkpoints.at(-1)?.id;
  if (reported === undefined) return undefined;
  let recorded = state.flinkCheckpointFloor;
  for (const id of state.flinkCheckpoints.keys()) if (id > recorded) recorded = id;
  return reported < recorded ? { reported, recorded } : undefined;
}

/** Jobs whose rerun under the same JobID was logged by this process (`idsWentBack`). */
const rerunJobs = new SaidOnce();

function warnRerunOnce(
  state: JobState,
  { reported, recorded }: { reported: number; recorded: number },
  deps: FlinkConnectorDeps,
) {
  rerunJobs.say(state.jobId, () =>
    deps.log.error(
      `Flink's checkpoint ids went back (its newest is ${reported}, snapcat recorded up to ${recorded}): the job ` +
        'runs again under the same JobID without its checkpoint counter (a resubmission, or a JobManager restart ' +
        `without high availability). Its checkpoints are not mirrored until their ids pass ${recorded}; run such a ` +
        'job with high availability, or under a new JobID registered as a new job',
      { job: state.jobId, cluster: state.source!.cluster, reported, recorded },
    ),
  );
  return { skipped: 'checkpoint ids went back' };
}

function warnRefusedOnce(state: JobState, refusal: string, deps: FlinkConnectorDeps) {
  refusedJobs.say(state.jobId, () =>
    deps.log.warn(refusal, { job: state.jobId, cluster: state.source!.cluster, namespace: state.namespace }),
  );
  return { skipped: refusal };
}

/** Sends the savepoint's trigger (or stop-with-savepoint) to Flink, with a trigger id derived from snapcat's. */
function triggerInFlink(api: FlinkApi, jobId: string, snapshot: PendingSavepoint) {
  const triggerId = flinkTriggerId(snapshot);
  // Flink names the savepoint's directory itself, inside the target directory (R14).
  const targetDirectory = posix.dirname(snapshot.externalPath);
  const { formatType, terminate } = snapshot;
  return terminate
    ? api.stopWithSavepoint(jobId, { targetDirectory, drain: terminate.drain, formatType, triggerId })
    : api.triggerSavepoint(jobId, { targetDirectory, formatType, triggerId });
}
type PendingSavepoint = Pick<
  SnapshotState,
  'snapshotId' | 'triggerId' | 'triggerType' | 'externalPath' | 'formatType' | 'terminate'
>;

/**
 * The status of an asynchronous operation Flink started for the job. When Flink answers 404 (it dropped the
 * result after `rest.async.store-duration`, or a failover lost it), the operation's id is forgotten before the
 * error is thrown, so that the next attempt starts the operation again instead of asking after it forever.
 */
async function followed<T>(job: Job, status: () => Promise<T>, key: 'requestId' | 'triggerId'): Promise<T> {
  try {
    return await status();
  } catch (error) {
    if (isNotFound(error)) {
      const data = { ...job.data };
      delete data[key];
      await job.updateData(data);
    }
    throw error;
  }
}

/**
 * R67: disposes of a managed job's savepoint through Flink (`POST /savepoint-disposal`); the catalog drops
 * it only once Flink reports success. A failure is recorded with Flink's error and tried again with backoff.
 */
async function dispose(job: Job<DisposeJob>, token: string | undefined, deps: FlinkConnectorDeps) {
  const { jobId, snapshotId, path } = job.data;
  const state = await deps.bus.load(jobId);
  const snapshot = state.snapshots.get(snapshotId);
  if (!state.source || !snapshot?.discard || snapshot.discard.state === 'DONE')
    return { skipped: 'nothing to dispose' };
  if (!job.data.triggerId && !disposedByFlink(snapshot)) {
    // An imported retained checkpoint whose discard was requested before Flink stopped disposing of them
    // (its shared/ files): ended as the decider now ends one, nothing deleted.
    await execute(deps.bus, { type: 'RecordDiscardCompleted', jobId, snapshotId, bytesReclaimed: 0 });
    return { skipped: 'not disposed of through Flink' };
  }
  const refusal = !job.data.triggerId && (await clusterRefusal(state, deps));
  if (refusal) {
    await execute(deps.bus, {
      type: 'RecordDiscardFailed',
      jobId,
      snapshotId,
      error: refusal,
      retryable: false,
    });
    return { skipped: refusal };
  }
  const api = await deps.apis(state.source.cluster);
  // Requested once per attempt; the trigger id Flink answers is kept, so a delayed run follows that one.
  let triggerId = job.data.triggerId;
  if (!triggerId) {
    triggerId = (await api.disposeSavepoint(path)).triggerId;
    await job.updateData({ ...job.data, triggerId });
  }
  const outcome = await followed(job, () => api.disposalStatus(triggerId), 'triggerId');
  if (outcome.status === 'IN_PROGRESS') {
    await job.moveToDelayed(Date.now() + (deps.statusPollMs ?? 500), token);
    throw new DelayedError();
  }
  if (outcome.status === 'COMPLETED' || (await storageShows(path, deps)) === 'nothing') {
    if (outcome.status !== 'COMPLETED') {
      // Said, not hidden: the files are gone (an earlier disposal whose answer was lost, or someone else).
      deps.log.info('Flink failed a disposal of a savepoint no longer on storage: recorded as done', {
        job: jobId,
        snapshot: snapshotId,
        path,
        cause: outcome.cause.slice(0, 500),
      });
    }
    await execute(deps.bus, {
      type: 'RecordDiscardCompleted',
      jobId,
      snapshotId,
      bytesReclaimed: sizeDisposedByFlink(snapshot),
    });
    return { disposed: path };
  }
  await execute(deps.bus, {
    type: 'RecordDiscardFailed',
    jobId,
    snapshotId,
    error: outcome.cause,
    retryable: true,
  });
  const { triggerId: _failed, ...next } = job.data;
  await job.updateData(next); // the retry requests a new disposal
  throw new Error(`Flink could not dispose of ${path}: ${outcome.cause}`);
}
