import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  checkpointAreaOf,
  directoriesNotNamedFor,
  discardPlanOf,
  importedCheckpointAreas,
  isLooseLocation,
  withinAnyOf,
  jobAreaPathOf,
  normaliseLocation,
  otherJobsPlacesInside,
  parentOf,
  retentionDue,
  taskHandlesOf,
  type Command,
  type JobState,
  type KeptLocation,
  type SnapshotState,
  type StateHandle,
  planDiscard,
  planningJobOf,
  planStrayCleanup,
  orderMismatch,
  unorderedDeletion,
} from '@snapcat/domain';
import {
  jobStream,
  nextFireTime,
  otherJobsSnapshotsAt,
  previousFireTime,
  readJobState,
  recentJobEventPosition,
  OwnersUnknownError,
  type CataloguedJobIds,
  type DeletionFence,
  type FenceHeld,
  type CommandBus,
} from '@snapcat/application';
import {
  StreamDeletedError,
  waitForPosition,
  parsePosition,
  storeIdentity,
  type EventStore,
} from '@snapcat/event-store';
import { LocationRefusedError, type SnapshotStorage } from '@snapcat/storage';
import {
  QUEUES,
  logQueueErrors,
  type DiscardJob,
  type LogFn,
  type ManifestJob,
  type StrayJob,
  type TimeoutJob,
  type WorkerKeys,
} from '@snapcat/runtime';
import { SAVEPOINT_TICK_MS, discardJob } from './queues';
import { newestDiscardRequests } from './discard-requests';
import { executeUnlessRejected } from './execute';
import { addLive, noLiveState, writeOrphanReport, type LiveState } from './orphans';
import type { DueSchedule, ScheduleIndex } from './schedule-index';
import { UrgentWork } from './urgent-work';

export interface ProcessorDeps {
  bus: CommandBus;
  /** False for a store in memory: it claims no storage root and deletes no orphan (decision 0044). */
  claimsRoots?: boolean;
  /** Where the sweeps read jobs' states, past the bus and its cache. */
  store: EventStore;
  storage: SnapshotStorage;
  redis: Redis;
  keys: WorkerKeys;
  orphanGraceMs: number;
  deleteOrphans: boolean;
  schedules: ScheduleIndex;
  /** Whose live snapshots lie where a discard deletes (`keptForOthers`). */
  catalogued: Required<CataloguedJobIds>;
  /** What other jobs are recording (acknowledged loose files, imports) while a deletion looks (decision 0047). */
  fence: DeletionFence;
  /** The process's: the sweep waits while a tick fires (another process's firing has cores of its own). */
  urgent: UrgentWork;
  log: { info: LogFn; warn: LogFn; error: LogFn };
}

/** The storage, timeout and schedule workers' commands, audited as theirs. */
const execute = <C extends Command>(bus: CommandBus, command: C) =>
  executeUnlessRejected(bus, command, { correlationId: `worker-${command.type}` });

export function startProcessors(
  connection: ConnectionOptions,
  prefix: string,
  deps: ProcessorDeps,
): Worker[] {
  const { bus, log } = deps;
  // A job whose worker died is picked up again once its lock lapses: within about 15 s, not BullMQ's 30-60 s.
  const common = { connection, prefix, lockDuration: 10_000, stalledInterval: 5_000, maxStalledCount: 3 };

  const timeouts = new Worker<TimeoutJob>(
    QUEUES.timeouts,
    async (job) => {
      await execute(bus, { type: 'ExpireOverdue', jobId: job.data.jobId });
    },
    { ...common, concurrency: 8 },
  );

  const storageWorker = new Worker<DiscardJob | StrayJob | ManifestJob>(
    QUEUES.storage,
    async (job, token) => {
      if (job.name === 'discard') return discard(job as Job<DiscardJob>, deps, token);
      if (job.name === 'stray') return stray(job as Job<StrayJob>, deps, token);
      if (job.name === 'manifest') return manifest(job as Job<ManifestJob>, deps);
      throw new UnrecoverableError(`unknown storage job ${job.name}`);
    },
    { ...common, concurrency: 4 },
  );

  const schedules = new Worker(
    QUEUES.schedules,
    async (job) => {
      if (job.name !== 'savepoint-tick') throw new UnrecoverableError(`unknown schedules job ${job.name}`);
      return fireDueSavepoints(deps, Date.now() + SAVEPOINT_TICK_MS);
    },
    { ...common, concurrency: 1 },
  );

  const maintenance = new Worker(QUEUES.maintenance, async () => retentionSweep(deps), {
    ...common,
    concurrency: 1,
  });

  const workers = [timeouts, storageWorker, schedules, maintenance];
  for (const worker of workers) {
    worker.on('failed', (job, error) =>
      log.warn('job failed', {
        queue: worker.name,
        job: job?.id,
        attempt: job?.attemptsMade,
        error: error.message,
      }),
    );
    logQueueErrors(worker, log.error, { queue: worker.name });
  }
  return workers;
}

