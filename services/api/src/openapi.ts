import { z } from 'zod';
import {
  createDocument,
  type ZodOpenApiObject,
  type ZodOpenApiOperationObject,
  type ZodOpenApiPathsObject,
  type ZodOpenApiResponseObject,
  type ZodOpenApiResponsesObject,
} from 'zod-openapi';
import { JobId, JobStatus, MAX_SUBSCRIPTIONS_PER_NAMESPACES, SnapshotStatus } from '@snapcat/domain';
import { version } from '../package.json';
import { requestSchemas } from './requests';
import { webhookSchemas } from './webhooks';
import { clusterSchemas } from './clusters';
import { REST_RULES, type Rule } from './access';
import * as S from './openapi-schemas';
import * as F from './flink-compat';

/*
 * The OpenAPI 3.1 description of the REST API, generated (zod-openapi) from the very zod schemas the routes
 * validate their path, query and body with (requests.ts, webhooks.ts). Served at GET /api/v1/openapi.json and
 * committed as schema/openapi.json (`npm run schema`). services/api/test/openapi.test.ts checks that it is a
 * valid OpenAPI document, that it describes exactly the routes the express app registers, and that every
 * request example passes both its JSON Schema and the route itself.
 */

export type Method = 'get' | 'put' | 'post' | 'patch' | 'delete';
export interface DescribedRoute {
  method: Method;
  /** The OpenAPI path: /api/v1/jobs/{jobId}. */
  path: string;
  operation: ZodOpenApiOperationObject;
}

const JOB = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

// The storage defaults are the server's configuration: requests.ts keeps them out of the document.
const schemas = requestSchemas({ checkpointDir: '/', savepointDir: '/' });

const json = (schema: z.ZodType, description: string, extra: Partial<ZodOpenApiResponseObject> = {}) => ({
  description,
  content: { 'application/json': { schema } },
  ...extra,
});

const body = (
  schema: z.ZodType,
  examples: Record<string, { summary: string; value: unknown }>,
  required = true,
) => ({ required, content: { 'application/json': { schema, examples } } });

const problemResponse = (
  id: string,
  description: string,
  example: Record<string, unknown>,
  extra: Partial<ZodOpenApiResponseObject> = {},
): ZodOpenApiResponseObject => ({
  id,
  description,
  content: { 'application/problem+json': { schema: S.ProblemDetails, example } },
  ...extra,
});

const retryAfter = z.object({
  'Retry-After': z.string().meta({ description: 'Seconds to wait before trying again.', example: '1' }),
});

const PROBLEMS = {
  400: problemResponse(
    'InvalidRequest',
    'The path, the query or the body breaks a rule: `errors` names each.',
    {
      type: 'urn:snapcat:problem:invalid-request',
      title: 'Invalid request',
      status: 400,
      detail: 'body.checkpointing.numRetained: Too small: expected number to be >=1',
      errors: [
        {
          field: 'body.checkpointing.numRetained',
          rule: 'minimum',
          message: 'Too small: expected number to be >=1',
        },
      ],
    },
  ),
  404: problemResponse('NotFound', 'The job, snapshot, subscription or delivery does not exist.', {
    type: 'urn:snapcat:problem:not-found',
    title: 'Not found',
    status: 404,
    detail: `job ${JOB} is not registered`,
    errors: [{ field: 'path.jobId', rule: 'exists', message: `job ${JOB} is not registered` }],
  }),
  409: problemResponse('Conflict', "The job's state does not allow the command; nothing was written.", {
    type: 'urn:snapcat:problem:conflict',
    title: 'Conflict',
    status: 409,
    detail:
      'snapshot 2 is the latest completed snapshot of a job that has not terminated (RUNNING); set force to discard it',
    errors: [
      {
        field: 'path.snapshotId',
        rule: 'latest-completed-retained',
        message:
          'snapshot 2 is the latest completed snapshot of a job that has not terminated (RUNNING); set force to discard it',
      },
    ],
  }),
  410: problemResponse(
    'Gone',
    "The job's stream was hard-deleted from the event store (a tombstone): it can never be read or written again.",
    {
      type: 'urn:snapcat:problem:gone',
      title: 'Gone',
      status: 410,
      detail: `job ${JOB} was deleted from the event store`,
      errors: [
        { field: 'path.jobId', rule: 'deleted', message: `job ${JOB} was deleted from the event store` },
      ],
    },
  ),
  413: problemResponse('TooLarge', 'The body is larger than 16 MB.', {
    type: 'urn:snapcat:problem:too-large',
    title: 'Payload too large',
    status: 413,
    detail: 'the body is larger than 16777216 bytes',
    errors: [{ field: 'body', rule: 'max-size', message: 'must be at most 16777216 bytes' }],
  }),
  415: problemResponse('UnsupportedMediaType', 'The body is not application/json.', {
    type: 'urn:snapcat:problem:unsupported-media-type',
    title: 'Unsupported media type',
    status: 415,
    detail: 'send the body as application/json',
    errors: [{ field: 'header.content-type', rule: 'json', message: 'must be application/json' }],
  }),
  401: problemResponse(
    'Unauthenticated',
    'No token, or one that is not configured: send `Authorization: Bearer <token>`.',
    {
      type: 'urn:snapcat:problem:unauthenticated',
      title: 'Unauthenticated',
      status: 401,
      detail: 'this route needs a token: send Authorization: Bearer <token>',
      errors: [{ field: 'header.authorization', rule: 'required', message: 'this route needs a token' }],
    },
    {
      headers: z.object({
        'WWW-Authenticate': z
          .string()
          .meta({ description: 'The scheme to use.', example: 'Bearer realm="snapcat"' }),
      }),
    },
  ),
  403: problemResponse(
    'Forbidden',
    "The token's scopes do not include the one this route needs (`requiredScope`).",
    {
      type: 'urn:snapcat:problem:forbidden',
      title: 'Forbidden',
      status: 403,
      detail: 'this needs the operator scope; token ci has runtime',
      errors: [{ field: 'header.authorization', rule: 'scope', message: 'needs the operator scope' }],
      requiredScope: 'operator',
    },
  ),
  429: problemResponse(
    'TooManyRequests',
    "The caller's rate limit (SNAPCAT_RATE_LIMIT) is spent; retry after Retry-After seconds.",
    {
      type: 'urn:snapcat:problem:too-many-requests',
      title: 'Too many requests',
      status: 429,
      detail: 'rate limit exceeded: retry in 1 s',
    },
    { headers: retryAfter },
  ),
  500: problemResponse('Internal', 'An unexpected error (logged).', {
    type: 'urn:snapcat:problem:internal',
    title: 'Internal error',
    status: 500,
    detail: 'an unexpected error occurred',
  }),
  503: problemResponse(
    'Unavailable',
    'The event store is unreachable (or, for reads of the read model and webhooks, Redis, also while it ' +
      'fails over, loads, or is out of memory: decision 0048); try again. `store-full`: the embedded ' +
      "store's disk is full; nothing was written, and the request succeeds once space is freed (Retry-After 30). " +
      '`outcome-unknown`: EventStoreDB did not confirm an append, even sent again with the same event ids: it ' +
      'may be recorded; read the job before sending it again (a trigger sent again with its `triggerId` ' +
      'answers the snapshot it triggered). ' +
      "`store-access-denied`: the event store refuses snapcat's own credentials (the detail names the " +
      'permission its user lacks); nothing was written, and the request succeeds once an operator grants it ' +
      "(Retry-After 30). `unreadable-event`: the job's log holds an event a newer snapcat wrote, which this " +
      'process cannot read (a rolling upgrade, decision 0037): an upgraded replica answers.',
    {
      type: 'urn:snapcat:problem:unavailable',
      title: 'Service unavailable',
      status: 503,
      detail: 'event store unavailable: connect ECONNREFUSED',
    },
    { headers: retryAfter },
  ),
};
type ProblemStatus = keyof typeof PROBLEMS;

