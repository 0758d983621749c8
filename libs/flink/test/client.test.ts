import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { FlinkTestServer } from '../../../test/flink/server';
import {
  SERIALIZED_FAILURE,
  SERIALIZED_FAILURE_LINE,
} from '../../../test/flink/serialized-throwable-fixture';
import { Circuit, FlinkError, FlinkRestClient, type CircuitChange, type FlinkClientOptions } from '../src';

const JOB = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const IDLE = 'b1b2c3d4e5f60718293a4b5c6d7e8f90';
const UNKNOWN = 'ffffffffffffffffffffffffffffffff';
const T1 = '0123456789abcdef0123456789abcdef';
const T2 = 'fedcba9876543210fedcba9876543210';
const SECRET = 'Bearer s3cr3t-token-value';

let server: FlinkTestServer;
let url: string;
let dir: string;

const client = (options: FlinkClientOptions = {}) =>
  new FlinkRestClient(
    { name: 'prod', restUrl: url, headers: { authorization: SECRET } },
    { backoffMs: 10, timeoutMs: 2_000, ...options },
  );

async function failure(promise: Promise<unknown>): Promise<FlinkError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(FlinkError);
    const flink = error as FlinkError;
    // Never a header value in what an error says or carries.
    expect(flink.message).not.toContain('s3cr3t');
    expect(inspect(flink, { depth: 5 })).not.toContain('s3cr3t');
    expect(JSON.stringify(flink)).not.toContain('s3cr3t');
    return flink;
  }
  throw new Error('expected a FlinkError');
}

/** Triggers a savepoint of JOB (trigger id T1) and follows it to its end. */
async function failedSavepoint(flink: FlinkRestClient) {
  await flink.triggerSavepoint(JOB, {
    targetDirectory: join(dir, 'sp'),
    formatType: 'CANONICAL',
    triggerId: T1,
  });
  return poll(() => flink.savepointStatus(JOB, T1));
}

async function poll<T extends { status: string }>(probe: () => Promise<T>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const answer = await probe();
    if (answer.status !== 'IN_PROGRESS') return answer;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('still in progress');
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'snapcat-flink-client-'));
  server = new FlinkTestServer({ checkpointDurationMs: 3, savepointDelayMs: 250, disposalDelayMs: 10 });
  ({ url } = await server.start());
  server.addJob(JOB, {
    name: 'orders',
    checkpointDir: join(dir, 'chk'),
    checkpointIntervalMs: 60_000,
    externalizedRetention: 'RETAIN_ON_CANCELLATION',
  });
  server.addJob(IDLE, { checkpointDir: join(dir, 'chk') });
});