/**
 * A job's current state for the sweep; undefined when its stream was hard-deleted (nothing left of it).
 * The bus's cached state when it is at the stream's newest revision (one small read), else read past the
 * bus: decoding every job's aggregate snapshot each sweep is what an idle service spent its memory and CPU
 * on (bench #10), and loading them through the bus would churn its cache. `seen`: the states this sweep
 * read already, by the revision they were read at, taken again while the stream has not moved.
 */
export async function sweepState(
  { bus, store }: Pick<ProcessorDeps, 'bus' | 'store'>,
  jobId: string,
  seen?: Map<string, { revision: bigint; state: JobState }>,
): Promise<JobState | undefined> {
  try {
    const [newest] = await store.readStream(jobStream(jobId), { direction: 'backwards', maxCount: 1 });
    const earlier = seen?.get(jobId);
    if (newest && earlier?.revision === newest.revision) return earlier.state;
    const state = (newest && bus.cachedState(jobId, newest.revision)) || (await readJobState(store, jobId));
    if (newest) seen?.set(jobId, { revision: newest.revision, state });
    return state;
  } catch (error) {
    if (error instanceof StreamDeletedError) return undefined;
    throw error;
  }
}

/**
 * The retention sweep and the orphan report. Every job is read as `sweepState` reads it; only a job whose
 * retention discards something now is sent ApplyRetention (the bus decides it again on its own state), and
 * read again after it for the report.
 */
async function retentionSweep(deps: ProcessorDeps) {
  const startedAt = Date.now();
  const jobIds = await deps.redis.smembers(deps.keys.knownJobs);
  let discarded = 0;
  const live = noLiveState();
  // Deleting orphans checks each batch against the jobs again: the states read are kept for the sweep, and
  // only a job whose stream moved since is read again (one small read each otherwise).
  const seen = deps.deleteOrphans ? new Map<string, { revision: bigint; state: JobState }>() : undefined;
  for (const jobId of jobIds) {
    await deps.urgent.idle();
    let state = await sweepState(deps, jobId, seen);
    if (state && retentionDue(state, Date.now())) {
      const result = await execute(deps.bus, { type: 'ApplyRetention', jobId });
      discarded += result?.reply.discarded.length ?? 0;
      state = await sweepState(deps, jobId, seen);
    }
    if (state) addLive(live, state);
  }
  const reportDeps = {
    ...deps,
    orphanReportKey: deps.keys.orphanReport,
    catalogue: async () => (deps.claimsRoots === false ? undefined : storeIdentity(deps.store)),
  };
  let last: { states: JobState[]; live: LiveState } | undefined;
  const orphans = await writeOrphanReport(reportDeps, live, startedAt, async () => {
    const now = await liveNow(deps, seen);
    // The same states as the batch before: the same object, so the report keeps its index of them.
    if (
      now &&
      last?.states.length === now.states.length &&
      now.states.every((s, i) => s === last!.states[i])
    ) {
      return last.live;
    }
    last = now;
    return now?.live;
  });
  return { jobs: jobIds.length, discarded, orphans };
}

/**
 * Every known job's state, read as the sweep reads it, for the orphan deletions; undefined unless the list
 * of known jobs is whole, and the same list, before and after it is read (a job left out would make its
 * files orphans).
 */
async function liveNow(
  deps: ProcessorDeps,
  seen: Map<string, { revision: bigint; state: JobState }> | undefined,
): Promise<{ states: JobState[]; live: LiveState } | undefined> {
  const epoch = () => deps.redis.get(deps.keys.knownJobsWhole);
  const before = await epoch();
  if (before === null || !(await knownJobsReachTheLog(deps))) return undefined;
  const jobIds = await deps.redis.smembers(deps.keys.knownJobs);
  if ((await epoch()) !== before) return undefined;
  const live = noLiveState();
  const states: JobState[] = [];
  for (const jobId of jobIds) {
    await deps.urgent.idle();
    const state = await sweepState(deps, jobId, seen);
    if (state) {
      addLive(live, state);
      states.push(state);
    }
  }
  return { states, live };
}

