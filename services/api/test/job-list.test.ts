import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import IORedis from 'ioredis';
import request from 'supertest';
import { rebuildReadModel, ReadModel, ReadModelKeys } from '@snapcat/read-model';
import { deleteKeys } from '../../../test/support/redis';
import { apiFixture, BASE, expectProblem, JOB } from './fixture';

const REDIS_URL = 'redis://127.0.0.1:6379';
const JOBS = 250;
/** 250 job ids, in the order the list answers them (by id); every fifth job is SUSPENDED. */
const ids = Array.from({ length: JOBS }, (_, i) => (i * 7919 + 1).toString(16).padStart(32, '0')).sort();
const suspended = ids.filter((_, i) => i % 5 === 0);

interface JobPage {
  jobs: { jobId: string; status: string; tasks?: unknown; snapshots?: unknown }[];
  nextCursor: string | null;
}

describe('GET /api/v1/jobs (the read model in a real Redis)', () => {
  const prefix = `snapcat-test-job-list-${process.pid}-${Date.now().toString(36)}`;
  let fx: ReturnType<typeof apiFixture>;
  let redis: IORedis;
  let http: ReturnType<typeof request>;

  beforeAll(async () => {
    redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
    fx = apiFixture({ readModel: new ReadModel(redis, prefix), readModelAvailable: () => true });
    http = request(fx.app);
    // Registered in another order than the list's, so the order is the list's own.
    for (const [i, jobId] of [...ids].reverse().entries()) {
      const status = suspended.includes(jobId) ? 'SUSPENDED' : 'RUNNING';
      const res = await http.put(`${BASE}/jobs/${jobId}`).send({ name: `job-${i}`, tasks: ['a'], status });
      expect(res.status).toBe(201);
    }
    // What the projector keeps up to date, built at once from the log.
    await rebuildReadModel(fx.store, redis, prefix);
  }, 60_000);
  afterAll(async () => {
    await fx.close();
    redis.disconnect();
    await deleteKeys(prefix, REDIS_URL);
  });

  /** Every page of a listing, following nextCursor. */
  const pages = async (query: Record<string, string>) => {
    const all: JobPage[] = [];
    let after: string | null = null;
    do {
      const res = await http.get(`${BASE}/jobs`).query({ ...query, ...(after ? { after } : {}) });
      expect(res.status).toBe(200);
      const page = res.body as JobPage;
      all.push(page);
      after = page.nextCursor;
      expect(all.length).toBeLessThan(JOBS + 2); // a cursor that never ends fails here
    } while (after);
    return all;
  };

  it('pages through 250 jobs 100 at a time (the default): each exactly once, in job id order', async () => {
    const all = await pages({});
    expect(all.map((p) => p.jobs.length)).toEqual([100, 100, 50]);
    expect(all.flatMap((p) => p.jobs.map((j) => j.jobId))).toEqual(ids);
    expect(all.at(-1)!.nextCursor).toBeNull();
  });

  it.each([1, 7, 249, 250, 1000])('with limit=%i: each job exactly once, in order', async (limit) => {
    const all = await pages({ limit: String(limit) });
    expect(all.flatMap((p) => p.jobs.map((j) => j.jobId))).toEqual(ids);
    expect(all.slice(0, -1).every((p) => p.jobs.length === limit)).toBe(true);
    // No empty last page when the jobs fill the pages exactly: nextCursor says whether more exist.
    expect(all.at(-1)!.jobs.length).toBeGreaterThan(0);
  });

  it('answers summaries: the status, counts and restore point, without tasks or snapshots', async () => {
    const { body } = await http.get(`${BASE}/jobs`).query({ limit: '1' });
    expect(body.jobs[0]).toMatchObject({
      jobId: ids[0],
      status: 'SUSPENDED',
      counts: { total: 0 },
      restorePoint: null,
    });
    expect(body.jobs[0]).not.toHaveProperty('tasks');
    expect(body.jobs[0]).not.toHaveProperty('snapshots');
  });

  it('status filters, and pages the filtered list', async () => {
    const all = await pages({ status: 'SUSPENDED', limit: '20' });
    expect(all.map((p) => p.jobs.length)).toEqual([20, 20, 10]);
    expect(all.flatMap((p) => p.jobs.map((j) => j.jobId))).toEqual(suspended);
    expect(all.flatMap((p) => p.jobs.map((j) => j.status)).every((s) => s === 'SUSPENDED')).toBe(true);
    const running = await pages({ status: 'RUNNING' });
    expect(running.flatMap((p) => p.jobs.map((j) => j.jobId))).toEqual(
      ids.filter((id) => !suspended.includes(id)),
    );
    const none = await http.get(`${BASE}/jobs`).query({ status: 'FAILED' });
    expect(none.body).toEqual({ jobs: [], nextCursor: null });
  });

  it.each([
    ['limit=0', 'query.limit', 'minimum'],
    ['limit=1001', 'query.limit', 'maximum'],
    ['limit=abc', 'query.limit', 'format-regex'],
    ['limit=1.5', 'query.limit', 'format-regex'],
    // Decimal digits only: these were coerced to 16, 10, 5 and 3.
    ['limit=0x10', 'query.limit', 'format-regex'],
    ['limit=1e1', 'query.limit', 'format-regex'],
    ['limit=%205', 'query.limit', 'format-regex'],
    ['limit=0b11', 'query.limit', 'format-regex'],
    ['limit=', 'query.limit', 'format-regex'],
    ['status=PAUSED', 'query.status', 'one-of'],
    ['status=running', 'query.status', 'one-of'],
    ['status=RUNNING&status=FAILED', 'query.status', 'one-of'],
    ['after=not-a-cursor', 'query.after', 'cursor'],
    ['after=', 'query.after', 'min-length'],
    ['color=red', 'query.color', 'unknown-field'],
    ['namespace=Team_A', 'query.namespace', 'format-regex'],
  ])('?%s is a 400 problem naming %s and %s', async (query, field, rule) => {
    const res = await http.get(`${BASE}/jobs?${query}`);
    expectProblem(res, 400, field, rule);
  });

  it('a cursor of another kind (a GraphQL snapshot cursor) is refused', async () => {
    const snapshotCursor = Buffer.from('snapshot:7').toString('base64url');
    expectProblem(await http.get(`${BASE}/jobs?after=${snapshotCursor}`), 400, 'query.after', 'cursor');
  });
});

