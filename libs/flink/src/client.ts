/**
 * A client of one Flink cluster's JobManager REST API (schema/flink/rest_v1_dispatcher.yml, Flink 1.19).
 * Answers are parsed with zod (only the fields snapcat uses; extra fields are fine); an answer that does not
 * parse is a FlinkError of kind `protocol`.
 *
 * Resilience: every request has a timeout (AbortSignal.timeout). Connection errors, timeouts and 5xx answers
 * are retried up to `retries` times with exponential backoff and jitter, POSTs that trigger savepoints too
 * (they carry a trigger id: Flink answers a repeated trigger id with the operation it already started, so a
 * retry cannot take a second savepoint). A savepoint disposal has no trigger id in Flink's API (and Flink's
 * strict JSON mapper refuses one), so it is retried only when it surely did not reach Flink (connection
 * refused, 503). 4xx answers are not retried. The cluster's Circuit (shared by all its clients) fails calls
 * fast while the cluster is down.
 */
import { z } from 'zod';
import { JOB_STATUSES, NOT_EXTERNALLY_ADDRESSABLE } from '@snapcat/domain/src/enum-values';
import { savepointJobPrefixOf } from '@snapcat/domain/src/shared-state';
import { Circuit } from './circuit';
import { FlinkError, type FlinkErrorKind } from './errors';
import { serializedThrowableHeadline } from './serialized-throwable';

/** Flink's JobStatus values, as the domain lists them (one list). */
export const FLINK_JOB_STATUSES = JOB_STATUSES;
export type FlinkJobStatus = (typeof FLINK_JOB_STATUSES)[number];

export interface FlinkCluster {
  name: string;
  restUrl: string;
  /** Sent with every request (e.g. Authorization); never logged, never in an error message. */
  headers?: Record<string, string>;
}

export interface FlinkClientOptions {
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
  circuit?: Circuit;
  fetch?: typeof fetch;
}

export interface FlinkJob {
  jobId: string;
  name: string;
  state: FlinkJobStatus;
  /**
   * When the job or one of its tasks last changed state, by the JobManager's clock (`last-modification`:
   * `JobDetails.createDetailsForJob` takes the latest task state timestamp, or the end). Absent when not said.
   */
  lastModification?: number;
}

export interface FlinkCheckpoint {
  id: number;
  status: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';
  isSavepoint: boolean;
  savepointFormat: string | null;
  checkpointType: string;
  triggerTimestamp: number;
  latestAckTimestamp: number;
  stateSize: number;
  checkpointedSize: number;
  externalPath: string | null;
  /** false when Flink said `<checkpoint-not-externally-addressable>`; a path left out says nothing of it. */
  externallyAddressable: boolean;
  discarded: boolean;
  numSubtasks: number;
  numAcknowledgedSubtasks: number;
  failureTimestamp: number | null;
  failureMessage: string | null;
}

export interface FlinkRestoredCheckpoint {
  id: number;
  restoreTimestamp: number;
  isSavepoint: boolean;
  externalPath: string | null;
}

export interface FlinkCheckpoints {
  counts: { restored: number; total: number; inProgress: number; completed: number; failed: number };
  history: FlinkCheckpoint[];
  /** History entries left out because they could not be read (no id or status, say): the rest still counts. */
  unreadable: number;
  latest: {
    completed: FlinkCheckpoint | null;
    savepoint: FlinkCheckpoint | null;
    failed: FlinkCheckpoint | null;
    restored: FlinkRestoredCheckpoint | null;
  };
}

/** Null where the answer left a field out (the spec requires none of them). */
export interface FlinkCheckpointConfig {
  mode: 'EXACTLY_ONCE' | 'AT_LEAST_ONCE' | null;
  /** null: periodic checkpoints are off (Flink reports Long.MAX_VALUE), or not said. */
  intervalMs: number | null;
  timeoutMs: number | null;
  minPauseMs: number | null;
  maxConcurrent: number | null;
  /** What Flink does with retained checkpoints: null when not said in whole. */
  externalization: { enabled: boolean; deleteOnCancellation: boolean } | null;
  stateBackend: string | null;
  checkpointStorage: string | null;
  tolerableFailedCheckpoints: number | null;
}

