import {
  Event,
  FailureReason,
  MAX_MISSED_SLOTS_RECORDED,
  RecordedSavepointSchedule,
  SavepointSchedule,
  SkipReason,
  missedSlots,
  fold,
  initialState,
  durationMs,
  STATE_CODEC_VERSION,
  decodeState,
  encodeState,
  periodicTriggerId,
  propertiesFor,
  type JobStatus,
  type Retention,
} from '../src';
import { JOB, Job, T0 } from './harness';

describe('snapshot properties (CheckpointProperties, docs/domain.md R15 and R16, row by row)', () => {
  const flags = (forced: boolean, ...discard: boolean[]) => ({
    forced,
    discardSubsumed: discard[0],
    discardFinished: discard[1],
    discardCancelled: discard[2],
    discardFailed: discard[3],
    discardSuspended: discard[4],
  });
  it('R15 checkpoint, NEVER_RETAIN_AFTER_TERMINATION: not forced, discards on everything', () => {
    expect(propertiesFor('CHECKPOINT', 'NEVER_RETAIN_AFTER_TERMINATION')).toEqual(
      flags(false, true, true, true, true, true),
    );
  });
  it('R15 checkpoint, RETAIN_ON_FAILURE: kept only when the job fails', () => {
    expect(propertiesFor('CHECKPOINT', 'RETAIN_ON_FAILURE')).toEqual(
      flags(false, true, true, true, false, true),
    );
  });
  it('R15 checkpoint, RETAIN_ON_CANCELLATION: kept on cancel, failure and suspend', () => {
    expect(propertiesFor('CHECKPOINT', 'RETAIN_ON_CANCELLATION')).toEqual(
      flags(false, true, true, false, false, false),
    );
  });
  it.each<Retention>(['NEVER_RETAIN_AFTER_TERMINATION', 'RETAIN_ON_FAILURE', 'RETAIN_ON_CANCELLATION'])(
    'R16 savepoint under %s: forced, discards on nothing',
    (retention) => {
      expect(propertiesFor('SAVEPOINT', retention)).toEqual(flags(true, false, false, false, false, false));
    },
  );
  it('R36 checkpoint after persist (FLIP-10): every discard flag off', () => {
    const job = new Job().register();
    const id = job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: id });
    expect(job.snapshot(id).properties).toEqual(flags(false, false, false, false, false, false));
    expect(job.snapshot(id).persisted).toBe(true);
  });
  it('R15 a triggered snapshot carries the properties of its kind and the job retention', () => {
    const job = new Job().register({ retention: 'RETAIN_ON_FAILURE' });
    job.trigger('CHECKPOINT');
    expect(job.snapshot(1).properties).toEqual(propertiesFor('CHECKPOINT', 'RETAIN_ON_FAILURE'));
  });
});

describe('trigger', () => {
  it('R1 checkpoints and savepoints share one id counter', () => {
    const job = new Job().register();
    expect(job.complete('CHECKPOINT')).toBe(1);
    expect(job.complete('SAVEPOINT')).toBe(2);
    expect(job.complete('CHECKPOINT')).toBe(3);
  });
  it('R9, R12 rejects a checkpoint with TOO_MANY_CHECKPOINT_REQUESTS when maxConcurrent are pending, as an event', () => {
    const job = new Job().register({ maxConcurrent: 1 });
    job.trigger();
    const { events, reply } = job.run({
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: 'x',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    });
    expect(reply).toEqual({ accepted: false, triggerId: 'x', reason: 'TOO_MANY_CHECKPOINT_REQUESTS' });
    expect(events.map((e) => e.type)).toEqual(['SnapshotTriggerRejected']);
    expect(job.state.pending.size).toBe(1);
  });
  it('R10 rejects a periodic checkpoint with MINIMUM_TIME_BETWEEN_CHECKPOINTS within minPause of the last completion (CheckpointRequestDecider.chooseRequestToExecute)', () => {
    const job = new Job().register({ minPauseMs: 1000 });
    job.complete();
    job.now += 999;
    expect(job.trigger('CHECKPOINT', 'PERIODIC')).toMatchObject({
      accepted: false,
      reason: 'MINIMUM_TIME_BETWEEN_CHECKPOINTS',
    });
    job.now += 1;
    expect(job.trigger('CHECKPOINT', 'PERIODIC')).toMatchObject({ accepted: true });
  });
  it('R10 a manual checkpoint is not held back by the minimum pause (only `!isForce() && isPeriodic` requests are)', () => {
    const job = new Job().register({ minPauseMs: 60_000, maxConcurrent: 2 });
    job.complete();
    job.now += 1;
    expect(job.trigger('CHECKPOINT', 'MANUAL')).toMatchObject({ accepted: true });
    // It still counts towards maxConcurrent (R9).
    expect(job.trigger('CHECKPOINT', 'MANUAL')).toMatchObject({ accepted: true });
    expect(job.trigger('CHECKPOINT', 'MANUAL')).toMatchObject({
      accepted: false,
      reason: 'TOO_MANY_CHECKPOINT_REQUESTS',
    });
  });
  it('R11 a savepoint is forced: neither maxConcurrent nor minPause stops it', () => {
    const job = new Job().register({ maxConcurrent: 1, minPauseMs: 60_000 });
    job.complete();
    job.trigger('CHECKPOINT', 'PERIODIC'); // rejected by min pause
    expect(job.trigger('SAVEPOINT')).toMatchObject({ accepted: true, snapshotId: 2 });
    // With maxConcurrent snapshots pending already (the savepoint), another is still accepted.
    expect(job.trigger('CHECKPOINT')).toMatchObject({
      accepted: false,
      reason: 'TOO_MANY_CHECKPOINT_REQUESTS',
    });
    expect(job.trigger('SAVEPOINT')).toMatchObject({ accepted: true, snapshotId: 3 });
    expect(job.trigger('SAVEPOINT', 'PERIODIC')).toMatchObject({ accepted: true, snapshotId: 4 });
  });
  it.each<JobStatus>(['SUSPENDED', 'FINISHED', 'CANCELED', 'FAILED'])(
    'R8 any trigger needs the job RUNNING: %s rejects with NOT_ALL_REQUIRED_TASKS_RUNNING',
    (status) => {
      const job = new Job().register();
      job.run({ type: 'ChangeJobStatus', status });
      expect(job.trigger('SAVEPOINT')).toMatchObject({
        accepted: false,
        reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING',
      });
      expect(job.trigger('CHECKPOINT')).toMatchObject({
        accepted: false,
        reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING',
      });
    },
  );
  it('R13 a client triggerId makes a trigger idempotent: same snapshot, no new event', () => {
    const job = new Job().register();
    const cmd = {
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 'abc',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    } as const;
    const first = job.run(cmd);
    const again = job.run(cmd);
    expect(again.events).toEqual([]);
    expect(again.reply).toMatchObject({ accepted: true, snapshotId: 1, duplicate: true });
    expect(first.reply).toMatchObject({ snapshotId: 1, duplicate: false });
  });
  it('R13 a triggerId reused for the other kind is a conflict', () => {
    const job = new Job().register();
    job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 'k',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    });
    const e = job.reject({
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: 'k',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    });
    expect(e).toMatchObject({ code: 'CONFLICT', field: 'triggerId' });
  });
  it('R14 lays snapshots out as Flink does: <checkpointDir>/<jobId>/chk-<id>, <savepointDir>/savepoint-<jobId 0..6>-<12 hex>', () => {
    // Issue 16: savepoints were <savepointDir>/<jobId>/savepoint-<id>-<suffix> before.
    const job = new Job().register();
    job.trigger('CHECKPOINT');
    job.trigger('SAVEPOINT');
    expect(job.snapshot(1).externalPath).toBe(`/data/chk/${JOB}/chk-1`);
    expect(job.snapshot(2).externalPath).toMatch(
      new RegExp(`^/data/sp/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`),
    );
  });
  it('R14 a savepoint may name its own target directory', () => {
    const job = new Job().register();
    job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 's',
      triggerType: 'MANUAL',
      formatType: 'NATIVE',
      targetDirectory: 'file:///elsewhere/',
    });
    expect(job.snapshot(1).externalPath).toMatch(
      new RegExp(`^file:///elsewhere/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`),
    );
    expect(job.snapshot(1).formatType).toBe('NATIVE');
  });
});

