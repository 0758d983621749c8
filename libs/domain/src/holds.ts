import {
  checkpointAreaOf,
  isWithin,
  jobAreaOf,
  normaliseLocation,
  savepointJobPrefixOf,
} from './shared-state';
import { discardsOn, propertiesFor } from './properties';
import { isTerminal } from './schemas';
import {
  mirroredRestoreFrom,
  ownCheckpointArea,
  planningJobOf,
  restoredArea,
  restoredFromJob,
  type FormerRestoreOwner,
  type JobState,
  type SnapshotState,
} from './state';

/**
 * R67: Flink owns a managed job's checkpoints, and deletes in their area itself: `<checkpointDir>/<jobId>/`
 * (`chk-N/`, `shared/`, `taskowned/`; Flink's `FsCheckpointStorageAccess`), wherever its mirrored
 * checkpoints lie. The mirror records no state handles, so no reference names the incremental `shared/`
 * files its checkpoints use: the orphan sweep keeps these areas whole, whatever the job's status (a
 * checkpoint Flink retained when the job ended still needs them). Normalised; none for a job whose
 * clients report its snapshots.
 */
export function flinkOwnedAreas(state: JobState): string[] {
  if (!state.source) return [];
  const areas = new Set([ownCheckpointArea(state)]);
  for (const snapshot of state.snapshots.values()) {
    const path = snapshot.flinkCheckpointId === null ? undefined : snapshot.externalPath;
    const area = path && checkpointAreaOf(normaliseLocation(path));
    if (area) areas.add(area);
  }
  return [...areas];
}

/**
 * The checkpoint areas (`<checkpointDir>/<jobId>`) of the job's live imported checkpoints (R69): a retained
 * incremental checkpoint's `_metadata` names files in its area's `shared/` and `taskowned/`, which no
 * acknowledgement listed, so the orphan sweep keeps the whole area while the import is live (a walkthrough's
 * sweep deleted them, and the import, still COMPLETED, restored nothing). Its discard deletes its own
 * directory only; the rest is then the sweep's. Normalised.
 */
export function importedCheckpointAreas(state: JobState): string[] {
  const areas = new Set<string>();
  for (const id of state.completed) {
    const snapshot = state.snapshots.get(id)!;
    const area = snapshot.imported ? checkpointAreaOf(normaliseLocation(snapshot.externalPath)) : undefined;
    if (area) areas.add(area);
  }
  return [...areas];
}

/**
 * Where a pending snapshot's tasks may have written what they have not acknowledged yet: the job's checkpoint
 * area (`chk-N/`, `shared/`) and each pending snapshot's directory, which the orphan sweep keeps while one is
 * pending. Its grace counts from a file's time: a timeout longer than the grace let a walkthrough's sweep
 * delete an upload the acknowledgement then named in a completed checkpoint. Normalised; none when nothing is
 * pending.
 */
export function pendingSnapshotAreas(state: JobState): string[] {
  if (state.pending.size === 0) return [];
  const areas = new Set([ownCheckpointArea(state)]);
  for (const id of state.pending) areas.add(normaliseLocation(state.snapshots.get(id)!.externalPath));
  return [...areas];
}

/**
 * What the job's latest restore was from, when nothing catalogued keeps it (a path outside the catalogue:
 * a snapshot of the catalogue is kept by its own job, and held, decision 0032), for the orphan sweep.
 * The source's whole checkpoint area when it is a checkpoint (`<checkpointDir>/<jobId>`: its `shared/` files
 * with it), else the restored directory. A managed job (R67) keeps it whatever its status, as its own area
 * is kept: after a LEGACY or CLAIM restore Flink's checkpoints use the source run's `shared/` files until
 * compaction rewrites them (`RestoreMode.LEGACY`), and the mirror lists no files. A job whose clients report
 * its snapshots keeps it until the job has completed a checkpoint since the restore (a failover before then
 * restores from it again, savepoints or not), and past the job's end as its retention keeps a checkpoint
 * (`claimedSourceOutlivesTheJob`); from then on its acknowledgements name what it inherited. An
 * external path it restored from in NO_CLAIM or LEGACY stays the user's whatever happens (R62: recorded,
 * never adopted; Flink's `RecoveryClaimMode` never deletes it): kept whole, the whole checkpoint area of a
 * checkpoint (a walkthrough's sweep deleted all but the acknowledged files of a LEGACY-restored savepoint,
 * which then restored nothing). Normalised.
 */
