import { randomUUID } from 'node:crypto';
import {
  CommandRejected,
  decide,
  notRegistered,
  DEFAULT_NAMESPACE,
  durationMs,
  grantsNamespace,
  holdsSnapshotFor,
  isHeldFor,
  isIsoDuration,
  isSharedHandle,
  jobAreaOf,
  normaliseLocation,
  placesAround,
  restorePath,
  restoredDirectory,
  savepointDirectoryOf,
  restorePlan,
  taskHandlesOf,
  type CommandOf,
  type JobState,
  type SnapshotState,
  type RestoreStrategy,
  type SavepointSchedule,
  completedSnapshotAt,
  flinkCheckpointIdOf,
  isLooseLocation,
  isWithin,
  discardUnfinished,
  discardingSnapshotAt,
} from '@snapcat/domain';
import {
  JobDeletedError,
  otherJobsSnapshotsAt,
  type CataloguedJobIds,
  type DeletionFence,
  type FenceHeld,
  scheduleProblem,
  type ClusterRepository,
  type CommandBus,
  type CommandMetadata,
} from '@snapcat/application';
import type { SnapshotStorage } from '@snapcat/storage';
import type { z } from 'zod';
import { isLimited, requireScope, type Principal } from './access';
import {
  asClientPath,
  outsideRoots,
  requireSnapshotDirectory,
  requireStateFiles,
  requireWithinRoots,
  THROUGH_A_LINK,
} from './guards';
import { NamespaceStorage, checkpointAreaOf } from './namespace-storage';
import type { FlinkJobStatus } from './flink-status';
import { Problem } from './problem';
import { parse, requestSchemas } from './requests';

/** Who runs a use case: its request (the audit trail's correlation id) and its token (actor, namespaces). */
export interface Caller {
  requestId: string;
  principal?: Principal;
}

export interface UseCaseDeps {
  bus: CommandBus;
  /** Every directory a client names must lie inside its roots. */
  storage: SnapshotStorage;
  defaults: { checkpointDir: string; savepointDir: string };
  /** The registered Flink clusters a managed job may name (issue 19); absent: not checked. */
  clusters?: Pick<ClusterRepository, 'view'>;
  /** SNAPCAT_NAMESPACE_ROOTS: the storage a namespace's tokens may name (decision 0030); absent: none. */
  namespaceRoots?: Readonly<Record<string, readonly string[]>>;
  /** The catalogued jobs a restored path may be a snapshot of (the read model); absent: not asked. */
  jobIds?: CataloguedJobIds;
  /** Other jobs' deletions of what an acknowledgement or an import names (decision 0047); absent: not asked. */
  fence?: Pick<DeletionFence, 'recording'>;
  /** A managed job's status as Flink reports it, read when the job becomes managed; absent: not asked. */
  flinkJobStatus?: FlinkJobStatus;
}

/**
 * The commands clients send, written once for REST and GraphQL (issue 18, item 1). Each validates its input
 * with the request schemas (built from the domain's command schemas), confines the directories it names to
 * the storage roots, and runs the command with the caller's audit metadata and namespaces, which the domain
 * checks as it decides. Scopes are checked before (access.ts), from one rule table for both protocols.
 *
 * Failures are a Problem (bad input, a refused trigger) or a CommandRejected (the state refuses), each
 * naming the field (`path.jobId`, `body.kind`) and the rule: REST sends them as problem+json, GraphQL as
 * errors with the same rule and the field without its location.
 */
export function createUseCases(deps: UseCaseDeps) {
  const { bus, storage, defaults, clusters, namespaceRoots = {}, jobIds, flinkJobStatus } = deps;
  const schemas = requestSchemas(defaults);
  const namespaces = new NamespaceStorage(namespaceRoots, defaults);
  const context: UseCaseContext = {
    bus,
    storage,
    namespaces,
    anotherJobsSnapshotAt: (restoring, jobId, externalPath) =>
      anotherJobsSnapshotAt(bus, jobIds, restoring, jobId, externalPath),
    ownersOf: (jobId, named) => ownersOf(bus, jobIds, jobId, named),
    reserve: (jobId, places, fieldOf) => reserve(deps.fence, jobId, places, fieldOf),
    async requirePlaces(caller, jobId, places, registering = false) {
      // A caller limited to namespaces is held to them first: the real paths (a symbolic link on the way) and
      // the look-up below (a catalogued snapshot's directory, named) must not tell it of others' storage.
      const { principal } = caller;
      const limited = isLimited(principal) && places.some(([location]) => location !== undefined);
      if (!limited) await requireConfinedPlaces(storage, places);
      const state = await bus.load(jobId);
      if (limited && principal) {
        const own = namespaces.ownJob(principal, state);
        // A command on a job that is not registered answers 404, as one on another namespace's job does: a
        // 403 about the storage first would tell the two apart. Said here, before any look-up (the job may be
        // registered before the command's decision); a registration of another namespace's id is the
        // domain's to refuse (404, or 403 for a namespace the token lacks).
        if (own === 'hidden' && registering) return;
        if (own === 'hidden' || (own === null && !registering)) throw notRegistered(jobId);
        for (const [location, field] of places) namespaces.requirePlace(principal, location, field, own);
        await requireConfinedPlaces(storage, places);
      }
      // The default directories and the job's own are known places: only a new one is looked up (a command
      // naming none works while Redis is down).
      const { checkpointDir, savepointDir } = state.storage;
      const known = new Set(
        [defaults.checkpointDir, defaults.savepointDir, checkpointDir, savepointDir].map(normaliseLocation),
      );
      for (const [location, field] of places) {
        if (location !== undefined && !known.has(normaliseLocation(location))) {
          await requireOutsideImported(jobIds, location, field);
        }
      }
    },
    async requireUnclaimedArea({ principal }, jobId, existing, checkpointDir, namespace = DEFAULT_NAMESPACE) {
      if (!namespaces.isSharedPlace(principal, checkpointDir)) return;
      // A namespace the token lacks is the domain's to refuse (403), before anything here is said; so is a
      // hard-deleted job (undefined), and a registered one is the caller's already.
      if (!grantsNamespace(principal.namespaces, namespace) || existing?.registered !== false) return;
      const area = checkpointAreaOf(checkpointDir, jobId);
      if (!(await asClientPath('storage.checkpointDir', () => storage.holdsFiles(area)))) return;
      throw new CommandRejected(
        'CONFLICT',
        'jobId',
        'checkpoint-area-in-use',
        `${area} already holds files of a job the catalogue does not hold: a token limited to namespaces may ` +
          'not take on a shared directory’s files under a job id it chose (another team’s Flink job may write ' +
          'there). Register the job with a token of every namespace, or place its checkpoints in the ' +
          'namespace’s storage (SNAPCAT_NAMESPACE_ROOTS)',
      );
    },
    clusters,
    flinkJobStatus,
    schemas,
    job: (path) => parse(schemas.jobPath, path, 'path'),
    snapshot: (path) => parse(schemas.snapshotPath, path, 'path'),
    run: bus.execute.bind(bus),
  };
  return {
    ...jobUseCases(context),
    ...snapshotTakingUseCases(context),
    ...snapshotLifecycleUseCases(context),
  };
}
export type UseCases = ReturnType<typeof createUseCases>;

