import { isWithin, normaliseLocation, jobAreaOf, savepointJobPrefixOf } from './shared-state';
import { isTerminal } from './schemas';
import { planningJobOf, type JobState } from './state';

/**
 * Decision 0032: the other job this job was last restored from (named by the restore, or by an external path
 * laid out under that job's id), whose snapshot it may hold; undefined when none. O(1): asked after every
 * completion.
 */
export function restoredFromJob(state: JobState): string | undefined {
  const mirrored = mirroredRestoreFrom(state);
  if (mirrored !== undefined) return mirrored;
  const restore = state.restores.latest;
  if (!restore || restore.snapshotId !== null) return undefined;
  const owner = restore.fromJobId ?? jobAreaOf(normaliseLocation(restore.restorePath));
  return owner === state.jobId ? undefined : owner;
}

/**
 * Decision 0032: the job whose checkpoint this job was restored from, once this job lets go of it, else
 * undefined. It lets go when it has a completed snapshot since the restore (or has ended) and none of its live
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
  if (isTerminal(state.status)) return usesFilesOf(state, owner) ? undefined : owner;
  if (state.source && restore.claimMode !== 'NO_CLAIM') return undefined;
  if (!state.completed.some((id) => id >= restore.firstSnapshotId)) return undefined;
  return usesFilesOf(state, owner) ? undefined : owner;
}

/**
 * The other job a managed job's latest restore in Flink (seen by the mirror, `FlinkRestoreRecorded`) was from,
 * when that restore is the job's latest; undefined otherwise.
 */
export function mirroredRestoreFrom(state: JobState): string | undefined {
  const mirrored = state.flinkRestore;
  if (mirrored?.fromJobId === undefined) return undefined;
  const recorded = state.restores.latest;
  return recorded && recorded.restoredAt > mirrored.restoredAt ? undefined : mirrored.fromJobId;
}

/**
 * Whether a live snapshot of the job references a file laid out under the other job's id: in its checkpoint
 * directory, or in a savepoint directory named for it (a registry scan).
 */
function usesFilesOf(state: JobState, owner: string): boolean {
  const prefix = owner.slice(0, 6);
  const { restoredFrom } = planningJobOf(state);
  for (const [location] of state.sharedState.references.entries()) {
    if (jobAreaOf(location) === owner || savepointJobPrefixOf(location) === prefix) return true;
    if (restoredFrom !== undefined && isWithin(location, restoredFrom)) return true;
  }
  return false;
}
