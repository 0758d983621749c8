import type express from 'express';
import { z } from 'zod';
import type { ZodOpenApiOverrideMetaContext } from 'zod-openapi';
import {
  CheckpointType,
  CheckpointingConfig,
  ClaimMode,
  FormatType,
  JobId,
  JobStatus,
  Location,
  Namespace,
  SavepointSchedule,
  SnapshotId,
  SnapshotIdParam,
  SnapshotKind,
  StateHandles,
  StopWithSavepoint,
  TaskFailureReason,
  TaskIdInput,
  JobName,
  TaskList,
  JobSource,
  TriggerIdSchema,
  TriggerType,
  VersionLabel,
} from '@snapcat/domain';
import { decodeCursor } from '@snapcat/read-model';
import { validationProblem } from './problem';
import { routeOf } from './access';

/** A storage directory a registration may leave out: the server's configured default fills it in. */
const defaultedDirectory = (location: string, variable: string) =>
  Location.default(location).meta({
    description: `Defaults to the server's ${variable} (by default a directory under the first storage root).`,
    // The default is the server's configuration, not part of the API: the OpenAPI document names the variable.
    override: ({ jsonSchema }: ZodOpenApiOverrideMetaContext) => {
      delete jsonSchema.default;
    },
  });

/**
 * A count or position in a URL's query (`limit`, `from`): decimal digits only, from `min` to `max`. A coerced
 * `0x10`, `1e3`, ` 5` or an empty value was read as 16, 1000, 5 or 0. The OpenAPI document shows the integer.
 */
export const QueryInteger = (min: number, max: number) =>
  z
    .string()
    .regex(/^(0|[1-9][0-9]*)$/, { error: 'must be an integer in decimal digits, without leading zeros' })
    .pipe(z.coerce.number<string>().max(max).min(min).int()) // max first: a huge one is told the route's maximum
    .meta({
      override: ({ jsonSchema }: ZodOpenApiOverrideMetaContext) => {
        delete jsonSchema.pattern;
        Object.assign(jsonSchema, { type: 'integer', minimum: min, maximum: max });
      },
    });

/** The opaque cursor GET /jobs answers as nextCursor. */
const JobCursor = z
  .string()
  .min(1)
  .max(256)
  .refine(
    (cursor) => {
      try {
        decodeCursor(cursor, 'job');
        return true;
      } catch {
        return false;
      }
    },
    { error: 'must be the nextCursor of a previous page', params: { rule: 'cursor' } },
  );

/** Request shapes of the REST API, built from the domain's schemas so a rule is written once. */
export function requestSchemas(defaults: { checkpointDir: string; savepointDir: string }) {
  return {
    ...jobSchemas(defaults),
    ...snapshotTakingSchemas(),
    ...snapshotLifecycleSchemas(),
    ...readingSchemas(),
  };
}

/** A job: its path parameters, its configuration (storage defaulted from the service's), status and schedule. */
function jobSchemas(defaults: { checkpointDir: string; savepointDir: string }) {
  return {
    jobPath: z.strictObject({ jobId: JobId }),
    snapshotPath: z.strictObject({ jobId: JobId, snapshotId: SnapshotIdParam }),
    configureJob: z.strictObject({
      name: JobName.optional(),
      namespace: Namespace.optional().meta({
        description:
          'The namespace the job belongs to, set at registration (default `default`) and never changed; ' +
          'a token acts only on the jobs of its namespaces.',
      }),
      tasks: TaskList.default([]).meta({
        description:
          'The tasks that acknowledge snapshots; required unless `source` makes Flink report them itself (R67).',
      }),
      source: JobSource.optional().meta({
        description:
          'Manage a Flink job through a registered cluster (R67): snapcat takes its savepoints in Flink and ' +
          'mirrors its checkpoints; the job id is the Flink JobID. Left out on a change, the source is kept.',
      }),
      status: JobStatus.optional(),
      checkpointing: CheckpointingConfig.prefault({}),
      storage: z
        .strictObject({
          checkpointDir: defaultedDirectory(defaults.checkpointDir, 'SNAPCAT_CHECKPOINT_DIR'),
          savepointDir: defaultedDirectory(defaults.savepointDir, 'SNAPCAT_SAVEPOINT_DIR'),
        })
        .prefault({}),
      jobVersion: VersionLabel.optional().meta({
        description:
          'The application’s version: free text such as a release, jar or image (1 to 256 characters, no control ' +
          'characters). Left out, the job keeps the one it has; a new one alone is a reconfiguration (R61).',
      }),
      flinkVersion: VersionLabel.optional().meta({
        description:
          'The Flink version the job runs on, as free text; left out, the job keeps the one it has (R61).',
      }),
    }),
    changeStatus: z.strictObject({ status: JobStatus }),
    schedule: SavepointSchedule.meta({
      description:
        'Exactly one of `every` (an ISO-8601 duration of at least PT1S) or `cron` (with seconds, in the ' +
        "IANA time zone `tz`, by default the server's; `tz` only with `cron`).",
    }),
  };
}