type RequestSchemas = ReturnType<typeof requestSchemas>;

/** What the use cases share: the bus, the storage roots, the request schemas and the path parsers. */
interface UseCaseContext {
  bus: CommandBus;
  storage: SnapshotStorage;
  /** What a token limited to namespaces may name in storage. */
  namespaces: NamespaceStorage;
  /**
   * Another catalogued job's completed snapshot `externalPath` is (not `jobId`'s), if any; `restoring` is the
   * job as its caller loaded it (undefined: hard-deleted).
   */
  anotherJobsSnapshotAt: (
    restoring: JobState | undefined,
    jobId: string,
    externalPath: string,
  ) => Promise<RestoredFrom | undefined>;
  /**
   * The other jobs what acknowledged files name belongs to, each with the field of its first file: those whose
   * layout they lie in, and the catalogued owners of the savepoint directories they lie in.
   */
  ownersOf: (jobId: string, named: NamedElsewhere) => Promise<Map<string, OwnedFiles>>;
  /** Places an acknowledgement or an import names, reserved until released (decision 0047); undefined: none. */
  reserve: (
    jobId: string,
    places: readonly string[],
    fieldOf: (place: string) => string,
  ) => Promise<FenceHeld | undefined>;
  /**
   * Places a command creates directories in (`[location, field]`, undefined: none named): inside the storage
   * roots, and for a caller limited to namespaces where `NamespaceStorage.requirePlace` allows.
   */
  /** `registering`: the job may be new (PUT /jobs); otherwise a job not registered is left to the command's 404. */
  requirePlaces: (
    caller: Caller,
    jobId: string,
    places: [string | undefined, string][],
    registering?: boolean,
  ) => Promise<void>;
  /**
   * A new job of a caller limited to namespaces, whose checkpoints go to a shared directory (the default):
   * its area `<checkpointDir>/<jobId>` holds no files yet (decision 0030). The area is the job's own to
   * name and to delete from, so a client-chosen id must not claim an uncatalogued Flink job's files.
   */
  requireUnclaimedArea: (
    caller: Caller,
    jobId: string,
    /** The job as it stands (undefined: hard-deleted; not read for a caller of every namespace). */
    existing: JobState | undefined,
    checkpointDir: string,
    namespace: string | undefined,
  ) => Promise<void>;
  clusters: UseCaseDeps['clusters'];
  flinkJobStatus: UseCaseDeps['flinkJobStatus'];
  schemas: RequestSchemas;
  job: (path: unknown) => z.infer<RequestSchemas['jobPath']>;
  snapshot: (path: unknown) => z.infer<RequestSchemas['snapshotPath']>;
  run: CommandBus['execute'];
}

/** A job: its configuration, status and savepoint schedule. */
function jobUseCases(context: UseCaseContext) {
  const { bus, requirePlaces, requireUnclaimedArea, clusters, flinkJobStatus, schemas, job, run } = context;
  return {
    async configureJob(caller: Caller, path: unknown, body: unknown) {
      const { jobId } = job(path);
      const input = parse(schemas.configureJob, body, 'body');
      await requirePlaces(
        caller,
        jobId,
        [
          [input.storage.checkpointDir, 'body.storage.checkpointDir'],
          [input.storage.savepointDir, 'body.storage.savepointDir'],
        ],
        true,
      );
      // Loaded once for both checks below, and only when one needs it: a limited caller's, a managed job's.
      const needed = isLimited(caller.principal) || input.source !== undefined;
      const existing = needed ? await bus.loadUnlessDeleted(jobId) : undefined;
      await requireUnclaimedArea(caller, jobId, existing, input.storage.checkpointDir, input.namespace);
      if (input.source) requireScope(caller.principal, 'operator');
      if (input.source && clusters) {
        // The job's namespace only when the caller may see it: another team's job is judged as an unregistered
        // one (the domain refuses it alike), so that the answer names no namespace the caller may not see.
        const namespace =
          input.namespace ??
          (existing && visibleTo(caller, existing) ? existing.namespace : DEFAULT_NAMESPACE);
        await requireClusterFor(clusters, input.source.cluster, namespace, isLimited(caller.principal));
      }
      // R67: a job becoming managed (registered, or given a source) has the status Flink reports, when the
      // caller names none: one Flink ended already is recorded as it is (JobDetailsInfo.state). Not asked for
      // another namespace's job, which the domain refuses as unknown: the cluster was called, with its
      // credentials, about a job the caller may not see (a review).
      const foreign = existing?.registered === true && !visibleTo(caller, existing);
      const becomesManaged =
        input.source !== undefined && !existing?.source && input.status === undefined && !foreign;
      const status = becomesManaged ? await flinkJobStatus?.(input.source!.cluster, jobId) : undefined;
      const command = {
        type: 'ConfigureJob' as const,
        jobId,
        ...input,
        ...(status ? { status } : {}),
        name: input.name ?? jobId,
      };
      return { jobId, ...(await run(command, metadataOf(caller))) };
    },

    async changeStatus(caller: Caller, path: unknown, body: unknown) {
      const { jobId } = job(path);
      const { status } = parse(schemas.changeStatus, body, 'body');
      return { jobId, ...(await run({ type: 'ChangeJobStatus', jobId, status }, metadataOf(caller))) };
    },

    async setSchedule(caller: Caller, path: unknown, body: unknown) {
      const { jobId } = job(path);
      const schedule = parse(schemas.schedule, body, 'body');
      requireValidSchedule(schedule);
      await requirePlaces(caller, jobId, [[schedule.targetDirectory, 'body.targetDirectory']]);
      const executed = await run({ type: 'SetSavepointSchedule', jobId, schedule }, metadataOf(caller));
      return { jobId, schedule, ...executed };
    },

    async removeSchedule(caller: Caller, path: unknown) {
      const { jobId } = job(path);
      return { jobId, ...(await run({ type: 'RemoveSavepointSchedule', jobId }, metadataOf(caller))) };
    },
  };
}

