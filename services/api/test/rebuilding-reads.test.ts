import IORedis from 'ioredis';
import request from 'supertest';
import { FINISHED_SNAPSHOTS_KEPT } from '@snapcat/domain';
import { ReadModel, ReadModelKeys, type Projector } from '@snapcat/read-model';
import { deleteKeys } from '../../../test/support/redis';
import { BASE, JOB, apiFixture, graphqlOver, startProjector } from './fixture';

// A job with snapshots compacted out of its state (decision 0035), projected; then Redis loses the read model
// and a projector begins again (its origin, no `complete` mark): what REST and GraphQL answer from it
// meanwhile is UNAVAILABLE, never "does not exist" nor an internal error (a review found both).
describe('reads while the read model is rebuilding', () => {
  const CHECKPOINTS = FINISHED_SNAPSHOTS_KEPT + 4;
  const prefix = `snapcat-test-rebuilding-reads-${process.pid}-${Date.now().toString(36)}`;
  const connection = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const readModel = new ReadModel(connection, prefix);
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let projector: Projector;

  beforeAll(async () => {
    fx = apiFixture({
      readModel,
      readModelAvailable: () => true,
      graphql: graphqlOver({ readModel, topic: `${prefix}:events` }),
    });
    http = request(fx.app);
    projector = await startProjector(fx.store, connection.duplicate(), prefix);
    await http
      .put(`${BASE}/jobs/${JOB}`)
      .send({ name: 'orders', tasks: ['a'], checkpointing: { numRetained: 1 } })
      .expect(201);
    for (let id = 1; id <= CHECKPOINTS; id += 1) {
      await http.post(`${BASE}/jobs/${JOB}/snapshots`).send({ kind: 'CHECKPOINT' }).expect(202);
      await http
        .post(`${BASE}/jobs/${JOB}/snapshots/${id}/acks`)
        .send({ taskId: 'a', stateSize: id })
        .expect(200);
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
    await projector.stop();
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
  afterAll(async () => {
    await fx.close();
    await deleteKeys(prefix);
    connection.disconnect();
  });

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