export type SavepointFormatType = 'CANONICAL' | 'NATIVE';

/**
 * A savepoint operation's state. COMPLETED's `location` is null when the answer leaves it out (the spec's
 * SavepointInfo requires nothing): Flink's checkpoint history names it. `stopFailure`: a stop-with-savepoint
 * whose savepoint was taken, but whose job failed while stopping (it fails over and keeps running).
 */
export type FlinkOperationStatus =
  | { status: 'IN_PROGRESS' }
  | { status: 'COMPLETED'; location: string | null; stopFailure?: string }
  | { status: 'FAILED'; cause: string };

export type FlinkDisposalStatus =
  { status: 'IN_PROGRESS' } | { status: 'COMPLETED' } | { status: 'FAILED'; cause: string };

// ---- Flink's answers (only what is used) -------------------------------------------------------------------
// Flink itself writes every field below; its published spec requires almost none of them (CheckpointStatistics
// only `className`). A field nothing decides on has a default, so that a server that leaves it out is read.

/** Long.MAX_VALUE, as JSON numbers reach JavaScript. */
const PERIODIC_CHECKPOINTS_OFF = 2 ** 62;

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? null);

/**
 * A list read entry by entry: an entry that does not parse is left out (and counted) instead of failing the whole
 * answer. One checkpoint a server describes oddly, or one job of another team in a status this client does not
 * know yet, must not stop the mirror of every other.
 */
const eachReadable = <T extends z.ZodType>(entry: T) =>
  z
    .array(z.unknown())
    .nullish()
    .transform((entries) => {
      const items: z.output<T>[] = [];
      for (const raw of entries ?? []) {
        const parsed = entry.safeParse(raw);
        if (parsed.success) items.push(parsed.data);
      }
      return { items, unreadable: (entries?.length ?? 0) - items.length };
    });

/** The spec's discriminator of CheckpointStatistics (its one required field), for an entry without `status`. */
const STATUS_OF_CLASS: Record<string, string> = {
  completed: 'COMPLETED',
  failed: 'FAILED',
  in_progress: 'IN_PROGRESS',
};
const SAVEPOINT_TYPES = new Set(['SAVEPOINT', 'SYNC_SAVEPOINT']);

/** What the spec lets a server leave out and the entry still tells: its status, whether it is a savepoint. */
const withStatusAndKind = (raw: unknown): unknown => {
  if (raw === null || typeof raw !== 'object') return raw;
  const entry = raw as Record<string, unknown>;
  const status = entry.status ?? STATUS_OF_CLASS[String(entry.className)];
  const isSavepoint =
    entry.is_savepoint ??
    (typeof entry.checkpoint_type === 'string'
      ? SAVEPOINT_TYPES.has(entry.checkpoint_type)
      : // Neither said: a savepoint's directory name tells it, as for what a job restored from.
        typeof entry.external_path === 'string' && savepointJobPrefixOf(entry.external_path) !== undefined);
  return { ...entry, status, is_savepoint: isSavepoint };
};

const checkpointSchema = z.preprocess(
  withStatusAndKind,
  z
    .object({
      id: z.number().int(),
      status: z.enum(['IN_PROGRESS', 'COMPLETED', 'FAILED']),
      is_savepoint: z.boolean().default(false),
      savepointFormat: nullable(z.string()),
      checkpoint_type: z.string().default('CHECKPOINT'),
      // The spec requires none of it: unknown is 0 (the mirror then times a pending one from its own clock).
      trigger_timestamp: z.number().default(0),
      latest_ack_timestamp: z.number().default(-1),
      state_size: z.number().default(0),
      checkpointed_size: z.number().optional(),
      external_path: nullable(z.string()),
      discarded: z.boolean().optional(),
      num_subtasks: z.number().int().default(0),
      num_acknowledged_subtasks: z.number().int().default(0),
      failure_timestamp: nullable(z.number()),
      failure_message: nullable(z.string()),
    })
    .transform((c): FlinkCheckpoint => ({
      id: c.id,
      status: c.status,
      isSavepoint: c.is_savepoint,
      savepointFormat: c.savepointFormat,
      checkpointType: c.checkpoint_type,
      triggerTimestamp: c.trigger_timestamp,
      latestAckTimestamp: c.latest_ack_timestamp,
      stateSize: c.state_size,
      checkpointedSize: c.checkpointed_size ?? c.state_size,
      externalPath: c.external_path === NOT_EXTERNALLY_ADDRESSABLE ? null : c.external_path,
      externallyAddressable: c.external_path !== NOT_EXTERNALLY_ADDRESSABLE,
      discarded: c.discarded ?? false,
      numSubtasks: c.num_subtasks,
      numAcknowledgedSubtasks: c.num_acknowledged_subtasks,
      failureTimestamp: c.failure_timestamp,
      failureMessage: c.failure_message,
    })),
);