/**
 * Whether the list of known jobs holds every job registered up to the log's newest job event: the process
 * manager lists them as it reads the log, and saves how far it read (now and then: waited for up to
 * KNOWN_JOBS_CATCH_UP_MS). A job registered a moment ago and not yet listed would make the files it imported
 * or acknowledged orphans.
 */
async function knownJobsReachTheLog(deps: ProcessorDeps): Promise<boolean> {
  const newest = await recentJobEventPosition(deps.store);
  if (!newest) return true;
  const knownJobsRead = async () => {
    const read = await deps.redis.get(deps.keys.knownJobsRead);
    return read === null ? null : parsePosition(read);
  };
  return waitForPosition(knownJobsRead, newest, { timeoutMs: KNOWN_JOBS_CATCH_UP_MS, pollMs: 100 });
}

/** The process manager saves its position every 250 ms while events come, every second when quiet. */
const KNOWN_JOBS_CATCH_UP_MS = 3000;

/** A claim on a due schedule outlives a stalled worker by this much; then another worker fires the slot. */
const CLAIM_LEASE_MS = 30_000;
/**
 * Claims per batch, and batches decided, written or released at once. Small batches keep the pipeline full:
 * with 10,000 schedules due on one second, 250 x 4 kept the main thread 99 % busy where 1,000 x 2 left it
 * 5-10 % idle (BENCHMARKS.md, twenty-eighth round).
 */
const CLAIM_BATCH = 250;
const BATCHES_IN_FLIGHT = 4;

/**
 * A stretch of firing leaves the urgent section after this long, and enters it again at once: the retention
 * sweep and the process manager, which wait while it runs, get a step in between even when schedules stay
 * due for longer (more of them than a process fires in their period).
 */
const URGENT_STRETCH_MS = 1_000;

type FiringDeps = Pick<ProcessorDeps, 'bus' | 'schedules' | 'log'>;
interface FiringCounts {
  fired: number;
  failed: number;
}

/**
 * One tick of periodic savepoints: fires every schedule due before `until`, CLAIM_BATCH claims at a time,
 * all of a batch side by side so that their commands share group commits. A slot falling due before
 * `until` is waited for, so slots between whole seconds are on time too. Each slot fires once: the index
 * hands a schedule to one worker at a time, and the domain refuses a slot it has seen (slot-once). None is
 * lost either: when a worker holding claims dies, the next fires each schedule's newest slot once the claim
 * lapses, and the domain records every slot of an `every` schedule in between as PeriodicSavepointSkipped
 * with reason SLOT_MISSED.
 */
export async function fireDueSavepoints(
  { urgent = new UrgentWork(), ...deps }: FiringDeps & { urgent?: UrgentWork },
  until: number,
) {
  const counts: FiringCounts = { fired: 0, failed: 0 };
  for (;;) {
    if (await urgent.run(() => fireStretch(deps, counts))) continue;
    const earliest = await deps.schedules.earliest();
    if (earliest === null || earliest >= until) return counts;
    await new Promise((r) => setTimeout(r, Math.max(0, earliest - Date.now())));
  }
}

/**
 * Fires what is due until nothing is (false) or URGENT_STRETCH_MS have passed (true), then waits for the
 * batches in flight. The next batch is claimed as soon as one is handed to the bus, not once it is written:
 * the main thread decides one batch while the writer thread commits the one before and Redis answers the
 * claim after. Claimers that each waited for their own batch's commit fell into step (their batches shared
 * one group commit), and the main thread sat idle through every commit and claim: a fifth of a firing
 * (bench #9). A batch whose claims cannot be released stops the claiming and fails the tick.
 */
async function fireStretch(deps: FiringDeps, counts: FiringCounts): Promise<boolean> {
  const inFlight = new Set<Promise<void>>();
  const failures: unknown[] = [];
  const started = Date.now();
  let more = false;
  try {
    while (failures.length === 0) {
      if (Date.now() - started >= URGENT_STRETCH_MS) {
        more = true;
        break;
      }
      const now = Date.now();
      const due = await deps.schedules.claimDue(now, CLAIM_LEASE_MS, CLAIM_BATCH);
      if (due.length === 0) break;
      const batch: Promise<void> = fireBatch(deps, due, now, counts)
        .catch((error: unknown) => {
          // Each one logged: the tick throws the first, or a claim's error if that comes first.
          deps.log.error('periodic savepoint claims not released: released when their lease lapses', {
            error: String(error),
          });
          failures.push(error);
        })
        .finally(() => inFlight.delete(batch));
      inFlight.add(batch);
      if (inFlight.size >= BATCHES_IN_FLIGHT) await Promise.race(inFlight);
    }
  } finally {
    await Promise.all(inFlight);
  }
  if (failures.length > 0) throw failures[0];
  return more;
}

