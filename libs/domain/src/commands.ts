import { z } from 'zod';
import { Namespace } from './namespaces';
import { normaliseLocation } from './shared-state';
import {
  CheckpointType,
  ClaimMode,
  CheckpointingConfig,
  FormatType,
  JobId,
  JobStatus,
  Location,
  SavepointSchedule,
  SnapshotId,
  SnapshotKind,
  StateHandle,
  StopWithSavepoint,
  StorageConfig,
  TaskFailureReason,
  TaskIdInput,
  JobName,
  TaskList,
  TriggerType,
  JobSource,
  FlinkCheckpointReport,
  VersionLabel,
} from './schemas';

export const TriggerIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._~-]+$/, { error: 'may only contain letters, digits and . _ ~ -' });

export const ConfigureJob = z.strictObject({
  type: z.literal('ConfigureJob'),
  jobId: JobId,
  name: JobName,
  /** Set once, at registration (default `default`); naming another one later is a conflict. */
  namespace: Namespace.optional(),
  /** Required unless `source` says Flink reports the job's snapshots itself (R67). */
  tasks: TaskList,
  /** Set to manage a Flink job through its cluster (R67); left out, the current source is kept. */
  source: JobSource.optional(),
  /** Only applied when given; a new job without it is RUNNING. */
  status: JobStatus.optional(),
  checkpointing: CheckpointingConfig,
  storage: StorageConfig,
  /**
   * The application's version (its release, jar or image) and Flink's (R61). Left out, the job keeps the one
   * it has (none at registration); a version once given is replaced, never removed.
   */
  jobVersion: VersionLabel.optional(),
  flinkVersion: VersionLabel.optional(),
});

export const ChangeJobStatus = z.strictObject({
  type: z.literal('ChangeJobStatus'),
  jobId: JobId,
  status: JobStatus,
});

export const TriggerSnapshot = z.strictObject({
  type: z.literal('TriggerSnapshot'),
  jobId: JobId,
  kind: SnapshotKind,
  triggerId: TriggerIdSchema,
  triggerType: TriggerType,
  targetDirectory: Location.optional(),
  formatType: FormatType,
  /**
   * What to ask Flink for (R58); absent is Flink's CONFIGURED: INCREMENTAL for a checkpoint, FULL for a
   * savepoint, which is never INCREMENTAL.
   */
  checkpointType: CheckpointType.optional(),
  /** The versions that take the snapshot (R61); left out, the job's current ones. */
  jobVersion: VersionLabel.optional(),
  flinkVersion: VersionLabel.optional(),
  /** A stop-with-savepoint (R65): the job stops once the savepoint completes. Savepoints only. */
  terminate: StopWithSavepoint.optional(),
});

/**
 * A task's state handles, each file once (compared as the shared-state registry compares them): a path given
 * twice with two sizes counted twice in the snapshot's size and once in the job's (a review). A file that
 * holds several pieces of a task's state is reported once, with its whole size.
 */
export const StateHandles = z
  .array(StateHandle)
  .max(10_000)
  .superRefine((handles, ctx) => {
    if (handles.length < 2) return;
    const seen = new Set<string>();
    handles.forEach((handle, index) => {
      const location = normaliseLocation(handle.path);
      if (seen.has(location)) {
        const message = `${handle.path} is listed twice: each file once per acknowledgement, with its whole size`;
        ctx.addIssue({ code: 'custom', path: [index, 'path'], message, params: { rule: 'unique' } });
      }
      seen.add(location);
    });
  });

export const AcknowledgeTask = z.strictObject({
  type: z.literal('AcknowledgeTask'),
  jobId: JobId,
  snapshotId: SnapshotId,
  taskId: TaskIdInput,
  stateSize: z.number().int().nonnegative(),
  stateHandles: StateHandles,
  /** What the task took (R58), when it says. */
  checkpointType: CheckpointType.optional(),
  /** Bytes this checkpoint uploaded for the task (Flink's `checkpointed_size`); absent: its `stateSize`. */
  checkpointedSize: z.number().int().nonnegative().optional(),
});

export const DeclineTask = z.strictObject({
  type: z.literal('DeclineTask'),
  jobId: JobId,
  snapshotId: SnapshotId,
  taskId: TaskIdInput,
  /** The task's message (free text). */
  reason: z.string().max(4096).optional(),
  /** Why, as Flink's `CheckpointFailureReason` names it (R24); absent: CHECKPOINT_DECLINED. */
  failureReason: TaskFailureReason.optional(),
});

/**
 * The job (re)started from a snapshot (R62): one of the job's own completed snapshots (`snapshotId`) or
 * any path Flink can restore from (`externalPath`, with the `checkpointId` its metadata holds when known).
 */
