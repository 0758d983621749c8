import IORedis from 'ioredis';
import { JOB_STREAM_PREFIX } from '@snapcat/application';
import { EsdbEventStore } from '@snapcat/event-store';
import { ReadModel, rebuildReadModel, verifyReadModel } from '../src';
import { storedJobViews } from '../src/writes';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import { seedBusyLog } from '../../../test/esdb/busy-log';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { job, writeJob } from './jobs';
import type { JobState } from '@snapcat/domain';

// `snapcat replay` (the rebuild) and `audit verify` on the EventStoreDB adapter, against the protocol test
// server holding what a busy cluster's $all holds: they read the job events alone off the server.
describe('read-model rebuild on EventStoreDB: a busy log', () => {
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const prefix = testPrefix('rm-rebuild-esdb');
  let server: EsdbTestServer;
  let store: EsdbEventStore;
  beforeEach(async () => {
    server = new EsdbTestServer();
    await server.start();
    store = new EsdbEventStore(server.connectionString);
  });
  afterEach(async () => {
    await store.close();
    await server.stop();
    await deleteKeys(prefix);
  });
  afterAll(() => redis.disconnect());

  it('folds 20 jobs among 20,000 other events and 1 MB snapshots, and the server sends only the job events', async () => {
    const states: JobState[] = [];
    await seedBusyLog(server.data, {
      otherEvents: 20_000,
      snapshots: 4,
      snapshotBytes: 900_000,
      every: 1000,
      between: async (n) => void states.push(await writeJob(store, job(n + 1), 2)),
    });
    const jobEvents = server.data.log.filter((e) => e.streamName.startsWith(JOB_STREAM_PREFIX)).length;
    expect(server.data.log.length).toBeGreaterThan(60_000);

    const before = { ...server.sent };
    const result = await rebuildReadModel(store, redis, prefix);
    expect({ jobs: result.jobs, events: result.events }).toEqual({ jobs: 20, events: jobEvents });
    expect(server.sent.events - before.events).toBe(jobEvents);
    expect(server.sent.bytes - before.bytes).toBeLessThan(jobEvents * 1000);
    const readModel = new ReadModel(redis, prefix);
    for (const state of states) {
      expect(await readModel.job(state.jobId)).toEqual(
        JSON.parse(JSON.stringify(storedJobViews(state).summary)),
      );
    }

    const audit = { ...server.sent };
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    expect(server.sent.events - audit.events).toBe(jobEvents);
  });
});
