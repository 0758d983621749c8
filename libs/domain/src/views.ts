import {
  checkpointTypeOf,
  latestCompleted,
  latestCompletedWhere,
  savepointTypeOf,
  type JobState,
  type SnapshotState,
} from './state';
import { restorePath } from './paths';
import { restorePoint } from './restore-plan';

const iso = (ms: number | undefined | null): string | null =>
  ms == null ? null : new Date(ms).toISOString();

/** The JSON shape of a snapshot, as the REST API returns it. */
/** Shared by the views of snapshots nobody holds (never mutated: views are serialised as they are). */
const NO_HOLDERS: string[] = [];

export function snapshotView(snapshot: SnapshotState) {
  return {
    snapshotId: snapshot.snapshotId,
    kind: snapshot.kind,
    status: snapshot.status,
    persisted: snapshot.persisted,
    properties: snapshot.properties,
    triggerType: snapshot.triggerType,
    triggerId: snapshot.triggerId,
    formatType: snapshot.formatType,
    /** SAVEPOINT, or SUSPEND / TERMINATE for a stop-with-savepoint (R65); null for a checkpoint. */
    savepointType: savepointTypeOf(snapshot),
    /** FULL or INCREMENTAL (R58); null for a checkpoint triggered before snapcat recorded it. */
    checkpointType: checkpointTypeOf(snapshot),
    /** A managed job's checkpoint the mirror recorded: Flink's id for it (R68). */
    flinkCheckpointId: snapshot.flinkCheckpointId,
    /** A managed job's savepoint taken to persist a checkpoint (R67): that checkpoint's id. */
    standsFor: snapshot.standsFor,
    /** Catalogued from a path that existed already (R69), not taken through snapcat. */
    imported: snapshot.imported,
    /** The application's and Flink's version that took it (R61); null when unknown. */
    jobVersion: snapshot.jobVersion,
    flinkVersion: snapshot.flinkVersion,
    acknowledgedTasks: snapshot.acknowledged,
    totalTasks: snapshot.totalTasks,
    stateSize: snapshot.stateSize,
    /** Bytes uploaded for this snapshot (Flink's checkpointed_size): less than stateSize when incremental. */
    checkpointedSize: snapshot.checkpointedSize,
    sharedStateSize: snapshot.sharedStateSize,
    privateStateSize: snapshot.privateStateSize,
    triggeredAt: iso(snapshot.triggeredAt),
    deadline: iso(snapshot.deadline),
    completedAt: iso(snapshot.completedAt),
    failedAt: iso(snapshot.failedAt),
    externalPath: snapshot.externalPath,
    /** What to pass to `flink run -s` (R57); for a checkpoint, persisted or not, its own chk-<id>. */
    restorePath: restorePath(snapshot),
    /** A persisted checkpoint's directory for snapcat's manifest (R39): not a path Flink restores from. */
    savepointPath: snapshot.persistedPath ?? null,
    manifestPath: snapshot.manifestPath ?? null,
    /** The claim mode of the newest restore from it (R62); null while the job never restored from it. */
    claimMode: snapshot.claimMode,
    failureReason: snapshot.failureReason ?? null,
    failureMessage: snapshot.failureMessage ?? null,
    declinedBy: snapshot.declinedBy ?? null,
    subsumedBy: snapshot.subsumedBy ?? null,
    /** The jobs whose restore from it holds it (decision 0032): it is not discarded while any does. */
    heldBy: snapshot.heldBy ? [...new Set(snapshot.heldBy.map((hold) => hold.jobId))] : NO_HOLDERS,
    discard: snapshot.discard
      ? {
          cause: snapshot.discard.cause,
          reason: snapshot.discard.reason ?? null,
          state: snapshot.discard.state,
          requestedAt: iso(snapshot.discard.requestedAt),
          bytesReclaimed: snapshot.discard.bytesReclaimed ?? null,
          error: snapshot.discard.error ?? null,
          retryable: snapshot.discard.retryable ?? null,
          attempts: snapshot.discard.attempts,
        }
      : null,
  };
}
export type SnapshotView = ReturnType<typeof snapshotView>;

