import IORedis from 'ioredis';
import request from 'supertest';
import { FINISHED_SNAPSHOTS_KEPT } from '@snapcat/domain';
import { ReadModel, ReadModelKeys } from '@snapcat/read-model';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { BASE, JOB, apiFixture, graphqlOver, startProjector } from './fixture';

/**
 * The API (real SQLite store, GraphQL) with a projector on the real Redis under a prefix of its own, and JOB with
 * `checkpoints` completed checkpoints of one task, each subsumed by the next and its discard done (so that
 * the oldest leave the job's state); resolves once the read model projected them all.
 */
async function compactedJob(name: string, checkpoints: number, readModelAvailable: () => boolean) {
  const prefix = testPrefix(name);
  const connection = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const readModel = new ReadModel(connection, prefix);
  const fx = apiFixture({
    readModel,
    readModelAvailable,
    graphql: graphqlOver({ readModel, topic: `${prefix}:events` }),
  });
  const http = request(fx.app);
  const projector = await startProjector(fx.store, connection.duplicate(), prefix);
  await http
    .put(`${BASE}/jobs/${JOB}`)
    .send({ name: 'orders', tasks: ['a'], checkpointing: { numRetained: 1 } })
    .expect(201);
  for (let id = 1; id <= checkpoints; id += 1) {
    await http.post(`${BASE}/jobs/${JOB}/snapshots`).send({ kind: 'CHECKPOINT' }).expect(202);
    await http
      .post(`${BASE}/jobs/${JOB}/snapshots/${id}/acks`)
      .send({ taskId: 'a', stateSize: id })
      .expect(200);
    // The storage worker's report for the checkpoint this one subsumed.
    if (id > 1)
      await fx.bus.execute({
        type: 'RecordDiscardCompleted',
        jobId: JOB,
        snapshotId: id - 1,
        bytesReclaimed: 1,
      });
  }
  const [last] = await fx.store.readAll({ direction: 'backwards', maxCount: 1 });
  expect(await readModel.waitFor(last!.position, 10_000)).toBe(true);
  return {
    prefix,
    connection,
    readModel,
    fx,
    http,
    projector,
    async close() {
      await projector.stop();
      await fx.close();
      await deleteKeys(prefix);
      connection.disconnect();
    },
  };
}

// Decision 0035: finished snapshots leave the job's state once FINISHED_SNAPSHOTS_KEPT newer ones finished.
// The REST API still answers for them from the read model, and counts them. A real SQLite store, projector
// and Redis.
describe('REST: snapshots compacted out of their job (decision 0035)', () => {
  const CHECKPOINTS = FINISHED_SNAPSHOTS_KEPT + 6;
  let job: Awaited<ReturnType<typeof compactedJob>>;
  let readModel: ReadModel;
  let http: ReturnType<typeof request>;
  let available = true;

  beforeAll(async () => {
    job = await compactedJob('compacted-snapshots', CHECKPOINTS, () => available);
    ({ readModel, http } = job);
  }, 60_000);
  afterAll(() => job.close());

  it('the job lists what its state keeps and counts every snapshot', async () => {
    const job = (await http.get(`${BASE}/jobs/${JOB}`).expect(200)).body;
    const compacted = CHECKPOINTS - 1 - FINISHED_SNAPSHOTS_KEPT;
    expect(job.counts).toMatchObject({ total: CHECKPOINTS, compacted });
    expect(job.snapshots).toHaveLength(FINISHED_SNAPSHOTS_KEPT + 1);
    expect(job.snapshots.at(-1).snapshotId).toBe(compacted + 1);
  });

  it('GraphQL catalogAsOf lists every snapshot its counts count, the compacted ones too, as the job’s own page does (a review)', async () => {
    const ask = async (query: string) => {
      const body = (await http.post('/graphql').send({ query }).expect(200)).body;
      if (!body.data) throw new Error(JSON.stringify(body.errors));
      return body.data;
    };
    const ids = (page: { edges: { node: { id: number } }[] }) => page.edges.map((e) => e.node.id);
    const page = `snapshots(first: ${CHECKPOINTS}) { edges { node { id status } } }`;
    const { job } = await ask(`{ job(id: "${JOB}") { ${page} } }`);
    const at = new Date(Date.now() + 60_000).toISOString();
    const { catalogAsOf } = await ask(
      `{ catalogAsOf(jobId: "${JOB}", at: "${at}") { job { counts { total compacted } ${page} } } }`,
    );
    expect(catalogAsOf.job.counts).toMatchObject({
      total: CHECKPOINTS,
      compacted: CHECKPOINTS - 1 - FINISHED_SNAPSHOTS_KEPT,
    });
    expect(ids(catalogAsOf.job.snapshots)).toHaveLength(CHECKPOINTS);
    expect(ids(catalogAsOf.job.snapshots)).toEqual(ids(job.snapshots));
    expect(catalogAsOf.job.snapshots.edges.at(-1).node).toEqual({ id: 1, status: 'DISCARDED' });
  });

  it('a compacted snapshot is read from the read model; an id never used is still 404', async () => {
    const first = (await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(200)).body;
    expect(first).toMatchObject({
      jobId: JOB,
      snapshotId: 1,
      status: 'DISCARDED',
      discard: { state: 'DONE' },
    });
    // As stored, and as a caller of every namespace sees who holds it (decision 0045).
    expect(first).toEqual({ ...(await readModel.snapshot(JOB, 1)), hiddenHolders: 0 });
    await http.get(`${BASE}/jobs/${JOB}/snapshots/9999`).expect(404);
  });

  it('with Redis unreachable a compacted snapshot is a 503; one still in the job and an unused id answer as before', async () => {
    available = false;
    try {
      const res = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(503);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      await http.get(`${BASE}/jobs/${JOB}/snapshots/${CHECKPOINTS}`).expect(200);
      await http.get(`${BASE}/jobs/${JOB}/snapshots/9999`).expect(404);
    } finally {
      available = true;
    }
  });

  it('a command on a compacted snapshot is a 404 that says why', async () => {
    const res = await http.post(`${BASE}/jobs/${JOB}/snapshots/1/discard`).send({}).expect(404);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.detail).toContain('decision 0035');
  });
});

