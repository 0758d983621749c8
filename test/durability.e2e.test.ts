import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, startService, type RunningService } from './support/service';
import { e2eStore } from './support/stores';

const JOB = '0badc0de0badc0de0badc0de0badc0de';
const TASKS = Array.from({ length: 400 }, (_, i) => `task-${i}`);

describe(`durability (${process.env.SNAPCAT_E2E_STORE ?? 'sqlite'} store): a 2xx means the events are stored`, () => {
  let dir: string;
  let service: RunningService | undefined;
  let store: Awaited<ReturnType<typeof e2eStore>>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-durable-'));
    store = await e2eStore(dir);
  });
  afterAll(async () => {
    await service?.stop('SIGKILL');
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async () => {
    service = await startService({
      SNAPCAT_EVENT_STORE: store.connection,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
    });
    return service;
  };

  it('every ack that got a 2xx before SIGKILL is in the job events after a restart', async () => {
    let running = await start();
    let api = client(running.url);
    expect((await api.put(`/jobs/${JOB}`, { tasks: TASKS })).status).toBe(201);
    expect((await api.post(`/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(202);

    const acknowledged = new Set<string>();
    let failed = 0;
    const sender = async (offset: number) => {
      for (let i = offset; i < TASKS.length; i += 8) {
        try {
          const res = await api.post(`/jobs/${JOB}/snapshots/1/acks`, { taskId: TASKS[i], stateSize: 1 });
          if (res.status === 200) acknowledged.add(TASKS[i]!);
        } catch {
          failed += 1; // the connection died with the process: no 2xx, no promise
        }
      }
    };
    const senders = Array.from({ length: 8 }, (_, k) => sender(k));
    // Kill without warning once some acks are in, while others are in flight.
    while (acknowledged.size < 100) await new Promise((r) => setTimeout(r, 2));
    expect(await running.stop('SIGKILL')).toBeNull();
    await Promise.all(senders);
    expect(failed).toBeGreaterThan(0);
    expect(acknowledged.size).toBeLessThan(TASKS.length);

    running = await start();
    api = client(running.url);
    if (!store.durable) {
      expect((await api.get(`/jobs/${JOB}`)).status).toBe(404); // memory: nothing was promised to survive
      return;
    }
    const events = (await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events as {
      type: string;
      data: { taskId?: string };
    }[];
    const recorded = new Set(events.filter((e) => e.type === 'TaskAcknowledged').map((e) => e.data.taskId));
    const lost = [...acknowledged].filter((task) => !recorded.has(task));
    expect(lost).toEqual([]);
    const snapshot = (await api.get(`/jobs/${JOB}/snapshots/1`)).body;
    expect(snapshot.acknowledgedTasks).toBe(recorded.size);
  });
});
