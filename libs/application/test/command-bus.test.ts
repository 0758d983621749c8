import { CommandRejected, savepointPath, type Command, type CommandOf } from '@snapcat/domain';
import {
  EsdbEventStore,
  InstrumentedEventStore,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
} from '@snapcat/event-store';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import { CommandBus, jobStream } from '../src';
import { embeddedStores } from './stores';

const JOB = '00112233445566778899aabbccddeeff';
const storage = { checkpointDir: '/data/chk', savepointDir: '/data/sp' };
const checkpointing = {
  numRetained: 1,
  timeoutMs: 600_000,
  maxConcurrent: 1,
  minPauseMs: 0,
  tolerableFailures: 0,
  retention: 'NEVER_RETAIN_AFTER_TERMINATION' as const,
  persistOnFailure: true,
};
const configure = (tasks: string[]): Command => ({
  type: 'ConfigureJob',
  jobId: JOB,
  name: 'j',
  tasks,
  checkpointing,
  storage,
});
const trigger = (triggerId: string): Command => ({
  type: 'TriggerSnapshot',
  jobId: JOB,
  kind: 'CHECKPOINT',
  triggerId,
  triggerType: 'MANUAL',
  formatType: 'CANONICAL',
});
const ack = (snapshotId: number, taskId: string): CommandOf<'AcknowledgeTask'> => ({
  type: 'AcknowledgeTask',
  jobId: JOB,
  snapshotId,
  taskId,
  stateSize: 1,
  stateHandles: [{ path: `/data/chk/${JOB}/chk-${snapshotId}/${taskId}`, sizeBytes: 1 }],
});

/** A real adapter whose appends take a little while, as over a network, so two writers can interleave. */
class SlowAppends extends InstrumentedEventStore {
  override async append(streamId: string, events: NewEvent[], expected: ExpectedRevision) {
    await new Promise((r) => setTimeout(r, 2));
    return super.append(streamId, events, expected);
  }
}

interface Adapter {
  name: string;
  open(): Promise<{ store: EventStore; close(): Promise<void> }>;
}
const adapters: Adapter[] = [
  ...embeddedStores.map((stores) => ({ name: stores.name, open: async () => stores.open() })),
  {
    name: 'esdb (protocol test server)',
    open: async () => {
      const server = new EsdbTestServer();
      await server.start();
      const store = new EsdbEventStore(server.connectionString);
      return {
        store,
        close: async () => {
          await store.close();
          await server.stop();
        },
      };
    },
  },
];

