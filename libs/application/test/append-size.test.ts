import { AppendTooLargeError, EsdbEventStore, InstrumentedEventStore } from '@snapcat/event-store';
import type { Command } from '@snapcat/domain';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import { CommandBus, jobStream } from '../src';

// Issue 25: EventStoreDB refuses an append over MaxAppendSize. A group commit gathers whatever requests
// queued up, so together they can be over it while each one alone is small: the bus splits such a group
// (each request's events in one append, but for a request of many commands, split by command); one
// command over the limit on its own fails alone, and a request of many holding one is refused whole.

const JOB = '5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e';
const LIMIT = 64 * 1024;
const TASKS = Array.from({ length: 200 }, (_, i) => `task-${i}`);

const handles = (taskId: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    path: `/data/chk/${JOB}/chk-1/${taskId}/shared-file-with-a-long-name-${i.toString().padStart(6, '0')}`,
    sizeBytes: 1000 + i,
    shared: true,
  }));
const ack = (taskId: string, handleCount: number): Command => ({
  type: 'AcknowledgeTask',
  jobId: JOB,
  snapshotId: 1,
  taskId,
  stateSize: 1,
  stateHandles: handles(taskId, handleCount),
});

describe('group commits and the store’s MaxAppendSize (EventStoreDB protocol test server)', () => {
  let server: EsdbTestServer;
  let store: InstrumentedEventStore;
  let bus: CommandBus;
  beforeAll(async () => {
    server = new EsdbTestServer(undefined, { maxAppendSize: LIMIT });
    await server.start();
    store = new InstrumentedEventStore(new EsdbEventStore(server.connectionString, LIMIT));
    bus = new CommandBus(store);
    await bus.execute({
      type: 'ConfigureJob',
      jobId: JOB,
      name: 'j',
      tasks: TASKS,
      checkpointing: {
        numRetained: 1,
        timeoutMs: 600_000,
        maxConcurrent: 1,
        minPauseMs: 0,
        tolerableFailures: 0,
        retention: 'NEVER_RETAIN_AFTER_TERMINATION',
        persistOnFailure: true,
      },
      storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
    });
    await bus.execute({
      type: 'TriggerSnapshot',
      jobId: JOB,
      kind: 'CHECKPOINT',
      triggerId: 't1',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    });
  });
  afterAll(async () => {
    await store.close();
    await server.stop();
  });

  it('many small requests queued together, over the limit as a group, all succeed in several appends', async () => {
    const appendsBefore = store.counters.appends;
    // 150 requests of ~3 KB each arrive in one turn of the event loop: one group of ~450 KB.
    const results = await Promise.allSettled(
      TASKS.slice(0, 150).map((taskId) => bus.execute(ack(taskId, 20))),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(bus.stats.appendsSplit).toBeGreaterThan(0);
    expect(store.counters.appends - appendsBefore).toBeGreaterThan(450_000 / LIMIT);
    const acked = (await store.readStream(jobStream(JOB), { maxCount: 10_000 })).filter(
      (e) => e.type === 'TaskAcknowledged',
    );
    expect(acked).toHaveLength(150);
  });

  it('one request over the limit alone fails with AppendTooLargeError, and the others queued with it succeed', async () => {
    const [big, ...small] = await Promise.allSettled([
      bus.execute(ack('task-150', 600)), // ~90 KB on its own
      ...TASKS.slice(151, 160).map((taskId) => bus.execute(ack(taskId, 20))),
    ]);
    expect(big).toMatchObject({ status: 'rejected', reason: expect.any(AppendTooLargeError) });
    expect(small.filter((r) => r.status === 'rejected')).toEqual([]);
    const tasks = (await store.readStream(jobStream(JOB), { maxCount: 10_000 }))
      .filter((e) => e.type === 'TaskAcknowledged')
      .map((e) => (e.data as { taskId: string }).taskId);
    expect(tasks).not.toContain('task-150');
    expect(tasks).toEqual(expect.arrayContaining(TASKS.slice(151, 160)));
  });

  it('one request of many acknowledgements, over the limit together, is written in several appends and answered whole', async () => {
    const splitBefore = bus.stats.appendsSplit;
    const appendsBefore = store.counters.appends;
    // 30 acknowledgements of ~3 KB in one request (a batch-ack body): ~90 KB, over the 64 KB limit.
    const batch = TASKS.slice(160, 190);
    const executed = await bus.executeAll(batch.map((taskId) => ack(taskId, 20)));
    expect(executed.map((e) => e.reply)).toEqual(
      batch.map(() => expect.objectContaining({ result: 'SUCCESS' })),
    );
    expect(bus.stats.appendsSplit).toBeGreaterThan(splitBefore);
    expect(store.counters.appends - appendsBefore).toBeGreaterThanOrEqual(2);
    const acked = (await store.readStream(jobStream(JOB), { maxCount: 10_000 }))
      .filter((e) => e.type === 'TaskAcknowledged')
      .map((e) => (e.data as { taskId: string }).taskId);
    expect(acked).toEqual(expect.arrayContaining(batch));
  });

  it('a request of many with one acknowledgement over the limit on its own is refused before any of it is written', async () => {
    const appendsBefore = store.counters.appends;
    const small = TASKS.slice(190, 199).map((taskId) => ack(taskId, 20));
    const commands = [...small.slice(0, 5), ack('task-150', 600), ...small.slice(5)];
    await expect(bus.executeAll(commands)).rejects.toMatchObject({
      name: 'AppendTooLargeError',
      command: 5,
      field: 'stateHandles',
      maxBytes: LIMIT,
    });
    expect(store.counters.appends).toBe(appendsBefore);
    const acked = (await store.readStream(jobStream(JOB), { maxCount: 10_000 }))
      .filter((e) => e.type === 'TaskAcknowledged')
      .map((e) => (e.data as { taskId: string }).taskId);
    expect(acked.filter((taskId) => TASKS.slice(190, 199).includes(taskId) || taskId === 'task-150')).toEqual(
      [],
    );
  });

  it('a request of many over the limit with a refused command: named by its place in the request, none of it written', async () => {
    const tasks = TASKS.slice(190, 200);
    // Ten acknowledgements of ~9 KB: over the limit together (written in two parts when accepted).
    const refusedAt = (at: number) =>
      tasks.map((taskId, i) => ({
        ...ack(taskId, 60),
        ...(i === at ? { stateSize: Number.MAX_SAFE_INTEGER } : {}),
      }));
    const ackedOf = async () =>
      (await store.readStream(jobStream(JOB), { maxCount: 10_000 }))
        .filter((e) => e.type === 'TaskAcknowledged')
        .map((e) => (e.data as { taskId: string }).taskId)
        .filter((taskId) => tasks.includes(taskId));
    // The request is decided whole before it is written in parts: a refusal anywhere writes none of it.
    for (const at of [2, 7]) {
      await expect(bus.executeAll(refusedAt(at))).rejects.toMatchObject({
        rule: 'maximum',
        commandIndex: at,
      });
      expect(await ackedOf()).toEqual([]);
    }
  });
});
