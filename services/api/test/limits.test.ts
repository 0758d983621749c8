import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import IORedis from 'ioredis';
import request from 'supertest';
import { ReadModel, rebuildReadModel } from '@snapcat/read-model';
import { MAX_SUBSCRIPTIONS_PER_NAMESPACES } from '@snapcat/domain';
import { newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import { deleteKeys } from '../../../test/support/redis';
import { GRAPHQL_BODY_LIMIT } from '../src/app';
import { CSRF_HEADER, GRAPHQL_LIMITS } from '../src/graphql';
import { createRateLimiter } from '../src/rate-limit';
import { apiFixture, expectProblem, JOB, graphqlOver, webhooksFixture } from './fixture';

/*
 * Issue 18, item 6: the per-caller rate limit (429 + Retry-After, never on the probes, shared through Redis),
 * GraphQL Armor's limits, CSRF prevention for GraphQL, the GraphQL body limit, and the REST request limits.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';
const prefix = `snapcat-test-limits-${process.pid}-${Date.now().toString(36)}`;
const one = newToken();
const two = newToken();
const TOKENS = parseTokenList(
  [
    tokenLine({ name: 'one', scopes: ['admin'], namespaces: '*' }, one),
    tokenLine({ name: 'two', scopes: ['admin'], namespaces: '*' }, two),
  ].join('\n'),
);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

let redis: IORedis;
beforeAll(() => {
  redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await deleteKeys(prefix);
  redis.disconnect();
});

/** Sends `n` requests one after another; the statuses in order. */
async function statuses(n: number, send: () => PromiseLike<{ status: number }>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await send()).status);
  return out;
}