describe('acknowledge', () => {
  it('R17 SUCCESS records the ack; the snapshot completes only when every expected task acked', () => {
    const job = new Job().register({ tasks: ['a', 'b', 'c'] });
    job.trigger();
    expect(job.ack(1, 'a')).toEqual({ result: 'SUCCESS', snapshotStatus: 'PENDING' });
    expect(job.ack(1, 'b')).toEqual({ result: 'SUCCESS', snapshotStatus: 'PENDING' });
    expect(job.ack(1, 'c')).toEqual({ result: 'SUCCESS', snapshotStatus: 'COMPLETED' });
    expect(job.snapshot(1).stateSize).toBe(30);
    expect(job.log.filter((e) => e.type === 'SnapshotCompleted')).toHaveLength(1);
  });
  it('sizes that would add up past 2^53 are refused (INVALID maximum, naming the field), nothing recorded', () => {
    const job = new Job().register({ tasks: ['a', 'b', 'c'] });
    job.trigger();
    job.ack(1, 'a', 3);
    const max = Number.MAX_SAFE_INTEGER;
    const ack = (over: object) => ({
      type: 'AcknowledgeTask' as const,
      snapshotId: 1,
      taskId: 'b',
      stateSize: 0,
      stateHandles: [],
      ...over,
    });
    expect(job.reject(ack({ stateSize: max }))).toMatchObject({
      code: 'INVALID',
      field: 'stateSize',
      rule: 'maximum',
    });
    expect(job.reject(ack({ checkpointedSize: max }))).toMatchObject({
      field: 'checkpointedSize',
      rule: 'maximum',
    });
    const handle = { path: `/data/chk/${JOB}/chk-1/b`, sizeBytes: max };
    expect(job.reject(ack({ stateHandles: [handle] }))).toMatchObject({
      field: 'stateHandles',
      rule: 'maximum',
    });
    // Up to the limit is fine: exactly 2^53 - 1 in all.
    expect(job.run(ack({ stateSize: max - 3 })).reply).toEqual({
      result: 'SUCCESS',
      snapshotStatus: 'PENDING',
    });
    expect(job.snapshot(1)).toMatchObject({ stateSize: max, acknowledged: 2 });
  });
  it('R18 DUPLICATE: the same task again writes no event', () => {
    const job = new Job().register();
    job.trigger();
    job.ack(1, 'a');
    const { events, reply } = job.run({
      type: 'AcknowledgeTask',
      snapshotId: 1,
      taskId: 'a',
      stateSize: 1,
      stateHandles: [],
    });
    expect(reply.result).toBe('DUPLICATE');
    expect(events).toEqual([]);
  });
  it('R19 UNKNOWN: a snapshot that never existed; its state handles are reported for cleanup', () => {
    const job = new Job().register();
    const { events, reply } = job.run({
      type: 'AcknowledgeTask',
      snapshotId: 42,
      taskId: 'a',
      stateSize: 5,
      stateHandles: [{ path: '/data/chk/x', sizeBytes: 5 }],
    });
    expect(reply).toEqual({ result: 'UNKNOWN', snapshotStatus: null });
    expect(events).toMatchObject([
      { type: 'StrayAcknowledgementReceived', result: 'UNKNOWN', stateHandles: [{ path: '/data/chk/x' }] },
    ]);
  });
  it('R19 UNKNOWN: a task that is not part of the snapshot', () => {
    const job = new Job().register();
    job.trigger();
    expect(job.ack(1, 'zzz').result).toBe('UNKNOWN');
  });
  it('R19 DISCARDED: the snapshot was already aborted; the late state is reported for cleanup', () => {
    const job = new Job().register();
    job.trigger();
    job.run({ type: 'DeclineTask', snapshotId: 1, taskId: 'a' });
    const { events, reply } = job.run({
      type: 'AcknowledgeTask',
      snapshotId: 1,
      taskId: 'b',
      stateSize: 3,
      stateHandles: [{ path: '/data/chk/late', sizeBytes: 3 }],
    });
    expect(reply.result).toBe('DISCARDED');
    expect(events).toMatchObject([{ type: 'StrayAcknowledgementReceived', result: 'DISCARDED' }]);
  });
});