/** Taking a snapshot: the trigger, and the tasks' acknowledgements and declines. */
function snapshotTakingUseCases({
  bus,
  storage,
  namespaces,
  requirePlaces,
  schemas,
  job,
  snapshot,
  run,
  ownersOf,
  reserve,
}: UseCaseContext) {
  return {
    /** 409 `trigger-rejected` with Flink's reason when the pre-flight checks refuse it. */
    async trigger(caller: Caller, path: unknown, body: unknown) {
      const { jobId } = job(path);
      const input = parse(schemas.trigger, body, 'body');
      await requirePlaces(caller, jobId, [[input.targetDirectory, 'body.targetDirectory']]);
      if (input.terminate) await requireStopScope(bus, caller, jobId);
      const executed = await run(
        { type: 'TriggerSnapshot', jobId, ...input, triggerId: input.triggerId ?? randomUUID() },
        metadataOf(caller),
      );
      const { reply } = executed;
      if (!reply.accepted) {
        throw new Problem(
          409,
          'trigger-rejected',
          'Snapshot trigger rejected',
          `the ${input.kind.toLowerCase()} was not triggered: ${reply.reason}`,
          [{ field: 'body.kind', rule: reply.reason, message: `rejected: ${reply.reason}` }],
          { reason: reply.reason, triggerId: reply.triggerId },
        );
      }
      return { jobId, ...executed, reply };
    },

    /**
     * One acknowledgement or an array of them: the acks of one call are one entry of the job's queue, decided
     * in order and appended together. The hot path: nothing here but the parse and the command (and, for
     * acknowledgements naming files, their real paths).
     */
    async acknowledge(caller: Caller, path: unknown, body: unknown) {
      const { jobId, snapshotId } = snapshot(path);
      const many = Array.isArray(body);
      const acks = many ? parse(schemas.acks, body, 'body') : [parse(schemas.ack, body, 'body')];
      const field = (ack: number, handle: number) =>
        `body${many ? `[${ack}]` : ''}.stateHandles[${handle}].path`;
      const named = otherJobsNamed(storage, jobId, acks, field);
      if (isLimited(caller.principal)) {
        await namespaces.requireAcknowledged(caller.principal, jobId, snapshotId, acks, field, () =>
          bus.load(jobId),
        );
      }
      // Loose files are reserved before they are checked, until the acknowledgements are appended (decision
      // 0047); Flink's layouts name every file's job, so their acknowledgements ask nothing.
      const loose = named ? [...named.elsewhere.keys()].filter(isLooseLocation) : [];
      const reserved = await reserve(jobId, loose, (file) => named!.elsewhere.get(file)!);
      return whileReserved(reserved, async () => {
        // After the namespace check: the file system's answers must not tell a limited caller of others' places.
        await requireStateFiles(storage, acks, field);
        // After the namespace check: a limited caller learns nothing here of another namespace's jobs.
        if (named) await requireHoldsOf(bus, caller, jobId, await ownersOf(jobId, named));
        await requireStillReserved(reserved);
        return { many, replies: await acknowledgeTasks(bus, caller, { jobId, snapshotId, many }, acks) };
      });
    },

    async decline(caller: Caller, path: unknown, body: unknown) {
      const { jobId, snapshotId } = snapshot(path);
      const input = parse(schemas.decline, body, 'body');
      const command = { type: 'DeclineTask' as const, jobId, snapshotId, ...input };
      return { jobId, snapshotId, ...(await run(command, metadataOf(caller))) };
    },
  };
}

/** The acknowledgements of one call, decided in order and appended together: their replies. */
async function acknowledgeTasks(
  bus: CommandBus,
  caller: Caller,
  { jobId, snapshotId, many }: { jobId: string; snapshotId: number; many: boolean },
  acks: readonly z.infer<RequestSchemas['ack']>[],
) {
  const results = await bus
    .executeAll(
      acks.map((ack) => ({
        type: 'AcknowledgeTask' as const,
        jobId,
        snapshotId,
        ...ack,
        stateSize: ack.stateSize ?? handlesSize(ack.stateHandles),
      })),
      metadataOf(caller),
    )
    .catch((error: unknown) => {
      // A batch of one is decided as a single command: its refusal is still of `body[0]`.
      throw many && error instanceof CommandRejected && error.commandIndex === undefined
        ? error.at(0)
        : error;
    });
  return results.map((r) => r.reply);
}

/** A snapshot once taken: restored from, persisted, imported, discarded, its state handles. */
function snapshotLifecycleUseCases(context: UseCaseContext) {
  const { bus, storage, namespaces, requirePlaces, schemas, job, snapshot, run } = context;
  return {
    /**
     * R62: the job (re)started from one of its snapshots, from an external path, or from another job's
     * snapshot (`fromJobId`, decision 0032), which that job then holds.
     */
    async restore(caller: Caller, path: unknown, body: unknown) {
      const { jobId } = job(path);
      const { fromJobId, ...input } = parse(schemas.restore, body, 'body');
      if (fromJobId !== undefined)
        return { jobId, ...(await restoreFrom(bus, caller, jobId, fromJobId, input)) };
      const command = { type: 'RestoreSnapshot' as const, jobId, ...input };
      if (input.externalPath === undefined) return { jobId, ...(await run(command, metadataOf(caller))) };
      return {
        jobId,
        ...(await restoreFromPath(context, caller, { ...command, externalPath: input.externalPath })),
      };
    },

    /** R64: what to restore the job from; needs the job's state (the read model keeps no lineage). */
    async restorePlan(jobId: string, strategy: RestoreStrategy, maxAge: string | undefined) {
      const maxAgeMs = maxAge === undefined ? undefined : parseMaxAge(maxAge);
      const state = await bus.load(jobId);
      const plan = restorePlan(state, strategy, Date.now(), maxAgeMs);
      return { plan, state };
    },

    async persist(caller: Caller, path: unknown, body: unknown) {
      const { jobId, snapshotId } = snapshot(path);
      const input = parse(schemas.persist, body, 'body');
      await requirePlaces(caller, jobId, [[input.targetDirectory, 'body.targetDirectory']]);
      const command = { type: 'PersistSnapshot' as const, jobId, snapshotId, ...input };
      return { jobId, snapshotId, ...(await run(command, metadataOf(caller))) };
    },

    /**
     * R69: catalogues a savepoint or retained checkpoint that exists already. The path must lie inside the
     * storage roots and hold Flink's `_metadata`; its size is measured through the storage port.
     */
    async importSnapshot(caller: Caller, path: unknown, body: unknown) {
      const { jobId } = job(path);
      const input = parse(schemas.import, body, 'body');
      // A job the caller may not see is not found (R55) before its storage is looked at.
      const state = await bus.load(jobId);
      if (!visibleTo(caller, state)) {
        throw notRegistered(jobId);
      }
      // The caller's namespaces before the file system: a link in another namespace's storage is a 403 too.
      const own = isLimited(caller.principal) ? namespaces.ownJob(caller.principal, state) : null;
      namespaces.requireState(caller.principal, input.externalPath, 'body.externalPath', own);
      await requireWithinRoots(storage, input.externalPath, 'body.externalPath');
      return { jobId, ...(await importChecked(context, caller, { jobId, state }, input)) };
    },

    async discard(caller: Caller, path: unknown, body: unknown) {
      const { jobId, snapshotId } = snapshot(path);
      const input = parse(schemas.discard, body, 'body');
      const command = { type: 'RequestDiscard' as const, jobId, snapshotId, ...input };
      return { jobId, snapshotId, ...(await run(command, metadataOf(caller))) };
    },

    /**
     * The state handles a snapshot's tasks reported, by task: the one read that needs the job's state, as
     * the read model keeps sizes, not handles. The caller has checked that it may see the job.
     */
    async stateHandles(jobId: string, snapshotId: number) {
      const snapshot = (await bus.load(jobId)).snapshots.get(snapshotId);
      if (!snapshot) return [];
      return taskHandlesOf(snapshot).flatMap(([taskId, handles]) =>
        handles.map((handle) => ({ taskId, ...handle, shared: isSharedHandle(handle) })),
      );
    },
  };
}