/** Fires a batch of claims side by side, then releases those fired to their next slots. */
async function fireBatch(
  { bus, schedules, log }: FiringDeps,
  due: DueSchedule[],
  now: number,
  counts: FiringCounts,
): Promise<void> {
  const settled = await Promise.all(
    due.map(async (claim) => {
      // The newest slot that has passed: the planned one, or, after a lapsed claim, the latest missed;
      // the aggregate records the slots before it that no worker presented as missed (SLOT_MISSED).
      const slot = previousFireTime(claim.schedule, now);
      try {
        await execute(bus, { type: 'FirePeriodicSavepoint', jobId: claim.jobId, slot });
        return { due: claim, nextSlot: nextFireTime(claim.schedule, now) };
      } catch (error) {
        // Left claimed: its lease lapses and a later tick fires the slot (the store may be down).
        log.warn('periodic savepoint not fired', { job: claim.jobId, slot, error: String(error) });
        return undefined;
      }
    }),
  );
  const succeeded = settled.filter((x) => x !== undefined);
  counts.fired += succeeded.length;
  counts.failed += due.length - succeeded.length;
  await schedules.advance(succeeded);
}

/**
 * Deletes a snapshot's files, then records it; the catalog says DISCARDED only after the files are gone.
 * The store, not the queue, says whether to: a job in Redis may come from another timeline of this store (a
 * backup restored beside the live Redis keeps the store's id, so its namespace) or be edited by hand, and
 * the snapshot it names may be live in the store that runs now.
 */
async function discard(job: Job<DiscardJob>, deps: ProcessorDeps, token?: string) {
  const { bus, storage, log } = deps;
  const { jobId, snapshotId } = job.data;
  const state = await bus.load(jobId);
  if (managedThroughFlink(state, log, { snapshot: snapshotId })) return { skipped: true };
  const snapshot = state.snapshots.get(snapshotId);
  // Done, or done and compacted out of the state since (decision 0035), or never requested in this store.
  if (!snapshot?.discard || snapshot.discard.state === 'DONE') {
    if (snapshot && !snapshot.discard) {
      log.warn('discard order for a snapshot the catalogue does not discard: nothing deleted', {
        job: jobId,
        snapshot: snapshotId,
        status: snapshot.status,
      });
    }
    return { skipped: true };
  }
  const orders = await storesOrder(job, state, snapshot, deps);
  if (!orders) return { skipped: true };
  const { locations, stateHandles } = orders;
  // What the registry holds live now is kept, whatever the order's keep list says: the store is the judge
  // of what a live snapshot needs, and an order can be older than a reference made since (or forged).
  const liveNow = planDiscard(state.sharedState, snapshotId, stateHandles, locations, planningJobOf(state));
  const keep = [...new Set([...(orders.keep ?? []), ...liveNow.kept.map((k) => k.path)])];
  let fenced: FenceHeld | undefined;
  try {
    const touched = { locations, stateHandles, keep };
    const others = await keptForOthers(deps, state, touched, { snapshot: snapshotId }, { job, token });
    fenced = others.fenced;
    keep.push(...others.kept);
    // Bytes are measured without what is kept, so they count only what this discard really deletes.
    const request = { locations, stateHandles, keep };
    let bytes = orders.bytes;
    if (bytes === undefined) {
      bytes = await storage.measure(request);
      await onQueue(job.updateData({ ...orders, bytes }));
    }
    await stillFenced(fenced, deps.log, { job, token });
    await storage.remove(request);
    await fenced.release();
    await execute(bus, { type: 'RecordDiscardCompleted', jobId, snapshotId, bytesReclaimed: bytes });
    return { bytes };
  } catch (error) {
    await fenced?.release();
    if (error instanceof DelayedError || error instanceof QueueJobLostError) throw error;
    const refused = error instanceof LocationRefusedError;
    await execute(bus, {
      type: 'RecordDiscardFailed',
      jobId,
      snapshotId,
      error: (error as Error).message.slice(0, 4000),
      retryable: !refused,
    }).catch(() => undefined);
    if (refused) throw new UnrecoverableError((error as Error).message);
    throw error;
  }
}