describe('GET /api/v1/jobs without the read model', () => {
  const list = async (options: Parameters<typeof apiFixture>[0]) => {
    const fx = apiFixture(options);
    try {
      return await request(fx.app).get(`${BASE}/jobs`);
    } finally {
      await fx.close();
    }
  };
  const expectUnavailable = (res: Awaited<ReturnType<typeof list>>, detail: RegExp) => {
    expectProblem(res, 503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toMatchObject({ type: 'urn:snapcat:problem:read-model-unavailable', status: 503 });
    expect(res.body.detail).toMatch(detail);
    expect(res.body.detail).toMatch(/REST commands keep working/);
  };

  it('503 at once while Redis is known to be unreachable', async () => {
    const jobs = jest.fn();
    const res = await list({
      readModel: {
        jobs,
        jobIdsStartingWith: jest.fn(),
        jobIdsWithSnapshotsIn: jest.fn(),
        waitFor: jest.fn(),
        readiness: async () => 'complete' as const,
      },
      readModelAvailable: () => false,
    });
    expectUnavailable(res, /^the read model is unavailable: Redis is unreachable/);
    expect(jobs).not.toHaveBeenCalled();
  });

  it('503 when a query fails because Redis does not answer (a real client, nothing listening)', async () => {
    // disconnectTimeout 0: ioredis would otherwise keep a 2 s timer for the socket that never opened.
    const dead = new IORedis('redis://127.0.0.1:1', {
      commandTimeout: 200,
      retryStrategy: () => null,
      disconnectTimeout: 0,
    });
    dead.on('error', () => {});
    try {
      const res = await list({ readModel: new ReadModel(dead, 'nowhere'), readModelAvailable: () => true });
      expectUnavailable(res, /Redis is unreachable \((Connection is closed|Command timed out)/);
    } finally {
      dead.disconnect();
    }
  });

  it('an acknowledgement naming a loose file is a 503 while Redis does not answer, and is not recorded: its reservation could not be made (decision 0047); one naming none is not held up', async () => {
    const dead = new IORedis('redis://127.0.0.1:1', {
      commandTimeout: 200,
      retryStrategy: () => null,
      disconnectTimeout: 0,
    });
    dead.on('error', () => {});
    const fx = apiFixture({ readModel: new ReadModel(dead, 'nowhere'), readModelAvailable: () => true });
    try {
      const http = request(fx.app);
      expect((await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a', 'b'] })).status).toBe(201);
      expect((await http.post(`${BASE}/jobs/${JOB}/snapshots`).send({ kind: 'CHECKPOINT' })).status).toBe(
        202,
      );
      // A client's own layout: no Flink layout names whose the file is.
      const file = join(fx.dir, 'data', 'x', 'f');
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, 'state');
      const acks = `${BASE}/jobs/${JOB}/snapshots/1/acks`;
      const loose = await http.post(acks).send({ taskId: 'a', stateHandles: [{ path: file, sizeBytes: 5 }] });
      expectProblem(loose, 503);
      expect(loose.body.detail).toMatch(
        /Redis is unreachable .*another job's discard is deleting what it names/,
      );
      const plain = await http.post(acks).send({ taskId: 'b' });
      expect(plain.body).toMatchObject({ result: 'SUCCESS', snapshotStatus: 'PENDING' });
      const { body } = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`);
      expect(body).toMatchObject({ status: 'PENDING', acknowledgedTasks: 1 }); // b's alone
    } finally {
      await fx.close();
      dead.disconnect();
    }
  });

  it.each([
    [
      'being rebuilt (its projector began, and has not caught up with the log)',
      'rebuilding',
      /rebuilt from the event log/,
    ],
    ['never built (no projector began on it)', 'absent', /no projector has built it/],
  ] as const)('a read model %s: 503 after a moment, not a fragment of the list', async (_, state, detail) => {
    const prefix = `snapcat-test-job-list-partial-${process.pid}-${Date.now().toString(36)}`;
    const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const space = new ReadModelKeys(prefix).space(1);
      if (state === 'rebuilding') await redis.set(space.origin, new Date().toISOString());
      const readModel = new ReadModel(redis, prefix);
      const jobs = jest.spyOn(readModel, 'jobs');
      const res = await list({ readModel, readModelAvailable: () => true });
      expectUnavailable(res, detail);
      expect(res.body.readModel).toBe(state);
      expect(jobs).not.toHaveBeenCalled();
      // The process stays ready (REST commands work), saying so.
      const fx = apiFixture({ readModel, readModelAvailable: () => true, redisState: () => 'ready' });
      const ready = await request(fx.app).get('/readyz');
      await fx.close();
      expect({ status: ready.status, readModel: ready.body.readModel }).toEqual({
        status: 200,
        readModel: state,
      });
      // Complete: listed.
      await redis.set(space.complete, '1');
      expect((await list({ readModel, readModelAvailable: () => true })).status).toBe(200);
    } finally {
      redis.disconnect();
      await deleteKeys(prefix, REDIS_URL);
    }
  });

  it('503 when this process has no read model', async () => {
    expectUnavailable(await list({}), /no read model/);
  });

  it('a bad query is still a 400, not a 503', async () => {
    const fx = apiFixture({ readModelAvailable: () => false });
    try {
      expectProblem(await request(fx.app).get(`${BASE}/jobs?limit=0`), 400, 'query.limit', 'minimum');
    } finally {
      await fx.close();
    }
  });

  it('any other failure of the read model is a 500, not a 503', async () => {
    const jobs = jest.fn().mockRejectedValue(new Error('bug'));
    const res = await list({
      readModel: {
        jobs,
        jobIdsStartingWith: jest.fn(),
        jobIdsWithSnapshotsIn: jest.fn(),
        waitFor: jest.fn(),
        readiness: async () => 'complete' as const,
      },
      readModelAvailable: () => true,
    });
    expectProblem(res, 500);
  });
});