const restoredSchema = z
  .object({
    id: z.number().int(),
    restore_timestamp: z.number(),
    // The spec requires none of these; without the flag, a savepoint's directory name tells it.
    is_savepoint: z.boolean().optional(),
    external_path: nullable(z.string()),
  })
  .transform((r): FlinkRestoredCheckpoint => ({
    id: r.id,
    restoreTimestamp: r.restore_timestamp,
    isSavepoint: r.is_savepoint ?? savepointJobPrefixOf(r.external_path ?? '') !== undefined,
    externalPath: r.external_path === NOT_EXTERNALLY_ADDRESSABLE ? null : r.external_path,
  }));

const jobSchema = z
  .object({
    jid: z.string(),
    name: z.string().default(''),
    state: z.enum(FLINK_JOB_STATUSES),
    'last-modification': z.number().int().positive().optional().catch(undefined),
  })
  .transform((j): FlinkJob => ({
    jobId: j.jid,
    name: j.name,
    state: j.state,
    ...(j['last-modification'] !== undefined ? { lastModification: j['last-modification'] } : {}),
  }));

// Every job of the cluster, not only snapcat's: one in a state this client cannot read is left out.
const jobsOverviewSchema = z.object({ jobs: eachReadable(jobSchema) }).transform((o) => o.jobs.items);

const checkpointsSchema = z
  .object({
    counts: z
      .object({
        restored: z.number().int().default(0),
        total: z.number().int().default(0),
        in_progress: z.number().int().default(0),
        completed: z.number().int().default(0),
        failed: z.number().int().default(0),
      })
      .default({ restored: 0, total: 0, in_progress: 0, completed: 0, failed: 0 }),
    history: eachReadable(checkpointSchema),
    latest: z
      .object({
        // What cannot be read is not known: as when Flink has none to report.
        completed: nullable(checkpointSchema).catch(null),
        savepoint: nullable(checkpointSchema).catch(null),
        failed: nullable(checkpointSchema).catch(null),
        restored: nullable(restoredSchema).catch(null),
      })
      .nullish(),
  })
  .transform((s): FlinkCheckpoints => ({
    counts: {
      restored: s.counts.restored,
      total: s.counts.total,
      inProgress: s.counts.in_progress,
      completed: s.counts.completed,
      failed: s.counts.failed,
    },
    history: s.history.items,
    unreadable: s.history.unreadable,
    latest: {
      completed: s.latest?.completed ?? null,
      savepoint: s.latest?.savepoint ?? null,
      failed: s.latest?.failed ?? null,
      restored: s.latest?.restored ?? null,
    },
  }));