/** The answers of an operation: its own, then the problems it may answer. */
function responses(own: ZodOpenApiResponsesObject, problems: ProblemStatus[]): ZodOpenApiResponsesObject {
  const all: ZodOpenApiResponsesObject = { ...own };
  for (const status of [...problems, 500 as const]) all[`${status}`] = PROBLEMS[status];
  return all;
}

/**
 * A command's problems: a bad path or body, an unknown or deleted job, a refused command, a body not JSON or
 * too large.
 */
const COMMAND: ProblemStatus[] = [400, 404, 409, 410, 413, 415, 503];
/** A read of one job's state from the event store. */
const READ: ProblemStatus[] = [400, 404, 410, 503];

const jobPath = { path: schemas.jobPath };
const snapshotPath = { path: schemas.snapshotPath };
const SNAPSHOTS = '/api/v1/jobs/{jobId}/snapshots';
const snapshotStatusReply = z.object({ snapshotId: z.number().int().positive(), status: SnapshotStatus });

function jobRoutes(): DescribedRoute[] {
  return [...jobRegistrationRoutes(), ...jobStateRoutes()];
}

/** The job list, and registering or reconfiguring a job. */
function jobRegistrationRoutes(): DescribedRoute[] {
  return [
    {
      method: 'get',
      path: '/api/v1/jobs',
      operation: {
        operationId: 'listJobs',
        tags: ['jobs'],
        summary: 'List the jobs',
        description:
          'The registered jobs, ordered by job id, a page at a time (`limit`, then `after` = the previous ' +
          "page's `nextCursor`), optionally only those in one `status`. Each is the job's summary, without its " +
          'tasks and snapshots (GET /api/v1/jobs/{jobId} has them).\n\n' +
          'Read from the read model (Redis, kept by the projector): **eventually consistent** with the ' +
          'commands, usually within milliseconds of them; while Redis is unreachable it answers 503, and the ' +
          'commands go on. Unknown query parameters are refused (400), so filters added later (a job ' +
          '`namespace` is planned) are never silently ignored by an older server.',
        requestParams: { query: schemas.jobList },
        responses: responses({ 200: json(S.JobPage, 'A page of jobs.') }, [400, 503]),
      },
    },
    {
      method: 'put',
      path: '/api/v1/jobs/{jobId}',
      operation: {
        operationId: 'configureJob',
        tags: ['jobs'],
        summary: 'Register or reconfigure a job',
        description:
          'Registers the job (201) or changes its name, tasks, status, checkpointing, storage or versions ' +
          '(200). Directories must lie inside the storage roots. `jobVersion` and `flinkVersion` left out keep ' +
          'the ones the job has; every snapshot records the versions it was taken by (R61).',
        requestParams: jobPath,
        requestBody: body(schemas.configureJob, {
          minimal: { summary: 'Two tasks, every default', value: { tasks: ['source-0', 'sink-0'] } },
          full: {
            summary: 'Name, checkpointing, storage and versions',
            value: {
              name: 'orders',
              tasks: ['source-0', 'source-1', 'sink-0'],
              status: 'RUNNING',
              checkpointing: {
                numRetained: 3,
                timeoutMs: 600000,
                maxConcurrent: 1,
                minPauseMs: 5000,
                tolerableFailures: 2,
                retention: 'RETAIN_ON_CANCELLATION',
                persistOnFailure: true,
              },
              storage: {
                checkpointDir: 'file:///data/snapcat/checkpoints/orders',
                savepointDir: 'file:///data/snapcat/savepoints/orders',
              },
              jobVersion: 'orders-1.4.0.jar',
              flinkVersion: '1.19.1',
            },
          },
        }),
        responses: responses(
          {
            200: json(S.ConfiguredJob, 'Reconfigured: the job.'),
            201: json(S.ConfiguredJob, 'Registered: the job.'),
          },
          [400, 409, 413, 415, 503],
        ),
      },
    },
  ];
}