afterEach(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('FlinkRestClient against the Flink test server', () => {
  it('reads a job, its checkpoints, a checkpoint and the checkpoint configuration', async () => {
    server.failNextCheckpoints(JOB, 1, 'Checkpoint expired before completing.');
    await server.checkpointNow(JOB);
    const ok = await server.checkpointNow(JOB);
    const flink = client();

    expect(await flink.job(JOB)).toEqual({ jobId: JOB, name: 'orders', state: 'RUNNING' });
    // Every job's status in one request: what the connector polls once per cluster.
    const overview = await flink.jobsOverview();
    expect(overview).toContainEqual({
      jobId: JOB,
      name: 'orders',
      state: 'RUNNING',
      lastModification: expect.any(Number),
    });
    // When the job last changed state, by the JobManager's clock; a value that is none is left out.
    expect(overview.find((j) => j.jobId === JOB)!.lastModification).toBeLessThanOrEqual(Date.now());
    server.reshapeAnswers('getJobsOverview', (body) => ({
      jobs: (body as { jobs: object[] }).jobs.map((j) => ({ ...j, 'last-modification': -1 })),
    }));
    expect((await flink.jobsOverview()).find((j) => j.jobId === JOB)).toEqual({
      jobId: JOB,
      name: 'orders',
      state: 'RUNNING',
    });
    server.reshapeAnswers('getJobsOverview', undefined);

    const stats = await flink.checkpoints(JOB);
    expect(stats.counts).toEqual({ restored: 0, total: 2, inProgress: 0, completed: 1, failed: 1 });
    expect(stats.history.map((c) => [c.id, c.status])).toEqual([
      [ok, 'COMPLETED'],
      [ok - 1, 'FAILED'],
    ]);
    expect(stats.latest.completed).toMatchObject({
      id: ok,
      status: 'COMPLETED',
      isSavepoint: false,
      savepointFormat: null,
      checkpointType: 'CHECKPOINT',
      externalPath: `file:${join(dir, 'chk', JOB, `chk-${ok}`)}`,
      discarded: false,
      numSubtasks: 2,
      numAcknowledgedSubtasks: 2,
      failureTimestamp: null,
      failureMessage: null,
    });
    expect(stats.latest.completed!.checkpointedSize).toBeLessThanOrEqual(stats.latest.completed!.stateSize);
    expect(stats.latest.failed).toMatchObject({
      id: ok - 1,
      status: 'FAILED',
      externalPath: null,
      failureMessage: 'Checkpoint expired before completing.',
    });
    expect(stats.latest.failed!.failureTimestamp).toEqual(expect.any(Number));
    expect(stats.latest.savepoint).toBeNull();
    expect(stats.latest.restored).toBeNull();

    expect(await flink.checkpointDetails(JOB, ok)).toEqual(stats.latest.completed);

    expect(await flink.checkpointConfig(JOB)).toEqual({
      mode: 'EXACTLY_ONCE',
      intervalMs: 60_000,
      timeoutMs: 600_000,
      minPauseMs: 0,
      maxConcurrent: 1,
      externalization: { enabled: true, deleteOnCancellation: false },
      stateBackend: 'EmbeddedRocksDBStateBackend',
      checkpointStorage: 'FileSystemCheckpointStorage',
      tolerableFailedCheckpoints: 0,
    });
    // Periodic checkpoints off: Flink says Long.MAX_VALUE.
    expect((await flink.checkpointConfig(IDLE)).intervalMs).toBeNull();
    expect(server.violations).toEqual([]);
  });

  it('reads what a failover restored from', async () => {
    server.configure({ restartDelayMs: 800 }); // long enough to see it restarting on a busy machine
    const last = await server.checkpointNow(JOB);
    server.failover(JOB);
    const flink = client();
    expect((await flink.job(JOB)).state).toBe('RESTARTING');
    for (let i = 0; i < 250 && (await flink.job(JOB)).state !== 'RUNNING'; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const stats = await flink.checkpoints(JOB);
    expect(stats.history).toEqual([]);
    expect(stats.latest.restored).toEqual({
      id: last,
      restoreTimestamp: expect.any(Number),
      isSavepoint: false,
      externalPath: `file:${join(dir, 'chk', JOB, `chk-${last}`)}`,
    });
    expect(server.violations).toEqual([]);
  });

  it('takes a savepoint, once per trigger id, and follows it to its location', async () => {
    server.configure({ savepointDelayMs: 1_000 }); // long enough to see it in progress on a busy machine
    const flink = client();
    const request = { targetDirectory: join(dir, 'sp'), formatType: 'NATIVE' as const, triggerId: T1 };
    expect(await flink.triggerSavepoint(JOB, request)).toEqual({ triggerId: T1 });
    expect(await flink.triggerSavepoint(JOB, request)).toEqual({ triggerId: T1 });
    expect(await flink.savepointStatus(JOB, T1)).toEqual({ status: 'IN_PROGRESS' });
    const done = await poll(() => flink.savepointStatus(JOB, T1));
    expect(done).toEqual({
      status: 'COMPLETED',
      location: expect.stringMatching(/savepoint-a1b2c3-[0-9a-f]{12}$/),
    });
    const stats = await flink.checkpoints(JOB);
    expect(stats.counts.completed).toBe(1);
    expect(stats.latest.savepoint).toMatchObject({
      isSavepoint: true,
      checkpointType: 'SAVEPOINT',
      savepointFormat: 'NATIVE',
      externalPath: (done as { location: string }).location,
    });
    expect(server.violations).toEqual([]);
  });

  it('retries a savepoint trigger whose answer was lost, and Flink takes one savepoint', async () => {
    let calls = 0;
    const lossy = client({
      fetch: async (input, init) => {
        calls += 1;
        const answer = await fetch(input, init);
        if (calls === 1)
          throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } });
        return answer;
      },
    });
    const request = { targetDirectory: join(dir, 'sp'), formatType: 'CANONICAL' as const, triggerId: T1 };
    expect(await lossy.triggerSavepoint(JOB, request)).toEqual({ triggerId: T1 });
    expect(calls).toBe(2);
    expect(server.requestsFor(JOB).map((r) => r.operationId)).toEqual([
      'triggerSavepoint',
      'triggerSavepoint',
    ]);
    await poll(() => lossy.savepointStatus(JOB, T1));
    expect((await lossy.checkpoints(JOB)).counts.total).toBe(1);
    expect(server.violations).toEqual([]);
  });

  it('reports a failed savepoint with its cause', async () => {
    server.failNextSavepoints(JOB, 1, 'Task has failed.');
    const flink = client();
    expect(await failedSavepoint(flink)).toEqual({
      status: 'FAILED',
      cause: 'org.apache.flink.runtime.checkpoint.CheckpointException: Task has failed.',
    });
    const unknown = await failure(flink.savepointStatus(JOB, T2));
    expect(unknown.kind).toBe('not-found');
    expect(server.violations).toEqual([]);
  });

  it('reads a failed savepoint’s cause from the serialized throwable when that is all the answer holds (the published description’s one property)', async () => {
    server.reshapeAnswers('getSavepointStatus', (body) => {
      const { status, operation } = body as { status: unknown; operation?: Record<string, unknown> };
      return operation?.['failure-cause']
        ? { status, operation: { 'failure-cause': { 'serialized-throwable': SERIALIZED_FAILURE } } }
        : body;
    });
    server.failNextSavepoints(JOB, 1);
    expect(await failedSavepoint(client())).toEqual({ status: 'FAILED', cause: SERIALIZED_FAILURE_LINE });
    expect(server.violations).toEqual([]);
  });

  it('stops a job with a savepoint', async () => {
    const flink = client();
    const request = {
      targetDirectory: join(dir, 'sp'),
      drain: false,
      formatType: 'CANONICAL' as const,
      triggerId: T2,
    };
    expect(await flink.stopWithSavepoint(JOB, request)).toEqual({ triggerId: T2 });
    const done = await poll(() => flink.savepointStatus(JOB, T2));
    expect(done.status).toBe('COMPLETED');
    expect((await flink.job(JOB)).state).toBe('FINISHED');
    expect((await flink.checkpoints(JOB)).latest.savepoint?.checkpointType).toBe('SYNC_SAVEPOINT');
    expect(server.violations).toEqual([]);
  });

  it('disposes a savepoint, and reports a disposal that fails once', async () => {
    const flink = client();
    await flink.triggerSavepoint(JOB, {
      targetDirectory: join(dir, 'sp'),
      formatType: 'CANONICAL',
      triggerId: T1,
    });
    const { location } = (await poll(() => flink.savepointStatus(JOB, T1))) as { location: string };
    server.failNextDisposals(1, 'Permission denied.');
    const first = await flink.disposeSavepoint(location);
    expect(first.triggerId).toMatch(/^[0-9a-f]{32}$/);
    expect(await poll(() => flink.disposalStatus(first.triggerId))).toEqual({
      status: 'FAILED',
      cause: 'java.io.IOException: Permission denied.',
    });
    expect(existsSync(location.replace(/^file:/, ''))).toBe(true);
    const second = await flink.disposeSavepoint(location);
    expect(await poll(() => flink.disposalStatus(second.triggerId))).toEqual({ status: 'COMPLETED' });
    expect(existsSync(location.replace(/^file:/, ''))).toBe(false);
    expect(server.violations).toEqual([]);
  });

  it('retries 503 answers with backoff, then succeeds', async () => {
    await server.outage(true);
    setTimeout(() => void server.outage(false), 150);
    const started = Date.now();
    const job = await client({ retries: 5, backoffMs: 40 }).job(JOB);
    expect(job.state).toBe('RUNNING');
    const answers = server.requestsFor(JOB, started).map((r) => r.status);
    expect(answers.length).toBeGreaterThanOrEqual(2);
    expect(answers.at(-1)).toBe(200);
    expect(answers.slice(0, -1).every((s) => s === 503)).toBe(true);
    expect(server.violations).toEqual([]);
  });

  it('gives up after the retries with kind server', async () => {
    await server.outage(true);
    const error = await failure(client({ retries: 2 }).job(JOB));
    expect(error).toMatchObject({
      kind: 'server',
      status: 503,
      details: expect.objectContaining({ attempts: 3 }),
    });
    expect(error.message).toContain('leader election');
    expect(error.transient).toBe(true);
    expect(server.requestsFor(JOB)).toHaveLength(3);
  });

  it('retries a 500, but a 500 is one request failing, not the cluster: it never opens the shared circuit', async () => {
    const circuit = new Circuit({ failureThreshold: 2, coolDownMs: 60_000 });
    let sent = 0;
    const failing = client({
      retries: 3,
      circuit,
      fetch: async () => {
        sent += 1;
        return new Response(JSON.stringify({ errors: ['Internal server error.'] }), { status: 500 });
      },
    });
    const error = await failure(failing.checkpoints(JOB));
    expect(error).toMatchObject({
      kind: 'server',
      status: 500,
      details: expect.objectContaining({ attempts: 4 }),
    });
    expect(sent).toBe(4);
    expect(circuit.state).toBe('CLOSED');
    const down = client({ retries: 1, circuit, fetch: async () => new Response('', { status: 503 }) });
    await failure(down.checkpoints(JOB));
    expect(circuit.state).toBe('OPEN');
  });

  it('takes a 408 as a timeout: asked again (a trigger with its trigger id), then transient, not refused', async () => {
    let sent = 0;
    const slowProxy = () =>
      client({
        retries: 2,
        backoffMs: 1,
        fetch: async () => {
          sent += 1;
          return new Response('', { status: 408 });
        },
      });
    const query = await failure(slowProxy().checkpoints(JOB));
    expect(query).toMatchObject({ kind: 'timeout', status: 408 });
    expect(query.transient).toBe(true);
    expect(sent).toBe(3);
    sent = 0;
    const request = { targetDirectory: '/tmp/sp', formatType: 'CANONICAL' as const, triggerId: T1 };
    const trigger = await failure(slowProxy().triggerSavepoint(JOB, request));
    expect(trigger).toMatchObject({ kind: 'timeout', status: 408 });
    expect(sent).toBe(3);
  });

  it('says whether any attempt of a failed call may have been taken by Flink (a trigger whose answer was lost), through its retries', async () => {
    const request = { targetDirectory: '/tmp/sp', formatType: 'CANONICAL' as const, triggerId: T1 };
    const answering = (...answers: (number | 'timeout' | 'refused')[]) => {
      let sent = 0;
      return client({
        retries: answers.length - 1,
        backoffMs: 1,
        timeoutMs: 50,
        fetch: async () => {
          const answer = answers[sent++]!;
          if (answer === 'refused') {
            throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
          }
          if (answer === 'timeout') throw Object.assign(new Error('timed out'), { name: 'TimeoutError' });
          return new Response('', { status: answer });
        },
      });
    };
    const taken = async (...answers: (number | 'timeout' | 'refused')[]) =>
      (await failure(answering(...answers).triggerSavepoint(JOB, request))).details.mayHaveBeenTaken;
    // Refused before Flink took it: no leader (503, retried by the client), a 4xx, a connection refused.
    expect(await taken(503, 503, 503, 503)).toBe(false);
    expect(await taken(429)).toBe(false);
    expect(await taken('refused', 503)).toBe(false);
    // Any attempt Flink may have taken makes the call one that may have been.
    expect(await taken('timeout', 503, 503)).toBe(true);
    expect(await taken(503, 502)).toBe(true);
    expect(await taken(408, 408)).toBe(true);
  });

  it('retries a refused connection, and reports it as unreachable', async () => {
    await server.outage(true, 'refuse');
    const error = await failure(client({ retries: 1 }).job(JOB));
    expect(error.kind).toBe('unreachable');
    expect(error.details.attempts).toBe(2);
    expect(error.message).toContain('ECONNREFUSED');
    await server.outage(false);
  });

  it('does not retry a 404 or a 400', async () => {
    const flink = client();
    const notFound = await failure(flink.job(UNKNOWN));
    expect(notFound).toMatchObject({ kind: 'not-found', status: 404 });
    expect(notFound.message).toBe(
      `Flink cluster "prod": GET /jobs/${UNKNOWN}: answered 404: Job ${UNKNOWN} not found`,
    );
    expect(server.requestsFor(UNKNOWN)).toHaveLength(1);

    // A request Flink would refuse (sent through a fetch that spoils the body).
    const spoiled = client({
      fetch: (input, init) => fetch(input, { ...init, body: JSON.stringify({ 'cancel-job': 'maybe' }) }),
    });
    const rejected = await failure(
      spoiled.triggerSavepoint(JOB, { targetDirectory: dir, formatType: 'CANONICAL', triggerId: T1 }),
    );
    expect(rejected).toMatchObject({ kind: 'rejected', status: 400 });
    expect(server.requestsFor(JOB)).toHaveLength(1);
    expect(server.violations).toEqual([
      expect.objectContaining({ kind: 'request', operationId: 'triggerSavepoint' }),
    ]);
    server.violations.length = 0;
  });

  it('times out on a slow server', async () => {
    server.delay(1_000);
    const started = Date.now();
    const error = await failure(client({ timeoutMs: 100, retries: 1 }).job(JOB));
    expect(error.kind).toBe('timeout');
    expect(error.details.attempts).toBe(2);
    expect(Date.now() - started).toBeLessThan(900);
    server.delay(0);
  });

  it('retries a disposal only when it surely did not reach Flink', async () => {
    let calls = 0;
    const flaky = (status: number) =>
      client({
        fetch: async (input, init) => {
          calls += 1;
          if (calls === 1) return new Response(JSON.stringify({ errors: ['proxy'] }), { status });
          return fetch(input, init);
        },
      });
    calls = 0;
    const bad = await failure(flaky(502).disposeSavepoint(join(dir, 'nothing')));
    expect(bad).toMatchObject({ kind: 'server', status: 502 });
    expect(calls).toBe(1);
    calls = 0;
    expect((await flaky(503).disposeSavepoint(join(dir, 'nothing'))).triggerId).toMatch(/^[0-9a-f]{32}$/);
    expect(calls).toBe(2);
    expect(server.violations).toEqual([]);
  });

  it('a malformed answer is a protocol error', async () => {
    const garbled = client({
      fetch: async () =>
        new Response(JSON.stringify({ jid: JOB, name: 'x', state: 'DANCING' }), { status: 200 }),
    });
    const error = await failure(garbled.job(JOB));
    expect(error.kind).toBe('protocol');
    expect(error.message).toContain('state');
    const notJson = client({ fetch: async () => new Response('<html>', { status: 200 }) });
    expect((await failure(notJson.job(JOB))).kind).toBe('protocol');
  });

  it('reads what the spec allows a server to leave out, and leaves out (and counts) a list entry it cannot read', async () => {
    const answer = (body: unknown) => new Response(JSON.stringify(body), { status: 200 });
    const sparse = client({
      fetch: async (input) =>
        String(input).endsWith('/jobs/overview')
          ? answer({
              jobs: [
                { jid: JOB, state: 'RUNNING' },
                { jid: IDLE, name: 'x', state: 'NEW_IN_FLINK_3' },
              ],
            })
          : answer({
              history: [
                { id: 2, status: 'IN_PROGRESS', trigger_timestamp: 1_000 },
                { status: 'COMPLETED', trigger_timestamp: 900 },
                { id: 1, status: 'COMPLETED', trigger_timestamp: 500, external_path: 'file:/c/chk-1' },
                {
                  id: 0,
                  status: 'COMPLETED',
                  trigger_timestamp: 400,
                  external_path: '<checkpoint-not-externally-addressable>',
                },
              ],
              latest: { completed: { id: 'one' }, restored: null },
            }),
    });
    expect(await sparse.jobsOverview()).toEqual([{ jobId: JOB, name: '', state: 'RUNNING' }]);
    const stats = await sparse.checkpoints(JOB);
    expect(stats.history.map((c) => c.id)).toEqual([2, 1, 0]);
    expect(stats.unreadable).toBe(1);
    expect(stats.history[0]).toMatchObject({
      isSavepoint: false,
      checkpointType: 'CHECKPOINT',
      latestAckTimestamp: -1,
      stateSize: 0,
      numSubtasks: 0,
    });
    expect(stats.history[1]).toMatchObject({
      externalPath: 'file:/c/chk-1',
      externallyAddressable: true,
      checkpointedSize: 0,
    });
    // Left out, the path says nothing; Flink's literal says the checkpoint is in the JobManager's memory only.
    expect(stats.history[0]).toMatchObject({ externalPath: null, externallyAddressable: true });
    expect(stats.history[2]).toMatchObject({ externalPath: null, externallyAddressable: false });
    expect(stats.counts).toEqual({ restored: 0, total: 0, inProgress: 0, completed: 0, failed: 0 });
    expect(stats.latest.completed).toBeNull();
  });

  it('reads null as left out, wherever a server writes it (Jackson writes null for what it does not know)', async () => {
    const answer = (body: unknown) => new Response(JSON.stringify(body), { status: 200 });
    const nulls = client({
      fetch: async (input) => {
        const path = String(input);
        if (path.endsWith('/jobs/overview'))
          return answer({ jobs: [{ jid: JOB, name: null, state: 'RUNNING' }, null] });
        if (path.endsWith('/savepoints')) return answer({ 'request-id': null });
        return answer({
          counts: { restored: null, total: 2, in_progress: null, completed: 2, failed: null },
          history: [
            {
              id: 3,
              status: 'COMPLETED',
              is_savepoint: null,
              checkpoint_type: null,
              trigger_timestamp: 900,
              latest_ack_timestamp: null,
              state_size: null,
              checkpointed_size: null,
              external_path: 'file:/c/chk-3',
              discarded: null,
              num_subtasks: null,
              num_acknowledged_subtasks: null,
              failure_timestamp: null,
              failure_message: null,
              savepointFormat: null,
            },
          ],
          latest: { completed: null, savepoint: null, failed: null, restored: null },
        });
      },
    });
    expect(await nulls.jobsOverview()).toEqual([{ jobId: JOB, name: '', state: 'RUNNING' }]);
    const stats = await nulls.checkpoints(JOB);
    expect(stats.counts).toEqual({ restored: 0, total: 2, inProgress: 0, completed: 2, failed: 0 });
    expect(stats.unreadable).toBe(0);
    expect(stats.history[0]).toMatchObject({
      id: 3,
      isSavepoint: false,
      checkpointType: 'CHECKPOINT',
      latestAckTimestamp: -1,
      stateSize: 0,
      checkpointedSize: 0,
      discarded: false,
      numSubtasks: 0,
      failureMessage: null,
      savepointFormat: null,
    });
    const request = { targetDirectory: join(dir, 'sp'), formatType: 'CANONICAL' as const, triggerId: T1 };
    expect(await nulls.triggerSavepoint(JOB, request)).toEqual({ triggerId: T1 });
  });

  it('a savepoint that says neither whether it is one nor its type is told by its directory name', async () => {
    const answer = (body: unknown) => new Response(JSON.stringify(body), { status: 200 });
    const sparse = client({
      fetch: async () =>
        answer({
          history: [
            {
              className: 'completed',
              id: 7,
              trigger_timestamp: 2,
              external_path: 's3://b/sp/savepoint-a1b2c3-0123456789ab',
            },
            { className: 'completed', id: 6, trigger_timestamp: 1, external_path: 's3://b/chk/a1b2c3/chk-6' },
          ],
        }),
    });
    const stats = await sparse.checkpoints(JOB);
    expect(stats.history.map((c) => [c.id, c.status, c.isSavepoint])).toEqual([
      [7, 'COMPLETED', true],
      [6, 'COMPLETED', false],
    ]);
  });

  it('a stop whose job failed while stopping completes with the savepoint Flink names in the failure', async () => {
    const location = 'file:/data/sp/savepoint-a1b2c3-0123456789ab';
    const trace =
      'java.util.concurrent.CompletionException: org.apache.flink.runtime.scheduler.stopwithsavepoint.' +
      `StopWithSavepointStoppingException: A savepoint has been created at: ${location}, but the corresponding job ` +
      `${JOB} failed during stopping. The savepoint is consistent, but might have uncommitted transactions.\n\tat x(Y.java:1)`;
    const answers = [
      { status: { id: 'COMPLETED' }, operation: { 'failure-cause': { 'stack-trace': trace } } },
      // Another job's stop (its id in the message) says nothing of this one's: the failure is this savepoint's.
      {
        status: { id: 'COMPLETED' },
        operation: { 'failure-cause': { 'stack-trace': trace.replace(JOB, IDLE) } },
      },
      // Any other failure is the savepoint's.
      {
        status: { id: 'COMPLETED' },
        operation: { 'failure-cause': { 'stack-trace': 'java.io.IOException: disk full' } },
      },
      { status: { id: 'COMPLETED' }, operation: {} },
    ];
    const stopped = client({
      fetch: async () => new Response(JSON.stringify(answers.shift()), { status: 200 }),
    });
    expect(await stopped.savepointStatus(JOB, T1)).toEqual({
      status: 'COMPLETED',
      location,
      stopFailure: expect.stringContaining('StopWithSavepointStoppingException'),
    });
    expect(await stopped.savepointStatus(JOB, T1)).toMatchObject({ status: 'FAILED' });
    expect(await stopped.savepointStatus(JOB, T1)).toEqual({
      status: 'FAILED',
      cause: 'java.io.IOException: disk full',
    });
    // Completed without a location (the spec requires none): told as such, for the history to name it.
    expect(await stopped.savepointStatus(JOB, T1)).toEqual({ status: 'COMPLETED', location: null });
  });

  it('reads a server that answers only what the spec requires, or in another form it allows (every answer checked against the spec)', async () => {
    type Entry = Record<string, unknown>;
    // CheckpointStatistics requires only className: no status, no is_savepoint, no trigger_timestamp.
    const bare = ({ className, id, checkpoint_type, external_path }: Entry) => ({
      className,
      id,
      checkpoint_type,
      ...(external_path !== undefined ? { external_path } : {}),
    });
    server.reshapeAnswers('getCheckpointingStatistics', (body) => ({
      history: ((body as { history: Entry[] }).history ?? []).map(bare),
    }));
    server.reshapeAnswers('getCheckpointConfig', () => ({}));
    server.reshapeAnswers('triggerSavepoint', () => ({}));
    const flink = client();
    const config = await flink.checkpointConfig(JOB);
    expect(config).toMatchObject({ mode: null, timeoutMs: null, maxConcurrent: null, externalization: null });
    // Without `request-id` in the answer, the savepoint is followed by the trigger id the request gave.
    const request = { targetDirectory: join(dir, 'sp'), formatType: 'CANONICAL' as const, triggerId: T1 };
    expect(await flink.triggerSavepoint(JOB, request)).toEqual({ triggerId: T1 });
    const done = await poll(() => flink.savepointStatus(JOB, T1));
    expect(done.status).toBe('COMPLETED');
    await server.checkpointNow(JOB);
    const stats = await flink.checkpoints(JOB);
    expect(stats.unreadable).toBe(0);
    const byType = (type: string) => stats.history.find((c) => c.checkpointType === type);
    expect(byType('SAVEPOINT')).toMatchObject({ status: 'COMPLETED', isSavepoint: true });
    expect(byType('CHECKPOINT')).toMatchObject({ status: 'COMPLETED', isSavepoint: false });
    // What a job restored from, without the flag: a savepoint's directory name tells it.
    const savepointDir = `file:${join(dir, 'sp', 'savepoint-a1b2c3-0123456789ab')}`;
    server.restore(JOB, { externalPath: savepointDir, isSavepoint: true });
    server.reshapeAnswers('getCheckpointingStatistics', (body) => {
      const { id, restore_timestamp, external_path } = (body as { latest: { restored: Entry } }).latest
        .restored;
      return { latest: { restored: { id, restore_timestamp, external_path } } };
    });
    expect((await flink.checkpoints(JOB)).latest.restored).toMatchObject({
      isSavepoint: true,
      externalPath: savepointDir,
    });
    // A disposal's failure in the CheckpointInfo form the spec's `operation` also allows.
    server.reshapeAnswers('getSavepointDisposalStatus', () => ({
      status: { id: 'COMPLETED' },
      operation: { failureCause: { 'serialized-throwable': SERIALIZED_FAILURE } },
    }));
    const disposal = await flink.disposeSavepoint((done as { location: string }).location);
    expect(await flink.disposalStatus(disposal.triggerId)).toEqual({
      status: 'FAILED',
      cause: SERIALIZED_FAILURE_LINE,
    });
    expect(server.violations).toEqual([]);
  });

  it('a redirect (a proxy sending http to https, say) is refused as such, not followed, and not an outage', async () => {
    const proxy = createServer((_req, res) => {
      res.writeHead(301, { location: 'https://flink.example.com/jobs/overview' }).end();
    });
    await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
    try {
      const circuit = new Circuit({ failureThreshold: 1, coolDownMs: 60_000 });
      const redirected = new FlinkRestClient(
        { name: 'prod', restUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` },
        { backoffMs: 10, circuit },
      );
      const error = await failure(redirected.jobsOverview());
      expect(error.kind).toBe('rejected');
      expect(error.details.attempts).toBe(1);
      expect(error.message).toContain('a redirect to https://flink.example.com/jobs/overview');
      expect(circuit.state).toBe('CLOSED'); // the cluster answered: no outage
    } finally {
      await new Promise((done) => proxy.close(done));
    }
  });

  it('cuts header values out of what Flink echoes', async () => {
    const echo = client({
      fetch: async () =>
        new Response(JSON.stringify({ errors: [`Unauthorized: ${SECRET}`] }), { status: 401 }),
    });
    const error = await failure(echo.job(JOB));
    expect(error.message).toContain('[redacted]');
  });

  it('cuts out the token of a `Bearer <token>` header when Flink echoes it alone', async () => {
    const echo = client({
      fetch: async () =>
        new Response(JSON.stringify({ errors: ['token s3cr3t-token-value is not valid'] }), { status: 401 }),
    });
    const error = await failure(echo.job(JOB)); // failure() asserts no 's3cr3t' anywhere in the error
    expect(error.message).toContain('token [redacted] is not valid');
  });

  it('refuses a REST URL with credentials, without repeating them', () => {
    expect(() => new FlinkRestClient({ name: 'x', restUrl: 'http://user:s3cr3t@flink:8081' })).toThrow(
      /^(?!.*s3cr3t).*credentials/,
    );
  });

  it('a shared circuit opens after K failures, fails fast, half-opens after the cool-down and closes', async () => {
    const circuit = new Circuit({ failureThreshold: 3, coolDownMs: 300 });
    const changes: CircuitChange[] = [];
    circuit.onChange((c) => changes.push(c));
    const a = client({ circuit, retries: 0 });
    const b = client({ circuit, retries: 1 });
    await server.outage(true);
    expect((await failure(a.job(JOB))).kind).toBe('server');
    expect((await failure(b.job(JOB))).details.attempts).toBe(2); // failures 2 and 3: open
    expect(circuit.state).toBe('OPEN');
    expect(changes).toEqual(['unreachable']);
    await server.outage(false);

    const sent = server.requests.length;
    const fast = await failure(a.job(JOB));
    expect(fast).toMatchObject({
      kind: 'unreachable',
      details: expect.objectContaining({ failedFast: true }),
    });
    expect(fast.details.attempts).toBe(0);
    await failure(b.checkpoints(JOB));
    expect(server.requests.length).toBe(sent); // nothing was sent

    await new Promise((r) => setTimeout(r, 320));
    expect(circuit.state).toBe('HALF_OPEN');
    expect((await b.job(JOB)).state).toBe('RUNNING'); // the probe
    expect(circuit.state).toBe('CLOSED');
    expect(changes).toEqual(['unreachable', 'reachable']);
    expect((await a.checkpoints(JOB)).counts.total).toBe(0);
    expect(server.violations).toEqual([]);
  });

  it('refuses ids that are not Flink ids without sending anything', async () => {
    await expect(client().job('../../etc')).rejects.toThrow(TypeError);
    expect(server.requests).toHaveLength(0);
  });
});
