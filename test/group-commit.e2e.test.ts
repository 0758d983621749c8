import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, startService, type RunningService } from './support/service';
import { e2eStore } from './support/stores';

const JOB = 'cafe0000cafe0000cafe0000cafe0000';
const TASKS = Array.from({ length: 500 }, (_, i) => `t${i}`);

async function appendsSoFar(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = /^snapcat_event_store_appends_total (\d+)$/m.exec(text);
  if (!match) throw new Error(`no append counter in /metrics:\n${text}`);
  return Number(match[1]);
}

describe(`group commit (service as a child process, ${process.env.SNAPCAT_E2E_STORE ?? 'sqlite'} store)`, () => {
  let dir: string;
  let service: RunningService;
  let store: Awaited<ReturnType<typeof e2eStore>>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-group-'));
    store = await e2eStore(dir);
    service = await startService({
      SNAPCAT_EVENT_STORE: store.connection,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
    });
  });
  afterAll(async () => {
    await service.stop('SIGKILL');
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('500 concurrent acks for one snapshot: all recorded, one completion, fewer appends than acks', async () => {
    const api = client(service.url);
    await api.put(`/jobs/${JOB}`, { tasks: TASKS });
    await api.post(`/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' });
    // Open the connections first, so that the acks leave together rather than one per new connection.
    await Promise.all(TASKS.map(() => fetch(`${service.url}/healthz`).then((r) => r.text())));
    const before = await appendsSoFar(service.url);

    const replies = await Promise.all(
      TASKS.map((taskId) => api.post(`/jobs/${JOB}/snapshots/1/acks`, { taskId, stateSize: 1 })),
    );
    expect(replies.filter((r) => r.status === 200 && r.body.result === 'SUCCESS')).toHaveLength(500);
    expect(replies.filter((r) => r.body.snapshotStatus === 'COMPLETED')).toHaveLength(1);

    const events = (await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events as { type: string }[];
    expect(events.filter((e) => e.type === 'TaskAcknowledged')).toHaveLength(500);
    expect(events.filter((e) => e.type === 'SnapshotCompleted')).toHaveLength(1);
    const appends = (await appendsSoFar(service.url)) - before;
    expect(appends).toBeLessThan(500);
    process.stdout.write(`group commit: 500 acks in ${appends} appends\n`);
  });
});