/**
 * The queue failed to note something on a job the worker holds (its keys gone under it: a FLUSHDB, a Redis
 * restarted empty). The queue's failure, not the storage's: no discard failure is recorded for it (one was,
 * with BullMQ's "Missing key for job"); the store still says the discard is requested, and the process
 * manager's reconcile queues it again.
 */
class QueueJobLostError extends Error {
  constructor(cause: unknown) {
    super(`the queue lost the job being processed: ${(cause as Error).message}`);
    this.name = 'QueueJobLostError';
  }
}

const onQueue = <T>(call: Promise<T>): Promise<T> =>
  call.catch((error: unknown) => {
    throw new QueueJobLostError(error);
  });

/**
 * What a deletion (a discard, a stray cleanup) keeps that the job's registry cannot know of (decision 0043):
 * the registry holds its own references only, and what the API refuses up front leaves cases only the
 * deletion can see.
 * - Other jobs' live snapshots that the read model's index (directories no Flink layout names for their job:
 *   imports, adopted runs) finds at, around or inside what is deleted: whole. One in a checkpoint area
 *   (another run's retained checkpoint adopted by import) keeps that area's `shared/` and `taskowned/` too:
 *   its `_metadata` may name files there that no acknowledgement listed (a walkthrough's subsumption and a
 *   stray cleanup deleted them).
 * - The same two of the areas of the job's own live imported checkpoints (`importedCheckpointAreas`, which
 *   the index leaves out as named for the job).
 * - Places Flink's layout names for another job written since inside an imported directory being deleted
 *   (`otherJobsPlacesInside`, from a listing of it): a job registered with its checkpoints there.
 * - Loose files (no Flink layout names their job) that another job's live snapshots reference, among the
 *   handles deleted or inside the imported directories (decision 0046): two jobs of a client's own layout
 *   may name one file, and each registry knows only its own references.
 * Asked of the read model once it has projected the newest job event (`ownersKnown`).
 */
async function keptForOthers(
  deps: ProcessorDeps,
  state: JobState,
  touched: Touched,
  logged: { snapshot: number } | { cleanup: number | undefined },
  queued: Queued,
): Promise<KeptForOthers> {
  const { jobId } = state;
  const files = [...new Set(touched.stateHandles.map(({ path }) => normaliseLocation(path)))];
  const looseFiles = files.filter(isLooseLocation);
  const imported = directoriesNotNamedFor(jobId, touched.locations);
  // Marked before the lookups read where the log ends (decision 0047): another job's acknowledgement or import
  // appended after that point met the mark and was refused. What the deletion keeps anyway is not marked
  // (others' acknowledgements of it would be refused for nothing).
  const keptAnyway = withinAnyOf(touched.keep.map(normaliseLocation));
  const marked = [...looseFiles, ...imported].filter((place) => !keptAnyway(place));
  const fenced = await deps.fence.deleting(jobId, marked);
  try {
    await waitForRecordings(fenced, deps.log, queued, { job: jobId, ...logged });
    const kept = await othersKept(deps, state, touched, logged, queued, { looseFiles, imported });
    // What is kept is not deleted: other jobs may name it again at once. The rest stays marked until deleted.
    const keptNow = withinAnyOf(kept.map(normaliseLocation));
    await fenced.release(marked.filter(keptNow));
    return { kept, fenced };
  } catch (error) {
    await fenced.release();
    throw error;
  }
}

/**
 * Another job is recording what the deletion meets (an acknowledgement naming a loose file, an import of a
 * directory): its answer is not in the log yet, so the deletion lets go and waits its turn again (a
 * reservation lasts one request; decision 0047). Then the lookups see what was recorded, or nothing was.
 * Keeping the place instead would leave it for ever when the recording is refused.
 */
async function waitForRecordings(
  fenced: FenceHeld,
  log: ProcessorDeps['log'],
  { job, token }: Queued,
  logged: object,
): Promise<void> {
  if (fenced.conflicts.size === 0) return;
  await fenced.release();
  log.info('deletion waits for what other jobs are recording there', {
    ...logged,
    recording: [...fenced.conflicts.values()].flat().slice(0, 100),
  });
  await waitTurnAgain({ job, token });
}

/** What a deletion takes: its directories (normalised) and its state handles, less what it `keep`s anyway. */
interface Touched {
  locations: readonly string[];
  stateHandles: readonly StateHandle[];
  keep: readonly string[];
}

