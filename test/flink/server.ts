/**
 * A protocol-level Flink JobManager for tests (issue 19): an express server that speaks the REST API Flink
 * publishes (schema/flink/rest_v1_dispatcher.yml, Flink 1.19) and simulates the jobs behind it: periodic
 * incremental checkpoints that write real files, the bounded checkpoint history, savepoints (deduplicated by
 * trigger id), stop-with-savepoint, savepoint disposal, JobManager failovers, outages and slow answers.
 *
 * Every request and every answer is checked against the published description with openapi-backend. A
 * request that does not match is answered 400 (as Flink does) and recorded in `violations`; an answer of
 * this server that does not match is recorded too (a bug of the simulation). Tests assert `violations` is
 * empty, so whatever talks to this server talks Flink's protocol.
 *
 * Two things go beyond the letter of the published description, both because Flink behaves so:
 * - request bodies are deserialized by Flink with Jackson's FAIL_ON_UNKNOWN_PROPERTIES (RestMapperUtils'
 *   strict mapper), so a property the body's schema does not name is a 400 here too (the description has
 *   no `additionalProperties: false`);
 * - AsynchronousOperationResult.operation is a `oneOf` of three object schemas without `required`, which
 *   every object matches more than once, so no answer Flink gives could pass it: it is read as `anyOf`.
 * Fields Flink writes as JSON null (savepointFormat of a checkpoint, latest.savepoint before any...) are
 * left out instead, as the description does not make them nullable.
 *
 * Outages: `outage(true)` answers every request 503 with Flink's leader-election error body (what a
 * JobManager without a leader, or the load balancer in front of it, answers); `outage(true, 'refuse')`
 * closes the listening socket (connections refused) until `outage(false)` listens on the same port again.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import express, { type Request, type Response } from 'express';
import { OpenAPIBackend, type Document } from 'openapi-backend';
import { JOB_STATUSES } from '@snapcat/domain/src/enum-values';

export const SPEC_PATH = resolve(__dirname, '../../schema/flink/rest_v1_dispatcher.yml');

// Flink's JobStatus values, as the domain lists them (one list: libs/domain/src/enum-values.ts).
export { JOB_STATUSES };
export type FlinkJobStatus = (typeof JOB_STATUSES)[number];
const GLOBALLY_TERMINAL: FlinkJobStatus[] = ['FAILED', 'CANCELED', 'FINISHED'];
const EXECUTION_STATES = [
  'CREATED',
  'SCHEDULED',
  'DEPLOYING',
  'RUNNING',
  'FINISHED',
  'CANCELING',
  'CANCELED',
  'FAILED',
  'RECONCILING',
  'INITIALIZING',
] as const;

export type ExternalizedRetention =
  'RETAIN_ON_CANCELLATION' | 'DELETE_ON_CANCELLATION' | 'NO_EXTERNALIZED_CHECKPOINTS';

export interface AddJobOptions {
  name?: string;
  /** Periodic checkpoints every N ms while RUNNING; none when left out (savepoints still work, as in Flink). */
  checkpointIntervalMs?: number;
  state?: FlinkJobStatus;
  externalizedRetention?: ExternalizedRetention;
  /** state.checkpoints.dir: checkpoints go to `<checkpointDir>/<jobId>/chk-<id>` and `.../shared/`. */
  checkpointDir: string;
  /** state.savepoints.dir: the target of a savepoint that names none. */
  savepointDir?: string;
  /** web.checkpoints.history */
  historySize?: number;
  /**
   * false: the job has no checkpoint statistics, and both checkpoint endpoints answer 404, as Flink does for a
   * job without a checkpoint coordinator (CheckpointingStatisticsHandler, CheckpointConfigHandler) and as a
   * server may for a job that does not checkpoint. Savepoints still work.
   */
  checkpointStatistics?: boolean;
  /** state.checkpoints.num-retained */
  numRetained?: number;
  parallelism?: number;
}

export interface FlinkTestServerOptions {
  /** How long a checkpoint stays IN_PROGRESS. */
  checkpointDurationMs?: number;
  /** How long a savepoint (or stop-with-savepoint) stays IN_PROGRESS. */
  savepointDelayMs?: number;
  /** How long a disposal stays IN_PROGRESS. */
  disposalDelayMs?: number;
  /** How long a failover keeps the job RESTARTING. */
  restartDelayMs?: number;
  /**
   * Answer a savepoint trigger with an id of the server's own, whatever `triggerId` the request carries (the
   * spec makes the request's optional, and TriggerResponse's `request-id` is the one to follow). Such a server
   * cannot tell a repeated trigger: each one takes a savepoint.
   */
  ownTriggerIds?: boolean;
}

export interface Violation {
  kind: 'request' | 'response' | 'unknown-path' | 'not-simulated';
  method: string;
  path: string;
  operationId?: string;
  errors: string[];
}

export interface LoggedRequest {
  method: string;
  path: string;
  operationId?: string;
  jobId?: string;
  time: number;
  status?: number;
}

type CheckpointType = 'CHECKPOINT' | 'SAVEPOINT' | 'SYNC_SAVEPOINT';
type SavepointFormat = 'CANONICAL' | 'NATIVE';

export interface SimCheckpoint {
  id: number;
  status: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';
  checkpointType: CheckpointType;
  savepointFormat?: SavepointFormat;
  triggerTimestamp: number;
  latestAckTimestamp: number;
  stateSize: number;
  checkpointedSize: number;
  /** A local directory; reported as a `file:` URI as Flink does for the local file system. */
  directory?: string;
  discarded: boolean;
  failureTimestamp?: number;
  failureMessage?: string;
}

