import { normaliseLocation, jobAreaOf } from './shared-state';
import { isTerminal } from './schemas';
import type { JobState } from './state';

/**
 * Decision 0032: the job whose checkpoint this job was restored from, once this job lets go of it, else
 * undefined. It lets go when it has a completed snapshot since the restore (or has ended) and none of its live
 * snapshots references a file laid out under that job's id: after a NO_CLAIM restore, its first (full)
 * checkpoint; after LEGACY or CLAIM, once compaction left nothing of the restored files in use (Flink's
 * `RestoreMode`: LEGACY "can directly depend on the existence of the files of the restored checkpoint").
 */
export function restoreHoldToRelease(state: JobState): string | undefined {
  const restore = state.restores.latest;
  if (!restore || restore.snapshotId !== null) return undefined;
  const owner = jobAreaOf(normaliseLocation(restore.restorePath));
  if (owner === undefined || owner === state.jobId) return undefined;
  const ownSince = state.completed.some((id) => id >= restore.firstSnapshotId);
  if (!ownSince && !isTerminal(state.status)) return undefined;
  for (const [location] of state.sharedState.references.entries()) {
    if (jobAreaOf(location) === owner) return undefined;
  }
  return owner;
}
