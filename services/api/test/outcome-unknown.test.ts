import IORedis from 'ioredis';
import request from 'supertest';
import { EsdbEventStore } from '@snapcat/event-store';
import { ReadModel } from '@snapcat/read-model';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import { testPrefix } from '../../../test/support/service';
import { BASE, JOB, apiFixture, graphqlOver } from './fixture';

// Decision 0050: a mutation whose append EventStoreDB wrote but never confirmed says OUTCOME_UNKNOWN, also
// while Redis is unreachable, when every other error is UNAVAILABLE ("nothing recorded, retry"): a client
// told that would send it again (a trigger without its triggerId: a second savepoint). The protocol test
// server writes each attempt and answers it with a commit timeout.
describe('GraphQL: a mutation EventStoreDB may have recorded, with Redis unreachable', () => {
  const prefix = testPrefix('outcome-unknown');
  const connection = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const readModel = new ReadModel(connection, prefix);
  const server = new EsdbTestServer();
  let fx: ReturnType<typeof apiFixture>;
  let available = true;

  beforeAll(async () => {
    await server.start();
    fx = apiFixture({
      store: new EsdbEventStore(server.connectionString),
      readModel,
      readModelAvailable: () => available,
      graphql: graphqlOver({ readModel, topic: `${prefix}:events`, readModelAvailable: () => available }),
    });
    await request(fx.app)
      .put(`${BASE}/jobs/${JOB}`)
      .send({ tasks: ['a'] })
      .expect(201);
  });
  afterAll(async () => {
    await fx.close();
    await server.stop();
    connection.disconnect();
  });

  it('answers OUTCOME_UNKNOWN, not UNAVAILABLE, and the store holds the trigger', async () => {
    available = false;
    server.refuse('timeout-after-commit');
    const res = await request(fx.app)
      .post('/graphql')
      .send({ query: `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT) { id } }` });
    server.refuse(undefined);
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors[0].extensions.code).toBe('OUTCOME_UNKNOWN');
    expect(res.body.errors[0].message).toMatch(/it may be recorded/);
    const events = await fx.store.readAll({ maxCount: 100 });
    expect(events.filter((e) => e.type === 'SnapshotTriggered')).toHaveLength(1);
  });
});
