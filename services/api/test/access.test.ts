import {
  buildSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLField,
  type GraphQLInputType,
} from 'graphql';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import IORedis from 'ioredis';
import request from 'supertest';
import { Projector, ReadModel } from '@snapcat/read-model';
import { StreamDeletedError } from '@snapcat/event-store';
import {
  SCOPES,
  createLogger,
  grants,
  newToken,
  parseTokenList,
  tokenLine,
  type Scope,
} from '@snapcat/runtime';
import type { SnapshotStorage } from '@snapcat/storage';
import { deleteKeys } from '../../../test/support/redis';
import { GRAPHQL_RULES, REST_RULES, restRule, type Rule } from '../src/access';
import { createSnapshotEventsPubSub } from '../src/graphql';
import { SCHEMA_FILE } from './files';
import { openApiDocument } from '../src/openapi';
import { apiFixture, JOB, graphqlOver, graphqlStream, startProjector } from './fixture';
import { concrete, registered, requestExamples, webhookStub } from './routes';

/*
 * The access matrix (issue 18, acceptance 1, without namespaces): every REST route the app registers and every
 * root field of the GraphQL schema, called with no token, an unknown token and a token of each scope, answers
 * 401, 401, and 403 or a pass exactly as the one rule table (src/access.ts) says. The lists of routes and
 * operations come from the app and the schema themselves, so one without a rule fails here.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';
/** The GraphQL fields of the Flink clusters, which belong to no namespace. */
const CLUSTER_FIELDS = new Set([
  'Query.clusters',
  'Query.cluster',
  'Mutation.setCluster',
  'Mutation.removeCluster',
]);
const tokens = Object.fromEntries(SCOPES.map((scope) => [scope, newToken()])) as Record<Scope, string>;
/** Tokens of each scope limited to a namespace that holds none of the test's jobs (they are in `default`). */
const elsewhere = Object.fromEntries(SCOPES.map((scope) => [scope, newToken()])) as Record<Scope, string>;
const TOKENS = parseTokenList(
  SCOPES.flatMap((scope) => [
    tokenLine({ name: `${scope}-token`, scopes: [scope], namespaces: '*' }, tokens[scope]),
    tokenLine({ name: `${scope}-elsewhere`, scopes: [scope], namespaces: ['elsewhere'] }, elsewhere[scope]),
  ]).join('\n'),
);
type Caller = 'none' | 'wrong' | Scope;
const CALLERS: Caller[] = ['none', 'wrong', ...SCOPES];
const authorization = (caller: Caller): Record<string, string> =>
  caller === 'none' ? {} : { authorization: `Bearer ${caller === 'wrong' ? newToken() : tokens[caller]}` };

/**
 * What a token of the right scope but only another namespace gets (issue 18): a job, a snapshot or a webhook
 * subscription of another namespace is not revealed (404); what spans every namespace is forbidden (403);
 * lists pass, without what lies outside (checked below for the job list).
 */
function expectedElsewhere(route: string, rule: Rule): 404 | 403 | 'pass' {
  if (rule === 'public') return 'pass';
  if (route === 'GET /api/v1/storage/orphans') return 403;
  // The Flink clusters serve every namespace's jobs: only a token of every namespace sees or changes them.
  if (route.includes(' /api/v1/clusters')) return 403;
  // Registering asks for a namespace (default, in the example) the token does not hold: refused as for an id
  // no namespace has, before anything tells that the id is taken elsewhere.
  if (route === 'PUT /api/v1/jobs/{jobId}') return 403;
  return /\{(jobId|subscriptionId)\}/.test(route) ? 404 : 'pass';
}

/** What the table says a caller gets: 401, 403, or through to the route (any answer but 401/403/5xx). */
function expected(rule: Rule, caller: Caller): 401 | 403 | 'pass' {
  if (rule === 'public') return 'pass';
  if (caller === 'none' || caller === 'wrong') return 401;
  return grants([caller], rule) ? 'pass' : 403;
}

/** A body each route accepts (its first OpenAPI example), so that a pass mostly reaches the route's own 2xx. */
const examples = new Map<string, unknown>();
for (const { method, path, value } of requestExamples()) {
  const route = `${method.toUpperCase()} ${path}`;
  if (!examples.has(route)) examples.set(route, value);
}