/** Taking a snapshot: the trigger and the tasks' acknowledgements and declines. */
function snapshotTakingSchemas() {
  return {
    trigger: z.strictObject({
      kind: SnapshotKind,
      triggerId: TriggerIdSchema.optional(),
      triggerType: TriggerType.default('MANUAL'),
      targetDirectory: Location.optional(),
      formatType: FormatType.default('CANONICAL'),
      checkpointType: CheckpointType.optional().meta({
        description:
          'FULL or INCREMENTAL, as Flink’s POST /jobs/{jobid}/checkpoints takes it; left out, Flink’s CONFIGURED: ' +
          'INCREMENTAL for a checkpoint (it may share files with earlier ones), FULL for a savepoint, which is ' +
          'never INCREMENTAL (R58).',
      }),
      jobVersion: VersionLabel.optional().meta({
        description:
          'The application version taking the snapshot, recorded with it; left out, the job’s current one (R61).',
      }),
      flinkVersion: VersionLabel.optional().meta({
        description: 'The Flink version taking the snapshot; left out, the job’s current one (R61).',
      }),
      terminate: StopWithSavepoint.extend({ drain: z.boolean().default(false) })
        .optional()
        .meta({
          description:
            'Stop-with-savepoint (savepoints only, R65): Flink’s POST /jobs/{jobid}/stop. Pending snapshots are ' +
            'aborted and periodic ones held back while it is pending; once it completes the job is FINISHED ' +
            '(R66). `drain` emits MAX_WATERMARK first (SavepointType TERMINATE, else SUSPEND).',
        }),
    }),
    ack: AckBody,
    acks: z.array(AckBody).min(1).max(10_000),
    decline: z.strictObject({
      taskId: TaskIdInput,
      reason: z.string().max(4096).optional().meta({ description: 'The task’s message, free text.' }),
      failureReason: TaskFailureReason.optional().meta({
        description:
          'Why the task declines, as Flink’s CheckpointFailureReason names it (R24); left out: CHECKPOINT_DECLINED. ' +
          'Only IO_EXCEPTION, CHECKPOINT_ASYNC_EXCEPTION and CHECKPOINT_DECLINED count against tolerableFailures ' +
          '(R27), and a savepoint’s decline for IO_EXCEPTION, a pre-flight reason, does not (R59).',
      }),
    }),
  };
}

/** A snapshot once taken: persisted, imported, restored from, discarded. */
function snapshotLifecycleSchemas() {
  return {
    persist: z.strictObject({ targetDirectory: Location.optional() }),
    import: z.strictObject({
      externalPath: Location.meta({
        description:
          'The directory of a savepoint or retained checkpoint that exists already (Flink’s `_metadata` in it), ' +
          'inside the storage roots: catalogued, retained and disposed of like the others (R69).',
      }),
      kind: SnapshotKind,
      formatType: FormatType.optional().meta({
        description: 'A savepoint’s format (CANONICAL or NATIVE); left out, CANONICAL.',
      }),
    }),
    restore: z
      .strictObject({
        snapshotId: SnapshotId.optional().meta({
          description:
            'One of the job’s completed snapshots (with fromJobId: of that job); give this or externalPath.',
        }),
        fromJobId: JobId.optional().meta({
          description:
            'Another job whose completed snapshot this restores from (by snapshotId, or externalPath its ' +
            'directory): that job holds the snapshot, neither subsumed nor discarded, until this job’s live ' +
            'snapshots use none of its files (decision 0032). A path in another job’s checkpoint directory is ' +
            'held without it; a savepoint’s directory names only six characters of its job’s id, so name the ' +
            'job to have a restore from its savepoint held.',
        }),
        externalPath: Location.optional().meta({
          description:
            'Any path Flink restores from (recorded, never deleted by snapcat); give this or snapshotId.',
        }),
        checkpointId: SnapshotId.optional().meta({
          description:
            'With externalPath: the id its metadata holds; the job’s snapshot ids continue above it.',
        }),
        claimMode: ClaimMode.default('NO_CLAIM').meta({
          description:
            'Flink’s execution.state-recovery.claim-mode (default NO_CLAIM, as in Flink): CLAIM hands the ' +
            'snapshot to the job, which subsumes and discards it like its own checkpoints; NO_CLAIM leaves it ' +
            'the user’s and makes the next checkpoint FULL; LEGACY leaves it the user’s without that (R62, R63).',
        }),
        allowNonRestoredState: z.boolean().default(false),
      })
      .refine((b) => (b.snapshotId === undefined) !== (b.externalPath === undefined), {
        error: 'give exactly one of snapshotId (one of the job’s snapshots) or externalPath',
        path: ['snapshotId'],
        params: { rule: 'snapshot-or-external-path' },
      }),
    discard: z.strictObject({ reason: z.string().max(4096).optional(), force: z.boolean().default(false) }),
  };
}

