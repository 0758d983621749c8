import { restorePath } from './paths';
import type { RestoreStrategy } from './schemas';
import { isJobOwned, versionDifference, type JobState, type SnapshotState } from './state';

/** The claim mode a plan recommends: LEGACY, deprecated in Flink, never. */
export type PlannedClaimMode = 'CLAIM' | 'NO_CLAIM';

export type RestorePlan =
  | {
      ok: true;
      strategy: RestoreStrategy;
      /** The job's snapshot to restore from; null for the external path the job last restored from. */
      snapshotId: number | null;
      restorePath: string;
      claimMode: PlannedClaimMode;
      reason: string;
      /** When the chosen snapshot completed (epoch ms); null for an external path. */
      completedAt: number | null;
      /** Set when another job or Flink version took the snapshot (R61): restoring may need state migration. */
      versionWarning: string | null;
    }
  | {
      ok: false;
      strategy: RestoreStrategy;
      /** NO_CANDIDATE: nothing to restore from; TOO_OLD: older than maxAge; AGE_UNKNOWN: an external path with maxAge. */
      refusal: 'NO_CANDIDATE' | 'TOO_OLD' | 'AGE_UNKNOWN';
      reason: string;
      /** The candidate refused for its age, if any. */
      snapshotId: number | null;
    };

type Candidate =
  | { snapshot: SnapshotState; why: string }
  | { external: { restorePath: string; claimMode: PlannedClaimMode }; why: string };

/**
 * R64: the snapshot to restore the job from, the claim mode to use, and why.
 *
 * Only the job's current lineage counts: after a restore, the restored snapshot and the snapshots taken
 * since (ids from the restore's `firstSnapshotId` on); the snapshots of earlier runs are not its state.
 * - FAILOVER is what Flink's JobManager itself restores on a failover: the newest entry of its
 *   `CompletedCheckpointStore` (`getLatestCheckpoint`). Completed checkpoints enter the store, savepoints
 *   do not (`CheckpointCoordinator.completePendingCheckpoint`: `if (!props.isSavepoint())`), and the
 *   snapshot a run restored from enters it first, whatever its kind (`restoreSavepoint`:
 *   `addCheckpointAndSubsumeOldestOne`).
 * - LATEST_STATE is the newest completed snapshot of any kind (the operator's `last-state` upgrade).
 * - LATEST_SAVEPOINT is the newest completed savepoint or persisted checkpoint.
 * The claim mode is CLAIM for a snapshot the job owns (its checkpoints, which it would subsume anyway) and
 * NO_CLAIM for one the user owns (a savepoint, a persisted checkpoint), which the job must never delete.
 * With `maxAgeMs`, a candidate that completed longer ago is refused (TOO_OLD), as is an external path,
 * whose age snapcat does not know (AGE_UNKNOWN). A plan says when another job or Flink version took the
 * snapshot (R61).
 */
export function restorePlan(
  state: JobState,
  strategy: RestoreStrategy,
  now: number,
  maxAgeMs?: number,
): RestorePlan {
  const candidate = choose(state, strategy);
  if (!candidate) {
    const what = strategy === 'LATEST_SAVEPOINT' ? 'completed savepoint' : 'completed snapshot';
    const where = strategy === 'FAILOVER' ? ' (checkpoint, or snapshot the job restored from)' : '';
    return {
      ok: false,
      strategy,
      refusal: 'NO_CANDIDATE',
      reason: `the job has no ${what}${where} to restore from${lineageNote(state)}`,
      snapshotId: null,
    };
  }
  if ('external' in candidate) {
    if (maxAgeMs !== undefined) {
      return {
        ok: false,
        strategy,
        refusal: 'AGE_UNKNOWN',
        reason: `${candidate.why}: ${candidate.external.restorePath}, whose age snapcat does not know`,
        snapshotId: null,
      };
    }
    return {
      ok: true,
      strategy,
      snapshotId: null,
      ...candidate.external,
      reason: candidate.why,
      completedAt: null,
      versionWarning: null,
    };
  }
  const { snapshot, why } = candidate;
  const ageMs = now - snapshot.completedAt!;
  if (maxAgeMs !== undefined && ageMs > maxAgeMs) {
    return {
      ok: false,
      strategy,
      refusal: 'TOO_OLD',
      reason: `${why}, snapshot ${snapshot.snapshotId}, completed ${Math.round(ageMs / 1000)} s ago: older than maxAge (${Math.round(maxAgeMs / 1000)} s)`,
      snapshotId: snapshot.snapshotId,
    };
  }
  return {
    ok: true,
    strategy,
    snapshotId: snapshot.snapshotId,
    restorePath: restorePath(snapshot)!,
    claimMode: isJobOwned(snapshot) ? 'CLAIM' : 'NO_CLAIM',
    reason: `${why}: snapshot ${snapshot.snapshotId} (${describeSnapshot(snapshot)})${lineageNote(state)}`,
    completedAt: snapshot.completedAt!,
    versionWarning: versionDifference(snapshot, state),
  };
}

