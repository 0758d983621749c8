import express, { type ErrorRequestHandler, type Request } from 'express';
import { z } from 'zod';
import {
  CommandRejected,
  FLINK_HISTORY_DEFAULT,
  FLINK_HISTORY_MAX,
  FormatType,
  JobId,
  SnapshotIdParam,
  flinkCheckpoint,
  flinkCheckpointConfig,
  flinkCheckpointingStatistics,
  type JobState,
} from '@snapcat/domain';
import { StoreUnavailableError } from '@snapcat/event-store';
import { ConcurrencyExhaustedError, JobDeletedError } from '@snapcat/application';
import { isLimited, principalOf } from './access';
import { Problem, deletedJobProblem, malformedPathProblem, validationProblem } from './problem';
import { QueryInteger } from './requests';

/*
 * The Flink-compatible read API (issue 19, item 5; docs/decisions/0017-flink-compatible-api.md): for every
 * job, managed or not, what Flink's JobManager answers at
 *   GET /jobs/{jobid}/checkpoints                           (getCheckpointingStatistics)
 *   GET /jobs/{jobid}/checkpoints/config                    (getCheckpointConfig)
 *   GET /jobs/{jobid}/checkpoints/details/{checkpointid}    (getCheckpointStatisticDetails)
 * under /api/flink/v1, in the shapes and field names of Flink's description (schema/flink/rest_v1_dispatcher.yml),
 * built by libs/domain flink-views.ts. The history is the job's whole one, newest first, not Flink's last 10;
 * `limit` (default 10,000) and `before` page it, and a `Link: <…>; rel="next"` header says when it was cut.
 *
 * The routes' own errors (a bad path or query 400, an unknown job or checkpoint 404, the store 503, 500) are
 * Flink's ErrorResponseBody, `{"errors": ["…"]}` as application/json, which Flink's RestClient and scripts
 * written for Flink read; refusals of the access layer before the route (401, 403, 429) stay snapcat's
 * problems (decision 0017).
 */

export const FLINK_BASE = '/api/flink/v1';

const Long = z.number().int();
const Count = z.number().int().nonnegative();

/** Flink's ErrorResponseBody. */
export const FlinkErrorResponseBody = z
  .strictObject({ errors: z.array(z.string()) })
  .meta({ id: 'FlinkErrorResponseBody', description: "Flink's ErrorResponseBody: what went wrong." });

const checkpointFields = {
  id: Long.meta({ description: "The snapshot's id (snapcat's and Flink's: one counter)." }),
  is_savepoint: z.boolean(),
  savepointFormat: FormatType.optional().meta({
    description: 'A savepoint’s format; absent for a checkpoint.',
  }),
  trigger_timestamp: Long.meta({ description: 'Epoch milliseconds.' }),
  latest_ack_timestamp: Long.meta({
    description:
      'The completion (the last acknowledgement); -1 while not completed (snapcat keeps no ack times).',
  }),
  checkpointed_size: Count,
  state_size: Count,
  end_to_end_duration: Count.meta({
    description: 'Milliseconds from the trigger to the completion or failure.',
  }),
  alignment_buffered: Count.meta({ description: 'Always 0.' }),
  processed_data: Count.meta({ description: 'Always 0: not reported to snapcat.' }),
  persisted_data: Count.meta({ description: 'Always 0: not reported to snapcat.' }),
  num_subtasks: Count,
  num_acknowledged_subtasks: Count,
  checkpoint_type: z.enum(['CHECKPOINT', 'UNALIGNED_CHECKPOINT', 'SAVEPOINT', 'SYNC_SAVEPOINT']),
  tasks: z
    .strictObject({})
    .meta({ description: 'Always empty: per-vertex figures are in the job’s events.' }),
};