describe('subsumption on completion', () => {
  it('R31 keeps numRetained completed checkpoints, subsuming and discarding the oldest first', () => {
    const job = new Job().register({ numRetained: 2 });
    for (let i = 0; i < 5; i += 1) job.complete();
    expect([1, 2, 3, 4, 5].map((id) => job.snapshot(id).status)).toEqual([
      'DISCARDING',
      'DISCARDING',
      'DISCARDING',
      'COMPLETED',
      'COMPLETED',
    ]);
    expect(job.snapshot(1)).toMatchObject({ subsumedBy: 3, discard: { cause: 'SUBSUMED' } });
  });
  it('R73 a checkpoint subsumed while a later one is pending is discarded once that one ends, keeping the files it named (an incremental checkpoint built on it)', () => {
    const job = new Job().register({ numRetained: 1, tasks: ['a'] });
    const ack = (snapshotId: number, ...files: string[]) =>
      job.run({
        type: 'AcknowledgeTask',
        snapshotId,
        taskId: 'a',
        stateSize: 1,
        stateHandles: files.map((name) => ({
          path: `/data/chk/${JOB}/shared/${name}`,
          sizeBytes: 1,
          shared: true,
        })),
      });
    job.trigger('CHECKPOINT');
    ack(1, 'w1');
    job.trigger('CHECKPOINT'); // 2 and 3: both built on 1
    job.trigger('CHECKPOINT');
    ack(2, 'w2'); // 2 completes without w1: 1 is subsumed while 3 is pending
    expect(job.snapshot(1)).toMatchObject({ status: 'COMPLETED', subsumedBy: 2, discardAwaits: 3 });
    expect(job.snapshot(1).discard).toBeUndefined();
    ack(3, 'w1', 'w3'); // 3 names its base's file: nothing deletes it
    expect(job.snapshot(3).status).toBe('COMPLETED');
    // 3's completion subsumed 2 at once (nothing pending), and ended what 1 waited for.
    expect(job.snapshot(2)).toMatchObject({ status: 'DISCARDING', discard: { cause: 'SUBSUMED' } });
    expect(job.snapshot(1)).toMatchObject({ status: 'DISCARDING', discard: { cause: 'SUBSUMED' } });
    const deleting = [...job.state.sharedState.deleting.entries()].map(([location]) => location);
    expect(deleting).not.toContain(`/data/chk/${JOB}/shared/w1`);
    expect(deleting).toContain(`/data/chk/${JOB}/shared/w2`);

    // The pending one failing ends the wait as well.
    const other = new Job().register({ numRetained: 1, tasks: ['a'] });
    other.complete();
    other.trigger('CHECKPOINT');
    other.trigger('CHECKPOINT');
    other.ack(2, 'a');
    expect(other.snapshot(1).discard).toBeUndefined();
    other.run({ type: 'DeclineTask', snapshotId: 3, taskId: 'a' });
    expect(other.snapshot(1)).toMatchObject({ status: 'DISCARDING', discard: { cause: 'SUBSUMED' } });
  });
  it('R73, R35 a subsumed checkpoint persisted while its discard waits is a savepoint: the wait ends without a discard', () => {
    const job = new Job().register({ numRetained: 1, tasks: ['a'] });
    job.complete();
    job.trigger('CHECKPOINT');
    job.trigger('CHECKPOINT');
    job.ack(2, 'a'); // 1 subsumed while 3 is pending: its discard waits
    expect(job.snapshot(1)).toMatchObject({ subsumedBy: 2, discardAwaits: 3 });
    job.run({ type: 'PersistSnapshot', snapshotId: 1 });
    job.run({ type: 'DeclineTask', snapshotId: 3, taskId: 'a' }); // the wait ends
    expect(job.snapshot(1).status).toBe('COMPLETED');
    expect(job.snapshot(1).discard).toBeUndefined();
  });
  it('R72 a forced discard of the newest completed checkpoint fails the checkpoints pending then (each may be built on it), not counted; the next one is FULL', () => {
    const job = new Job().register({ numRetained: 1, tasks: ['a'], tolerableFailures: 0 });
    const base = job.complete();
    job.trigger('CHECKPOINT');
    job.trigger('SAVEPOINT');
    const pending = [...job.state.pending];
    job.run({ type: 'RequestDiscard', snapshotId: base, force: true });
    const [checkpoint, savepoint] = pending.map((id) => job.snapshot(id));
    expect(checkpoint).toMatchObject({ status: 'FAILED', failureReason: 'FINALIZE_CHECKPOINT_FAILURE' });
    expect(checkpoint!.failureMessage).toMatch(/^checkpoint 1, the newest completed one/);
    expect(savepoint!.status).toBe('PENDING'); // self-contained: built on nothing
    expect(job.state.consecutiveFailures).toBe(0);
    job.trigger('CHECKPOINT');
    expect(job.snapshot(Math.max(...job.state.pending)).requestedCheckpointType).toBe('FULL');
  });
  it('R32 never subsumes savepoints or persisted checkpoints', () => {
    const job = new Job().register({ numRetained: 1 });
    job.complete('SAVEPOINT');
    const persisted = job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: persisted });
    job.complete();
    job.complete();
    expect(job.snapshot(1).status).toBe('COMPLETED');
    expect(job.snapshot(2).status).toBe('COMPLETED');
    expect(job.snapshot(3).status).toBe('DISCARDING');
    expect(job.snapshot(4).status).toBe('COMPLETED');
  });
  it('R22 aborts older pending checkpoints with CHECKPOINT_SUBSUMED, but not pending savepoints', () => {
    const job = new Job().register();
    job.trigger('CHECKPOINT');
    job.trigger('SAVEPOINT');
    job.trigger('CHECKPOINT');
    job.ack(3, 'a');
    job.ack(3, 'b');
    expect(job.snapshot(1)).toMatchObject({ status: 'FAILED', failureReason: 'CHECKPOINT_SUBSUMED' });
    expect(job.snapshot(2).status).toBe('PENDING');
    expect(job.state.consecutiveFailures).toBe(0);
  });
  it('R33 the latest completed snapshot is never subsumed', () => {
    const job = new Job().register({ numRetained: 1 });
    job.trigger('CHECKPOINT'); // 1
    job.trigger('SAVEPOINT'); // 2
    job.ack(1, 'a');
    job.ack(1, 'b');
    job.ack(2, 'a');
    job.ack(2, 'b');
    // completed: 1 (checkpoint) and 2 (savepoint, latest); one checkpoint, within numRetained
    expect(job.snapshot(1).status).toBe('COMPLETED');
  });
});

