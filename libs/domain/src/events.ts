import { z } from 'zod';
import { Namespace } from './namespaces';
import {
  AckResult,
  CheckpointType,
  ClaimMode,
  RecordedCheckpointingConfig,
  DiscardCause,
  FailureReason,
  FormatType,
  JobId,
  KeptLocation,
  JobStatus,
  Location,
  RecordedSavepointSchedule,
  SkipReason,
  SnapshotKind,
  SnapshotProperties,
  JobSource,
  StateHandle,
  StopWithSavepoint,
  StorageConfig,
  TaskId,
  TriggerType,
  VersionLabel,
} from './schemas';

const Timestamp = z.iso.datetime();
const SnapshotNumber = z.number().int().positive();
const base = { jobId: JobId, occurredAt: Timestamp };
const ofSnapshot = { ...base, snapshotId: SnapshotNumber };

export const JobRegistered = z.strictObject({
  type: z.literal('JobRegistered'),
  ...base,
  name: z.string(),
  /** Absent on jobs registered before namespaces existed: they are in `default`. */
  namespace: Namespace.optional(),
  tasks: z.array(TaskId),
  status: JobStatus,
  checkpointing: RecordedCheckpointingConfig,
  storage: StorageConfig,
  /** The application's and Flink's version (R61), when given; absent in events before them: unknown. */
  jobVersion: VersionLabel.optional(),
  flinkVersion: VersionLabel.optional(),
  /** A managed job's source (R67); absent: the job's clients report its snapshots. */
  source: JobSource.optional(),
});

export const JobReconfigured = z.strictObject({
  type: z.literal('JobReconfigured'),
  ...base,
  name: z.string(),
  tasks: z.array(TaskId),
  checkpointing: RecordedCheckpointingConfig,
  storage: StorageConfig,
  /** The job's versions after the change (R61), those it has; absent: unchanged (events before them: none). */
  jobVersion: VersionLabel.optional(),
  flinkVersion: VersionLabel.optional(),
  /** A managed job's source (R67); absent: the job's clients report its snapshots. */
  source: JobSource.optional(),
});

export const JobStatusChanged = z.strictObject({
  type: z.literal('JobStatusChanged'),
  ...base,
  from: JobStatus,
  to: JobStatus,
});

export const SnapshotTriggered = z.strictObject({
  type: z.literal('SnapshotTriggered'),
  ...ofSnapshot,
  kind: SnapshotKind,
  triggerType: TriggerType,
  triggerId: z.string(),
  properties: SnapshotProperties,
  formatType: FormatType,
  /** What Flink was asked for (R58); absent in events before it: FULL for a savepoint, unknown for a checkpoint. */
  checkpointType: CheckpointType.optional(),
  /** The versions that took the snapshot (R61): the trigger's, else the job's; absent when unknown. */
  jobVersion: VersionLabel.optional(),
  flinkVersion: VersionLabel.optional(),
  /**
   * The tasks that must acknowledge it. Recorded up to schema version 1 (decision 0037); from version 2 on
   * absent, meaning the job's tasks when it was triggered (its last JobRegistered or JobReconfigured): a job
   * of 40,000 subtasks wrote 350 KB into every trigger.
   */
  tasks: z.array(TaskId).optional(),
  deadline: Timestamp,
  externalPath: Location,
  /** The schedule slot (epoch ms) of a periodic savepoint. */
  slot: z.number().int().nonnegative().optional(),
  /** A stop-with-savepoint (R65); absent for every other snapshot. */
  terminate: StopWithSavepoint.optional(),
  /** A managed job's checkpoint the mirror recorded (R68): Flink's id for it. */
  flinkCheckpointId: z.number().int().nonnegative().optional(),
  /**
   * A mirrored checkpoint's trigger time as Flink reports it (`trigger_timestamp`, R68), no later than the
   * event; absent: the snapshot was triggered when the event occurred.
   */
  flinkTriggeredAt: Timestamp.optional(),
  /** A managed job's savepoint taken to persist one of its checkpoints (R67): that checkpoint's id. */
  standsFor: SnapshotNumber.optional(),
  /** A snapshot that existed before it was catalogued (R69): completed in the same decision, owned by the user. */
  imported: z.literal(true).optional(),
});