/**
 * R69's import of a directory inside the roots: reserved (decision 0047) before it is checked and until it is
 * appended; it must hold one snapshot that is no other job's, nor inside one.
 */
async function importChecked(
  { bus, storage, anotherJobsSnapshotAt, ownersOf, reserve, run }: UseCaseContext,
  caller: Caller,
  { jobId, state }: { jobId: string; state: JobState },
  input: z.infer<RequestSchemas['import']>,
) {
  const reserved = await reserve(jobId, [restoredDirectory(input.externalPath)], () => 'body.externalPath');
  return whileReserved(reserved, async () => {
    const stateSize = await requireSnapshotDirectory(storage, input.externalPath, 'body.externalPath');
    await requireNotAnotherJobs(bus, caller, anotherJobsSnapshotAt, state, input.externalPath);
    await requireNotInsideAnotherJobs(bus, caller, ownersOf, jobId, input.externalPath);
    await requireStillReserved(reserved);
    return run({ type: 'ImportSnapshot' as const, jobId, ...input, stateSize }, metadataOf(caller));
  });
}

/**
 * Just before the append: the reservation must still be held (decision 0047). One lost (a Redis that restarted
 * empty or failed over) may have let a deletion pass that would not see this: 503, nothing recorded.
 */
async function requireStillReserved(reserved: FenceHeld | undefined): Promise<void> {
  if (!reserved || (await reserved.stillHeld())) return;
  throw new Problem(
    503,
    'reservation-lost',
    'Reservation lost',
    'what this request names was reserved against deletions in Redis, and Redis lost the reservation (it ' +
      'restarted or failed over) before the request was recorded: nothing was recorded; retry',
  );
}

/**
 * Runs `record` under a reservation (decision 0047), then lets it go. A refusal recorded nothing, so it lets
 * go too; any other failure may still be appended (a store that did not answer in time): the reservation is
 * left to lapse, by when the append is in the log, where the deletions' lookups see it, or never will be.
 */
async function whileReserved<T>(reserved: FenceHeld | undefined, record: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await record();
  } catch (error) {
    if (error instanceof Problem || error instanceof CommandRejected) await reserved?.release();
    else reserved?.abandon();
    throw error;
  }
  await reserved?.release();
  return result;
}

/**
 * A directory laid out under another catalogued job's id (`<checkpointDir>/<jobId>/chk-<n>`) is that job's:
 * imported here too, either job's discard would delete it under the other (decision 0031); so is another
 * job's completed snapshot elsewhere (a savepoint). A previous run's checkpoint under a job id the catalogue
 * does not hold imports.
 */
async function requireNotAnotherJobs(
  bus: CommandBus,
  caller: Caller,
  anotherJobsSnapshotAt: UseCaseContext['anotherJobsSnapshotAt'],
  importing: JobState,
  externalPath: string,
): Promise<void> {
  const { jobId } = importing;
  // Another namespace's job is judged as an id the catalogue does not hold (R55, decision 0033): its files
  // lie in its namespace's storage, which a caller limited to others cannot name.
  const visible = async (id: string) => {
    const state = await bus.loadUnlessDeleted(id);
    return state !== undefined && visibleTo(caller, state);
  };
  const owner = jobAreaOf(normaliseLocation(externalPath));
  if (owner !== undefined && owner !== jobId && (await visible(owner))) {
    throw new CommandRejected(
      'CONFLICT',
      'externalPath',
      'another-jobs-checkpoint',
      `${externalPath} lies in the checkpoint directory of job ${owner}, which the catalogue holds: ` +
        `restore from it (POST /api/v1/jobs/${jobId}/restores with its externalPath) rather than import it`,
    );
  }
  // Another run's checkpoint under an id the catalogue does not hold may have been adopted by another job.
  if (owner === jobId) return;
  const from = await anotherJobsSnapshotAt(importing, jobId, externalPath);
  if (!from || !(await visible(from.jobId))) return;
  throw new CommandRejected(
    'CONFLICT',
    'externalPath',
    'another-jobs-snapshot',
    `${externalPath} is a completed snapshot of another job the catalogue holds: imported here too, either ` +
      'job’s discard would delete it under the other. Restore from it instead ' +
      `(POST /api/v1/jobs/${jobId}/restores with fromJobId and its externalPath)`,
  );
}

/**
 * A directory inside another job's completed savepoint or imported snapshot is part of it: imported, its
 * discard would delete files of that snapshot, and that snapshot's discard the whole import (a walkthrough
 * imported a savepoint's `sub/` and its discard deleted one of the savepoint's acknowledged files); restored
 * from, no hold keeps it. Refused (409 `another-jobs-snapshot`), as importing the snapshot itself is; found as
 * an acknowledgement's files are (`ownersOf`).
 */
async function requireNotInsideAnotherJobs(
  bus: CommandBus,
  caller: Caller,
  ownersOf: UseCaseContext['ownersOf'],
  jobId: string,
  externalPath: string,
  use: 'imported' | 'restored from' = 'imported',
): Promise<void> {
  const directory = restoredDirectory(externalPath);
  const savepoint = savepointDirectoryOf(directory);
  const field = 'body.externalPath';
  const owners = await ownersOf(jobId, {
    jobs: new Map(),
    savepoints: new Map(savepoint ? [[savepoint, field]] : []),
    elsewhere: new Map(savepoint ? [] : [[directory, field]]),
  });
  for (const owner of owners.keys()) {
    const state = await bus.loadUnlessDeleted(owner);
    if (!state || !visibleTo(caller, state)) continue; // R55: as an id the catalogue does not hold
    throw new CommandRejected(
      'CONFLICT',
      'externalPath',
      'another-jobs-snapshot',
      `${externalPath} lies inside a snapshot of job ${owner}: ${use}, ` +
        (use === 'imported'
          ? 'either job’s discard would delete files of the other'
          : 'no hold would keep it, and that snapshot’s discard deletes it') +
        `. Restore from that snapshot instead (POST /api/v1/jobs/${jobId}/restores with fromJobId)`,
    );
  }
}

