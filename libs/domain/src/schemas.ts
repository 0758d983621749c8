import { z } from 'zod';
import { durationMs, isIsoDuration } from './duration';
import { JOB_ID_PATTERN, JOB_STATUSES, SNAPSHOT_KINDS, SNAPSHOT_STATUSES } from './enum-values';

/** A Flink JobID: 32 lowercase hex characters. */
export const JobId = z
  .string()
  .regex(JOB_ID_PATTERN, { error: 'must be a Flink JobID: 32 lowercase hex characters' });
/** A snapshot id in a body or a command: a JSON integer, nothing coerced (`"0x10"`, `true`, `"1e3"` are refused). */
export const SnapshotId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** A snapshot id in a URL's path or query, where it is text: read as a number. */
export const SnapshotIdParam = z
  .string()
  // Decimal digits only: a coerced `0x1`, `1e3` or ` 1` named snapshot 1 or 1000.
  .regex(/^[1-9][0-9]*$/, { error: 'must be a positive integer in decimal digits, without leading zeros' })
  .pipe(z.coerce.number<string>().int().positive().max(Number.MAX_SAFE_INTEGER));
/** A task's id as recorded (events keep what was accepted when they were written). */
export const TaskId = z.string().min(1).max(256);

/** Text a client names things with, shown in logs, webhooks and the console: no control characters (C0, DEL or C1). */
export const withoutControlCharacters = (text: z.ZodString) =>
  text.regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, { error: 'must not contain control characters' });
/** A task's id as a command names it. */
export const TaskIdInput = withoutControlCharacters(TaskId);

export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ['FINISHED', 'CANCELED', 'FAILED'];
export const isTerminal = (status: JobStatus): boolean => TERMINAL_STATUSES.includes(status);

export const Retention = z.enum([
  'NEVER_RETAIN_AFTER_TERMINATION',
  'RETAIN_ON_FAILURE',
  'RETAIN_ON_CANCELLATION',
]);
export type Retention = z.infer<typeof Retention>;
export const SnapshotKind = z.enum(SNAPSHOT_KINDS);
export type SnapshotKind = z.infer<typeof SnapshotKind>;
export const TriggerType = z.enum(['MANUAL', 'PERIODIC']);
export type TriggerType = z.infer<typeof TriggerType>;
export const FormatType = z.enum(['CANONICAL', 'NATIVE']);
export type FormatType = z.infer<typeof FormatType>;
/**
 * Whether a snapshot may share files with earlier ones (R58): Flink's `CheckpointType` (flink-core
 * `org.apache.flink.core.execution`, less CONFIGURED, which resolves to INCREMENTAL). FULL is Flink's
 * `FULL_CHECKPOINT` (`SharingFilesStrategy.FORWARD`), INCREMENTAL its `CHECKPOINT` ("full or incremental",
 * FORWARD_BACKWARD); a savepoint is always FULL (`SavepointType`: NO_SHARING).
 */
export const CheckpointType = z.enum(['FULL', 'INCREMENTAL']);
export type CheckpointType = z.infer<typeof CheckpointType>;
/**
 * Who owns a restored snapshot's files from the restore on (R62): Flink's `RecoveryClaimMode` (formerly
 * `RestoreMode`, FLIP-193). CLAIM: the job, which subsumes and discards it like its own checkpoints;
 * NO_CLAIM: the user, and the job's first checkpoint after it is FULL; LEGACY: the user, but later
 * checkpoints may reference its files.
 */
export const ClaimMode = z.enum(['CLAIM', 'NO_CLAIM', 'LEGACY']);
export type ClaimMode = z.infer<typeof ClaimMode>;
/** What a restore plan (R64) looks for: Flink's failover choice, the newest state, or the newest savepoint. */
export const RestoreStrategy = z.enum(['FAILOVER', 'LATEST_STATE', 'LATEST_SAVEPOINT']);
export type RestoreStrategy = z.infer<typeof RestoreStrategy>;
/**
 * Flink's `SavepointType` (R65): a savepoint, or a stop-with-savepoint that SUSPENDs the job (`flink stop`)
 * or TERMINATEs it after draining (`flink stop --drain`: MAX_WATERMARK first); both are synchronous.
 */
