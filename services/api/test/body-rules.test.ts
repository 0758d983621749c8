import request from 'supertest';
import { apiFixture, BASE, expectProblem, JOB } from './fixture';

/**
 * Every REST route that takes a body, with a body that is valid for it. Each is sent once with an unknown
 * field (400 naming it) and once over the size limit (413): a route added here without the rules fails.
 */
const ROUTES: [method: 'put' | 'post', path: string, body: object | object[]][] = [
  ['put', `/jobs/${JOB}`, { tasks: ['a', 'b'] }],
  ['post', `/jobs/${JOB}/status`, { status: 'RUNNING' }],
  ['post', `/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' }],
  ['post', `/jobs/${JOB}/snapshots/1/acks`, { taskId: 'a' }],
  ['post', `/jobs/${JOB}/snapshots/1/acks`, [{ taskId: 'a' }]],
  ['post', `/jobs/${JOB}/snapshots/1/decline`, { taskId: 'a' }],
  ['post', `/jobs/${JOB}/snapshots/1/persist`, {}],
  ['post', `/jobs/${JOB}/snapshots/1/discard`, {}],
  ['put', `/jobs/${JOB}/savepoint-schedule`, { every: 'PT1M' }],
];

describe('every REST body: unknown fields and oversized bodies', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeAll(async () => {
    fx = apiFixture();
    http = request(fx.app);
    await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a', 'b'] });
    await http.post(`${BASE}/jobs/${JOB}/snapshots`).send({ kind: 'CHECKPOINT' });
  });
  afterAll(() => fx.close());

  const withUnknown = (body: object | object[]) =>
    Array.isArray(body) ? body.map((item) => ({ ...item, unexpected: 1 })) : { ...body, unexpected: 1 };

  it.each(ROUTES)('%s %s: an unknown field is a 400 naming it', async (method, path, body) => {
    const before = (await fx.store.readStream(`snapcat-job-${JOB}`)).length;
    const res = await http[method](`${BASE}${path}`).send(withUnknown(body));
    const field = Array.isArray(body) ? 'body.0.unexpected' : 'body.unexpected';
    expectProblem(res, 400, field, 'unknown-field');
    // A 4xx writes nothing.
    expect((await fx.store.readStream(`snapcat-job-${JOB}`)).length).toBe(before);
  });

  it.each(ROUTES)('%s %s: a body over the limit is a 413 problem', async (method, path) => {
    const huge = `{"pad":"${'x'.repeat(17 * 2 ** 20)}"}`;
    const res = await http[method](`${BASE}${path}`).set('content-type', 'application/json').send(huge);
    expectProblem(res, 413);
    expect(res.body).toMatchObject({ status: 413 });
  });
});

describe('PUT savepoint-schedule: retention and format (docs/domain.md R49, R53)', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeAll(async () => {
    fx = apiFixture();
    http = request(fx.app);
    await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] });
  });
  afterAll(() => fx.close());

  it('maxCount 0 is a 400 naming body.retention.maxCount, and writes nothing', async () => {
    const before = (await fx.store.readStream(`snapcat-job-${JOB}`)).length;
    const res = await http
      .put(`${BASE}/jobs/${JOB}/savepoint-schedule`)
      .send({ every: 'PT1S', retention: { maxCount: 0 } });
    expectProblem(res, 400, 'body.retention.maxCount');
    expect((await fx.store.readStream(`snapcat-job-${JOB}`)).length).toBe(before);
  });

  it('maxCount 1 and a formatType are accepted and shown', async () => {
    const schedule = { every: 'PT1S', retention: { maxCount: 1 }, formatType: 'NATIVE' };
    const res = await http.put(`${BASE}/jobs/${JOB}/savepoint-schedule`).send(schedule);
    expect(res.status).toBe(200);
    expect(res.body.schedule).toEqual(schedule);
    expect((await http.get(`${BASE}/jobs/${JOB}/savepoint-schedule`)).body.schedule).toEqual(schedule);
    const bad = await http
      .put(`${BASE}/jobs/${JOB}/savepoint-schedule`)
      .send({ ...schedule, formatType: 'x' });
    expectProblem(bad, 400, 'body.formatType');
  });
});