export const SnapshotTriggerRejected = z.strictObject({
  type: z.literal('SnapshotTriggerRejected'),
  ...base,
  kind: SnapshotKind,
  triggerType: TriggerType,
  triggerId: z.string(),
  reason: FailureReason,
});

export const TaskAcknowledged = z.strictObject({
  type: z.literal('TaskAcknowledged'),
  ...ofSnapshot,
  taskId: TaskId,
  stateSize: z.number().int().nonnegative(),
  stateHandles: z.array(StateHandle),
  /** What the task took (R58), when it said. */
  checkpointType: CheckpointType.optional(),
  /** Bytes this checkpoint uploaded for the task (Flink's `checkpointed_size`); absent: its `stateSize`. */
  checkpointedSize: z.number().int().nonnegative().optional(),
});

/** An acknowledgement for a snapshot that is unknown or already aborted: its state is garbage to clean up. */
export const StrayAcknowledgementReceived = z.strictObject({
  type: z.literal('StrayAcknowledgementReceived'),
  ...ofSnapshot,
  taskId: TaskId,
  result: AckResult.extract(['UNKNOWN', 'DISCARDED']),
  stateSize: z.number().int().nonnegative(),
  /** The handles as the task reported them. */
  stateHandles: z.array(StateHandle),
  /** Of those, the ones to delete: no live snapshot references them (absent in events before decision 0011: nothing is deleted). */
  cleanup: z.array(StateHandle).optional(),
  /** The ones kept, and why: the first 100 (decision 0022). */
  kept: z.array(KeptLocation).optional(),
  /** How many more are kept than `kept` lists (decision 0022). */
  keptUnlisted: z.number().int().positive().optional(),
  /** Names the cleanup (when `cleanup` is not empty) until `StrayStateDeleted` says it is done. */
  cleanupId: z.number().int().positive().optional(),
});

/** The cleanup of a stray acknowledgement's state is done: its locations are no longer being deleted. */
export const StrayStateDeleted = z.strictObject({
  type: z.literal('StrayStateDeleted'),
  ...base,
  cleanupId: z.number().int().positive(),
  bytesReclaimed: z.number().int().nonnegative(),
});

export const SnapshotCompleted = z.strictObject({
  type: z.literal('SnapshotCompleted'),
  ...ofSnapshot,
  kind: SnapshotKind,
  stateSize: z.number().int().nonnegative(),
  externalPath: Location,
  /** A managed job's checkpoint: the bytes Flink reports it uploaded (R68); absent: the tasks' sum. */
  checkpointedSize: z.number().int().nonnegative().optional(),
  /**
   * false: Flink reported the completed checkpoint `<checkpoint-not-externally-addressable>` (it keeps it in
   * the JobManager's memory, `JobManagerCheckpointStorage`): `externalPath` is where it would lie, and nothing
   * outside the running job can restore from it (R68). Absent: addressable.
   */
  externallyAddressable: z.literal(false).optional(),
  /**
   * A mirrored checkpoint's completion as Flink reports it (`latest_ack_timestamp`, R68), no later than the
   * event; absent: it completed when the event occurred.
   */
  flinkCompletedAt: Timestamp.optional(),
});

export const SnapshotFailed = z.strictObject({
  type: z.literal('SnapshotFailed'),
  ...ofSnapshot,
  reason: FailureReason,
  taskId: TaskId.optional(),
  message: z.string().optional(),
});

export const SnapshotSubsumed = z.strictObject({
  type: z.literal('SnapshotSubsumed'),
  ...ofSnapshot,
  subsumedBy: SnapshotNumber,
  /**
   * R73: its discard waits until the checkpoints pending when it was subsumed, up to this id, have ended:
   * each may be an incremental checkpoint built on it. Absent: discarded at once (as before R73).
   */
  discardAwaits: SnapshotNumber.optional(),
});