export const SavepointType = z.enum(['SAVEPOINT', 'SUSPEND', 'TERMINATE']);
export type SavepointType = z.infer<typeof SavepointType>;
/** A stop-with-savepoint's request: drain (emit MAX_WATERMARK, flush event-time timers) or not. */
export const StopWithSavepoint = z.strictObject({ drain: z.boolean() });
export type StopWithSavepoint = z.infer<typeof StopWithSavepoint>;
export const SnapshotStatus = z.enum(SNAPSHOT_STATUSES);
export type SnapshotStatus = z.infer<typeof SnapshotStatus>;
export const AckResult = z.enum(['SUCCESS', 'DUPLICATE', 'UNKNOWN', 'DISCARDED']);
export type AckResult = z.infer<typeof AckResult>;

/**
 * The failure reasons a task may give when it declines a snapshot (`DeclineTask.failureReason`): the names
 * of Flink's `CheckpointFailureReason` that a task's `CheckpointException` carries to
 * `CheckpointCoordinator.receiveDeclineMessage` (R24). CHECKPOINT_DECLINED when a decline gives none.
 */
export const TaskFailureReason = z.enum([
  'CHECKPOINT_DECLINED',
  'CHECKPOINT_DECLINED_TASK_NOT_READY',
  'CHECKPOINT_DECLINED_TASK_CLOSING',
  'CHECKPOINT_DECLINED_TASK_NOT_CHECKPOINTING',
  'CHECKPOINT_DECLINED_ALIGNMENT_LIMIT_EXCEEDED',
  'CHECKPOINT_DECLINED_ON_CANCELLATION_BARRIER',
  'CHECKPOINT_DECLINED_SUBSUMED',
  'CHECKPOINT_DECLINED_INPUT_END_OF_STREAM',
  'CHECKPOINT_ASYNC_EXCEPTION',
  'IO_EXCEPTION',
  'TASK_FAILURE',
  'TASK_CHECKPOINT_FAILURE',
  'FINALIZE_CHECKPOINT_FAILURE',
]);
export type TaskFailureReason = z.infer<typeof TaskFailureReason>;

/** The reasons the coordinator itself gives (the names snapcat had before tasks could give theirs). */
const COORDINATOR_FAILURE_REASONS = [
  'CHECKPOINT_DECLINED',
  'CHECKPOINT_EXPIRED',
  'CHECKPOINT_SUBSUMED',
  'CHECKPOINT_COORDINATOR_SHUTDOWN',
  'CHECKPOINT_COORDINATOR_SUSPEND',
  'PERIODIC_SCHEDULER_SHUTDOWN',
  'TOO_MANY_CHECKPOINT_REQUESTS',
  'MINIMUM_TIME_BETWEEN_CHECKPOINTS',
  'NOT_ALL_REQUIRED_TASKS_RUNNING',
  'IO_EXCEPTION',
  'CHECKPOINT_ASYNC_EXCEPTION',
  'FINALIZE_CHECKPOINT_FAILURE',
] as const;

/** Flink's CheckpointFailureReason names, the subset snapcat can produce: the coordinator's and the tasks'. */
export const FailureReason = z.enum([
  ...COORDINATOR_FAILURE_REASONS,
  ...TaskFailureReason.options.filter(
    (reason): reason is Exclude<TaskFailureReason, (typeof COORDINATOR_FAILURE_REASONS)[number]> =>
      !(COORDINATOR_FAILURE_REASONS as readonly string[]).includes(reason),
  ),
]);
export type FailureReason = z.infer<typeof FailureReason>;