/** Another job's completed snapshot a restore starts from, which that job holds for it (decision 0032). */
interface RestoredFrom {
  jobId: string;
  snapshotId: number;
  restorePath: string;
  /** The id Flink's metadata of it holds: the restored job's snapshot ids continue above it. */
  checkpointId: number;
}

/** The restore, recorded with the other job it is from, and the hold that job places for it first. */
async function restoreHolding(
  bus: CommandBus,
  caller: Caller,
  command: CommandOf<'RestoreSnapshot'>,
  restoring: JobState | undefined,
  from: RestoredFrom | undefined,
) {
  const { jobId } = command;
  // Only for the caller's own registered job: the domain refuses the rest (R55) without a hold placed.
  const own = restoring !== undefined && visibleTo(caller, restoring);
  // The hold is for the restore about to be recorded: the job's next restore count.
  const holder = { jobId, restore: (restoring?.restores.count ?? 0) + 1 };
  const restore = from ? { ...command, fromJobId: from.jobId } : command;
  // A restore the job's rules refuse now (a terminal job, say) places no hold: the hold and its release
  // were two events in the other job's log, and its webhooks, for nothing (a review). Decided on the state
  // read, appending nothing; one refused only by what changes meanwhile still releases its hold below.
  if (own && from) decide(restoring, restore, Date.now());
  const held = own && from && (await holdRestoredSnapshot(bus, caller, holder, from));
  try {
    return await bus.execute(restore, metadataOf(caller));
  } catch (error) {
    // The restore was refused: a hold it placed goes with it (one that was there before stays).
    if (held) await bus.execute({ type: 'ReleaseSnapshotHolds', ...held }, systemMetadataOf(caller));
    throw error;
  }
}

/**
 * Decision 0032: a restore from another catalogued job's snapshot holds that snapshot in its job before the
 * restore is recorded, so no discard of that job deletes files the restored job may use; the process manager
 * releases it once the restored job's live snapshots use none. The hold is the catalogue's own protection,
 * placed whatever the caller's namespaces.
 */
async function holdRestoredSnapshot(
  bus: CommandBus,
  caller: Caller,
  { jobId, restore }: { jobId: string; restore: number },
  from: RestoredFrom,
): Promise<{ jobId: string; snapshotId: number; holderJobId: string; holderRestore: number } | undefined> {
  const hold = { jobId: from.jobId, snapshotId: from.snapshotId, holderJobId: jobId, holderRestore: restore };
  const { reply } = await bus.execute({ type: 'HoldSnapshot', ...hold }, systemMetadataOf(caller));
  return reply.changed ? hold : undefined;
}

/**
 * The other catalogued job's completed snapshot a path is (`otherJobsSnapshotsAt`), as a restore's source;
 * undefined when it is none. Two owners is a 409: the caller names the one with `fromJobId`.
 */
async function anotherJobsSnapshotAt(
  bus: CommandBus,
  jobIds: CataloguedJobIds | undefined,
  restoring: JobState | undefined,
  jobId: string,
  externalPath: string,
): Promise<RestoredFrom | undefined> {
  // The job's own snapshot is nobody else's: no lookup (which needs Redis) for the commonest restore.
  if (restoring && completedSnapshotAt(restoring, externalPath)) return undefined;
  const found = await otherJobsSnapshotsAt(bus, jobIds, jobId, externalPath);
  const discarding = found.find(({ snapshot }) => isBeingDiscarded(snapshot));
  if (discarding) {
    throw new CommandRejected(
      'CONFLICT',
      'externalPath',
      'being-deleted',
      `${externalPath} lies in snapshot ${discarding.snapshot.snapshotId} of another job, being discarded: ` +
        'its files are being deleted (decision 0047)',
    );
  }
  // Not held (only a completed one can be): its job would delete it under the restore, or the import.
  if (found.some(({ owner, snapshot }) => owner.pending.has(snapshot.snapshotId))) {
    throw new CommandRejected(
      'CONFLICT',
      'externalPath',
      'snapshot-pending',
      `${externalPath} names another job's snapshot still in progress: ` +
        'no hold can keep it for this job before it completes (retry then)',
    );
  }
  if (found.length <= 1) return found[0] && restoreSourceOf(found[0].owner, found[0].snapshot);
  const message = `${externalPath} is a completed snapshot of more than one other job: name the one with fromJobId`;
  throw new Problem(409, 'conflict', 'Conflict', message, [
    { field: 'body.externalPath', rule: 'one-owner', message },
  ]);
}

/** Its discard requested and not done (nor failed for good): its files are being deleted, no hold keeps them. */
const isBeingDiscarded = (snapshot: SnapshotState | undefined): boolean =>
  discardUnfinished(snapshot?.discard);

/** 409 naming the field and the rule, its detail prefixed with the field. */
const fieldConflict = (field: string, rule: string, detail: string): Problem =>
  new Problem(409, 'conflict', 'Conflict', `${field}: ${detail}`, [{ field, rule, message: detail }]);

/** A restore from a path: a limited caller may name only its namespace's; another job's snapshot is held. */
async function restoreFromPath(
  { bus, storage, namespaces, anotherJobsSnapshotAt, ownersOf }: UseCaseContext,
  caller: Caller,
  command: CommandOf<'RestoreSnapshot'> & { externalPath: string },
) {
  const { jobId, externalPath } = command;
  // Loaded once, for the path's check and the hold (a hard-deleted job is refused by the command).
  const state = await bus.loadUnlessDeleted(jobId);
  if (isLimited(caller.principal)) {
    // Not registered, or another namespace's: the command's 404 (a 403 first would tell them apart), before
    // the path is resolved on the file system or looked up (a link there, a snapshot of another namespace).
    if (!state || !visibleTo(caller, state)) throw notRegistered(jobId);
    const own = namespaces.ownJob(caller.principal, state);
    namespaces.requireState(caller.principal, externalPath, 'body.externalPath', own);
  }
  // Through a link below a root it is the place the link points to, whose snapshot no lookup would find.
  if (storage.spelledWithinRoots(externalPath)) {
    await requireWithinRoots(storage, externalPath, 'body.externalPath', THROUGH_A_LINK);
  }
  const from = await anotherJobsSnapshotAt(state, jobId, externalPath);
  // Inside another job's snapshot (not its directory): no hold would keep it, and that snapshot's discard
  // deletes it (a walkthrough restored from an import's subdirectory, then the import's discard deleted it).
  if (!from) await requireNotInsideAnotherJobs(bus, caller, ownersOf, jobId, externalPath, 'restored from');
  // As with `fromJobId`: the job's snapshot ids continue above the one Flink's metadata of it holds.
  const checkpointId = command.checkpointId ?? from?.checkpointId;
  return restoreHolding(
    bus,
    caller,
    { ...command, ...(checkpointId !== undefined ? { checkpointId } : {}) },
    state,
    from,
  );
}

