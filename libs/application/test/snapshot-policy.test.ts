import { decide, fold, initialState, type Command, type JobState } from '@snapcat/domain';
import {
  AggregateSnapshotPolicy,
  aggregateStream,
  aggregateWeight,
  noSnapshotYet,
  snapshotInterval,
  type SnapshotMarks,
} from '../src';
import { embeddedStores } from './stores';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const job = (n: number) => `${n.toString(16).padStart(4, '0')}${'ab'.repeat(14)}`;
const registered = (jobId: string, tasks: number): JobState => {
  const configure: Command = {
    type: 'ConfigureJob',
    jobId,
    name: 'j',
    tasks: Array.from({ length: tasks }, (_, i) => `t${i}`),
    checkpointing: {
      numRetained: 1,
      timeoutMs: 600_000,
      maxConcurrent: 1,
      minPauseMs: 0,
      tolerableFailures: 0,
      retention: 'NEVER_RETAIN_AFTER_TERMINATION',
      persistOnFailure: true,
    },
    storage: { checkpointDir: '/c', savepointDir: '/s' },
  };
  return fold(initialState(jobId), decide(initialState(jobId), configure, T0).events);
};

describe('snapshot interval', () => {
  it('is the configured one at least, else the last snapshot’s weight, else the task list before a first one', () => {
    const state = registered(job(1), 300);
    const marks: SnapshotMarks = noSnapshotYet();
    expect(snapshotInterval(250, marks, registered(job(1), 10))).toBe(250);
    expect(snapshotInterval(250, marks, state)).toBe(300);
    marks.weight = 1_000;
    expect(snapshotInterval(250, marks, state)).toBe(1_000);
    expect(aggregateWeight(state)).toBe(300); // its task list, no snapshot yet
  });
});

describe.each(embeddedStores)('aggregate snapshot policy on $name', (adapter) => {
  let opened: ReturnType<(typeof adapter)['open']>;
  beforeEach(() => {
    opened = adapter.open();
  });
  afterEach(() => opened.close());

  it('writes a snapshot once an interval has passed, not again before the next, and a cold start loads it', async () => {
    const errors: unknown[] = [];
    const policy = new AggregateSnapshotPolicy(opened.store, {
      every: 10,
      onBackgroundError: (e) => errors.push(e),
    });
    const jobId = job(2);
    const aggregate = { id: jobId, state: registered(jobId, 2), revision: 8n, snapshot: noSnapshotYet() };
    policy.committed(aggregate); // 9 events since none: not due
    await policy.flush();
    expect(await opened.store.readStream(aggregateStream(jobId))).toHaveLength(0);
    aggregate.revision = 9n; // 10 events
    policy.committed(aggregate);
    policy.committed(aggregate); // in flight: not twice
    await policy.flush();
    expect(await opened.store.readStream(aggregateStream(jobId))).toHaveLength(1);
    expect(aggregate.snapshot).toMatchObject({ revision: 9n, writing: false, capped: true, weight: 2 });
    aggregate.revision = 18n;
    policy.committed(aggregate);
    await policy.flush();
    expect(await opened.store.readStream(aggregateStream(jobId))).toHaveLength(1);
    aggregate.revision = 19n;
    policy.committed(aggregate);
    await policy.flush();
    expect(await opened.store.readStream(aggregateStream(jobId))).toHaveLength(2);
    expect(policy.stats).toMatchObject({ aggregateSnapshotsWritten: 2, aggregateSnapshotsFailed: 0 });

    const cold = new AggregateSnapshotPolicy(opened.store, { every: 10, onBackgroundError: () => {} });
    const loaded = await cold.load(jobId);
    expect(loaded?.revision).toBe(19n);
    expect(loaded?.state).toEqual(aggregate.state);
    expect(cold.stats.aggregateSnapshotsLoaded).toBe(1);
    expect(await cold.load(job(99))).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('writes one snapshot at a time: another job falling due meanwhile is written at its next commit', async () => {
    const policy = new AggregateSnapshotPolicy(opened.store, { every: 10, onBackgroundError: () => {} });
    const [a, b] = [job(3), job(4)].map((id) => ({
      id,
      state: registered(id, 1),
      revision: 20n,
      snapshot: noSnapshotYet(),
    }));
    policy.committed(a!);
    policy.committed(b!);
    await policy.flush();
    expect(await opened.store.readStream(aggregateStream(a!.id))).toHaveLength(1);
    expect(await opened.store.readStream(aggregateStream(b!.id))).toHaveLength(0);
    b!.revision = 21n;
    policy.committed(b!);
    await policy.flush();
    expect(await opened.store.readStream(aggregateStream(b!.id))).toHaveLength(1);
  });
});

describe('aggregate snapshot policy, a write that fails', () => {
  it('is counted and reported, never thrown, and tried again only an interval later', async () => {
    const opened = embeddedStores.find((s) => s.name === 'sqlite')!.open();
    await opened.close(); // the database is closed: every append fails
    const errors: unknown[] = [];
    const policy = new AggregateSnapshotPolicy(opened.store, {
      every: 10,
      onBackgroundError: (e) => errors.push(e),
    });
    const aggregate = { id: job(5), state: registered(job(5), 1), revision: 10n, snapshot: noSnapshotYet() };
    policy.committed(aggregate);
    await policy.flush();
    aggregate.revision = 11n;
    policy.committed(aggregate);
    await policy.flush();
    expect(errors).toHaveLength(1);
    expect(policy.stats).toMatchObject({ aggregateSnapshotsFailed: 1, aggregateSnapshotsWritten: 0 });
    expect(aggregate.snapshot.revision).toBe(10n);
  });
});