describe('decline, expiry and tolerable failures', () => {
  it('R24, R26 a decline aborts the snapshot with CHECKPOINT_DECLINED and discards its partial state', () => {
    const job = new Job().register();
    job.trigger();
    job.ack(1, 'a');
    const { events } = job.run({ type: 'DeclineTask', snapshotId: 1, taskId: 'b', reason: 'disk full' });
    expect(events.map((e) => e.type)).toEqual([
      'SnapshotFailed',
      'SnapshotDiscardRequested',
      'TolerableFailuresExceeded',
    ]);
    expect(job.snapshot(1)).toMatchObject({
      status: 'FAILED',
      failureReason: 'CHECKPOINT_DECLINED',
      failureMessage: 'disk full',
      discard: { cause: 'ABORTED' },
    });
    expect(events[1]).toMatchObject({ stateHandles: [{ path: `/data/chk/${JOB}/chk-1/a` }] });
  });
  it('R4 any command first expires overdue pending snapshots with CHECKPOINT_EXPIRED', () => {
    const job = new Job().register({ timeoutMs: 1000, tolerableFailures: 5 });
    job.trigger();
    job.now += 1000;
    const reply = job.ack(1, 'a');
    expect(reply.result).toBe('DISCARDED');
    expect(job.snapshot(1)).toMatchObject({ status: 'FAILED', failureReason: 'CHECKPOINT_EXPIRED' });
  });
  it('R4 ExpireOverdue expires nothing before the deadline', () => {
    const job = new Job().register({ timeoutMs: 1000 });
    job.trigger();
    job.now += 999;
    expect(job.run({ type: 'ExpireOverdue' }).reply).toEqual({ expired: [] });
    job.now += 1;
    expect(job.run({ type: 'ExpireOverdue' }).reply).toEqual({ expired: [1] });
  });
  it('R28 counts consecutive counted failures; crossing tolerableFailures is one event and clears the count; a completion resets (CheckpointFailureManager.checkFailureAgainstCounter)', () => {
    const job = new Job().register({ tolerableFailures: 2 });
    const declineNext = () => {
      const r = job.trigger();
      if (!r.accepted) throw new Error('rejected');
      return job.run({ type: 'DeclineTask', snapshotId: r.snapshotId, taskId: 'a' }).events;
    };
    declineNext();
    declineNext();
    expect(job.log.some((e) => e.type === 'TolerableFailuresExceeded')).toBe(false);
    expect(declineNext().map((e) => e.type)).toContain('TolerableFailuresExceeded');
    // Flink clears the count when it crosses (clearCount): counting starts again.
    expect(job.state.consecutiveFailures).toBe(0);
    expect(declineNext().map((e) => e.type)).not.toContain('TolerableFailuresExceeded');
    expect(job.state.consecutiveFailures).toBe(1);
    job.complete();
    expect(job.state.consecutiveFailures).toBe(0);
  });
  it('R27, R59 job-level savepoint failures and non-counted reasons do not count (CheckpointFailureManager.handleJobLevelCheckpointException, checkFailureCounter)', () => {
    const job = new Job().register({ tolerableFailures: 0, timeoutMs: 1000 });
    job.trigger('SAVEPOINT');
    job.now += 1000;
    job.run({ type: 'ExpireOverdue' });
    expect(job.snapshot(1).failureReason).toBe('CHECKPOINT_EXPIRED');
    job.trigger('CHECKPOINT');
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    expect(job.state.consecutiveFailures).toBe(0);
    expect(job.log.some((e) => e.type === 'TolerableFailuresExceeded')).toBe(false);
  });
  it('R25 declining a completed snapshot, or for a task not in it, is a conflict', () => {
    const job = new Job().register();
    job.complete();
    expect(job.reject({ type: 'DeclineTask', snapshotId: 1, taskId: 'a' })).toMatchObject({
      code: 'CONFLICT',
    });
    job.trigger();
    expect(job.reject({ type: 'DeclineTask', snapshotId: 2, taskId: 'nope' })).toMatchObject({
      code: 'CONFLICT',
      field: 'taskId',
    });
    expect(job.reject({ type: 'DeclineTask', snapshotId: 9, taskId: 'a' })).toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});

describe('persist (FLIP-10)', () => {
  it('R36 turns a completed checkpoint into a savepoint in the savepoint directory, idempotently', () => {
    const job = new Job().register();
    const id = job.complete();
    const first = job.run({ type: 'PersistSnapshot', snapshotId: id });
    expect(first.reply.savepointPath).toMatch(
      new RegExp(`^/data/sp/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`),
    );
    const again = job.run({ type: 'PersistSnapshot', snapshotId: id });
    expect(again.events).toEqual([]);
    expect(again.reply).toEqual({ ...first.reply, changed: false });
  });
  it('R37 refuses a snapshot that is not completed', () => {
    const job = new Job().register();
    job.trigger();
    expect(job.reject({ type: 'PersistSnapshot', snapshotId: 1 })).toMatchObject({ code: 'CONFLICT' });
  });
});

describe('job termination', () => {
  const terminate = (retention: Retention, status: JobStatus) => {
    const job = new Job().register({ retention, numRetained: 3 });
    job.complete();
    job.complete();
    job.complete('SAVEPOINT');
    job.trigger();
    job.run({ type: 'ChangeJobStatus', status });
    return job;
  };
  it.each<[Retention, JobStatus, boolean]>([
    ['NEVER_RETAIN_AFTER_TERMINATION', 'FINISHED', true],
    ['NEVER_RETAIN_AFTER_TERMINATION', 'CANCELED', true],
    ['RETAIN_ON_FAILURE', 'FINISHED', true],
    ['RETAIN_ON_FAILURE', 'CANCELED', true],
    ['RETAIN_ON_CANCELLATION', 'FINISHED', true],
    ['RETAIN_ON_CANCELLATION', 'CANCELED', false],
  ])(
    'R46 %s, job %s: retained checkpoints discarded = %s; savepoints kept',
    (retention, status, discarded) => {
      const job = terminate(retention, status);
      expect(job.snapshot(1).status).toBe(discarded ? 'DISCARDING' : 'COMPLETED');
      expect(job.snapshot(2).status).toBe(discarded ? 'DISCARDING' : 'COMPLETED');
      if (discarded) expect(job.snapshot(1).discard?.cause).toBe(`JOB_${status}`);
      expect(job.snapshot(3).status).toBe('COMPLETED');
      expect(job.snapshot(4)).toMatchObject({
        status: 'FAILED',
        failureReason: 'CHECKPOINT_COORDINATOR_SHUTDOWN',
      });
    },
  );
  const persistedOnFailure = (job: Job) =>
    job.log.flatMap((e) =>
      e.type === 'SnapshotPersisted' && e.cause === 'JOB_FAILED' ? [e.snapshotId] : [],
    );
  it.each<[Retention, boolean]>([
    ['NEVER_RETAIN_AFTER_TERMINATION', true],
    ['RETAIN_ON_FAILURE', false],
    ['RETAIN_ON_CANCELLATION', false],
  ])(
    'R38 FAILED under %s persists the newest completed checkpoint = %s: only when its discardFailed flag would delete it (snapcat/FLIP-10; CompletedCheckpoint.shouldBeDiscardedOnShutdown)',
    (retention, persists) => {
      const job = terminate(retention, 'FAILED');
      // The newer savepoint (3) is not a checkpoint: the newest checkpoint is 2.
      expect(persistedOnFailure(job)).toEqual(persists ? [2] : []);
      expect(job.snapshot(2)).toMatchObject({ status: 'COMPLETED', persisted: persists });
      // Never an older checkpoint: 1 keeps or loses its files by its own flag.
      expect(job.snapshot(1)).toMatchObject({
        status: retention === 'NEVER_RETAIN_AFTER_TERMINATION' ? 'DISCARDING' : 'COMPLETED',
        persisted: false,
      });
      expect(job.snapshot(3).status).toBe('COMPLETED');
    },
  );
  it('R38 FAILED persists no older checkpoint when the newest one is already persisted', () => {
    const job = new Job().register({ numRetained: 3 });
    job.complete();
    job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: 2 });
    job.run({ type: 'ChangeJobStatus', status: 'FAILED' });
    expect(persistedOnFailure(job)).toEqual([]);
    expect(job.snapshot(2)).toMatchObject({ status: 'COMPLETED', persisted: true });
    expect(job.snapshot(1)).toMatchObject({ status: 'DISCARDING', persisted: false });
    expect(job.snapshot(1).discard?.cause).toBe('JOB_FAILED');
  });
  it('R38 FAILED persists nothing when the job sets persistOnFailure false', () => {
    const job = new Job().register({ numRetained: 3, persistOnFailure: false });
    job.complete();
    job.complete();
    job.run({ type: 'ChangeJobStatus', status: 'FAILED' });
    expect(persistedOnFailure(job)).toEqual([]);
    expect([1, 2].map((id) => job.snapshot(id).status)).toEqual(['DISCARDING', 'DISCARDING']);
  });
  it('R38 a log written before persistOnFailure replays as persistOnFailure true', () => {
    const job = new Job().register({ numRetained: 3 });
    job.complete();
    job.complete();
    const oldLog = job.log.map((e) => {
      if (e.type !== 'JobRegistered') return e;
      const { persistOnFailure: _absent, ...checkpointing } = e.checkpointing;
      return { ...e, checkpointing };
    });
    expect(oldLog[0]).toMatchObject({ type: 'JobRegistered' });
    expect('persistOnFailure' in (oldLog[0] as Extract<Event, { type: 'JobRegistered' }>).checkpointing).toBe(
      false,
    );
    const replayed = fold(initialState(JOB), oldLog);
    expect(replayed).toEqual(job.state);
    expect(replayed.checkpointing.persistOnFailure).toBe(true);
    const old = job.continuedWith(replayed);
    // Configuring it again as it was (the default) is no change (R6).
    expect(
      old.run({
        type: 'ConfigureJob',
        name: 'job',
        tasks: ['a', 'b'],
        checkpointing: { ...replayed.checkpointing },
        storage: replayed.storage,
      }).events,
    ).toEqual([]);
    old.run({ type: 'ChangeJobStatus', status: 'FAILED' });
    expect(persistedOnFailure(old)).toEqual([2]);
  });
  it('R30, R47 SUSPENDED aborts pending snapshots with CHECKPOINT_COORDINATOR_SUSPEND and discards nothing completed', () => {
    const job = terminate('NEVER_RETAIN_AFTER_TERMINATION', 'SUSPENDED');
    expect([1, 2, 3].map((id) => job.snapshot(id).status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    expect(job.snapshot(4).failureReason).toBe('CHECKPOINT_COORDINATOR_SUSPEND');
    job.run({ type: 'ChangeJobStatus', status: 'RUNNING' });
    expect(job.state.status).toBe('RUNNING');
  });
  it.each<JobStatus>(['CREATED', 'INITIALIZING', 'FAILING', 'CANCELLING', 'RESTARTING', 'RECONCILING'])(
    'R45, R30 %s (a transient Flink JobStatus) aborts pending snapshots as a suspension, discards nothing, and may return to RUNNING',
    (status) => {
      const job = terminate('NEVER_RETAIN_AFTER_TERMINATION', status);
      expect([1, 2, 3].map((id) => job.snapshot(id).status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
      expect(job.snapshot(4).failureReason).toBe('CHECKPOINT_COORDINATOR_SUSPEND');
      expect(job.trigger('SAVEPOINT')).toMatchObject({
        accepted: false,
        reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING',
      });
      // Only the aborted snapshot's partial state is cleaned up; nothing completed is discarded.
      expect(
        job.log.filter((e) => e.type === 'SnapshotDiscardRequested').map((e) => [e.snapshotId, e.cause]),
      ).toEqual([[4, 'ABORTED']]);
      job.run({ type: 'ChangeJobStatus', status: 'RESTARTING' });
      job.run({ type: 'ChangeJobStatus', status: 'RUNNING' });
      expect(job.state.status).toBe('RUNNING');
      expect(job.trigger('CHECKPOINT')).toMatchObject({ accepted: true });
    },
  );
  it('R45 a terminal status is final', () => {
    const job = new Job().register();
    job.run({ type: 'ChangeJobStatus', status: 'FINISHED' });
    expect(job.reject({ type: 'ChangeJobStatus', status: 'RUNNING' })).toMatchObject({
      code: 'CONFLICT',
      rule: 'terminal-status',
    });
  });
  it('R45 the same status again writes nothing', () => {
    const job = new Job().register();
    expect(job.run({ type: 'ChangeJobStatus', status: 'RUNNING' }).events).toEqual([]);
  });
});

describe('discard (two-phase)', () => {
  it('R41 is refused for the latest completed snapshot of a RUNNING job unless forced', () => {
    const job = new Job().register({ numRetained: 3 });
    job.complete();
    job.complete();
    expect(job.reject({ type: 'RequestDiscard', snapshotId: 2, force: false })).toMatchObject({
      code: 'CONFLICT',
      rule: 'latest-completed-retained',
    });
    job.run({ type: 'RequestDiscard', snapshotId: 1, force: false });
    job.run({ type: 'RequestDiscard', snapshotId: 2, force: true });
    expect(job.snapshot(2).status).toBe('DISCARDING');
  });
  it.each(['RESTARTING', 'SUSPENDED', 'CREATED', 'FAILING'] as const)(
    'R41 is refused for the latest completed snapshot of a %s job too (it restores from it) unless forced',
    (status) => {
      const job = new Job().register({ numRetained: 3 });
      job.complete();
      job.run({ type: 'ChangeJobStatus', status });
      expect(job.reject({ type: 'RequestDiscard', snapshotId: 1, force: false })).toMatchObject({
        code: 'CONFLICT',
        rule: 'latest-completed-retained',
        message: expect.stringContaining(`(${status})`),
      });
      job.run({ type: 'RequestDiscard', snapshotId: 1, force: true });
      expect(job.snapshot(1).status).toBe('DISCARDING');
    },
  );
  it('R40 requested, then DISCARDED only when the storage worker reports the files gone, with bytes reclaimed', () => {
    const job = new Job().register({ numRetained: 3 });
    job.complete();
    job.complete();
    job.run({ type: 'RequestDiscard', snapshotId: 1, force: false, reason: 'cleanup' });
    expect(job.snapshot(1).status).toBe('DISCARDING');
    job.run({ type: 'RecordDiscardFailed', snapshotId: 1, error: 'EACCES', retryable: true });
    expect(job.snapshot(1)).toMatchObject({
      status: 'DISCARDING',
      discard: { state: 'FAILED', attempts: 1 },
    });
    job.run({ type: 'RecordDiscardCompleted', snapshotId: 1, bytesReclaimed: 20 });
    expect(job.snapshot(1)).toMatchObject({
      status: 'DISCARDED',
      discard: { state: 'DONE', bytesReclaimed: 20 },
    });
    expect(job.run({ type: 'RecordDiscardCompleted', snapshotId: 1, bytesReclaimed: 20 }).events).toEqual([]);
    expect(job.run({ type: 'RequestDiscard', snapshotId: 1, force: false }).events).toEqual([]);
  });
  it('R40, R41 refuses pending snapshots, and completions for snapshots with no discard requested', () => {
    const job = new Job().register();
    job.trigger();
    expect(job.reject({ type: 'RequestDiscard', snapshotId: 1, force: true })).toMatchObject({
      code: 'CONFLICT',
    });
    expect(job.reject({ type: 'RecordDiscardCompleted', snapshotId: 1, bytesReclaimed: 0 })).toMatchObject({
      code: 'CONFLICT',
      rule: 'discard-requested',
    });
  });
  it('R42 the discard request names the snapshot directory, its savepoint location and its state handles', () => {
    const job = new Job().register({ numRetained: 3 });
    job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: 1 });
    job.complete();
    const { events } = job.run({ type: 'RequestDiscard', snapshotId: 1, force: false });
    expect(events[0]).toMatchObject({
      type: 'SnapshotDiscardRequested',
      locations: [`/data/chk/${JOB}/chk-1`, job.snapshot(1).persistedPath],
      stateHandles: [{ path: `/data/chk/${JOB}/chk-1/a` }, { path: `/data/chk/${JOB}/chk-1/b` }],
    });
  });
});

describe('jobs', () => {
  it('R3 commands on an unregistered job are NOT_FOUND', () => {
    expect(new Job().reject({ type: 'ChangeJobStatus', status: 'FAILED' })).toMatchObject({
      code: 'NOT_FOUND',
    });
  });
  it('R6 reconfiguring with the same configuration writes nothing; a change is one event', () => {
    const job = new Job().register();
    expect(job.log.map((e) => e.type)).toEqual(['JobRegistered']);
    job.register();
    expect(job.log).toHaveLength(1);
    job.register({ numRetained: 4 });
    expect(job.log.map((e) => e.type)).toEqual(['JobRegistered', 'JobReconfigured']);
    expect(job.state.checkpointing.numRetained).toBe(4);
  });
  it('every event validates against its schema and carries jobId and occurredAt', () => {
    const job = new Job().register({ numRetained: 1 });
    job.complete();
    job.complete();
    job.trigger();
    job.run({ type: 'ChangeJobStatus', status: 'FAILED' });
    for (const event of job.log) {
      expect(Event.parse(event)).toEqual(event);
      expect(event).toMatchObject({ jobId: JOB, occurredAt: new Date(T0).toISOString() });
    }
  });
});

describe('aggregate codec', () => {
  it('a state encoded to JSON and decoded is equal to the original', () => {
    const job = new Job().register({ numRetained: 1 });
    job.complete();
    job.complete('SAVEPOINT');
    job.complete();
    job.trigger();
    const json = JSON.parse(JSON.stringify(encodeState(job.state)));
    expect(decodeState(json)).toEqual(job.state);
  });
  it('an encoding from another codec version is not used', () => {
    const encoded = { ...encodeState(new Job().register().state), codecVersion: STATE_CODEC_VERSION + 1 };
    expect(decodeState(encoded)).toBeNull();
  });
});

describe('periodic savepoints (FLIP-10)', () => {
  const schedule = (job: Job, extra: object = {}) =>
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT2S', ...extra } });
  /** Completes the pending periodic savepoint `id` (a slot is skipped while it is pending, R50). */
  const ackAll = (job: Job, id: number) => {
    for (const task of job.state.tasks) job.ack(id, task);
  };

  it('R48 a slot fires one PERIODIC savepoint with a triggerId derived from the slot, at most once', () => {
    const job = new Job().register();
    schedule(job);
    const first = job.run({ type: 'FirePeriodicSavepoint', slot: 2000 });
    // Issue 16: a Flink TriggerId (32 hex) derived from the job, schedule and slot; `periodic-2000` before.
    expect(first.reply).toEqual({
      fired: true,
      snapshotId: 1,
      triggerId: periodicTriggerId(JOB, { every: 'PT2S' }, 2000),
    });
    expect(job.snapshot(1)).toMatchObject({
      kind: 'SAVEPOINT',
      triggerType: 'PERIODIC',
      properties: { forced: true },
    });
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: 2000 }).events).toEqual([]);
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: 0 }).reply).toEqual({
      fired: false,
      reason: 'SLOT_ALREADY_HANDLED',
    });
    ackAll(job, 1);
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: 4000 }).reply).toMatchObject({
      fired: true,
      snapshotId: 2,
    });
  });
  it('R49 works where no checkpoint may be triggered (maxConcurrent reached, minPause)', () => {
    const job = new Job().register({ maxConcurrent: 1, minPauseMs: 60_000 });
    schedule(job);
    job.trigger('CHECKPOINT');
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: 1 }).reply).toMatchObject({ fired: true });
  });
  it('R50 a job that is not RUNNING skips the slot, and an event says so', () => {
    const job = new Job().register();
    schedule(job);
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    const { events, reply } = job.run({ type: 'FirePeriodicSavepoint', slot: 2000 });
    expect(reply).toEqual({ fired: false, reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING' });
    expect(events).toMatchObject([{ type: 'PeriodicSavepointSkipped', slot: 2000 }]);
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: 2000 }).events).toEqual([]);
  });
  it('R50 a slot is skipped while the schedule’s previous periodic savepoint is pending, as the Kubernetes operator triggers none while one is in progress (SnapshotUtils.shouldTriggerSnapshot, savepointInProgress)', () => {
    const job = new Job().register({ timeoutMs: 10_000 });
    schedule(job);
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 }).reply).toMatchObject({ fired: true });
    job.now = T0 + 4000;
    const { events, reply } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 4000 });
    expect(reply).toEqual({ fired: false, reason: 'PREVIOUS_SAVEPOINT_PENDING' });
    expect(events).toEqual([
      expect.objectContaining({
        type: 'PeriodicSavepointSkipped',
        slot: T0 + 4000,
        reason: 'PREVIOUS_SAVEPOINT_PENDING',
      }),
    ]);
    for (const e of events) expect(Event.parse(e)).toEqual(e);
    expect(job.state.lastSlot).toBe(T0 + 4000); // handled: it does not fire later either
    // A manual savepoint pending does not hold the schedule back; only its own periodic savepoints do.
    ackAll(job, 1);
    const manual = job.trigger('SAVEPOINT');
    job.now = T0 + 6000;
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 6000 }).reply).toMatchObject({ fired: true });
    expect(job.snapshot(manual.accepted ? manual.snapshotId : 0).status).toBe('PENDING');
    // A periodic savepoint that expired (R4) holds back nothing: it fails before the slot is decided.
    job.now = T0 + 20_000;
    const late = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 20_000 });
    expect(late.reply).toMatchObject({ fired: true });
    expect(late.events.filter((e) => e.type === 'SnapshotFailed').map((e) => e.snapshotId)).toEqual([2, 3]);
  });
  it('R50 a pending periodic checkpoint does not hold the schedule back: only a periodic savepoint does', () => {
    const job = new Job().register();
    schedule(job);
    expect(job.trigger('CHECKPOINT', 'PERIODIC')).toMatchObject({ accepted: true, snapshotId: 1 });
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 }).reply).toEqual({
      fired: true,
      snapshotId: 2,
      triggerId: periodicTriggerId(JOB, { every: 'PT2S' }, T0 + 2000),
    });
    expect(job.snapshot(1).status).toBe('PENDING');
  });
  it('R49 a schedule’s formatType is its savepoints’ (CANONICAL when not given)', () => {
    const job = new Job().register();
    schedule(job, { formatType: 'NATIVE' });
    const fired = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 }).reply;
    expect(job.snapshot(fired.fired ? fired.snapshotId : 0).formatType).toBe('NATIVE');
    for (const task of job.state.tasks) job.ack(1, task);
    schedule(job);
    const again = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 4000 }).reply;
    expect(job.snapshot(again.fired ? again.snapshotId : 0).formatType).toBe('CANONICAL');
    expect(SavepointSchedule.safeParse({ every: 'PT1S', formatType: 'BINARY' }).success).toBe(false);
  });
  it('R52 without a schedule nothing fires; setting the same schedule twice is one event', () => {
    const job = new Job().register();
    expect(job.run({ type: 'FirePeriodicSavepoint', slot: 1 }).reply).toEqual({
      fired: false,
      reason: 'NO_SCHEDULE',
    });
    schedule(job);
    expect(schedule(job).events).toEqual([]);
    expect(job.run({ type: 'RemoveSavepointSchedule' }).events.map((e) => e.type)).toEqual([
      'SavepointScheduleRemoved',
    ]);
    expect(job.state.schedule).toBeNull();
  });
  describe('slots no worker presented are recorded as missed (SLOT_MISSED)', () => {
    const skipped = (events: Event[]) =>
      events.flatMap((e) => (e.type === 'PeriodicSavepointSkipped' ? [e] : []));
    const fired = (events: Event[]) =>
      events.flatMap((e) => (e.type === 'SnapshotTriggered' && e.slot !== undefined ? [e.slot] : []));

    it('R51 the slots between the last one handled and the one that fires are recorded, oldest first', () => {
      const job = new Job().register();
      schedule(job); // PT2S, set at T0 (itself a slot: the schedule did not exist before, so not missed)
      expect(job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 }).events.map((e) => e.type)).toEqual([
        'SnapshotTriggered',
      ]);
      ackAll(job, 1);
      const { events, reply } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 10_000 });
      expect(events.map((e) => [e.type, (e as { slot?: number }).slot])).toEqual([
        ['PeriodicSavepointSkipped', T0 + 4000],
        ['PeriodicSavepointSkipped', T0 + 6000],
        ['PeriodicSavepointSkipped', T0 + 8000],
        ['SnapshotTriggered', T0 + 10_000],
      ]);
      expect(skipped(events).every((e) => e.reason === 'SLOT_MISSED' && e.missedBefore === undefined)).toBe(
        true,
      );
      expect(reply).toEqual({
        fired: true,
        snapshotId: 2,
        triggerId: periodicTriggerId(JOB, { every: 'PT2S' }, T0 + 10_000),
      });
      expect(job.state.lastSlot).toBe(T0 + 10_000);
      // A missed slot presented late is one already handled: it neither fires nor is recorded again.
      expect(job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 6000 })).toEqual({
        events: [],
        reply: { fired: false, reason: 'SLOT_ALREADY_HANDLED' },
      });
      for (const e of events) expect(Event.parse(e)).toEqual(e);
    });

    it('R51 the first slot after the schedule was set: only the slots since it was set are missed', () => {
      const job = new Job().register();
      job.now = T0 + 500;
      schedule(job);
      const { events } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 6000 });
      expect(skipped(events).map((e) => e.slot)).toEqual([T0 + 2000, T0 + 4000]);
      expect(fired(events)).toEqual([T0 + 6000]);
    });

    it('R51 a schedule set again with other slots reports none of the time before it as missed', () => {
      const job = new Job().register();
      schedule(job);
      job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 });
      job.now = T0 + 60_500;
      schedule(job, { every: 'PT3S' });
      expect(job.state.scheduleSince).toBe(T0 + 60_500);
      const { events } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 63_000 });
      expect(skipped(events)).toEqual([]);
      expect(fired(events)).toEqual([T0 + 63_000]);
      // Removed and set again (the same schedule): the time without one is not missed either.
      job.now = T0 + 100_000;
      job.run({ type: 'RemoveSavepointSchedule' });
      expect(job.state.scheduleSince).toBeNull();
      job.now = T0 + 200_000;
      schedule(job, { every: 'PT3S' });
      const again = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 204_000 });
      expect(skipped(again.events).map((e) => e.slot)).toEqual([T0 + 201_000]);
    });

    it('R51 a schedule whose retention or directory changes keeps its slots: those that passed are missed', () => {
      const job = new Job().register();
      schedule(job);
      job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 });
      job.now = T0 + 9000;
      schedule(job, { retention: { maxCount: 3 }, targetDirectory: '/data/periodic' });
      schedule(job, { every: 'PT2.0S', retention: { maxCount: 3 } }); // the same period, written otherwise
      expect(job.state.scheduleSince).toBe(T0);
      ackAll(job, 1);
      const { events } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 10_000 });
      expect(skipped(events).map((e) => e.slot)).toEqual([T0 + 4000, T0 + 6000, T0 + 8000]);
    });

    it('R50, R51 a job that is not RUNNING: the missed slots are recorded, then the slot is skipped', () => {
      const job = new Job().register();
      schedule(job);
      job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
      const { events, reply } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 6000 });
      expect(reply).toEqual({ fired: false, reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING' });
      expect(skipped(events).map((e) => [e.slot, e.reason])).toEqual([
        [T0 + 2000, 'SLOT_MISSED'],
        [T0 + 4000, 'SLOT_MISSED'],
        [T0 + 6000, 'NOT_ALL_REQUIRED_TASKS_RUNNING'],
      ]);
    });

    it('R51 a slot off the schedule (presented late or by hand): the whole periods before it are missed', () => {
      const job = new Job().register();
      schedule(job);
      const { events } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 5500 });
      expect(skipped(events).map((e) => e.slot)).toEqual([T0 + 2000, T0 + 4000]);
      ackAll(job, 1);
      expect(job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 6000 }).events.map((e) => e.type)).toEqual([
        'SnapshotTriggered',
      ]);
    });

    it(`R51 records at most ${MAX_MISSED_SLOTS_RECORDED} one by one: the newest, the oldest of them counting the rest`, () => {
      const job = new Job().register();
      job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1S' } });
      const slot = T0 + 2500 * 1000; // 2,499 slots after T0 passed unpresented
      const { events } = job.run({ type: 'FirePeriodicSavepoint', slot });
      const missed = skipped(events);
      expect(missed).toHaveLength(MAX_MISSED_SLOTS_RECORDED);
      expect(missed[0]).toMatchObject({ slot: T0 + 1500 * 1000, missedBefore: 1499 });
      expect(missed.slice(1).every((e) => e.missedBefore === undefined)).toBe(true);
      expect(missed.at(-1)!.slot).toBe(slot - 1000);
      missed.forEach((e, i) => expect(e.slot).toBe(T0 + (1500 + i) * 1000));
      expect(fired(events)).toEqual([slot]);
      expect(missed.length + missed[0]!.missedBefore!).toBe(2499);
      expect(Event.parse(missed[0])).toEqual(missed[0]);
      // Exactly the cap: no count.
      ackAll(job, 1);
      const next = job.run({ type: 'FirePeriodicSavepoint', slot: slot + 1001 * 1000 }).events;
      expect(skipped(next)).toHaveLength(MAX_MISSED_SLOTS_RECORDED);
      expect(skipped(next)[0]).not.toHaveProperty('missedBefore');
      // One more than the cap: the oldest recorded counts the one before it.
      ackAll(job, 2);
      const last = slot + 1001 * 1000;
      const beyond = skipped(job.run({ type: 'FirePeriodicSavepoint', slot: last + 1002 * 1000 }).events);
      expect(beyond).toHaveLength(MAX_MISSED_SLOTS_RECORDED);
      expect(beyond[0]).toMatchObject({ slot: last + 2000, missedBefore: 1 });
    });

    it('R51 a cron schedule records no missed slots: the pure domain cannot evaluate cron expressions', () => {
      const job = new Job().register();
      job.run({ type: 'SetSavepointSchedule', schedule: { cron: '*/2 * * * * *' } });
      job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 });
      ackAll(job, 1);
      const { events } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 10_000 });
      expect(events.map((e) => e.type)).toEqual(['SnapshotTriggered']);
      expect(missedSlots(job.state, T0 + 20_000)).toEqual({ slots: [], omitted: 0 });
    });

    it('R51 the reason is a skip reason only: a snapshot cannot fail or be rejected with SLOT_MISSED', () => {
      expect(SkipReason.options).toContain('SLOT_MISSED');
      expect(FailureReason.options).not.toContain('SLOT_MISSED');
      expect(
        Event.safeParse({
          type: 'SnapshotFailed',
          jobId: JOB,
          occurredAt: new Date(T0).toISOString(),
          snapshotId: 1,
          reason: 'SLOT_MISSED',
        }).success,
      ).toBe(false);
    });
  });
  it('R52 the schedule must name exactly one of every or cron', () => {
    expect(SavepointSchedule.safeParse({ every: 'PT1S', cron: '* * * * *' }).success).toBe(false);
    expect(SavepointSchedule.safeParse({}).success).toBe(false);
    expect(SavepointSchedule.safeParse({ every: 'PT0.5S' }).success).toBe(false);
    expect(SavepointSchedule.safeParse({ cron: '*/5 * * * * *', tz: 'Europe/Berlin' }).success).toBe(true);
    expect(durationMs('PT1H30M')).toBe(5_400_000);
    expect(durationMs('P1W')).toBe(604_800_000);
  });
});