/** A restore from another job's snapshot named by `fromJobId`, which that job holds for it. */
async function restoreFrom(
  bus: CommandBus,
  caller: Caller,
  jobId: string,
  fromJobId: string,
  input: Omit<CommandOf<'RestoreSnapshot'>, 'type' | 'jobId' | 'fromJobId'>,
) {
  const state = await bus.loadUnlessDeleted(jobId);
  const from = await anotherJobsSnapshot(bus, caller, jobId, fromJobId, input);
  const command = {
    type: 'RestoreSnapshot' as const,
    jobId,
    externalPath: from.restorePath,
    checkpointId: input.checkpointId ?? from.checkpointId,
    claimMode: input.claimMode,
    allowNonRestoredState: input.allowNonRestoredState,
  };
  return restoreHolding(bus, caller, command, state, from);
}

/**
 * `fromJobId` of a restore: the job must exist for the caller (R55), and `snapshotId` (or `externalPath`) name
 * one of its completed, externally addressable snapshots; a savepoint's directory names only six characters
 * of its job's id, so a restore from another job's savepoint is held only when the caller names the job.
 */
async function anotherJobsSnapshot(
  bus: CommandBus,
  caller: Caller,
  jobId: string,
  fromJobId: string,
  input: { snapshotId?: number; externalPath?: string },
): Promise<RestoredFrom> {
  if (fromJobId === jobId) {
    throw new CommandRejected(
      'INVALID',
      'fromJobId',
      'another-job',
      'fromJobId names another job; leave it out to restore from one of this job’s snapshots',
    );
  }
  const state = await bus.loadUnlessDeleted(fromJobId);
  if (!state || !visibleTo(caller, state)) {
    throw new CommandRejected('NOT_FOUND', 'fromJobId', 'job-exists', `job ${fromJobId} is not registered`);
  }
  const snapshot =
    input.snapshotId !== undefined
      ? restoreSourceOf(state, state.snapshots.get(input.snapshotId))
      : restoreSourceOf(state, completedSnapshotAt(state, input.externalPath!));
  if (snapshot) return snapshot;
  const [field, named] =
    input.snapshotId !== undefined
      ? ['body.snapshotId', `snapshot ${input.snapshotId}`]
      : ['body.externalPath', input.externalPath!];
  const message = `${named} is not a completed, externally addressable snapshot of job ${fromJobId}`;
  // A Problem, not a CommandRejected: snapshotId is the body's here, not the path's.
  throw new Problem(409, 'conflict', 'Conflict', message, [{ field, rule: 'from-job-snapshot', message }]);
}

/** The snapshot as a restore's source, if it is a completed, externally addressable one. */
function restoreSourceOf(state: JobState, snapshot: SnapshotState | undefined): RestoredFrom | undefined {
  const path = snapshot ? restorePath(snapshot) : null;
  if (!snapshot || path === null) return undefined;
  const checkpointId = flinkCheckpointIdOf(snapshot);
  return { jobId: state.jobId, snapshotId: snapshot.snapshotId, restorePath: path, checkpointId };
}

/**
 * A managed job's stop (a savepoint with `terminate`) is snapcat stopping it in Flink, with the headers an
 * admin registered: an operator's, as naming the cluster is (a runtime reports its own stop). Another
 * namespace's job is left to the domain's 404 (R55).
 */
async function requireStopScope(bus: CommandBus, caller: Caller, jobId: string): Promise<void> {
  const state = await bus.load(jobId);
  if (state.source && visibleTo(caller, state)) requireScope(caller.principal, 'operator');
}

/** Whether the job is registered in one of the caller's namespaces (R55: otherwise it does not exist for it). */
function visibleTo({ principal }: Caller, state: JobState): boolean {
  return state.registered && grantsNamespace(principal?.namespaces ?? '*', state.namespace);
}

/** The caller's audit metadata without its namespaces: for what the catalogue does to protect state. */
function systemMetadataOf({ requestId, principal }: Caller): CommandMetadata {
  return { correlationId: requestId, actor: principal?.name };
}

/**
 * R67: a managed job's cluster must be registered, or its connector would have nothing to call, and serve
 * the job's namespace: snapcat drives the jobs of the cluster (savepoints, stops) with its admin's
 * credentials, so a team names only the clusters an admin opened to it (decision 0033).
 */
async function requireClusterFor(
  clusters: Pick<ClusterRepository, 'view'>,
  cluster: string,
  namespace: string,
  /** A caller limited to namespaces may not read clusters: a missing one answers as one not serving it. */
  limited: boolean,
): Promise<void> {
  const view = await clusters.view(cluster);
  const field = 'body.source.cluster';
  if (!view && !limited) {
    const message = `no Flink cluster ${cluster} is registered (PUT /api/v1/clusters/${cluster})`;
    throw new Problem(400, 'invalid-request', 'Invalid request', `${field}: ${message}`, [
      { field, rule: 'cluster-registered', message },
    ]);
  }
  if (view && grantsNamespace(view.namespaces, namespace)) return;
  const message = `Flink cluster ${cluster} does not serve namespace ${namespace}`;
  throw new Problem(403, 'forbidden', 'Forbidden', `${field}: ${message}`, [
    { field, rule: 'cluster-namespace', message },
  ]);
}

/** A schedule that fires: a cron expression some date matches in a known time zone, an interval of at most a century; else a 400 naming the field. */
function requireValidSchedule(schedule: SavepointSchedule): void {
  const problem = scheduleProblem(schedule, Date.now());
  if (!problem) return;
  const field = `body.${problem.field}`;
  throw new Problem(400, 'invalid-request', 'Invalid request', `${field}: ${problem.message}`, [
    { field, rule: problem.rule, message: problem.message },
  ]);
}

/** What the caller's events record (its request id and token name), and the namespaces it may touch. */
function metadataOf({ requestId, principal }: Caller): CommandMetadata {
  return { correlationId: requestId, actor: principal?.name, namespaces: principal?.namespaces };
}

