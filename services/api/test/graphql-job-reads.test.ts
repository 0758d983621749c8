import IORedis from 'ioredis';
import request from 'supertest';
import { Projector, ReadModel, ReadModelKeys } from '@snapcat/read-model';
import { deleteKeys, recordRoundTrips } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { BASE, JOB, apiFixture, graphqlOver, startProjector } from './fixture';

const REDIS_URL = 'redis://127.0.0.1:6379';
const SNAPSHOTS = 25;
const NODE = 'id kind status stateSize completedAt';
/** The query of benchmark #6: the job, its latest savepoint, its restore point and its first page. */
const BENCH_QUERY = `query($id: ID!) { job(id: $id) { id name status counts { total completed inProgress }
  latestSavepoint { id status externalPath } restorePoint { snapshot { id } }
  snapshots(first: 20) { edges { node { ${NODE} } } pageInfo { hasNextPage endCursor } } } }`;

// The GraphQL `job` query reads the job with its first page of snapshots in one round trip (decision 0025);
// every other page reads apart. A real SQLite store, projector and Redis; the read model on a connection
// of the test's own, whose commands are recorded.
describe('GraphQL job: the job and its first page of snapshots in one round trip', () => {
  const prefix = testPrefix('graphql-job-reads');
  const connection = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const projectorRedis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  const readModel = new ReadModel(connection, prefix);
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let projector: Projector;

  const gql = async (query: string, variables: object = {}) => {
    const res = await http.post('/graphql').send({ query, variables }).expect(200);
    expect(res.body.errors).toBeUndefined();
    return res.body.data.job;
  };
  /** The same `snapshots` field inside an inline fragment: not looked at by the `job` resolver, read apart. */
  const apart = (field: string) => `... on Job { ${field} }`;

  beforeAll(async () => {
    fx = apiFixture({
      readModel,
      readModelAvailable: () => true,
      graphql: graphqlOver({ readModel, topic: `${prefix}:events` }),
    });
    http = request(fx.app);
    projector = await startProjector(fx.store, projectorRedis, prefix);
    await http
      .put(`${BASE}/jobs/${JOB}`)
      .send({ name: 'orders', tasks: ['a'] })
      .expect(201);
    await http.post(`${BASE}/jobs/${JOB}/status`).send({ status: 'RUNNING' }).expect(200);
    // Every 4th a savepoint; the newest, 25, is still pending.
    for (let id = 1; id <= SNAPSHOTS; id += 1) {
      await http
        .post(`${BASE}/jobs/${JOB}/snapshots`)
        .send({ kind: id % 4 === 0 ? 'SAVEPOINT' : 'CHECKPOINT' });
      if (id !== SNAPSHOTS)
        await http.post(`${BASE}/jobs/${JOB}/snapshots/${id}/acks`).send({ taskId: 'a', stateSize: id });
    }
    for (let tries = 0; tries < 200; tries += 1) {
      const job = await gql(`{ job(id: "${JOB}") { counts { total } latestSavepoint { id } } }`);
      if (job?.counts.total === SNAPSHOTS && job.latestSavepoint?.id === 24) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  }, 30_000);
  afterAll(async () => {
    await projector.stop();
    projectorRedis.disconnect();
    await fx.close();
    await deleteKeys(prefix);
    connection.disconnect();
  });

  it('answers the first page of every size as the page read apart does', async () => {
    for (const first of [1, 2, 5, 19, 20, 24, 25, 26, 60]) {
      const field = `snapshots(first: ${first}) { edges { cursor node { ${NODE} } } pageInfo { hasNextPage endCursor } }`;
      const together = await gql(`{ job(id: "${JOB}") { deleted deletedAt ${field} } }`);
      expect(together).toEqual(await gql(`{ job(id: "${JOB}") { deleted deletedAt ${apart(field)} } }`));
      expect(together.snapshots.edges).toHaveLength(Math.min(first, SNAPSHOTS));
      expect(together.snapshots.pageInfo.hasNextPage).toBe(first < SNAPSHOTS);
    }
  });

  it('answers several pages, filtered ones and later ones, as read apart; a variable first as a literal', async () => {
    const first = await gql(`{ job(id: "${JOB}") { snapshots(first: 3) { pageInfo { endCursor } } } }`);
    const after = first.snapshots.pageInfo.endCursor as string;
    const fields = [
      `a: snapshots(first: 3) { edges { node { ${NODE} } } pageInfo { hasNextPage endCursor } }`,
      `b: snapshots(first: $first) { edges { node { id } } pageInfo { hasNextPage } }`,
      `c: snapshots(first: 4, kinds: [SAVEPOINT]) { edges { node { id kind } } pageInfo { hasNextPage } }`,
      `d: snapshots(first: 2, after: "${after}") { edges { node { id } } pageInfo { hasNextPage } }`,
      `e: snapshots(first: 3, statuses: [PENDING]) { edges { node { id status } } }`,
      `latestSavepoint { ${NODE} } latestCompletedCheckpoint { id } restorePoint { reason snapshot { id } }`,
    ];
    const query = (wrap: (field: string) => string) =>
      `query($first: Int!) { job(id: "${JOB}") { ${fields.map(wrap).join(' ')} } }`;
    const together = await gql(
      query((f) => f),
      { first: 10 },
    );
    expect(together).toEqual(await gql(query(apart), { first: 10 }));
    expect(together.b.edges.map((e: { node: { id: number } }) => e.node.id)).toEqual([
      25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
    ]);
    expect(together.c.edges.map((e: { node: { id: number } }) => e.node.id)).toEqual([24, 20, 16, 12]);
    expect(together.d.edges.map((e: { node: { id: number } }) => e.node.id)).toEqual([22, 21]);
    expect(together.e.edges).toEqual([{ node: { id: 25, status: 'PENDING' } }]);
  });

  it('a job that does not exist is null, as before', async () => {
    const field = 'snapshots(first: 5) { edges { node { id } } }';
    expect(await gql(`{ job(id: "${'f'.repeat(32)}") { ${field} } }`)).toBeNull();
  });

  it('benchmark #6’s query takes one round trip to Redis (one command); read apart it took three', async () => {
    await gql(BENCH_QUERY, { id: JOB }); // the key space looked up, the script loaded on the connection
    const together = recordRoundTrips(connection);
    const job = await gql(BENCH_QUERY, { id: JOB });
    expect(together).toEqual({ commands: ['evalsha'], roundTrips: 1 });
    expect(job).toMatchObject({ latestSavepoint: { id: 24 }, restorePoint: { snapshot: { id: 24 } } });
    const readApart = recordRoundTrips(connection);
    await gql(BENCH_QUERY.replace(/(snapshots\(first: 20\).*) \} \}$/s, `${apart('$1')} } }`), { id: JOB });
    // The summary; then the two snapshots it names and the page's ids; then the page's views.
    expect(readApart).toEqual({ commands: ['get', 'get', 'get', 'zrevrangebyscore', 'mget'], roundTrips: 3 });
  });

  it('history newest first: every event once, in the reverse of the log’s order, page after page; windows by time too', async () => {
    type Node = { revision: string; occurredAt: string };
    type Page = { edges: { node: Node }[]; pageInfo: { hasNextPage: boolean; endCursor: string } };
    const all = async (args: string) => {
      const seen: Node[] = [];
      let after: string | null = null;
      do {
        const res = await http
          .post('/graphql')
          .send({
            query: `query($after: String) { history(jobId: "${JOB}", first: 7, after: $after${args}) {
              edges { node { revision occurredAt } } pageInfo { hasNextPage endCursor } } }`,
            variables: { after },
          })
          .expect(200);
        expect(res.body.errors).toBeUndefined();
        const page = res.body.data.history as Page;
        seen.push(...page.edges.map((e) => e.node));
        after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      } while (after);
      return seen;
    };
    const oldest = await all('');
    expect(oldest.length).toBeGreaterThan(40);
    expect(await all(', newestFirst: true')).toEqual([...oldest].reverse());
    // A window by time: the same events either way.
    const from = oldest[10]!.occurredAt;
    const to = oldest[30]!.occurredAt;
    const window = `, from: "${from}", to: "${to}"`;
    const forwards = await all(window);
    expect(forwards.length).toBeGreaterThan(0);
    expect(await all(`${window}, newestFirst: true`)).toEqual([...forwards].reverse());
  });

  // Queries run compiled (graphql-jit, decision 0040), which caches one compiled query per parsed document.
  it('a document of two queries answers each by its operation name, one after the other', async () => {
    const document = `query A { job(id: "${JOB}") { id } } query B { job(id: "${JOB}") { counts { total } } }`;
    const run = async (operationName: string) =>
      (await http.post('/graphql').send({ query: document, operationName }).expect(200)).body;
    for (const round of [1, 2]) {
      expect({ round, ...(await run('A')) }).toEqual({ round, data: { job: { id: JOB } } });
      expect({ round, ...(await run('B')) }).toEqual({
        round,
        data: { job: { counts: { total: SNAPSHOTS } } },
      });
    }
  });

  it('a fragment spread twice, once under @include(if: false), keeps its fields where it is not skipped', async () => {
    const query = `query($with: Boolean!) { job(id: "${JOB}") {
      a: snapshots(first: 2) { edges { node { ...F @include(if: $with) } } }
      b: snapshots(first: 2) { edges { node { ...F } } } } }
      fragment F on Snapshot { id kind }`;
    for (const include of [false, true, false]) {
      const job = await gql(query, { with: include });
      expect(job.a.edges).toEqual(
        include
          ? [{ node: { id: 25, kind: 'CHECKPOINT' } }, { node: { id: 24, kind: 'SAVEPOINT' } }]
          : [{ node: {} }, { node: {} }],
      );
      expect(job.b.edges).toEqual([
        { node: { id: 25, kind: 'CHECKPOINT' } },
        { node: { id: 24, kind: 'SAVEPOINT' } },
      ]);
    }
  });
});