describe('savepoint retention (PERIODIC savepoints only)', () => {
  const periodicSavepoints = (job: Job, n: number) => {
    for (let i = 1; i <= n; i += 1) {
      job.now += 1000;
      const r = job.run({ type: 'FirePeriodicSavepoint', slot: job.now }).reply;
      if (!r.fired) throw new Error('did not fire');
      for (const t of job.state.tasks) job.ack(r.snapshotId, t);
    }
  };
  const completedPeriodic = (job: Job) =>
    job.state.completed.filter(
      (id) => job.snapshot(id).triggerType === 'PERIODIC' && job.snapshot(id).kind === 'SAVEPOINT',
    );

  it('R53 maxCount keeps the newest periodic savepoints and every manual one, applied as each completes (SnapshotObserver.cleanupSavepointHistory)', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1S', retention: { maxCount: 5 } } });
    const manual = job.complete('SAVEPOINT');
    for (let i = 0; i < 12; i += 1) {
      periodicSavepoints(job, 1);
      expect(completedPeriodic(job).length).toBeLessThanOrEqual(5);
    }
    // The completing acknowledgement discarded the oldest one beyond maxCount: the sweep finds nothing.
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([]);
    expect(job.snapshot(manual).status).toBe('COMPLETED');
    expect([9, 10, 11, 12, 13].map((id) => job.snapshot(id).status)).toEqual(Array(5).fill('COMPLETED'));
    expect([2, 3, 4, 5, 6, 7, 8].map((id) => job.snapshot(id).status)).toEqual(Array(7).fill('DISCARDING'));
    expect(job.snapshot(2).discard?.cause).toBe('RETENTION');
    // In the decision of the acknowledgement that completed snapshot 8: completed, then 3 discarded.
    const completing = job.log.findIndex((e) => e.type === 'SnapshotCompleted' && e.snapshotId === 8);
    expect(job.log[completing + 1]).toMatchObject({
      type: 'SnapshotDiscardRequested',
      snapshotId: 3,
      cause: 'RETENTION',
    });
  });
  it('R53 maxAge discards periodic savepoints older than it (the sweep)', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1S' } });
    periodicSavepoints(job, 8); // completed at +1s ... +8s
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1S', retention: { maxAge: 'PT5S' } } });
    job.now += 1000; // +9s: those completed before +4s are older than 5 s
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([3, 2, 1]);
  });
  it('R53 the newest completed periodic savepoint is never removed by retention, maxAge included, as the operator keeps its last complete snapshot (SnapshotObserver.getFlinkStateSnapshotsToCleanUp)', () => {
    const job = new Job().register();
    job.run({
      type: 'SetSavepointSchedule',
      schedule: { every: 'PT1S', retention: { maxCount: 1, maxAge: 'PT1S' } },
    });
    periodicSavepoints(job, 3);
    const manual = job.complete('SAVEPOINT'); // the job's latest completed snapshot is not a periodic one
    job.now += 60_000;
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([]);
    expect(job.snapshot(3).status).toBe('COMPLETED');
    expect(job.snapshot(manual).status).toBe('COMPLETED');
    // Nor once the job has terminated (R34 no longer protects anything then).
    job.run({ type: 'ChangeJobStatus', status: 'FINISHED' });
    job.now += 60_000;
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([]);
    expect(job.snapshot(3).status).toBe('COMPLETED');
  });
  it('R53 maxCount is at least 1 (the operator’s is Math.max(1, ...): SnapshotObserver.getMaxCountForSnapshotType)', () => {
    const parsed = SavepointSchedule.safeParse({ every: 'PT1S', retention: { maxCount: 0 } });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => i.path)).toEqual([['retention', 'maxCount']]);
    expect(SavepointSchedule.safeParse({ every: 'PT1S', retention: { maxCount: 1 } }).success).toBe(true);
  });
  it('R34, R53 a log written with maxCount 0 replays, and keeps the newest completed periodic savepoint as 1 does', () => {
    const schedule = { every: 'PT1S', retention: { maxCount: 0 } };
    expect(RecordedSavepointSchedule.parse(schedule)).toEqual(schedule);
    const recorded: Event = {
      type: 'SavepointScheduleSet',
      jobId: JOB,
      occurredAt: new Date(T0).toISOString(),
      schedule,
    };
    expect(Event.parse(recorded)).toEqual(recorded);
    const job = new Job().register();
    job.state = fold(job.state, [recorded]);
    periodicSavepoints(job, 3);
    expect([1, 2, 3].map((id) => job.snapshot(id).status)).toEqual(['DISCARDING', 'DISCARDING', 'COMPLETED']);
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([]);
  });
  it('R53, R62 a periodic savepoint the job restored from is no longer the schedule’s: its retention keeps it', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1S', retention: { maxCount: 1 } } });
    periodicSavepoints(job, 1);
    job.run({ type: 'RestoreSnapshot', snapshotId: 1, claimMode: 'NO_CLAIM', allowNonRestoredState: false });
    periodicSavepoints(job, 2);
    expect([1, 2, 3].map((id) => job.snapshot(id).status)).toEqual(['COMPLETED', 'DISCARDING', 'COMPLETED']);
    job.now += 60_000;
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([]);
    expect(job.snapshot(1).status).toBe('COMPLETED');
  });

  it('R53 retention applies as a periodic savepoint completes, not as a periodic checkpoint or a manual savepoint does', () => {
    const job = new Job().register({ numRetained: 5 });
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1S', retention: { maxAge: 'PT5S' } } });
    periodicSavepoints(job, 3); // completed at +1s, +2s, +3s
    job.now += 60_000; // the two older ones are past maxAge (the newest is never removed)
    const discardsWhile = (complete: () => number) => {
      const before = job.log.length;
      const id = complete();
      expect(job.snapshot(id).status).toBe('COMPLETED');
      return job.log.slice(before).filter((e) => e.type === 'SnapshotDiscardRequested');
    };
    expect(discardsWhile(() => job.complete('CHECKPOINT', 'PERIODIC'))).toEqual([]);
    expect(discardsWhile(() => job.complete('SAVEPOINT', 'MANUAL'))).toEqual([]);
    expect(completedPeriodic(job)).toEqual([1, 2, 3]);
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([2, 1]);
  });
  it('R53 periodic checkpoints are not the schedule’s: retention leaves them to numRetained', () => {
    const job = new Job().register({ numRetained: 5 });
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1S', retention: { maxCount: 1 } } });
    const checkpoints = [job.complete('CHECKPOINT', 'PERIODIC'), job.complete('CHECKPOINT', 'PERIODIC')];
    periodicSavepoints(job, 1);
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([]);
    expect(checkpoints.map((id) => job.snapshot(id).status)).toEqual(['COMPLETED', 'COMPLETED']);
  });
  it('R35, R53 never discards a persisted checkpoint or a manual savepoint, whatever the policy', () => {
    const job = new Job().register({ numRetained: 5 });
    job.run({
      type: 'SetSavepointSchedule',
      schedule: { every: 'PT1S', retention: { maxCount: 1, maxAge: 'PT1S' } },
    });
    const cp = job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: cp });
    job.complete('SAVEPOINT');
    job.now += 60_000;
    periodicSavepoints(job, 1);
    job.now += 60_000;
    expect(job.run({ type: 'ApplyRetention' }).reply.discarded).toEqual([]);
  });
});