export function restoreSourcesKept(state: JobState): string[] {
  if (state.source) {
    const paths = [state.flinkRestore?.externalPath, state.restores.latest?.restorePath];
    const areas = paths.flatMap((path) => (path ? [restoredArea(path)] : []));
    return [...new Set([...state.flinkRestoreSources, ...areas])];
  }
  const users = state.usersRestoreDirectories.map(restoredArea);
  const restore = state.restores.latest;
  if (!restore || restore.snapshotId !== null) return users;
  if (checkpointedSince(state, restore.firstSnapshotId)) return users;
  if (isTerminal(state.status) && !claimedSourceOutlivesTheJob(state)) return users;
  return [...new Set([...users, restoredArea(restore.restorePath)])];
}

/**
 * Whether a path the job CLAIMed, with no checkpoint completed since, stays once the job has ended: it is the
 * job's latest checkpoint then, with the job's own checkpoint properties (`CheckpointCoordinator
 * .restoreSavepoint`: CLAIM takes `this.checkpointProperties`), so it stays as the job's retention keeps a
 * checkpoint at that status, and on FAILED as R38 keeps the newest one (a review: the sweep deleted a
 * cancelled RETAIN_ON_CANCELLATION job's only state).
 */
function claimedSourceOutlivesTheJob(state: JobState): boolean {
  if (state.status === 'FAILED' && state.checkpointing.persistOnFailure) return true;
  return !discardsOn(propertiesFor('CHECKPOINT', state.checkpointing.retention), state.status);
}

/**
 * Whether a checkpoint of the job completed since the restore whose first snapshot id is given: until then a
 * failover restores from the restored snapshot, whatever savepoints the run took (Flink adds only checkpoints
 * to its store: `CheckpointCoordinator.completePendingCheckpoint`; `restoreSavepoint` put the restored one
 * there). An imported snapshot is no part of the run (R70).
 */
function checkpointedSince(state: JobState, firstSnapshotId: number): boolean {
  return state.completed.some((id) => {
    if (id < firstSnapshotId) return false;
    const snapshot = state.snapshots.get(id)!;
    return snapshot.kind === 'CHECKPOINT' && !snapshot.imported;
  });
}

/**
 * R67: whether a running managed job restored from the snapshot (a restore snapcat recorded, in NO_CLAIM or
 * LEGACY, or one Flink reported, its claim mode unknown). Flink disposes of a savepoint whole, while the job's
 * checkpoints may still use its files (a NATIVE savepoint's after LEGACY or CLAIM: `RecoveryClaimMode`) or
 * a failover restore from it (before a checkpoint completed): no retention disposes of it, and a user's
 * discard is a CONFLICT unless forced, until the job ends. A CLAIMed snapshot is Flink's: never disposed
 * (decision 0026).
 */
export function inUseByManagedRun(state: JobState, snapshot: SnapshotState): boolean {
  if (!state.source || isTerminal(state.status) || snapshot.claimMode === 'CLAIM') return false;
  return (
    snapshot.claimMode !== null || state.flinkRestoreSources.includes(restoredArea(snapshot.externalPath))
  );
}

/**
 * Decision 0032: the job whose checkpoint this job was restored from, once this job lets go of it, else
 * undefined. It lets go when it has a completed checkpoint since the restore (or has ended) and none of its live
 * snapshots references a file laid out under that job's id: after a NO_CLAIM restore, its first (full)
 * checkpoint; after LEGACY or CLAIM, once compaction left nothing of the restored files in use (Flink's
 * `RestoreMode`: LEGACY "can directly depend on the existence of the files of the restored checkpoint"). A
 * managed job's mirrored checkpoints carry no files to look at: after LEGACY or CLAIM it lets go only when it
 * ends, and so after a restore Flink reported (its claim mode unknown).
 */
