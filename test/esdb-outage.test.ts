import { until } from './support/wait';
import { client } from './support/service';
import { serviceOnEsdbTestServer } from './support/esdb-service';

const JOB = 'dead0000beef0000dead0000beef0000';
const TASKS = Array.from({ length: 120 }, (_, i) => `task-${i}`);

describe('EventStoreDB outage (protocol test server stopped and started under a running service)', () => {
  const fx = serviceOnEsdbTestServer('outage');

  it('answers 503 with Retry-After while the store is down, loses no 2xx, and recovers without a restart', async () => {
    const api = client(fx.service.url);
    expect((await api.put(`/jobs/${JOB}`, { tasks: TASKS })).status).toBe(201);
    expect((await api.post(`/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(202);

    const acked = new Set<string>();
    const ackSome = async (tasks: string[]) => {
      const results = await Promise.all(
        tasks.map(async (taskId) => {
          const res = await fetch(`${fx.service.url}/api/v1/jobs/${JOB}/snapshots/1/acks`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ taskId, stateSize: 1 }),
          });
          if (res.status === 200) acked.add(taskId);
          return {
            status: res.status,
            retryAfter: res.headers.get('retry-after'),
            type: res.headers.get('content-type'),
          };
        }),
      );
      return results;
    };

    await ackSome(TASKS.slice(0, 40));
    expect(acked.size).toBe(40);

    await fx.server.stop();
    const during = await ackSome(TASKS.slice(40, 80));
    expect(during.map((r) => r.status)).toEqual(during.map(() => 503));
    expect(during.every((r) => r.retryAfter !== null && r.type?.startsWith('application/problem+json'))).toBe(
      true,
    );
    const ready = await fetch(`${fx.service.url}/readyz`);
    expect(ready.status).toBe(503);
    expect((await api.post(`/jobs/${JOB}/snapshots`, { kind: 'SAVEPOINT' })).status).toBe(503);

    await fx.server.start();
    await until(
      async () => ((await fetch(`${fx.service.url}/readyz`)).status === 200 ? true : undefined),
      15_000,
    );
    const after = await ackSome(TASKS.slice(40));
    expect(after.every((r) => r.status === 200)).toBe(true);

    const events = (await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events as {
      type: string;
      data: { taskId?: string };
    }[];
    const recorded = events.filter((e) => e.type === 'TaskAcknowledged').map((e) => e.data.taskId!);
    expect(new Set(recorded).size).toBe(recorded.length); // nothing written twice
    expect([...acked].filter((t) => !recorded.includes(t))).toEqual([]); // no 2xx lost
    expect(recorded).toHaveLength(TASKS.length);
    expect(events.filter((e) => e.type === 'SnapshotCompleted')).toHaveLength(1);
    expect(fx.service.child.exitCode).toBeNull(); // the same process throughout
  });
});
