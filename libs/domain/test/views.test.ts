import {
  EMPTY_REGISTRY,
  RegistryEditor,
  checkpointPath,
  durationMs,
  evolve,
  fnv1a,
  fold,
  initialState,
  isIsoDuration,
  jobSummaryView,
  jobView,
  latestCompletedWhere,
  restorePoint,
  savepointPath,
  snapshotView,
  taskHandlesOf,
  type EventOf,
  sameList,
  sameTiming,
} from '../src';
import fc from 'fast-check';
import { JOB, Job, T0 } from './harness';

// The views the API and the read model show, and the folds behind their fields.

describe('initial state', () => {
  it('is an unregistered, running job with no snapshots and Flink’s default checkpointing', () => {
    expect(initialState(JOB)).toMatchObject({
      jobId: JOB,
      registered: false,
      name: '',
      tasks: [],
      status: 'RUNNING',
      checkpointing: {
        numRetained: 1,
        timeoutMs: 600_000,
        maxConcurrent: 1,
        minPauseMs: 0,
        tolerableFailures: 0,
        retention: 'NEVER_RETAIN_AFTER_TERMINATION',
        persistOnFailure: true,
      },
      storage: { checkpointDir: '/', savepointDir: '/' },
      nextSnapshotId: 1,
      completed: [],
      counts: { completed: 0, failed: 0, discarded: 0 },
      nextCleanupId: 1,
      consecutiveFailures: 0,
      countedFailures: new Set(),
      lastSucceededSnapshotId: 0,
      schedule: null,
      lastSlot: null,
      scheduleSince: null,
      registeredAt: null,
      updatedAt: null,
      version: 0,
    });
  });
});

describe('snapshotView', () => {
  it('shows null for what a snapshot does not have yet', () => {
    const job = new Job().register();
    const reply = job.trigger();
    if (!reply.accepted) throw new Error('rejected');
    expect(snapshotView(job.snapshot(reply.snapshotId))).toMatchObject({
      snapshotId: 1,
      kind: 'CHECKPOINT',
      status: 'PENDING',
      persisted: false,
      triggerType: 'MANUAL',
      triggerId: 't-1',
      formatType: 'CANONICAL',
      acknowledgedTasks: 0,
      totalTasks: 2,
      triggeredAt: new Date(T0).toISOString(),
      deadline: new Date(T0 + 60_000).toISOString(),
      completedAt: null,
      failedAt: null,
      restorePath: null,
      savepointPath: null,
      manifestPath: null,
      failureReason: null,
      failureMessage: null,
      declinedBy: null,
      subsumedBy: null,
      discard: null,
    });
  });

  it('shows what a snapshot went through: persisted, manifest, subsumed, failed, discarded', () => {
    const job = new Job().register({ numRetained: 1, tolerableFailures: 5 });
    const first = job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: first });
    job.run({ type: 'RecordManifestWritten', snapshotId: first, path: '/data/sp/m/snapcat-manifest.json' });
    const second = job.complete();
    const third = job.complete(); // subsumes the second (the first is persisted)
    const declined = job.trigger();
    if (!declined.accepted) throw new Error('rejected');
    job.run({ type: 'DeclineTask', snapshotId: declined.snapshotId, taskId: 'b', reason: 'out of disk' });
    expect(snapshotView(job.snapshot(first))).toMatchObject({
      persisted: true,
      restorePath: `/data/chk/${JOB}/chk-${first}`,
      savepointPath: job.snapshot(first).persistedPath,
      manifestPath: '/data/sp/m/snapcat-manifest.json',
    });
    expect(snapshotView(job.snapshot(second))).toMatchObject({
      subsumedBy: third,
      status: 'DISCARDING',
      discard: {
        cause: 'SUBSUMED',
        reason: null,
        state: 'REQUESTED',
        requestedAt: new Date(T0).toISOString(),
        bytesReclaimed: null,
        error: null,
        retryable: null,
        attempts: 0,
      },
    });
    expect(snapshotView(job.snapshot(declined.snapshotId))).toMatchObject({
      status: 'FAILED',
      failureReason: 'CHECKPOINT_DECLINED',
      failureMessage: 'out of disk',
      declinedBy: 'b',
      failedAt: new Date(T0).toISOString(),
    });
    job.run({ type: 'RecordDiscardFailed', snapshotId: second, error: 'EACCES', retryable: false });
    expect(snapshotView(job.snapshot(second)).discard).toMatchObject({
      error: 'EACCES',
      retryable: false,
      attempts: 1,
    });
    job.run({ type: 'RequestDiscard', snapshotId: first, reason: 'cleanup', force: true });
    job.run({ type: 'RecordDiscardFailed', snapshotId: first, error: 'S3 unreachable', retryable: true });
    job.run({ type: 'RecordDiscardCompleted', snapshotId: first, bytesReclaimed: 20 });
    // Done after a failed attempt: the attempt is counted, its error is not shown as if it still failed.
    expect(snapshotView(job.snapshot(first))).toMatchObject({
      status: 'DISCARDED',
      discard: {
        cause: 'USER',
        reason: 'cleanup',
        state: 'DONE',
        bytesReclaimed: 20,
        error: null,
        retryable: null,
        attempts: 1,
      },
    });
  });
});