// A read model catching up with the log (a first start on a long log, a rebuild after Redis lost it) lists a
// fragment and answers an existing job as none: its queries wait a moment, then answer UNAVAILABLE. The
// history reads the log itself, and answers.
describe('GraphQL queries of a read model being rebuilt', () => {
  const prefix = testPrefix('graphql-rebuilding');
  const connection = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const readModel = new ReadModel(connection, prefix);
  let fx: ReturnType<typeof apiFixture>;
  beforeAll(async () => {
    fx = apiFixture({
      readModel,
      readModelAvailable: () => true,
      graphql: graphqlOver({ readModel, topic: `${prefix}:events` }),
    });
    await request(fx.app)
      .put(`${BASE}/jobs/${JOB}`)
      .send({ name: 'orders', tasks: ['a'] })
      .expect(201);
    // Its projector began (the origin), and has not caught up with the log yet (no `complete` mark).
    await connection.set(new ReadModelKeys(prefix).space(1).origin, new Date().toISOString());
  });
  afterAll(async () => {
    await fx.close();
    await deleteKeys(prefix);
    connection.disconnect();
  });

  it('job, jobs, snapshots, snapshot and catalog answer UNAVAILABLE (rebuilding), not a fragment', async () => {
    const queries = [
      `{ job(id: "${JOB}") { id } }`,
      '{ jobs { edges { node { id } } } }',
      `{ snapshots(jobId: "${JOB}") { edges { node { id } } } }`,
      `{ snapshot(jobId: "${JOB}", id: 1) { id } }`,
      `{ catalog(jobId: "${JOB}") { edges { node { id } } } }`,
    ];
    // At once: each waits a moment for the read model to be whole before it answers.
    const answers = await Promise.all(
      queries.map((query) => request(fx.app).post('/graphql').send({ query })),
    );
    for (const [i, res] of answers.entries()) {
      expect({ query: queries[i], errors: res.body.errors }).toEqual({
        query: queries[i],
        errors: [
          expect.objectContaining({
            message: expect.stringMatching(
              /^the read model is unavailable: it is being rebuilt from the event log/,
            ),
            extensions: { code: 'UNAVAILABLE', readModel: 'rebuilding' },
          }),
        ],
      });
    }
  });

  it('the history, read from the log, answers meanwhile', async () => {
    const res = await request(fx.app)
      .post('/graphql')
      .send({ query: `{ history(jobId: "${JOB}") { edges { node { type } } } }` });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.history.edges[0].node.type).toBe('JobRegistered');
  });
});