describe('access matrix', () => {
  const prefix = `snapcat-test-access-${process.pid}-${Date.now().toString(36)}`;
  let redis: IORedis;
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let projector: Projector | undefined;
  const projectorRedis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  const pubsub = createSnapshotEventsPubSub();

  beforeAll(async () => {
    redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const readModel = new ReadModel(redis, prefix);
    // Every path lies inside the roots and holds a snapshot (an import's `_metadata` included); a new job's
    // checkpoint area (`<dir>/<jobId>`) is empty, as no uncatalogued job wrote there.
    const storage = {
      isWithinRoots: async () => true,
      whyNotStateFile: async () => undefined,
      spelledWithinRoots: () => true,
      measure: async () => 1,
      async *listFiles(under: string) {
        yield { path: `${under.replace(/\/+$/, '')}/_metadata`, size: 1, mtimeMs: 0 };
      },
      holdsFiles: async (location: string) => !/\/[0-9a-f]{32}$/.test(location),
    } as unknown as SnapshotStorage;
    fx = apiFixture({
      webhooks: webhookStub(),
      storage,
      readModel,
      readModelAvailable: () => true,
      tokens: TOKENS,
      graphql: graphqlOver({ readModel, topic: `${prefix}:events`, tokens: TOKENS, pubsub }),
    });
    http = request(fx.app);
    // The mutations answer once the read model shows their events.
    projector = await startProjector(fx.store, projectorRedis, prefix);
    const admin = authorization('admin');
    await http
      .put(`/api/v1/jobs/${JOB}`)
      .set(admin)
      .send({ tasks: ['source-0'] })
      .expect(201);
    await http.post(`/api/v1/jobs/${JOB}/status`).set(admin).send({ status: 'RUNNING' }).expect(200);
  });
  afterAll(async () => {
    await projector?.stop();
    projectorRedis.disconnect();
    await fx.close();
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('has a rule for exactly the routes the app registers', () => {
    expect([...registered(fx.app)].sort()).toEqual(Object.keys(REST_RULES).sort());
    // A path no route serves needs admin (deny by default), like a route someone forgot to list.
    expect(restRule('GET', '/api/v1/nothing-here')).toBe('admin');
    expect(restRule('GET', `/API/V1/JOBS/${JOB}/`)).toBe('read');
    expect(restRule('HEAD', '/readyz')).toBe('public');
    // The web console's page and assets hold no data (it reads through /graphql with a token): public,
    // for GET only, and nothing below them.
    expect(restRule('GET', '/')).toBe('public');
    expect(restRule('GET', '/assets/app-0123abcd.js')).toBe('public');
    expect(restRule('POST', '/')).toBe('admin');
    expect(restRule('GET', '/assets/x/../../api/v1/jobs')).toBe('admin');
    expect(restRule('GET', '/index.html')).toBe('admin');
  });

  it.each(['read', 'runtime', 'operator', 'admin'] as const)(
    'GraphQL viewer: a %s token sees its name, the scopes it implies and its namespaces',
    async (scope) => {
      const ask = async (token: string) =>
        (
          await http
            .post('/graphql')
            .set({ authorization: `Bearer ${token}` })
            .send({ query: '{ viewer { name scopes namespaces authenticationEnabled } }' })
        ).body;
      const implied = {
        read: ['read'],
        runtime: ['runtime', 'read'],
        operator: ['operator', 'runtime', 'read'],
      };
      const scopes = scope === 'admin' ? ['admin', 'operator', 'runtime', 'read'] : implied[scope];
      expect((await ask(tokens[scope])).data.viewer).toEqual({
        name: `${scope}-token`,
        scopes,
        namespaces: null,
        authenticationEnabled: true,
      });
      expect((await ask(elsewhere[scope])).data.viewer).toEqual({
        name: `${scope}-elsewhere`,
        scopes,
        namespaces: ['elsewhere'],
        authenticationEnabled: true,
      });
    },
  );

  it('the OpenAPI document names the scope and the bearer scheme of every route that is not public', () => {
    const doc = openApiDocument() as unknown as {
      paths: Record<string, Record<string, { security: object[]; 'x-required-scope'?: string }>>;
    };
    const described = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => [
        `${method.toUpperCase()} ${path}`,
        op['x-required-scope'] ?? (op.security.length === 0 ? 'public' : 'unnamed'),
      ]),
    );
    expect(Object.fromEntries(described)).toEqual(REST_RULES);
  });

  const routes = Object.entries(REST_RULES) as [string, Rule][];
  it.each(routes)('%s (%s): none 401, wrong 401, each scope as the table says', async (route, rule) => {
    const [method, path] = route.split(' ') as [string, string];
    const seen: [Caller, number][] = [];
    const wanted: [Caller, number | string][] = [];
    for (const caller of CALLERS) {
      let call = http[method.toLowerCase() as 'get'](concrete(path)).set(authorization(caller));
      const body = examples.get(route);
      if (method !== 'GET' && method !== 'DELETE') call = call.send((body ?? {}) as object);
      const res = await call;
      const want = expected(rule, caller);
      if (want === 'pass') {
        seen.push([caller, [401, 403].includes(res.status) || res.status >= 500 ? res.status : 0]);
        wanted.push([caller, 0]);
      } else {
        seen.push([caller, res.status]);
        wanted.push([caller, want]);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        if (want === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
        if (want === 403) expect(res.body).toMatchObject({ requiredScope: rule, status: 403 });
      }
    }
    expect(seen).toEqual(wanted);
  });

  it.each(routes)('%s (%s): the right scope in another namespace', async (route, rule) => {
    const [method, path] = route.split(' ') as [string, string];
    const scope: Scope = rule === 'public' ? 'read' : rule;
    let call = http[method.toLowerCase() as 'get'](concrete(path)).set({
      authorization: `Bearer ${elsewhere[scope]}`,
    });
    if (method !== 'GET' && method !== 'DELETE') call = call.send((examples.get(route) ?? {}) as object);
    const res = await call;
    const want = expectedElsewhere(route, rule);
    const got =
      want === 'pass'
        ? [401, 403, 404].includes(res.status) || res.status >= 500
          ? res.status
          : 'pass'
        : res.status;
    expect([route, got, got === 400 ? res.body : '']).toEqual([route, want, '']);
    if (route === 'GET /api/v1/jobs') expect(res.body.jobs).toEqual([]);
  });

  it('the same calls with a token for every namespace reach the job (so the 404s above are the namespace)', async () => {
    const jobRoutes = routes.filter(([route]) => route.startsWith('GET ') && route.includes('{jobId}'));
    for (const [route] of jobRoutes) {
      if (
        route.includes('savepoint-schedule') ||
        route.includes('{snapshotId}') ||
        route.includes('{checkpointId}')
      )
        continue;
      const res = await http.get(concrete(route.split(' ')[1]!)).set(authorization('read'));
      expect([route, res.status]).toEqual([route, 200]);
    }
    const list = await http.get('/api/v1/jobs').set(authorization('read')).expect(200);
    expect(
      list.body.jobs.map((j: { jobId: string; namespace: string }) => [j.jobId, j.namespace]),
    ).toContainEqual([JOB, 'default']);
  });

  // The GraphQL operations: every root field of the schema.
  const schema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8'));
  const fields = (['Query', 'Mutation', 'Subscription'] as const).flatMap((type) =>
    Object.values(
      schema.getType(type) && isObjectType(schema.getType(type))
        ? (
            schema.getType(type) as never as { getFields(): Record<string, GraphQLField<unknown, unknown>> }
          ).getFields()
        : {},
    ).map((field) => [type, field] as const),
  );

  it('a method no route serves at a path is a 405 to every caller, without a token too (no 403 suggesting an admin could)', async () => {
    const path = `/api/v1/jobs/${JOB}/snapshots/1`;
    for (const headers of [authorization('none'), authorization('read'), authorization('admin')]) {
      const res = await http.delete(path).set(headers);
      expect([res.status, res.headers.allow]).toEqual([405, 'GET, HEAD']);
    }
    // A token of some namespaces meets the 405 too, not the clusters' every-namespace guard (a 403).
    const cluster = await http
      .patch('/api/v1/clusters/flink-prod')
      .set(`authorization`, `Bearer ${elsewhere.admin}`);
    expect([cluster.status, cluster.headers.allow]).toEqual([405, 'GET, HEAD, PUT, DELETE']);
    // A route's own method still needs its scope; an unknown path still needs admin (deny by default).
    expect((await http.get(path)).status).toBe(401);
    expect((await http.get('/api/v1/nothing').set(authorization('read'))).status).toBe(403);
  });

  it('has a rule for exactly the root fields of the schema', () => {
    expect(fields.map(([type, f]) => `${type}.${f.name}`).sort()).toEqual(Object.keys(GRAPHQL_RULES).sort());
  });

  it.each(fields.map(([type, field]) => [`${type}.${field.name}`, type, field] as const))(
    '%s: none 401, wrong 401, each scope as the table says',
    async (name, type, field) => {
      const rule = (GRAPHQL_RULES as Record<string, Scope>)[name]!;
      const args = field.args
        .filter((a) => isNonNullType(a.type))
        .map((a) => `${a.name}: ${literal(a.name, a.type)}`);
      const selection = isObjectType(getNamedType(field.type)) ? ' { __typename }' : '';
      const query = `${type.toLowerCase()} { ${field.name}${args.length ? `(${args.join(', ')})` : ''}${selection} }`;
      const seen: [Caller, unknown][] = [];
      const wanted: [Caller, unknown][] = [];
      for (const caller of CALLERS) {
        const want = expected(rule, caller);
        const accept = type === 'Subscription' ? 'text/event-stream' : 'application/graphql-response+json';
        const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = http
            .post('/graphql')
            .set(authorization(caller))
            .set('accept', accept)
            .send({ query })
            .buffer(false)
            .parse((response, done) => {
              // A subscription that was let through streams: its status and first bytes are enough.
              let text = '';
              response.on('data', (chunk: Buffer) => {
                text += chunk.toString();
                if (type === 'Subscription' && response.statusCode === 200) {
                  resolve({ status: response.statusCode!, text });
                  (response as unknown as { destroy(): void }).destroy();
                }
              });
              response.on('end', () => {
                resolve({ status: response.statusCode!, text });
                done(null, text);
              });
            });
          req.then(
            () => {},
            (error: Error) => (type === 'Subscription' ? undefined : reject(error)),
          );
        });
        const code = /"code":"(UNAUTHENTICATED|FORBIDDEN)"/.exec(res.text)?.[1];
        if (want === 'pass') {
          seen.push([
            caller,
            code ?? ([401, 403].includes(res.status) || res.status >= 500 ? res.status : 'pass'),
          ]);
          wanted.push([caller, 'pass']);
        } else {
          seen.push([caller, [res.status, code]]);
          wanted.push([caller, [want, want === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN']]);
        }
      }
      expect(seen).toEqual(wanted);
    },
  );

  it("every event a request appends records the caller's token name and the request id (REST and GraphQL)", async () => {
    const other = 'b1b2c3d4e5f60718293a4b5c6d7e8f90';
    await http
      .put(`/api/v1/jobs/${other}`)
      .set(authorization('runtime'))
      .set('x-correlation-id', 'audit-1')
      .send({ tasks: ['t'] })
      .expect(201);
    const mutation = await http
      .post('/graphql')
      .set(authorization('operator'))
      .set('x-correlation-id', 'audit-2')
      .send({ query: `mutation { setJobStatus(jobId: "${other}", status: SUSPENDED) { id } }` });
    expect(mutation.body.errors).toBeUndefined();
    const history = await http
      .post('/graphql')
      .set(authorization('read'))
      .send({ query: `{ history(jobId: "${other}") { edges { node { type metadata } } } }` });
    const [registered, ...changed] = history.body.data.history.edges.map(
      (e: { node: { type: string; metadata: object } }) => e.node,
    );
    expect(registered).toEqual({
      type: 'JobRegistered',
      metadata: { $correlationId: 'audit-1', actor: 'runtime-token' },
    });
    expect(changed.length).toBeGreaterThan(0);
    for (const event of changed) {
      expect(event.metadata).toEqual({ $correlationId: 'audit-2', actor: 'operator-token' });
    }
  });

  it('GraphQL in another namespace: every query answers as for a job that does not exist, every mutation NOT_FOUND', async () => {
    // A completed checkpoint, so that every query has something to show a token of the job's namespace.
    const admin = authorization('admin');
    const JOB = 'd1b2c3d4e5f60718293a4b5c6d7e8f90'; // its own: the matrix above changed the shared one
    await http
      .put(`/api/v1/jobs/${JOB}`)
      .set(admin)
      .send({ tasks: ['source-0'] })
      .expect(201);
    const triggered = await http
      .post(`/api/v1/jobs/${JOB}/snapshots`)
      .set(admin)
      .send({ kind: 'CHECKPOINT' })
      .expect(202);
    await http
      .post(`/api/v1/jobs/${JOB}/snapshots/${triggered.body.snapshotId}/acks`)
      .set(admin)
      .send({ taskId: 'source-0' })
      .expect(200);
    const id = triggered.body.snapshotId as number;
    const ask = async (token: string, query: string) =>
      (
        await http
          .post('/graphql')
          .set({ authorization: `Bearer ${token}` })
          .send({ query })
      ).body;
    const queries: [string, string][] = [
      ['job', `{ job(id: "${JOB}") { id namespace } }`],
      ['jobs', '{ jobs { edges { node { id } } } }'],
      ['snapshot', `{ snapshot(jobId: "${JOB}", id: ${id}) { id } }`],
      ['snapshots', `{ snapshots(jobId: "${JOB}") { edges { cursor } } }`],
      ['catalog', `{ catalog(jobId: "${JOB}") { edges { cursor } } }`],
      ['history', `{ history(jobId: "${JOB}") { edges { cursor } } }`],
      ['catalogAsOf', `{ catalogAsOf(jobId: "${JOB}", at: "2099-01-01T00:00:00Z") { events } }`],
      ['restorePlan', `{ restorePlan(jobId: "${JOB}") { ok snapshot { id } } }`],
    ];
    // Every query of a job's data (the viewer's own is not: its test is below; nor the clusters', which
    // belong to no namespace: their test is below too).
    expect(queries.map(([field]) => `Query.${field}`).sort()).toEqual(
      Object.keys(GRAPHQL_RULES)
        .filter((f) => f.startsWith('Query.') && f !== 'Query.viewer' && !CLUSTER_FIELDS.has(f))
        .sort(),
    );
    await new Promise((r) => setTimeout(r, 300)); // the projector shows the checkpoint
    const empty = (value: unknown) => value === null || (value as { edges?: unknown[] }).edges?.length === 0;
    for (const [field, query] of queries) {
      const everywhere = await ask(tokens.read, query);
      const outside = await ask(elsewhere.read, query);
      expect([field, everywhere.errors, empty(everywhere.data[field])]).toEqual([field, undefined, false]);
      expect([field, outside.errors, empty(outside.data[field])]).toEqual([field, undefined, true]);
    }
    const mutations = [
      `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT) { id } }`,
      `mutation { setJobStatus(jobId: "${JOB}", status: RUNNING) { id } }`,
      `mutation { persistSnapshot(jobId: "${JOB}", snapshotId: ${id}) { id } }`,
      `mutation { discardSnapshot(jobId: "${JOB}", snapshotId: ${id}) { id } }`,
      `mutation { setSavepointSchedule(jobId: "${JOB}", schedule: { every: "PT1H" }) { every } }`,
      `mutation { removeSavepointSchedule(jobId: "${JOB}") }`,
      `mutation { restoreSnapshot(jobId: "${JOB}", snapshotId: ${id}, claimMode: CLAIM) { claimMode } }`,
      `mutation { importSnapshot(jobId: "${JOB}", externalPath: "/tmp/nowhere", kind: SAVEPOINT) { id } }`,
    ];
    expect(mutations.length).toBe(
      Object.keys(GRAPHQL_RULES).filter((f) => f.startsWith('Mutation.') && !CLUSTER_FIELDS.has(f)).length,
    );
    for (const mutation of mutations) {
      const answer = await ask(elsewhere.operator, mutation);
      expect([mutation, answer.errors?.[0]?.extensions?.code]).toEqual([mutation, 'NOT_FOUND']);
    }
    // Nothing those mutations asked for happened: the checkpoint is neither persisted nor discarded, and
    // the job has no schedule.
    const after = await http.get(`/api/v1/jobs/${JOB}/snapshots/${id}`).set(admin).expect(200);
    expect(after.body).toMatchObject({
      status: 'COMPLETED',
      persisted: false,
      discard: null,
      claimMode: null,
    });
    await http.get(`/api/v1/jobs/${JOB}/savepoint-schedule`).set(admin).expect(404);
    const job = await http.get(`/api/v1/jobs/${JOB}`).set(admin).expect(200);
    expect(job.body).toMatchObject({ latestRestore: null, counts: { restored: 0 } });
  });

  it('GraphQL mutations of a hard-deleted job: GONE to a token of every namespace, NOT_FOUND (as never registered) to a team’s', async () => {
    const DELETED = 'de1e7ed0beef0000de1e7ed0beef0002';
    // The job's stream was hard-deleted: the store answers as EventStoreDB does for a tombstoned stream.
    const readStream = fx.store.readStream.bind(fx.store);
    fx.store.readStream = async (streamId, options) => {
      if (streamId === `snapcat-job-${DELETED}`) throw new StreamDeletedError(streamId);
      return readStream(streamId, options);
    };
    try {
      const mutation = `mutation { setJobStatus(jobId: "${DELETED}", status: RUNNING) { id } }`;
      const ask = async (token: string) =>
        (
          await http
            .post('/graphql')
            .set({ authorization: `Bearer ${token}` })
            .send({ query: mutation })
        ).body as { errors: { message: string; extensions: Record<string, unknown> }[] };
      const everywhere = await ask(tokens.operator);
      expect(everywhere.errors[0]!.extensions).toMatchObject({ code: 'GONE', rule: 'deleted' });
      const team = await ask(elsewhere.operator);
      expect(team.errors[0]!.extensions).toMatchObject({
        code: 'NOT_FOUND',
        field: 'jobId',
        rule: 'job-exists',
      });
      expect(team.errors[0]!.message).toBe(`job ${DELETED} is not registered`);
    } finally {
      fx.store.readStream = readStream;
    }
  });

  it('GraphQL clusters: a token limited to namespaces is refused every cluster field (FORBIDDEN); one of every namespace is not', async () => {
    const ask = async (token: string, query: string) =>
      (
        await http
          .post('/graphql')
          .set({ authorization: `Bearer ${token}` })
          .send({ query })
      ).body;
    const operations: [string, string][] = [
      ['Query.clusters', '{ clusters { name } }'],
      ['Query.cluster', '{ cluster(name: "flink-ns") { name } }'],
      [
        'Mutation.setCluster',
        'mutation { setCluster(name: "flink-ns", restUrl: "http://flink:8081") { name } }',
      ],
      ['Mutation.removeCluster', 'mutation { removeCluster(name: "flink-ns") }'],
    ];
    expect(operations.map(([field]) => field).sort()).toEqual([...CLUSTER_FIELDS].sort());
    for (const [field, query] of operations) {
      const outside = await ask(elsewhere.admin, query);
      expect([field, outside.errors?.[0]?.extensions?.code]).toEqual([field, 'FORBIDDEN']);
      expect([field, outside.data?.[field.split('.')[1]!] ?? null]).toEqual([field, null]);
    }
    // None of them happened: a token of every namespace sets, sees and removes it.
    expect((await ask(tokens.admin, '{ cluster(name: "flink-ns") { name } }')).data.cluster).toBeNull();
    for (const [field, query] of operations.reverse()) {
      const everywhere = await ask(tokens.admin, query);
      if (field === 'Mutation.removeCluster') continue; // (first: nothing to remove yet)
      expect([field, everywhere.errors]).toEqual([field, undefined]);
    }
  });

  it('/readyz is public, but names the Flink clusters only to a token that may read them (operator, every namespace)', async () => {
    await http
      .put('/api/v1/clusters/flink-readyz')
      .set(authorization('admin'))
      .send({ restUrl: 'http://flink-readyz:8081' })
      .expect((r) => expect([200, 201]).toContain(r.status));
    const clustersOf = async (token?: string) => {
      const call = http.get('/readyz');
      const answer = await (token ? call.set({ authorization: `Bearer ${token}` }) : call).expect(200);
      return answer.body.flinkClusters as { name?: string; state: string }[];
    };
    for (const token of [undefined, tokens.read, tokens.runtime, elsewhere.admin, 'not-a-token']) {
      const seen = await clustersOf(token);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.filter((c) => 'name' in c)).toEqual([]);
    }
    for (const token of [tokens.operator, tokens.admin]) {
      expect((await clustersOf(token)).map((c) => c.name)).toContain('flink-readyz');
    }
  });

  it("a GraphQL subscription streams a job's events only to a token of the job's namespace", async () => {
    const query = `subscription { snapshotEvents(jobId: "${JOB}") { type snapshotId } }`;
    const everywhere = graphqlStream(http, tokens.read, query);
    const outside = graphqlStream(http, elsewhere.read, query);
    await new Promise((r) => setTimeout(r, 300)); // both subscribed
    pubsub.publish(`${prefix}:events`, JOB, {
      jobId: JOB,
      type: 'SnapshotCompleted',
      snapshotId: 41,
      revision: '1',
      position: '0/0',
      occurredAt: new Date().toISOString(),
      data: {} as never,
    });
    for (let i = 0; i < 100 && !everywhere.received().includes('"snapshotId":41'); i += 1) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200)); // time for the other stream to get it, if it would
    expect(everywhere.received()).toContain('"snapshotId":41');
    expect(outside.received()).not.toContain('"snapshotId":41');
    expect(outside.received()).not.toContain('"errors"');
    await Promise.all([everywhere.close(), outside.close()]);
  });

  it('a job is registered in a namespace of the token, never another, and its namespace never changes', async () => {
    const job = 'c1b2c3d4e5f60718293a4b5c6d7e8f90';
    const inElsewhere = { authorization: `Bearer ${elsewhere.runtime}` };
    const refused = await http
      .put(`/api/v1/jobs/${job}`)
      .set(inElsewhere)
      .send({ tasks: ['t'], namespace: 'payments' })
      .expect(403);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({ field: 'body.namespace', rule: 'namespace-granted' }),
    ]);
    await http
      .put(`/api/v1/jobs/${job}`)
      .set(inElsewhere)
      .send({ tasks: ['t'] })
      .expect(403); // default
    const created = await http
      .put(`/api/v1/jobs/${job}`)
      .set(inElsewhere)
      .send({ tasks: ['t'], namespace: 'elsewhere' })
      .expect(201);
    expect(created.body.namespace).toBe('elsewhere');
    await http
      .get(`/api/v1/jobs/${job}`)
      .set({ authorization: `Bearer ${elsewhere.read}` })
      .expect(200);
    const moved = await http
      .put(`/api/v1/jobs/${job}`)
      .set(authorization('admin'))
      .send({ tasks: ['t'], namespace: 'default' })
      .expect(409);
    expect(moved.body.errors).toEqual([
      expect.objectContaining({ field: 'body.namespace', rule: 'immutable' }),
    ]);
    // Leaving it out keeps it.
    await http
      .put(`/api/v1/jobs/${job}`)
      .set(inElsewhere)
      .send({ tasks: ['t', 'u'] })
      .expect(200);
    // The list comes from the read model: wait for the projector to show the job.
    let listed: string[] = [];
    for (let i = 0; i < 100 && listed.length === 0; i += 1) {
      const res = await http
        .get('/api/v1/jobs')
        .set({ authorization: `Bearer ${elsewhere.read}` })
        .expect(200);
      listed = res.body.jobs.map((j: { jobId: string }) => j.jobId);
      if (listed.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(listed).toEqual([job]);
    const filtered = await http
      .get('/api/v1/jobs?namespace=default')
      .set({ authorization: `Bearer ${elsewhere.read}` })
      .expect(200);
    expect(filtered.body.jobs).toEqual([]);
  });

  // Yoga refuses such a request before execution (OPERATION_RESOLUTION_FAILURE), so neither the access check (which
  // finds no fields to check in it) nor graphql-jit (which took any falsy name as none) ever sees it.
  it('an operation name that names no operation of the document is refused before execution, with or without a token', async () => {
    const query = `{ job(id: "${JOB}") { id } }`;
    for (const operationName of ['', 'Other', 0, false]) {
      for (const token of [undefined, 'read'] as const) {
        const call = http.post('/graphql').set('accept', 'application/graphql-response+json');
        if (token) call.set(authorization(token));
        const res = await call.send({ query, operationName });
        expect({ operationName, token, status: res.status, data: res.body.data ?? null }).toEqual({
          operationName,
          token,
          status: 400,
          data: null,
        });
      }
    }
    const named = await http.post('/graphql').set(authorization('read')).send({ query, operationName: null });
    expect(named.body.data.job).toEqual({ id: JOB });
  });

  it('introspection needs no token; a mixed operation needs the strongest scope of its fields', async () => {
    const introspection = await http.post('/graphql').send({ query: '{ __schema { queryType { name } } }' });
    expect(introspection.status).toBe(200);
    expect(introspection.body.data.__schema.queryType.name).toBe('Query');
    const mixed = await http
      .post('/graphql')
      .set(authorization('runtime'))
      .set('accept', 'application/graphql-response+json')
      .send({
        query: `mutation { a: setJobStatus(jobId: "${JOB}", status: RUNNING) { id } ...F } fragment F on Mutation { persistSnapshot(jobId: "${JOB}", snapshotId: 1) { id } }`,
      });
    expect(mixed.status).toBe(403);
    expect(mixed.body.errors[0].extensions).toMatchObject({ code: 'FORBIDDEN', requiredScope: 'operator' });
  });
});