/**
 * Why a periodic savepoint's slot did not fire: a failure reason (the job was not RUNNING), SLOT_MISSED,
 * a slot that no worker presented at all (its worker was killed, the schedule index was gone) and that
 * the aggregate records when a later slot fires, or PREVIOUS_SAVEPOINT_PENDING, the schedule's previous
 * periodic savepoint had not ended yet (R50). Not Flink failure reasons, so not in FailureReason.
 */
export const SkipReason = z.enum([
  ...COORDINATOR_FAILURE_REASONS,
  'SLOT_MISSED',
  'PREVIOUS_SAVEPOINT_PENDING',
]);
export type SkipReason = z.infer<typeof SkipReason>;

/**
 * Only these count against tolerableFailures (R27): Flink's `CheckpointFailureManager.checkFailureCounter`
 * increments for IO_EXCEPTION, CHECKPOINT_ASYNC_EXCEPTION, CHECKPOINT_DECLINED and CHECKPOINT_EXPIRED and
 * ignores every other reason, FINALIZE_CHECKPOINT_FAILURE included (snapcat counted it before issue 16).
 */
export const COUNTED_FAILURES: readonly FailureReason[] = [
  'IO_EXCEPTION',
  'CHECKPOINT_ASYNC_EXCEPTION',
  'CHECKPOINT_DECLINED',
  'CHECKPOINT_EXPIRED',
];

/**
 * The reasons that Flink's `CheckpointFailureReason.isPreFlight()` marks as arising before the tasks were
 * asked (snapcat's names among them; Flink's also include PERIODIC_SCHEDULER_SHUTDOWN and
 * BLOCKING_OUTPUT_EXIST). A failure for one of them is job-level even when a task reports it
 * (`CheckpointFailureManager.isJobManagerFailure`, R59).
 */
export const PRE_FLIGHT_FAILURES: readonly FailureReason[] = [
  'PERIODIC_SCHEDULER_SHUTDOWN',
  'TOO_MANY_CHECKPOINT_REQUESTS',
  'MINIMUM_TIME_BETWEEN_CHECKPOINTS',
  'NOT_ALL_REQUIRED_TASKS_RUNNING',
  'IO_EXCEPTION',
];

export const DiscardCause = z.enum([
  'USER',
  'SUBSUMED',
  'ABORTED',
  'JOB_FINISHED',
  'JOB_CANCELED',
  'JOB_FAILED',
  'RETENTION',
]);
export type DiscardCause = z.infer<typeof DiscardCause>;

/** A storage location: a file:// URI or an absolute path; no control characters. */
export const Location = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[^\u0000-\u001f]*$/, { error: 'must not contain control characters' })
  .refine((location) => location.startsWith('/') || /^[a-z][a-z0-9+.-]*:\/\//.test(location), {
    error: 'must be an absolute path or a URI such as file:///data/checkpoints',
    params: { rule: 'absolute-location' },
  });

/**
 * A version a job or snapshot is recorded with (R61): `jobVersion`, the application's (its release, jar or
 * image), or `flinkVersion`. Free text, 1 to 256 characters, no control characters (C0, DEL or C1).
 */
export const VersionLabel = withoutControlCharacters(z.string().min(1).max(256));
/** A job's name: free text as a version is. */
export const JobName = VersionLabel;

export const StateHandle = z.strictObject({
  path: Location,
  sizeBytes: z.number().int().nonnegative(),
  /** Flink reports shared (incremental) and private handles apart; unmarked, a `shared/` directory counts as shared. */
  shared: z.boolean().optional(),
});
export type StateHandle = z.infer<typeof StateHandle>;

/** A location a discard or a stray cleanup does not delete, and why (decision 0011). */
export const KeptLocation = z.strictObject({
  path: Location,
  /**
   * REFERENCED: other live snapshots reported it; LIVE_DIRECTORY: it lies in a live snapshot's directory;
   * BEING_DELETED: another discard deletes it; OTHER_JOB: it lies in another job's checkpoint directory
   * (inherited through a restore: that job's snapshots may need it; `snapshots` is empty).
   */
  reason: z.enum(['REFERENCED', 'LIVE_DIRECTORY', 'BEING_DELETED', 'OTHER_JOB']),
  /** The snapshots that reference it, own the directory, or whose discard deletes it. */
  snapshots: z.array(z.number().int().positive()),
  /** BEING_DELETED by the cleanup of a stray acknowledgement: that cleanup's id. */
  cleanupId: z.number().int().positive().optional(),
});
export type KeptLocation = z.infer<typeof KeptLocation>;

