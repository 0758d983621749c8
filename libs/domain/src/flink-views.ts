import { NOT_EXTERNALLY_ADDRESSABLE } from './enum-values';
import type { CheckpointingConfig } from './schemas';
import { flinkRetentionPolicy } from './properties';
import { savepointTypeOf, type JobState, type RestoreRecord, type SnapshotState } from './state';

/*
 * A job's snapshots in the shapes of Flink's REST API (issue 19, item 5; docs/decisions/0017): what
 * GET /jobs/{jobid}/checkpoints, /checkpoints/config and /checkpoints/details/{checkpointid} answer in
 * Flink's own description (schema/flink/rest_v1_dispatcher.yml: CheckpointingStatistics, CheckpointConfigInfo,
 * CheckpointStatistics), so that scripts written for Flink's REST API read snapcat's catalog unchanged.
 *
 * Filled as Flink fills them:
 * - CheckpointingStatisticsHandler.createCheckpointingStatistics: counts, summary, latest, history;
 * - CheckpointStatistics.generateCheckpointStatistics: one snapshot (Completed / Failed / Pending, told apart by
 *   `className`);
 * - CheckpointConfigHandler.createCheckpointConfigInfo: the configuration;
 * - StatsSummaryDto.valueOf(StatsSummarySnapshot): min, max, avg and the quantiles of the summary.
 *
 * What snapcat does not record it answers as Flink does when it has nothing to say: 0 for alignment_buffered
 * (Flink has answered 0 since unaligned checkpoints), processed_data and persisted_data (unaligned-checkpoint
 * figures the tasks do not report to snapcat), `tasks` empty (per-vertex figures are in the log only), -1 for
 * the latest_ack_timestamp of a snapshot that has not completed (the aggregate keeps no acknowledgement times).
 */

/** Flink's `CheckpointStatsStatus`. */
export type FlinkCheckpointStatus = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';
/** Flink's `RestAPICheckpointType` (the spec's enum; snapcat records no unaligned checkpoints). */
export type FlinkCheckpointType = 'CHECKPOINT' | 'UNALIGNED_CHECKPOINT' | 'SAVEPOINT' | 'SYNC_SAVEPOINT';

interface FlinkCheckpointBase {
  id: number;
  status: FlinkCheckpointStatus;
  is_savepoint: boolean;
  /** The savepoint's `SavepointFormatType`; absent for a checkpoint (Flink's is null there). */
  savepointFormat?: 'CANONICAL' | 'NATIVE';
  trigger_timestamp: number;
  latest_ack_timestamp: number;
  checkpointed_size: number;
  state_size: number;
  end_to_end_duration: number;
  alignment_buffered: number;
  processed_data: number;
  persisted_data: number;
  num_subtasks: number;
  num_acknowledged_subtasks: number;
  checkpoint_type: FlinkCheckpointType;
  tasks: Record<string, never>;
}
export interface FlinkCompletedCheckpoint extends FlinkCheckpointBase {
  className: 'completed';
  status: 'COMPLETED';
  external_path: string;
  discarded: boolean;
}
export interface FlinkFailedCheckpoint extends FlinkCheckpointBase {
  className: 'failed';
  status: 'FAILED';
  failure_timestamp: number;
  failure_message: string;
}
export interface FlinkPendingCheckpoint extends FlinkCheckpointBase {
  className: 'in_progress';
  status: 'IN_PROGRESS';
}
/** Flink's `CheckpointStatistics`: one of the three, by `className`. */
export type FlinkCheckpoint = FlinkCompletedCheckpoint | FlinkFailedCheckpoint | FlinkPendingCheckpoint;

/** Flink's `StatsSummaryDto`. */
export interface FlinkStatsSummary {
  min: number;
  max: number;
  avg: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
}

export interface FlinkRestoredCheckpoint {
  id: number;
  restore_timestamp: number;
  is_savepoint: boolean;
  external_path: string;
}

const SUMMARY_FIELDS = [
  'checkpointed_size',
  'state_size',
  'end_to_end_duration',
  'alignment_buffered',
  'processed_data',
  'persisted_data',
] as const;
type SummaryField = (typeof SUMMARY_FIELDS)[number];

/** Flink's `CheckpointingStatistics`. */
export interface FlinkCheckpointingStatistics {
  counts: { restored: number; total: number; in_progress: number; completed: number; failed: number };
  summary: Record<SummaryField, FlinkStatsSummary>;
  latest: {
    completed?: FlinkCompletedCheckpoint;
    savepoint?: FlinkCompletedCheckpoint;
    failed?: FlinkFailedCheckpoint;
    restored?: FlinkRestoredCheckpoint;
  };
  history: FlinkCheckpoint[];
}