/** A job's state: read, its status changed, its restores recorded, its events. */
function jobStateRoutes(): DescribedRoute[] {
  return [
    {
      method: 'get',
      path: '/api/v1/jobs/{jobId}',
      operation: {
        operationId: 'getJob',
        tags: ['jobs'],
        summary: 'A job and its snapshots',
        description: 'From the event store: reflects every command answered before (read your own writes).',
        requestParams: jobPath,
        responses: responses({ 200: json(S.Job, 'The job.') }, READ),
      },
    },
    {
      method: 'post',
      path: '/api/v1/jobs/{jobId}/status',
      operation: {
        operationId: 'changeJobStatus',
        tags: ['jobs'],
        summary: "Change a job's status",
        description: 'A terminal status (FINISHED, CANCELED, FAILED) applies the retention policy.',
        requestParams: jobPath,
        requestBody: body(schemas.changeStatus, {
          finished: { summary: 'The job finished', value: { status: 'FINISHED' } },
        }),
        responses: responses(
          { 200: json(z.object({ jobId: JobId, status: JobStatus, changed: z.boolean() }), 'The status.') },
          COMMAND,
        ),
      },
    },
    {
      method: 'post',
      path: '/api/v1/jobs/{jobId}/restores',
      operation: {
        operationId: 'restoreJob',
        tags: ['jobs'],
        summary: 'Record that the job (re)started from a snapshot',
        description:
          'From one of the job’s completed snapshots (`snapshotId`) or any path Flink restores from ' +
          '(`externalPath`; the directory or `_metadata` of one of the job’s own completed snapshots is that ' +
          'snapshot), in Flink’s claim mode (R62): CLAIM hands the snapshot to the job, which subsumes and ' +
          'discards it like its own checkpoints; NO_CLAIM and LEGACY leave it the user’s, and after NO_CLAIM the ' +
          'next checkpoint is FULL (R63). The previous run’s pending snapshots are aborted. GraphQL `restorePlan` ' +
          'says what to restore from. Another catalogued job’s completed snapshot (`fromJobId`, or found from ' +
          'the path: a checkpoint directory names the job, a savepoint directory six characters of it) is held ' +
          'by that job until this one no longer uses its files (decision 0032): 409 `one-owner` when two other ' +
          'jobs hold the path, 409 `snapshot-pending` (in progress, 0043) or `being-deleted` (being discarded, ' +
          '0047), 400 `within-storage-roots` through a symbolic link below a root, 503 while Redis cannot tell.',
        requestParams: jobPath,
        requestBody: body(schemas.restore, {
          claim: { summary: 'Claim a retained checkpoint', value: { snapshotId: 42, claimMode: 'CLAIM' } },
          external: {
            summary: 'From a savepoint of another job',
            value: {
              externalPath: 's3://flink/savepoints/savepoint-0a1b2c-0123456789ab',
              checkpointId: 812,
              claimMode: 'NO_CLAIM',
              allowNonRestoredState: true,
            },
          },
        }),
        responses: responses({ 201: json(S.RestoreReply, 'Recorded.') }, COMMAND),
      },
    },
    {
      method: 'get',
      path: '/api/v1/jobs/{jobId}/events',
      operation: {
        operationId: 'listJobEvents',
        tags: ['jobs'],
        summary: "A job's events",
        description: "The job stream's events in order, from revision `from`, at most `limit`.",
        requestParams: { ...jobPath, query: schemas.events },
        responses: responses({ 200: json(S.EventPage, 'A page of events.') }, READ),
      },
    },
  ];
}

function snapshotRoutes(): DescribedRoute[] {
  return [
    ...snapshotTriggerRoutes(),
    ...snapshotImportRoutes(),
    ...taskReportRoutes(),
    ...snapshotPersistRoutes(),
    ...snapshotDiscardRoutes(),
  ];
}

/** Triggering a checkpoint or savepoint. */
function snapshotTriggerRoutes(): DescribedRoute[] {
  return [
    {
      method: 'post',
      path: SNAPSHOTS,
      operation: {
        operationId: 'triggerSnapshot',
        tags: ['snapshots'],
        summary: 'Trigger a checkpoint or savepoint',
        description:
          'Accepted (202, `Location` names the snapshot) or rejected before it starts (409 with `reason`, ' +
          "Flink's CheckpointFailureReason). A repeated `triggerId` answers the snapshot it triggered.",
        requestParams: jobPath,
        requestBody: body(schemas.trigger, {
          checkpoint: { summary: 'A manual checkpoint', value: { kind: 'CHECKPOINT' } },
          savepoint: {
            summary: 'A native-format savepoint, idempotent by triggerId',
            value: {
              kind: 'SAVEPOINT',
              triggerId: 'release-2024-06-01',
              targetDirectory: 'file:///data/snapcat/savepoints/orders',
              formatType: 'NATIVE',
            },
          },
        }),
        responses: responses(
          {
            202: json(
              z.object({
                snapshotId: z.number().int().positive(),
                triggerId: z.string(),
                status: SnapshotStatus,
              }),
              'Triggered.',
              { headers: z.object({ Location: z.string().meta({ description: 'The snapshot.' }) }) },
            ),
          },
          COMMAND,
        ),
      },
    },
  ];
}

