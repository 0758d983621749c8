import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../support/wait';
import { FlinkTestServer } from './server';

const JOB = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const OTHER = 'ffffffffffffffffffffffffffffffff';
const TRIGGER = '0123456789abcdef0123456789abcdef';

let server: FlinkTestServer;
let url: string;
let dir: string;

const get = async (path: string) => {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { [k: string]: never } };
};
const post = async (path: string, body: unknown) => {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { [k: string]: never } };
};
const local = (uri: string) => uri.replace(/^file:/, '');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'snapcat-flink-'));
  server = new FlinkTestServer({
    checkpointDurationMs: 3,
    savepointDelayMs: 150,
    disposalDelayMs: 10,
    restartDelayMs: 800,
  });
  ({ url } = await server.start());
});

afterEach(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the Flink test server', () => {
  it('answers a job with its details', async () => {
    server.addJob(JOB, { name: 'orders', checkpointDir: join(dir, 'chk') });
    const { status, body } = await get(`/jobs/${JOB}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ jid: JOB, name: 'orders', state: 'RUNNING', 'end-time': -1 });
    expect(typeof body['start-time']).toBe('number');
    expect(server.violations).toEqual([]);
  });

  it('answers 404 with an ErrorResponseBody for an unknown job and an unknown path', async () => {
    const job = await get(`/jobs/${OTHER}`);
    expect(job.status).toBe(404);
    expect(job.body['errors']).toEqual([expect.stringContaining(OTHER)]);
    expect(server.violations).toEqual([]);
    const path = await get('/no/such/path');
    expect(path.status).toBe(404);
    expect(path.body['errors']).toHaveLength(1);
    expect(server.violations).toEqual([expect.objectContaining({ kind: 'unknown-path' })]);
  });

  it('records an answer of its own that does not match the spec', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    server.job(JOB).state = 'BOGUS' as never; // a simulation bug
    expect((await get(`/jobs/${JOB}`)).status).toBe(200);
    expect(server.violations).toEqual([
      expect.objectContaining({ kind: 'response', operationId: 'getJobDetails', errors: expect.any(Array) }),
    ]);
  });

  it('answers 400 to a request that does not match the spec, and records it', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    const wrongType = await post(`/jobs/${JOB}/savepoints`, { 'cancel-job': 'yes' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body['errors']).toHaveLength(1);
    // Flink's strict mapper refuses unknown properties: disposal requests have no triggerId.
    const unknown = await post('/savepoint-disposal', { 'savepoint-path': '/x', triggerId: TRIGGER });
    expect(unknown.status).toBe(400);
    const badJobId = await get('/jobs/not-a-job-id/checkpoints');
    expect(badJobId.status).toBe(400);
    const badCheckpointId = await get(`/jobs/${JOB}/checkpoints/details/latest`);
    expect(badCheckpointId.status).toBe(400);
    expect(server.violations.map((v) => [v.kind, v.operationId])).toEqual([
      ['request', 'triggerSavepoint'],
      ['request', 'triggerSavepointDisposal'],
      ['request', 'getCheckpointingStatistics'],
      ['request', 'getCheckpointStatisticDetails'],
    ]);
    expect(server.job(JOB).history).toEqual([]);
  });

  it('takes incremental checkpoints that write files, keeps the newest 10 in the history and subsumes', async () => {
    server.addJob(JOB, {
      checkpointDir: join(dir, 'chk'),
      checkpointIntervalMs: 5,
      externalizedRetention: 'RETAIN_ON_CANCELLATION',
    });
    await eventually(() => server.job(JOB).counts.completed >= 13, 10_000, '13 checkpoints');
    server.setJobState(JOB, 'SUSPENDED'); // no more checkpoints
    await eventually(() => server.job(JOB).counts.in_progress === 0, 5_000, 'no checkpoint in progress');
    const { body } = (await get(`/jobs/${JOB}/checkpoints`)) as Json;
    expect(body.history).toHaveLength(10);
    expect(body.counts.total).toBe(body.counts.completed);
    expect(body.counts.completed).toBeGreaterThanOrEqual(13);
    const ids = body.history.map((c: Json) => c.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => b - a)); // newest first
    expect(body.latest.completed.id).toBe(ids[0]);
    const newest = body.history[0];
    expect(newest).toMatchObject({
      className: 'completed',
      status: 'COMPLETED',
      is_savepoint: false,
      checkpoint_type: 'CHECKPOINT',
      discarded: false,
    });
    expect(newest.checkpointed_size).toBeLessThan(newest.state_size);
    expect(existsSync(join(local(newest.external_path), '_metadata'))).toBe(true);
    expect(readdirSync(join(dir, 'chk', JOB, 'shared')).length).toBe(body.counts.completed);
    // numRetained 1: only the newest chk-N directory is left.
    expect(readdirSync(join(dir, 'chk', JOB)).sort()).toEqual([`chk-${newest.id}`, 'shared']);
    const older = (await get(`/jobs/${JOB}/checkpoints/details/${ids[1]}`)) as Json;
    expect(older.body).toMatchObject({ id: ids[1], discarded: true });
    const evicted = await get(`/jobs/${JOB}/checkpoints/details/1`);
    expect(evicted.status).toBe(404);
    const config = (await get(`/jobs/${JOB}/checkpoints/config`)) as Json;
    expect(config.body).toMatchObject({
      interval: 5,
      externalization: { enabled: true, delete_on_cancellation: false },
    });
    expect(server.violations).toEqual([]);
  });

  it('answers Long.MAX_VALUE as the interval of a job without periodic checkpoints, digit for digit', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    const text = await (await fetch(`${url}/jobs/${JOB}/checkpoints/config`)).text();
    expect(text).toContain('"interval":9223372036854775807,');
    expect(server.violations).toEqual([]);
  });

  it('reports a failed checkpoint with its message', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    server.failNextCheckpoints(JOB, 1, 'Checkpoint expired before completing.');
    const failed = await server.checkpointNow(JOB);
    const ok = await server.checkpointNow(JOB);
    expect(ok).toBe(failed + 1);
    const { body } = (await get(`/jobs/${JOB}/checkpoints`)) as Json;
    expect(body.counts).toMatchObject({ completed: 1, failed: 1, total: 2, in_progress: 0 });
    expect(body.latest.failed).toMatchObject({
      id: failed,
      className: 'failed',
      status: 'FAILED',
      failure_message: 'Checkpoint expired before completing.',
    });
    expect(server.violations).toEqual([]);
  });

  it('takes one savepoint for one trigger id, from the checkpoint id counter', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    await server.checkpointNow(JOB);
    const target = join(dir, 'savepoints');
    server.configure({ savepointDelayMs: 1_000 }); // long enough to see it in progress on a busy machine
    const request = {
      'target-directory': target,
      'cancel-job': false,
      formatType: 'NATIVE',
      triggerId: TRIGGER,
    };
    const first = await post(`/jobs/${JOB}/savepoints`, request);
    const second = await post(`/jobs/${JOB}/savepoints`, request);
    expect(first).toEqual({ status: 202, body: { 'request-id': TRIGGER } });
    expect(second).toEqual(first);
    expect((await get(`/jobs/${JOB}/savepoints/${TRIGGER}`)).body).toEqual({ status: { id: 'IN_PROGRESS' } });
    await eventually(
      async () => ((await get(`/jobs/${JOB}/savepoints/${TRIGGER}`)).body as Json).status.id === 'COMPLETED',
      5_000,
    );
    const done = (await get(`/jobs/${JOB}/savepoints/${TRIGGER}`)).body as Json;
    expect(done.operation.location).toMatch(
      new RegExp(`^file:${target}/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`),
    );
    expect(existsSync(join(local(done.operation.location), '_metadata'))).toBe(true);
    expect(readdirSync(target)).toHaveLength(1);
    const stats = (await get(`/jobs/${JOB}/checkpoints`)).body as Json;
    expect(stats.latest.savepoint).toMatchObject({
      id: 2,
      is_savepoint: true,
      checkpoint_type: 'SAVEPOINT',
      savepointFormat: 'NATIVE',
      external_path: done.operation.location,
    });
    expect(stats.counts.total).toBe(2);
    // A savepoint without a trigger id gets a new one.
    const fresh = (await post(`/jobs/${JOB}/savepoints`, { 'target-directory': target })).body as Json;
    expect(fresh['request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh['request-id']).not.toBe(TRIGGER);
    expect(server.violations).toEqual([]);
  });

  it('fails a savepoint with a failure-cause, and answers 404 for an unknown trigger id', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    server.failNextSavepoints(JOB, 1, 'Task has failed.');
    await post(`/jobs/${JOB}/savepoints`, { 'target-directory': join(dir, 'sp'), triggerId: TRIGGER });
    await eventually(() => server.job(JOB).savepoints.get(TRIGGER)?.status === 'COMPLETED', 5_000);
    const { body } = (await get(`/jobs/${JOB}/savepoints/${TRIGGER}`)) as Json;
    expect(body.status.id).toBe('COMPLETED');
    expect(body.operation['failure-cause']).toMatchObject({
      class: 'org.apache.flink.runtime.checkpoint.CheckpointException',
      'stack-trace': expect.stringContaining('Task has failed.'),
    });
    expect(server.job(JOB).latestFailed?.checkpointType).toBe('SAVEPOINT');
    expect((await get(`/jobs/${JOB}/savepoints/${OTHER}`)).status).toBe(404);
    expect(server.violations).toEqual([]);
  });

  it('stops a job with a synchronous savepoint', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    const res = await post(`/jobs/${JOB}/stop`, {
      targetDirectory: join(dir, 'sp'),
      drain: true,
      formatType: 'CANONICAL',
      triggerId: TRIGGER,
    });
    expect(res).toEqual({ status: 202, body: { 'request-id': TRIGGER } });
    await eventually(() => server.job(JOB).state === 'FINISHED', 5_000, 'FINISHED');
    const { body } = (await get(`/jobs/${JOB}/checkpoints`)) as Json;
    expect(body.latest.savepoint).toMatchObject({
      checkpoint_type: 'SYNC_SAVEPOINT',
      savepointFormat: 'CANONICAL',
    });
    expect(((await get(`/jobs/${JOB}`)).body as Json)['end-time']).toBeGreaterThan(0);
    expect(server.violations).toEqual([]);
  });

  it('disposes a savepoint, and fails a disposal once when told to', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    await post(`/jobs/${JOB}/savepoints`, { 'target-directory': join(dir, 'sp'), triggerId: TRIGGER });
    await eventually(() => server.job(JOB).savepoints.get(TRIGGER)?.location !== undefined, 5_000);
    const location = server.job(JOB).savepoints.get(TRIGGER)!.location!;
    server.failNextDisposals(1, 'Permission denied.');
    const first = (await post('/savepoint-disposal', { 'savepoint-path': location })) as Json;
    expect(first.status).toBe(200);
    const id = first.body['request-id'];
    await eventually(
      async () => ((await get(`/savepoint-disposal/${id}`)).body as Json).status.id === 'COMPLETED',
      5_000,
    );
    const failed = (await get(`/savepoint-disposal/${id}`)).body as Json;
    expect(failed.operation['failure-cause']['stack-trace']).toContain('Permission denied.');
    expect(existsSync(local(location))).toBe(true);
    const second = (await post('/savepoint-disposal', { 'savepoint-path': location })).body as Json;
    await eventually(
      async () =>
        ((await get(`/savepoint-disposal/${second['request-id']}`)).body as Json).status.id === 'COMPLETED',
      5_000,
    );
    expect(((await get(`/savepoint-disposal/${second['request-id']}`)).body as Json).operation).toEqual({});
    expect(existsSync(local(location))).toBe(false);
    expect(server.violations).toEqual([]);
  });

  it('a failover empties the statistics, ids continue and latest.restored names the checkpoint', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    await server.checkpointNow(JOB);
    const last = await server.checkpointNow(JOB);
    server.failover(JOB);
    expect(((await get(`/jobs/${JOB}`)).body as Json).state).toBe('RESTARTING');
    const empty = (await get(`/jobs/${JOB}/checkpoints`)).body as Json;
    expect(empty.history).toEqual([]);
    expect(empty.counts).toEqual({ restored: 0, total: 0, in_progress: 0, completed: 0, failed: 0 });
    expect(empty.latest).toEqual({});
    await eventually(() => server.job(JOB).state === 'RUNNING', 5_000, 'RUNNING');
    const next = await server.checkpointNow(JOB);
    expect(next).toBe(last + 1);
    const after = (await get(`/jobs/${JOB}/checkpoints`)).body as Json;
    expect(after.latest.restored).toMatchObject({ id: last, is_savepoint: false });
    expect(after.latest.restored.external_path).toBe(`file:${join(dir, 'chk', JOB, `chk-${last}`)}`);
    expect(after.counts).toMatchObject({ restored: 1, completed: 1, total: 1 });
    server.restore(JOB, { externalPath: 'file:/sp/savepoint-a1b2c3-000000000000', isSavepoint: true });
    const restored = (await get(`/jobs/${JOB}/checkpoints`)).body as Json;
    expect(restored.latest.restored).toMatchObject({
      is_savepoint: true,
      external_path: 'file:/sp/savepoint-a1b2c3-000000000000',
    });
    expect(server.violations).toEqual([]);
  });

  it('a failover aborts the checkpoint in flight: it never completes and its id is not used again', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    const first = await server.checkpointNow(JOB);
    const aborted = server.checkpointNow(JOB);
    server.failover(JOB);
    expect(await aborted).toBe(first + 1);
    const during = (await get(`/jobs/${JOB}/checkpoints`)).body as Json;
    expect([during.latest, during.counts.completed]).toEqual([{}, 0]);
    expect(existsSync(join(dir, 'chk', JOB, `chk-${first + 1}`))).toBe(false);
    await eventually(() => server.job(JOB).state === 'RUNNING', 5_000, 'RUNNING');
    expect(await server.checkpointNow(JOB)).toBe(first + 2);
    const stats = (await get(`/jobs/${JOB}/checkpoints`)).body as Json;
    expect(stats.history.map((c: Json) => c.id)).toEqual([first + 2]);
    expect(stats.latest.restored).toMatchObject({ id: first });
    expect(server.violations).toEqual([]);
  });

  it('logs requests, answers 503 in an outage, refuses connections and answers slowly', async () => {
    server.addJob(JOB, { checkpointDir: join(dir, 'chk') });
    await get(`/jobs/${JOB}`);
    await server.outage(true);
    const unavailable = await get(`/jobs/${JOB}`);
    expect(unavailable.status).toBe(503);
    await server.outage(true, 'refuse');
    await expect(fetch(`${url}/jobs/${JOB}`)).rejects.toThrow();
    await server.outage(false);
    expect((await get(`/jobs/${JOB}`)).status).toBe(200);
    server.delay(150);
    const started = Date.now();
    await get(`/jobs/${JOB}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(server.requestsFor(JOB).map((r) => [r.method, r.operationId, r.status])).toEqual([
      ['GET', 'getJobDetails', 200],
      ['GET', 'getJobDetails', 503],
      ['GET', 'getJobDetails', 200],
      ['GET', 'getJobDetails', 200],
    ]);
    expect(server.violations).toEqual([]);
  });
});