/** The history's default length, and the most a request may ask for (decision 0017). */
export const FLINK_HISTORY_DEFAULT = 10_000;
export const FLINK_HISTORY_MAX = 100_000;

export interface FlinkHistoryPage {
  /** At most this many entries (default FLINK_HISTORY_DEFAULT). */
  limit?: number;
  /** Only snapshots whose id is below this one: the next page after a history that was cut. */
  before?: number;
}

/** The Flink shape of one snapshot (CheckpointStatistics.generateCheckpointStatistics). */
export function flinkCheckpoint(snapshot: SnapshotState): FlinkCheckpoint {
  const base = {
    id: snapshot.snapshotId,
    is_savepoint: snapshot.kind === 'SAVEPOINT',
    ...(snapshot.kind === 'SAVEPOINT' ? { savepointFormat: snapshot.formatType } : {}),
    trigger_timestamp: snapshot.triggeredAt,
    checkpointed_size: snapshot.checkpointedSize,
    state_size: snapshot.stateSize,
    alignment_buffered: 0,
    processed_data: 0,
    persisted_data: 0,
    num_subtasks: snapshot.totalTasks,
    num_acknowledged_subtasks: snapshot.acknowledged,
    checkpoint_type: flinkCheckpointType(snapshot),
    tasks: {},
  };
  if (snapshot.status === 'PENDING') {
    // PendingCheckpointStats: the latest acknowledgement's time (-1 before one); the aggregate keeps none,
    // so -1, and end_to_end_duration max(0, latestAck - trigger) = 0 as Flink's before the first ack.
    return {
      className: 'in_progress',
      ...base,
      status: 'IN_PROGRESS',
      latest_ack_timestamp: -1,
      end_to_end_duration: 0,
    };
  }
  if (snapshot.status === 'FAILED') {
    const failedAt = snapshot.failedAt ?? snapshot.triggeredAt;
    // FailedCheckpointStats.getEndToEndDuration: failureTimestamp - triggerTimestamp.
    return {
      className: 'failed',
      ...base,
      status: 'FAILED',
      latest_ack_timestamp: -1,
      end_to_end_duration: Math.max(0, failedAt - snapshot.triggeredAt),
      failure_timestamp: failedAt,
      failure_message: snapshot.failureMessage ?? snapshot.failureReason ?? 'CHECKPOINT_DECLINED',
    };
  }
  // COMPLETED, DISCARDING, DISCARDED: a completed checkpoint; CompletedCheckpointStats.isDiscarded once its
  // discard is asked for (Flink marks it when the store discards it).
  const completedAt = snapshot.completedAt ?? snapshot.triggeredAt;
  return {
    className: 'completed',
    ...base,
    status: 'COMPLETED',
    // It completes with its last acknowledgement.
    latest_ack_timestamp: completedAt,
    end_to_end_duration: Math.max(0, completedAt - snapshot.triggeredAt),
    external_path: snapshot.externallyAddressable ? snapshot.externalPath : NOT_EXTERNALLY_ADDRESSABLE,
    discarded: snapshot.status !== 'COMPLETED',
  };
}

/**
 * Flink's `RestAPICheckpointType.valueOf`: a savepoint is SYNC_SAVEPOINT when synchronous (a
 * stop-with-savepoint, `SavepointType.isSynchronous`), SAVEPOINT otherwise; every checkpoint, FULL or
 * INCREMENTAL (Flink's FULL_CHECKPOINT and CHECKPOINT), is CHECKPOINT, as the REST type has no FULL. A
 * persisted checkpoint stays a checkpoint: it was taken as one (is_savepoint false, decision 0017).
 */
export function flinkCheckpointType(snapshot: SnapshotState): FlinkCheckpointType {
  const savepoint = savepointTypeOf(snapshot);
  if (savepoint === null) return 'CHECKPOINT';
  return savepoint === 'SAVEPOINT' ? 'SAVEPOINT' : 'SYNC_SAVEPOINT';
}

/**
 * Flink's `CheckpointingStatistics` of the job: counts and the summary over every snapshot it recorded, the
 * latest completed checkpoint, savepoint, failure and restore, and the history newest first: the whole of
 * it, not Flink's last 10 (`web.checkpoints.history`), up to `page.limit` entries (FLINK_HISTORY_DEFAULT),
 * below `page.before`. `more` says whether older snapshots were left out.
 */