/** `keptForOthers` as the read model and the storage say, given the loose files and imports it takes. */
async function othersKept(
  deps: ProcessorDeps,
  state: JobState,
  { locations, stateHandles }: Touched,
  logged: { snapshot: number } | { cleanup: number | undefined },
  queued: Queued,
  { looseFiles, imported }: { looseFiles: readonly string[]; imported: readonly string[] },
): Promise<string[]> {
  const { catalogued, storage, log } = deps;
  const { jobId } = state;
  const places = new Set(locations.map(normaliseLocation));
  for (const handle of stateHandles) {
    // A handle's directory stands for it (their directories are few); its area, for checkpoints adopted there.
    places.add(parentOf(handle.path));
    const area = jobAreaPathOf(normaliseLocation(handle.path));
    if (area) places.add(area);
  }
  // Files a retained checkpoint's `_metadata` may name beside its `chk-N`, in its area.
  const beside = (area: string) => [`${area}/shared`, `${area}/taskowned`];
  const kept = importedCheckpointAreas(state).flatMap(beside);
  if (places.size === 0) return kept;
  // Only an import, a path a client reported, or a loose file's directory may have been imported elsewhere a
  // moment ago: the job's own area and savepoints take no import (the API refuses one inside them, live or
  // being discarded), so their answer needs no catch-up.
  const found = await ownersKnown(log, queued, () =>
    catalogued.withSnapshotsTouching([...places], { asOfNow: imported.length > 0 || looseFiles.length > 0 }),
  );
  const others = [...found].filter(([, jobIds]) => jobIds.some((other) => other !== jobId));
  const inside: string[] = [];
  for (const directory of imported) {
    // Another job's own snapshot at this very place (a run registered later under the id of an adopted
    // checkpoint, writing its own `chk-N` there), which the index leaves out as named for that job.
    const owned = await otherJobsSnapshotsAt(deps.bus, catalogued, jobId, directory);
    if (owned.length > 0) inside.push(directory);
    else inside.push(...otherJobsPlacesInside(jobId, directory, await filesIn(storage, directory)));
  }
  if (others.length > 0 || inside.length > 0) {
    log.warn("deletion keeps other jobs' live snapshots it would delete", {
      job: jobId,
      ...logged,
      kept: others.map(([directory, jobIds]) => ({ directory, jobs: jobIds.filter((j) => j !== jobId) })),
      writtenInside: inside,
    });
  }
  const directories = others.map(([directory]) => directory);
  const adopted = directories.flatMap((directory) => {
    const area = checkpointAreaOf(directory);
    return area ? beside(area) : [];
  });
  // Only a directory no layout names can hold a loose file (a checkpoint area's or a savepoint's cannot).
  const looseDirectories = imported.filter(isLooseLocation);
  const shared = await looseFilesOfOthers(deps, jobId, looseFiles, looseDirectories, logged, queued);
  return [...kept, ...directories, ...adopted, ...inside, ...shared];
}

/** What a deletion keeps for others (`keptForOthers`), and its marks to let go once it is done (decision 0047). */
interface KeptForOthers {
  kept: string[];
  fenced: FenceHeld;
}

/**
 * Just before a deletion deletes: its marks must still be held (decision 0047). One lapsed or lost (the
 * process paused past the lifetime, a Redis that restarted empty) may have let another job record what it
 * deletes unseen: the deletion lets go of the rest and waits its turn again, to look anew.
 */
async function stillFenced(
  fenced: FenceHeld,
  log: ProcessorDeps['log'],
  { job, token }: Queued,
): Promise<void> {
  if (await fenced.stillHeld()) return;
  await fenced.release();
  log.warn('deletion lost its marks before it deleted: it looks again', {
    job: job.data.jobId,
    queued: job.id,
  });
  await waitTurnAgain({ job, token });
}

/**
 * Of the loose files a deletion takes (its handles, and those inside the `directories` it deletes whole), the
 * ones another job's live snapshots reference (decision 0046); nothing is asked when there are none (Flink's
 * layouts name every file's job).
 */
async function looseFilesOfOthers(
  { catalogued, log }: ProcessorDeps,
  jobId: string,
  files: readonly string[],
  directories: readonly string[],
  logged: { snapshot: number } | { cleanup: number | undefined },
  queued: Queued,
): Promise<string[]> {
  if (files.length === 0 && directories.length === 0) return [];
  const found = await ownersKnown(log, queued, () => catalogued.referencingFiles(files, directories));
  const others = [...found]
    .map(([file, jobIds]) => ({ file, jobs: jobIds.filter((other) => other !== jobId) }))
    .filter(({ jobs }) => jobs.length > 0);
  if (others.length > 0) {
    log.warn("deletion keeps files other jobs' live snapshots reference", {
      job: jobId,
      ...logged,
      kept: others.slice(0, 100),
      files: others.length,
    });
  }
  return others.map(({ file }) => file);
}

