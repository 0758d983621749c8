import request from 'supertest';
import { CLUSTERS_STREAM, ClusterRepository } from '@snapcat/application';
import { MemoryEventStore } from '@snapcat/event-store';
import type { ReadModel } from '@snapcat/read-model';
import { createLogger, newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import { SecretBox } from '@snapcat/webhooks';
import { apiFixture, expectProblem, TEST_SECRET_KEY, graphqlOver } from './fixture';

/*
 * The Flink clusters snapcat may talk to (issue 19): PUT/GET/DELETE /api/v1/clusters and their GraphQL
 * fields, over HTTP on a real SQLite store. A header's value goes in once and never comes out: not in an
 * answer, not in the events, not in the request log.
 */

const SECRET = 'Bearer eyJhbGciOiJIUzI1NiJ9.cluster-secret-7f3a';
const API_KEY = 'proxy-key-9d8c7b6a5f4e3d2c1b0a';
const PLAINTEXTS = [SECRET, 'cluster-secret-7f3a', API_KEY];
const URL = '/api/v1/clusters';

// The cluster fields never read the read model.
const graphqlFor = (tokens?: ReturnType<typeof parseTokenList>) =>
  graphqlOver({ readModel: {} as unknown as ReadModel, topic: 'clusters-test', tokens });

describe('Flink clusters over REST', () => {
  const raw: string[] = [];
  const log = createLogger('debug', { write: (line: string) => void raw.push(line) });
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  /** Every answer's text, to look for a header value in. */
  const answers: string[] = [];
  const seen = <T extends { text: string }>(res: T): T => {
    answers.push(res.text);
    return res;
  };
  const storedText = async () =>
    JSON.stringify(
      (await fx.store.readStream(CLUSTERS_STREAM)).map((e) => ({
        type: e.type,
        data: e.data,
        meta: e.metadata,
      })),
    );

  beforeAll(() => {
    fx = apiFixture({ requestLog: log.debug, graphql: graphqlFor() as never });
    http = request(fx.app);
  });
  afterAll(() => fx.close());

  it('creates (201), replaces (200), keeps an unchanged one (200, changed false, nothing written), lists, gets, deletes (204)', async () => {
    const created = seen(
      await http
        .put(`${URL}/flink-prod`)
        .send({ restUrl: 'https://flink.example.com:8081', headers: { Authorization: SECRET } })
        .expect(201),
    );
    expect(created.headers.location).toBe(`${URL}/flink-prod`);
    expect(created.body).toEqual({
      name: 'flink-prod',
      restUrl: 'https://flink.example.com:8081',
      headers: ['authorization'],
      namespaces: '*',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      state: 'UNKNOWN',
      stateSince: null,
      lastError: null,
      changed: true,
    });
    const replaced = seen(
      await http
        .put(`${URL}/flink-prod`)
        .send({
          restUrl: 'https://flink.example.com:8081',
          headers: { Authorization: SECRET, 'X-Api-Key': API_KEY },
        })
        .expect(200),
    );
    expect(replaced.body).toMatchObject({ headers: ['authorization', 'x-api-key'], changed: true });
    expect(replaced.headers.location).toBeUndefined();
    const before = (await fx.store.readStream(CLUSTERS_STREAM)).length;
    const unchanged = seen(
      await http
        .put(`${URL}/flink-prod`)
        .send({
          restUrl: 'https://flink.example.com:8081',
          headers: { 'x-api-key': API_KEY, authorization: SECRET },
        })
        .expect(200),
    );
    expect(unchanged.body).toEqual({ ...replaced.body, changed: false });
    expect(await fx.store.readStream(CLUSTERS_STREAM)).toHaveLength(before);

    seen(await http.put(`${URL}/flink-dev`).send({ restUrl: 'http://localhost:8081' }).expect(201));
    const list = seen(await http.get(URL).expect(200));
    expect(list.body.clusters.map((c: { name: string; headers: string[] }) => [c.name, c.headers])).toEqual([
      ['flink-dev', []],
      ['flink-prod', ['authorization', 'x-api-key']],
    ]);
    const one = seen(await http.get(`${URL}/flink-prod`).expect(200));
    expect(one.body).toEqual({ ...replaced.body, changed: undefined });
    // A PUT without headers leaves the cluster none.
    const bare = seen(
      await http.put(`${URL}/flink-prod`).send({ restUrl: 'https://flink.example.com:8081' }).expect(200),
    );
    expect(bare.body).toMatchObject({ headers: [], changed: true });
    expect(await fx.clusters.get('flink-prod')).toMatchObject({ headers: {} });

    await http.delete(`${URL}/flink-dev`).expect(204);
    expectProblem(seen(await http.get(`${URL}/flink-dev`)), 404, 'path.name', 'exists');
    expectProblem(seen(await http.delete(`${URL}/flink-dev`)), 404, 'path.name', 'exists');
    expect((await fx.store.readStream(CLUSTERS_STREAM)).map((e) => e.type)).toEqual([
      'ClusterRegistered',
      'ClusterChanged',
      'ClusterRegistered',
      'ClusterChanged',
      'ClusterRemoved',
    ]);
  });

  it('never shows a header value: not in an answer, not in the events, not in the request log; the registry opens them', async () => {
    seen(
      await http
        .put(`${URL}/flink-sealed`)
        .send({
          restUrl: 'https://sealed.example.com',
          headers: { Authorization: SECRET, 'X-Api-Key': API_KEY },
        })
        .expect(201),
    );
    seen(await http.get(`${URL}/flink-sealed`).expect(200));
    seen(await http.get(URL).expect(200));
    // A refused header: the problem names it, never its value.
    seen(
      await http
        .put(`${URL}/flink-sealed`)
        .send({ restUrl: 'https://sealed.example.com', headers: { Authorization: `${SECRET}\r\nx: y` } })
        .expect(400),
    );
    const graphql = seen(
      await http.post('/graphql').send({ query: '{ clusters { name restUrl headerNames } }' }).expect(200),
    );
    expect(graphql.body.data.clusters).toContainEqual({
      name: 'flink-sealed',
      restUrl: 'https://sealed.example.com',
      headerNames: ['authorization', 'x-api-key'],
    });

    const everything = [answers.join('\n'), await storedText(), raw.join('')];
    expect(raw.length).toBeGreaterThan(3); // the request log ran
    expect(await storedText()).toContain('sealed.example.com');
    for (const text of everything) for (const plain of PLAINTEXTS) expect(text).not.toContain(plain);

    // What the connector reads, from the same store and key: the values in clear.
    const registry = new ClusterRepository(fx.store, { box: new SecretBox(TEST_SECRET_KEY) });
    expect(await registry.get('flink-sealed')).toEqual({
      name: 'flink-sealed',
      restUrl: 'https://sealed.example.com',
      headers: { authorization: SECRET, 'x-api-key': API_KEY },
    });
  });

  const manyHeaders = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`x-h${i}`, 'v']));
  it.each([
    ['a name with capitals', 'Flink', { restUrl: 'http://a' }, 'path.name', 'format-regex'],
    ['a name too long', 'a'.repeat(64), { restUrl: 'http://a' }, 'path.name', 'max-length'],
    ['a name ending with -', 'flink-', { restUrl: 'http://a' }, 'path.name', 'format-regex'],
    ['no restUrl', 'ok', {}, 'body.restUrl', 'required'],
    ['a relative restUrl', 'ok', { restUrl: '/flink' }, 'body.restUrl', 'format-url'],
    ['an ftp restUrl', 'ok', { restUrl: 'ftp://flink' }, 'body.restUrl', 'format-url'],
    ['credentials in restUrl', 'ok', { restUrl: 'https://admin:pw@flink' }, 'body.restUrl', 'no-credentials'],
    ['a user in restUrl', 'ok', { restUrl: 'https://admin@flink' }, 'body.restUrl', 'no-credentials'],
    ['a query in restUrl', 'ok', { restUrl: 'https://flink/?token=x' }, 'body.restUrl', 'base-url'],
    ['headers not an object', 'ok', { restUrl: 'http://a', headers: ['a'] }, 'body.headers', 'type-record'],
    ['21 headers', 'ok', { restUrl: 'http://a', headers: manyHeaders }, 'body.headers', 'max-length'],
    [
      'a header name with a space',
      'ok',
      { restUrl: 'http://a', headers: { 'x y': 'v' } },
      'body.headers.x y',
      'header-name',
    ],
    [
      'a header name with a colon',
      'ok',
      { restUrl: 'http://a', headers: { 'x:': 'v' } },
      'body.headers.x:',
      'header-name',
    ],
    ['host', 'ok', { restUrl: 'http://a', headers: { Host: 'v' } }, 'body.headers.Host', 'forbidden-header'],
    [
      'content-length',
      'ok',
      { restUrl: 'http://a', headers: { 'Content-Length': '1' } },
      'body.headers.Content-Length',
      'forbidden-header',
    ],
    [
      'connection',
      'ok',
      { restUrl: 'http://a', headers: { connection: 'close' } },
      'body.headers.connection',
      'forbidden-header',
    ],
    [
      'transfer-encoding',
      'ok',
      { restUrl: 'http://a', headers: { 'transfer-encoding': 'x' } },
      'body.headers.transfer-encoding',
      'forbidden-header',
    ],
    [
      'a header given twice',
      'ok',
      { restUrl: 'http://a', headers: { 'x-a': '1', 'X-A': '2' } },
      'body.headers.X-A',
      'unique',
    ],
    [
      'a value too long',
      'ok',
      { restUrl: 'http://a', headers: { 'x-a': 'v'.repeat(4097) } },
      'body.headers.x-a',
      'max-length',
    ],
    [
      'a value with CRLF',
      'ok',
      { restUrl: 'http://a', headers: { 'x-a': 'v\r\nx-b: w' } },
      'body.headers.x-a',
      'header-value',
    ],
    [
      'a value not a string',
      'ok',
      { restUrl: 'http://a', headers: { 'x-a': 1 } },
      'body.headers.x-a',
      'type-string',
    ],
    ['an unknown field', 'ok', { restUrl: 'http://a', url: 'http://a' }, 'body.url', 'unknown-field'],
  ])('400 for %s, naming the field and the rule; nothing written', async (_what, name, body, field, rule) => {
    const before = (await fx.store.readStream(CLUSTERS_STREAM)).length;
    const res = seen(await http.put(`${URL}/${name}`).send(body));
    expectProblem(res, 400, field, rule);
    expect(await fx.store.readStream(CLUSTERS_STREAM)).toHaveLength(before);
  });

  it('says to send credentials as headers', async () => {
    const res = await http.put(`${URL}/ok`).send({ restUrl: 'https://admin:pw@flink' }).expect(400);
    expect(res.body.detail).toMatch(/body\.restUrl: .*user:password@.*headers/);
    expect(res.text).not.toContain('admin:pw');
  });
});

