import fc from 'fast-check';
import IORedis from 'ioredis';
import request from 'supertest';
import { ReadModel, rebuildReadModel } from '@snapcat/read-model';
import { newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import type { SnapshotStorage } from '@snapcat/storage';
import { deleteKeys } from '../../../test/support/redis';
import { REST_RULES } from '../src/access';
import { apiFixture, JOB, graphqlOver } from './fixture';
import { webhookStub } from './routes';

/*
 * Issue 18's fuzz acceptance: 10,000 malformed requests (SNAPCAT_FUZZ_RUNS to change it) over every REST route
 * and GraphQL, with no token, a wrong one, a garbage Authorization header or an admin token; bodies that are
 * random JSON, not JSON, or of another content type; random path parameters and query strings. Not one may
 * answer 5xx, and not one event may be written.
 */

const RUNS = Number(process.env.SNAPCAT_FUZZ_RUNS ?? 10_000);
const REDIS_URL = 'redis://127.0.0.1:6379';
const admin = newToken();
const TOKENS = parseTokenList(tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, admin));

const printable = (max: number) =>
  fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~'), maxLength: max });
const segment = fc.oneof(
  fc.constant(JOB),
  fc.constant('1'),
  fc.constantFrom('..', '.', '%2e%2e', '%2F', '0', '-1', '99999999999999999999', 'null', '__proto__', 'wh_x'),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
);
const path = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom(...Object.keys(REST_RULES)), fc.array(segment, { minLength: 4, maxLength: 4 }))
      .map(([route, values]) => {
        let i = 0;
        return route.split(' ')[1]!.replace(/\{\w+\}/g, () => values[i++]!);
      }),
  },
  { weight: 1, arbitrary: fc.array(segment, { maxLength: 6 }).map((parts) => `/api/v1/${parts.join('/')}`) },
);
const method = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('OPTIONS', 'HEAD') },
);
const authorization = fc.oneof(
  fc.constant(undefined),
  fc.constant(`Bearer ${admin}`),
  fc.constant(`Bearer ${admin}`),
  fc.constant(`Bearer ${newToken()}`),
  printable(80),
);
const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ type: 'application/json', text: JSON.stringify(v) })),
  fc
    .record({
      tasks: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
      // A name that is never a string: a registration that passed would write an event.
      name: fc.oneof(fc.integer(), fc.array(fc.string(), { maxLength: 2 })),
    })
    .map((v) => ({ type: 'application/json', text: JSON.stringify(v) })),
  printable(200).map((text) => ({ type: 'application/json', text })),
  fc
    .tuple(
      fc.constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/xml',
        'application/json; charset=latin9',
        'application/merge-patch+json',
      ),
      printable(100),
    )
    .map(([type, text]) => ({ type, text })),
);
const query = fc.option(
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
  { nil: undefined },
);
const graphqlBody = fc.oneof(
  printable(300).map((text) => text),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc
    .record({
      query: fc.oneof(
        printable(200),
        fc.constantFrom(
          `{ job(id: "${JOB}") { id name snapshots(first: 5) { edges { node { id } } } } }`,
          `mutation { setJobStatus(jobId: "${JOB}", status: RUNNING) { id } }`,
          `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT) { id } }`,
          `mutation { persistSnapshot(jobId: "${JOB}", snapshotId: 1, targetDirectory: "/../../etc") { id } }`,
          '{ jobs(first: -1) { edges { cursor } } }',
          '{ history(jobId: "x", first: 100000) { edges { cursor } } }',
          `{ catalogAsOf(jobId: "${JOB}", at: "yesterday") { at } }`,
        ),
      ),
      variables: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }),
      operationName: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
    })
    .map((v) => JSON.stringify(v)),
);

describe('fuzz: malformed requests', () => {
  const prefix = `snapcat-test-fuzz-${process.pid}-${Date.now().toString(36)}`;
  let redis: IORedis;
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeAll(async () => {
    redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const readModel = new ReadModel(redis, prefix);
    const storage = {
      isWithinRoots: async () => true,
      whyNotStateFile: async () => undefined,
      spelledWithinRoots: () => true,
    } as unknown as SnapshotStorage;
    fx = apiFixture({
      tokens: TOKENS,
      webhooks: webhookStub(),
      storage,
      readModel,
      readModelAvailable: () => true,
      graphql: graphqlOver({ readModel, topic: `${prefix}:e`, tokens: TOKENS }),
    });
    http = request(fx.app);
    // An empty read model, whole (as its projector leaves it on an empty log): queries answer, none are held.
    await rebuildReadModel(fx.store, redis, prefix);
  });
  afterAll(async () => {
    await fx.close();
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it(`${RUNS} malformed REST and GraphQL requests: no 5xx, no event written`, async () => {
    const failures: string[] = [];
    let answered = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          {
            weight: 4,
            arbitrary: fc.record({
              kind: fc.constant('rest' as const),
              method,
              path,
              authorization,
              body,
              query,
            }),
          },
          {
            weight: 1,
            arbitrary: fc.record({
              kind: fc.constant('graphql' as const),
              authorization,
              text: graphqlBody,
              csrf: fc.boolean(),
            }),
          },
        ),
        async (r) => {
          let call;
          if (r.kind === 'rest') {
            call = http[r.method.toLowerCase() as 'get'](r.path);
            if (r.query) call = call.query(r.query);
            if (r.body && r.method !== 'GET' && r.method !== 'HEAD')
              call = call.set('content-type', r.body.type).send(r.body.text);
          } else {
            call = http.post('/graphql').set('content-type', 'application/json').send(r.text);
            if (r.csrf) call = call.set('x-graphql-csrf', '1');
          }
          if (r.authorization !== undefined) call = call.set('authorization', r.authorization);
          const res = await call;
          answered += 1;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500)
            failures.push(`${res.status} ${JSON.stringify(r)}: ${res.text.slice(0, 300)}`);
          return res.status < 500;
        },
      ),
      { numRuns: RUNS, endOnFailure: true },
    );
    expect(failures).toEqual([]);
    expect(answered).toBe(RUNS);
    // Most refused for the reason they were made for: 4xx, some through to a route's 2xx (reads, webhooks).
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    expect(await fx.store.readAll({ maxCount: 1 })).toEqual([]);
  }, 600_000);
});