/** A value of an argument's type, for a call that reaches the resolver (or its validation). */
function literal(name: string, type: GraphQLInputType): string {
  if (isNonNullType(type)) return literal(name, type.ofType);
  if (isInputObjectType(type)) {
    const required = Object.values(type.getFields()).filter((f) => isNonNullType(f.type));
    return `{ ${required.map((f) => `${f.name}: ${literal(f.name, f.type)}`).join(', ')} }`;
  }
  if (isListType(type)) return `[${literal(name, type.ofType)}]`;
  if (isEnumType(type)) return type.getValues()[0]!.name;
  switch (type.name) {
    case 'ID':
      return name === 'jobId' || name === 'id' ? `"${JOB}"` : '"x"';
    case 'Int':
      return '1';
    case 'Boolean':
      return 'false';
    case 'DateTime':
      return '"2026-01-01T00:00:00Z"';
    default:
      return '"x"';
  }
}

describe('tokens never reach the log', () => {
  it('a request with a token, good or bad, logs nothing containing it at debug level', async () => {
    const raw: string[] = [];
    const log = createLogger('debug', { write: (line: string) => void raw.push(line) });
    const fx = apiFixture({ tokens: TOKENS, requestLog: log.debug });
    try {
      const http = request(fx.app);
      await http.get(`/api/v1/jobs/${JOB}`).set(authorization('read')).expect(404);
      const wrong = newToken();
      await http
        .get(`/api/v1/jobs/${JOB}`)
        .set({ authorization: `Bearer ${wrong}` })
        .expect(401);
      await http
        .put(`/api/v1/jobs/${JOB}`)
        .set(authorization('read'))
        .send({ tasks: ['a'] })
        .expect(403);
      log.info('headers', { headers: { authorization: `Bearer ${tokens.runtime}` } });
      expect(raw.length).toBeGreaterThanOrEqual(4);
      const text = raw.join('');
      for (const token of [...Object.values(tokens), wrong]) expect(text).not.toContain(token);
    } finally {
      await fx.close();
    }
  });
});