describe.each(adapters)('command bus on $name', (adapter) => {
  let opened: Awaited<ReturnType<Adapter['open']>>;
  beforeEach(async () => {
    opened = await adapter.open();
  });
  afterEach(() => opened.close());

  it('a cold start after 100k events reads about as many as the aggregate holds entries (aggregate snapshots)', async () => {
    const tasks = Array.from({ length: 1000 }, (_, i) => `t${i}`);
    const writer = new CommandBus(opened.store);
    await writer.execute(configure(tasks));
    for (let id = 1; id <= 100; id += 1) {
      await writer.execute(trigger(`c${id}`));
      // A batch of acknowledgements, as the batch route sends them: one entry of 1,000 decided in order.
      await writer.executeAll(tasks.map((t) => ack(id, t)));
    }
    await writer.flush();
    const length = (
      await opened.store.readStream(jobStream(JOB), { direction: 'backwards', maxCount: 1 })
    )[0]!.revision;
    expect(length).toBeGreaterThanOrEqual(100_000n);

    const counted = new InstrumentedEventStore(opened.store);
    const cold = new CommandBus(counted);
    const state = await cold.load(JOB);
    // Snapshots are spaced by the aggregate's size (here its 1,000 tasks and up to 1,000 acknowledgements of
    // the pending checkpoint), never by the stream's length.
    expect(counted.counters.eventsRead).toBeLessThanOrEqual(2_500);
    expect(cold.stats.aggregateSnapshotsLoaded).toBe(1);
    expect(state.snapshots.get(100)).toMatchObject({ status: 'COMPLETED' });
    expect(state.snapshots.get(99)).toMatchObject({ status: 'DISCARDING', subsumedBy: 100 });
    expect(state.nextSnapshotId).toBe(101);
    // and the cold writer decides correctly from there
    const { reply } = await cold.execute(trigger('after-cold-start'));
    expect(reply).toMatchObject({ accepted: true, snapshotId: 101 });
  }, 120_000);

  it('two processes writing one job: conflicts are retried and every command lands exactly once', async () => {
    const slow = new SlowAppends(opened.store);
    const a = new CommandBus(slow);
    const b = new CommandBus(slow);
    const tasks = Array.from({ length: 50 }, (_, i) => `t${i}`);
    await a.execute(configure(tasks));
    await a.execute({ ...trigger('x'), kind: 'SAVEPOINT' });
    await b.load(JOB);
    const results = await Promise.all(tasks.map((t, i) => (i % 2 ? a : b).execute(ack(1, t))));
    expect(results.filter((r) => r.reply.result === 'SUCCESS')).toHaveLength(50);
    const events = await opened.store.readStream(jobStream(JOB));
    expect(events.filter((e) => e.type === 'TaskAcknowledged')).toHaveLength(50);
    expect(events.filter((e) => e.type === 'SnapshotCompleted')).toHaveLength(1);
    expect(a.stats.conflicts + b.stats.conflicts).toBeGreaterThan(0);
  });

  it('a warm writer decides without reading, yet never answers from a stale state', async () => {
    const counted = new InstrumentedEventStore(opened.store);
    const a = new CommandBus(counted);
    const b = new CommandBus(opened.store); // another process
    await a.execute(configure(['a', 'b']));
    await a.execute(trigger('t1'));
    const reads = counted.counters.streamReads;
    await a.execute(ack(1, 'a'));
    expect(counted.counters.streamReads).toBe(reads); // decided on the cache, checked by the append

    // The other process completes snapshot 1 and triggers 2; `a` still caches the older state.
    await b.execute(ack(1, 'b'));
    await b.execute(trigger('t2'));
    // Nothing to append, so the reply must come from a read: not "unknown snapshot" from the stale cache.
    // (Snapshot 2 exists and is pending: CONFLICT, where the stale cache would say NOT_FOUND.)
    await expect(a.execute({ type: 'PersistSnapshot', jobId: JOB, snapshotId: 2 })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    // A write decided on the stale cache fails its append, catches up and is decided again.
    const { reply } = await a.execute(ack(2, 'a'));
    expect(reply).toMatchObject({ result: 'SUCCESS' });
    expect((await a.load(JOB)).snapshots.get(1)!.status).toBe('COMPLETED');
  });

  it('a rejected command in a batch fails alone; the others are appended', async () => {
    const bus = new CommandBus(opened.store);
    await bus.execute(configure(['a', 'b']));
    await bus.execute(trigger('t1'));
    const results = await Promise.allSettled([
      bus.execute(ack(1, 'a')),
      bus.execute({ type: 'DeclineTask', jobId: JOB, snapshotId: 9, taskId: 'a' }),
      bus.execute(ack(1, 'b')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(CommandRejected);
    expect((await bus.load(JOB)).snapshots.get(1)!.status).toBe('COMPLETED');
  });

  it('executeAll decides commands in order as one entry (past maxBatch too), all or nothing: a rejection fails the call and writes none of it', async () => {
    const counted = new InstrumentedEventStore(opened.store);
    const bus = new CommandBus(counted, { maxBatch: 10 });
    const tasks = Array.from({ length: 25 }, (_, i) => `t${i}`);
    await bus.execute(configure(tasks));
    await bus.execute(trigger('t1'));
    const appends = counted.counters.appends;
    const results = await bus.executeAll(tasks.map((t) => ack(1, t)));
    expect(results.map((r) => r.reply.result)).toEqual(tasks.map(() => 'SUCCESS'));
    expect(results[24]!.reply.snapshotStatus).toBe('COMPLETED'); // the last acknowledgement completes it
    expect(counted.counters.appends - appends).toBe(1); // one request, one append, whatever maxBatch
    const acked = (await opened.store.readStream(jobStream(JOB)))
      .filter((e) => e.type === 'TaskAcknowledged')
      .map((e) => (e.data as { taskId: string }).taskId);
    expect(acked).toEqual(tasks);

    // A rejection rejects the call; the commands around it are not written either.
    await bus.execute(trigger('t2'));
    const written = (await opened.store.readStream(jobStream(JOB))).length;
    await expect(
      bus.executeAll([
        ack(2, 't0'),
        { type: 'DeclineTask', jobId: JOB, snapshotId: 9, taskId: 't1' },
        ack(2, 't2'),
      ]),
    ).rejects.toBeInstanceOf(CommandRejected);
    expect((await bus.load(JOB)).snapshots.get(2)!.acknowledged).toBe(0);
    expect((await opened.store.readStream(jobStream(JOB))).length).toBe(written);
    // Beside it in the same group commit, another caller's command is decided and written as ever.
    const [alone, batch] = await Promise.allSettled([
      bus.execute(ack(2, 't3')),
      bus.executeAll([ack(2, 't4'), { type: 'DeclineTask', jobId: JOB, snapshotId: 9, taskId: 't5' }]),
    ]);
    expect(alone.status).toBe('fulfilled');
    expect(batch.status).toBe('rejected');
    expect((await bus.load(JOB)).snapshots.get(2)!.acknowledged).toBe(1);
    expect(await bus.executeAll([])).toEqual([]);
  });

  it('shares a cached state only at its exact revision', async () => {
    const bus = new CommandBus(opened.store);
    expect(bus.cachedState(JOB, -1n)).toBeUndefined(); // never loaded
    await bus.execute(configure(['a']));
    const triggered = await bus.execute(trigger('t1'));
    const revision = (
      await opened.store.readStream(jobStream(JOB), { direction: 'backwards', maxCount: 1 })
    )[0]!.revision;
    const state = bus.cachedState(JOB, revision);
    expect(state?.snapshots.get(1)?.status).toBe('PENDING');
    expect(state?.version).toBe(1 + triggered.events.length);
    expect(bus.cachedState(JOB, revision - 1n)).toBeUndefined();
    expect(bus.cachedState(JOB, revision + 1n)).toBeUndefined();
  });
});

describe('savepoint directory names', () => {
  it('take characters the command bus draws at random: a client that chose the job id and triggerId cannot predict them', async () => {
    const paths: string[] = [];
    for (let run = 0; run < 2; run += 1) {
      const stores = embeddedStores[0]!;
      const opened = await stores.open();
      try {
        const bus = new CommandBus(opened.store);
        await bus.execute(configure(['a']));
        const { events } = await bus.execute({ ...trigger('same-trigger'), kind: 'SAVEPOINT' });
        const triggered = events.find((e) => e.type === 'SnapshotTriggered');
        paths.push(triggered && 'externalPath' in triggered ? triggered.externalPath : '');
      } finally {
        await opened.close();
      }
    }
    // The same job id, triggerId and snapshot id: the name snapcat would derive from them alone is neither.
    const predictable = savepointPath(storage.savepointDir, JOB, '1/same-trigger');
    expect(paths[0]).toMatch(/^\/data\/sp\/savepoint-001122-[0-9a-f]{12}$/);
    expect(paths[0]).not.toBe(paths[1]);
    expect(paths).not.toContain(predictable);
  });
});
