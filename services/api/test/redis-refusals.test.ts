import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import express from 'express';
import IORedis from 'ioredis';
import request from 'supertest';
import { ReadModel } from '@snapcat/read-model';
import { problemMiddleware, problemResponder } from '../src/problem';
import { startRedisServer } from '../../../test/support/redis';
import { apiFixture, BASE, expectProblem, graphqlOver, JOB, startProjector } from './fixture';

/**
 * A Redis that answers and refuses (decision 0048): out of memory, busy with a script. Redis cannot do it now
 * and may later; the caller did nothing wrong: 503 with Retry-After (GraphQL: UNAVAILABLE), never a 500.
 * Real replies, from a Redis server of the test's own.
 */
describe('Redis answering but refusing: 503, not 500', () => {
  let server: Awaited<ReturnType<typeof startRedisServer>>;
  let redis: IORedis;
  let admin: IORedis;
  const prefix = 'refusals';

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new IORedis(server.url, { maxRetriesPerRequest: 1 });
    admin = new IORedis(server.url);
  });
  afterAll(async () => {
    redis.disconnect();
    admin.disconnect();
    await server.stop();
  });

  const outOfMemory = async <T>(run: () => Promise<T>): Promise<T> => {
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    try {
      return await run();
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
  };

  /** Redis runs a script that does not end: every other client is answered BUSY until it is killed. */
  const busy = async <T>(run: () => Promise<T>): Promise<T> => {
    await admin.config('SET', 'busy-reply-threshold', '20');
    const looping = new IORedis(server.url);
    const script = looping.eval('while true do end', 0).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    try {
      return await run();
    } finally {
      await admin.script('KILL');
      await script;
      looping.disconnect();
    }
  };

  it('an acknowledgement naming a loose file while Redis is out of memory: 503 saying so, nothing recorded (its reservation could not be written)', async () => {
    const fx = apiFixture({ readModel: new ReadModel(redis, prefix), readModelAvailable: () => true });
    try {
      const http = request(fx.app);
      expect((await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] })).status).toBe(201);
      expect((await http.post(`${BASE}/jobs/${JOB}/snapshots`).send({ kind: 'CHECKPOINT' })).status).toBe(
        202,
      );
      const file = join(fx.dir, 'data', 'x', 'f');
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, 'state');
      const ack = await outOfMemory(() =>
        http
          .post(`${BASE}/jobs/${JOB}/snapshots/1/acks`)
          .send({ taskId: 'a', stateHandles: [{ path: file, sizeBytes: 5 }] }),
      );
      expectProblem(ack, 503);
      expect(ack.headers['retry-after']).toBe('1');
      expect(ack.body.detail).toMatch(/Redis cannot answer \(OOM command not allowed/);
      const { body } = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`);
      expect(body).toMatchObject({ status: 'PENDING', acknowledgedTasks: 0 });
    } finally {
      await fx.close();
    }
  });

  it('the job list and a GraphQL query while Redis is busy with a script: 503 and UNAVAILABLE, in Redis’s words', async () => {
    const fx = apiFixture({
      readModel: new ReadModel(redis, prefix),
      readModelAvailable: () => true,
      graphql: graphqlOver({ readModel: new ReadModel(redis, prefix), topic: `${prefix}:events` }),
    });
    try {
      const http = request(fx.app);
      const [list, query] = await busy(() =>
        Promise.all([
          http.get(`${BASE}/jobs`),
          http.post('/graphql').send({ query: '{ jobs { edges { node { id } } } }' }),
        ]),
      );
      expectProblem(list, 503);
      expect(list.body.detail).toMatch(/Redis cannot answer \(BUSY/);
      expect(query.body.errors).toEqual([
        expect.objectContaining({
          message: expect.stringMatching(/^the read model is unavailable: Redis cannot answer \(BUSY/),
          extensions: expect.objectContaining({ code: 'UNAVAILABLE' }),
        }),
      ]);
    } finally {
      await fx.close();
    }
  });

  it('a GraphQL mutation recorded, whose read back meets Redis busy: RECORDED, not UNAVAILABLE (a client would send it again), and recorded once', async () => {
    const readModel = new ReadModel(redis, `${prefix}-recorded`);
    const fx = apiFixture({
      graphql: graphqlOver({ readModel, topic: `${prefix}-recorded:events` }),
    });
    const projectorRedis = new IORedis(server.url);
    const projector = await startProjector(fx.store, projectorRedis, `${prefix}-recorded`);
    // The read back after the wait meets a Redis busy with a script (a real BUSY reply).
    const readBack = readModel.snapshot.bind(readModel);
    let release: (() => Promise<void>) | undefined;
    readModel.snapshot = async (...args) => {
      await admin.config('SET', 'busy-reply-threshold', '20');
      const looping = new IORedis(server.url);
      const script = looping.eval('while true do end', 0).catch(() => undefined);
      release = async () => {
        await admin.script('KILL');
        await script;
        looping.disconnect();
      };
      await new Promise((resolve) => setTimeout(resolve, 100));
      return readBack(...args);
    };
    try {
      const http = request(fx.app);
      expect((await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] })).status).toBe(201);
      const res = await http
        .post('/graphql')
        .send({ query: `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT) { id } }` });
      await release?.();
      expect(release).toBeDefined();
      expect(res.body.errors).toEqual([
        expect.objectContaining({ extensions: expect.objectContaining({ code: 'RECORDED' }) }),
      ]);
      const { body: job } = await http.get(`${BASE}/jobs/${JOB}`);
      expect(job.snapshots.map((s: { snapshotId: number }) => s.snapshotId)).toEqual([1]);
    } finally {
      await release?.().catch(() => undefined);
      await projector.stop();
      projectorRedis.disconnect();
      await fx.close();
    }
  });

  it('a GraphQL mutation recorded, one of whose fields meets Redis busy after it (the job’s tasks): RECORDED at that field, not UNAVAILABLE', async () => {
    const readModel = new ReadModel(redis, `${prefix}-fields`);
    const fx = apiFixture({ graphql: graphqlOver({ readModel, topic: `${prefix}-fields:events` }) });
    const projectorRedis = new IORedis(server.url);
    const projector = await startProjector(fx.store, projectorRedis, `${prefix}-fields`);
    const tasks = readModel.tasks.bind(readModel);
    readModel.tasks = (...args) => busy(() => tasks(...args));
    try {
      const http = request(fx.app);
      expect((await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] })).status).toBe(201);
      const res = await http.post('/graphql').send({
        query: `mutation { setJobStatus(jobId: "${JOB}", status: SUSPENDED) { id tasks } }`,
      });
      expect(res.body.errors).toEqual([
        expect.objectContaining({
          path: ['setJobStatus', 'tasks'],
          extensions: expect.objectContaining({ code: 'RECORDED' }),
        }),
      ]);
      expect((await http.get(`${BASE}/jobs/${JOB}`)).body.status).toBe('SUSPENDED');
    } finally {
      await projector.stop();
      projectorRedis.disconnect();
      await fx.close();
    }
  });

  it('any route meeting such a reply outside the read model (the problem responder): 503 with Retry-After', async () => {
    const app = express();
    app.get('/write', async (_req, res, next) => {
      try {
        res.json(await redis.set(`${prefix}:k`, 'v'));
      } catch (error) {
        next(error);
      }
    });
    const logged: string[] = [];
    app.use(problemMiddleware(problemResponder((msg) => logged.push(msg))));
    const res = await outOfMemory(() => request(app).get('/write'));
    expectProblem(res, 503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toMatchObject({ type: 'urn:snapcat:problem:unavailable' });
    expect(res.body.detail).toMatch(/^Redis cannot answer now: OOM command not allowed/);
    expect(logged).toEqual(['redis could not answer a request']);
    expect((await request(app).get('/write')).status).toBe(200);
  });
});