/** Another job restored from the snapshot and may use its files (decision 0032): none is deleted meanwhile. */
export const SnapshotHeld = z.strictObject({
  type: z.literal('SnapshotHeld'),
  ...ofSnapshot,
  holderJobId: JobId,
  /** The holder's restore count once the restore this hold is for was recorded. */
  holderRestore: z.number().int().nonnegative(),
});

/** The job that held the snapshot no longer uses its files (decision 0032). */
export const SnapshotHoldReleased = z.strictObject({
  type: z.literal('SnapshotHoldReleased'),
  ...ofSnapshot,
  holderJobId: JobId,
  holderRestore: z.number().int().nonnegative(),
});

export const TolerableFailuresExceeded = z.strictObject({
  type: z.literal('TolerableFailuresExceeded'),
  ...base,
  snapshotId: SnapshotNumber,
  consecutiveFailures: z.number().int(),
  tolerableFailures: z.number().int(),
});

export const SnapshotPersisted = z.strictObject({
  type: z.literal('SnapshotPersisted'),
  ...ofSnapshot,
  savepointPath: Location,
  cause: z.enum(['USER', 'JOB_FAILED']),
});

/**
 * The job restored from a snapshot (R62): the job's own (`snapshotId`) or an external path. `restorePath` is
 * what Flink was given; `checkpointId` the restored snapshot's id, from which the id counter continues.
 */
export const SnapshotRestored = z.strictObject({
  type: z.literal('SnapshotRestored'),
  ...base,
  /** The job's own snapshot restored from; absent for an external path. */
  snapshotId: SnapshotNumber.optional(),
  restorePath: Location,
  checkpointId: SnapshotNumber.optional(),
  claimMode: ClaimMode,
  allowNonRestoredState: z.boolean(),
  /**
   * The other catalogued job whose snapshot `restorePath` is, held for this restore (decision 0032): given when
   * the restore named it (`fromJobId`); absent, a path in another job's checkpoint directory names it.
   */
  fromJobId: JobId.optional(),
});

export const SnapshotDiscardRequested = z.strictObject({
  type: z.literal('SnapshotDiscardRequested'),
  ...ofSnapshot,
  cause: DiscardCause,
  reason: z.string().optional(),
  /** Directories to delete (the snapshot's own, its savepoint location if persisted), less the `kept` inside them. */
  locations: z.array(Location),
  /** Files the tasks reported that no other live snapshot references (they may lie outside those directories). */
  stateHandles: z.array(StateHandle),
  /**
   * What is not deleted, and why (decision 0011): every location inside `locations` (what the deletion
   * must leave), and of the snapshot's handles kept elsewhere the first 100 (decision 0022). Absent in
   * events written before the shared-state registry, which listed every handle: their plan is computed
   * again from the registry when folded.
   */
  kept: z.array(KeptLocation).optional(),
  /**
   * How many more of the snapshot's handles outside `locations` are kept (other live snapshots reference
   * them) than `kept` lists (decision 0022: counted, not listed, so that the event stays small when an
   * incremental checkpoint's shared files are subsumed).
   */
  keptUnlisted: z.number().int().positive().optional(),
});

export const SnapshotDiscarded = z.strictObject({
  type: z.literal('SnapshotDiscarded'),
  ...ofSnapshot,
  /**
   * The bytes the discard freed: what snapcat deleted, or for a savepoint Flink disposed of (R67) its size as
   * the catalogue knew it. null (version 2): not known, as Flink's disposal answers with no size
   * (`SavepointDisposalHandlers`: `AsynchronousOperationInfo`) and the catalogue knew none.
   */
  bytesReclaimed: z.number().int().nonnegative().nullable(),
});

export const SnapshotDiscardFailed = z.strictObject({
  type: z.literal('SnapshotDiscardFailed'),
  ...ofSnapshot,
  error: z.string(),
  retryable: z.boolean(),
});