describe('jobSummaryView and jobView', () => {
  it('names the latest completed snapshot, checkpoint and savepoint apart', () => {
    const job = new Job().register({ numRetained: 5 });
    expect(jobSummaryView(job.state)).toMatchObject({
      latestCompletedSnapshotId: null,
      latestCompletedCheckpointId: null,
      latestSavepointId: null,
      restorePoint: null,
      counts: { total: 0, inProgress: 0, completed: 0, failed: 0, discarded: 0 },
      version: 1,
      registeredAt: new Date(T0).toISOString(),
    });
    const checkpoint = job.complete();
    const savepoint = job.complete('SAVEPOINT');
    job.trigger();
    expect(jobSummaryView(job.state)).toMatchObject({
      latestCompletedSnapshotId: savepoint,
      latestCompletedCheckpointId: checkpoint,
      latestSavepointId: savepoint,
      counts: { total: 3, inProgress: 1, completed: 2, failed: 0, discarded: 0 },
    });
    const later = job.complete();
    expect(jobSummaryView(job.state)).toMatchObject({
      latestCompletedSnapshotId: later,
      latestCompletedCheckpointId: later,
      latestSavepointId: savepoint,
    });
    job.run({ type: 'PersistSnapshot', snapshotId: checkpoint });
    const persistedLater = job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: persistedLater });
    expect(jobSummaryView(job.state).latestSavepointId).toBe(persistedLater);
    expect(jobSummaryView(job.state).version).toBe(job.log.length);
  });

  it('jobView lists every snapshot, newest first, as snapshotView shows it', () => {
    const job = new Job().register({ numRetained: 5 });
    job.complete();
    job.complete('SAVEPOINT');
    job.trigger();
    const view = jobView(job.state);
    expect(view).toMatchObject(jobSummaryView(job.state));
    expect(view.snapshots.map((s) => s.snapshotId)).toEqual([3, 2, 1]);
    expect(view.snapshots[1]).toEqual(snapshotView(job.snapshot(2)));
  });

  it('R7 says why the restore point is the one it is (restorePlan LATEST_STATE)', () => {
    const manual = new Job().register();
    manual.complete('SAVEPOINT');
    expect(restorePoint(manual.state)).toEqual({
      snapshotId: 1,
      reason: 'the newest completed snapshot: snapshot 1 (manual savepoint)',
    });
    const periodic = new Job().register();
    periodic.complete('SAVEPOINT', 'PERIODIC');
    expect(restorePoint(periodic.state)!.reason).toBe(
      'the newest completed snapshot: snapshot 1 (periodic savepoint)',
    );
    const checkpoint = new Job().register();
    checkpoint.complete();
    expect(restorePoint(checkpoint.state)!.reason).toBe(
      'the newest completed snapshot: snapshot 1 (checkpoint)',
    );
    checkpoint.run({ type: 'PersistSnapshot', snapshotId: 1 });
    expect(restorePoint(checkpoint.state)!.reason).toBe(
      'the newest completed snapshot: snapshot 1 (checkpoint, persisted as a savepoint)',
    );
  });

  it('R7 latestCompletedWhere looks from the newest completed snapshot back', () => {
    const job = new Job().register({ numRetained: 5 });
    job.complete();
    job.complete('SAVEPOINT');
    job.complete();
    expect(latestCompletedWhere(job.state, (s) => s.kind === 'SAVEPOINT')?.snapshotId).toBe(2);
    expect(latestCompletedWhere(job.state, (s) => s.kind === 'CHECKPOINT')?.snapshotId).toBe(3);
    expect(latestCompletedWhere(job.state, (s) => s.snapshotId === 1)?.snapshotId).toBe(1);
    expect(latestCompletedWhere(job.state, () => false)).toBeUndefined();
  });
});