/** Cataloguing a snapshot that exists already, and reading one. */
function snapshotImportRoutes(): DescribedRoute[] {
  return [
    {
      method: 'post',
      path: `${SNAPSHOTS}/import`,
      operation: {
        operationId: 'importSnapshot',
        tags: ['snapshots'],
        summary: 'Import an existing savepoint or retained checkpoint',
        description:
          'Catalogues a savepoint or retained checkpoint that exists already (taken before snapcat, or by hand) so ' +
          'that it is retained and disposed of like the others (R69): it gets the job’s next snapshot id and is ' +
          'COMPLETED at once, its directory its restorePath, its size measured in the storage. It is the user’s: ' +
          'never subsumed, and no restore plan picks it (R70). The path must lie inside the storage roots (400 ' +
          '`within-storage-roots`) and hold Flink’s `_metadata` (400 `exists` when nothing lies there, ' +
          '`has-metadata` without it), and be one snapshot’s only (400 `one-snapshot`: no other `_metadata`, ' +
          'checkpoint area or savepoint directory inside it, which its discard would delete); one that is, lies ' +
          'in or holds another live snapshot’s directory is a 409 ' +
          '(`already-catalogued`, `overlaps-catalogued`). 201 with the snapshot (`Location` names it); the same ' +
          'path again answers that snapshot with 200. A directory another job is deleting now (or one inside or ' +
          'around it) is a 409 `being-deleted`: retry after the deletion (decision 0047).',
        requestParams: jobPath,
        requestBody: body(schemas.import, {
          savepoint: {
            summary: 'A savepoint taken by hand',
            value: {
              externalPath: 'file:///data/snapcat/savepoints/savepoint-0a1b2c-3d4e5f6a7b8c',
              kind: 'SAVEPOINT',
            },
          },
          retained: {
            summary: 'A checkpoint retained after the job that took it was cancelled',
            value: {
              externalPath: 'file:///data/snapcat/checkpoints/0a1b2c3d4e5f60718293a4b5c6d7e8f9/chk-42',
              kind: 'CHECKPOINT',
            },
          },
        }),
        responses: responses(
          {
            201: json(S.JobSnapshot.extend({ duplicate: z.literal(false) }), 'Imported.', {
              headers: z.object({ Location: z.string().meta({ description: 'The snapshot.' }) }),
            }),
            200: json(
              S.JobSnapshot.extend({ duplicate: z.literal(true) }),
              'The path was imported before: that snapshot.',
              { headers: z.object({ Location: z.string().meta({ description: 'The snapshot.' }) }) },
            ),
          },
          COMMAND,
        ),
      },
    },
    {
      method: 'get',
      path: `${SNAPSHOTS}/{snapshotId}`,
      operation: {
        operationId: 'getSnapshot',
        tags: ['snapshots'],
        summary: 'A snapshot',
        requestParams: snapshotPath,
        responses: responses({ 200: json(S.JobSnapshot, 'The snapshot.') }, READ),
      },
    },
  ];
}

/** The tasks' reports on a snapshot: acknowledgements and declines. */
function taskReportRoutes(): DescribedRoute[] {
  return [
    {
      method: 'post',
      path: `${SNAPSHOTS}/{snapshotId}/acks`,
      operation: {
        operationId: 'acknowledgeTasks',
        tags: ['snapshots'],
        summary: 'Acknowledge tasks',
        description:
          "One task's acknowledgement, or an array of them (decided in order, appended together): an array " +
          'answers an array. The last one completes the snapshot. Every state handle must lie inside the ' +
          'storage roots, by its real path too: no symbolic link below a root (400 `within-storage-roots`; ' +
          'a directory is 400 `state-file`, ' +
          "decision 0042); one laid out under another catalogued job's id (`<dir>/<otherJobId>/shared/…`), or " +
          "in another catalogued job's completed savepoint, needs a restore of this job holding one of that " +
          "job's snapshots (409 `restore-recorded`, decision 0032; 409 `snapshot-pending` for a savepoint " +
          "still in progress, decision 0043; 503 while the read model cannot tell a savepoint directory's owner). " +
          'A file another job is deleting now (no Flink layout names it, or its savepoint is being discarded) ' +
          'is 409 `being-deleted`: retry after the deletion, if it is still there (decision 0047).',
        requestParams: snapshotPath,
        requestBody: body(z.union([schemas.ack, schemas.acks]), {
          one: {
            summary: 'One task, with its state handles',
            value: {
              taskId: 'source-0',
              stateSize: 1048576,
              stateHandles: [
                {
                  path: 'file:///data/snapcat/checkpoints/orders/shared/a1',
                  sizeBytes: 1000000,
                  shared: true,
                },
                { path: 'file:///data/snapcat/checkpoints/orders/chk-7/b2', sizeBytes: 48576 },
              ],
            },
          },
          many: {
            summary: 'Several tasks at once',
            value: [{ taskId: 'source-0', stateSize: 10 }, { taskId: 'sink-0' }],
          },
        }),
        responses: responses(
          {
            200: json(
              z.union([S.AckReply, z.array(S.AckReply)]),
              'The result of each acknowledgement (an array for an array).',
            ),
          },
          COMMAND,
        ),
      },
    },
    {
      method: 'post',
      path: `${SNAPSHOTS}/{snapshotId}/decline`,
      operation: {
        operationId: 'declineSnapshot',
        tags: ['snapshots'],
        summary: 'A task declines the snapshot',
        description:
          'The snapshot fails with the failureReason the task gives (CHECKPOINT_DECLINED when it gives none); ' +
          'the failure counts against tolerableFailures as Flink’s CheckpointFailureManager counts it (R27, R28, R59, R60).',
        requestParams: snapshotPath,
        requestBody: body(schemas.decline, {
          declined: { summary: 'A task declines', value: { taskId: 'sink-0', reason: 'disk full' } },
          notReady: {
            summary: 'A task declines with Flink’s reason',
            value: {
              taskId: 'sink-0',
              reason: 'task not ready',
              failureReason: 'CHECKPOINT_DECLINED_TASK_NOT_READY',
            },
          },
        }),
        responses: responses({ 200: json(snapshotStatusReply, 'The snapshot status.') }, COMMAND),
      },
    },
  ];
}

/** Persisting a snapshot (a checkpoint kept past its retention, or moved). */
function snapshotPersistRoutes(): DescribedRoute[] {
  return [
    {
      method: 'post',
      path: `${SNAPSHOTS}/{snapshotId}/persist`,
      operation: {
        operationId: 'persistSnapshot',
        tags: ['snapshots'],
        summary: 'Persist a checkpoint as a savepoint (FLIP-10)',
        requestParams: snapshotPath,
        requestBody: body(
          schemas.persist,
          {
            default: { summary: "Into the job's savepoint directory", value: {} },
            target: {
              summary: 'Into another directory',
              value: { targetDirectory: 'file:///data/snapcat/savepoints/orders-release' },
            },
          },
          false,
        ),
        responses: responses(
          {
            200: json(
              z.object({
                snapshotId: z.number().int().positive(),
                persisted: z.literal(true),
                savepointPath: z.string().meta({
                  description:
                    'Where snapcat writes its manifest of a persisted checkpoint (a savepoint: its own directory).',
                }),
                restorePath: z.string().meta({
                  description:
                    'The path to pass to `flink run -s`: the checkpoint’s own chk-<id> directory, a savepoint’s directory.',
                }),
                changed: z.boolean(),
              }),
              'Persisted.',
            ),
            202: json(
              z.object({
                snapshotId: z.number().int().positive(),
                persisted: z.literal(false),
                savepointSnapshotId: z.number().int().positive().meta({
                  description: 'The NATIVE savepoint being taken in Flink for the checkpoint (R67).',
                }),
                savepointPath: z.string().nullable().meta({
                  description:
                    'Where Flink wrote the savepoint: null until it reports it (Flink names the directory); follow `Location`.',
                }),
                restorePath: z.string().nullable(),
                changed: z.boolean(),
              }),
              'A managed job’s checkpoint: Flink owns it, so a NATIVE savepoint of the job stands for it (R67).',
            ),
          },
          COMMAND,
        ),
      },
    },
  ];
}