// A job with snapshots compacted out of its state (decision 0035), projected; then Redis loses the read model
// and a projector begins again (its origin, no `complete` mark): what REST and GraphQL answer from it
// meanwhile is UNAVAILABLE, never "does not exist" nor an internal error (a review found both).
describe('reads while the read model is rebuilding', () => {
  const CHECKPOINTS = FINISHED_SNAPSHOTS_KEPT + 4;
  let job: Awaited<ReturnType<typeof compactedJob>>;
  let http: ReturnType<typeof request>;

  beforeAll(async () => {
    job = await compactedJob('rebuilding-reads', CHECKPOINTS, () => true);
    ({ http } = job);
    const { connection, prefix } = job;
    await job.projector.stop();
    // Complete, answered:
    await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(200);
    // With the read model whole, a mutation that records nothing answers the job.
    const st = (await http.get(`${BASE}/jobs/${JOB}`).expect(200)).body.status;
    const ok = await http
      .post('/graphql')
      .send({ query: `mutation { setJobStatus(jobId: "${JOB}", status: ${st}) { id status } }` });
    expect(ok.body).toEqual({ data: { setJobStatus: { id: JOB, status: st } } });
    // Now Redis loses the read model and a projector begins again (origin, no complete, nothing projected yet).
    const space = new ReadModelKeys(prefix).space(1);
    for (const k of await connection.keys(`${space.ns}:*`)) await connection.del(k);
    await connection.set(space.origin, new Date().toISOString());
    await new Promise((r) => setTimeout(r, 1100)); // past readiness()'s 1 s cache
    const res = await http.post('/graphql').send({ query: `{ job(id: "${JOB}") { id } }` });
    expect(res.body.errors?.[0]?.extensions?.readModel).toBe('rebuilding');
  }, 60_000);
  afterAll(() => job.close());

  it('REST GET of a compacted snapshot answers 503 (rebuilding), not 404 "does not exist"', async () => {
    const res = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`);
    expect({ status: res.status, readModel: res.body.readModel }).toEqual({
      status: 503,
      readModel: 'rebuilding',
    });
  });

  it('a mutation that records nothing (setJobStatus to its status) answers UNAVAILABLE, not an internal error', async () => {
    const job = (await http.get(`${BASE}/jobs/${JOB}`).expect(200)).body;
    const res = await http.post('/graphql').send({
      query: `mutation { setJobStatus(jobId: "${JOB}", status: ${job.status}) { id status } }`,
    });
    expect(res.body.errors?.[0]?.extensions).toEqual({ code: 'UNAVAILABLE', readModel: 'rebuilding' });
  });

  it('a no-op discard of a discarded snapshot answers UNAVAILABLE, not an internal null error', async () => {
    const res = await http.post('/graphql').send({
      query: `mutation { discardSnapshot(jobId: "${JOB}", snapshotId: ${CHECKPOINTS - 1}) { id status } }`,
    });
    expect(res.body.errors?.[0]?.extensions).toEqual({ code: 'UNAVAILABLE', readModel: 'rebuilding' });
  });
});