describe('Flink clusters without SNAPCAT_SECRET_KEY', () => {
  it('stores a cluster without headers, refuses one with headers (503 naming the key), as webhooks refuse', async () => {
    const store = new MemoryEventStore();
    const fx = apiFixture({ clusters: new ClusterRepository(store) });
    try {
      const http = request(fx.app);
      await http.put(`${URL}/flink-dev`).send({ restUrl: 'http://localhost:8081', headers: {} }).expect(201);
      const refused = await http
        .put(`${URL}/flink-prod`)
        .send({ restUrl: 'https://flink.example.com', headers: { Authorization: SECRET } });
      expectProblem(refused, 503, 'env.SNAPCAT_SECRET_KEY', 'required');
      expect(refused.body.errors).toContainEqual(expect.objectContaining({ field: 'body.headers' }));
      expect(refused.body.detail).toMatch(/SNAPCAT_SECRET_KEY/);
      expect(refused.text).not.toContain(SECRET);
      expect((await store.readStream(CLUSTERS_STREAM)).map((e) => e.type)).toEqual(['ClusterRegistered']);
      await http.get(`${URL}/flink-prod`).expect(404);
    } finally {
      await fx.close();
    }
  });
});

describe('Flink clusters: who may', () => {
  const scoped = {
    read: newToken(),
    runtime: newToken(),
    operator: newToken(),
    admin: newToken(),
    adminElsewhere: newToken(),
  };
  const TOKENS = parseTokenList(
    [
      tokenLine({ name: 'reader', scopes: ['read'], namespaces: '*' }, scoped.read),
      tokenLine({ name: 'runner', scopes: ['runtime'], namespaces: '*' }, scoped.runtime),
      tokenLine({ name: 'operator', scopes: ['operator'], namespaces: '*' }, scoped.operator),
      tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, scoped.admin),
      tokenLine({ name: 'team-admin', scopes: ['admin'], namespaces: ['team'] }, scoped.adminElsewhere),
    ].join('\n'),
  );
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeAll(() => {
    fx = apiFixture({ tokens: TOKENS, graphql: graphqlFor(TOKENS) as never });
    http = request(fx.app);
  });
  afterAll(() => fx.close());

  it('GETs need operator, PUT and DELETE admin, and every namespace', async () => {
    const body = { restUrl: 'http://flink:8081', headers: { authorization: SECRET } };
    await http.get(URL).expect(401);
    for (const token of [scoped.read, scoped.runtime]) {
      const res = await http.get(URL).set(as(token));
      expectProblem(res, 403, 'header.authorization', 'scope');
      expect(res.body.requiredScope).toBe('operator');
    }
    for (const token of [scoped.read, scoped.runtime, scoped.operator]) {
      const put = await http.put(`${URL}/flink`).set(as(token)).send(body);
      expectProblem(put, 403, 'header.authorization', 'scope');
      expect(put.body.requiredScope).toBe('admin');
      expectProblem(await http.delete(`${URL}/flink`).set(as(token)), 403, 'header.authorization', 'scope');
    }
    // An admin of some namespaces only: the clusters serve every namespace's jobs.
    const elsewhere = await http.put(`${URL}/flink`).set(as(scoped.adminElsewhere)).send(body);
    expectProblem(elsewhere, 403, 'header.authorization', 'namespace');
    expectProblem(
      await http.get(URL).set(as(scoped.adminElsewhere)),
      403,
      'header.authorization',
      'namespace',
    );
    expect(await fx.store.readStream(CLUSTERS_STREAM)).toEqual([]);

    await http.put(`${URL}/flink`).set(as(scoped.admin)).send(body).expect(201);
    expect((await http.get(`${URL}/flink`).set(as(scoped.operator)).expect(200)).body.headers).toEqual([
      'authorization',
    ]);
    await http.get(URL).set(as(scoped.operator)).expect(200);
    await http.delete(`${URL}/flink`).set(as(scoped.admin)).expect(204);
  });

  it('GraphQL: queries need operator, mutations admin', async () => {
    const ask = (token: string, query: string) =>
      http
        .post('/graphql')
        .set(as(token))
        .send({ query })
        .then((res) => res.body);
    const set = 'mutation { setCluster(name: "g", restUrl: "http://g:8081") { name } }';
    expect((await ask(scoped.operator, set)).errors[0].extensions).toMatchObject({
      code: 'FORBIDDEN',
      requiredScope: 'admin',
    });
    expect((await ask(scoped.runtime, '{ clusters { name } }')).errors[0].extensions).toMatchObject({
      code: 'FORBIDDEN',
      requiredScope: 'operator',
    });
    expect((await ask(scoped.admin, set)).data.setCluster).toEqual({ name: 'g' });
    expect((await ask(scoped.operator, '{ clusters { name } }')).data.clusters).toEqual([{ name: 'g' }]);
    expect((await ask(scoped.admin, 'mutation { removeCluster(name: "g") }')).data.removeCluster).toBe(true);
  });

  it('a managed job names only a cluster that serves its namespace (403 cluster-namespace otherwise, nothing written)', async () => {
    const put = (name: string, namespaces?: unknown) =>
      http
        .put(`${URL}/${name}`)
        .set(as(scoped.admin))
        .send({ restUrl: 'http://flink:8081', ...(namespaces ? { namespaces } : {}) });
    expect((await put('flink-team', ['team'])).body.namespaces).toEqual(['team']);
    expect((await put('flink-other', ['other', 'ops', 'other'])).body.namespaces).toEqual(['ops', 'other']);
    // The same grant in another order changes nothing.
    expect((await put('flink-other', ['other', 'ops'])).body.changed).toBe(false);
    expectProblem(await put('flink-bad', ['Not A Namespace']), 400, 'body.namespaces[0]', 'format-regex');
    // Neither "*" nor a list: the message names both forms.
    const neither = await put('flink-bad', 'ops');
    expectProblem(neither, 400, 'body.namespaces', 'one-of');
    expect(neither.body.errors[0].message).toBe('must be "*" (every namespace) or a list of namespace names');
    const register = (token: string, jobId: string, namespace: string, cluster: string) =>
      http
        .put(`/api/v1/jobs/${jobId}`)
        .set(as(token))
        .send({ namespace, tasks: ['t'], source: { type: 'flink', cluster } });
    const jobId = 'a1'.repeat(16);
    const refused = await register(scoped.adminElsewhere, jobId, 'team', 'flink-other');
    expectProblem(refused, 403, 'body.source.cluster', 'cluster-namespace');
    // Not for a token of every namespace either: the cluster serves the job's namespace or not.
    expectProblem(
      await register(scoped.admin, jobId, 'default', 'flink-team'),
      403,
      'body.source.cluster',
      'cluster-namespace',
    );
    await http.get(`/api/v1/jobs/${jobId}`).set(as(scoped.admin)).expect(404);
    expect((await register(scoped.adminElsewhere, jobId, 'team', 'flink-team')).status).toBe(201);
    // A change that leaves the namespace out is checked against the job's own.
    const moved = await http
      .put(`/api/v1/jobs/${jobId}`)
      .set(as(scoped.adminElsewhere))
      .send({ tasks: ['t'], source: { type: 'flink', cluster: 'flink-other' } });
    expectProblem(moved, 403, 'body.source.cluster', 'cluster-namespace');
    // A token of some namespaces may not read clusters: a cluster that does not exist answers as one that
    // does not serve the namespace, so that the answer tells no cluster names.
    const unknown = await register(scoped.adminElsewhere, jobId, 'team', 'no-such-cluster');
    expectProblem(unknown, 403, 'body.source.cluster', 'cluster-namespace');
    expect((await register(scoped.admin, jobId, 'team', 'no-such-cluster')).body.errors).toEqual([
      expect.objectContaining({ rule: 'cluster-registered' }),
    ]);
    // Another namespace's job, its namespace left out: judged as an unregistered id would be (the default
    // namespace), never naming the namespace it is in.
    const otherTeams = 'b2'.repeat(16);
    expect((await register(scoped.admin, otherTeams, 'ops', 'flink-other')).status).toBe(201);
    const probe = await http
      .put(`/api/v1/jobs/${otherTeams}`)
      .set(as(scoped.adminElsewhere))
      .send({ tasks: ['t'], source: { type: 'flink', cluster: 'flink-team' } });
    expect(probe.status).toBe(403);
    expect(JSON.stringify(probe.body)).not.toContain('ops');
  });

  it('stopping a managed job (a savepoint with terminate) needs operator: snapcat stops it in Flink', async () => {
    await http
      .put(`${URL}/flink-stop`)
      .set(as(scoped.admin))
      .send({ restUrl: 'http://flink:8081' })
      .expect(201);
    const managed = 'c3'.repeat(16);
    await http
      .put(`/api/v1/jobs/${managed}`)
      .set(as(scoped.operator))
      .send({ status: 'RUNNING', source: { type: 'flink', cluster: 'flink-stop' } })
      .expect(201);
    const stop = { kind: 'SAVEPOINT', terminate: { drain: false } };
    const refused = await http.post(`/api/v1/jobs/${managed}/snapshots`).set(as(scoped.runtime)).send(stop);
    expectProblem(refused, 403, 'header.authorization', 'scope');
    expect(refused.body.requiredScope).toBe('operator');
    const viaGraphql = await http
      .post('/graphql')
      .set(as(scoped.runtime))
      .send({
        query: `mutation { triggerSnapshot(jobId: "${managed}", kind: SAVEPOINT, terminate: { drain: true }) { id } }`,
      });
    expect(viaGraphql.body.errors[0].extensions).toMatchObject({
      code: 'FORBIDDEN',
      requiredScope: 'operator',
    });
    const events = async () => (await fx.store.readStream(`snapcat-job-${managed}`)).map((e) => e.type);
    expect(await events()).not.toContain('SnapshotTriggered');
    // A plain savepoint stays a runtime's, as is a stop of a job snapcat does not drive.
    await http
      .post(`/api/v1/jobs/${managed}/snapshots`)
      .set(as(scoped.runtime))
      .send({ kind: 'SAVEPOINT' })
      .expect(202);
    const reported = 'd4'.repeat(16);
    await http
      .put(`/api/v1/jobs/${reported}`)
      .set(as(scoped.runtime))
      .send({ status: 'RUNNING', tasks: ['t'] })
      .expect(201);
    await http.post(`/api/v1/jobs/${reported}/snapshots`).set(as(scoped.runtime)).send(stop).expect(202);
    await http.post(`/api/v1/jobs/${managed}/snapshots`).set(as(scoped.operator)).send(stop).expect(202);
  });
});

