import request from 'supertest';
import { newToken, tokenLine, parseTokenList } from '@snapcat/runtime';
import express from 'express';
import { JobDeletedError } from '@snapcat/application';
import { accessMiddleware, isLimited, principalOf } from '../src/access';
import { problemMiddleware, problemResponder } from '../src/problem';
import type { App } from '../src/app';
import { apiFixture, JOB } from './fixture';

/** One token of each scope these tests use, for every namespace. */
const TOKEN = { runtime: newToken(), operator: newToken(), admin: newToken() };
const TOKENS = parseTokenList(
  Object.entries(TOKEN)
    .map(([scope, token]) =>
      tokenLine({ name: scope, scopes: [scope as keyof typeof TOKEN], namespaces: '*' }, token),
    )
    .join('\n'),
);
const bearer = (scope: keyof typeof TOKEN) => ({ authorization: `Bearer ${TOKEN[scope]}` });

/** What a page of another site can make a browser send without a preflight: a text/plain POST. */
const postFromPage = (app: App) =>
  request(app)
    .post(`/api/v1/jobs/${JOB}/snapshots`)
    .set('origin', 'https://evil.example')
    .set('content-type', 'text/plain')
    .send('');

/** What a page in a browser could make the API do: cross-site requests and DNS rebinding (issue 18). */
describe('requests a browser was tricked into sending', () => {
  const fixture = apiFixture();
  afterAll(() => fixture.close());
  const put = () =>
    request(fixture.app)
      .put(`/api/v1/jobs/${JOB}`)
      .set('content-type', 'application/json')
      .send({ name: 'orders', tasks: ['t0'] });

  it('a change from another origin is refused, whatever its content type; from the service’s own origin it goes through', async () => {
    await put().expect(201);
    const evil = await postFromPage(fixture.app);
    expect(evil.status).toBe(403);
    expect(evil.body.errors).toEqual([
      expect.objectContaining({ field: 'header.origin', rule: 'same-origin' }),
    ]);
    const sandboxed = await request(fixture.app).post(`/api/v1/jobs/${JOB}/snapshots`).set('origin', 'null');
    expect(sandboxed.status).toBe(403);
    expect(
      (await request(fixture.app).get(`/api/v1/jobs/${JOB}`).set('origin', 'https://evil.example')).status,
    ).toBe(200);
    const own = await request(fixture.app)
      .post(`/api/v1/jobs/${JOB}/snapshots`)
      .set('host', 'localhost:8080')
      .set('origin', 'http://localhost:8080')
      .set('content-type', 'application/json')
      .send({ kind: 'SAVEPOINT' });
    expect(own.body).toMatchObject({ snapshotId: 1 });
    // Programs send no Origin at all.
    const ack = await request(fixture.app)
      .post(`/api/v1/jobs/${JOB}/snapshots/1/acks`)
      .send({ taskId: 't0' });
    expect(ack.body).toMatchObject({ result: 'SUCCESS' });
  });

  it('without tokens a Host that is not a loopback name (DNS rebinding) is refused, reads too', async () => {
    for (const host of ['localhost', '127.0.0.1:8080', '[::1]:8080', 'LOCALHOST:1']) {
      expect((await request(fixture.app).get('/healthz').set('host', host)).status).toBe(200);
    }
    const rebound = await request(fixture.app)
      .get(`/api/v1/jobs/${JOB}`)
      .set('host', 'attacker.example:8080');
    expect(rebound.status).toBe(403);
    expect(rebound.body.errors).toEqual([
      expect.objectContaining({ field: 'header.host', rule: 'loopback' }),
    ]);
  });

  it('with tokens (listening beyond loopback, perhaps behind a proxy) neither rule applies: a bearer token is no ambient credential', async () => {
    const guarded = apiFixture({ tokens: TOKENS });
    try {
      const res = await request(guarded.app)
        .put(`/api/v1/jobs/${JOB}`)
        .set('host', 'snapcat.internal:8080')
        .set('origin', 'https://snapcat.example.com')
        .set(bearer('admin'))
        .send({ tasks: ['t0'] });
      expect(res.status).toBe(201);
      // Without the token the page gets nowhere anyway.
      expect((await postFromPage(guarded.app)).status).toBe(401);
    } finally {
      await guarded.close();
    }
  });
});