const configSchema = z
  .object({
    // Flink's own answers have written the mode in lower case (its @JsonValue), the spec in upper case.
    // The spec requires none of these; what a server leaves out is not known (null), never guessed.
    mode: nullable(
      z
        .string()
        .transform((m) => m.toUpperCase())
        .pipe(z.enum(['EXACTLY_ONCE', 'AT_LEAST_ONCE'])),
    ),
    interval: nullable(z.number()),
    timeout: nullable(z.number()),
    min_pause: nullable(z.number()),
    max_concurrent: nullable(z.number().int()),
    externalization: nullable(
      z.object({ enabled: nullable(z.boolean()), delete_on_cancellation: nullable(z.boolean()) }),
    ),
    state_backend: nullable(z.string()),
    checkpoint_storage: nullable(z.string()),
    tolerable_failed_checkpoints: nullable(z.number().int()),
  })
  .transform((c): FlinkCheckpointConfig => ({
    mode: c.mode,
    intervalMs: c.interval === null || c.interval >= PERIODIC_CHECKPOINTS_OFF ? null : c.interval,
    timeoutMs: c.timeout,
    minPauseMs: c.min_pause,
    maxConcurrent: c.max_concurrent,
    externalization:
      c.externalization?.enabled != null && c.externalization.delete_on_cancellation != null
        ? {
            enabled: c.externalization.enabled,
            deleteOnCancellation: c.externalization.delete_on_cancellation,
          }
        : null,
    stateBackend: c.state_backend,
    checkpointStorage: c.checkpoint_storage,
    tolerableFailedCheckpoints: c.tolerable_failed_checkpoints,
  }));

/** Flink's TriggerId: 32 hex characters. */
const requestId = z.string().regex(/^[0-9a-f]{32}$/);

const triggerSchema = z
  .object({ 'request-id': requestId })
  .transform((t) => ({ triggerId: t['request-id'] }));

/**
 * A trigger's answer where the request named its trigger id: the spec does not require `request-id` in the
 * answer, and without it the operation is followed by the id the request gave (the savepoint is taken
 * already; failing here would lose it).
 */
const triggerAnswering = (sent: string) =>
  z.object({ 'request-id': requestId.optional() }).transform((t) => ({ triggerId: t['request-id'] ?? sent }));

const failureCauseSchema = z.object({
  class: nullable(z.string()),
  'stack-trace': nullable(z.string()),
  'serialized-throwable': nullable(z.string()),
});

const operationSchema = z.object({
  status: z.object({ id: z.enum(['IN_PROGRESS', 'COMPLETED']) }),
  operation: z
    .object({
      location: nullable(z.string()),
      'failure-cause': nullable(failureCauseSchema),
      // The spec's `operation` may also be a CheckpointInfo, whose failure is `failureCause`.
      failureCause: nullable(failureCauseSchema),
    })
    .nullish(),
});

type OperationAnswer = z.infer<typeof operationSchema>;

/** An operation's failure, in either form the spec's `operation` allows. */
const failureOf = (answer: OperationAnswer) =>
  answer.operation?.['failure-cause'] ?? answer.operation?.failureCause;

/**
 * The failure of an asynchronous operation, as one line: the first line of Java's stack trace, from the
 * serialized throwable when the answer carries only that (the published description's one property).
 */
function causeOf(answer: OperationAnswer): string | undefined {
  const cause = failureOf(answer);
  if (!cause) return undefined;
  const firstLine = cause['stack-trace']?.split('\n', 1)[0]?.trim();
  const serialized = cause['serialized-throwable'];
  return (
    firstLine ||
    cause.class ||
    (serialized ? serializedThrowableHeadline(serialized) : undefined) ||
    'unknown failure'
  );
}

/**
 * Flink's StopWithSavepointStoppingException (flink-runtime, scheduler/stopwithsavepoint): the savepoint of a
 * stop was created and is consistent, but the job failed while stopping; the operation fails with it, and its
 * message is the one place that names the savepoint's path (`getSavepointPath()` does not reach REST).
 */
const FAILED_STOP =
  /StopWithSavepointStoppingException: A savepoint has been created at: (.+?), but the corresponding job ([0-9a-f]{32}) failed during stopping/;

/** The savepoint a stop-with-savepoint of this job took before the job failed while stopping, or undefined. */
function savepointOfFailedStop(answer: OperationAnswer, jobId: string): string | undefined {
  const cause = failureOf(answer);
  if (!cause) return undefined;
  const serialized = cause['serialized-throwable'];
  const text = [
    cause['stack-trace'],
    cause.class,
    serialized ? serializedThrowableHeadline(serialized) : undefined,
  ].join('\n');
  const match = FAILED_STOP.exec(text);
  return match?.[2] === jobId ? match[1] : undefined;
}

// ---- the client ---------------------------------------------------------------------------------------------

const ID = /^[0-9a-f]{32}$/;