/** Reading: a job's events, and the job list's filters. */
function readingSchemas() {
  return {
    events: z.strictObject({
      from: QueryInteger(0, Number.MAX_SAFE_INTEGER).default(0),
      limit: QueryInteger(1, 1000).default(100),
    }),
    /** GET /jobs. Strict, so a filter this version does not know is refused, not ignored. */
    jobList: z.strictObject({
      status: JobStatus.optional().meta({ description: 'Only the jobs in this status.' }),
      namespace: Namespace.optional().meta({
        description: "Only the jobs of this namespace (always only those of the token's namespaces).",
      }),
      limit: QueryInteger(1, 1000).default(100).meta({ description: 'The most jobs a page holds.' }),
      after: JobCursor.optional().meta({
        description: 'The `nextCursor` of the previous page (opaque); leave it out for the first page.',
      }),
    }),
  };
}

const AckBody = z.strictObject({
  taskId: TaskIdInput,
  stateSize: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .meta({
      description:
        'Bytes of the state the task reported; default the sum of its stateHandles’ sizeBytes, as Flink sums a ' +
        'subtask’s state objects (TaskStateSnapshot#getStateSize).',
    }),
  stateHandles: StateHandles.default([]),
  checkpointType: CheckpointType.optional().meta({
    description:
      'What the task took, FULL or INCREMENTAL (R58); INCREMENTAL where FULL was asked for is refused (409).',
  }),
  checkpointedSize: z.number().int().nonnegative().optional().meta({
    description:
      'Bytes this checkpoint uploaded for the task (Flink’s checkpointed_size); default stateSize.',
  }),
});

export function parse<T extends z.ZodType>(
  schema: T,
  value: unknown,
  location: 'body' | 'path' | 'query',
): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationProblem(result.error, location, value);
  return result.data;
}

/**
 * The REST routes that take query parameters: each parses its own strictly. Every other route of the API
 * refuses any (`refuseUnknownQuery`), so that a parameter a client thinks exists (`?dryRun=1`) is a 400, not
 * a command carried out. The OpenAPI document must agree (services/api/test/api.test.ts checks it).
 */
export const ROUTES_WITH_QUERY: ReadonlySet<string> = new Set([
  'GET /api/v1/jobs',
  'GET /api/v1/jobs/{jobId}/events',
  'GET /api/v1/webhooks/{subscriptionId}/deliveries',
  'GET /api/flink/v1/jobs/{jobId}/checkpoints',
]);
/** No query parameters, and no body where none is read. */
const NOTHING = z.strictObject({});

/**
 * The routes of /api/v1 that read a JSON body. The others refuse one that says anything (`{}` passes), as an
 * unknown field is refused where there is a body: `{"dryRun": true}` on a rotation rotated the secret (a
 * review). The OpenAPI document must agree (services/api/test/api.test.ts checks it).
 */
export const ROUTES_WITH_BODY: ReadonlySet<string> = new Set([
  'PUT /api/v1/jobs/{jobId}',
  'POST /api/v1/jobs/{jobId}/status',
  'POST /api/v1/jobs/{jobId}/restores',
  'POST /api/v1/jobs/{jobId}/snapshots',
  'POST /api/v1/jobs/{jobId}/snapshots/import',
  'POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/acks',
  'POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/decline',
  'POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/discard',
  'POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/persist',
  'PUT /api/v1/jobs/{jobId}/savepoint-schedule',
  'POST /api/v1/webhooks',
  'PATCH /api/v1/webhooks/{subscriptionId}',
  'PUT /api/v1/clusters/{name}',
]);

/** 400 for a body on a route of /api/v1 that reads none, unless it is `{}` (field `body…`, `unknown-field`). */
export const refuseBodyWhereNone: express.RequestHandler = (req, _res, next) => {
  if (req.body === undefined) return next();
  const route = routeOf(req.method, req.path);
  if (route?.includes(' /api/v1/') && !ROUTES_WITH_BODY.has(route)) parse(NOTHING, req.body, 'body');
  next();
};

/** 400 for a query parameter on a route of /api/v1 that takes none (field `query.<name>`, `unknown-field`). */
export const refuseUnknownQuery: express.RequestHandler = (req, _res, next) => {
  const route = routeOf(req.method, req.path);
  const checked = route?.includes(' /api/v1/') && route !== 'GET /api/v1/openapi.json';
  if (checked && !ROUTES_WITH_QUERY.has(route!)) parse(NOTHING, req.query, 'query');
  next();
};