export const RestoreSnapshot = z.strictObject({
  type: z.literal('RestoreSnapshot'),
  jobId: JobId,
  snapshotId: SnapshotId.optional(),
  externalPath: Location.optional(),
  checkpointId: SnapshotId.optional(),
  claimMode: ClaimMode,
  allowNonRestoredState: z.boolean(),
  /** Another job whose snapshot `externalPath` is, and which holds it for this restore (decision 0032). */
  fromJobId: JobId.optional(),
});

export const PersistSnapshot = z.strictObject({
  type: z.literal('PersistSnapshot'),
  jobId: JobId,
  snapshotId: SnapshotId,
  targetDirectory: Location.optional(),
});

export const RequestDiscard = z.strictObject({
  type: z.literal('RequestDiscard'),
  jobId: JobId,
  snapshotId: SnapshotId,
  reason: z.string().max(4096).optional(),
  force: z.boolean(),
});

/** Issued by the storage worker once the files are gone. */
export const RecordDiscardCompleted = z.strictObject({
  type: z.literal('RecordDiscardCompleted'),
  jobId: JobId,
  snapshotId: SnapshotId,
  /** null: not known (a disposal through Flink of a snapshot whose size the catalogue does not know, R67). */
  bytesReclaimed: z.number().int().nonnegative().nullable(),
});

export const RecordDiscardFailed = z.strictObject({
  type: z.literal('RecordDiscardFailed'),
  jobId: JobId,
  snapshotId: SnapshotId,
  error: z.string().max(4096),
  retryable: z.boolean(),
});

/** Issued by the timeout worker; every command expires overdue snapshots first, this one does nothing else. */
export const ExpireOverdue = z.strictObject({
  type: z.literal('ExpireOverdue'),
  jobId: JobId,
});

export const SetSavepointSchedule = z.strictObject({
  type: z.literal('SetSavepointSchedule'),
  jobId: JobId,
  schedule: SavepointSchedule,
});

export const RemoveSavepointSchedule = z.strictObject({
  type: z.literal('RemoveSavepointSchedule'),
  jobId: JobId,
});

/** Issued by the scheduler for one slot (its planned time, epoch ms); a slot fires at most once. */
export const FirePeriodicSavepoint = z.strictObject({
  type: z.literal('FirePeriodicSavepoint'),
  jobId: JobId,
  slot: z.number().int().nonnegative(),
});

/** Issued by the retention sweep: discard the PERIODIC savepoints the schedule's retention no longer keeps. */
export const ApplyRetention = z.strictObject({
  type: z.literal('ApplyRetention'),
  jobId: JobId,
});

/** Issued by the storage worker once a persisted checkpoint's manifest (R39) is written. */
export const RecordManifestWritten = z.strictObject({
  type: z.literal('RecordManifestWritten'),
  jobId: JobId,
  snapshotId: SnapshotId,
  path: Location,
});

/** The storage worker deleted what a stray acknowledgement's cleanup named. */
export const RecordStrayCleanupCompleted = z.strictObject({
  type: z.literal('RecordStrayCleanupCompleted'),
  jobId: JobId,
  cleanupId: z.number().int().positive(),
  bytesReclaimed: z.number().int().nonnegative(),
});

/**
 * Catalogue a savepoint or retained checkpoint that exists already, taken before snapcat or by hand (R69):
 * it completes at once under the next snapshot id, and is retained and disposed of like the others. The
 * caller checked that the path exists and measured it (`stateSize`).
 */
export const ImportSnapshot = z.strictObject({
  type: z.literal('ImportSnapshot'),
  jobId: JobId,
  externalPath: Location,
  kind: SnapshotKind,
  /** A savepoint's format; absent: CANONICAL. */
  formatType: FormatType.optional(),
  /** Bytes in the directory, as the storage measured them; absent: 0. */
  stateSize: z.number().int().nonnegative().optional(),
});

/** The mirror of a managed job: what Flink's checkpoint history reports, oldest first (R68). */
export const RecordFlinkCheckpoints = z.strictObject({
  type: z.literal('RecordFlinkCheckpoints'),
  jobId: JobId,
  checkpoints: z.array(FlinkCheckpointReport).max(1000),
  /** What Flink reports the job last restored from (`latest.restored`), when it reports one (R68). */
  restored: z
    .strictObject({
      id: z.number().int(),
      restoreTimestamp: z.number().int().nonnegative(),
      isSavepoint: z.boolean(),
      externalPath: Location.nullable(),
      /**
       * The other catalogued job whose completed snapshot `externalPath` is, as the connector found it
       * (decision 0032): that job holds it while this one runs.
       */
      fromJobId: JobId.optional(),
    })
    .optional(),
  /**
   * Flink's ids of mirrored checkpoints older than anything its history reports whose directory the
   * connector found gone from storage: Flink deleted them out of the history's sight (decision 0019).
   */
  deleted: z.array(z.number().int()).max(1000).optional(),
  /**
   * Flink's ids of checkpoints the mirror holds as pending, older than anything the history reports, whose
   * `_metadata` the connector found in storage: Flink completed them out of the history's sight.
   */
  completed: z.array(z.number().int()).max(1000).optional(),
});