/**
 * JSON.parse's reviver: a property whose value is null is left out. Flink's Jackson writes null for what it
 * does not know (`latest.completed`), and another server may write it for any field the spec does not
 * require; nothing here tells null from absent, so every default and optional field reads both alike.
 */
const withoutNulls = (key: string, value: unknown) => (value === null && key !== '' ? undefined : value);
/**
 * The answers that say the cluster itself is down (a proxy without it, a JobManager without a leader). A 500 is
 * one handler's failure for one request (Flink answers checkpoint statistics it cannot build with one): retried,
 * but the cluster did answer, so it never opens the circuit every job of the cluster shares.
 */
const CLUSTER_DOWN = new Set([502, 503, 504]);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

interface Call<T> {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  schema: z.ZodType<T>;
  /** Whether an attempt whose outcome is unknown (timeout, 5xx, reset) may be repeated. */
  repeatable: boolean;
}

export class FlinkRestClient {
  readonly circuit: Circuit;
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly fetch: typeof fetch;

  constructor(
    readonly cluster: FlinkCluster,
    options: FlinkClientOptions = {},
  ) {
    const url = new URL(cluster.restUrl);
    if (url.username || url.password) {
      throw new TypeError(`Flink cluster "${cluster.name}": put credentials in headers, not in the REST URL`);
    }
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = options.retries ?? 3;
    this.backoffMs = options.backoffMs ?? 200;
    this.circuit = options.circuit ?? new Circuit();
    this.fetch = options.fetch ?? fetch;
  }

  /** Every job of the cluster with its status, in one request (`GET /jobs/overview`). */
  async jobsOverview(): Promise<FlinkJob[]> {
    return this.call({ method: 'GET', path: '/jobs/overview', schema: jobsOverviewSchema, repeatable: true });
  }

  async job(jobId: string): Promise<FlinkJob> {
    return this.call({ method: 'GET', path: `/jobs/${id(jobId)}`, schema: jobSchema, repeatable: true });
  }

  async checkpoints(jobId: string): Promise<FlinkCheckpoints> {
    return this.call({
      method: 'GET',
      path: `/jobs/${id(jobId)}/checkpoints`,
      schema: checkpointsSchema,
      repeatable: true,
    });
  }

  async checkpointDetails(jobId: string, checkpointId: number): Promise<FlinkCheckpoint> {
    if (!Number.isSafeInteger(checkpointId) || checkpointId < 0) {
      throw new TypeError(`not a checkpoint id: ${checkpointId}`);
    }
    return this.call({
      method: 'GET',
      path: `/jobs/${id(jobId)}/checkpoints/details/${checkpointId}`,
      schema: checkpointSchema,
      repeatable: true,
    });
  }

  async checkpointConfig(jobId: string): Promise<FlinkCheckpointConfig> {
    return this.call({
      method: 'GET',
      path: `/jobs/${id(jobId)}/checkpoints/config`,
      schema: configSchema,
      repeatable: true,
    });
  }

  /** Takes a savepoint (the job keeps running). The trigger id makes retries safe: Flink dedupes by it. */
  async triggerSavepoint(
    jobId: string,
    request: { targetDirectory: string; formatType: SavepointFormatType; triggerId: string },
  ): Promise<{ triggerId: string }> {
    return this.call({
      method: 'POST',
      path: `/jobs/${id(jobId)}/savepoints`,
      body: {
        'target-directory': request.targetDirectory,
        'cancel-job': false,
        formatType: request.formatType,
        triggerId: id(request.triggerId),
      },
      schema: triggerAnswering(request.triggerId),
      repeatable: true,
    });
  }

  async savepointStatus(jobId: string, triggerId: string): Promise<FlinkOperationStatus> {
    const path = `/jobs/${id(jobId)}/savepoints/${id(triggerId)}`;
    return this.call({
      method: 'GET',
      path,
      schema: operationSchema.transform((answer): FlinkOperationStatus => {
        if (answer.status.id === 'IN_PROGRESS') return { status: 'IN_PROGRESS' };
        const cause = causeOf(answer);
        if (cause === undefined) return { status: 'COMPLETED', location: answer.operation?.location || null };
        const taken = savepointOfFailedStop(answer, jobId);
        return taken
          ? { status: 'COMPLETED', location: taken, stopFailure: cause }
          : { status: 'FAILED', cause };
      }),
      repeatable: true,
    });
  }