/** Discarding a snapshot. */
function snapshotDiscardRoutes(): DescribedRoute[] {
  return [
    {
      method: 'post',
      path: `${SNAPSHOTS}/{snapshotId}/discard`,
      operation: {
        operationId: 'discardSnapshot',
        tags: ['snapshots'],
        summary: 'Discard a snapshot',
        description:
          'Requested (202); the workers delete its files. Refused (409) unless `force`: the latest completed ' +
          'snapshot of a job that has not terminated (`latest-completed-retained`; RESTARTING and SUSPENDED ' +
          'jobs restore from it too), what a failover of it restores from ' +
          '(`failover-base`: its newest checkpoint, or the snapshot it restored from until a checkpoint ' +
          'completed), a snapshot another job restored from (`held-by-restore`), and a savepoint a running ' +
          'managed job restored from (`restored-by-running-job`). A discard the storage refused for good (a ' +
          'file outside the storage roots: `discard.retryable` false) is ended by a discard with `force`, ' +
          'recorded discarded with nothing reclaimed; the refused files stay.',
        requestParams: snapshotPath,
        requestBody: body(
          schemas.discard,
          {
            plain: { summary: 'Discard', value: {} },
            forced: { summary: 'Discard even the latest', value: { reason: 'corrupt state', force: true } },
          },
          false,
        ),
        responses: responses(
          { 202: json(snapshotStatusReply.extend({ changed: z.boolean() }), 'Discard requested.') },
          COMMAND,
        ),
      },
    },
  ];
}

function scheduleRoutes(): DescribedRoute[] {
  const path = '/api/v1/jobs/{jobId}/savepoint-schedule';
  return [
    {
      method: 'put',
      path,
      operation: {
        operationId: 'setSavepointSchedule',
        tags: ['schedules'],
        summary: 'Set the periodic savepoint schedule',
        requestParams: jobPath,
        requestBody: body(schemas.schedule, {
          every: {
            summary: 'Every six hours, keep 10',
            value: { every: 'PT6H', retention: { maxCount: 10, maxAge: 'P7D' } },
          },
          cron: {
            summary: 'At 02:00 Berlin time',
            value: {
              cron: '0 0 2 * * *',
              tz: 'Europe/Berlin',
              targetDirectory: 'file:///data/snapcat/nightly',
            },
          },
        }),
        responses: responses(
          { 200: json(S.ScheduleView.extend({ changed: z.boolean() }), 'The schedule.') },
          COMMAND,
        ),
      },
    },
    {
      method: 'get',
      path,
      operation: {
        operationId: 'getSavepointSchedule',
        tags: ['schedules'],
        summary: 'The periodic savepoint schedule',
        requestParams: jobPath,
        responses: responses(
          { 200: json(S.ScheduleView.extend({ lastSlotAt: z.iso.datetime().nullable() }), 'The schedule.') },
          READ,
        ),
      },
    },
    {
      method: 'delete',
      path,
      operation: {
        operationId: 'removeSavepointSchedule',
        tags: ['schedules'],
        summary: 'Remove the periodic savepoint schedule',
        requestParams: jobPath,
        responses: responses(
          { 200: json(z.object({ jobId: JobId, changed: z.boolean() }), 'Removed (or there was none).') },
          [400, 404, 409, 503],
        ),
      },
    },
  ];
}

function webhookRoutes(): DescribedRoute[] {
  return [...webhookSubscriptionRoutes(), ...webhookChangeRoutes(), ...webhookDeliveryRoutes()];
}

/** What the webhook routes share: paths, tag, the disabled note, the problems. */
function webhookRouteShared() {
  const base = '/api/v1/webhooks';
  const path = { path: webhookSchemas.path };
  const tags = ['webhooks'];
  const disabled =
    ' Without SNAPCAT_SECRET_KEY (outside development) every webhook route answers 503 saying so.';
  const problems: ProblemStatus[] = [400, 404, 503];
  return { base, path, tags, disabled, problems };
}

/** Subscriptions created, listed and read. */
function webhookSubscriptionRoutes(): DescribedRoute[] {
  const { base, path, tags, disabled, problems } = webhookRouteShared();
  return [
    {
      method: 'post',
      path: base,
      operation: {
        operationId: 'createWebhook',
        tags,
        summary: 'Subscribe a URL to events',
        description:
          'Answers the secret, once: keep it to verify the signatures (Standard Webhooks). One set of namespaces ' +
          `holds at most ${MAX_SUBSCRIPTIONS_PER_NAMESPACES} subscriptions: one more is a 409 (rule \`max-subscriptions\`).${disabled}`,
        requestBody: body(webhookSchemas.create, {
          all: { summary: 'Every event of every job', value: { url: 'https://hooks.example.com/snapcat' } },
          filtered: {
            summary: 'Completed and failed snapshots of one job',
            value: {
              url: 'https://hooks.example.com/snapcat',
              eventTypes: ['SnapshotCompleted', 'SnapshotFailed'],
              jobIds: [JOB],
              description: 'orders: snapshot outcomes',
            },
          },
        }),
        responses: responses(
          { 201: json(S.SubscriptionWithSecret, 'Subscribed.') },
          [400, 409, 413, 415, 503],
        ),
      },
    },
    {
      method: 'get',
      path: base,
      operation: {
        operationId: 'listWebhooks',
        tags,
        summary: 'The webhook subscriptions',
        responses: responses(
          { 200: json(z.object({ subscriptions: z.array(S.Subscription) }), 'Every subscription.') },
          [503],
        ),
      },
    },
    {
      method: 'get',
      path: `${base}/{subscriptionId}`,
      operation: {
        operationId: 'getWebhook',
        tags,
        summary: 'A webhook subscription',
        requestParams: path,
        responses: responses({ 200: json(S.Subscription, 'The subscription.') }, problems),
      },
    },
  ];
}

