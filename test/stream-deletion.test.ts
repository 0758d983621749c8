import { EventStoreDBClient } from '@eventstore/db-client';
import { until } from './support/wait';
import { client } from './support/service';
import { serviceOnEsdbTestServer } from './support/esdb-service';

const GONE = 'de1e7ed0beef0000de1e7ed0beef0000';
const KEPT = 'de1e7ed0beef0000de1e7ed0beef0001';
const TASKS = ['a', 'b', 'c'];

// An operator hard-deletes a job's stream with the real client (a tombstone) under a running service on
// the EventStoreDB adapter: the job reads as gone, and the projector, process manager and webhook dispatcher
// (all in this one service) go on.
describe('a job stream hard-deleted from EventStoreDB', () => {
  const fx = serviceOnEsdbTestServer('stream-deletion', {
    env: {
      SNAPCAT_AGGREGATE_SNAPSHOT_EVERY: '2',
      SNAPCAT_SECRET_KEY: 'test-secret-key-of-at-least-32-characters', // runs the webhook dispatcher
    },
  });
  let esdb: EventStoreDBClient;
  beforeAll(() => {
    esdb = EventStoreDBClient.connectionString(fx.server.connectionString);
  });
  afterAll(() => esdb.dispose());

  const gql = async (jobId: string) => {
    const res = await fetch(`${fx.service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ job(id: "${jobId}") { id status deleted deletedAt } }` }),
    });
    return ((await res.json()) as { data: { job: Record<string, unknown> | null } }).data.job;
  };

  const register = async (jobId: string) => {
    const api = client(fx.service.url);
    expect((await api.put(`/jobs/${jobId}`, { tasks: TASKS })).status).toBe(201);
    expect((await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(202);
    for (const taskId of TASKS.slice(0, 2)) {
      expect((await api.post(`/jobs/${jobId}/snapshots/1/acks`, { taskId, stateSize: 1 })).status).toBe(200);
    }
  };

  it('caps the aggregate snapshots; GraphQL shows the deleted job as deleted; its commands are 410; the rest goes on', async () => {
    await register(GONE);
    // The aggregate-snapshot side stream keeps two snapshots of the most parts: $maxCount in its metadata.
    const meta = await until(async () => {
      const { metadata } = await esdb.getStreamMetadata(`snapcat-aggregate-${GONE}`);
      return metadata?.maxCount === undefined ? undefined : metadata;
    }, 10_000);
    expect(meta.maxCount).toBe(32);
    // So does the dispatcher's checkpoint stream, which it caps when it becomes active.
    const dispatcher = await until(async () => {
      const { metadata } = await esdb.getStreamMetadata('snapcat-webhook-dispatcher');
      return metadata?.maxCount;
    }, 10_000);
    expect(dispatcher).toBe(10);
    await until(async () => ((await gql(GONE))?.status === 'RUNNING' ? true : undefined), 10_000);
    expect(await gql(GONE)).toMatchObject({ deleted: false, deletedAt: null });

    await esdb.tombstoneStream(`snapcat-job-${GONE}`);

    const shown = await until(async () => {
      const job = await gql(GONE);
      return job?.deleted ? job : undefined;
    }, 10_000);
    expect(shown).toMatchObject({
      id: GONE,
      status: 'RUNNING',
      deleted: true,
      deletedAt: expect.any(String),
    });

    const api = client(fx.service.url);
    for (const res of [
      await api.get(`/jobs/${GONE}`),
      await api.post(`/jobs/${GONE}/snapshots/1/acks`, { taskId: 'c', stateSize: 1 }),
      await api.put(`/jobs/${GONE}`, { tasks: TASKS }),
    ]) {
      expect(res.status).toBe(410);
      expect(res.body).toMatchObject({
        type: 'urn:snapcat:problem:gone',
        status: 410,
        errors: [{ field: 'path.jobId', rule: 'deleted' }],
      });
      expect(res.body.detail).toContain(GONE);
    }

    // Its history, read from the log, is gone too: said as such (GONE), not masked as an unexpected error.
    const history = await fetch(`${fx.service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ history(jobId: "${GONE}", first: 5) { edges { node { type } } } }` }),
    });
    const { errors } = (await history.json()) as { errors: { message: string; extensions: object }[] };
    expect(errors).toEqual([
      expect.objectContaining({
        message: expect.stringContaining(GONE),
        extensions: expect.objectContaining({ code: 'GONE', field: 'jobId', rule: 'deleted' }),
      }),
    ]);

    // The consumers kept running past the tombstone: another job is projected, and none of them failed.
    await register(KEPT);
    await until(async () => ((await gql(KEPT))?.status === 'RUNNING' ? true : undefined), 10_000);
    expect(await gql(KEPT)).toMatchObject({ deleted: false });
    expect(fx.service.child.exitCode).toBeNull();
    const failures = fx.service.logs.filter((l) =>
      /subscription failed|projector stopped|request failed|aggregate snapshot failed/.test(l),
    );
    expect(failures).toEqual([]);
  });
});
