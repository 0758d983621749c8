import { once } from 'node:events';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { openApiDocument } from '../src/openapi';
import { ROUTES_WITH_BODY, ROUTES_WITH_QUERY } from '../src/requests';
import { apiFixture, BASE, expectProblem, JOB } from './fixture';

describe('REST API over HTTP', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeEach(() => {
    fx = apiFixture();
    http = request(fx.app);
  });
  afterEach(() => fx.close());

  const register = (body: object = { tasks: ['a', 'b'] }) => http.put(`${BASE}/jobs/${JOB}`).send(body);
  const trigger = (body: object = { kind: 'CHECKPOINT' }) =>
    http.post(`${BASE}/jobs/${JOB}/snapshots`).send(body);
  const ack = (id: number, body: object | object[]) =>
    http.post(`${BASE}/jobs/${JOB}/snapshots/${id}/acks`).send(body);
  const completeCheckpoint = async () => {
    const { body } = await trigger();
    await ack(body.snapshotId, [{ taskId: 'a' }, { taskId: 'b' }]);
    return body.snapshotId as number;
  };

  describe('GET /healthz, /readyz', () => {
    it('answer 200 when the store is reachable', async () => {
      expect((await http.get('/healthz')).body).toEqual({ status: 'ok' });
      const ready = await http.get('/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body.status).toBe('ready');
    });
    it('/readyz answers 503 naming Redis while it is unreachable, and says that commands go on', async () => {
      const down = apiFixture({ redisState: () => 'unreachable' });
      const ready = await request(down.app).get('/readyz');
      await down.close();
      expect(ready.status).toBe(503);
      expect(ready.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(ready.body).toMatchObject({ status: 503, eventStore: 'reachable', redis: 'unreachable' });
      expect(ready.body.detail).toMatch(/Redis is unreachable.*REST commands keep working/);
    });
    it('/readyz says connecting, not unreachable, while the first connection to Redis is being made', async () => {
      const starting = apiFixture({ redisState: () => 'connecting' });
      const ready = await request(starting.app).get('/readyz');
      await starting.close();
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ status: 503, eventStore: 'reachable', redis: 'connecting' });
      expect(ready.body.detail).toMatch(/^connecting to Redis: .*REST commands keep working/);
    });
    it('an unknown route is a 404 problem', async () => {
      expectProblem(await http.get(`${BASE}/nope`), 404, 'path');
    });
    it('a query parameter a route does not take is a 400 naming it, and nothing is done', async () => {
      await http
        .put(`${BASE}/jobs/${JOB}`)
        .send({ tasks: ['t'] })
        .expect(201);
      const dryRun = await http.post(`${BASE}/jobs/${JOB}/snapshots?dryRun=1`).send({ kind: 'CHECKPOINT' });
      expectProblem(dryRun, 400, 'query.dryRun', 'unknown-field');
      const view = await http.get(`${BASE}/jobs/${JOB}`).expect(200);
      expect(view.body.snapshots).toEqual([]); // not triggered
      expectProblem(await http.get(`${BASE}/jobs/${JOB}?x=1`), 400, 'query.x', 'unknown-field');
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/snapshots/1/acks?x=1`).send({ taskId: 't' }),
        400,
        'query.x',
      );
      // The routes that take some still take theirs.
      expect((await http.get(`${BASE}/jobs?limit=1`)).status).toBe(503); // no read model here, but no 400
      await http.get(`${BASE}/jobs/${JOB}/events?limit=1`).expect(200);
    });
    it('a body that is not UTF-8 is a 400 naming it, not a value recorded with U+FFFD in it', async () => {
      const server = createServer(fx.app).listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      /** A raw POST or PUT: supertest would serialise a Buffer as JSON. */
      const raw = async (method: string, path: string, ...parts: (string | number[])[]) => {
        const body = Buffer.concat(parts.map((p) => Buffer.from(p as string)));
        const res = await fetch(`http://127.0.0.1:${port}${path}`, {
          method,
          headers: { 'content-type': 'application/json' },
          body,
        });
        return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.json() };
      };
      try {
        const res = await raw('PUT', `${BASE}/jobs/${JOB}`, '{"tasks":["', [0xff, 0xfe], '"]}');
        expectProblem(res, 400, 'body', 'utf-8');
        expect((await http.get(`${BASE}/jobs/${JOB}`)).status).toBe(404); // nothing registered
        // The acks' front door reads the same way.
        await http
          .put(`${BASE}/jobs/${JOB}`)
          .send({ tasks: ['t'] })
          .expect(201);
        await http.post(`${BASE}/jobs/${JOB}/snapshots`).send({ kind: 'CHECKPOINT' }).expect(202);
        const acked = await raw('POST', `${BASE}/jobs/${JOB}/snapshots/1/acks`, '{"taskId":"', [0xc3], '"}');
        expectProblem(acked, 400, 'body', 'utf-8');
      } finally {
        server.close();
      }
    });
    it('a body in another charset or an unknown content encoding is a 415 naming the header', async () => {
      const latin1 = await http
        .put(`${BASE}/jobs/${JOB}`)
        .set('content-type', 'application/json; charset=latin1')
        .send('{"tasks":["t"]}');
      expectProblem(latin1, 415, 'header.content-type', 'utf-8');
      // Another Unicode encoding too: body-parser would decode it, but JSON on the wire is UTF-8.
      const utf16 = await http
        .put(`${BASE}/jobs/${JOB}`)
        .set('content-type', 'application/json; charset=utf-16le')
        .send('{"tasks":["t"]}');
      expectProblem(utf16, 415, 'header.content-type', 'utf-8');
      const compressed = await http
        .put(`${BASE}/jobs/${JOB}`)
        .set('content-type', 'application/json')
        .set('content-encoding', 'compress')
        .send('{"tasks":["t"]}');
      expectProblem(compressed, 415, 'header.content-encoding', 'supported-encoding');
    });
    it('a restore from a snapshot the job does not have names the body’s snapshotId (where the id was sent)', async () => {
      await http
        .put(`${BASE}/jobs/${JOB}`)
        .send({ tasks: ['t'] })
        .expect(201);
      const res = await http.post(`${BASE}/jobs/${JOB}/restores`).send({ snapshotId: 42 });
      expectProblem(res, 404, 'body.snapshotId');
    });
    it('the routes that take query parameters are those the OpenAPI document gives some', () => {
      const document = openApiDocument() as unknown as {
        paths: Record<string, Record<string, { parameters?: { in: string }[] }>>;
      };
      const withQuery = Object.entries(document.paths).flatMap(([path, operations]) =>
        Object.entries(operations)
          .filter(([, op]) => (op.parameters ?? []).some((p) => p.in === 'query'))
          .map(([method]) => `${method.toUpperCase()} ${path}`),
      );
      expect(withQuery.sort()).toEqual([...ROUTES_WITH_QUERY].sort());
    });
    it('the routes that read a body are those the OpenAPI document gives one', () => {
      const document = openApiDocument() as unknown as {
        paths: Record<string, Record<string, { requestBody?: object }>>;
      };
      const withBody = Object.entries(document.paths).flatMap(([path, operations]) =>
        Object.entries(operations)
          .filter(([, op]) => op.requestBody !== undefined)
          .map(([method]) => `${method.toUpperCase()} ${path}`),
      );
      expect(withBody.sort()).toEqual([...ROUTES_WITH_BODY].sort());
    });
    it('a body on a route that reads none is a 400 unless it is {} (its fields would be ignored), and nothing is done', async () => {
      await register();
      const schedule = { every: 'PT1H' };
      await http.put(`${BASE}/jobs/${JOB}/savepoint-schedule`).send(schedule).expect(200);
      const ignored = await http.delete(`${BASE}/jobs/${JOB}/savepoint-schedule`).send({ dryRun: true });
      expectProblem(ignored, 400, 'body.dryRun', 'unknown-field');
      expect((await http.get(`${BASE}/jobs/${JOB}/savepoint-schedule`)).body.schedule).toMatchObject(
        schedule,
      );
      expectProblem(await http.delete(`${BASE}/jobs/${JOB}/savepoint-schedule`).send([1]), 400, 'body');
      expect((await http.delete(`${BASE}/jobs/${JOB}/savepoint-schedule`).send({})).status).toBe(200);
      expect((await http.get(`${BASE}/jobs/${JOB}/savepoint-schedule`)).status).toBe(404);
    });
    it('a method a route does not serve is a 405 problem whose Allow lists those it does', async () => {
      const snapshot = await http.delete(`${BASE}/jobs/${'a'.repeat(32)}/snapshots/1`);
      expectProblem(snapshot, 405, 'method', 'allowed-methods');
      expect(snapshot.headers.allow).toBe('GET, HEAD');
      expect(snapshot.body.detail).toBe(
        `DELETE is not served at ${BASE}/jobs/${'a'.repeat(32)}/snapshots/1; GET, HEAD are`,
      );
      const job = await http.patch(`${BASE}/jobs/${'a'.repeat(32)}`).send({});
      expectProblem(job, 405, 'method', 'allowed-methods');
      expect(job.headers.allow).toBe('GET, HEAD, PUT');
      expect((await http.put(`${BASE}/jobs/${'a'.repeat(32)}/snapshots/1/acks`).send({})).headers.allow).toBe(
        'POST',
      );
      // A literal segment is a resource of its own, not the value of the parameter in its place.
      const imports = await http.get(`${BASE}/jobs/${'a'.repeat(32)}/snapshots/import`);
      expectProblem(imports, 405, 'method', 'allowed-methods');
      expect(imports.headers.allow).toBe('POST');
    });
  });

  describe('PUT /jobs/:jobId', () => {
    it('registers (201) with defaults, then reconfigures (200)', async () => {
      const created = await register();
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        jobId: JOB,
        name: JOB,
        status: 'RUNNING',
        tasks: ['a', 'b'],
        checkpointing: {
          numRetained: 1,
          maxConcurrent: 1,
          retention: 'NEVER_RETAIN_AFTER_TERMINATION',
          persistOnFailure: true,
        },
        storage: { checkpointDir: `${fx.dir}/chk`, savepointDir: `${fx.dir}/sp` },
      });
      const updated = await register({
        name: 'orders',
        tasks: ['a', 'b', 'c'],
        checkpointing: { numRetained: 3, persistOnFailure: false },
      });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ name: 'orders', tasks: ['a', 'b', 'c'], changed: true });
      expect(updated.body.checkpointing).toMatchObject({ numRetained: 3, persistOnFailure: false });
      expect((await http.get(`${BASE}/jobs/${JOB}`)).body.checkpointing.persistOnFailure).toBe(false);
    });
    it('R67 a job managed through a Flink cluster needs no tasks and shows its source', async () => {
      const unknown = await register({ source: { type: 'flink', cluster: 'prod-eu' } });
      expectProblem(unknown, 400, 'body.source.cluster', 'cluster-registered'); // nothing to call yet
      expect((await http.get(`${BASE}/jobs/${JOB}`)).status).toBe(404);
      await http
        .put(`${BASE}/clusters/prod-eu`)
        .send({ restUrl: 'http://flink.example.com:8081' })
        .expect(201);
      const res = await register({ source: { type: 'flink', cluster: 'prod-eu' } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ tasks: [], source: { type: 'flink', cluster: 'prod-eu' } });
      const checkpoint = await trigger({ kind: 'CHECKPOINT' });
      expect(checkpoint.status).toBe(409); // Flink takes a managed job's checkpoints
    });
    it('a new job may start in another status', async () => {
      expect((await register({ tasks: ['a'], status: 'SUSPENDED' })).body.status).toBe('SUSPENDED');
    });
    it.each([
      ['a bad job id', 'NOT-A-JOB', { tasks: ['a'] }, 'path.jobId', 'format-regex'],
      ['missing tasks (only a managed job has none, R67)', JOB, {}, 'body.tasks', 'min-length'],
      [
        'a bad source cluster',
        JOB,
        { source: { type: 'flink', cluster: 'Prod EU' } },
        'body.source.cluster',
        'format-regex',
      ],
      ['empty tasks', JOB, { tasks: [] }, 'body.tasks', 'min-length'],
      ['duplicate tasks', JOB, { tasks: ['a', 'a'] }, 'body.tasks', 'unique'],
      ['an unknown field', JOB, { tasks: ['a'], color: 'red' }, 'body.color', 'unknown-field'],
      [
        'numRetained 0',
        JOB,
        { tasks: ['a'], checkpointing: { numRetained: 0 } },
        'body.checkpointing.numRetained',
        'minimum',
      ],
      [
        'a bad retention',
        JOB,
        { tasks: ['a'], checkpointing: { retention: 'KEEP' } },
        'body.checkpointing.retention',
        'one-of',
      ],
      [
        'a non-boolean persistOnFailure (R38)',
        JOB,
        { tasks: ['a'], checkpointing: { persistOnFailure: 'yes' } },
        'body.checkpointing.persistOnFailure',
        'type-boolean',
      ],
      [
        'a relative directory',
        JOB,
        { tasks: ['a'], storage: { checkpointDir: 'rel/dir' } },
        'body.storage.checkpointDir',
        'absolute-location',
      ],
    ])('refuses %s with 400 naming the field', async (_name, jobId, body, field, rule) => {
      const res = await http.put(`${BASE}/jobs/${jobId}`).send(body);
      expectProblem(res, 400, field, rule);
      expect((await http.get(`${BASE}/jobs/${JOB}`)).status).toBe(404);
    });
    // The acknowledgement route is wired on its own, ahead of the rest (the hot path): same rules.
    it.each([
      ['PUT', `/jobs/${JOB}`],
      ['POST', `/jobs/${JOB}/snapshots/1/acks`],
    ])('%s %s refuses a body that is not JSON with 415, and broken JSON with 400', async (method, path) => {
      const send = () => (method === 'PUT' ? http.put(`${BASE}${path}`) : http.post(`${BASE}${path}`));
      expectProblem(
        await send().set('content-type', 'text/plain').send('tasks=a'),
        415,
        'header.content-type',
      );
      expectProblem(
        await send().set('content-type', 'application/json').send('{"tasks":'),
        400,
        'body',
        'json',
      );
    });
    it.each([
      ['PUT', `/jobs/${JOB}`],
      ['POST', `/jobs/${JOB}/snapshots/1/acks`],
    ])(
      '%s %s: JSON that is no object (null, a number, a string) is told so, not "not valid JSON"',
      async (method, path) => {
        const send = () => (method === 'PUT' ? http.put(`${BASE}${path}`) : http.post(`${BASE}${path}`));
        for (const [text, kind] of [
          ['null', 'null'],
          [' 5 ', 'a number'],
          ['"str"', 'a string'],
          ['true', 'a boolean'],
        ]) {
          const res = await send().set('content-type', 'application/json').send(text);
          expectProblem(res, 400, 'body', 'type-object');
          expect(res.body.detail).toContain(`not ${kind}`);
        }
        expect((await http.get(`${BASE}/jobs/${JOB}`)).status).toBe(404);
      },
    );
  });

  describe('GET /jobs/:jobId', () => {
    it('returns the job with its snapshots, newest first', async () => {
      await register();
      await completeCheckpoint();
      await trigger({ kind: 'SAVEPOINT' });
      const res = await http.get(`${BASE}/jobs/${JOB}`);
      expect(res.status).toBe(200);
      expect(
        res.body.snapshots.map((s: { snapshotId: number; kind: string }) => [s.snapshotId, s.kind]),
      ).toEqual([
        [2, 'SAVEPOINT'],
        [1, 'CHECKPOINT'],
      ]);
      expect(res.body.counts).toMatchObject({ total: 2, inProgress: 1, completed: 1 });
      expect(res.body.latestCompletedSnapshotId).toBe(1);
    });
    it('404 for an unknown job, 400 for a malformed id', async () => {
      expectProblem(await http.get(`${BASE}/jobs/${JOB}`), 404, 'path.jobId');
      expectProblem(await http.get(`${BASE}/jobs/ABC`), 400, 'path.jobId');
    });
  });

  describe('POST /jobs/:jobId/status', () => {
    it('changes the status; a terminal status is final (409)', async () => {
      await register();
      const res = await http.post(`${BASE}/jobs/${JOB}/status`).send({ status: 'CANCELED' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ jobId: JOB, status: 'CANCELED', changed: true });
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/status`).send({ status: 'RUNNING' }),
        409,
        'body.status',
        'terminal-status',
      );
    });
    it('400 for an unknown status, 404 for an unknown job', async () => {
      await register();
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/status`).send({ status: 'PAUSED' }),
        400,
        'body.status',
        'one-of',
      );
      expectProblem(await http.post(`${BASE}/jobs/${JOB}/status`).send({}), 400, 'body.status', 'required');
      const other = 'f'.repeat(32);
      expectProblem(
        await http.post(`${BASE}/jobs/${other}/status`).send({ status: 'FAILED' }),
        404,
        'path.jobId',
      );
    });
  });

  describe('POST /jobs/:jobId/snapshots', () => {
    it('202 with the snapshot id and trigger id; a repeated triggerId answers the same snapshot', async () => {
      await register();
      const res = await trigger({ kind: 'SAVEPOINT', triggerId: 'nightly-1', formatType: 'NATIVE' });
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ snapshotId: 1, triggerId: 'nightly-1', status: 'PENDING' });
      expect(res.headers.location).toBe(`${BASE}/jobs/${JOB}/snapshots/1`);
      const again = await trigger({ kind: 'SAVEPOINT', triggerId: 'nightly-1' });
      expect(again.body).toEqual({ snapshotId: 1, triggerId: 'nightly-1', status: 'PENDING' });
    });
    it('a pre-flight rejection is 409 with the Flink reason, and is recorded', async () => {
      await register();
      await trigger();
      const res = await trigger();
      expectProblem(res, 409, 'body.kind', 'TOO_MANY_CHECKPOINT_REQUESTS');
      expect(res.body.reason).toBe('TOO_MANY_CHECKPOINT_REQUESTS');
      const events = await http.get(`${BASE}/jobs/${JOB}/events`);
      expect(events.body.events.map((e: { type: string }) => e.type)).toContain('SnapshotTriggerRejected');
    });
    it('a savepoint on a job that is not running is 409 NOT_ALL_REQUIRED_TASKS_RUNNING', async () => {
      await register({ tasks: ['a'], status: 'SUSPENDED' });
      expect((await trigger({ kind: 'SAVEPOINT' })).body.reason).toBe('NOT_ALL_REQUIRED_TASKS_RUNNING');
    });
    it('400 for a bad kind, a bad triggerId, an unknown field', async () => {
      await register();
      expectProblem(await trigger({ kind: 'BACKUP' }), 400, 'body.kind', 'one-of');
      expectProblem(await trigger({ kind: 'SAVEPOINT', triggerId: 'a:b' }), 400, 'body.triggerId');
      expectProblem(await trigger({ kind: 'SAVEPOINT', when: 'now' }), 400, 'body.when', 'unknown-field');
      expect((await http.get(`${BASE}/jobs/${JOB}`)).body.snapshots).toEqual([]);
    });
    it('R58 checkpointType: an unknown one is 400 naming it, an INCREMENTAL savepoint is 400, an INCREMENTAL ack of a FULL checkpoint 409; the view shows the type and checkpointedSize', async () => {
      await register({ tasks: ['a', 'b'] });
      expectProblem(
        await trigger({ kind: 'CHECKPOINT', checkpointType: 'DELTA' }),
        400,
        'body.checkpointType',
        'one-of',
      );
      expectProblem(
        await trigger({ kind: 'SAVEPOINT', checkpointType: 'INCREMENTAL' }),
        400,
        'body.checkpointType',
        'savepoint-is-full',
      );
      expect((await http.get(`${BASE}/jobs/${JOB}`)).body.snapshots).toEqual([]);
      expect((await trigger({ kind: 'CHECKPOINT', checkpointType: 'FULL' })).status).toBe(202);
      expectProblem(
        await ack(1, { taskId: 'a', checkpointType: 'INCREMENTAL' }),
        409,
        'body.checkpointType',
        'full-snapshot-acknowledged-incremental',
      );
      expectProblem(
        await ack(1, { taskId: 'a', checkpointType: 'delta' }),
        400,
        'body.checkpointType',
        'one-of',
      );
      expect(
        (await ack(1, { taskId: 'a', stateSize: 10, checkpointType: 'FULL', checkpointedSize: 4 })).status,
      ).toBe(200);
      expect((await ack(1, { taskId: 'b', stateSize: 10 })).status).toBe(200);
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/1`)).body).toMatchObject({
        status: 'COMPLETED',
        checkpointType: 'FULL',
        stateSize: 20,
        checkpointedSize: 14,
      });
      await trigger({ kind: 'CHECKPOINT' });
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/2`)).body.checkpointType).toBe('INCREMENTAL');
    });
    it('a batch of acks is all or nothing: one refused ack answers its 409 and none of the batch is written', async () => {
      await register({ tasks: ['a', 'b'] });
      expect((await trigger({ kind: 'SAVEPOINT' })).status).toBe(202);
      const events = async () => (await http.get(`${BASE}/jobs/${JOB}/events`)).body.events.length as number;
      const before = await events();
      // The refused ack is named by its place in the batch, as a refused path is.
      expectProblem(
        await ack(1, [{ taskId: 'a' }, { taskId: 'b', checkpointType: 'INCREMENTAL' }]),
        409,
        'body[1].checkpointType',
        'full-snapshot-acknowledged-incremental',
      );
      expectProblem(
        await ack(1, [{ taskId: 'a', checkpointType: 'INCREMENTAL' }]),
        409,
        'body[0].checkpointType',
        'full-snapshot-acknowledged-incremental',
      );
      expect(await events()).toBe(before);
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/1`)).body).toMatchObject({
        status: 'PENDING',
        acknowledgedTasks: 0,
      });
      // The same batch, corrected, goes through whole.
      expect((await ack(1, [{ taskId: 'a' }, { taskId: 'b' }])).status).toBe(200);
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/1`)).body.status).toBe('COMPLETED');
    });
    it('R61 versions: a registration names them, a trigger with none takes the job’s, one with its own records those, a PUT without them keeps them; GET shows them; a bad one is 400 naming it', async () => {
      const registered = await register({
        tasks: ['a'],
        jobVersion: 'orders-1.4.0.jar',
        flinkVersion: '1.18.1',
      });
      expect(registered.status).toBe(201);
      expect(registered.body).toMatchObject({ jobVersion: 'orders-1.4.0.jar', flinkVersion: '1.18.1' });
      expect((await trigger({ kind: 'CHECKPOINT' })).status).toBe(202);
      expect((await trigger({ kind: 'SAVEPOINT', jobVersion: 'orders-1.5.0-rc1.jar' })).status).toBe(202);
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/1`)).body).toMatchObject({
        jobVersion: 'orders-1.4.0.jar',
        flinkVersion: '1.18.1',
      });
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/2`)).body).toMatchObject({
        jobVersion: 'orders-1.5.0-rc1.jar',
        flinkVersion: '1.18.1',
      });
      // Left out: kept, and nothing changed.
      const same = await register({ tasks: ['a'] });
      expect(same.status).toBe(200);
      expect(same.body).toMatchObject({
        changed: false,
        jobVersion: 'orders-1.4.0.jar',
        flinkVersion: '1.18.1',
      });
      const upgraded = await register({ tasks: ['a'], flinkVersion: '1.19.1' });
      expect(upgraded.body).toMatchObject({
        changed: true,
        jobVersion: 'orders-1.4.0.jar',
        flinkVersion: '1.19.1',
      });
      const job = (await http.get(`${BASE}/jobs/${JOB}`)).body;
      expect(job).toMatchObject({ jobVersion: 'orders-1.4.0.jar', flinkVersion: '1.19.1' });
      expect(
        job.snapshots.map((s: { jobVersion: string; flinkVersion: string }) => [
          s.jobVersion,
          s.flinkVersion,
        ]),
      ).toEqual([
        ['orders-1.5.0-rc1.jar', '1.18.1'],
        ['orders-1.4.0.jar', '1.18.1'],
      ]);
      const events = (await http.get(`${BASE}/jobs/${JOB}/events`)).body.events;
      expect(events.at(-1)).toMatchObject({
        type: 'JobReconfigured',
        data: { jobVersion: 'orders-1.4.0.jar', flinkVersion: '1.19.1' },
      });

      expectProblem(await register({ tasks: ['a'], jobVersion: '' }), 400, 'body.jobVersion', 'min-length');
      expectProblem(
        await register({ tasks: ['a'], jobVersion: 'v'.repeat(257) }),
        400,
        'body.jobVersion',
        'max-length',
      );
      expectProblem(await trigger({ kind: 'CHECKPOINT', flinkVersion: '1.19\n' }), 400, 'body.flinkVersion');
      expectProblem(await trigger({ kind: 'CHECKPOINT', jobVersion: 42 }), 400, 'body.jobVersion');
      expect((await http.get(`${BASE}/jobs/${JOB}`)).body.snapshots).toHaveLength(2);
    });
    it('R61 a job registered without versions shows null, and so do its snapshots', async () => {
      await register({ tasks: ['a'] });
      await trigger({ kind: 'CHECKPOINT' });
      expect((await http.get(`${BASE}/jobs/${JOB}`)).body).toMatchObject({
        jobVersion: null,
        flinkVersion: null,
      });
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/1`)).body).toMatchObject({
        jobVersion: null,
        flinkVersion: null,
      });
    });
    it('R65, R66 stop-with-savepoint: pending snapshots aborted, periodic checkpoints refused while it is pending, the job FINISHED once it completes; a checkpoint cannot stop (400)', async () => {
      await register();
      const pending = (await trigger()).body.snapshotId as number;
      const badStop = await trigger({ kind: 'CHECKPOINT', terminate: { drain: true } });
      expectProblem(badStop, 400, 'body.terminate');
      const stop = await trigger({ kind: 'SAVEPOINT', terminate: { drain: true } });
      expect(stop.status).toBe(202);
      const aborted = await http.get(`${BASE}/jobs/${JOB}/snapshots/${pending}`);
      expect(aborted.body).toMatchObject({
        status: 'FAILED',
        failureReason: 'CHECKPOINT_COORDINATOR_SUSPEND',
      });
      const periodic = await trigger({ kind: 'CHECKPOINT', triggerType: 'PERIODIC' });
      expect(periodic.status).toBe(409);
      expect(periodic.body.reason).toBe('PERIODIC_SCHEDULER_SHUTDOWN');
      await ack(stop.body.snapshotId, [{ taskId: 'a' }, { taskId: 'b' }]);
      const job = await http.get(`${BASE}/jobs/${JOB}`);
      expect(job.body.status).toBe('FINISHED');
      expect(job.body.snapshots[0]).toMatchObject({
        snapshotId: stop.body.snapshotId,
        status: 'COMPLETED',
        savepointType: 'TERMINATE',
      });
    });
  });

  describe('POST /jobs/:jobId/snapshots/:snapshotId/acks', () => {
    it('one ack answers one result; an array answers an array', async () => {
      await register({ tasks: ['a', 'b', 'c'] });
      await trigger();
      const one = await ack(1, {
        taskId: 'a',
        stateSize: 10,
        stateHandles: [{ path: `${fx.dir}/chk/${JOB}/shared/a`, sizeBytes: 10 }],
      });
      expect(one.status).toBe(200);
      expect(one.body).toEqual({ result: 'SUCCESS', snapshotStatus: 'PENDING' });
      const many = await ack(1, [{ taskId: 'a' }, { taskId: 'b' }, { taskId: 'c' }, { taskId: 'z' }]);
      expect(many.body).toEqual([
        { result: 'DUPLICATE', snapshotStatus: 'PENDING' },
        { result: 'SUCCESS', snapshotStatus: 'PENDING' },
        { result: 'SUCCESS', snapshotStatus: 'COMPLETED' },
        { result: 'UNKNOWN', snapshotStatus: 'COMPLETED' },
      ]);
      expect((await ack(99, { taskId: 'a' })).body).toEqual({ result: 'UNKNOWN', snapshotStatus: null });
    });
    it('an ack without stateSize reports its handles’ bytes, as Flink sums a subtask’s state; a given one stands', async () => {
      await register({ tasks: ['a', 'b'] });
      await trigger();
      const handles = [
        { path: `${fx.dir}/chk/${JOB}/chk-1/a`, sizeBytes: 10 },
        { path: `${fx.dir}/chk/${JOB}/shared/a`, sizeBytes: 20, shared: true },
      ];
      expect((await ack(1, { taskId: 'a', stateHandles: handles })).body.snapshotStatus).toBe('PENDING');
      const pending = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(200);
      expect(pending.body.stateSize).toBe(30);
      await ack(1, {
        taskId: 'b',
        stateSize: 5,
        stateHandles: [{ path: `${fx.dir}/chk/${JOB}/chk-1/b`, sizeBytes: 100 }],
      });
      const done = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(200);
      expect(done.body).toMatchObject({ status: 'COMPLETED', stateSize: 35 });
    });
    it('R72 a state handle outside the storage roots is a 400 naming it, whoever acknowledges: it could never be deleted', async () => {
      await register({ tasks: ['a', 'b'] });
      await trigger();
      const inside = { path: `${fx.dir}/chk/${JOB}/shared/in`, sizeBytes: 1 };
      const outside = { path: '/elsewhere/x.sst', sizeBytes: 1 };
      expectProblem(
        await ack(1, { taskId: 'a', stateHandles: [inside, outside] }),
        400,
        'body.stateHandles[1].path',
        'within-storage-roots',
      );
      expectProblem(
        await ack(1, [
          { taskId: 'a', stateHandles: [inside] },
          { taskId: 'b', stateHandles: [outside] },
        ]),
        400,
        'body[1].stateHandles[0].path',
        'within-storage-roots',
      );
      const shown = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(200);
      expect(shown.body).toMatchObject({ status: 'PENDING', acknowledgedTasks: 0 });
    });
    it('a file listed twice in one acknowledgement (however spelled) is a 400 naming the second: its size would count twice in the snapshot and once in the job', async () => {
      await register({ tasks: ['a', 'b'] });
      await trigger();
      const file = `${fx.dir}/chk/${JOB}/chk-1/f`;
      const twice = [
        { path: file, sizeBytes: 1 },
        { path: `file://${file}`, sizeBytes: 2 },
      ];
      const single = await ack(1, { taskId: 'a', stateHandles: twice });
      expectProblem(single, 400, 'body.stateHandles[1].path', 'unique');
      expect(single.body.detail).toContain('listed twice');
      expectProblem(
        await ack(1, [{ taskId: 'a' }, { taskId: 'b', stateHandles: twice }]),
        400,
        'body[1].stateHandles[1].path',
        'unique',
      );
      const shown = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(200);
      expect(shown.body).toMatchObject({ status: 'PENDING', acknowledgedTasks: 0 });
      // The same file from two tasks is another matter (not refused here): each task reports its own state.
      expect((await ack(1, { taskId: 'a', stateHandles: [twice[0]!] })).status).toBe(200);
    });
    it('a state handle or a restore path reached through a symbolic link below a root, or a directory as a state handle, is a 400: a link names the place it points to, whose snapshots name it otherwise', async () => {
      await register({ tasks: ['a'] });
      await trigger();
      // Another job's checkpoint, and a link to it inside this job's area; a link to a file as well.
      const other = join(fx.dir, 'chk', 'f0'.repeat(16), 'chk-5');
      mkdirSync(other, { recursive: true });
      writeFileSync(join(other, '_metadata'), 'x');
      writeFileSync(join(other, 'sst'), 'x');
      mkdirSync(join(fx.dir, 'chk', JOB), { recursive: true });
      symlinkSync(other, join(fx.dir, 'chk', JOB, 'linked'));
      symlinkSync(join(other, 'sst'), join(fx.dir, 'chk', JOB, 'linked-file'));
      const real = { path: `${fx.dir}/chk/${JOB}/chk-1/own`, sizeBytes: 1 };
      for (const path of [`${fx.dir}/chk/${JOB}/linked/sst`, `${fx.dir}/chk/${JOB}/linked-file`]) {
        const refused = await ack(1, { taskId: 'a', stateHandles: [real, { path, sizeBytes: 1 }] });
        expectProblem(refused, 400, 'body.stateHandles[1].path', 'within-storage-roots');
        expect(refused.body.detail).toMatch(/symbolic link/);
      }
      const restored = await http
        .post(`${BASE}/jobs/${JOB}/restores`)
        .send({ externalPath: `${fx.dir}/chk/${JOB}/linked/_metadata`, claimMode: 'LEGACY' });
      expectProblem(restored, 400, 'body.externalPath', 'within-storage-roots');
      const shown = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(200);
      expect(shown.body).toMatchObject({ status: 'PENDING', acknowledgedTasks: 0 });
      // A directory is no state file (the orphan sweep would take what lies in it for orphans).
      mkdirSync(join(fx.dir, 'chk', JOB, 'shared', 'dir-handle'), { recursive: true });
      expectProblem(
        await ack(1, {
          taskId: 'a',
          stateHandles: [{ path: `${fx.dir}/chk/${JOB}/shared/dir-handle`, sizeBytes: 1 }],
        }),
        400,
        'body.stateHandles[0].path',
        'state-file',
      );
      // Named as it really lies, the same files are accepted.
      expect((await ack(1, { taskId: 'a', stateHandles: [real] })).status).toBe(200);
    });
    it('400 naming the field for a bad ack, a bad item in an array, a bad snapshot id; nothing is written', async () => {
      await register();
      await trigger();
      expectProblem(await ack(1, { taskId: 'a', stateSize: -1 }), 400, 'body.stateSize', 'minimum');
      expectProblem(await ack(1, [{ taskId: 'a' }, { stateSize: 1 }]), 400, 'body[1].taskId', 'required');
      expectProblem(
        await ack(1, { taskId: 'a', stateHandles: [{ path: '../x', sizeBytes: 1 }] }),
        400,
        'body.stateHandles[0].path',
      );
      // Decimal digits only: coerced, `0x1`, `1e0`, `+1` or ` 1` named snapshot 1 and `1e3` snapshot 1000.
      for (const id of ['abc', '0x1', '1e0', '1e3', '1.0', '+1', '%201', '01', '0']) {
        expectProblem(
          await http.post(`${BASE}/jobs/${JOB}/snapshots/${id}/acks`).send({ taskId: 'a' }),
          400,
          'path.snapshotId',
        );
        expectProblem(await http.get(`${BASE}/jobs/${JOB}/snapshots/${id}`), 400, 'path.snapshotId');
      }
      expectProblem(await ack(1, []), 400, 'body');
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/1`)).body.acknowledgedTasks).toBe(0);
    });
  });

  describe('POST .../decline', () => {
    it('fails the snapshot with CHECKPOINT_DECLINED', async () => {
      await register();
      await trigger();
      const res = await http
        .post(`${BASE}/jobs/${JOB}/snapshots/1/decline`)
        .send({ taskId: 'a', reason: 'io' });
      expect(res.body).toEqual({ snapshotId: 1, status: 'FAILED' });
      const snap = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`);
      expect(snap.body).toMatchObject({
        status: 'FAILED',
        failureReason: 'CHECKPOINT_DECLINED',
        failureMessage: 'io',
      });
    });
    it('R24 records the failureReason the task gives; an unknown one is 400 naming body.failureReason', async () => {
      await register({ tasks: ['a', 'b'], checkpointing: { maxConcurrent: 5, tolerableFailures: 5 } });
      await trigger();
      await trigger();
      expectProblem(
        await http
          .post(`${BASE}/jobs/${JOB}/snapshots/1/decline`)
          .send({ taskId: 'a', failureReason: 'CHECKPOINT_EXPIRED' }),
        400,
        'body.failureReason',
        'one-of',
      );
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/1`)).body.status).toBe('PENDING');
      const res = await http.post(`${BASE}/jobs/${JOB}/snapshots/1/decline`).send({
        taskId: 'a',
        reason: 'barrier too early',
        failureReason: 'CHECKPOINT_DECLINED_TASK_NOT_READY',
      });
      expect(res.body).toEqual({ snapshotId: 1, status: 'FAILED' });
      expect((await http.get(`${BASE}/jobs/${JOB}/snapshots/1`)).body).toMatchObject({
        status: 'FAILED',
        failureReason: 'CHECKPOINT_DECLINED_TASK_NOT_READY',
        failureMessage: 'barrier too early',
      });
      // R27: CHECKPOINT_DECLINED_TASK_NOT_READY does not count, IO_EXCEPTION does.
      expect((await http.get(`${BASE}/jobs/${JOB}`)).body.consecutiveFailures).toBe(0);
      await http
        .post(`${BASE}/jobs/${JOB}/snapshots/2/decline`)
        .send({ taskId: 'b', failureReason: 'IO_EXCEPTION' });
      expect((await http.get(`${BASE}/jobs/${JOB}`)).body.consecutiveFailures).toBe(1);
    });
    it('400 without taskId, 409 once the snapshot completed, 404 for an unknown snapshot', async () => {
      await register();
      const id = await completeCheckpoint();
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/snapshots/${id}/decline`).send({}),
        400,
        'body.taskId',
        'required',
      );
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/snapshots/${id}/decline`).send({ taskId: 'a' }),
        409,
        'path.snapshotId',
      );
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/snapshots/7/decline`).send({ taskId: 'a' }),
        404,
        'path.snapshotId',
      );
    });
  });

  describe('POST .../persist', () => {
    it('persists a completed checkpoint as a savepoint', async () => {
      await register();
      const id = await completeCheckpoint();
      const res = await http.post(`${BASE}/jobs/${JOB}/snapshots/${id}/persist`).send({});
      expect(res.status).toBe(200);
      // Issue 16: Flink's savepoint layout (was <dir>/<jobId>/savepoint-<id>-…); Flink restores from chk-<id>.
      expect(res.body.savepointPath).toMatch(
        new RegExp(`^${fx.dir}/sp/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`),
      );
      const snap = await http.get(`${BASE}/jobs/${JOB}/snapshots/${id}`);
      expect(res.body.restorePath).toBe(snap.body.externalPath);
      expect(snap.body.externalPath).toMatch(new RegExp(`/${JOB}/chk-${id}$`));
      expect(snap.body).toMatchObject({
        persisted: true,
        restorePath: snap.body.externalPath,
        savepointPath: res.body.savepointPath,
        properties: { discardSubsumed: false, discardFailed: false },
      });
    });
    it('400 for a relative target directory, 409 for a pending snapshot', async () => {
      await register();
      await trigger();
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/snapshots/1/persist`).send({ targetDirectory: 'x' }),
        400,
        'body.targetDirectory',
      );
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/snapshots/1/persist`).send({}),
        409,
        'path.snapshotId',
      );
    });
  });

  describe('POST .../discard', () => {
    it('202 DISCARDING; the latest completed snapshot of a running job needs force (409)', async () => {
      await register({ tasks: ['a', 'b'], checkpointing: { numRetained: 5 } });
      await completeCheckpoint();
      await completeCheckpoint();
      const older = await http.post(`${BASE}/jobs/${JOB}/snapshots/1/discard`).send({ reason: 'space' });
      expect(older.status).toBe(202);
      expect(older.body).toEqual({ snapshotId: 1, status: 'DISCARDING', changed: true });
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/snapshots/2/discard`).send({}),
        409,
        'path.snapshotId',
        'latest-completed-retained',
      );
      expect((await http.post(`${BASE}/jobs/${JOB}/snapshots/2/discard`).send({ force: true })).status).toBe(
        202,
      );
    });
    it('400 for a force that is not a boolean', async () => {
      await register();
      expectProblem(
        await http.post(`${BASE}/jobs/${JOB}/snapshots/1/discard`).send({ force: 'yes' }),
        400,
        'body.force',
        'type-boolean',
      );
    });
  });

  describe('GET .../snapshots/:snapshotId', () => {
    it('returns one snapshot; 404 for an unknown one', async () => {
      await register();
      await trigger();
      const res = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`);
      expect(res.body).toMatchObject({
        jobId: JOB,
        snapshotId: 1,
        kind: 'CHECKPOINT',
        status: 'PENDING',
        totalTasks: 2,
        acknowledgedTasks: 0,
      });
      expectProblem(await http.get(`${BASE}/jobs/${JOB}/snapshots/2`), 404, 'path.snapshotId');
      expectProblem(await http.get(`${BASE}/jobs/${JOB}/snapshots/0`), 400, 'path.snapshotId');
    });
  });

  describe('GET /jobs/:jobId/events', () => {
    it('pages through the raw history in order', async () => {
      await register();
      await completeCheckpoint();
      const page1 = await http.get(`${BASE}/jobs/${JOB}/events?limit=2`);
      expect(page1.body.events.map((e: { revision: number; type: string }) => [e.revision, e.type])).toEqual([
        [0, 'JobRegistered'],
        [1, 'SnapshotTriggered'],
      ]);
      expect(page1.body.next).toBe(2);
      const page2 = await http.get(`${BASE}/jobs/${JOB}/events?from=2&limit=10`);
      expect(page2.body.events.map((e: { type: string }) => e.type)).toEqual([
        'TaskAcknowledged',
        'TaskAcknowledged',
        'SnapshotCompleted',
      ]);
      expect(page2.body.next).toBeNull();
      expect(page2.body.events[0].data).toMatchObject({ jobId: JOB, snapshotId: 1, taskId: 'a' });
      expect(page2.body.events[0].metadata.$correlationId).toEqual(expect.any(String));
    });
    it('400 for a bad limit, 404 for an unknown job', async () => {
      await register();
      expectProblem(await http.get(`${BASE}/jobs/${JOB}/events?limit=0`), 400, 'query.limit', 'minimum');
      // Past the largest safe integer too, the route's own maximum is what is said.
      const huge = await http.get(`${BASE}/jobs/${JOB}/events?limit=99999999999999999999`);
      expectProblem(huge, 400, 'query.limit', 'maximum');
      expect(huge.body.detail).toContain('<=1000');
      expect(huge.body.detail).not.toContain('9007199254740991');
      expectProblem(await http.get(`${BASE}/jobs/${JOB}/events?from=x`), 400, 'query.from');
      // Decimal digits only: `from=1e3` read events from revision 1000, `from=` from 0, `limit=0x10` 16.
      for (const query of ['from=1e3', 'from=', 'from=0x2', 'limit=0x10', 'limit=%201']) {
        const field = `query.${query.split('=')[0]}`;
        expectProblem(await http.get(`${BASE}/jobs/${JOB}/events?${query}`), 400, field, 'format-regex');
      }
      expectProblem(await http.get(`${BASE}/jobs/${'e'.repeat(32)}/events`), 404, 'path.jobId');
    });
  });
});