describe('rules of docs/domain.md that had no test of their own', () => {
  it('R12 a rejected trigger reserves neither a snapshot id nor its triggerId: the same triggerId may be tried again', () => {
    const job = new Job().register({ maxConcurrent: 1 });
    job.trigger(); // snapshot 1, pending
    const cmd = {
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: 'retry-me',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    } as const;
    expect(job.run(cmd).reply).toMatchObject({ accepted: false, reason: 'TOO_MANY_CHECKPOINT_REQUESTS' });
    expect(job.state.nextSnapshotId).toBe(2);
    expect(job.state.triggers.has('retry-me')).toBe(false);
    for (const task of job.state.tasks) job.ack(1, task);
    const again = job.run(cmd);
    expect(again.reply).toEqual({
      accepted: true,
      snapshotId: 2,
      triggerId: 'retry-me',
      status: 'PENDING',
      duplicate: false,
    });
    expect(again.events.map((e) => e.type)).toEqual(['SnapshotTriggered']);
  });

  it('R23 completing a savepoint fails no pending snapshot (CheckpointCoordinator.cleanupAfterCompletedCheckpoint)', () => {
    const job = new Job().register({ maxConcurrent: 10 });
    const checkpoint = job.trigger('CHECKPOINT');
    const savepoint = job.trigger('SAVEPOINT');
    if (!checkpoint.accepted || !savepoint.accepted) throw new Error('rejected');
    job.ack(savepoint.snapshotId, 'a');
    job.ack(savepoint.snapshotId, 'b');
    expect(job.snapshot(savepoint.snapshotId).status).toBe('COMPLETED');
    expect(job.snapshot(checkpoint.snapshotId).status).toBe('PENDING');
    expect(job.log.some((e) => e.type === 'SnapshotFailed')).toBe(false);
  });

  it('R29 a completed savepoint resets the consecutive failures and starts the minimum pause (CheckpointFailureManager.handleCheckpointSuccess)', () => {
    const job = new Job().register({ tolerableFailures: 5, minPauseMs: 1000 });
    const declined = job.trigger();
    if (!declined.accepted) throw new Error('rejected');
    job.run({ type: 'DeclineTask', snapshotId: declined.snapshotId, taskId: 'a' });
    expect(job.state.consecutiveFailures).toBe(1);
    job.complete('SAVEPOINT');
    expect(job.state.consecutiveFailures).toBe(0);
    job.now += 999;
    expect(job.trigger('CHECKPOINT', 'PERIODIC')).toMatchObject({
      accepted: false,
      reason: 'MINIMUM_TIME_BETWEEN_CHECKPOINTS',
    });
  });
});