describe('the fold behind the views', () => {
  it('keeps the completed list in id order whatever order snapshots complete in', () => {
    const job = new Job().register({ numRetained: 5, maxConcurrent: 5 });
    const savepoint = job.trigger('SAVEPOINT');
    const checkpoint = job.trigger();
    const another = job.trigger('SAVEPOINT');
    if (!savepoint.accepted || !checkpoint.accepted || !another.accepted) throw new Error('rejected');
    for (const id of [another.snapshotId, checkpoint.snapshotId, savepoint.snapshotId]) {
      job.ack(id, 'a');
      job.ack(id, 'b');
    }
    expect(job.state.completed).toEqual([1, 2, 3]);
    expect(jobSummaryView(job.state).latestCompletedSnapshotId).toBe(3);
  });

  it('R2 a failed snapshot whose partial state is discarded stays FAILED, and the completed list keeps its ids', () => {
    const job = new Job().register({ numRetained: 5, tolerableFailures: 5 });
    job.complete();
    job.complete();
    const failing = job.trigger();
    if (!failing.accepted) throw new Error('rejected');
    job.run({ type: 'DeclineTask', snapshotId: failing.snapshotId, taskId: 'a' });
    expect(job.snapshot(failing.snapshotId).discard).toMatchObject({ cause: 'ABORTED' });
    expect(job.state.completed).toEqual([1, 2]);
    job.run({ type: 'RecordDiscardCompleted', snapshotId: failing.snapshotId, bytesReclaimed: 0 });
    expect(job.snapshot(failing.snapshotId).status).toBe('FAILED');
    expect(job.state.counts).toEqual({ completed: 2, failed: 1, discarded: 0, compacted: 0 });
  });

  it('R2 counts completions, failures and discards; a snapshot being discarded expects no more tasks', () => {
    const job = new Job().register({ numRetained: 5, tolerableFailures: 5 });
    const a = job.complete();
    job.complete();
    job.run({ type: 'RequestDiscard', snapshotId: a, force: false });
    expect(job.state.counts).toEqual({ completed: 2, failed: 0, discarded: 1, compacted: 0 });
    expect(job.snapshot(a).expectedTasks).toEqual([]);
    expect(job.ack(a, 'a')).toEqual({ result: 'DISCARDED', snapshotStatus: 'DISCARDING' });
  });

  it('evolve applies one event as fold does', () => {
    const job = new Job().register();
    const before = job.state;
    const [triggered] = job.run({
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: 't',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    }).events;
    expect(evolve(before, triggered!)).toEqual(job.state);
    expect(evolve(before, triggered!).pending).toEqual(new Set([1]));
  });

  it('a completed snapshot keeps the handles of the tasks that reported any, by task', () => {
    const job = new Job().register({ tasks: ['a', 'b', 'c'] });
    const reply = job.trigger();
    if (!reply.accepted) throw new Error('rejected');
    const handle = { path: '/data/chk/x/chk-1/b', sizeBytes: 3 };
    for (const [taskId, stateHandles] of [
      ['a', []],
      ['b', [handle]],
      ['c', []],
    ] as const) {
      job.run({
        type: 'AcknowledgeTask',
        snapshotId: reply.snapshotId,
        taskId,
        stateSize: 1,
        stateHandles: [...stateHandles],
      });
    }
    expect(taskHandlesOf(job.snapshot(reply.snapshotId))).toEqual([['b', [handle]]]);
  });

  it('R17 a triggered snapshot expects the tasks its event names, even when the job’s tasks differ', () => {
    const job = new Job().register({ tasks: ['a', 'b'] });
    const before = job.state;
    job.trigger();
    const triggered = job.log.at(-1) as EventOf<'SnapshotTriggered'>;
    for (const tasks of [['a', 'b'], ['x', 'y'], ['a', 'y'], ['a'], ['a', 'b', 'c']]) {
      const state = fold(before, [{ ...triggered, tasks }]);
      expect(state.snapshots.get(triggered.snapshotId)!.expectedTasks).toEqual(tasks);
    }
  });

  it('decision 0037 a trigger leaves out the job’s tasks; the fold reads their absence as the tasks the job has then', () => {
    const job = new Job().register({ tasks: ['a', 'b'] });
    job.trigger();
    const triggered = job.log.at(-1) as EventOf<'SnapshotTriggered'>;
    expect(triggered).not.toHaveProperty('tasks');
    const snapshot = job.snapshot(triggered.snapshotId);
    expect(snapshot.expectedTasks).toBe(job.state.tasks);
    expect(snapshot.totalTasks).toBe(2);
    job.register({ tasks: ['a', 'b', 'c'] });
    expect(job.log.at(-1)!.type).toBe('JobReconfigured');
    // The reconfiguration comes after the trigger: the snapshot still waits for the two it was triggered with.
    expect(job.snapshot(triggered.snapshotId).expectedTasks).toEqual(['a', 'b']);
    const replayed = fold(initialState(JOB), job.log).snapshots.get(triggered.snapshotId)!;
    expect(replayed.expectedTasks).toEqual(['a', 'b']);
  });

  it('the fold refuses an event of a snapshot never triggered, and a state whose registry is still being edited', () => {
    const job = new Job().register();
    job.complete();
    const completed = job.log.find((e) => e.type === 'SnapshotCompleted')!;
    expect(() => fold(new Job().register().state, [completed])).toThrow(
      'event refers to snapshot 1, which was never triggered',
    );
    const editing = { ...job.state, sharedState: new RegistryEditor(EMPTY_REGISTRY) };
    expect(() => fold(editing, [])).toThrow('a draft of a state whose draft was never sealed');
  });

  it('remembers the last schedule slot handled', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1M' } });
    job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 60_000 });
    expect(job.state.lastSlot).toBe(T0 + 60_000);
    expect(jobSummaryView(job.state).lastSlotAt).toBe(new Date(T0 + 60_000).toISOString());
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 120_000 });
    expect(job.state.lastSlot).toBe(T0 + 120_000);
  });
});