/**
 * The files under a directory, as far as the storage lists them: a symbolic link in it refuses the listing,
 * and the deletion deletes a link as a link, so what was listed before it is judged.
 */
async function filesIn(storage: SnapshotStorage, directory: string): Promise<string[]> {
  const files: string[] = [];
  try {
    for await (const file of storage.listFiles(directory)) files.push(file.path);
  } catch (error) {
    if (!(error instanceof LocationRefusedError)) throw error;
  }
  return files;
}

/**
 * While the read model cannot say whose snapshots lie where a deletion deletes (a projector catching up after
 * a failover, none running), the deletion waits its turn again, spending no attempt and recording no failure:
 * nothing is deleted meanwhile, and the wait is logged, at most every WAITING_SAID_MS per process.
 */
async function ownersKnown<T>(
  log: ProcessorDeps['log'],
  { job, token }: Queued,
  ask: () => Promise<T>,
): Promise<T> {
  try {
    return await ask();
  } catch (error) {
    if (!(error instanceof OwnersUnknownError)) throw error;
    if (Date.now() - waitingSaidAt >= WAITING_SAID_MS) {
      waitingSaidAt = Date.now();
      log.warn('deletions wait for the read model', { reason: error.message });
    }
    return waitTurnAgain({ job, token });
  }
}

/**
 * The deletion goes back to the queue's delayed set for OWNERS_RETRY_MS, spending no attempt and recording no
 * failure (DelayedError tells BullMQ it was moved), to look again then.
 */
async function waitTurnAgain({ job, token }: Queued): Promise<never> {
  await onQueue(job.moveToDelayed(Date.now() + OWNERS_RETRY_MS, token));
  throw new DelayedError();
}

/** A BullMQ job being processed, and its lock's token (to move it back to the delayed set). */
interface Queued {
  job: Job;
  token: string | undefined;
}
const OWNERS_RETRY_MS = 1000;
const WAITING_SAID_MS = 30_000;
let waitingSaidAt = -Infinity;

/**
 * The order to carry out: the queue's when the store requested what it deletes; the store's own request
 * (its newest `SnapshotDiscardRequested`) when the queue's names anything else. A refused order would
 * complete and its job id (one per snapshot) would keep the store's own order out of the queue for a day.
 * Undefined: the store has no request that can be carried out (nothing is deleted).
 */
async function storesOrder(
  job: Job<DiscardJob>,
  state: JobState,
  snapshot: SnapshotState,
  { store, log }: ProcessorDeps,
): Promise<DiscardJob | undefined> {
  const { jobId, snapshotId } = job.data;
  const deleting = snapshot.discard?.deleting ?? [];
  // An order enqueued before the shared-state registry listed every handle: planned from the registry now.
  let orders = job.data.keep === undefined ? planned(state, job.data) : job.data;
  // Naming more than the store marked could delete what it did not decide; naming less, or keeping what it
  // marked, would record the discard done with files left behind for good.
  const unordered = orderMismatch(deleting, orders);
  if (unordered !== undefined) {
    const [request] = await newestDiscardRequests(store, jobId, new Set([snapshotId]));
    const own = request && planned(state, request);
    const refused = own === undefined || unorderedDeletion(deleting, own) !== undefined;
    log.error(
      refused
        ? "discard order differs from the catalogue's at a place: nothing deleted"
        : "discard order differs from the catalogue's at a place: the store's own request is carried out",
      { job: jobId, snapshot: snapshotId, path: unordered },
    );
    if (refused) return undefined;
    orders = own;
  }
  if (orders !== job.data) await job.updateData(orders);
  return orders;
}

/**
 * R67: snapcat deletes nothing of a job managed through Flink (Flink disposes of what it owns), and the process
 * manager enqueues no storage order for one: an order for it came from elsewhere (another timeline of the
 * store, a hand edit) or from before the job was managed.
 */
function managedThroughFlink(state: JobState, log: ProcessorDeps['log'], order: object): boolean {
  if (state.source === null) return false;
  log.warn('storage order for a job managed through Flink: nothing deleted (R67)', {
    job: state.jobId,
    ...order,
  });
  return true;
}