interface Restored {
  id: number;
  restoreTimestamp: number;
  isSavepoint: boolean;
  externalPath?: string;
}

/** An answer as another server would give it, from the simulated one and the request's path parameters. */
type Reshape = (body: unknown, params: Record<string, string>) => unknown;

interface Failure {
  className: string;
  message: string;
}

interface Operation {
  status: 'IN_PROGRESS' | 'COMPLETED';
  location?: string;
  failure?: Failure;
}

export interface SimJob {
  id: string;
  name: string;
  state: FlinkJobStatus;
  startTime: number;
  endTime: number;
  timestamps: Partial<Record<FlinkJobStatus, number>>;
  intervalMs?: number;
  timer?: NodeJS.Timeout;
  retention: ExternalizedRetention;
  checkpointDir: string;
  savepointDir?: string;
  historySize: number;
  numRetained: number;
  parallelism: number;
  vertexId: string;
  nextId: number;
  history: SimCheckpoint[];
  counts: { restored: number; total: number; in_progress: number; completed: number; failed: number };
  latestCompleted?: SimCheckpoint;
  latestSavepoint?: SimCheckpoint;
  latestFailed?: SimCheckpoint;
  restored?: Restored;
  /** Completed checkpoints Flink still holds (state.checkpoints.num-retained), oldest first. */
  retained: SimCheckpoint[];
  sharedFiles: string[];
  checkpointRunning: boolean;
  /** The periodic trigger is held (`holdCheckpoints`): only `checkpointNow` takes checkpoints. */
  held: boolean;
  /** Bumped by a failover: a checkpoint triggered under an older JobManager never completes. */
  leaderEpoch: number;
  failCheckpoints: { n: number; message: string };
  failSavepoints: { n: number; message: string };
  /** Stops whose savepoint is written but whose job then fails while stopping (and restarts). */
  failStops: number;
  /** Plain savepoints after which the job fails over (restartAfterNextSavepoints). */
  restartAfterSavepoints: number;
  savepoints: Map<string, Operation>;
  checkpointStatistics: boolean;
}

/**
 * Java's Long.MAX_VALUE (what Flink answers as the interval of a job without periodic checkpoints) has no
 * exact JavaScript number, and the validator's int64 format wants a safe integer: the answer is built and
 * validated with MAX_SAFE_INTEGER standing in, and sent with Flink's exact digits.
 */
const LONG_MAX = {
  stands_in: Number.MAX_SAFE_INTEGER,
  text: '9223372036854775807',
  pattern: new RegExp(`("interval":)${Number.MAX_SAFE_INTEGER}(?=[,}])`),
};
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const ID = /^[0-9a-f]{32}$/;
const fileUri = (path: string): string => `file:${path}`;
const localPath = (uri: string): string => uri.replace(/^file:(\/\/)?/, '');

function dirSize(dir: string): number {
  let size = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    size += entry.isDirectory() ? dirSize(path) : statSync(path).size;
  }
  return size;
}

/** A Java-ish stack trace for a failure-cause, as Flink's SerializedThrowable serializer writes one. */
function serializedThrowable(failure: Failure): Record<string, string> {
  const trace = `${failure.className}: ${failure.message}\n\tat org.apache.flink.runtime.checkpoint.CheckpointCoordinator.triggerCheckpoint(CheckpointCoordinator.java:512)\n`;
  return {
    class: failure.className,
    'stack-trace': trace,
    'serialized-throwable': Buffer.from(trace).toString('base64'),
  };
}

