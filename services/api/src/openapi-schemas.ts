import { z } from 'zod';
import {
  Namespace,
  NamespaceGrantSchema,
  AckResult,
  CheckpointType,
  CheckpointingConfig,
  ClaimMode,
  SavepointType,
  DiscardCause,
  FailureReason,
  FormatType,
  JobId,
  JobStatus,
  RecordedSavepointSchedule,
  SnapshotKind,
  SnapshotProperties,
  SnapshotStatus,
  StorageConfig,
  SubscribableEventType,
  SubscriptionId,
  TriggerType,
} from '@snapcat/domain';

/*
 * The shapes of the REST API's answers, for the OpenAPI document. The requests are validated with the zod
 * schemas of requests.ts; the answers are built by the views of libs/domain (jobView, snapshotView), which
 * have no zod schema of their own: these describe them, and test/openapi.test.ts checks real answers against
 * them, so a field added to a view without being described here fails the test.
 */

const Timestamp = z.iso.datetime();
const Count = z.number().int().nonnegative();
const SnapshotNumber = z.number().int().positive();

export const FieldError = z
  .object({
    field: z.string().meta({ description: 'Where: body.…, path.…, query.… or header.…' }),
    rule: z.string().meta({ description: 'Which rule, e.g. required, minimum, one-of, unknown-field' }),
    message: z.string(),
  })
  .meta({ id: 'FieldError', description: 'One broken rule.' });

export const ProblemDetails = z
  .looseObject({
    type: z
      .string()
      .meta({ description: 'urn:snapcat:problem:<slug>', example: 'urn:snapcat:problem:invalid-request' }),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string(),
    errors: z.array(FieldError).optional(),
  })
  .meta({
    id: 'Problem',
    description:
      'An RFC 9457 problem (application/problem+json). Some carry more members: a rejected trigger its ' +
      '`reason` and `triggerId`, /readyz `eventStore` and `redis` (or, when the event store refuses ' +
      "snapcat's credentials, `eventStore`, `permission` and `user`; when it holds events a newer snapcat " +
      'wrote, `eventStore`, `eventType` and `schemaVersion`), `store-access-denied` `permission`, ' +
      '`unreadable-event` `eventType` and `schemaVersion`.',
  });

