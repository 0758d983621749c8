import IORedis from 'ioredis';
import request from 'supertest';
import { ReadModel } from '@snapcat/read-model';
import { deleteKeys } from '../../../test/support/redis';
import { apiFixture, JOB, graphqlOver } from './fixture';

/*
 * Issue 18, item 1: REST and GraphQL run the same use cases (src/use-cases.ts), so the same bad input or the
 * same refusal reads the same through both: the same rule, the same field (GraphQL names the argument, REST
 * its location too), the status REST answers and the code GraphQL gives. Each case below goes through both.
 */

const LONG = 'x'.repeat(200);
const GRAPHQL_CODE: Record<number, string> = {
  400: 'BAD_USER_INPUT',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
};

interface Case {
  name: string;
  rest: [method: 'post' | 'put', path: string, body: object];
  graphql: string;
  status: number;
  rule: string;
  field: string;
}

const CASES: Case[] = [
  {
    name: 'a trigger id over 128 characters',
    rest: ['post', `/api/v1/jobs/${JOB}/snapshots`, { kind: 'SAVEPOINT', triggerId: LONG }],
    graphql: `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT, triggerId: "${LONG}") { id } }`,
    status: 400,
    rule: 'max-length',
    field: 'triggerId',
  },
  {
    name: 'a target directory outside the storage roots',
    rest: ['post', `/api/v1/jobs/${JOB}/snapshots`, { kind: 'SAVEPOINT', targetDirectory: '/etc/sp' }],
    graphql: `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT, targetDirectory: "/etc/sp") { id } }`,
    status: 400,
    rule: 'within-storage-roots',
    field: 'targetDirectory',
  },
  {
    name: 'a persist into a relative directory',
    rest: ['post', `/api/v1/jobs/${JOB}/snapshots/1/persist`, { targetDirectory: 'relative/dir' }],
    graphql: `mutation { persistSnapshot(jobId: "${JOB}", snapshotId: 1, targetDirectory: "relative/dir") { id } }`,
    status: 400,
    rule: 'absolute-location', // Location's refinement: an absolute path or a URI
    field: 'targetDirectory',
  },
  {
    name: 'a discard reason over 4,096 characters',
    rest: ['post', `/api/v1/jobs/${JOB}/snapshots/1/discard`, { reason: 'r'.repeat(5000) }],
    graphql: `mutation { discardSnapshot(jobId: "${JOB}", snapshotId: 1, reason: "${'r'.repeat(5000)}") { id } }`,
    status: 400,
    rule: 'max-length',
    field: 'reason',
  },
  {
    name: 'a job id that is not a Flink JobID',
    rest: ['post', '/api/v1/jobs/nope/status', { status: 'FAILED' }],
    graphql: 'mutation { setJobStatus(jobId: "nope", status: FAILED) { id } }',
    status: 400,
    rule: 'format-regex',
    field: 'jobId',
  },
  {
    name: 'a snapshot that does not exist',
    rest: ['post', `/api/v1/jobs/${JOB}/snapshots/999/persist`, {}],
    graphql: `mutation { persistSnapshot(jobId: "${JOB}", snapshotId: 999) { id } }`,
    status: 404,
    rule: 'snapshot-exists',
    field: 'snapshotId',
  },
  {
    name: "a savepoint of a job that is not running (Flink's pre-flight check)",
    rest: ['post', `/api/v1/jobs/${JOB}/snapshots`, { kind: 'SAVEPOINT' }],
    graphql: `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT) { id } }`,
    status: 409,
    rule: 'NOT_ALL_REQUIRED_TASKS_RUNNING',
    field: 'kind',
  },
];