describe('Flink clusters over GraphQL', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeAll(() => {
    fx = apiFixture({ graphql: graphqlFor() as never });
    http = request(fx.app);
  });
  afterAll(() => fx.close());
  const gql = async (query: string, variables?: object) =>
    (await http.post('/graphql').send({ query, variables })).body;

  it('sets, shows header names only, replaces, removes; the same rules as REST', async () => {
    const set = `mutation ($headers: [HeaderInput!]) {
      setCluster(name: "flink-gql", restUrl: "https://gql.example.com", headers: $headers) {
        name restUrl headerNames createdAt updatedAt
      }
    }`;
    const created = await gql(set, { headers: [{ name: 'Authorization', value: SECRET }] });
    expect(created.errors).toBeUndefined();
    expect(created.data.setCluster).toMatchObject({
      name: 'flink-gql',
      restUrl: 'https://gql.example.com',
      headerNames: ['authorization'],
    });
    const listed = await gql('{ clusters { name headerNames } cluster(name: "flink-gql") { restUrl } }');
    expect(listed.data).toEqual({
      clusters: [{ name: 'flink-gql', headerNames: ['authorization'] }],
      cluster: { restUrl: 'https://gql.example.com' },
    });
    expect((await gql('{ cluster(name: "nope") { name } }')).data.cluster).toBeNull();
    // Replaced: no headers given, none kept.
    const replaced = await gql(set, {});
    expect(replaced.data.setCluster.headerNames).toEqual([]);
    expect(await fx.clusters.get('flink-gql')).toMatchObject({ headers: {} });
    await gql(set, { headers: [{ name: 'X-Api-Key', value: API_KEY }] });
    expect(await fx.clusters.get('flink-gql')).toMatchObject({ headers: { 'x-api-key': API_KEY } });
    // Namespaces: ["*"] is every namespace; a list, those only (as REST's "*" and list).
    const scope = `mutation ($namespaces: [String!]) {
      setCluster(name: "flink-ns", restUrl: "https://ns.example.com", namespaces: $namespaces) { namespaces }
    }`;
    expect((await gql(scope, {})).data.setCluster.namespaces).toEqual(['*']);
    expect((await gql(scope, { namespaces: ['b', 'a'] })).data.setCluster.namespaces).toEqual(['a', 'b']);
    expect((await fx.clusters.view('flink-ns'))?.namespaces).toEqual(['a', 'b']);
    expect((await gql(scope, { namespaces: ['*'] })).data.setCluster.namespaces).toEqual(['*']);
    // "*" beside names is refused, as REST refuses it, and changes nothing (it was read as every namespace).
    await gql(scope, { namespaces: ['a'] });
    expect((await gql(scope, { namespaces: ['*', 'a'] })).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'namespaces[0]',
    });
    expect((await fx.clusters.view('flink-ns'))?.namespaces).toEqual(['a']);
    await gql('mutation { removeCluster(name: "flink-ns") }');

    const refused = async (query: string, variables?: object) =>
      (await gql(query, variables)).errors?.[0]?.extensions;
    expect(
      await refused('mutation { setCluster(name: "x", restUrl: "https://u:p@x") { name } }'),
    ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'restUrl', rule: 'no-credentials' });
    expect(await refused('mutation { setCluster(name: "X_", restUrl: "http://x") { name } }')).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'name',
    });
    expect(await refused(set, { headers: [{ name: 'Host', value: 'x' }] })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'headers.Host',
      rule: 'forbidden-header',
    });
    expect(
      await refused(set, {
        headers: [
          { name: 'x-a', value: '1' },
          { name: 'x-a', value: '2' },
        ],
      }),
    ).toMatchObject({ code: 'BAD_USER_INPUT', field: 'headers.x-a', rule: 'unique' });
    expect(await refused(set, { headers: [{ name: 'x-a', value: 'a\nb' }] })).toMatchObject({
      field: 'headers.x-a',
      rule: 'header-value',
    });

    expect((await gql('mutation { removeCluster(name: "flink-gql") }')).data.removeCluster).toBe(true);
    expect(await refused('mutation { removeCluster(name: "flink-gql") }')).toMatchObject({
      code: 'NOT_FOUND',
      field: 'name',
      rule: 'exists',
    });
    const events = JSON.stringify(await fx.store.readStream(CLUSTERS_STREAM), (_k, v) =>
      typeof v === 'bigint' ? String(v) : v,
    );
    expect(events).toContain('gql.example.com');
    for (const plain of PLAINTEXTS) expect(events).not.toContain(plain);
  });
});