describe('rate limit', () => {
  it('per token: past its budget 429 problem+json with Retry-After; another token and the probes and /metrics go on', async () => {
    const fx = apiFixture({ tokens: TOKENS, rateLimiter: createRateLimiter(3) });
    try {
      const http = request(fx.app);
      // 3 a second, and as many again per 10 s of burst: the 7th within the second is refused.
      const first = await statuses(8, () => http.get(`/api/v1/jobs/${JOB}`).set(bearer(one)));
      expect(first.slice(0, 6)).toEqual([404, 404, 404, 404, 404, 404]);
      expect(first.slice(6)).toEqual([429, 429]);
      const refused = await http.get(`/api/v1/jobs/${JOB}`).set(bearer(one));
      expectProblem(refused as never, 429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await http.get(`/api/v1/jobs/${JOB}`).set(bearer(two))).status).toBe(404);
      expect(new Set(await statuses(20, () => http.get('/healthz')))).toEqual(new Set([200]));
      expect(new Set(await statuses(20, () => http.get('/readyz')))).toEqual(new Set([200]));
      // A scrape is not counted either: it must not wait for the limiter's Redis while Redis hangs.
      expect(new Set(await statuses(20, () => http.get('/metrics')))).toEqual(new Set([200]));
    } finally {
      await fx.close();
    }
  });

  it('without tokens, per client address', async () => {
    const fx = apiFixture({ rateLimiter: createRateLimiter(2) });
    try {
      const http = request(fx.app);
      const seen = await statuses(6, () => http.get(`/api/v1/jobs/${JOB}`));
      expect(seen).toEqual([404, 404, 404, 404, 429, 429]);
    } finally {
      await fx.close();
    }
  });

  it("on Redis, replicas share one token's budget", async () => {
    const limit = () => createRateLimiter(2, { client: redis, keyPrefix: `${prefix}:ratelimit` });
    const a = apiFixture({ tokens: TOKENS, rateLimiter: limit() });
    const b = apiFixture({ tokens: TOKENS, rateLimiter: limit() });
    try {
      const [ha, hb] = [request(a.app), request(b.app)];
      let i = 0;
      const seen = await statuses(6, () => (i++ % 2 ? hb : ha).get(`/api/v1/jobs/${JOB}`).set(bearer(one)));
      expect(seen).toEqual([404, 404, 404, 404, 429, 429]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('GraphQL limits', () => {
  const readModel = () => new ReadModel(redis, prefix);
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeAll(async () => {
    fx = apiFixture({
      storage: {
        isWithinRoots: async () => true,
        spelledWithinRoots: () => true,
        whyNotStateFile: async () => undefined,
      } as never,
      graphql: graphqlOver({ readModel: readModel(), topic: `${prefix}:events` }),
    });
    http = request(fx.app);
    // An empty read model, whole (as its projector leaves it on an empty log): queries answer, none are held.
    await rebuildReadModel(fx.store, redis, prefix);
  });
  afterAll(() => fx.close());

  const post = (query: string) =>
    http.post('/graphql').set('accept', 'application/graphql-response+json').send({ query });
  const message = (res: { body: { errors?: { message: string }[] } }) => res.body.errors?.[0]?.message ?? '';

  it('refuses a document deeper, costlier, with more aliases, tokens or directives than allowed', async () => {
    const nested = (depth: number) => {
      // Job.snapshots.edges.node... nests: the depth grows by job → snapshots → edges → node → (id).
      let inner = 'id';
      for (let i = 0; i < depth; i++)
        inner = `restorePoint { snapshot { jobId } } snapshots { edges { node { ${inner} } } }`;
      return `{ job(id: "${JOB}") { ${inner} } }`;
    };
    expect(message(await post(nested(1)))).toBe('');
    expect(message(await post(nested(3)))).toMatch(/depth|cost/i);
    const aliases = Array.from(
      { length: GRAPHQL_LIMITS.maxAliases.n + 1 },
      (_, i) => `a${i}: job(id: "${JOB}") { id }`,
    );
    expect(message(await post(`{ ${aliases.join(' ')} }`))).toMatch(/aliases/i);
    const tokens = Array.from({ length: GRAPHQL_LIMITS.maxTokens.n }, () => '__typename');
    expect(message(await post(`{ ${tokens.join(' ')} }`))).toMatch(/token/i);
    const directives = Array.from({ length: GRAPHQL_LIMITS.maxDirectives.n + 1 }, () => '@include(if: true)');
    expect(message(await post(`{ __typename ${directives.join(' ')} }`))).toMatch(/directive/i);
  });

  it('admits a page of the advertised 500 with a dozen fields, given as a literal (which Armor’s cost multiplies)', async () => {
    const fields = 'id name namespace status tasks updatedAt';
    for (const query of [
      `{ jobs(first: 500) { edges { cursor node { ${fields} } } pageInfo { hasNextPage endCursor } } }`,
      `{ job(id: "${JOB}") { id snapshots(first: 500) { edges { node { id kind status stateSize triggeredAt completedAt externalPath } } } } }`,
    ]) {
      expect(message(await post(query))).toBe('');
    }
    // Wider than that is still priced: the same page with every field a hundred times over (aliased away).
    expect(
      message(await post(`{ jobs(first: 500) { edges { node { ${`${fields} `.repeat(20)} } } } }`)),
    ).toMatch(/cost/i);
  });

  it('prices `first` given as a variable or left to its default, which the cost limit does not see', async () => {
    const nested =
      'query($n: Int) { jobs(first: $n) { edges { node { snapshots(first: $n) { edges { cursor } } } } } }';
    const ask = (variables: object) =>
      http
        .post('/graphql')
        .set('accept', 'application/graphql-response+json')
        .send({ query: nested, variables });
    const refused = await ask({ n: 500 });
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      rule: 'max-requested-items',
      requested: 500 + 500 * 500,
    });
    expect(refused.body.data).toBeUndefined();
    // Within the budget: 50 + 50 × 50 (the read model answers, empty: no job is registered here).
    expect((await ask({ n: 50 })).body.errors).toBeUndefined();
    // Defaults count too: jobs (20) and 20 snapshots each, 420 in all.
    const defaults = await post('{ jobs { edges { node { snapshots { edges { cursor } } } } } }');
    expect(defaults.body.errors).toBeUndefined();
    // A variable the request leaves out runs with its default: priced with it, not as 1.
    const withDefault = await http
      .post('/graphql')
      .set('accept', 'application/graphql-response+json')
      .send({ query: nested.replace('$n: Int', '$n: Int = 500') });
    expect(withDefault.body.errors?.[0]?.extensions).toMatchObject({
      rule: 'max-requested-items',
      requested: 500 + 500 * 500,
    });
  });

  it('introspection (as GraphiQL sends it) is on and within the limits', async () => {
    const { getIntrospectionQuery } = await import('graphql');
    const res = await post(getIntrospectionQuery());
    expect(res.status).toBe(200);
    expect(res.body.data.__schema.queryType.name).toBe('Query');
  });

  it('CSRF: a GET or a form-encoded POST needs the x-graphql-csrf header; JSON POSTs and GraphiQL work', async () => {
    const get = await http
      .get('/graphql')
      .query({ query: '{ __typename }' })
      .set('accept', 'application/json');
    expect(get.status).toBe(403);
    const withHeader = await http
      .get('/graphql')
      .query({ query: '{ __typename }' })
      .set('accept', 'application/json')
      .set(CSRF_HEADER, '1');
    expect(withHeader.status).toBe(200);
    expect(withHeader.body.data.__typename).toBe('Query');
    const form = await http
      .post('/graphql')
      .set('content-type', 'application/x-www-form-urlencoded')
      .send('query=%7B__typename%7D');
    expect(form.status).toBe(403);
    expect((await post('{ __typename }')).status).toBe(200);
    const graphiql = await http.get('/graphql').set('accept', 'text/html');
    expect(graphiql.status).toBe(200);
    expect(graphiql.text).toContain(CSRF_HEADER);
  });

  it('a GraphQL body over 1 MiB is 413', async () => {
    const res = await http
      .post('/graphql')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ query: '{ __typename }', variables: { x: 'x'.repeat(GRAPHQL_BODY_LIMIT) } }));
    expectProblem(res as never, 413, 'body', 'max-size');
  });

  it('so is one sent chunked (no Content-Length), counted as it arrives; a small chunked one is answered', async () => {
    const server = createServer(fx.app).listen(0);
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const chunked = (body: string) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = httpRequest(
          { port, method: 'POST', path: '/graphql', headers: { 'content-type': 'application/json' } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () =>
              resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body: text }),
            );
          },
        );
        req.on('error', reject);
        for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.slice(i, i + 64 * 1024));
        req.end();
      });
    try {
      const large = await chunked(
        JSON.stringify({ query: '{ __typename }', variables: { x: 'x'.repeat(GRAPHQL_BODY_LIMIT) } }),
      );
      expect(large.status).toBe(413);
      expect(large.type).toMatch(/^application\/problem\+json/);
      const small = await chunked(JSON.stringify({ query: '{ __typename }' }));
      expect(small.status).toBe(200);
      expect(JSON.parse(small.body)).toEqual({ data: { __typename: 'Query' } });
    } finally {
      server.close();
    }
  });
});