/** A discard's orders as the job's registry plans them now (a request's own plan when it recorded one). */
function planned(
  state: JobState,
  request: Pick<DiscardJob, 'jobId' | 'snapshotId' | 'locations' | 'stateHandles'> & {
    kept?: KeptLocation[];
  },
): DiscardJob {
  const { jobId, snapshotId } = request;
  return discardJob(
    jobId,
    snapshotId,
    discardPlanOf(state.sharedState, snapshotId, request, planningJobOf(state)),
  );
}

/**
 * State handles of acknowledgements for unknown or aborted snapshots: garbage, deleted if inside the roots.
 * As for a discard, the store says whether: a tracked cleanup must still be open in it; the handles of one
 * from before decision 0011 (untracked) are planned again on the registry as it is now.
 */
async function stray(job: Job<StrayJob>, deps: ProcessorDeps, token?: string) {
  const { bus, storage, log } = deps;
  const { jobId, cleanupId } = job.data;
  const state = await bus.load(jobId);
  if (managedThroughFlink(state, log, { cleanup: cleanupId })) return { skipped: true };
  let handles = job.data.stateHandles;
  if (cleanupId === undefined) {
    handles = planStrayCleanup(state.sharedState, handles, planningJobOf(state)).cleanup;
  } else {
    // Done (recorded, then the registry let go of its locations), or never opened in this store.
    const open = state.strayCleanups.get(cleanupId);
    if (!open) return { skipped: true };
    const unordered = unorderedDeletion(open, { locations: [], stateHandles: handles });
    if (unordered !== undefined) {
      log.error('stray cleanup order names a place the catalogue does not clean up: nothing deleted', {
        job: jobId,
        cleanup: cleanupId,
        path: unordered,
      });
      return { skipped: true };
    }
  }
  const inside: StateHandle[] = [];
  for (const handle of handles) {
    if (await storage.isWithinRoots(handle.path)) inside.push(handle);
    else {
      log.warn('stray state left in place: outside the storage roots, or named through a symbolic link', {
        job: jobId,
        path: handle.path,
      });
    }
  }
  const touched = { locations: [], stateHandles: inside, keep: [] };
  const { kept, fenced } = await keptForOthers(deps, state, touched, { cleanup: cleanupId }, { job, token });
  const request = { locations: [], stateHandles: inside, keep: kept };
  let bytes = job.data.bytes;
  try {
    if (bytes === undefined) {
      bytes = await storage.measure(request);
      await job.updateData({ ...job.data, bytes });
    }
    await stillFenced(fenced, deps.log, { job, token });
    await storage.remove(request);
  } finally {
    await fenced.release();
  }
  // Until this is recorded the registry holds the locations as being deleted (nothing may reference them).
  if (cleanupId !== undefined) {
    await execute(bus, { type: 'RecordStrayCleanupCompleted', jobId, cleanupId, bytesReclaimed: bytes });
  }
  return { bytes };
}

/**
 * FLIP-10 persist: a self-contained manifest (`snapcat-manifest.json`, R39) in the persisted checkpoint's
 * savepoint location, then its record. Flink restores the checkpoint from its own chk-<id> (R57).
 */
async function manifest(job: Job<ManifestJob>, { bus, storage }: ProcessorDeps) {
  const { jobId, snapshotId } = job.data;
  const state = await bus.load(jobId);
  const snapshot = state.snapshots.get(snapshotId);
  if (!snapshot?.persisted || !snapshot.persistedPath || snapshot.discard) return { skipped: true };
  const body = {
    format: 'snapcat-manifest/1',
    jobId,
    snapshotId,
    kind: snapshot.kind,
    formatType: snapshot.formatType,
    properties: snapshot.properties,
    checkpointPath: snapshot.externalPath,
    restorePath: snapshot.externalPath,
    savepointPath: snapshot.persistedPath,
    stateSize: snapshot.stateSize,
    triggeredAt: new Date(snapshot.triggeredAt).toISOString(),
    completedAt: snapshot.completedAt ? new Date(snapshot.completedAt).toISOString() : null,
    tasks: manifestTasks(snapshot),
  };
  try {
    const path = await storage.writeManifest(snapshot.persistedPath, body);
    await execute(bus, { type: 'RecordManifestWritten', jobId, snapshotId, path });
    return { path };
  } catch (error) {
    if (error instanceof LocationRefusedError) throw new UnrecoverableError(error.message);
    throw error;
  }
}

/** Every task of the snapshot with the state handles it reported (per-task sizes are in the log's acks). */
function manifestTasks(snapshot: SnapshotState) {
  const handles = new Map(taskHandlesOf(snapshot));
  return snapshot.expectedTasks.map((taskId) => ({ taskId, stateHandles: handles.get(taskId) ?? [] }));
}