/** A restore plan's maxAge: an ISO-8601 duration (PT30M, P1D), else a 400 naming the field. */
function parseMaxAge(maxAge: string): number {
  if (!isIsoDuration(maxAge)) {
    throw new Problem(
      400,
      'invalid-request',
      'Invalid request',
      `maxAge: ${maxAge} is not an ISO-8601 duration`,
      [
        {
          field: 'maxAge',
          rule: 'iso-duration',
          message: 'must be an ISO-8601 duration such as PT30M or P1D',
        },
      ],
    );
  }
  return durationMs(maxAge);
}

/** What an acknowledgement without `stateSize` reports: its handles' bytes, as Flink sums a subtask's state. */
function handlesSize(handles: readonly { sizeBytes: number }[]): number {
  let bytes = 0;
  for (const handle of handles) bytes += handle.sizeBytes;
  return bytes;
}

/**
 * A place for new snapshots (a checkpoint or savepoint directory, a savepoint's target) inside a checkpoint's
 * part of a job's area (`<jobId>/chk-N`, `shared`, `taskowned`) or in a savepoint's directory is refused (400
 * `outside-snapshots`): that snapshot's discard deletes its directory whole, with what was placed in it (a
 * walkthrough's savepoint targeted into another job's `chk-2` was deleted when that job subsumed it).
 */
function requireOutsideSnapshots(location: string | undefined, field: string): void {
  if (location === undefined) return;
  const normalised = normaliseLocation(location);
  if (jobAreaOf(normalised) === undefined && savepointDirectoryOf(normalised) === undefined) return;
  throw insideSnapshots(
    field,
    "lies inside a checkpoint's directory or area (`<jobId>/chk-N`, `shared`, `taskowned`) or a savepoint's " +
      "directory, which that snapshot's discard deletes whole: choose a place beside them",
  );
}

/** The 400 `outside-snapshots` of a place a snapshot's discard would delete with it. */
function insideSnapshots(field: string, message: string): Problem {
  return new Problem(400, 'invalid-request', 'Invalid request', `${field}: ${message}`, [
    { field, rule: 'outside-snapshots', message },
  ]);
}

/** Each place inside the storage roots by its real path, and none inside a snapshot's directory by its name. */
async function requireConfinedPlaces(
  storage: SnapshotStorage,
  places: readonly (readonly [string | undefined, string])[],
): Promise<void> {
  for (const [location, field] of places) {
    await requireWithinRoots(storage, location, field);
    requireOutsideSnapshots(location, field);
  }
}

/**
 * A place for new snapshots inside a catalogued snapshot's directory that no Flink layout names (an import's:
 * `directoriesNotNamedFor`, indexed by the read model) is refused as well (400 `outside-snapshots`): that
 * snapshot's discard deletes its directory whole (a walkthrough registered a job whose checkpoint directory
 * lay in another job's import, whose discard then deleted the job's latest checkpoint). Asked only when a
 * command names a place: the read model must answer (503 otherwise).
 */
async function requireOutsideImported(
  jobIds: CataloguedJobIds | undefined,
  location: string | undefined,
  field: string,
): Promise<void> {
  if (location === undefined || !jobIds?.withSnapshotsIn) return;
  const [directory] = (await jobIds.withSnapshotsIn([...placesAround(normaliseLocation(location))])).keys();
  if (directory === undefined) return;
  throw insideSnapshots(
    field,
    `lies inside the directory of a catalogued snapshot (${directory}), which its discard deletes whole: ` +
      'choose a place beside it',
  );
}

/**
 * The other jobs what acknowledged files name belongs to (`UseCaseContext.ownersOf`), each with the field of
 * its first file.
 */
async function ownersOf(
  bus: CommandBus,
  jobIds: CataloguedJobIds | undefined,
  jobId: string,
  named: NamedElsewhere,
): Promise<Map<string, OwnedFiles>> {
  const owners = new Map<string, OwnedFiles>();
  const add = (owner: string, field: string, snapshotId?: number) => {
    if (owner === jobId) return;
    const owned = owners.get(owner) ?? { field, snapshots: new Set<number>() };
    if (snapshotId !== undefined) owned.snapshots.add(snapshotId);
    owners.set(owner, owned);
  };
  for (const [owner, field] of named.jobs) add(owner, field);
  if (named.savepoints.size === 0 && named.elsewhere.size === 0) return owners;
  // A live snapshot's directory of the job's own (the savepoint being acknowledged, the commonest) is no
  // other job's (an import refuses another's): no lookup, which needs Redis and a caught-up read model.
  const own = (await bus.load(jobId)).sharedState.directories;
  for (const [directory, field] of named.savepoints) {
    if (own.has(directory)) continue;
    const found = await otherJobsSnapshotsAt(bus, jobIds, jobId, directory);
    for (const { owner, snapshot } of found) add(owner.jobId, field, snapshot.snapshotId);
  }
  // Files in no directory Flink's layout names for their owner (an import's, another run's adopted
  // checkpoint) are looked up by every directory they lie in, in one round trip.
  const around = new Map<string, string[]>();
  for (const [location] of named.elsewhere) {
    // Laid out under a catalogued job's id: that job's (importing a place in its area is refused), held or
    // refused by requireHoldsOf without Redis (a job restored from another's checkpoint names its files).
    const area = jobAreaOf(location);
    if (area !== undefined && (await bus.loadUnlessDeleted(area))?.registered) continue;
    const places = [...placesAround(location)];
    if (!places.some((place) => own.has(place))) around.set(location, places);
  }
  if (around.size === 0 || !jobIds?.withSnapshotsIn) return owners;
  const found = await jobIds.withSnapshotsIn([...new Set([...around.values()].flat())]);
  for (const [location, places] of around) {
    const field = named.elsewhere.get(location)!;
    for (const place of places) {
      for (const owner of found.get(place) ?? []) {
        // The owner's snapshot at that directory (the index names the job; its state names the snapshot).
        const state = await bus.loadUnlessDeleted(owner);
        const snapshot = state && (completedSnapshotAt(state, place) ?? discardingSnapshotAt(state, place));
        add(owner, field, snapshot?.snapshotId);
      }
    }
  }
  return owners;
}

/**
 * Another job's files an acknowledgement names: the field of the first, and the snapshots (savepoints,
 * imports) whose directories they lie in, each of which this job must hold; none for files of its checkpoint
 * area, which any hold on its snapshots keeps (they are shared across its checkpoints).
 */
interface OwnedFiles {
  field: string;
  snapshots: Set<number>;
}

