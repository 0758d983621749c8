import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { newJobId } from './support/ids';
import { startRedisServer } from './support/redis';
import { client, startService } from './support/service';
import { eventually, sleep } from './support/wait';

describe('read model: Redis wiped under a running projector (test-owned redis-server)', () => {
  test('FLUSHALL: the projector rebuilds from the log, and the jobs from before the wipe are listed again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-rm-wipe-'));
    const redis = await startRedisServer();
    const service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'root'),
      SNAPCAT_REDIS_URL: redis.url,
    });
    try {
      const api = client(service.url);
      const before = newJobId();
      await api.put(`/jobs/${before}`, { tasks: ['a'] });
      const t = await api.post(`/jobs/${before}/snapshots`, { kind: 'CHECKPOINT' });
      await api.post(`/jobs/${before}/snapshots/${t.body.snapshotId}/acks`, { taskId: 'a' });
      const listed = async () =>
        ((await api.get('/jobs')).body.jobs as { jobId: string }[] | undefined)?.map((j) => j.jobId) ?? [];
      await eventually(async () => (await listed()).includes(before), 10_000);
      const wipe = new IORedis(redis.url);
      await wipe.flushall();
      wipe.disconnect();
      await sleep(1500);
      const after = newJobId();
      await api.put(`/jobs/${after}`, { tasks: ['a'] });
      await eventually(async () => (await listed()).length === 2, 15_000);
      expect((await listed()).sort()).toEqual([before, after].sort());
      const snapshot = await api.get(`/jobs/${before}/snapshots/${t.body.snapshotId}`);
      expect(snapshot.body.status).toBe('COMPLETED');
    } finally {
      await service.stop('SIGKILL');
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