/** A subscription updated, deleted, or its secret rotated. */
function webhookChangeRoutes(): DescribedRoute[] {
  const { base, path, tags, problems } = webhookRouteShared();
  return [
    {
      method: 'patch',
      path: `${base}/{subscriptionId}`,
      operation: {
        operationId: 'updateWebhook',
        tags,
        summary: 'Change a webhook subscription',
        description: 'Names at least one field. `enabled: true` enables a subscription disabled by a 410.',
        requestParams: path,
        requestBody: body(webhookSchemas.update, {
          disable: { summary: 'Pause deliveries', value: { enabled: false } },
          retarget: {
            summary: 'Another URL, every event type',
            value: { url: 'https://hooks.example.com/snapcat/v2', eventTypes: [] },
          },
        }),
        responses: responses({ 200: json(S.Subscription, 'The subscription.') }, [...problems, 413, 415]),
      },
    },
    {
      method: 'delete',
      path: `${base}/{subscriptionId}`,
      operation: {
        operationId: 'deleteWebhook',
        tags,
        summary: 'Delete a webhook subscription',
        requestParams: path,
        responses: responses({ 204: { description: 'Deleted.' } }, problems),
      },
    },
    {
      method: 'post',
      path: `${base}/{subscriptionId}/rotate-secret`,
      operation: {
        operationId: 'rotateWebhookSecret',
        tags,
        summary: 'A new signing secret',
        description: 'The previous secret signs too until `previousSecretValidUntil`.',
        requestParams: path,
        responses: responses({ 200: json(S.SubscriptionWithSecret, 'The new secret.') }, problems),
      },
    },
  ];
}

/** A subscription's deliveries listed, one redelivered, a test sent. */
function webhookDeliveryRoutes(): DescribedRoute[] {
  const { base, path, tags, problems } = webhookRouteShared();
  return [
    {
      method: 'get',
      path: `${base}/{subscriptionId}/deliveries`,
      operation: {
        operationId: 'listWebhookDeliveries',
        tags,
        summary: "A subscription's deliveries, newest first",
        requestParams: { ...path, query: webhookSchemas.deliveries },
        responses: responses(
          { 200: json(z.object({ deliveries: z.array(S.Delivery) }), 'The delivery log.') },
          problems,
        ),
      },
    },
    {
      method: 'post',
      path: `${base}/{subscriptionId}/deliveries/{deliveryId}/redeliver`,
      operation: {
        operationId: 'redeliverWebhook',
        tags,
        summary: 'Send a delivery again',
        description:
          'The same webhook-id and body, with fresh attempts. 409 `delivery-pending` while the delivery is ' +
          'still being attempted (its attempts would run side by side).',
        requestParams: { path: webhookSchemas.deliveryPath },
        responses: responses({ 202: json(S.DeliveryReceipt, 'Queued.') }, [...problems, 409]),
      },
    },
    {
      method: 'post',
      path: `${base}/{subscriptionId}/test`,
      operation: {
        operationId: 'testWebhook',
        tags,
        summary: 'Send a WebhookTest message',
        requestParams: path,
        responses: responses({ 202: json(S.DeliveryReceipt, 'Queued.') }, problems),
      },
    },
  ];
}

function clusterRoutes(): DescribedRoute[] {
  return [...clusterReadRoutes(), ...clusterWriteRoutes()];
}

/** What the cluster routes share: paths, tag, the every-namespace note. */
function clusterRouteShared() {
  const base = '/api/v1/clusters';
  const path = { path: clusterSchemas.path };
  const tags = ['clusters'];
  const everyNamespace =
    ' Needs a token for every namespace (`*`): a cluster serves the jobs of any namespace.';
  return { base, path, tags, everyNamespace };
}

/** The clusters listed, and one read. */
function clusterReadRoutes(): DescribedRoute[] {
  const { base, path, tags, everyNamespace } = clusterRouteShared();
  return [
    {
      method: 'get',
      path: base,
      operation: {
        operationId: 'listClusters',
        tags,
        summary: 'The Flink clusters',
        description: `Every cluster, by name; headers by name only.${everyNamespace}`,
        responses: responses(
          { 200: json(z.object({ clusters: z.array(S.FlinkCluster) }), 'Every cluster.') },
          [503],
        ),
      },
    },
    {
      method: 'get',
      path: `${base}/{name}`,
      operation: {
        operationId: 'getCluster',
        tags,
        summary: 'A Flink cluster',
        description: `Its headers by name only.${everyNamespace}`,
        requestParams: path,
        responses: responses({ 200: json(S.FlinkCluster, 'The cluster.') }, [400, 404, 503]),
      },
    },
  ];
}