describe('a known token is remembered, an unknown one never', () => {
  it('answers by the token presented each time: known, then a near miss, then the known one again', async () => {
    const fx = apiFixture({ tokens: TOKENS });
    try {
      const http = request(fx.app);
      const known = tokens.read;
      // A near miss (one character changed), a prefix and the token with more after it: never the known one.
      const nearMiss = `${known.slice(0, -1)}${known.endsWith('A') ? 'B' : 'A'}`;
      for (let round = 0; round < 2; round += 1) {
        await http
          .get(`/api/v1/jobs/${JOB}`)
          .set({ authorization: `Bearer ${known}` })
          .expect(round === 0 ? 404 : 200);
        for (const wrong of [nearMiss, known.slice(0, -1), `${known}x`]) {
          await http
            .get(`/api/v1/jobs/${JOB}`)
            .set({ authorization: `Bearer ${wrong}` })
            .expect(401);
        }
        // The scope is the token's own, whichever token was remembered first.
        await http
          .put(`/api/v1/jobs/${JOB}`)
          .set({ authorization: `Bearer ${known}` })
          .send({ tasks: ['a'] })
          .expect(403);
        await http
          .put(`/api/v1/jobs/${JOB}`)
          .set(authorization('operator'))
          .send({ tasks: ['a'] })
          .expect(round === 0 ? 201 : 200);
      }
    } finally {
      await fx.close();
    }
  });
});