export function flinkCheckpointingStatistics(
  state: JobState,
  page: FlinkHistoryPage = {},
): { statistics: FlinkCheckpointingStatistics; more: boolean } {
  const limit = Math.min(page.limit ?? FLINK_HISTORY_DEFAULT, FLINK_HISTORY_MAX);
  const values: Record<SummaryField, number[]> = {
    checkpointed_size: [],
    state_size: [],
    end_to_end_duration: [],
    alignment_buffered: [],
    processed_data: [],
    persisted_data: [],
  };
  let latestCompleted: SnapshotState | undefined;
  let latestSavepoint: SnapshotState | undefined;
  let latestFailed: SnapshotState | undefined;
  let inProgress = 0;
  const ids: number[] = [];
  for (const snapshot of state.snapshots.values()) {
    if (page.before === undefined || snapshot.snapshotId < page.before) ids.push(snapshot.snapshotId);
    if (snapshot.status === 'PENDING') {
      inProgress += 1;
    } else if (snapshot.status === 'FAILED') {
      if (!latestFailed || snapshot.snapshotId > latestFailed.snapshotId) latestFailed = snapshot;
    } else {
      // CompletedCheckpointStatsSummary.updateSummary: every completed checkpoint and savepoint, whatever
      // became of it later.
      values.checkpointed_size.push(snapshot.checkpointedSize);
      values.state_size.push(snapshot.stateSize);
      values.end_to_end_duration.push(
        Math.max(0, (snapshot.completedAt ?? snapshot.triggeredAt) - snapshot.triggeredAt),
      );
      // alignment_buffered, processed_data, persisted_data are 0 for each (see above): their summary is zeros.
      // CheckpointStatsHistory: the latest completed checkpoint and the latest savepoint are kept apart.
      if (snapshot.kind === 'SAVEPOINT') {
        if (!latestSavepoint || snapshot.snapshotId > latestSavepoint.snapshotId) latestSavepoint = snapshot;
      } else if (!latestCompleted || snapshot.snapshotId > latestCompleted.snapshotId) {
        latestCompleted = snapshot;
      }
    }
  }
  ids.sort((a, b) => b - a);
  const shown = ids.slice(0, limit);
  const restored = latestRestored(state);
  const statistics: FlinkCheckpointingStatistics = {
    counts: {
      // A managed job's restore Flink reported counts though nothing recorded it here (R68).
      restored: Math.max(state.restores.count, state.flinkRestore ? 1 : 0),
      // CheckpointStatsCounts counts every checkpoint of the job, those compacted out of its state too.
      total: state.snapshots.size + state.counts.compacted,
      in_progress: inProgress,
      completed: state.counts.completed,
      failed: state.counts.failed,
    },
    summary: Object.fromEntries(
      SUMMARY_FIELDS.map((field) => [field, statsSummary(values[field])]),
    ) as Record<SummaryField, FlinkStatsSummary>,
    latest: {
      ...(latestCompleted ? { completed: flinkCheckpoint(latestCompleted) as FlinkCompletedCheckpoint } : {}),
      ...(latestSavepoint ? { savepoint: flinkCheckpoint(latestSavepoint) as FlinkCompletedCheckpoint } : {}),
      ...(latestFailed ? { failed: flinkCheckpoint(latestFailed) as FlinkFailedCheckpoint } : {}),
      ...(restored ? { restored } : {}),
    },
    history: shown.map((id) => flinkCheckpoint(state.snapshots.get(id)!)),
  };
  return { statistics, more: ids.length > shown.length };
}

/**
 * The newest restore: a recorded one (POST /restores), or what Flink reported a managed job restored from (R68),
 * whichever came later (a walkthrough's managed job restored by Flink showed none).
 */
function latestRestored(state: JobState): FlinkRestoredCheckpoint | undefined {
  const recorded = state.restores.latest;
  const reported = state.flinkRestore;
  if (reported && (!recorded || reported.restoredAt >= recorded.restoredAt)) {
    return {
      // The history's ids are snapcat's: the catalogued snapshot's, else unknown (-1) as for an external path.
      id: reported.snapshotId ?? -1,
      restore_timestamp: reported.restoredAt,
      is_savepoint: reported.isSavepoint,
      external_path: reported.externalPath ?? '',
    };
  }
  return recorded ? flinkRestored(state, recorded) : undefined;
}