export const Snapshot = z
  .object({
    snapshotId: SnapshotNumber,
    kind: SnapshotKind,
    status: SnapshotStatus,
    persisted: z.boolean(),
    properties: SnapshotProperties,
    triggerType: TriggerType,
    triggerId: z.string(),
    formatType: FormatType,
    savepointType: SavepointType.nullable().meta({
      description:
        'Flink’s SavepointType: SAVEPOINT, or SUSPEND / TERMINATE (drained) for a stop-with-savepoint, which ' +
        'finishes the job once it completes (R65, R66); null for a checkpoint.',
    }),
    checkpointType: CheckpointType.nullable().meta({
      description:
        'FULL or INCREMENTAL (R58): FULL when FULL was asked for (every savepoint), else what the tasks ' +
        'reported (INCREMENTAL if one did), else what was asked for; null for a checkpoint recorded before snapcat ' +
        'kept it.',
    }),
    standsFor: SnapshotNumber.nullable().meta({
      description: 'A managed job’s savepoint taken to persist a checkpoint (R67): that checkpoint’s id.',
    }),
    flinkCheckpointId: z.number().int().nonnegative().nullable().meta({
      description: 'A managed job’s checkpoint the mirror recorded: Flink’s id for it (R68); null otherwise.',
    }),
    imported: z.boolean().meta({
      description:
        'Catalogued from a path that existed already (R69): the user’s, never subsumed, picked by no restore plan (R70).',
    }),
    jobVersion: z
      .string()
      .nullable()
      .meta({
        description:
          'The application version that took the snapshot (R61): the trigger’s, else the job’s at the time; null ' +
          'when unknown.',
      }),
    flinkVersion: z.string().nullable().meta({
      description: 'The Flink version that took the snapshot (R61); null when unknown.',
    }),
    acknowledgedTasks: Count,
    totalTasks: Count,
    stateSize: Count,
    checkpointedSize: Count.meta({
      description:
        'Bytes uploaded for this snapshot (Flink’s checkpointed_size): the tasks’ own figure, or their stateSize.',
    }),
    sharedStateSize: Count,
    privateStateSize: Count,
    triggeredAt: Timestamp,
    deadline: Timestamp,
    completedAt: Timestamp.nullable(),
    failedAt: Timestamp.nullable(),
    externalPath: z.string().meta({
      description:
        'Where Flink wrote the snapshot: a checkpoint’s chk-<id> directory, a savepoint’s directory.',
    }),
    restorePath: z
      .string()
      .nullable()
      .meta({
        description:
          'The exact path to pass to `flink run -s` or `execution.savepoint.path`: a completed checkpoint’s own ' +
          'chk-<id> directory (persisted or not: Flink’s _metadata is there), a completed savepoint’s directory; ' +
          'null unless COMPLETED.',
      }),
    savepointPath: z
      .string()
      .nullable()
      .meta({
        description:
          'A persisted checkpoint’s savepoint directory, where snapcat writes its manifest (snapcat-manifest.json); ' +
          'Flink cannot restore from it (no _metadata): use restorePath. Null unless persisted.',
      }),
    manifestPath: z.string().nullable().meta({
      description: 'The manifest snapcat wrote for a persisted checkpoint, once written.',
    }),
    claimMode: ClaimMode.nullable().meta({
      description: 'The claim mode of the newest restore from this snapshot (R62); null while none.',
    }),
    failureReason: FailureReason.nullable().meta({
      description:
        'Why it failed, as Flink’s CheckpointFailureReason names it: the reason a declining task gave, or the ' +
        'coordinator’s (CHECKPOINT_EXPIRED, CHECKPOINT_SUBSUMED, ...). Null unless FAILED.',
    }),
    failureMessage: z.string().nullable(),
    declinedBy: z.string().nullable(),
    subsumedBy: SnapshotNumber.nullable(),
    heldBy: z.array(JobId).meta({
      description:
        'The jobs whose restore from this snapshot holds it (decision 0032): not discarded while any does, unless ' +
        'forced. Only those in the caller’s namespaces (decision 0045).',
    }),
    hiddenHolders: Count.meta({
      description:
        'How many jobs outside the caller’s namespaces hold it too (decision 0045): it is held while heldBy names a job or this is above 0.',
    }),
    discard: z
      .object({
        cause: DiscardCause,
        reason: z.string().nullable(),
        state: z.enum(['REQUESTED', 'DONE', 'FAILED']),
        requestedAt: Timestamp.nullable(),
        bytesReclaimed: Count.nullable(),
        error: z.string().nullable(),
        retryable: z.boolean().nullable(),
        attempts: Count,
      })
      .nullable(),
  })
  .meta({ id: 'Snapshot', description: 'A checkpoint or savepoint of a job.' });

const jobSummaryShape = {
  jobId: JobId,
  name: z.string(),
  namespace: Namespace.meta({ description: 'Set at registration, never changed.' }),
  status: JobStatus,
  checkpointing: CheckpointingConfig,
  storage: StorageConfig,
  flinkRestore: z
    .object({
      flinkCheckpointId: z.number().int(),
      snapshotId: SnapshotNumber.nullable(),
      isSavepoint: z.boolean(),
      externalPath: z.string().nullable(),
      restoredAt: Timestamp,
    })
    .nullable()
    .meta({ description: 'What Flink last reported a managed job restored from (R68).' }),
  warnings: z.array(z.string()).meta({
    description:
      'What an operator should know about the job’s configuration, e.g. Flink deleting its checkpoints (R67).',
  }),
  source: z
    .object({ type: z.literal('flink'), cluster: z.string() })
    .nullable()
    .meta({
      description: 'A managed job’s Flink cluster (R67); null for a job whose clients report its snapshots.',
    }),
  jobVersion: z.string().nullable().meta({
    description: 'The job’s current application version (R61); null until one is given.',
  }),
  flinkVersion: z.string().nullable().meta({
    description: 'The Flink version the job currently runs on (R61); null until one is given.',
  }),
  registeredAt: Timestamp.nullable(),
  updatedAt: Timestamp.nullable(),
  consecutiveFailures: Count,
  latestCompletedSnapshotId: SnapshotNumber.nullable(),
  latestCompletedCheckpointId: SnapshotNumber.nullable(),
  latestSavepointId: SnapshotNumber.nullable(),
  restorePoint: z.object({ snapshotId: SnapshotNumber, reason: z.string() }).nullable().meta({
    description: 'Deprecated: the restore plan LATEST_STATE (GraphQL restorePlan answers every strategy).',
  }),
  latestRestore: z
    .object({
      snapshotId: SnapshotNumber.nullable().meta({ description: 'Null for an external path.' }),
      restorePath: z.string(),
      checkpointId: SnapshotNumber.nullable(),
      claimMode: ClaimMode,
      allowNonRestoredState: z.boolean(),
      restoredAt: Timestamp,
    })
    .nullable()
    .meta({ description: 'The newest restore of the job (R62).' }),
  // As recorded: a schedule set before maxCount had a minimum of 1 may show 0 (R53).
  schedule: RecordedSavepointSchedule.nullable(),
  lastSlotAt: Timestamp.nullable(),
  counts: z.object({
    total: Count,
    inProgress: Count,
    completed: Count,
    failed: Count,
    discarded: Count,
    compacted: Count.meta({
      description:
        'Finished snapshots (discard done) no longer in the job: only the newest 100 stay (decision 0035).',
    }),
    restored: Count,
  }),
  referencedStateSize: Count.meta({
    description: 'Bytes of the distinct files the live snapshots reference.',
  }),
  referencedFiles: Count,
  version: Count.meta({ description: 'How many events of the job stream this view reflects.' }),
};