/** The outcome of a savepoint a managed job took in Flink (`GET /jobs/{jobid}/savepoints/{triggerid}`, R67). */
export const RecordFlinkSavepoint = z.strictObject({
  type: z.literal('RecordFlinkSavepoint'),
  jobId: JobId,
  snapshotId: SnapshotId,
  outcome: z.discriminatedUnion('status', [
    z.strictObject({
      status: z.literal('COMPLETED'),
      location: Location,
      /**
       * A stop-with-savepoint whose savepoint Flink created, but whose job failed while stopping (Flink's
       * StopWithSavepointStoppingException): the savepoint is catalogued, the job is not finished (Flink fails
       * it over and it runs on).
       */
      stopFailure: z.string().max(4096).optional(),
      /** Flink's figures of it, from its checkpoint history (its operation's answer has none). */
      stateSize: z.number().int().nonnegative().optional(),
      checkpointedSize: z.number().int().nonnegative().optional(),
      latestAckTimestamp: z.number().int().positive().optional(),
    }),
    z.strictObject({ status: z.literal('FAILED'), cause: z.string().max(4096) }),
  ]),
});

/** A managed job's checkpoint retention as Flink's `GET /jobs/{jobid}/checkpoints/config` reports it (R67). */
/** Longer timeouts are not recorded (a deadline must be a date; Flink's default is 10 minutes). */
export const MAX_FLINK_TIMEOUT_MS = 31 * 24 * 3600_000;

export const RecordFlinkCheckpointConfig = z.strictObject({
  type: z.literal('RecordFlinkCheckpointConfig'),
  jobId: JobId,
  externalized: z.boolean(),
  deleteOnCancellation: z.boolean(),
  /** Flink's checkpoint timeout for the job (`/checkpoints/config` `timeout`), when it reports one. */
  timeoutMs: z.number().int().positive().max(MAX_FLINK_TIMEOUT_MS).optional(),
});

/**
 * Another job was restored from this snapshot (decision 0032): its checkpoints may use the snapshot's files,
 * which this job must not delete until it lets go (`ReleaseSnapshotHolds`).
 */
export const HoldSnapshot = z.strictObject({
  type: z.literal('HoldSnapshot'),
  jobId: JobId,
  snapshotId: SnapshotId,
  holderJobId: JobId,
  /** Which of the holder's restores it is for: its restore count once that restore is recorded. */
  holderRestore: z.number().int().nonnegative(),
});

/**
 * The holder's snapshots no longer use this job's files: its holds go, on one snapshot or all, for the
 * restores up to `throughRestore` (what the holder's state was decided on: a later restore's hold stays), or
 * for exactly `holderRestore` (a refused restore takes back its own).
 */
export const ReleaseSnapshotHolds = z.strictObject({
  type: z.literal('ReleaseSnapshotHolds'),
  jobId: JobId,
  holderJobId: JobId,
  snapshotId: SnapshotId.optional(),
  throughRestore: z.number().int().nonnegative().optional(),
  holderRestore: z.number().int().nonnegative().optional(),
});

export const Command = z.discriminatedUnion('type', [
  ConfigureJob,
  ChangeJobStatus,
  TriggerSnapshot,
  AcknowledgeTask,
  DeclineTask,
  RestoreSnapshot,
  PersistSnapshot,
  RequestDiscard,
  RecordDiscardCompleted,
  RecordDiscardFailed,
  ExpireOverdue,
  SetSavepointSchedule,
  RemoveSavepointSchedule,
  FirePeriodicSavepoint,
  ApplyRetention,
  RecordManifestWritten,
  RecordStrayCleanupCompleted,
  RecordFlinkCheckpoints,
  RecordFlinkSavepoint,
  ImportSnapshot,
  RecordFlinkCheckpointConfig,
  HoldSnapshot,
  ReleaseSnapshotHolds,
]);
export type Command = z.infer<typeof Command>;
export type CommandOf<T extends Command['type']> = Extract<Command, { type: T }>;