  /** Stops the job with a synchronous savepoint; follow it with savepointStatus(jobId, triggerId). */
  async stopWithSavepoint(
    jobId: string,
    request: { targetDirectory: string; drain: boolean; formatType: SavepointFormatType; triggerId: string },
  ): Promise<{ triggerId: string }> {
    return this.call({
      method: 'POST',
      path: `/jobs/${id(jobId)}/stop`,
      body: {
        targetDirectory: request.targetDirectory,
        drain: request.drain,
        formatType: request.formatType,
        triggerId: id(request.triggerId),
      },
      schema: triggerAnswering(request.triggerId),
      repeatable: true,
    });
  }

  /**
   * Asks Flink to dispose of a savepoint. Flink's SavepointDisposalRequest has no trigger id (and its strict
   * mapper refuses unknown fields), so this POST is retried only when it surely did not reach Flink.
   */
  async disposeSavepoint(savepointPath: string): Promise<{ triggerId: string }> {
    return this.call({
      method: 'POST',
      path: '/savepoint-disposal',
      body: { 'savepoint-path': savepointPath },
      schema: triggerSchema,
      repeatable: false,
    });
  }

  async disposalStatus(triggerId: string): Promise<FlinkDisposalStatus> {
    return this.call({
      method: 'GET',
      path: `/savepoint-disposal/${id(triggerId)}`,
      schema: operationSchema.transform((answer): FlinkDisposalStatus => {
        if (answer.status.id === 'IN_PROGRESS') return { status: 'IN_PROGRESS' };
        const cause = causeOf(answer);
        return cause !== undefined ? { status: 'FAILED', cause } : { status: 'COMPLETED' };
      }),
      repeatable: true,
    });
  }

  // ---- transport ----------------------------------------------------------------------------------------------

  private async call<T>(call: Call<T>): Promise<T> {
    let attempts = 0;
    let last: Extract<Attempt<T>, { ok: false }> | undefined;
    // Whether any attempt may have been taken by Flink (`FlinkError.details.mayHaveBeenTaken`).
    let mayHaveBeenTaken = false;
    for (;;) {
      if (!this.circuit.tryAcquire()) {
        if (last) {
          throw this.error(last.kind, call, attempts, last.detail, { status: last.status, mayHaveBeenTaken });
        }
        throw this.error(
          'unreachable',
          call,
          attempts,
          'the circuit is open: the cluster failed repeatedly',
          { failedFast: true, mayHaveBeenTaken },
        );
      }
      attempts += 1;
      let outcome: Attempt<T>;
      try {
        outcome = await this.attempt(call);
      } catch (error) {
        // Our own bug (never an answer of Flink's): the circuit is told the cluster answered nothing.
        this.circuit.failure();
        throw error;
      }
      if (outcome.ok) {
        this.circuit.success();
        return outcome.value;
      }
      last = outcome;
      const { kind, detail, status, reachedServer } = outcome;
      // Refused before it was taken: never reached Flink, or answered 503 (no leader) or a 4xx but 408.
      const refused =
        reachedServer === false ||
        status === 503 ||
        (status !== undefined && status >= 400 && status < 500 && status !== 408);
      mayHaveBeenTaken ||= !refused;
      if (kind === 'unreachable' || kind === 'timeout' || CLUSTER_DOWN.has(status ?? 0))
        this.circuit.failure();
      else this.circuit.success();
      const retryable =
        (kind === 'unreachable' || kind === 'timeout' || kind === 'server') &&
        (call.repeatable || !reachedServer || status === 503);
      if (!retryable || attempts > this.retries) {
        throw this.error(kind, call, attempts, detail, { status, mayHaveBeenTaken });
      }
      const base = this.backoffMs * 2 ** (attempts - 1);
      await sleep(base / 2 + Math.random() * (base / 2));
    }
  }

