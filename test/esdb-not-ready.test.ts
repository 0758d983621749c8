import { client } from './support/service';
import { serviceOnEsdbTestServer } from './support/esdb-service';

const JOB = 'feed0000beef0000feed0000beef0000';
const TASKS = Array.from({ length: 150 }, (_, i) => `task-${i}`);

// A real EventStoreDB answers "not ready" while it starts, rebuilds its index or elects a leader, and
// refuses appends over MaxAppendSize (1 MiB by default). The service runs on the ESDB adapter against the
// protocol test server, which appends over BatchAppend as the client does against a real fx.server.
describe('EventStoreDB not ready, and over MaxAppendSize, under a running service', () => {
  const fx = serviceOnEsdbTestServer('not-ready');

  it('answers 503 with Retry-After, never 500, while the store is not ready, and loses no 2xx ack', async () => {
    const api = client(fx.service.url);
    expect((await api.put(`/jobs/${JOB}`, { tasks: TASKS })).status).toBe(201);
    expect((await api.post(`/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(202);

    const acked = new Set<string>();
    const answers: { status: number; retryAfter: string | null; type: string | null }[] = [];
    const ack = async (taskId: string) => {
      const res = await fetch(`${fx.service.url}/api/v1/jobs/${JOB}/snapshots/1/acks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ taskId, stateSize: 1 }),
      });
      await res.arrayBuffer();
      if (res.status >= 200 && res.status < 300) acked.add(taskId);
      answers.push({
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        type: res.headers.get('content-type'),
      });
      return res.status;
    };

    // Acks keep coming, 8 at a time; the store is not ready for a moment in the middle of the load.
    const queue = [...TASKS];
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let taskId = queue.shift(); taskId; taskId = queue.shift()) await ack(taskId);
      }),
    );
    while (queue.length > TASKS.length - 40) await new Promise((r) => setTimeout(r, 5));
    fx.server.setNotReady(true);
    // Tasks not acked yet, answered while the store is certainly not ready.
    const during = await Promise.all(queue.splice(-4).map(ack));
    await new Promise((r) => setTimeout(r, 200));
    fx.server.setNotReady(false);
    await load;

    expect(during).toEqual([503, 503, 503, 503]);
    expect(answers.filter((a) => a.status >= 500 && a.status !== 503)).toEqual([]);
    const refused = answers.filter((a) => a.status === 503);
    expect(refused.length).toBeGreaterThanOrEqual(4);
    expect(
      refused.every((a) => a.retryAfter !== null && a.type?.startsWith('application/problem+json')),
    ).toBe(true);
    expect(answers.every((a) => a.status === 503 || (a.status >= 200 && a.status < 300))).toBe(true);

    // Every ack that got a 2xx is in the log, once; the refused ones go through on retry.
    for (const taskId of TASKS.filter((t) => !acked.has(t))) expect(await ack(taskId)).toBeLessThan(300);
    const events = (await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events as {
      type: string;
      data: { taskId?: string };
    }[];
    const recorded = events.filter((e) => e.type === 'TaskAcknowledged').map((e) => e.data.taskId!);
    expect(new Set(recorded).size).toBe(recorded.length);
    expect([...acked].filter((t) => !recorded.includes(t))).toEqual([]);
    expect(recorded).toHaveLength(TASKS.length);
    expect(fx.service.child.exitCode).toBeNull();
    expect(fx.server.calls).toMatchObject({ append: 0, batchAppend: expect.any(Number) });
    expect(fx.server.calls.batchAppend).toBeGreaterThan(0);
  });

  it('an append EventStoreDB wrote but never confirmed is 503 outcome-unknown (GraphQL OUTCOME_UNKNOWN), and the command sent again answers what was recorded, once', async () => {
    const api = client(fx.service.url);
    const job = 'feed0000beef0000feed0000beef0002';
    expect((await api.put(`/jobs/${job}`, { tasks: ['a', 'b'] })).status).toBe(201);
    expect((await api.post(`/jobs/${job}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(202);
    const graphql = async (query: string) => {
      const res = await fetch(`${fx.service.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      return (await res.json()) as {
        data?: unknown;
        errors?: { message: string; extensions: { code: string } }[];
      };
    };
    const trigger = `mutation { triggerSnapshot(jobId: "${job}", kind: SAVEPOINT, triggerId: "sp-1") { id } }`;

    fx.server.refuse('timeout-after-commit'); // every attempt written, none confirmed
    try {
      const ack = await api.post(`/jobs/${job}/snapshots/1/acks`, { taskId: 'a' });
      expect(ack.status).toBe(503);
      expect(ack.body).toMatchObject({ type: 'urn:snapcat:problem:outcome-unknown', status: 503 });
      expect(ack.body.detail).toMatch(/did not confirm the append \(3 attempts.*it may be recorded/);
      const triggered = await graphql(trigger);
      expect(triggered.errors?.[0]?.extensions.code).toBe('OUTCOME_UNKNOWN');
    } finally {
      fx.server.refuse(undefined);
    }

    // Sent again: decided on what the store holds, each recorded once.
    const again = await api.post(`/jobs/${job}/snapshots/1/acks`, { taskId: 'a' });
    expect(again.status).toBe(200);
    expect(await graphql(trigger)).toEqual({ data: { triggerSnapshot: { id: 2 } } });
    const events = (await api.get(`/jobs/${job}/events?limit=100`)).body.events as {
      type: string;
      data: { taskId?: string };
    }[];
    expect(events.filter((e) => e.type === 'TaskAcknowledged').map((e) => e.data.taskId)).toEqual(['a']);
    expect(events.filter((e) => e.type === 'SnapshotTriggered')).toHaveLength(2);
    expect(fx.service.child.exitCode).toBeNull();
  });

  it('a registration whose event exceeds MaxAppendSize (1 MiB) is a 413 naming body.tasks, refused before the store, and writes nothing', async () => {
    const api = client(fx.service.url);
    const job = 'feed0000beef0000feed0000beef0001';
    const tasks = Array.from({ length: 20_000 }, (_, i) => `${'t'.repeat(50)}-${String(i).padStart(5, '0')}`);
    const before = fx.server.data.log.length;
    const res = await api.put(`/jobs/${job}`, { tasks });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({
      type: 'urn:snapcat:problem:too-large',
      status: 413,
      errors: [{ field: 'body.tasks', rule: 'max-append-size' }],
    });
    expect(res.body.detail).toContain('1048576 bytes');
    expect(fx.server.data.log.length).toBe(before);
    expect((await api.get(`/jobs/${job}`)).status).toBe(404);
    expect((await api.put(`/jobs/${job}`, { tasks: tasks.slice(0, 1000) })).status).toBe(201);
  });
});