/**
 * R7, kept for the views that show it (GraphQL `Job.restorePoint`, deprecated): LATEST_STATE's choice.
 */
export function restorePoint(state: JobState): { snapshotId: number; reason: string } | null {
  const plan = restorePlan(state, 'LATEST_STATE', 0);
  return plan.ok && plan.snapshotId !== null ? { snapshotId: plan.snapshotId, reason: plan.reason } : null;
}

function choose(state: JobState, strategy: RestoreStrategy): Candidate | undefined {
  const restore = state.restores.latest;
  const firstOfRun = restore?.firstSnapshotId ?? 0;
  const restored = restore?.snapshotId != null ? state.snapshots.get(restore.snapshotId) : undefined;
  const restoredLive = restored && restorePath(restored) !== null ? restored : undefined;
  /** The newest completed snapshot of the current run that matches, then the one it restored from. */
  const newest = (match: (snapshot: SnapshotState) => boolean): SnapshotState | undefined => {
    for (let i = state.completed.length - 1; i >= 0; i -= 1) {
      const snapshot = state.snapshots.get(state.completed[i]!)!;
      // An imported snapshot (R70) is not the run's: restoring from it is asked for by its id.
      // One Flink keeps in memory only (R68) has no restore path.
      if (
        snapshot.snapshotId >= firstOfRun &&
        !snapshot.imported &&
        restorePath(snapshot) !== null &&
        match(snapshot)
      ) {
        return snapshot;
      }
    }
    return restoredLive && match(restoredLive) ? restoredLive : undefined;
  };
  const external =
    restore && restore.snapshotId === null
      ? {
          external: {
            restorePath: restore.restorePath,
            claimMode: restore.claimMode === 'CLAIM' ? ('CLAIM' as const) : ('NO_CLAIM' as const),
          },
          why: 'the external path the job last restored from (nothing completed since)',
        }
      : undefined;
  switch (strategy) {
    case 'FAILOVER': {
      const checkpoint = newest(
        (snapshot) => snapshot.kind === 'CHECKPOINT' && snapshot.snapshotId !== restoredLive?.snapshotId,
      );
      if (checkpoint)
        return { snapshot: checkpoint, why: 'the newest completed checkpoint, as a failover restores' };
      if (restoredLive)
        return {
          snapshot: restoredLive,
          why: 'the snapshot the job restored from (no checkpoint completed since)',
        };
      return external;
    }
    case 'LATEST_STATE': {
      const latest = newest(() => true);
      return latest ? { snapshot: latest, why: 'the newest completed snapshot' } : external;
    }
    case 'LATEST_SAVEPOINT': {
      const savepoint = newest((snapshot) => snapshot.kind === 'SAVEPOINT' || snapshot.persisted);
      return savepoint && { snapshot: savepoint, why: 'the newest completed savepoint' };
    }
  }
}

/** What a snapshot is, in a few words (manual savepoint, checkpoint persisted as a savepoint, ...). */
export function describeSnapshot(snapshot: SnapshotState): string {
  if (snapshot.kind === 'SAVEPOINT') return `${snapshot.triggerType.toLowerCase()} savepoint`;
  return snapshot.persisted ? 'checkpoint, persisted as a savepoint' : 'checkpoint';
}

function lineageNote(state: JobState): string {
  const restore = state.restores.latest;
  if (!restore) return '';
  const from = restore.snapshotId === null ? restore.restorePath : `snapshot ${restore.snapshotId}`;
  return `; only the run since the restore from ${from} counts`;
}