/**
 * Flink's `RestoredCheckpointStatistics` of a restore: the restored checkpoint's id (-1 when an external
 * path's id is unknown), when, whether it was a savepoint (the job's own snapshot's kind; for an external
 * path, whether its directory is named as Flink names savepoints, `savepoint-…`), and its path.
 */
function flinkRestored(state: JobState, restore: RestoreRecord): FlinkRestoredCheckpoint {
  const own = restore.snapshotId === null ? undefined : state.snapshots.get(restore.snapshotId);
  const isSavepoint = own
    ? own.kind === 'SAVEPOINT'
    : /(^|\/)savepoint-[^/]*\/?$/.test(restore.restorePath.replace(/\/_metadata$/, ''));
  return {
    id: restore.checkpointId ?? -1,
    restore_timestamp: restore.restoredAt,
    is_savepoint: isSavepoint,
    external_path: restore.restorePath,
  };
}

/**
 * Flink's `StatsSummaryDto.valueOf(StatsSummarySnapshot)`: min, max, the average as a long (sum / count,
 * truncated) and the quantiles `getQuantile(.5, .9, .95, .99, .999)` of its histogram
 * (DescriptiveStatisticsHistogram: Commons Math's `Percentile`, default LEGACY estimation, over a window of
 * the newest values). Here over every completed snapshot, with the same estimation. With none: zeros (Flink's
 * quantiles are NaN then, which JSON cannot carry).
 */
export function statsSummary(values: readonly number[]): FlinkStatsSummary {
  if (values.length === 0) return { min: 0, max: 0, avg: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0 };
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    avg: Math.trunc(sum / sorted.length),
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
  };
}

/**
 * Commons Math `Percentile` with `EstimationType.LEGACY` (its default): position probability·(count+1), the
 * smallest value below 1, the largest from count on, linear interpolation between the two neighbours otherwise.
 */
export function quantile(sorted: ArrayLike<number>, probability: number): number {
  const count = sorted.length;
  if (count === 0) return 0;
  if (count === 1) return sorted[0]!;
  const pos = probability * (count + 1);
  if (pos < 1) return sorted[0]!;
  if (pos >= count) return sorted[count - 1]!;
  const lower = Math.floor(pos);
  const below = sorted[lower - 1]!;
  const above = sorted[lower]!;
  return below + (pos - lower) * (above - below);
}

/** Flink's `CheckpointConfigInfo` of the job (CheckpointConfigHandler.createCheckpointConfigInfo). */
export function flinkCheckpointConfig(state: JobState) {
  const checkpointing: CheckpointingConfig = state.checkpointing;
  // A managed job's are what Flink reported of it (R67), not snapcat's defaults.
  const reported = state.flinkRetention;
  const retention = reported ? flinkRetentionPolicy(reported) : checkpointing.retention;
  return {
    // snapcat records no processing mode: Flink's default.
    mode: 'EXACTLY_ONCE' as const,
    // Flink triggers the periodic checkpoints, snapcat records them: it does not know the interval. -1 is
    // Flink's CheckpointConfig value for "no periodic checkpoints" (decision 0017: not Long.MAX_VALUE, the
    // coordinator's, which JSON parsers of doubles cannot read back as a 64-bit integer).
    interval: -1,
    timeout: reported?.timeoutMs ?? checkpointing.timeoutMs,
    min_pause: checkpointing.minPauseMs,
    max_concurrent: checkpointing.maxConcurrent,
    // CheckpointConfigHandler: enabled unless NEVER_RETAIN_AFTER_TERMINATION, deleted on cancellation
    // unless RETAIN_ON_CANCELLATION (so RETAIN_ON_FAILURE: enabled, deleted on cancellation).
    externalization: {
      enabled: retention !== 'NEVER_RETAIN_AFTER_TERMINATION',
      delete_on_cancellation: retention !== 'RETAIN_ON_CANCELLATION',
    },
    // snapcat lays snapshots out as Flink's file-system checkpoint storage does (paths.ts, R14).
    checkpoint_storage: 'FileSystemCheckpointStorage',
    unaligned_checkpoints: false,
    tolerable_failed_checkpoints: checkpointing.tolerableFailures,
    aligned_checkpoint_timeout: 0,
    checkpoints_after_tasks_finish: true,
    state_changelog_enabled: false,
  };
}
export type FlinkCheckpointConfig = ReturnType<typeof flinkCheckpointConfig>;