export const JobSummary = z.object(jobSummaryShape).meta({
  id: 'JobSummary',
  description: 'A job without its tasks and snapshots, as the read model keeps it.',
});

export const Job = z
  .object({
    ...jobSummaryShape,
    tasks: z.array(z.string()),
    snapshots: z.array(Snapshot).meta({ description: 'Newest first.' }),
  })
  .meta({ id: 'Job', description: 'A job, its tasks and every snapshot it has, newest first.' });

export const ConfiguredJob = Job.extend({
  changed: z.boolean().meta({ description: 'Whether the command changed anything.' }),
}).meta({ id: 'ConfiguredJob', description: 'The job after PUT /api/v1/jobs/{jobId}.' });

export const JobSnapshot = Snapshot.extend({ jobId: JobId }).meta({
  id: 'JobSnapshot',
  description: 'A snapshot and its job.',
});

export const JobPage = z.object({
  jobs: z.array(JobSummary).meta({ description: 'Ordered by job id.' }),
  nextCursor: z
    .string()
    .nullable()
    .meta({ description: 'Pass it as `after` for the next page; null on the last page.' }),
});

export const AckReply = z.object({ result: AckResult, snapshotStatus: SnapshotStatus.nullable() });

export const ScheduleView = z.object({
  jobId: JobId,
  schedule: RecordedSavepointSchedule,
  /** Null if the schedule never fires (one recorded before such schedules were refused). */
  nextFireAt: Timestamp.nullable(),
});

export const EventPage = z.object({
  jobId: JobId,
  events: z.array(
    z.object({
      revision: Count,
      position: z.string().meta({
        description:
          'Where the event lies in the whole log: `commit:prepare`, as GraphQL `history` shows it.',
      }),
      eventId: z.string(),
      type: z.string(),
      occurredAt: Timestamp,
      recordedAt: Timestamp,
      snapshotId: z.number().int().positive().nullable(),
      data: z.record(z.string(), z.unknown()).meta({
        description:
          'The event, upcast to its current schema. Another job it names that the caller may not see (a hold’s ' +
          '`holderJobId`, a restore’s `fromJobId`) is null (decision 0045).',
      }),
      metadata: z.record(z.string(), z.unknown()),
    }),
  ),
  next: Count.nullable().meta({
    description: 'The `from` of the next page; null when this one is the last.',
  }),
});