export const SavepointScheduleSet = z.strictObject({
  type: z.literal('SavepointScheduleSet'),
  ...base,
  schedule: RecordedSavepointSchedule,
});

export const SavepointScheduleRemoved = z.strictObject({
  type: z.literal('SavepointScheduleRemoved'),
  ...base,
});

/**
 * A schedule slot that did not fire: the job was not RUNNING at the slot (NOT_ALL_REQUIRED_TASKS_RUNNING),
 * no worker presented the slot before a later one fired (SLOT_MISSED), or the schedule's previous periodic
 * savepoint was still pending (PREVIOUS_SAVEPOINT_PENDING).
 */
export const PeriodicSavepointSkipped = z.strictObject({
  type: z.literal('PeriodicSavepointSkipped'),
  ...base,
  slot: z.number().int().nonnegative(),
  reason: SkipReason,
  /**
   * SLOT_MISSED only, when more slots were missed than one decision records one by one: how many slots of
   * the schedule before this one were missed as well and have no event of their own.
   */
  missedBefore: z.number().int().positive().optional(),
});

export const SnapshotManifestWritten = z.strictObject({
  type: z.literal('SnapshotManifestWritten'),
  ...ofSnapshot,
  path: Location,
});

/**
 * What a managed job's Flink configuration does with its checkpoints when the job ends (R67): externalized
 * checkpoints are kept on failure (and on cancellation unless deleteOnCancellation); without them, Flink
 * deletes every checkpoint of a job that fails, which snapcat cannot prevent.
 */
export const FlinkCheckpointRetentionRecorded = z.strictObject({
  type: z.literal('FlinkCheckpointRetentionRecorded'),
  ...base,
  externalized: z.boolean(),
  deleteOnCancellation: z.boolean(),
  /** Flink's checkpoint timeout for the job; absent: not reported (or recorded before it was read). */
  timeoutMs: z.number().int().positive().optional(),
});

/**
 * Flink restored a managed job (R68): after a failover from its latest checkpoint, or from a savepoint it was
 * started with. Recorded once per restore; `snapshotId` when snapcat catalogued what it restored from.
 */
export const FlinkRestoreRecorded = z.strictObject({
  type: z.literal('FlinkRestoreRecorded'),
  ...base,
  flinkCheckpointId: z.number().int(),
  snapshotId: SnapshotNumber.optional(),
  isSavepoint: z.boolean(),
  externalPath: Location.optional(),
  restoredAt: Timestamp,
  /** Another catalogued job's snapshot it was (decision 0032), which that job holds while this one runs. */
  fromJobId: JobId.optional(),
});

export const Event = z.discriminatedUnion('type', [
  JobRegistered,
  JobReconfigured,
  JobStatusChanged,
  SnapshotTriggered,
  SnapshotTriggerRejected,
  TaskAcknowledged,
  StrayAcknowledgementReceived,
  StrayStateDeleted,
  SnapshotCompleted,
  SnapshotFailed,
  SnapshotSubsumed,
  TolerableFailuresExceeded,
  SnapshotPersisted,
  SnapshotRestored,
  SnapshotDiscardRequested,
  SnapshotDiscarded,
  SnapshotDiscardFailed,
  SavepointScheduleSet,
  SavepointScheduleRemoved,
  PeriodicSavepointSkipped,
  SnapshotManifestWritten,
  FlinkCheckpointRetentionRecorded,
  FlinkRestoreRecorded,
  SnapshotHeld,
  SnapshotHoldReleased,
]);
export type Event = z.infer<typeof Event>;
export type EventOf<T extends Event['type']> = Extract<Event, { type: T }>;
export const EVENT_TYPES = Event.options.map((schema) => schema.shape.type.value);

/** The snapshot an event is about, null for job-level events (and a restore from an external path). */
export const snapshotIdOf = (event: Event): number | null =>
  'snapshotId' in event ? (event.snapshotId ?? null) : null;