describe('REST request limits', () => {
  let fx: ReturnType<typeof apiFixture>;
  beforeAll(() => {
    fx = apiFixture();
  });
  afterAll(() => fx.close());

  it('names the field and the rule: batch-ack length, string lengths', async () => {
    const http = request(fx.app);
    const acks = Array.from({ length: 10_001 }, (_, i) => ({ taskId: `t${i}` }));
    expectProblem(
      (await http.post(`/api/v1/jobs/${JOB}/snapshots/1/acks`).send(acks)) as never,
      400,
      'body',
      'max-length',
    );
    expectProblem(
      (await http.post(`/api/v1/jobs/${JOB}/snapshots/1/acks`).send({ taskId: 't'.repeat(257) })) as never,
      400,
      'body.taskId',
      'max-length',
    );
    expectProblem(
      (await http
        .post(`/api/v1/jobs/${JOB}/snapshots/1/decline`)
        .send({ taskId: 't', reason: 'r'.repeat(4097) })) as never,
      400,
      'body.reason',
      'max-length',
    );
    expectProblem(
      (await http.put(`/api/v1/jobs/${JOB}`).send({ tasks: ['a'], name: 'n'.repeat(257) })) as never,
      400,
      'body.name',
      'max-length',
    );
    expectProblem(
      (await http
        .post(`/api/v1/jobs/${JOB}/snapshots/1/persist`)
        .send({ targetDirectory: `/${'d'.repeat(1024)}` })) as never,
      400,
      'body.targetDirectory',
      'max-length',
    );
  });
});

describe('webhook subscriptions', () => {
  it(`one set of namespaces holds at most ${MAX_SUBSCRIPTIONS_PER_NAMESPACES}: one more is a 409 naming body and max-subscriptions, and writes nothing; a deletion frees a place`, async () => {
    const { webhooks, close } = webhooksFixture(redis, prefix);
    const fx = apiFixture({ tokens: TOKENS, webhooks });
    try {
      const http = request(fx.app);
      const create = () =>
        http.post('/api/v1/webhooks').set(bearer(one)).send({ url: 'https://8.8.8.8/hook' });
      const created: string[] = [];
      for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_NAMESPACES; i++) {
        const res = await create();
        expect(res.status).toBe(201);
        created.push(res.body.id as string);
      }
      const refused = await create();
      expectProblem(refused as never, 409, 'body', 'max-subscriptions');
      expect(await webhooks.list('*')).toHaveLength(MAX_SUBSCRIPTIONS_PER_NAMESPACES);
      expect((await http.delete(`/api/v1/webhooks/${created[0]}`).set(bearer(one))).status).toBe(204);
      expect((await create()).status).toBe(201);
    } finally {
      await fx.close();
      await close();
    }
  }, 120_000);
});