describe('paths', () => {
  it('R14 lays checkpoints out as <dir>/<job>/chk-<id>, trailing slashes trimmed, the root kept', () => {
    expect(checkpointPath('/data/chk', JOB, 3)).toBe(`/data/chk/${JOB}/chk-3`);
    expect(checkpointPath('/data/chk///', JOB, 3)).toBe(`/data/chk/${JOB}/chk-3`);
    expect(checkpointPath('/', JOB, 3)).toBe(`//${JOB}/chk-3`);
    expect(checkpointPath('s3://b/x/', JOB, 3)).toBe(`s3://b/x/${JOB}/chk-3`);
  });

  it('R14, R48 hashes with FNV-1a, 64 and 128 bit, over UTF-8 (the published test vectors)', () => {
    expect(['', 'a', 'foobar'].map((t) => fnv1a(t, 64))).toEqual([
      'cbf29ce484222325',
      'af63dc4c8601ec8c',
      '85944171f73967e8',
    ]);
    expect(['', 'a', 'foobar'].map((t) => fnv1a(t, 128))).toEqual([
      '6c62272e07bb014262b821756295c58d',
      'd228cb696f1a8caf78912b704e4a8964',
      '343e1662793c64bf6f0d3597ba446f18',
    ]);
  });

  it('R14, R48 hashes as the FNV-1a definition does, in BigInt arithmetic, for any text (16-bit limbs)', () => {
    // The definition itself: hash = (hash XOR byte) * prime mod 2^bits over the UTF-8 bytes.
    const reference = (text: string, bits: 64 | 128) => {
      const [offset, prime] =
        bits === 64
          ? [0xcbf29ce484222325n, 0x100000001b3n]
          : [0x6c62272e07bb014262b821756295c58dn, 0x1000000000000000000013bn];
      let hash = offset;
      for (const byte of new TextEncoder().encode(text)) {
        hash = ((hash ^ BigInt(byte)) * prime) & ((1n << BigInt(bits)) - 1n);
      }
      return hash.toString(16).padStart(bits / 4, '0');
    };
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.constantFrom(64 as const, 128 as const),
        (text, bits) => expect(fnv1a(text, bits)).toBe(reference(text, bits)),
      ),
      { numRuns: 500 },
    );
  });

  it('R14 names savepoints savepoint-<first 6 of the jobId>-<12 hex of FNV-1a 64 of jobId and seed>', () => {
    // Issue 16 changed this from <dir>/<jobId>/savepoint-<id>-<12 hex of the seed> to Flink's own layout.
    expect(savepointPath('/sp', JOB, '')).toBe(`/sp/savepoint-012345-${fnv1a(`${JOB}\n`, 64).slice(0, 12)}`);
    expect(savepointPath('/sp/', JOB, '1/t-1')).toBe('/sp/savepoint-012345-fa696998e8db');
    expect(savepointPath('/', JOB, '1/t-1')).toBe('/savepoint-012345-fa696998e8db');
    // A hash below 2^60: its leading zero is a digit of the suffix too.
    expect(savepointPath('/sp', JOB, 'seed-2000')).toBe('/sp/savepoint-012345-032691ab6483');
  });
});