/** A job without its snapshots: what the read model stores per job. */
export function jobSummaryView(state: JobState) {
  return {
    jobId: state.jobId,
    name: state.name,
    namespace: state.namespace,
    status: state.status,
    tasks: state.tasks,
    checkpointing: state.checkpointing,
    storage: state.storage,
    /** The job's current application and Flink version (R61); null until given. */
    /** A managed job's Flink cluster (R67), null for a job whose clients report its snapshots. */
    source: state.source,
    /** What an operator should know about the job's configuration (R67). */
    warnings: jobWarnings(state),
    /** What Flink last reported a managed job restored from (R68): after a failover, or at its start. */
    flinkRestore: state.flinkRestore ? flinkRestoreView(state.flinkRestore) : null,
    jobVersion: state.jobVersion,
    flinkVersion: state.flinkVersion,
    registeredAt: iso(state.registeredAt),
    updatedAt: iso(state.updatedAt),
    consecutiveFailures: state.consecutiveFailures,
    latestCompletedSnapshotId: latestCompleted(state)?.snapshotId ?? null,
    latestCompletedCheckpointId:
      latestCompletedWhere(state, (snapshot) => snapshot.kind === 'CHECKPOINT')?.snapshotId ?? null,
    latestSavepointId:
      latestCompletedWhere(state, (snapshot) => snapshot.kind === 'SAVEPOINT' || snapshot.persisted)
        ?.snapshotId ?? null,
    restorePoint: restorePoint(state),
    /** The newest restore (R62): from one of the job's snapshots or an external path; null while none. */
    latestRestore: state.restores.latest
      ? {
          snapshotId: state.restores.latest.snapshotId,
          restorePath: state.restores.latest.restorePath,
          checkpointId: state.restores.latest.checkpointId,
          claimMode: state.restores.latest.claimMode,
          allowNonRestoredState: state.restores.latest.allowNonRestoredState,
          restoredAt: iso(state.restores.latest.restoredAt)!,
        }
      : null,
    schedule: state.schedule,
    lastSlotAt: iso(state.lastSlot),
    counts: {
      total: state.snapshots.size + state.counts.compacted,
      inProgress: state.pending.size,
      completed: state.counts.completed,
      failed: state.counts.failed,
      discarded: state.counts.discarded,
      compacted: state.counts.compacted,
      restored: state.restores.count,
    },
    /** Bytes of the distinct files the live snapshots reference (what restoring any of them needs). */
    referencedStateSize: state.sharedState.referencedBytes,
    referencedFiles: state.sharedState.references.size,
    /** How many events of the job stream this view reflects. */
    version: state.version,
  };
}
export type JobSummaryView = ReturnType<typeof jobSummaryView>;

/** The job with every snapshot in its state (not those compacted, decision 0035), newest first, as REST returns it. */
export function jobView(state: JobState) {
  const snapshots = [...state.snapshots.values()].sort((a, b) => b.snapshotId - a.snapshotId);
  return { ...jobSummaryView(state), snapshots: snapshots.map(snapshotView) };
}
export type JobView = ReturnType<typeof jobView>;

/**
 * R67: Flink deletes a managed job's checkpoints as its own configuration says, and snapcat cannot stop it.
 * Without externalized checkpoints a failed job loses every checkpoint: persisting the newest on failure
 * (R38) is then impossible, and only savepoints survive.
 */
export function jobWarnings(state: JobState): string[] {
  const retention = state.flinkRetention;
  if (!state.source || !retention || retention.externalized) return [];
  return [
    'Flink deletes this job’s checkpoints when it fails or is cancelled (externalized checkpoints are off): ' +
      'only savepoints survive it; set execution.checkpointing.externalized-checkpoint-retention to ' +
      'RETAIN_ON_CANCELLATION or DELETE_ON_CANCELLATION, or take savepoints often',
  ];
}

/** What Flink last reported the managed job restored from, as the views show it (the hold's owner aside). */
function flinkRestoreView({ fromJobId: _owner, ...restore }: NonNullable<JobState['flinkRestore']>) {
  return { ...restore, restoredAt: iso(restore.restoredAt)! };
}