describe('open subscriptions per token (SNAPCAT_MAX_STREAMS_PER_TOKEN)', () => {
  it('a token holds at most the limit open on a process: one more is a 429 TOO_MANY_REQUESTS; another token is not counted; a closed stream frees its place', async () => {
    const prefix = `snapcat-test-streams-${process.pid}-${Date.now().toString(36)}`;
    const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const fx = apiFixture({
      tokens: TOKENS,
      graphql: graphqlOver({
        readModel: new ReadModel(redis, prefix),
        topic: `${prefix}:events`,
        tokens: TOKENS,
        maxStreamsPerToken: 2,
      }),
    });
    const server = createServer(fx.app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const open: AbortController[] = [];
    const subscribe = async (token: string) => {
      const controller = new AbortController();
      open.push(controller);
      const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'text/event-stream',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ query: `subscription { snapshotEvents(jobId: "${JOB}") { type } }` }),
        signal: controller.signal,
      });
      return { response, close: () => controller.abort() };
    };
    try {
      const first = await subscribe(tokens.read);
      await subscribe(tokens.read);
      expect(first.response.status).toBe(200);
      const refused = await subscribe(tokens.read);
      expect(refused.response.status).toBe(429);
      const body = (await refused.response.text()) as string;
      expect(body).toContain('TOO_MANY_REQUESTS');
      expect(body).toContain('SNAPCAT_MAX_STREAMS_PER_TOKEN');
      // Another token has places of its own.
      expect((await subscribe(tokens.operator)).response.status).toBe(200);
      // A stream its client closed frees its place (the server sees the socket close).
      first.close();
      let again = 0;
      for (let i = 0; i < 50 && again !== 200; i += 1) {
        await new Promise((r) => setTimeout(r, 20));
        const next = await subscribe(tokens.read);
        again = next.response.status;
        if (again !== 200) await next.response.text();
      }
      expect(again).toBe(200);
    } finally {
      for (const controller of open) controller.abort();
      await new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await fx.close();
      redis.disconnect();
      await deleteKeys(prefix);
    }
  });
  it('without tokens each client address holds its own places, as the rate limit counts them', async () => {
    const prefix = `snapcat-test-streams-ip-${process.pid}-${Date.now().toString(36)}`;
    const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const fx = apiFixture({
      graphql: graphqlOver({
        readModel: new ReadModel(redis, prefix),
        topic: `${prefix}:events`,
        maxStreamsPerToken: 1,
      }),
    });
    const server = createServer(fx.app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const requests: ReturnType<typeof httpRequest>[] = [];
    // From a given loopback address (Linux answers all of 127/8): the status of the subscription's answer.
    const subscribeFrom = (localAddress: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/graphql',
            method: 'POST',
            localAddress,
            headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
          },
          (res) => resolve(res.statusCode!),
        );
        requests.push(req);
        req.on('error', reject);
        req.end(JSON.stringify({ query: `subscription { snapshotEvents(jobId: "${JOB}") { type } }` }));
      });
    try {
      expect(await subscribeFrom('127.0.0.1')).toBe(200);
      expect(await subscribeFrom('127.0.0.1')).toBe(429);
      expect(await subscribeFrom('127.0.0.2')).toBe(200);
    } finally {
      for (const req of requests) req.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await fx.close();
      redis.disconnect();
      await deleteKeys(prefix);
    }
  });
});