  private async attempt<T>(call: Call<T>): Promise<Attempt<T>> {
    const headers: Record<string, string> = { ...this.cluster.headers, accept: 'application/json' };
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    let response: globalThis.Response;
    let text: string;
    try {
      response = await this.fetch(`${this.baseUrl}${call.path}`, {
        method: call.method,
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        signal: AbortSignal.timeout(this.timeoutMs),
        // Never followed (the headers are the cluster's secrets), but told apart from an unreachable cluster.
        redirect: 'manual',
      });
      text = await response.text();
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        return {
          ok: false,
          kind: 'timeout',
          detail: `no answer within ${this.timeoutMs} ms`,
          reachedServer: true,
        };
      }
      const code = networkCode(error);
      return {
        ok: false,
        kind: 'unreachable',
        detail: code ? `connection failed (${code})` : 'connection failed',
        // A refused connection or an unknown host never reached Flink; a reset connection may have.
        reachedServer: !(code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'),
      };
    }
    const status = response.status;
    if (status >= 200 && status < 300) {
      let json: unknown;
      try {
        json = JSON.parse(text, withoutNulls);
      } catch {
        return {
          ok: false,
          kind: 'protocol',
          detail: `answered ${status} with a body that is not JSON`,
          status,
        };
      }
      const parsed = call.schema.safeParse(json);
      if (!parsed.success) {
        const issues = parsed.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.join('.') || '(answer)'}: ${i.message}`)
          .join('; ');
        return {
          ok: false,
          kind: 'protocol',
          detail: `answered ${status} with an unexpected body (${issues})`,
          status,
        };
      }
      return { ok: true, value: parsed.data };
    }
    // A 408 is the server (or a proxy before it) giving up on the request, as our own timeout does: the
    // request may have been taken, so it is treated as one (a trigger is sent again with its trigger id).
    const kind: FlinkErrorKind =
      status === 404 ? 'not-found' : status === 408 ? 'timeout' : status >= 500 ? 'server' : 'rejected';
    const redirect = status >= 300 && status < 400 ? response.headers.get('location') : null;
    return {
      ok: false,
      kind,
      detail: redirect
        ? `answered ${status}, a redirect to ${redirect}: register the cluster with the REST URL it leads to`
        : `answered ${status}${flinkMessage(text)}`,
      status,
      reachedServer: true,
    };
  }

  private error(
    kind: FlinkErrorKind,
    call: Call<unknown>,
    attempts: number,
    detail: string,
    extra: { status?: number; failedFast?: boolean; mayHaveBeenTaken?: boolean },
  ): FlinkError {
    const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
    const message = this.redact(
      `Flink cluster "${this.cluster.name}": ${call.method} ${call.path}: ${detail}${tries}`,
    );
    return new FlinkError(kind, message, {
      cluster: this.cluster.name,
      method: call.method,
      path: call.path,
      attempts,
      ...extra,
    });
  }

  /** Header values are secrets: whatever an error says (Flink may echo a request), they are cut out. */
  private redact(text: string): string {
    let result = text;
    for (const value of Object.values(this.cluster.headers ?? {})) {
      // The whole value, and each word of it long enough to be a secret: a server may echo the token of
      // `Bearer <token>` alone.
      for (const secret of [value, ...value.split(/\s+/).filter((word) => word.length >= 8)]) {
        if (secret.length >= 4) result = result.split(secret).join('[redacted]');
      }
    }
    return result;
  }
}

type Attempt<T> =
  | { ok: true; value: T }
  | { ok: false; kind: FlinkErrorKind; detail: string; status?: number; reachedServer?: boolean };

function id(value: string): string {
  if (!ID.test(value))
    throw new TypeError(`not a Flink id (32 lowercase hex digits): ${JSON.stringify(value)}`);
  return value;
}

function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The first line of Flink's ErrorResponseBody (its errors can be whole Java stack traces). */
function flinkMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    const first = Array.isArray(body.errors) ? body.errors[0] : undefined;
    if (typeof first !== 'string') return '';
    const line = first.split('\n', 1)[0]!.trim();
    return line ? `: ${line.length > 300 ? `${line.slice(0, 300)}…` : line}` : '';
  } catch {
    return '';
  }
}