export function restoreHoldToRelease(state: JobState): string | undefined {
  const owner = restoredFromJob(state);
  // Flink reports no claim mode, and a managed job's mirrored checkpoints carry no files: held until it ends.
  if (owner !== undefined && mirroredRestoreFrom(state) === owner) {
    return isTerminal(state.status) ? owner : undefined;
  }
  const restore = state.restores.latest;
  if (owner === undefined || !restore) return undefined;
  // Restored from it before as well (A, then C, then A again): what that earlier run may use keeps it too.
  const earlier = state.formerRestoreOwners.find((former) => former.jobId === owner);
  if (earlier && mayStillUse(state, earlier)) return undefined;
  const { restoredFrom } = planningJobOf(state);
  if (isTerminal(state.status)) return usesFilesOf(state, owner, restoredFrom) ? undefined : owner;
  if (state.source && restore.claimMode !== 'NO_CLAIM') return undefined;
  if (!checkpointedSince(state, restore.firstSnapshotId)) return undefined;
  return usesFilesOf(state, owner, restoredFrom) ? undefined : owner;
}

/**
 * Decision 0032: the other jobs earlier restores were from (superseded by a later restore) that this job has
 * let go of: none of its live checkpoints was taken before the restore that superseded the owner, and no live
 * snapshot references a file laid out under the owner's id; a managed job lets go of them only when it ends.
 * The current owner is `restoreHoldToRelease`'s.
 */
export function formerHoldsToRelease(state: JobState): string[] {
  // A managed job's mirrored checkpoints carry no files to look at, and a later run (a failover to its own
  // checkpoint) may still reference the owner's shared files: as for its current owner, held until it ends.
  if (state.source && !isTerminal(state.status)) return [];
  const current = restoredFromJob(state);
  return state.formerRestoreOwners
    .filter((former) => former.jobId !== current && !mayStillUse(state, former))
    .map((former) => former.jobId);
}

function mayStillUse(state: JobState, former: FormerRestoreOwner): boolean {
  const before = (id: number) =>
    id < former.untilSnapshotId && state.snapshots.get(id)?.kind === 'CHECKPOINT';
  if (state.completed.some(before) || [...state.pending].some(before)) return true;
  return usesFilesOf(state, former.jobId, former.restoredFrom);
}

/**
 * Whether a live snapshot of the job references a file laid out under the other job's id: in its checkpoint
 * directory, or in a savepoint directory named for it (a registry scan).
 */
function usesFilesOf(state: JobState, owner: string, restoredFrom: string | undefined): boolean {
  const prefix = owner.slice(0, 6);
  for (const [location] of state.sharedState.references.entries()) {
    if (jobAreaOf(location) === owner || savepointJobPrefixOf(location) === prefix) return true;
    if (restoredFrom !== undefined && isWithin(location, restoredFrom)) return true;
  }
  return false;
}

/** R71, R72: whether one of the job's snapshots is held for the holder job (a restore of it from that one). */
export function holdsSnapshotFor(state: JobState, holderJobId: string): boolean {
  for (const snapshot of state.snapshots.values()) {
    if (isHeldFor(snapshot, holderJobId)) return true;
  }
  return false;
}

/** Whether the snapshot is held for the holder job. */
export const isHeldFor = (snapshot: SnapshotState | undefined, holderJobId: string): boolean =>
  snapshot?.heldBy?.some((hold) => hold.jobId === holderJobId) ?? false;

/**
 * Decision 0045: the events that name another job than their own, and the field that does: a hold's holder
 * (on the held job's stream), and the job a restore was from (on the restored job's stream). That job may lie
 * in a namespace a reader of this job's history may not see.
 */
const OTHER_JOB_FIELDS: Readonly<Record<string, 'holderJobId' | 'fromJobId'>> = {
  SnapshotHeld: 'holderJobId',
  SnapshotHoldReleased: 'holderJobId',
  SnapshotRestored: 'fromJobId',
  FlinkRestoreRecorded: 'fromJobId',
};

/** The field of events of the type that names another job; none for the other types. */
export const otherJobFieldOf = (type: string): 'holderJobId' | 'fromJobId' | undefined =>
  Object.hasOwn(OTHER_JOB_FIELDS, type) ? OTHER_JOB_FIELDS[type] : undefined;

/** The other job the event names, if it names one. */
export function otherJobNamedBy(event: { type: string }): string | undefined {
  const field = otherJobFieldOf(event.type);
  const jobId = field && (event as Record<string, unknown>)[field];
  return typeof jobId === 'string' ? jobId : undefined;
}

/** The event as a reader who may not see the other job it names reads it: that job is null, the rest as it is. */
export const withOtherJobHidden = <E extends { type: string }>(event: E): E => {
  const field = otherJobFieldOf(event.type);
  return field ? { ...event, [field]: null } : event;
};