let definitionPromise: Promise<Document> | undefined;
/** The published description, with the one `oneOf` no answer can satisfy read as `anyOf` (see above). */
function flinkDefinition(): Promise<Document> {
  definitionPromise ??= (async () => {
    const loader = new OpenAPIBackend({ definition: SPEC_PATH });
    const doc = (await loader.loadDocument()) as Document;
    const schemas = doc.components?.schemas as Record<string, { properties: Record<string, object> }>;
    const operation = schemas['AsynchronousOperationResult']!.properties['operation'] as {
      oneOf?: object[];
      anyOf?: object[];
    };
    operation.anyOf = operation.oneOf;
    delete operation.oneOf;
    return doc;
  })();
  return definitionPromise;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Answer {
  status: number;
  body: unknown;
}

export class FlinkTestServer {
  readonly violations: Violation[] = [];
  readonly requests: LoggedRequest[] = [];
  private readonly jobs = new Map<string, SimJob>();
  private readonly disposals = new Map<string, Operation>();
  private failDisposals = { n: 0, message: '' };
  private readonly timers = new Set<NodeJS.Timeout>();
  private api: OpenAPIBackend | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly reshapes = new Map<string, Reshape>();
  private readonly refusals = new Map<string, { n: number; status: number; message: string }>();
  private port = 0;
  private down: false | 'unavailable' | 'refuse' = false;
  private delayMs = 0;
  private readonly options: Required<FlinkTestServerOptions>;

  constructor(options: FlinkTestServerOptions = {}) {
    this.options = {
      checkpointDurationMs: options.checkpointDurationMs ?? 5,
      savepointDelayMs: options.savepointDelayMs ?? 30,
      disposalDelayMs: options.disposalDelayMs ?? 20,
      restartDelayMs: options.restartDelayMs ?? 20,
      ownTriggerIds: options.ownTriggerIds ?? false,
    };
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<{ url: string }> {
    this.api = new OpenAPIBackend({ definition: await flinkDefinition(), quick: true });
    await this.api.init();
    await this.listen(0);
    return { url: this.url };
  }

  async stop(): Promise<void> {
    for (const job of this.jobs.values()) clearInterval(job.timer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.close();
  }

  // ---- simulation controls ------------------------------------------------------------------------------

  addJob(jobId: string, options: AddJobOptions): void {
    if (!ID.test(jobId)) throw new Error(`a Flink JobID is 32 lowercase hex digits: ${jobId}`);
    const now = Date.now();
    const job: SimJob = {
      id: jobId,
      name: options.name ?? `job-${jobId.slice(0, 6)}`,
      state: options.state ?? 'RUNNING',
      startTime: now,
      endTime: -1,
      timestamps: { INITIALIZING: now, CREATED: now },
      intervalMs: options.checkpointIntervalMs,
      retention: options.externalizedRetention ?? 'NO_EXTERNALIZED_CHECKPOINTS',
      checkpointDir: resolve(options.checkpointDir),
      savepointDir: options.savepointDir,
      historySize: options.historySize ?? 10,
      numRetained: options.numRetained ?? 1,
      parallelism: options.parallelism ?? 2,
      vertexId: hex(16),
      nextId: 1,
      history: [],
      counts: { restored: 0, total: 0, in_progress: 0, completed: 0, failed: 0 },
      retained: [],
      sharedFiles: [],
      checkpointRunning: false,
      held: false,
      leaderEpoch: 0,
      failCheckpoints: { n: 0, message: '' },
      failSavepoints: { n: 0, message: '' },
      failStops: 0,
      restartAfterSavepoints: 0,
      savepoints: new Map(),
      checkpointStatistics: options.checkpointStatistics ?? true,
    };
    this.jobs.set(jobId, job);
    this.setJobState(jobId, job.state);
    if (job.intervalMs !== undefined) {
      job.timer = setInterval(() => {
        if (job.state === 'RUNNING' && !job.checkpointRunning && !job.held) this.checkpoint(job);
      }, job.intervalMs);
      job.timer.unref();
    }
  }

  setJobState(jobId: string, state: FlinkJobStatus): void {
    const job = this.job(jobId);
    job.state = state;
    job.timestamps[state] = Date.now();
    // Checkpoints are taken only while RUNNING (the interval timer checks); a job set RUNNING again resumes.
    job.endTime = GLOBALLY_TERMINAL.includes(state) ? Date.now() : -1;
  }

  failNextCheckpoints(jobId: string, n: number, message = 'Checkpoint expired before completing.'): void {
    this.job(jobId).failCheckpoints = { n, message };
  }

  /**
   * Answers the operation with what `reshape` makes of the simulated answer (still checked against the spec):
   * a server that leaves out what the spec does not require, or says it in another allowed form.
   */
  reshapeAnswers(operationId: string, reshape: Reshape | undefined): void {
    if (reshape) this.reshapes.set(operationId, reshape);
    else this.reshapes.delete(operationId);
  }

  /**
   * Answers the next `n` requests of the operation, valid as they are by the spec, with a 4xx and Flink's
   * error body: a stricter or older Flink (one whose request bodies lack a field snapcat sends, or that
   * refuses a request for a reason of its own).
   */
  refuseNext(operationId: string, n: number, status: number, message: string): void {
    this.refusals.set(operationId, { n, status, message });
  }

  failNextSavepoints(jobId: string, n: number, message = 'Failure while taking the savepoint.'): void {
    this.job(jobId).failSavepoints = { n, message };
  }

  /**
   * The next n stops-with-savepoint write their savepoint, then the job fails while stopping: the operation
   * fails with Flink's StopWithSavepointStoppingException, which names the savepoint, and the job fails over
   * (RESTARTING, then RUNNING again) instead of ending (StopWithSavepointTerminationHandlerImpl).
   */
  failNextStops(jobId: string, n: number): void {
    this.job(jobId).failStops = n;
  }

  /**
   * The next n plain savepoints complete, and the job fails over right after (RESTARTING, then RUNNING): the
   * operation's COMPLETED answer follows a second later, so a status poll sees RESTARTING first.
   */
  restartAfterNextSavepoints(jobId: string, n: number): void {
    this.job(jobId).restartAfterSavepoints = n;
  }

  failNextDisposals(n: number, message = 'Failure while disposing the savepoint.'): void {
    this.failDisposals = { n, message };
  }

  /** Holds (or resumes) the job's periodic checkpoints: a test decides exactly what happens meanwhile. */
  holdCheckpoints(jobId: string, held: boolean): void {
    this.job(jobId).held = held;
  }

  /** Takes a checkpoint now (outside the interval) and resolves with its id when it completed or failed. */
  checkpointNow(jobId: string): Promise<number> {
    const job = this.job(jobId);
    if (job.state !== 'RUNNING') throw new Error(`job ${jobId} is ${job.state}`);
    return new Promise((done) => this.checkpoint(job, done));
  }

  /**
   * A JobManager failover: the new JobManager's checkpoint statistics start empty (history, latest, counts),
   * checkpoint ids continue (the counter lives in HA storage), the job restarts from the newest retained
   * checkpoint, which `latest.restored` names. A checkpoint in flight is aborted and its id is never used
   * again (CheckpointCoordinator.shutdown aborts pending checkpoints with CHECKPOINT_COORDINATOR_SHUTDOWN).
   */
  failover(jobId: string): void {
    const job = this.job(jobId);
    const from = job.retained.at(-1);
    job.leaderEpoch += 1;
    job.checkpointRunning = false;
    job.history = [];
    job.latestCompleted = job.latestSavepoint = job.latestFailed = undefined;
    job.restored = undefined;
    job.counts = { restored: 0, total: 0, in_progress: 0, completed: 0, failed: 0 };
    this.setJobState(jobId, 'RESTARTING');
    this.later(this.options.restartDelayMs, () => {
      if (from) {
        this.restore(jobId, { checkpointId: from.id, isSavepoint: false });
      }
      if (job.state === 'RESTARTING') this.setJobState(jobId, 'RUNNING');
    });
  }

  /**
   * The job runs again under the same JobID from nothing, as after a JobManager restart without high
   * availability (application mode resubmits it) or a stateless redeploy with a fixed JobID: a new checkpoint
   * coordinator whose ids start at 1 (no `CheckpointIDCounter` in HA storage), empty statistics, no restore.
   * The earlier run's retained checkpoints stay on storage (Flink never deletes them: no store knows them).
   */
  resubmit(jobId: string): void {
    const job = this.job(jobId);
    job.leaderEpoch += 1;
    job.checkpointRunning = false;
    job.nextId = 1;
    job.history = [];
    job.retained = [];
    job.sharedFiles = [];
    job.latestCompleted = job.latestSavepoint = job.latestFailed = undefined;
    job.restored = undefined;
    job.counts = { restored: 0, total: 0, in_progress: 0, completed: 0, failed: 0 };
  }

  /** The job (re)started from a checkpoint or savepoint: `latest.restored` names it. */
  restore(jobId: string, from: { checkpointId?: number; externalPath?: string; isSavepoint: boolean }): void {
    const job = this.job(jobId);
    const known =
      from.checkpointId !== undefined
        ? [...job.retained, ...job.history].find((c) => c.id === from.checkpointId)
        : undefined;
    const externalPath =
      from.externalPath ?? (known?.directory !== undefined ? fileUri(known.directory) : undefined);
    job.restored = {
      id: from.checkpointId ?? job.nextId++,
      restoreTimestamp: Date.now(),
      isSavepoint: from.isSavepoint,
      externalPath,
    };
    job.counts.restored += 1;
  }

  /** 'unavailable' (the default) answers 503; 'refuse' closes the listening socket. */
  async outage(on: boolean, mode: 'unavailable' | 'refuse' = 'unavailable'): Promise<void> {
    if (on) {
      this.down = mode;
      if (mode === 'refuse') await this.close();
    } else {
      const wasRefusing = this.down === 'refuse';
      this.down = false;
      if (wasRefusing) await this.listen(this.port);
    }
  }

  /**
   * Drops every asynchronous operation's result (savepoints, disposals), as Flink does
   * `rest.async.store-duration` (5 minutes) after an operation ends, and as a JobManager failover does: an
   * operation under way still finishes, but asking after it answers 404, and a trigger with the same id
   * starts a new one.
   */
  forgetOperations(): void {
    this.disposals.clear();
    for (const job of this.jobs.values()) job.savepoints.clear();
  }

  /** The JobManager no longer knows the job (restarted without HA, or its history expired): it is not listed. */
  forgetJob(jobId: string): void {
    const job = this.job(jobId);
    if (job.timer) clearInterval(job.timer);
    this.jobs.delete(jobId);
  }

  /** Changes the simulation's timings from now on. */
  configure(options: FlinkTestServerOptions): void {
    Object.assign(this.options, options);
  }

  /** Every answer waits this long first. */
  delay(ms: number): void {
    this.delayMs = ms;
  }

  /** The simulated state of a job, for assertions. */
  job(jobId: string): SimJob {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    return job;
  }

  requestsFor(jobId: string, sinceMs = 0): LoggedRequest[] {
    return this.requests.filter((r) => r.jobId === jobId && r.time >= sinceMs);
  }

  // ---- simulation -----------------------------------------------------------------------------------------

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private record(job: SimJob, checkpoint: SimCheckpoint): void {
    job.history.unshift(checkpoint);
    job.history.length = Math.min(job.history.length, job.historySize);
    job.counts.total += 1;
    job.counts.in_progress += 1;
  }

  private fail(job: SimJob, checkpoint: SimCheckpoint, message: string): void {
    checkpoint.status = 'FAILED';
    checkpoint.failureTimestamp = Date.now();
    checkpoint.failureMessage = message;
    job.counts.in_progress -= 1;
    job.counts.failed += 1;
    job.latestFailed = checkpoint;
  }

  private complete(job: SimJob, checkpoint: SimCheckpoint): void {
    checkpoint.status = 'COMPLETED';
    checkpoint.latestAckTimestamp = Date.now();
    job.counts.in_progress -= 1;
    job.counts.completed += 1;
    if (checkpoint.checkpointType === 'CHECKPOINT') job.latestCompleted = checkpoint;
    else job.latestSavepoint = checkpoint;
  }

  private checkpoint(job: SimJob, done?: (id: number) => void): void {
    job.checkpointRunning = true;
    const checkpoint: SimCheckpoint = {
      id: job.nextId++,
      status: 'IN_PROGRESS',
      checkpointType: 'CHECKPOINT',
      triggerTimestamp: Date.now(),
      latestAckTimestamp: -1,
      stateSize: 0,
      checkpointedSize: 0,
      discarded: false,
    };
    this.record(job, checkpoint);
    const epoch = job.leaderEpoch;
    this.later(this.options.checkpointDurationMs, () => {
      if (epoch !== job.leaderEpoch) return done?.(checkpoint.id); // aborted by a failover
      job.checkpointRunning = false;
      if (job.failCheckpoints.n > 0) {
        job.failCheckpoints.n -= 1;
        this.fail(job, checkpoint, job.failCheckpoints.message);
      } else {
        // Incremental (RocksDB): one new shared file; the metadata references every shared file.
        const base = join(job.checkpointDir, job.id);
        const shared = join(base, 'shared', hex(16));
        mkdirSync(join(base, 'shared'), { recursive: true });
        writeFileSync(shared, randomBytes(256 + Math.floor(Math.random() * 256)));
        job.sharedFiles.push(shared);
        const directory = join(base, `chk-${checkpoint.id}`);
        mkdirSync(directory, { recursive: true });
        writeFileSync(
          join(directory, '_metadata'),
          JSON.stringify({ checkpointId: checkpoint.id, jobId: job.id, shared: job.sharedFiles }),
        );
        checkpoint.directory = directory;
        const metadata = statSync(join(directory, '_metadata')).size;
        checkpoint.checkpointedSize = statSync(shared).size + metadata;
        checkpoint.stateSize = job.sharedFiles.reduce((sum, f) => sum + statSync(f).size, metadata);
        this.complete(job, checkpoint);
        job.retained.push(checkpoint);
        while (job.retained.length > job.numRetained) {
          const subsumed = job.retained.shift()!;
          subsumed.discarded = true;
          rmSync(subsumed.directory!, { recursive: true, force: true });
        }
      }
      done?.(checkpoint.id);
    });
  }

  private savepoint(
    job: SimJob,
    triggerId: string,
    request: { targetDirectory?: string; formatType: SavepointFormat; then?: FlinkJobStatus; sync: boolean },
  ): void {
    const operation: Operation = { status: 'IN_PROGRESS' };
    job.savepoints.set(triggerId, operation);
    const finish = (result: Omit<Operation, 'status'>) =>
      Object.assign(operation, result, { status: 'COMPLETED' });
    const target = request.targetDirectory ?? job.savepointDir;
    if (target === undefined) {
      this.later(1, () =>
        finish({
          failure: {
            className: 'java.lang.IllegalStateException',
            message:
              "No savepoint directory configured. You can either specify a directory while cancelling via -s :targetDirectory or configure a cluster-wide default via key 'state.savepoints.dir'.",
          },
        }),
      );
      return;
    }
    if (job.state !== 'RUNNING') {
      this.later(1, () =>
        finish({
          failure: {
            className: 'org.apache.flink.runtime.checkpoint.CheckpointException',
            message: `Checkpoint triggering task of job ${job.id} is not being executed at the moment. Aborting checkpoint. Failure reason: Not all required tasks are currently running.`,
          },
        }),
      );
      return;
    }
    const checkpoint: SimCheckpoint = {
      id: job.nextId++,
      status: 'IN_PROGRESS',
      checkpointType: request.sync ? 'SYNC_SAVEPOINT' : 'SAVEPOINT',
      savepointFormat: request.formatType,
      triggerTimestamp: Date.now(),
      latestAckTimestamp: -1,
      stateSize: 0,
      checkpointedSize: 0,
      discarded: false,
    };
    this.record(job, checkpoint);
    this.later(this.options.savepointDelayMs, () => {
      if (job.failSavepoints.n > 0) {
        job.failSavepoints.n -= 1;
        const message = job.failSavepoints.message;
        this.fail(job, checkpoint, message);
        finish({
          failure: { className: 'org.apache.flink.runtime.checkpoint.CheckpointException', message },
        });
        return;
      }
      const directory = join(resolve(localPath(target)), `savepoint-${job.id.slice(0, 6)}-${hex(6)}`);
      mkdirSync(directory, { recursive: true });
      writeFileSync(join(directory, 'state'), randomBytes(512));
      writeFileSync(
        join(directory, '_metadata'),
        JSON.stringify({ checkpointId: checkpoint.id, jobId: job.id, format: request.formatType }),
      );
      checkpoint.directory = directory;
      checkpoint.stateSize = checkpoint.checkpointedSize = dirSize(directory);
      this.complete(job, checkpoint);
      if (request.then && job.failStops > 0) {
        job.failStops -= 1;
        // The job fails over first; the operation's result follows (its handler completes the stop's future
        // once the failover is under way): a second in which the job is RESTARTING with the stop unanswered.
        this.setJobState(job.id, 'RESTARTING');
        this.later(1_000, () => {
          finish({
            failure: {
              className: 'java.util.concurrent.CompletionException',
              message:
                `org.apache.flink.runtime.scheduler.stopwithsavepoint.StopWithSavepointStoppingException: A savepoint has been created at: ${fileUri(directory)}, ` +
                `but the corresponding job ${job.id} failed during stopping. The savepoint is consistent, but might have uncommitted transactions. ` +
                'If you want to commit the transaction please restart a job from this savepoint.',
            },
          });
          this.later(200, () => this.setJobState(job.id, 'RUNNING'));
        });
        return;
      }
      if (!request.then && job.restartAfterSavepoints > 0) {
        job.restartAfterSavepoints -= 1;
        this.setJobState(job.id, 'RESTARTING');
        this.later(1_000, () => {
          finish({ location: fileUri(directory) });
          this.later(200, () => this.setJobState(job.id, 'RUNNING'));
        });
        return;
      }
      finish({ location: fileUri(directory) });
      if (request.then) this.setJobState(job.id, request.then);
    });
  }

  // ---- HTTP -------------------------------------------------------------------------------------------------

  private listen(port: number): Promise<void> {
    const app = express();
    app.disable('x-powered-by');
    app.use((req, res, next) => {
      const wait = this.delayMs;
      if (wait > 0) setTimeout(next, wait);
      else next();
    });
    app.use(express.json({ limit: '1mb' }));
    app.use((req, res) => this.handle(req, res));
    app.use((err: Error, req: Request, res: Response, _next: () => void) => {
      // Malformed JSON: Flink's "Request did not match expected format".
      this.log(req, undefined, 400);
      this.violations.push({
        kind: 'request',
        method: req.method,
        path: req.path,
        errors: [`unreadable body: ${err.message}`],
      });
      res.status(400).json({ errors: ['Request did not match expected format.'] });
    });
    return new Promise((done, fail) => {
      const server = app.listen(port, '127.0.0.1');
      server.once('error', fail);
      server.once('listening', () => {
        this.port = (server.address() as AddressInfo).port;
        this.server = server;
        done();
      });
      server.on('connection', (socket: Socket) => {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
      });
    });
  }

  private close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((done) => {
      server.close(() => done());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private log(req: Request, operationId: string | undefined, status: number): void {
    const jobId = /^\/jobs\/([^/]+)/.exec(req.path)?.[1];
    this.requests.push({ method: req.method, path: req.path, operationId, jobId, time: Date.now(), status });
  }

  private handle(req: Request, res: Response): void {
    const api = this.api!;
    const request = {
      method: req.method,
      path: req.path,
      headers: req.headers as Record<string, string>,
      query: req.query as Record<string, string>,
      body: req.body as unknown,
    };
    const operation = api.matchOperation(request);
    const operationId = operation?.operationId;
    const send = (answer: Answer) => {
      this.log(req, operationId, answer.status);
      const text = JSON.stringify(answer.body).replace(LONG_MAX.pattern, `$1${LONG_MAX.text}`);
      res.status(answer.status).type('application/json').send(text);
    };
    if (this.down === 'unavailable') {
      return send({
        status: 503,
        body: {
          errors: ['Service temporarily unavailable due to an ongoing leader election. Please refresh.'],
        },
      });
    }
    if (!operation || !operationId) {
      this.violations.push({ kind: 'unknown-path', method: req.method, path: req.path, errors: [] });
      return send({ status: 404, body: { errors: [`Not found: ${req.path}`] } });
    }
    const params = api.router.parseRequest(request, operation).params as Record<string, string>;
    const errors = this.requestErrors(request, operation, params);
    if (errors.length > 0) {
      this.violations.push({ kind: 'request', method: req.method, path: req.path, operationId, errors });
      const bodyName = this.requestBodyName(operation);
      return send({
        status: 400,
        body: {
          errors: [
            bodyName
              ? `Request did not match expected format ${bodyName}.`
              : 'Bad request, could not parse parameters.',
          ],
        },
      });
    }
    const refusal = this.refusals.get(operationId);
    if (refusal && refusal.n > 0) {
      refusal.n -= 1;
      return send({ status: refusal.status, body: { errors: [refusal.message] } });
    }
    let answer: Answer;
    try {
      answer = this.answer(operationId, params, (req.body ?? {}) as Record<string, unknown>);
      const reshape = this.reshapes.get(operationId);
      if (reshape && answer.status < 300) answer = { ...answer, body: reshape(answer.body, params) };
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return send({ status: error.status, body: { errors: [error.message] } });
    }
    const check = api.validateResponse(answer.body, operation, answer.status);
    if (check.errors?.length) {
      this.violations.push({
        kind: 'response',
        method: req.method,
        path: req.path,
        operationId,
        errors: check.errors.map((e) => `${e.instancePath} ${e.message ?? ''}`),
      });
    }
    send(answer);
  }

  private requestBodyName(operation: { requestBody?: unknown }): string | undefined {
    const body = operation.requestBody as { content?: Record<string, { schema?: object }> } | undefined;
    return body?.content?.['application/json'] ? 'request body' : undefined;
  }

  private requestErrors(
    request: {
      method: string;
      path: string;
      headers: Record<string, string>;
      query: Record<string, string>;
      body: unknown;
    },
    operation: NonNullable<ReturnType<OpenAPIBackend['matchOperation']>>,
    params: Record<string, string>,
  ): string[] {
    const errors: string[] = [];
    const check = this.api!.validateRequest(request, operation);
    for (const e of check.errors ?? []) errors.push(`${e.instancePath} ${e.message ?? ''}`);
    // JobID and TriggerId are exactly 32 hex digits (the published pattern is not anchored).
    for (const name of ['jobid', 'triggerid']) {
      if (params[name] !== undefined && !ID.test(params[name]))
        errors.push(`/path/${name} is not 32 hex digits`);
    }
    // Flink's strict Jackson mapper refuses properties its request body class does not have.
    const body = operation.requestBody as
      { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> } | undefined;
    const properties = body?.content?.['application/json']?.schema?.properties;
    if (properties && request.body && typeof request.body === 'object') {
      for (const key of Object.keys(request.body)) {
        if (!(key in properties)) errors.push(`/requestBody has an unknown property "${key}"`);
      }
    }
    return errors;
  }

  private answer(operationId: string, params: Record<string, string>, body: Record<string, unknown>): Answer {
    const job = () => {
      const found = this.jobs.get(params['jobid']!);
      if (!found) throw new HttpError(404, `Job ${params['jobid']} not found`);
      return found;
    };
    switch (operationId) {
      case 'getJobDetails':
        return { status: 200, body: this.jobDetails(job()) };
      case 'getJobsOverview':
        return { status: 200, body: { jobs: [...this.jobs.values()].map((j) => this.jobOverview(j)) } };
      case 'getCheckpointingStatistics':
        if (!job().checkpointStatistics) throw new HttpError(404, 'Checkpointing has not been enabled.');
        return { status: 200, body: this.checkpointingStatistics(job()) };
      case 'getCheckpointConfig':
        if (!job().checkpointStatistics)
          throw new HttpError(404, 'Checkpointing is not enabled for this job.');
        return { status: 200, body: this.checkpointConfig(job()) };
      case 'getCheckpointStatisticDetails': {
        const j = job();
        const id = Number(params['checkpointid']);
        const checkpoint = j.history.find((c) => c.id === id);
        if (!checkpoint)
          throw new HttpError(404, `Could not find checkpointing statistics for checkpoint ${id}.`);
        return { status: 200, body: this.checkpointStatistics(j, checkpoint) };
      }
      case 'triggerSavepoint':
      case 'triggerStopWithSavepoint': {
        const j = job();
        const stop = operationId === 'triggerStopWithSavepoint';
        const requested = body['triggerId'] as string | undefined;
        const triggerId = this.options.ownTriggerIds ? hex(16) : (requested ?? hex(16));
        if (!j.savepoints.has(triggerId)) {
          const cancel = body['cancel-job'] === true;
          this.savepoint(j, triggerId, {
            targetDirectory: (stop ? body['targetDirectory'] : body['target-directory']) as
              string | undefined,
            formatType: (body['formatType'] as SavepointFormat | undefined) ?? 'CANONICAL',
            sync: stop,
            then: stop ? 'FINISHED' : cancel ? 'CANCELED' : undefined,
          });
        }
        return { status: 202, body: { 'request-id': triggerId } };
      }
      case 'getSavepointStatus': {
        const operation = job().savepoints.get(params['triggerid']!);
        if (!operation) {
          throw new HttpError(
            404,
            `There is no savepoint operation with triggerId=${params['triggerid']} for job ${params['jobid']}.`,
          );
        }
        return { status: 200, body: this.operationResult(operation) };
      }
      case 'triggerSavepointDisposal': {
        const triggerId = hex(16);
        const operation: Operation = { status: 'IN_PROGRESS' };
        this.disposals.set(triggerId, operation);
        const path = body['savepoint-path'] as string | undefined;
        this.later(this.options.disposalDelayMs, () => this.dispose(operation, path));
        return { status: 200, body: { 'request-id': triggerId } };
      }
      case 'getSavepointDisposalStatus': {
        const operation = this.disposals.get(params['triggerid']!);
        if (!operation) throw new HttpError(404, `Operation not found under key: ${params['triggerid']}`);
        return { status: 200, body: this.operationResult(operation) };
      }
      default:
        this.violations.push({ kind: 'not-simulated', method: '', path: '', operationId, errors: [] });
        throw new HttpError(501, `${operationId} is not simulated by the test server`);
    }
  }

  private dispose(operation: Operation, path: string | undefined): void {
    operation.status = 'COMPLETED';
    if (this.failDisposals.n > 0) {
      this.failDisposals.n -= 1;
      operation.failure = { className: 'java.io.IOException', message: this.failDisposals.message };
      return;
    }
    const directory = path === undefined ? undefined : resolve(localPath(path));
    if (!directory || !existsSync(join(directory, '_metadata'))) {
      operation.failure = {
        className: 'java.io.FileNotFoundException',
        message: `Cannot find meta data file '_metadata' in directory '${path}'. Please try to load the checkpoint/savepoint directly from the metadata file instead of the directory.`,
      };
      return;
    }
    rmSync(directory, { recursive: true, force: true });
  }

  private operationResult(operation: Operation): object {
    if (operation.status === 'IN_PROGRESS') return { status: { id: 'IN_PROGRESS' } };
    return {
      status: { id: 'COMPLETED' },
      operation: operation.failure
        ? { 'failure-cause': serializedThrowable(operation.failure) }
        : operation.location !== undefined
          ? { location: operation.location }
          : {},
    };
  }

  // ---- answers ----------------------------------------------------------------------------------------------

  /** One job of GET /jobs/overview (Flink's JobDetails). */
  private jobOverview(job: SimJob): object {
    const now = Date.now();
    return {
      jid: job.id,
      name: job.name,
      state: job.state,
      'start-time': job.startTime,
      'end-time': job.endTime,
      duration: (job.endTime > 0 ? job.endTime : now) - job.startTime,
      // Flink's is the latest task state change (JobDetails.createDetailsForJob): here, the job's.
      'last-modification': Math.max(job.startTime, ...Object.values(job.timestamps)),
      tasks: { total: job.parallelism, running: job.state === 'RUNNING' ? job.parallelism : 0 },
    };
  }

  private jobDetails(job: SimJob): object {
    const now = Date.now();
    const executionState =
      job.state === 'RUNNING'
        ? 'RUNNING'
        : job.state === 'FINISHED'
          ? 'FINISHED'
          : job.state === 'CANCELED'
            ? 'CANCELED'
            : job.state === 'FAILED'
              ? 'FAILED'
              : 'CREATED';
    const tasks = Object.fromEntries(
      EXECUTION_STATES.map((s) => [s, s === executionState ? job.parallelism : 0]),
    );
    const timestamps = Object.fromEntries(JOB_STATUSES.map((s) => [s, job.timestamps[s] ?? 0]));
    const duration = (job.endTime > 0 ? job.endTime : now) - job.startTime;
    return {
      jid: job.id,
      name: job.name,
      isStoppable: false,
      state: job.state,
      'start-time': job.startTime,
      'end-time': job.endTime,
      duration,
      maxParallelism: -1,
      now,
      timestamps,
      vertices: [
        {
          id: job.vertexId,
          name: `Source: events -> Map -> Sink: ${job.name}`,
          maxParallelism: 128,
          parallelism: job.parallelism,
          status: executionState,
          'start-time': job.startTime,
          'end-time': job.endTime,
          duration,
          tasks,
          metrics: {
            'read-bytes': 0,
            'read-bytes-complete': true,
            'write-bytes': 0,
            'write-bytes-complete': true,
            'read-records': 0,
            'read-records-complete': true,
            'write-records': 0,
            'write-records-complete': true,
            'accumulated-backpressured-time': 0,
            'accumulated-idle-time': 0,
            'accumulated-busy-time': 0,
          },
        },
      ],
      'status-counts': tasks,
      plan: {
        jid: job.id,
        name: job.name,
        type: 'STREAMING',
        nodes: [
          {
            id: job.vertexId,
            parallelism: job.parallelism,
            operator: '',
            operator_strategy: '',
            description: `Source: events -> Map -> Sink: ${job.name}`,
            optimizer_properties: {},
          },
        ],
      },
    };
  }

  private checkpointStatistics(job: SimJob, c: SimCheckpoint): object {
    const acked = c.status === 'COMPLETED' ? job.parallelism : 0;
    const duration = c.latestAckTimestamp > 0 ? c.latestAckTimestamp - c.triggerTimestamp : -1;
    const sizes = {
      checkpointed_size: c.checkpointedSize,
      state_size: c.stateSize,
      end_to_end_duration: duration,
      alignment_buffered: 0,
      processed_data: 0,
      persisted_data: 0,
    };
    const common = {
      className: c.status === 'COMPLETED' ? 'completed' : c.status === 'FAILED' ? 'failed' : 'in_progress',
      id: c.id,
      status: c.status,
      is_savepoint: c.checkpointType !== 'CHECKPOINT',
      ...(c.savepointFormat ? { savepointFormat: c.savepointFormat } : {}),
      trigger_timestamp: c.triggerTimestamp,
      latest_ack_timestamp: c.latestAckTimestamp,
      ...sizes,
      num_subtasks: job.parallelism,
      num_acknowledged_subtasks: acked,
      checkpoint_type: c.checkpointType,
      tasks: {
        [job.vertexId]: {
          id: c.id,
          status: c.status,
          latest_ack_timestamp: c.latestAckTimestamp,
          ...sizes,
          num_subtasks: job.parallelism,
          num_acknowledged_subtasks: acked,
        },
      },
    };
    if (c.status === 'COMPLETED') {
      return { ...common, external_path: fileUri(c.directory!), discarded: c.discarded };
    }
    if (c.status === 'FAILED') {
      return { ...common, failure_timestamp: c.failureTimestamp, failure_message: c.failureMessage };
    }
    return common;
  }

  private checkpointingStatistics(job: SimJob): object {
    const completed = job.history.filter((c) => c.status === 'COMPLETED');
    const summary = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const at = (q: number) =>
        sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0;
      return {
        min: sorted[0] ?? 0,
        max: sorted.at(-1) ?? 0,
        avg: sorted.length ? Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length) : 0,
        p50: at(0.5),
        p90: at(0.9),
        p95: at(0.95),
        p99: at(0.99),
        p999: at(0.999),
      };
    };
    const latest: Record<string, object> = {};
    if (job.latestCompleted) latest['completed'] = this.checkpointStatistics(job, job.latestCompleted);
    if (job.latestSavepoint) latest['savepoint'] = this.checkpointStatistics(job, job.latestSavepoint);
    if (job.latestFailed) latest['failed'] = this.checkpointStatistics(job, job.latestFailed);
    if (job.restored) {
      latest['restored'] = {
        id: job.restored.id,
        restore_timestamp: job.restored.restoreTimestamp,
        is_savepoint: job.restored.isSavepoint,
        ...(job.restored.externalPath !== undefined ? { external_path: job.restored.externalPath } : {}),
      };
    }
    return {
      counts: { ...job.counts },
      summary: {
        checkpointed_size: summary(completed.map((c) => c.checkpointedSize)),
        state_size: summary(completed.map((c) => c.stateSize)),
        end_to_end_duration: summary(completed.map((c) => c.latestAckTimestamp - c.triggerTimestamp)),
        alignment_buffered: summary(completed.map(() => 0)),
        processed_data: summary(completed.map(() => 0)),
        persisted_data: summary(completed.map(() => 0)),
      },
      latest,
      history: job.history.map((c) => this.checkpointStatistics(job, c)),
    };
  }

  private checkpointConfig(job: SimJob): object {
    return {
      mode: 'EXACTLY_ONCE',
      // Flink reports Long.MAX_VALUE when periodic checkpoints are off (sent as such: see LONG_MAX).
      interval: job.intervalMs ?? LONG_MAX.stands_in,
      timeout: 600000,
      min_pause: 0,
      max_concurrent: 1,
      externalization: {
        enabled: job.retention !== 'NO_EXTERNALIZED_CHECKPOINTS',
        delete_on_cancellation: job.retention !== 'RETAIN_ON_CANCELLATION',
      },
      state_backend: 'EmbeddedRocksDBStateBackend',
      checkpoint_storage: 'FileSystemCheckpointStorage',
      unaligned_checkpoints: false,
      tolerable_failed_checkpoints: 0,
      aligned_checkpoint_timeout: 0,
      checkpoints_after_tasks_finish: true,
      state_changelog_enabled: false,
      changelog_periodic_materialization_interval: 600000,
      changelog_storage: 'memory',
    };
  }
}