export const FlinkCompletedCheckpoint = z
  .strictObject({
    className: z.literal('completed'),
    ...checkpointFields,
    status: z.literal('COMPLETED'),
    external_path: z.string(),
    discarded: z
      .boolean()
      .meta({ description: 'Once snapcat was asked to discard it (DISCARDING, DISCARDED).' }),
  })
  .meta({ id: 'FlinkCompletedCheckpointStatistics' });
export const FlinkFailedCheckpoint = z
  .strictObject({
    className: z.literal('failed'),
    ...checkpointFields,
    status: z.literal('FAILED'),
    failure_timestamp: Long,
    failure_message: z.string(),
  })
  .meta({ id: 'FlinkFailedCheckpointStatistics' });
export const FlinkPendingCheckpoint = z
  .strictObject({
    className: z.literal('in_progress'),
    ...checkpointFields,
    status: z.literal('IN_PROGRESS'),
  })
  .meta({ id: 'FlinkPendingCheckpointStatistics' });

export const FlinkCheckpointStatistics = z
  .discriminatedUnion('className', [FlinkCompletedCheckpoint, FlinkFailedCheckpoint, FlinkPendingCheckpoint])
  .meta({
    id: 'FlinkCheckpointStatistics',
    description:
      "Flink's CheckpointStatistics (schema/flink/rest_v1_dispatcher.yml), told apart by `className`.",
  });

const StatsSummaryDto = z
  .strictObject({
    min: Long,
    max: Long,
    avg: Long,
    p50: z.number(),
    p90: z.number(),
    p95: z.number(),
    p99: z.number(),
    p999: z.number(),
  })
  .meta({
    id: 'FlinkStatsSummaryDto',
    description:
      'Over every completed snapshot; quantiles as Commons Math’s Percentile (LEGACY); zeros with none.',
  });

export const FlinkCheckpointingStatistics = z
  .strictObject({
    counts: z.strictObject({
      restored: Count,
      total: Count,
      in_progress: Count,
      completed: Count,
      failed: Count,
    }),
    summary: z.strictObject({
      checkpointed_size: StatsSummaryDto,
      state_size: StatsSummaryDto,
      end_to_end_duration: StatsSummaryDto,
      alignment_buffered: StatsSummaryDto,
      processed_data: StatsSummaryDto,
      persisted_data: StatsSummaryDto,
    }),
    latest: z.strictObject({
      completed: FlinkCompletedCheckpoint.optional(),
      savepoint: FlinkCompletedCheckpoint.optional(),
      failed: FlinkFailedCheckpoint.optional(),
      restored: z
        .strictObject({
          id: Long.meta({ description: '-1 when a restore from an external path did not name it.' }),
          restore_timestamp: Long,
          is_savepoint: z.boolean(),
          external_path: z.string(),
        })
        .optional(),
    }),
    history: z.array(FlinkCheckpointStatistics).meta({
      description: 'Every snapshot, newest first (not the last 10), up to `limit`, below `before`.',
    }),
  })
  .meta({ id: 'FlinkCheckpointingStatistics', description: "Flink's CheckpointingStatistics." });

export const FlinkCheckpointConfigInfo = z
  .strictObject({
    mode: z.enum(['AT_LEAST_ONCE', 'EXACTLY_ONCE']),
    interval: Long.meta({
      description: '-1: snapcat does not know the interval Flink triggers checkpoints at.',
    }),
    timeout: Count,
    min_pause: Count,
    max_concurrent: Count,
    externalization: z.strictObject({ enabled: z.boolean(), delete_on_cancellation: z.boolean() }),
    checkpoint_storage: z.string(),
    unaligned_checkpoints: z.boolean(),
    tolerable_failed_checkpoints: Count,
    aligned_checkpoint_timeout: Count,
    checkpoints_after_tasks_finish: z.boolean(),
    state_changelog_enabled: z.boolean(),
  })
  .meta({ id: 'FlinkCheckpointConfigInfo', description: "Flink's CheckpointConfigInfo." });

