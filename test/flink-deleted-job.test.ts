import { join } from 'node:path';
import { EventStoreDBClient } from '@eventstore/db-client';
import { FlinkTestServer } from './flink/server';
import { until } from './support/wait';
import { client } from './support/service';
import { serviceOnEsdbTestServer } from './support/esdb-service';

const GONE = 'de1e7ed0f1170000de1e7ed0f1170000';
const KEPT = 'de1e7ed0f1170000de1e7ed0f1170001';

// A managed job's stream hard-deleted under a running connector: its mirror stops, and its cluster's status
// poll (one request for every job of the cluster) goes on for the others instead of failing on it.
describe('a managed job whose stream is hard-deleted', () => {
  const flink = new FlinkTestServer();
  const fx = serviceOnEsdbTestServer('flink-deleted', {
    env: {
      SNAPCAT_FLINK_POLL: 'PT0.2S',
      SNAPCAT_SECRET_KEY: 'a'.repeat(64),
    },
  });
  beforeAll(() => flink.start());
  afterAll(() => flink.stop());

  it('stops being mirrored, and the status poll still follows the cluster’s other jobs', async () => {
    const api = client(fx.service.url);
    expect([200, 201]).toContain((await api.put('/clusters/local', { restUrl: flink.url })).status);
    const root = join(fx.dir, 'snapshots');
    for (const jobId of [GONE, KEPT]) {
      flink.addJob(jobId, {
        checkpointDir: join(root, 'checkpoints'),
        savepointDir: join(root, 'savepoints'),
        externalizedRetention: 'RETAIN_ON_CANCELLATION',
        checkpointIntervalMs: 300,
      });
      const registered = await api.put(`/jobs/${jobId}`, {
        source: { type: 'flink', cluster: 'local' },
        storage: { checkpointDir: join(root, 'checkpoints'), savepointDir: join(root, 'savepoints') },
      });
      expect(registered.status).toBe(201);
    }
    await until(
      async () =>
        ((await api.get(`/jobs/${GONE}`)).body.snapshots as unknown[]).length > 0 ? true : undefined,
      20_000,
      'a checkpoint mirrored',
    );

    const esdb = EventStoreDBClient.connectionString(fx.server.connectionString);
    await esdb.tombstoneStream(`snapcat-job-${GONE}`);
    await esdb.dispose();
    expect((await api.get(`/jobs/${GONE}`)).status).toBe(410);

    // The deleted job is still running in Flink, so it is still in /jobs/overview: the status poll meets it.
    flink.setJobState(KEPT, 'CANCELED');
    await until(
      async () => ((await api.get(`/jobs/${KEPT}`)).body.status === 'CANCELED' ? true : undefined),
      10_000,
      'the other job’s status followed',
    );
    // The mirror of the deleted job stopped: at most one poll already under way when its scheduler went.
    const since = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    expect(flink.requestsFor(GONE, since).length).toBeLessThanOrEqual(1);
    expect(fx.service.logs.join('')).not.toMatch(/flink job failed.*was deleted/);
    expect(flink.violations).toEqual([]);
  });
});