describe('durations', () => {
  it.each(['PT1S', 'PT0.5S', 'P1W', 'P2D', 'PT1H30M', 'P1DT2H', 'PT10M'])(
    '%s is an ISO-8601 duration',
    (text) => {
      expect(isIsoDuration(text)).toBe(true);
    },
  );

  it.each(['P', 'PT', 'P1DT', 'P1Y', 'P1M', '1S', 'PT1.S', 'pt1s', ' PT1S', 'TP1S'])('%s is not', (text) => {
    expect(isIsoDuration(text)).toBe(false);
  });

  it('converts each unit to milliseconds', () => {
    expect(durationMs('PT1S')).toBe(1000);
    expect(durationMs('PT0.25S')).toBe(250);
    expect(durationMs('PT2M')).toBe(120_000);
    expect(durationMs('PT3H')).toBe(10_800_000);
    expect(durationMs('P1D')).toBe(86_400_000);
    expect(durationMs('P1W')).toBe(604_800_000);
    expect(durationMs('P1W2DT3H4M5.5S')).toBe(((((7 + 2) * 24 + 3) * 60 + 4) * 60 + 5.5) * 1000);
    expect(() => durationMs('P1DT')).toThrow('not an ISO-8601 duration: P1DT');
    expect(() => durationMs('soon')).toThrow('not an ISO-8601 duration: soon');
  });
});

describe('the comparisons the fold and the decider use', () => {
  it('sameTiming: the same slots, whatever the retention; another cron, time zone or interval differs', () => {
    expect(sameTiming({ every: 'PT60S' }, { every: 'PT1M', retention: { maxCount: 3 } })).toBe(true);
    expect(sameTiming({ every: 'PT1M' }, { every: 'PT2M' })).toBe(false);
    expect(sameTiming({ cron: '0 * * * *', tz: 'UTC' }, { cron: '0 * * * *', tz: 'UTC' })).toBe(true);
    expect(sameTiming({ cron: '0 * * * *', tz: 'UTC' }, { cron: '5 * * * *', tz: 'UTC' })).toBe(false);
    expect(sameTiming({ cron: '0 * * * *', tz: 'UTC' }, { cron: '0 * * * *', tz: 'Europe/Berlin' })).toBe(
      false,
    );
    expect(sameTiming({ cron: '0 * * * *' }, { every: 'PT1H' })).toBe(false);
  });

  it('sameList: the same items in the same order', () => {
    const list = ['a', 'b'];
    expect(sameList(list, list)).toBe(true);
    expect(sameList(['a', 'b'], ['a', 'b'])).toBe(true);
    expect(sameList([], [])).toBe(true);
    expect(sameList(['a', 'b'], ['b', 'a'])).toBe(false);
    expect(sameList(['a'], ['a', 'b'])).toBe(false);
    expect(sameList(['a', 'b'], ['a'])).toBe(false);
  });
});