/** A cluster registered or changed, and deleted. */
function clusterWriteRoutes(): DescribedRoute[] {
  const { base, path, tags, everyNamespace } = clusterRouteShared();
  return [
    {
      method: 'put',
      path: `${base}/{name}`,
      operation: {
        operationId: 'putCluster',
        tags,
        summary: 'Register or replace a Flink cluster',
        description:
          'Creates the cluster (201) or replaces its whole definition (200; `changed: false` and nothing ' +
          'written when it is the same). Header values are stored sealed with SNAPCAT_SECRET_KEY and never ' +
          'shown again; without the key (outside development) a cluster with headers is refused with 503.' +
          everyNamespace,
        requestParams: path,
        requestBody: body(clusterSchemas.put, {
          plain: { summary: 'A cluster without credentials', value: { restUrl: 'http://localhost:8081' } },
          authorized: {
            summary: 'Behind a proxy that wants a bearer token',
            value: {
              restUrl: 'https://flink-prod.example.com:8081',
              headers: { Authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.example' },
            },
          },
        }),
        responses: responses(
          {
            200: json(S.FlinkCluster.extend({ changed: z.boolean() }), 'Replaced (or unchanged).'),
            201: json(S.FlinkCluster.extend({ changed: z.boolean() }), 'Registered.', {
              headers: z.object({
                Location: z
                  .string()
                  .meta({ description: 'The cluster.', example: '/api/v1/clusters/flink-prod' }),
              }),
            }),
          },
          [400, 413, 415, 503],
        ),
      },
    },
    {
      method: 'delete',
      path: `${base}/{name}`,
      operation: {
        operationId: 'deleteCluster',
        tags,
        summary: 'Remove a Flink cluster',
        description: everyNamespace.trim(),
        requestParams: path,
        responses: responses({ 204: { description: 'Removed.' } }, [400, 404, 503]),
      },
    },
  ];
}

function operationRoutes(): DescribedRoute[] {
  return [...probeRoutes(), ...diagnosticRoutes()];
}

/** What the operations routes share: their tag. */
function operationRouteShared() {
  const tags = ['operations'];
  return { tags };
}

/** Liveness and readiness. */
function probeRoutes(): DescribedRoute[] {
  const { tags } = operationRouteShared();
  return [
    {
      method: 'get',
      path: '/healthz',
      operation: {
        operationId: 'health',
        tags,
        summary: 'The process is up',
        responses: { 200: json(z.object({ status: z.literal('ok') }), 'Up.') },
      },
    },
    {
      method: 'get',
      path: '/readyz',
      operation: {
        operationId: 'ready',
        tags,
        summary: 'The event store (and Redis) answer',
        description:
          'Not ready (503) while the event store or Redis is unreachable; the problem says which, and ' +
          'that REST commands keep working without Redis. Not ready either while the event store refuses ' +
          "snapcat's credentials (a wrong password, or a user that may not read `$all`, which the projector, " +
          'the process manager and the webhook dispatcher need): the detail names the permission and the user.',
        responses: {
          200: json(
            z.object({
              status: z.literal('ready'),
              eventStore: z.literal('reachable'),
              redis: z.enum(['connected', 'not used']),
              projectionLagMs: z.unknown().meta({ description: "The read model's append-to-visible lag." }),
              readModel: z.enum(['complete', 'rebuilding', 'absent', 'none']).meta({
                description:
                  'Whether GraphQL queries and the job list answer: `complete`; `rebuilding` while a projector ' +
                  'catches up with the log (a first start, a rebuild after Redis lost it) and `absent` while ' +
                  'none has begun: they answer 503 / UNAVAILABLE meanwhile (REST commands keep working, so the ' +
                  'process stays ready); `none` in a process without a read model.',
              }),
              flinkClusters: z
                .array(
                  z.object({
                    name: z.string().optional().meta({
                      description: 'Only to a caller whose token may read the clusters (operator).',
                    }),
                    state: z.enum(['UNKNOWN', 'REACHABLE', 'UNREACHABLE']),
                    since: z.string().nullable(),
                  }),
                )
                .meta({
                  description:
                    'Each Flink cluster as the connector last found it (informative: a cluster down never makes ' +
                    'snapcat unready).',
                }),
            }),
            'Ready.',
          ),
          503: PROBLEMS[503],
        },
      },
    },
  ];
}

/** Metrics, this document, and the orphan report. */
function diagnosticRoutes(): DescribedRoute[] {
  const { tags } = operationRouteShared();
  return [
    {
      method: 'get',
      path: '/metrics',
      operation: {
        operationId: 'metrics',
        tags,
        summary: 'Prometheus metrics',
        responses: {
          200: {
            description: 'The Prometheus text exposition format.',
            content: { 'text/plain': { schema: z.string() } },
          },
        },
      },
    },
    {
      method: 'get',
      path: '/api/v1/openapi.json',
      operation: {
        operationId: 'openApiDocument',
        tags,
        summary: 'This document',
        responses: { 200: json(z.record(z.string(), z.unknown()), 'The OpenAPI 3.1 document.') },
      },
    },
    {
      method: 'get',
      path: '/api/v1/storage/orphans',
      operation: {
        operationId: 'getOrphanReport',
        tags: ['storage'],
        summary: 'The latest orphan report',
        description:
          'Files under the storage roots that no live snapshot references, as the retention sweep found ' +
          'them; 404 until a sweep has written one.',
        responses: responses({ 200: json(S.OrphanReport, 'The report.') }, [404]),
      },
    },
  ];
}

/** An error of a Flink-compatible route: Flink's ErrorResponseBody (decision 0017). */
const flinkError = (
  id: string,
  description: string,
  message: string,
  extra: Partial<ZodOpenApiResponseObject> = {},
) => ({
  id,
  description,
  content: { 'application/json': { schema: F.FlinkErrorResponseBody, example: { errors: [message] } } },
  ...extra,
});
const FLINK_ERRORS = {
  400: flinkError(
    'FlinkBadRequest',
    'A bad job id, checkpoint id or query parameter.',
    'path.jobId: must be a Flink JobID: 32 lowercase hex characters',
  ),
  404: flinkError(
    'FlinkNotFound',
    'The job is not registered (or outside the token’s namespaces), or has no such checkpoint.',
    `job ${JOB} is not registered`,
  ),
  500: flinkError('FlinkInternal', 'An unexpected error (logged).', 'an unexpected error occurred'),
  503: flinkError(
    'FlinkUnavailable',
    'The event store is unreachable; try again.',
    'event store unavailable',
    { headers: retryAfter },
  ),
};

function flinkRoutes(): DescribedRoute[] {
  const base = `${F.FLINK_BASE}/jobs/{jobId}/checkpoints`;
  const tags = ['flink'];
  const spec =
    "Flink's REST API (schema/flink/rest_v1_dispatcher.yml, operationId `%s`), for every job snapcat " +
    'catalogs; errors are Flink’s ErrorResponseBody `{"errors": [...]}` (decision 0017).';
  const answers = (
    schema: z.ZodType,
    description: string,
    extra: Partial<ZodOpenApiResponseObject> = {},
  ) => ({
    200: json(schema, description, extra),
    ...FLINK_ERRORS,
  });
  return [
    {
      method: 'get',
      path: base,
      operation: {
        operationId: 'flinkGetCheckpointingStatistics',
        tags,
        summary: "The job's checkpointing statistics, as Flink's JobManager answers them",
        description:
          `${spec.replace('%s', 'getCheckpointingStatistics')}\n\n` +
          'Counts and summaries over every snapshot the job recorded; the history is every snapshot, newest ' +
          'first, not Flink’s last 10: up to `limit` (default 10,000) below `before`; when older ones were left ' +
          'out, `Link: <…>; rel="next"` names the next page.',
        requestParams: { path: F.flinkRequestSchemas.jobPath, query: F.flinkRequestSchemas.history },
        responses: answers(F.FlinkCheckpointingStatistics, 'CheckpointingStatistics.', {
          headers: z.object({
            Link: z
              .string()
              .optional()
              .meta({
                description: 'The next page, when the history was cut.',
                example: `<${F.FLINK_BASE}/jobs/${JOB}/checkpoints?limit=10000&before=812>; rel="next"`,
              }),
          }),
        }),
      },
    },
    {
      method: 'get',
      path: `${base}/config`,
      operation: {
        operationId: 'flinkGetCheckpointConfig',
        tags,
        summary: "The job's checkpointing configuration, as Flink's JobManager answers it",
        description: spec.replace('%s', 'getCheckpointConfig'),
        requestParams: { path: F.flinkRequestSchemas.jobPath },
        responses: answers(F.FlinkCheckpointConfigInfo, 'CheckpointConfigInfo.'),
      },
    },
    {
      method: 'get',
      path: `${base}/details/{checkpointId}`,
      operation: {
        operationId: 'flinkGetCheckpointStatisticDetails',
        tags,
        summary: 'One snapshot, as Flink’s JobManager answers it',
        description: spec.replace('%s', 'getCheckpointStatisticDetails'),
        requestParams: { path: F.flinkRequestSchemas.checkpointPath },
        responses: answers(F.FlinkCheckpointStatistics, 'CheckpointStatistics.'),
      },
    },
  ];
}

/** Every route the REST API serves, described. */
export function describedRoutes(): DescribedRoute[] {
  return [
    ...operationRoutes(),
    ...jobRoutes(),
    ...snapshotRoutes(),
    ...scheduleRoutes(),
    ...webhookRoutes(),
    ...flinkRoutes(),
    ...clusterRoutes(),
  ];
}

const INFO: ZodOpenApiObject['info'] = {
  title: 'snapcat REST API',
  version,
  description: [
    'An event-sourced catalog of Flink checkpoints and savepoints (FLIP-10).',
    '',
    'Commands answer once their events are durable in the event store; reads of one job ' +
      '(GET /api/v1/jobs/{jobId} and below) come from the event store too. GET /api/v1/jobs lists from ' +
      'the read model in Redis, eventually consistent with the commands.',
    '',
    'Bodies are JSON and unknown fields, like unknown query parameters, are refused. Every error is an ' +
      'RFC 9457 problem (application/problem+json) whose `errors` name each field and rule broken.',
    '',
    "Under /api/flink/v1, Flink's REST API's checkpoint reads answer in Flink's shapes, and their own errors " +
      'in Flink’s ErrorResponseBody (decision 0017).',
    '',
    'The GraphQL read model is served at /graphql (schema/catalog.graphql), and is not described here.',
  ].join('\n'),
  license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
};

let cached: ReturnType<typeof createDocument> | undefined;

/** The OpenAPI 3.1 document (built once). */
export function openApiDocument(): ReturnType<typeof createDocument> {
  if (cached) return cached;
  const paths: ZodOpenApiPathsObject = {};
  for (const { method, path, operation } of describedRoutes()) {
    paths[path] = { ...paths[path], [method]: withAccess(method, path, operation) };
  }
  cached = createDocument(
    {
      openapi: '3.1.0',
      info: INFO,
      tags: [
        { name: 'jobs', description: 'Registering, configuring and listing jobs' },
        {
          name: 'snapshots',
          description: 'Checkpoints and savepoints: triggers, acknowledgements, discards',
        },
        { name: 'schedules', description: 'Periodic savepoints' },
        { name: 'storage', description: 'The storage roots' },
        { name: 'webhooks', description: 'Webhook subscriptions and their deliveries' },
        {
          name: 'flink',
          description:
            "Flink's REST API's checkpoint reads, in Flink's shapes, for every job (decision 0017)",
        },
        { name: 'clusters', description: 'The Flink clusters snapcat may talk to' },
        { name: 'operations', description: 'Health, readiness, metrics and this document' },
      ],
      paths,
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'A token of SNAPCAT_TOKENS (`snapcat token create` makes one). Without configured tokens ' +
              'authentication is off (and snapcat listens on loopback only).',
          },
        },
      },
    },
    {
      // `format: date-time` says it: the long pattern zod adds to z.iso.datetime() only obscures it.
      override: ({ jsonSchema }) => {
        if (jsonSchema.format === 'date-time') delete jsonSchema.pattern;
      },
    },
  );
  return cached;
}

/**
 * An operation with what access.ts says about it: the scope it needs (`x-required-scope`), the bearer scheme
 * and its 401/403 unless public, and 429 unless a probe.
 */
function withAccess(
  method: Method,
  path: string,
  operation: ZodOpenApiOperationObject,
): ZodOpenApiOperationObject {
  const rule = (REST_RULES as Record<string, Rule>)[`${method.toUpperCase()} ${path}`] ?? 'admin';
  const responses = { ...operation.responses };
  if (rule !== 'public') Object.assign(responses, { 401: PROBLEMS[401], 403: PROBLEMS[403] });
  if (path !== '/healthz' && path !== '/readyz') Object.assign(responses, { 429: PROBLEMS[429] });
  return {
    ...operation,
    ...(rule === 'public' ? { security: [] } : { security: [{ bearer: [] }], 'x-required-scope': rule }),
    responses,
  };
}

/** The document as schema/openapi.json holds it. */
export const openApiDocumentText = (): string => `${JSON.stringify(openApiDocument(), null, 2)}\n`;