describe('a managed job’s source', () => {
  it('needs the operator scope: a runtime token may register jobs, not point snapcat at a Flink cluster', async () => {
    const guarded = apiFixture({ tokens: TOKENS });
    try {
      const managed = { tasks: ['t0'], source: { type: 'flink', cluster: 'nowhere' } };
      const refused = await request(guarded.app)
        .put(`/api/v1/jobs/${JOB}`)
        .set(bearer('runtime'))
        .send(managed);
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ requiredScope: 'operator' });
      // The operator gets past the scope (to the check that the cluster is registered).
      const operated = await request(guarded.app)
        .put(`/api/v1/jobs/${JOB}`)
        .set(bearer('operator'))
        .send(managed);
      expect(operated.body.errors).toEqual([expect.objectContaining({ rule: 'cluster-registered' })]);
      // Without a source a runtime token registers the job as before.
      await request(guarded.app)
        .put(`/api/v1/jobs/${JOB}`)
        .set(bearer('runtime'))
        .send({ tasks: ['t0'] })
        .expect(201);
    } finally {
      await guarded.close();
    }
  });
});

describe('a managed job of another namespace', () => {
  it('is refused as unknown without asking its cluster about it: Flink hears nothing of a job the caller may not see', async () => {
    const team = newToken();
    const tokens = parseTokenList(
      [
        tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, TOKEN.admin),
        tokenLine({ name: 'team', scopes: ['operator'], namespaces: ['team-a'] }, team),
      ].join('\n'),
    );
    const asked: string[] = [];
    const fixture = apiFixture({
      tokens,
      flinkJobStatus: async (_cluster, jobId) => {
        asked.push(jobId);
        return 'RUNNING';
      },
    });
    try {
      const admin = { authorization: `Bearer ${TOKEN.admin}` };
      await request(fixture.app)
        .put('/api/v1/clusters/shared')
        .set(admin)
        .send({ restUrl: 'http://flink.example:8081', namespaces: ['team-a', 'team-b'] })
        .expect(201);
      await request(fixture.app)
        .put(`/api/v1/jobs/${JOB}`)
        .set(admin)
        .send({ namespace: 'team-b', tasks: ['t0'] })
        .expect(201);
      const managed = { namespace: 'team-a', source: { type: 'flink', cluster: 'shared' } };
      const refused = await request(fixture.app)
        .put(`/api/v1/jobs/${JOB}`)
        .set({ authorization: `Bearer ${team}` })
        .send(managed);
      expect(refused.status).toBe(404);
      expect(asked).toEqual([]);
      // A job of its own namespace is asked about, as before.
      const own = 'a'.repeat(32);
      await request(fixture.app)
        .put(`/api/v1/jobs/${own}`)
        .set({ authorization: `Bearer ${team}` })
        .send(managed)
        .expect(201);
      expect(asked).toEqual([own]);
    } finally {
      await fixture.close();
    }
  });
});

describe('a hard-deleted job, as each caller may be told of it', () => {
  const DELETED = 'de1e7ed0beef0000de1e7ed0beef0000';
  const team = newToken();
  const tokens = parseTokenList(
    [
      tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, TOKEN.admin),
      tokenLine({ name: 'team', scopes: ['operator'], namespaces: ['team-a'] }, team),
    ].join('\n'),
  );
  // The route as the API's own: the access middleware, then the error handlers, around a read whose job
  // stream was hard-deleted (the bus throws JobDeletedError).
  const app = express();
  app.use(accessMiddleware({ tokens }));
  const deleted = () => {
    throw new JobDeletedError(DELETED);
  };
  app.get('/api/v1/jobs/:jobId', deleted);
  app.post('/api/v1/jobs/:jobId/snapshots', deleted);
  app.use(
    problemMiddleware(
      problemResponder(
        () => {},
        (req) => isLimited(principalOf(req)),
      ),
    ),
  );

  it('gone (410) to a token of every namespace; not found (404), as a job never registered, to a team’s token', async () => {
    const gone = await request(app).get(`/api/v1/jobs/${DELETED}`).set(bearer('admin'));
    expect(gone.status).toBe(410);
    expect(gone.body.errors).toEqual([expect.objectContaining({ rule: 'deleted' })]);
    const hidden = await request(app)
      .get(`/api/v1/jobs/${DELETED}`)
      .set({ authorization: `Bearer ${team}` });
    expect(hidden.status).toBe(404);
    expect(hidden.body.errors).toEqual([expect.objectContaining({ field: 'path.jobId', rule: 'exists' })]);
    expect(hidden.body.detail).toBe(`job ${DELETED} is not registered`);
    // As the routes answer a job that never was: a read with rule `exists`, a command with `job-exists`.
    const command = await request(app)
      .post(`/api/v1/jobs/${DELETED}/snapshots`)
      .set({ authorization: `Bearer ${team}` });
    expect(command.status).toBe(404);
    expect(command.body.errors).toEqual([
      expect.objectContaining({ field: 'path.jobId', rule: 'job-exists' }),
    ]);
  });
});