/**
 * What acknowledged files name of other jobs, each with the field of its first file: the jobs whose Flink
 * layout (`<dir>/<jobId>/shared/…`) they lie in, the savepoint directories (`savepoint-<6 of an id>-…`)
 * they lie in, whose owner the catalogue is asked for, and every file outside the job's own area that is in
 * no savepoint directory, whose directories are looked up among the imported ones (`elsewhere`).
 */
interface NamedElsewhere {
  jobs: Map<string, string>;
  savepoints: Map<string, string>;
  elsewhere: Map<string, string>;
}

/**
 * Checks every state handle of the acknowledgements on their spelling, and answers what they name of other
 * jobs (undefined: nothing). A file outside the roots could never be deleted: its snapshot's discard would
 * fail for good, and a cleanup of it would hold the file as being deleted for good (decision 0042).
 */
function otherJobsNamed(
  storage: SnapshotStorage,
  jobId: string,
  acks: readonly { stateHandles: readonly { path: string }[] }[],
  field: (ack: number, handle: number) => string,
): NamedElsewhere | undefined {
  let named: NamedElsewhere | undefined;
  for (const [a, { stateHandles }] of acks.entries()) {
    for (const [h, handle] of stateHandles.entries()) {
      if (!storage.spelledWithinRoots(handle.path)) throw outsideRoots(field(a, h));
      const location = normaliseLocation(handle.path);
      const owner = jobAreaOf(location);
      if (owner === jobId) continue; // the commonest: the job's own checkpoint area
      const savepoint = owner === undefined ? savepointDirectoryOf(location) : undefined;
      named ??= { jobs: new Map(), savepoints: new Map(), elsewhere: new Map() };
      const first = (place: Map<string, string>, key: string) => {
        if (!place.has(key)) place.set(key, field(a, h));
      };
      if (owner !== undefined) first(named.jobs, owner);
      if (savepoint !== undefined) first(named.savepoints, savepoint);
      else first(named.elsewhere, location);
    }
  }
  return named;
}

/**
 * Decision 0047: what an acknowledgement (its loose files) or an import (its directory) names is reserved
 * until released, so that another job's deletion that has not seen it in the read model yet keeps it.
 * Undefined: nothing to reserve, or no fence.
 */
async function reserve(
  fence: UseCaseDeps['fence'],
  jobId: string,
  places: readonly string[],
  fieldOf: (place: string) => string,
): Promise<FenceHeld | undefined> {
  if (!fence || places.length === 0) return undefined;
  return reserved(await fence.recording(jobId, places), fieldOf);
}

/**
 * A reservation (decision 0047), unless another job's deletion under way meets what it names (it marked the
 * place, one it lies in, or one inside it, before this): then a 409 `being-deleted` naming the field, since
 * that deletion's lookup may not have seen what is being recorded, and it may be gone as it is recorded.
 */
async function reserved(held: FenceHeld, fieldOf: (place: string) => string): Promise<FenceHeld> {
  const [conflict] = held.conflicts;
  if (!conflict) return held;
  await held.release();
  const [place, [marked = place]] = conflict;
  const field = fieldOf(place);
  const where =
    place === marked
      ? 'is'
      : isWithin(place, marked)
        ? `lies in ${marked}, which is`
        : `holds ${marked}, which is`;
  const detail =
    `${where} being deleted by another job's discard or cleanup, or by the orphan sweep, which had not seen ` +
    'this request: it may be ' +
    "gone as it is recorded. Retry once the deletion is over, if it is still there (what another job's live " +
    'snapshots use is kept; the rest is deleted)';
  throw fieldConflict(field, 'being-deleted', detail);
}

/**
 * A file laid out under another catalogued job's id (`<dir>/<otherJobId>/shared/…`), or in another catalogued
 * job's completed savepoint (`savepoint-<6 of its id>-…`), is that job's: it deletes it when its own snapshots
 * no longer need it, knowing nothing of this job's references (the registry is per job, decision 0011).
 * Flink's tasks name another job's files only after restoring from its snapshot (a native savepoint's after a
 * LEGACY or CLAIM restore), and a restore recorded here holds that snapshot, files and all, while this job may
 * use them (decision 0032). An acknowledgement naming such a file with no hold of this job on any of that
 * job's snapshots (on the very snapshot, for a savepoint's or an import's file) is refused (409
 * `restore-recorded`): without it the file would be deleted under the checkpoint that names it.
 * `foreign`: each other job named, with the field of its first file and the snapshots its files lie in.
 */
async function requireHoldsOf(
  bus: CommandBus,
  caller: Caller,
  jobId: string,
  foreign: ReadonlyMap<string, OwnedFiles>,
) {
  for (const [owner, { field, snapshots }] of foreign) {
    let state: JobState;
    try {
      state = await bus.load(owner);
    } catch (error) {
      if (error instanceof JobDeletedError) continue; // gone: nothing of it deletes the file
      throw error;
    }
    // Not catalogued, snapcat never deletes its files; held for this job, it keeps them. Another namespace's
    // job is judged as an id the catalogue does not hold (R55, decision 0033: the answer must not tell them
    // apart); its files lie in its namespace's storage, which this caller cannot name.
    // Files of a savepoint or an import: a hold on that very snapshot (a hold on another of the job's keeps
    // none of them; a walkthrough's savepoint was discarded under such an acknowledgement).
    const held =
      snapshots.size > 0
        ? [...snapshots].every((id) => isHeldFor(state.snapshots.get(id), jobId))
        : holdsSnapshotFor(state, jobId);
    if (!visibleTo(caller, state) || held) continue;
    const discarding = [...snapshots].filter((id) => isBeingDiscarded(state.snapshots.get(id)));
    if (discarding.length > 0) {
      const detail =
        `names a file of snapshot ${discarding.join(', ')} of job ${owner}, being discarded: its files are ` +
        'being deleted (decision 0047)';
      throw fieldConflict(field, 'being-deleted', detail);
    }
    const pending = [...snapshots].filter((id) => state.pending.has(id));
    if (pending.length > 0) {
      const detail =
        `names a file of snapshot ${pending.join(', ')} of job ${owner}, still in progress: no hold can keep ` +
        `it for this job before it completes, and job ${owner} would delete it while this checkpoint needs it`;
      throw fieldConflict(field, 'snapshot-pending', detail);
    }
    const which =
      snapshots.size > 0 ? `snapshot ${[...snapshots].join(', ')} of ${owner}` : `a snapshot of ${owner}`;
    const detail =
      `names a file of job ${owner}, and no restore of this job from ${which} is recorded: ` +
      `job ${owner} would delete it while this checkpoint needs it. Record the restore first ` +
      `(POST /api/v1/jobs/${jobId}/restores)`;
    throw fieldConflict(field, 'restore-recorded', detail);
  }
}