/** Request shapes: Flink names the parameters jobid and checkpointid; snapcat's routes jobId, checkpointId. */
export const flinkRequestSchemas = {
  jobPath: z.strictObject({ jobId: JobId }),
  checkpointPath: z.strictObject({ jobId: JobId, checkpointId: SnapshotIdParam }),
  history: z.strictObject({
    limit: QueryInteger(1, FLINK_HISTORY_MAX)
      .default(FLINK_HISTORY_DEFAULT)
      .meta({
        description: `At most this many history entries (not in Flink's API; default ${FLINK_HISTORY_DEFAULT}).`,
      }),
    before: SnapshotIdParam.optional().meta({
      description:
        'Only snapshots with a smaller id: the next page (not in Flink’s API; the `Link` header names it).',
    }),
  }),
};

function parseFlink<T extends z.ZodType>(schema: T, input: unknown, location: 'path' | 'query'): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw validationProblem(result.error, location, input);
  return result.data;
}

export interface FlinkCompatDeps {
  /** The job's state; throws a 404 Problem when it is not registered or outside the caller's namespaces. */
  registeredJob: (req: Request, jobId: string) => Promise<JobState>;
  log: (msg: string, fields?: object) => void;
}

/** The router mounted at FLINK_BASE. */
export function flinkCompatRoutes({ registeredJob, log }: FlinkCompatDeps): express.Router {
  const router = express.Router();

  router.get('/jobs/:jobId/checkpoints', async (req, res) => {
    const { jobId } = parseFlink(flinkRequestSchemas.jobPath, req.params, 'path');
    const { limit, before } = parseFlink(flinkRequestSchemas.history, req.query, 'query');
    const state = await registeredJob(req, jobId);
    const { statistics, more } = flinkCheckpointingStatistics(state, { limit, before });
    const last = statistics.history[statistics.history.length - 1];
    if (more && last) {
      res.setHeader(
        'Link',
        `<${FLINK_BASE}/jobs/${jobId}/checkpoints?limit=${limit}&before=${last.id}>; rel="next"`,
      );
    }
    res.json(statistics);
  });

  router.get('/jobs/:jobId/checkpoints/config', async (req, res) => {
    const { jobId } = parseFlink(flinkRequestSchemas.jobPath, req.params, 'path');
    res.json(flinkCheckpointConfig(await registeredJob(req, jobId)));
  });

  router.get('/jobs/:jobId/checkpoints/details/:checkpointId', async (req, res) => {
    const { jobId, checkpointId } = parseFlink(flinkRequestSchemas.checkpointPath, req.params, 'path');
    const snapshot = (await registeredJob(req, jobId)).snapshots.get(checkpointId);
    if (!snapshot) {
      // CheckpointStatisticDetailsHandler's answer for an id it does not have.
      throw new Problem(
        404,
        'not-found',
        'Not found',
        `Could not find checkpointing statistics for checkpoint ${checkpointId}.`,
      );
    }
    res.json(flinkCheckpoint(snapshot));
  });

  router.use(flinkErrors(log));
  return router;
}

/** Every error of the routes above as Flink's ErrorResponseBody, with snapcat's status for it. */
function flinkErrors(log: FlinkCompatDeps['log']): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const send = (status: number, message: string) =>
      res
        .status(status)
        .type('application/json')
        .json({ errors: [message] });
    const problem = error instanceof Problem ? error : malformedPathProblem(error);
    if (problem) return send(problem.status, problem.detail);
    if (error instanceof CommandRejected) return send(error.code === 'NOT_FOUND' ? 404 : 400, error.message);
    if (error instanceof JobDeletedError) {
      const deleted = deletedJobProblem(error, isLimited(principalOf(req)), true);
      return send(deleted.status, deleted.detail);
    }
    if (error instanceof StoreUnavailableError || error instanceof ConcurrencyExhaustedError) {
      res.setHeader('Retry-After', '1');
      return send(503, (error as Error).message);
    }
    log('request failed', { error: error instanceof Error ? error.stack : String(error) });
    return send(500, 'an unexpected error occurred');
  };
}