describe('REST and GraphQL run the same use cases', () => {
  const prefix = `snapcat-test-use-cases-${process.pid}-${Date.now().toString(36)}`;
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const fx = apiFixture({
    graphql: graphqlOver({ readModel: new ReadModel(redis, prefix), topic: `${prefix}:events` }),
  });
  const http = request(fx.app);

  beforeAll(async () => {
    await http
      .put(`/api/v1/jobs/${JOB}`)
      .send({ tasks: ['a'] })
      .expect(201);
    await http.post(`/api/v1/jobs/${JOB}/status`).send({ status: 'SUSPENDED' }).expect(200);
  });
  afterAll(async () => {
    await fx.close();
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it.each(CASES)('$name: the same rule through both', async ({ rest, graphql, status, rule, field }) => {
    const [method, path, body] = rest;
    const viaRest = await http[method](path).send(body);
    const viaGraphql = await http.post('/graphql').send({ query: graphql });
    const problem = viaRest.body.errors?.[0];
    const error = viaGraphql.body.errors?.[0];
    expect({
      status: viaRest.status,
      rule: problem?.rule,
      field: problem?.field.replace(/^(body|path)\./, ''),
    }).toEqual({ status, rule, field });
    expect({
      code: error?.extensions?.code,
      rule: error?.extensions?.rule,
      field: error?.extensions?.field,
    }).toEqual({ code: GRAPHQL_CODE[status], rule, field });
    // The same words, naming GraphQL's argument where REST names the body's or the path's field.
    expect(error?.message).toBe(viaRest.body.detail.split(problem.field).join(field));
    expect(error?.message).not.toMatch(/\b(body|path)\.\w/);
  });

  it('a place for snapshots inside a checkpoint directory or area, or a savepoint directory, is refused (400 outside-snapshots), through both', async () => {
    const other = 'b'.repeat(32);
    const { checkpointDir, savepointDir } = fx.defaults;
    const places = [
      `${checkpointDir}/${other}/chk-2`, // a walkthrough's: deleted when that job subsumed its chk-2
      `${checkpointDir}/${other}/shared/sp`,
      `${savepointDir}/savepoint-bbbbbb-0123456789ab/nested`,
    ];
    for (const place of places) {
      const viaRest = await http
        .post(`/api/v1/jobs/${JOB}/snapshots`)
        .send({ kind: 'SAVEPOINT', targetDirectory: place });
      expect([viaRest.status, viaRest.body.errors?.[0]?.rule]).toEqual([400, 'outside-snapshots']);
      const viaGraphql = await http.post('/graphql').send({
        query: `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT, targetDirectory: "${place}") { id } }`,
      });
      expect(viaGraphql.body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        rule: 'outside-snapshots',
      });
    }
    const configured = await http
      .put(`/api/v1/jobs/${JOB}`)
      .send({ tasks: ['a'], storage: { checkpointDir: `${checkpointDir}/${other}/chk-3` } });
    expect([configured.status, configured.body.errors?.[0]?.field]).toEqual([
      400,
      'body.storage.checkpointDir',
    ]);
    // Beside them is fine: the job's area root, a directory next to the savepoints.
    const beside = await http
      .post(`/api/v1/jobs/${JOB}/snapshots`)
      .send({ kind: 'SAVEPOINT', targetDirectory: `${savepointDir}/team-x` });
    expect(beside.body.errors?.[0]?.rule).not.toBe('outside-snapshots');
  });

  it("REST's events and GraphQL's history show each event alike (one rendering, recordedEventView)", async () => {
    const rest = (await http.get(`/api/v1/jobs/${JOB}/events`).expect(200)).body.events;
    const fields = 'eventId type revision position occurredAt recordedAt snapshotId data metadata';
    const graphql = await http
      .post('/graphql')
      .send({ query: `{ history(jobId: "${JOB}", first: 100) { edges { node { ${fields} } } } }` });
    expect(rest.length).toBeGreaterThanOrEqual(2);
    expect(rest[0].position).toMatch(/^\d+:\d+$/);
    expect(graphql.body.data.history.edges.map((e: { node: object }) => e.node)).toEqual(rest);
  });

  it('nothing any of them asked for was written: the job has only its registration and status change', async () => {
    const events = await http.get(`/api/v1/jobs/${JOB}/events`).expect(200);
    const types = events.body.events.map((e: { type: string }) => e.type);
    expect(types.filter((t: string) => t !== 'SnapshotTriggerRejected')).toEqual([
      'JobRegistered',
      'JobStatusChanged',
    ]);
  });

  it('a mutation stored but not shown by the read model in time (no projector runs here) says RECORDED, not an unexpected error', async () => {
    const res = await http
      .post('/graphql')
      .send({ query: `mutation { setJobStatus(jobId: "${JOB}", status: RUNNING) { id status } }` });
    const [error] = res.body.errors;
    expect(error.extensions).toMatchObject({
      code: 'RECORDED',
      position: expect.stringMatching(/^\d+:\d+$/),
    });
    expect(error.message).toMatch(/^recorded \(event store position \d+:\d+\), .*do not send it again/);
    // Durable, as the answer says: the job's state (REST reads the event store) has it.
    expect((await http.get(`/api/v1/jobs/${JOB}`).expect(200)).body.status).toBe('RUNNING');
  }, 15_000);
});

describe('a mutation while Redis is unreachable', () => {
  const prefix = `snapcat-test-use-cases-down-${process.pid}-${Date.now().toString(36)}`;
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  // The heartbeat says Redis is unreachable: errors of queries are UNAVAILABLE, but a mutation the store
  // recorded is not one (a walkthrough's console click, told "unavailable", was sent again: two savepoints).
  const fx = apiFixture({
    graphql: graphqlOver({
      readModel: new ReadModel(redis, prefix),
      topic: `${prefix}:events`,
      readModelAvailable: () => false,
    }),
  });
  const http = request(fx.app);
  afterAll(async () => {
    await fx.close();
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('says RECORDED with its position, not UNAVAILABLE', async () => {
    await http
      .put(`/api/v1/jobs/${JOB}`)
      .send({ tasks: ['a'] })
      .expect(201);
    const res = await http
      .post('/graphql')
      .send({ query: `mutation { setJobStatus(jobId: "${JOB}", status: SUSPENDED) { id status } }` });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({
      code: 'RECORDED',
      position: expect.stringMatching(/^\d+:\d+$/),
    });
    expect((await http.get(`/api/v1/jobs/${JOB}`).expect(200)).body.status).toBe('SUSPENDED');
  }, 15_000);
});

describe('a mutation while the event store cannot take it', () => {
  const prefix = `snapcat-test-use-cases-store-down-${process.pid}-${Date.now().toString(36)}`;
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const fx = apiFixture({
    graphql: graphqlOver({ readModel: new ReadModel(redis, prefix), topic: `${prefix}:events` }),
  });
  const http = request(fx.app);
  afterAll(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('is UNAVAILABLE in the words REST’s 503 uses, not an unexpected error: nothing was recorded, a retry is right', async () => {
    await http
      .put(`/api/v1/jobs/${JOB}`)
      .send({ tasks: ['a'] })
      .expect(201);
    await fx.close();
    const res = await http
      .post('/graphql')
      .send({ query: `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT) { id } }` });
    const rest = await http.post(`/api/v1/jobs/${JOB}/snapshots`).send({ kind: 'SAVEPOINT' });
    expect(rest.status).toBe(503);
    expect(res.body.errors).toEqual([
      expect.objectContaining({ message: rest.body.detail, extensions: { code: 'UNAVAILABLE' } }),
    ]);
  });
});