export const CheckpointingConfig = z.strictObject({
  numRetained: z.number().int().min(1).max(10_000).default(1),
  timeoutMs: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600_000)
    .default(600_000),
  maxConcurrent: z.number().int().min(1).max(1_000).default(1),
  minPauseMs: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 3600_000)
    .default(0),
  tolerableFailures: z.number().int().min(0).max(1_000_000).default(0),
  retention: Retention.default('NEVER_RETAIN_AFTER_TERMINATION'),
  /** On FAILED, persist the newest completed checkpoint when its retention would discard it (R38). */
  persistOnFailure: z.boolean().default(true),
});
export type CheckpointingConfig = z.infer<typeof CheckpointingConfig>;

/** As recorded in JobRegistered/JobReconfigured: logs written before `persistOnFailure` lack it (absent = true). */
export const RecordedCheckpointingConfig = CheckpointingConfig.extend({
  persistOnFailure: z.boolean().optional(),
});
export type RecordedCheckpointingConfig = z.infer<typeof RecordedCheckpointingConfig>;

export const StorageConfig = z.strictObject({
  checkpointDir: Location,
  savepointDir: Location,
});
export type StorageConfig = z.infer<typeof StorageConfig>;

export const Tasks = z
  .array(TaskIdInput)
  .min(1)
  .max(100_000)
  .refine((tasks) => new Set(tasks).size === tasks.length, {
    error: 'task ids must be unique',
    params: { rule: 'unique' },
  });

/** A job's tasks; none for a job whose snapshots Flink reports itself (a managed job, R67). */
export const TaskList = z
  .array(TaskIdInput)
  .max(100_000)
  .refine((tasks) => new Set(tasks).size === tasks.length, {
    error: 'task ids must be unique',
    params: { rule: 'unique' },
  });

/** A Flink cluster's name in snapcat's registry (issue 19): a DNS label, in URLs and in a job's source. */
export const ClusterName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, {
    error: 'must be 1-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit',
  });

/**
 * Where a job's snapshots come from (R67): `flink`, a Flink job snapcat manages through its cluster's REST
 * API (savepoints taken in Flink, checkpoints mirrored from it). Absent: snapcat's clients report them.
 */
export const JobSource = z.strictObject({ type: z.literal('flink'), cluster: ClusterName });
export type JobSource = z.infer<typeof JobSource>;

/**
 * A checkpoint or savepoint as Flink's `GET /jobs/{jobid}/checkpoints` reports it (CheckpointStatistics),
 * in snapcat's terms: what the mirror of a managed job records (R68).
 */
export const FlinkCheckpointReport = z.strictObject({
  id: z.number().int().nonnegative(),
  status: z.enum(['IN_PROGRESS', 'COMPLETED', 'FAILED']),
  isSavepoint: z.boolean(),
  /** FULL or INCREMENTAL, from Flink's `checkpoint_type` (FULL_CHECKPOINT, SAVEPOINT: FULL; CHECKPOINT: INCREMENTAL). */
  checkpointType: CheckpointType,
  triggerTimestamp: z.number().int().nonnegative(),
  /** Flink's `latest_ack_timestamp`: a completed one's completion (its last acknowledgement); absent: unknown. */
  latestAckTimestamp: z.number().int().positive().optional(),
  stateSize: z.number().int().nonnegative(),
  checkpointedSize: z.number().int().nonnegative(),
  externalPath: Location.nullable(),
  /**
   * false: Flink reported `<checkpoint-not-externally-addressable>` (R68); absent when it reported a path, or
   * none at all (a server that leaves the field out: the checkpoint is taken to lie where the layout says).
   */
  externallyAddressable: z.literal(false).optional(),
  /** Flink deleted it (subsumed, or its job ended): snapcat records that, and deletes nothing. */
  discarded: z.boolean(),
  failureMessage: z.string().max(4096).nullable(),
  /** A savepoint's format as Flink reports it (`savepointFormat`); absent when it reports none (CANONICAL). */
  savepointFormat: FormatType.optional(),
});
export type FlinkCheckpointReport = z.infer<typeof FlinkCheckpointReport>;

