import type { ClaimMode, JobStatus, Retention, SnapshotKind, SnapshotProperties } from './schemas';

/** Rules R15 and R16 of docs/domain.md, row by row (Flink's CheckpointProperties.forCheckpoint and forSavepoint). */
export function propertiesFor(kind: SnapshotKind, retention: Retention): SnapshotProperties {
  if (kind === 'SAVEPOINT') return { forced: true, ...retainAll };
  switch (retention) {
    case 'NEVER_RETAIN_AFTER_TERMINATION':
      return { forced: false, ...discardAll };
    case 'RETAIN_ON_FAILURE':
      return { forced: false, ...discardAll, discardFailed: false };
    case 'RETAIN_ON_CANCELLATION':
      return {
        forced: false,
        discardSubsumed: true,
        discardFinished: true,
        discardCancelled: false,
        discardFailed: false,
        discardSuspended: false,
      };
  }
}

/**
 * The retention policy of a Flink job's checkpoints from its `CheckpointConfigInfo.externalization`
 * (CheckpointConfigHandler.createCheckpointConfigInfo, inverted): not externalized is
 * NEVER_RETAIN_AFTER_TERMINATION, externalized and deleted on cancellation RETAIN_ON_FAILURE, else
 * RETAIN_ON_CANCELLATION (flink-views.ts `flinkCheckpointConfig` writes the same mapping the other way).
 */
export function flinkRetentionPolicy(retention: {
  externalized: boolean;
  deleteOnCancellation: boolean;
}): Retention {
  if (!retention.externalized) return 'NEVER_RETAIN_AFTER_TERMINATION';
  return retention.deleteOnCancellation ? 'RETAIN_ON_FAILURE' : 'RETAIN_ON_CANCELLATION';
}

/** FLIP-10: a persisted checkpoint is a savepoint; every discard flag is off, `forced` stays as it was. */
export function persistedProperties(properties: SnapshotProperties): SnapshotProperties {
  return { forced: properties.forced, ...retainAll };
}

/**
 * A snapshot's properties once a job restored from it (R62), as `CheckpointCoordinator.restoreSavepoint`
 * sets them: CLAIM gives it the job's checkpoint properties (it is subsumed and discarded like the job's own
 * checkpoints); NO_CLAIM (`forUnclaimedSnapshot`) and LEGACY (`forSavepoint`) turn every discard flag off.
 */
export function restoredProperties(
  claimMode: ClaimMode,
  properties: SnapshotProperties,
  retention: Retention,
): SnapshotProperties {
  return claimMode === 'CLAIM' ? propertiesFor('CHECKPOINT', retention) : persistedProperties(properties);
}

/** The discard flag that a job's termination in `status` consults. */
export function discardsOn(properties: SnapshotProperties, status: JobStatus): boolean {
  switch (status) {
    case 'FINISHED':
      return properties.discardFinished;
    case 'CANCELED':
      return properties.discardCancelled;
    case 'FAILED':
      return properties.discardFailed;
    case 'SUSPENDED':
      return properties.discardSuspended;
    default:
      // Not a termination: RUNNING, and the transient statuses of a job being (re)started or stopped.
      return false;
  }
}

const discardAll = {
  discardSubsumed: true,
  discardFinished: true,
  discardCancelled: true,
  discardFailed: true,
  discardSuspended: true,
} as const;

const retainAll = {
  discardSubsumed: false,
  discardFinished: false,
  discardCancelled: false,
  discardFailed: false,
  discardSuspended: false,
} as const;

const interned = new Map<number, SnapshotProperties>();

/**
 * One shared, frozen object per combination of the six flags (64 at most), so that snapshots folded from
 * the log do not each hold their own copy of the same properties. Pure: same flags, same object.
 */
export function internProperties(properties: SnapshotProperties): SnapshotProperties {
  const key =
    Number(properties.forced) |
    (Number(properties.discardSubsumed) << 1) |
    (Number(properties.discardFinished) << 2) |
    (Number(properties.discardCancelled) << 3) |
    (Number(properties.discardFailed) << 4) |
    (Number(properties.discardSuspended) << 5);
  let shared = interned.get(key);
  if (!shared) {
    shared = Object.freeze({
      forced: properties.forced,
      discardSubsumed: properties.discardSubsumed,
      discardFinished: properties.discardFinished,
      discardCancelled: properties.discardCancelled,
      discardFailed: properties.discardFailed,
      discardSuspended: properties.discardSuspended,
    });
    interned.set(key, shared);
  }
  return shared;
}