export const Subscription = z
  .object({
    id: SubscriptionId,
    url: z.string(),
    eventTypes: z.array(SubscribableEventType),
    jobIds: z.array(JobId),
    description: z.string(),
    namespaces: NamespaceGrantSchema.meta({
      description: "Its creator's namespaces (`*`: all): it receives only their jobs' events.",
    }),
    enabled: z.boolean(),
    disabledReason: z.enum(['GONE', 'USER']).optional(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    previousSecretValidUntil: Timestamp.optional().meta({
      description: 'After a rotation, until when the previous secret signs too.',
    }),
  })
  .meta({ id: 'Subscription', description: 'A webhook subscription (never its secret).' });

export const SubscriptionWithSecret = Subscription.extend({
  secret: z.string().meta({ description: 'whsec_…: shown only in this answer.' }),
});

export const Delivery = z
  .object({
    id: z.string(),
    subscriptionId: SubscriptionId,
    messageId: z.string(),
    eventType: z.string(),
    jobId: JobId.optional(),
    status: z.enum(['pending', 'succeeded', 'failed', 'gone', 'skipped']),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    attempts: z.array(
      z.object({
        attempt: z.number().int().positive(),
        at: Timestamp,
        statusCode: z.number().int().optional(),
        latencyMs: z.number().nonnegative(),
        error: z.string().optional(),
        nextAttemptInMs: z.number().nonnegative().optional(),
      }),
    ),
  })
  .meta({ id: 'Delivery', description: 'A webhook delivery and its attempts.' });

export const DeliveryReceipt = z.object({ deliveryId: z.string(), messageId: z.string() });

export const OrphanReport = z.object({
  generatedAt: Timestamp.meta({ description: 'When the sweep began.' }),
  graceMs: Count,
  deleted: z.boolean().meta({ description: 'Whether the sweep deleted the files (SNAPCAT_DELETE_ORPHANS).' }),
  files: z
    .array(
      z.object({
        path: z.string(),
        size: Count,
        modifiedAt: Timestamp,
        deleted: z.boolean().optional().meta({
          description:
            "When the sweep deletes: whether this file was (not: live again before its batch, or not this catalogue's to delete).",
        }),
      }),
    )
    .meta({
      description: 'The orphans, the first 10,000 of them (fileCount and totalBytes count them all).',
    }),
  fileCount: Count.optional().meta({
    description: 'Orphans found (absent in reports written by earlier versions).',
  }),
  totalBytes: Count,
  claims: z
    .array(
      z.object({
        root: z.string(),
        catalogue: z.string().nullable().meta({
          description: 'The event store id of the catalogue that claimed the root; null: nobody did.',
        }),
        claimedAt: Timestamp.nullable(),
        ours: z
          .boolean()
          .meta({ description: "Whether it is this catalogue's: only then are orphans deleted there." }),
      }),
    )
    .optional()
    .meta({
      description:
        'Who may delete orphans under each root (its .snapcat-root.json, decision 0044), when the sweep deletes.',
    }),
  notDeleted: Count.optional().meta({
    description:
      "Orphans not deleted though deletion is on: under another catalogue's root, or older than this catalogue's claim.",
  }),
  claimsUnreadable: z.string().optional().meta({
    description:
      "Why the storage roots' claims could not be read or written (a claim file that is no claim, say): nothing was deleted.",
  }),
});

export const RestoreReply = z
  .object({
    jobId: JobId,
    snapshotId: SnapshotNumber.nullable().meta({
      description: 'The job’s snapshot restored from; null for an external path.',
    }),
    restorePath: z.string().meta({ description: 'The path Flink was given.' }),
    claimMode: ClaimMode,
    aborted: z.array(SnapshotNumber).meta({
      description: 'The previous run’s pending snapshots, aborted (CHECKPOINT_COORDINATOR_SUSPEND).',
    }),
    nextSnapshotId: SnapshotNumber.meta({ description: 'The id the restored run’s next snapshot gets.' }),
  })
  .meta({ id: 'RestoreReply', description: 'A recorded restore (R62).' });

export const FlinkCluster = z
  .object({
    name: z.string().meta({ example: 'flink-prod' }),
    restUrl: z.string().meta({ example: 'https://flink-prod.example.com:8081' }),
    headers: z.array(z.string()).meta({
      description: 'The names (lowercased) of the headers sent to the cluster; never their values.',
      example: ['authorization'],
    }),
    namespaces: NamespaceGrantSchema.meta({
      description: 'The namespaces whose jobs may name the cluster as their source: `*` for every one.',
      example: ['payments'],
    }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    state: z.enum(['UNKNOWN', 'REACHABLE', 'UNREACHABLE']).meta({
      description:
        'As the connector last found it: UNREACHABLE once its circuit opened (calls fail fast), REACHABLE ' +
        'once a probe got through again, UNKNOWN until an outage was seen.',
    }),
    stateSince: Timestamp.nullable(),
    lastError: z.string().nullable().meta({ description: 'Why it was found unreachable.' }),
  })
  .meta({ id: 'FlinkCluster', description: 'A Flink cluster snapcat may talk to (never a header value).' });