/** The properties of a snapshot (Flink's CheckpointProperties). */
export const SnapshotProperties = z.strictObject({
  forced: z.boolean(),
  discardSubsumed: z.boolean(),
  discardFinished: z.boolean(),
  discardCancelled: z.boolean(),
  discardFailed: z.boolean(),
  discardSuspended: z.boolean(),
});
export type SnapshotProperties = z.infer<typeof SnapshotProperties>;

// `abort`: zod runs the refinements after a failed check too, and the ones that measure the duration
// (durationMs) throw on text that is none (a 500 for `every: "P"`, a review found).
export const IsoDuration = z
  .string()
  .max(64)
  .refine(isIsoDuration, {
    error: 'must be an ISO-8601 duration such as PT2S, PT1H or P7D (no years or months)',
    params: { rule: 'iso-duration' },
    abort: true,
  });

/**
 * Savepoint retention (after the Flink Kubernetes operator): PERIODIC savepoints only. `maxCount` is at
 * least 1, as the operator's (`SnapshotObserver.getMaxCountForSnapshotType`: `Math.max(1, ...)`).
 */
export const SavepointRetention = z.strictObject({
  maxCount: z.number().int().min(1).max(100_000).optional(),
  maxAge: IsoDuration.optional(),
});
export type SavepointRetention = z.infer<typeof SavepointRetention>;

/**
 * Retention as recorded: logs written before `maxCount` had a minimum of 1 may hold 0, which now keeps the
 * newest completed periodic savepoint as 1 does (R53), so they replay unchanged.
 */
export const RecordedSavepointRetention = SavepointRetention.extend({
  maxCount: z.number().int().min(0).max(100_000).optional(),
});

/** A periodic savepoint schedule (FLIP-10): exactly one of `every` (ISO-8601) or `cron` (with seconds, in `tz`). */
export const SavepointSchedule = z
  .strictObject({
    every: IsoDuration.refine((duration) => durationMs(duration) >= 1000, {
      error: 'must be at least one second',
      params: { rule: 'minimum' },
    }).optional(),
    cron: z.string().min(1).max(256).optional(),
    tz: z.string().min(1).max(64).optional(),
    targetDirectory: Location.optional(),
    retention: SavepointRetention.optional(),
    /** The format of the schedule's savepoints (Flink's `SavepointFormatType`); CANONICAL when not given. */
    formatType: FormatType.optional(),
  })
  .check((ctx) => {
    const { every, cron, tz } = ctx.value;
    if ((every === undefined) === (cron === undefined)) {
      ctx.issues.push({
        code: 'custom',
        path: ['every'],
        message: 'give exactly one of every or cron',
        params: { rule: 'every-or-cron' },
        input: ctx.value,
      });
    }
    if (tz !== undefined && cron === undefined) {
      ctx.issues.push({
        code: 'custom',
        path: ['tz'],
        message: 'tz applies to cron schedules only',
        params: { rule: 'tz-with-cron' },
        input: ctx.value,
      });
    }
  });
export type SavepointSchedule = z.infer<typeof SavepointSchedule>;

/** A schedule as `SavepointScheduleSet` records it: what logs written before hold replays (`maxCount` 0). */
export const RecordedSavepointSchedule = SavepointSchedule.safeExtend({
  retention: RecordedSavepointRetention.optional(),
});
