import {
  COUNTED_FAILURES,
  Command,
  Event,
  STATE_CODEC_VERSION,
  TaskFailureReason,
  decodeState,
  encodeState,
  fold,
  initialState,
  jobSummaryView,
  snapshotView,
  type JobState,
} from '../src';
import { JOB, Job, T0 } from './harness';

/**
 * Issue 16, item 7: failures are counted as Flink's CheckpointFailureManager counts them
 * (flink-runtime, org.apache.flink.runtime.checkpoint): handleCheckpointException,
 * handleJobLevelCheckpointException, handleTaskLevelCheckpointException, checkFailureAgainstCounter,
 * checkFailureCounter, handleCheckpointSuccess; the task's reason as CheckpointCoordinator.receiveDeclineMessage
 * takes it.
 */

const pending = (job: Job, kind: 'CHECKPOINT' | 'SAVEPOINT' = 'CHECKPOINT'): number => {
  const reply = job.trigger(kind);
  if (!reply.accepted) throw new Error(`trigger rejected: ${reply.reason}`);
  return reply.snapshotId;
};
const decline = (job: Job, snapshotId: number, failureReason?: TaskFailureReason, taskId = 'a') =>
  job.run({
    type: 'DeclineTask',
    snapshotId,
    taskId,
    ...(failureReason !== undefined ? { failureReason } : {}),
  }).events;
const exceeded = (events: Event[]) => events.filter((e) => e.type === 'TolerableFailuresExceeded');
const completeId = (job: Job, id: number) => {
  for (const task of job.state.tasks) job.ack(id, task);
  expect(job.snapshot(id).status).toBe('COMPLETED');
};

describe('R24 the reason a task declines with (CheckpointCoordinator.receiveDeclineMessage)', () => {
  it('R24 a decline records the Flink CheckpointFailureReason the task gave, its task and its message', () => {
    const job = new Job().register({ tolerableFailures: 10 });
    const id = pending(job);
    const { events } = job.run({
      type: 'DeclineTask',
      snapshotId: id,
      taskId: 'b',
      reason: 'the barrier came before the task was ready',
      failureReason: 'CHECKPOINT_DECLINED_TASK_NOT_READY',
    });
    expect(events[0]).toEqual({
      type: 'SnapshotFailed',
      jobId: JOB,
      occurredAt: new Date(T0).toISOString(),
      snapshotId: id,
      reason: 'CHECKPOINT_DECLINED_TASK_NOT_READY',
      taskId: 'b',
      message: 'the barrier came before the task was ready',
    });
    expect(snapshotView(job.snapshot(id))).toMatchObject({
      status: 'FAILED',
      failureReason: 'CHECKPOINT_DECLINED_TASK_NOT_READY',
      failureMessage: 'the barrier came before the task was ready',
      declinedBy: 'b',
    });
  });

  it('R24 a decline without a failureReason is CHECKPOINT_DECLINED', () => {
    const job = new Job().register({ tolerableFailures: 10 });
    const id = pending(job);
    expect(decline(job, id)[0]).toMatchObject({ type: 'SnapshotFailed', reason: 'CHECKPOINT_DECLINED' });
  });

  it('R24 failureReason takes the task-side names of CheckpointFailureReason only', () => {
    const base = { type: 'DeclineTask', jobId: JOB, snapshotId: 1, taskId: 'a' };
    for (const failureReason of TaskFailureReason.options) {
      expect(Command.safeParse({ ...base, failureReason }).success).toBe(true);
    }
    for (const failureReason of ['CHECKPOINT_EXPIRED', 'CHECKPOINT_SUBSUMED', 'declined', '']) {
      const parsed = Command.safeParse({ ...base, failureReason });
      expect(parsed.success).toBe(false);
      expect(parsed.error!.issues[0]!.path).toEqual(['failureReason']);
    }
  });
});

describe('R27 the reasons Flink counts (CheckpointFailureManager.checkFailureCounter)', () => {
  it('R27 counts exactly IO_EXCEPTION, CHECKPOINT_ASYNC_EXCEPTION, CHECKPOINT_DECLINED and CHECKPOINT_EXPIRED', () => {
    expect([...COUNTED_FAILURES].sort()).toEqual(
      ['CHECKPOINT_ASYNC_EXCEPTION', 'CHECKPOINT_DECLINED', 'CHECKPOINT_EXPIRED', 'IO_EXCEPTION'].sort(),
    );
  });

  it.each(TaskFailureReason.options)(
    'R27 a checkpoint declined with %s counts only if checkFailureCounter increments for it',
    (reason) => {
      const job = new Job().register({ tolerableFailures: 10 });
      decline(job, pending(job), reason);
      const counted = ['IO_EXCEPTION', 'CHECKPOINT_ASYNC_EXCEPTION', 'CHECKPOINT_DECLINED'].includes(reason);
      expect(job.state.consecutiveFailures).toBe(counted ? 1 : 0);
    },
  );

  it('R27 FINALIZE_CHECKPOINT_FAILURE no longer counts: current Flink ignores it (checkFailureCounter)', () => {
    const job = new Job().register({ tolerableFailures: 0 });
    const events = decline(job, pending(job), 'FINALIZE_CHECKPOINT_FAILURE');
    expect(events[0]).toMatchObject({ reason: 'FINALIZE_CHECKPOINT_FAILURE' });
    expect(exceeded(events)).toEqual([]);
    expect(job.state.consecutiveFailures).toBe(0);
  });

  it('R27 an expired checkpoint counts (CHECKPOINT_EXPIRED); subsumed and suspended ones do not', () => {
    const job = new Job().register({ tolerableFailures: 10, timeoutMs: 1000 });
    pending(job);
    job.now += 1000;
    job.run({ type: 'ExpireOverdue' });
    expect(job.state.consecutiveFailures).toBe(1);
    const subsumed = pending(job);
    completeId(job, pending(job));
    expect(job.snapshot(subsumed).failureReason).toBe('CHECKPOINT_SUBSUMED');
    const suspended = pending(job);
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    expect(job.snapshot(suspended).failureReason).toBe('CHECKPOINT_COORDINATOR_SUSPEND');
    expect(job.state.consecutiveFailures).toBe(0);
  });
});

describe('R28 a count above a lowered tolerableFailures (checkFailureAgainstCounter runs only for a counted failure)', () => {
  it('R28 a failure that is not counted does not cross a tolerance lowered below the count; the next counted one does', () => {
    const job = new Job().register({ tolerableFailures: 5 });
    for (let i = 0; i < 3; i += 1) decline(job, pending(job));
    expect(job.state.consecutiveFailures).toBe(3);
    job.register({ tolerableFailures: 1 }); // the count stays 3, above the new tolerance
    expect(job.state.consecutiveFailures).toBe(3);
    const uncounted = decline(job, pending(job), 'CHECKPOINT_DECLINED_TASK_NOT_READY');
    expect(job.types(uncounted)).toEqual(['SnapshotFailed', 'SnapshotDiscardRequested']);
    expect(job.state.consecutiveFailures).toBe(3);
    const counted = decline(job, pending(job));
    expect(exceeded(counted)).toEqual([
      expect.objectContaining({ consecutiveFailures: 4, tolerableFailures: 1 }),
    ]);
    expect(job.state.consecutiveFailures).toBe(0);
  });
});

describe('R59 task-level and job-level failures (CheckpointFailureManager.handleCheckpointException)', () => {
  it('R59 a task’s decline of a (non-synchronous) savepoint counts like a checkpoint’s (handleTaskLevelCheckpointException)', () => {
    const job = new Job().register({ tolerableFailures: 1 });
    expect(decline(job, pending(job, 'SAVEPOINT'), 'CHECKPOINT_ASYNC_EXCEPTION')).not.toContainEqual(
      expect.objectContaining({ type: 'TolerableFailuresExceeded' }),
    );
    expect(job.state.consecutiveFailures).toBe(1);
    const events = decline(job, pending(job, 'SAVEPOINT'));
    expect(exceeded(events)).toHaveLength(1);
    // An uncounted reason of a savepoint is ignored as a checkpoint's is (checkFailureCounter).
    decline(job, pending(job, 'SAVEPOINT'), 'CHECKPOINT_DECLINED_TASK_CLOSING');
    expect(job.state.consecutiveFailures).toBe(0);
  });

  it('R59 a decline for a pre-flight reason (IO_EXCEPTION) is job-level: it counts for a checkpoint, not for a savepoint (isJobManagerFailure: `isPreFlightFailure`)', () => {
    const job = new Job().register({ tolerableFailures: 5 });
    decline(job, pending(job, 'SAVEPOINT'), 'IO_EXCEPTION');
    expect(job.state.consecutiveFailures).toBe(0);
    decline(job, pending(job), 'IO_EXCEPTION');
    expect(job.state.consecutiveFailures).toBe(1);
  });

  it('R59 a job-level failure of a savepoint never counts: expiry, suspension (handleJobLevelCheckpointException: `!isSavepoint()`)', () => {
    const job = new Job().register({ tolerableFailures: 0, timeoutMs: 1000 });
    pending(job, 'SAVEPOINT');
    job.now += 1000;
    const expired = job.run({ type: 'ExpireOverdue' }).events;
    expect(expired[0]).toMatchObject({ type: 'SnapshotFailed', reason: 'CHECKPOINT_EXPIRED' });
    expect(expired[0]).not.toHaveProperty('taskId');
    pending(job, 'SAVEPOINT');
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    expect(job.state.consecutiveFailures).toBe(0);
    expect(exceeded(job.log)).toEqual([]);
  });

  it('R59, R21 an acknowledgement naming state being deleted is a task-level decline: it counts for a savepoint too', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1, tolerableFailures: 0 });
    const first = pending(job);
    job.ack(first, 'a'); // reports /data/chk/<job>/chk-1/a
    job.complete(); // chk 1 is subsumed; its discard is deleting its files
    const savepoint = pending(job, 'SAVEPOINT');
    const { events } = job.run({
      type: 'AcknowledgeTask',
      snapshotId: savepoint,
      taskId: 'a',
      stateSize: 1,
      stateHandles: [{ path: `/data/chk/${JOB}/chk-${first}/a`, sizeBytes: 1 }],
    });
    expect(events[0]).toMatchObject({ type: 'SnapshotFailed', reason: 'CHECKPOINT_DECLINED', taskId: 'a' });
    expect(exceeded(events)).toHaveLength(1);
  });
});

describe('R28 crossing the threshold (CheckpointFailureManager.checkFailureAgainstCounter)', () => {
  it('R28 the failure that takes the count beyond tolerableFailures writes one event and clears the count (clearCount)', () => {
    const job = new Job().register({ tolerableFailures: 1 });
    expect(exceeded(decline(job, pending(job)))).toEqual([]);
    const crossing = decline(job, pending(job));
    expect(crossing.map((e) => e.type)).toEqual([
      'SnapshotFailed',
      'SnapshotDiscardRequested',
      'TolerableFailuresExceeded',
    ]);
    expect(crossing[2]).toMatchObject({ snapshotId: 2, consecutiveFailures: 2, tolerableFailures: 1 });
    expect(job.state.consecutiveFailures).toBe(0);
    expect(job.state.countedFailures.size).toBe(0);
    // The next tolerableFailures + 1 counted failures cross it again.
    expect(exceeded(decline(job, pending(job)))).toEqual([]);
    expect(exceeded(decline(job, pending(job)))).toMatchObject([{ snapshotId: 4, consecutiveFailures: 2 }]);
    expect(jobSummaryView(job.state).consecutiveFailures).toBe(0);
  });

  it('R28 with tolerableFailures 0 every counted failure crosses it', () => {
    const job = new Job().register({ tolerableFailures: 0 });
    for (let i = 0; i < 3; i += 1) expect(exceeded(decline(job, pending(job)))).toHaveLength(1);
    expect(exceeded(job.log)).toHaveLength(3);
  });

  it('R28 a snapshot is counted once: checkFailureCounter’s countedCheckpointIds, in the fold too', () => {
    const job = new Job().register({ tolerableFailures: 5 });
    const id = pending(job);
    decline(job, id, 'IO_EXCEPTION', 'a');
    // A second task's decline of the failed snapshot is refused (R25) and counts nothing.
    expect(job.reject({ type: 'DeclineTask', snapshotId: id, taskId: 'b' })).toMatchObject({
      code: 'CONFLICT',
    });
    expect(job.state.consecutiveFailures).toBe(1);
    // A log that records the failure twice counts it once.
    const failed = job.log.find((e) => e.type === 'SnapshotFailed')!;
    const twice = fold(initialState(JOB), [...job.log, { ...failed, taskId: 'b' }]);
    expect(twice.consecutiveFailures).toBe(1);
    expect([...twice.countedFailures]).toEqual([id]);
  });

  it('R28 a trigger rejected before it starts neither counts nor clears the count (a pre-flight failure: checkFailureCounter ignores it, and only a crossing clears)', () => {
    const job = new Job().register({ tolerableFailures: 5, maxConcurrent: 1 });
    const declined = pending(job);
    decline(job, declined);
    pending(job);
    expect(job.trigger()).toMatchObject({ accepted: false, reason: 'TOO_MANY_CHECKPOINT_REQUESTS' });
    expect(job.log.at(-1)).toMatchObject({ type: 'SnapshotTriggerRejected' });
    expect(job.state.consecutiveFailures).toBe(1);
    expect([...job.state.countedFailures]).toEqual([declined]);
    // The fold of the log agrees: the rejection event changes no count.
    const replayed = fold(initialState(JOB), job.log);
    expect(replayed.consecutiveFailures).toBe(1);
    expect([...replayed.countedFailures]).toEqual([declined]);
  });
});

describe('R29 completions (CheckpointFailureManager.handleCheckpointSuccess)', () => {
  it('R29 a completion newer than the last success resets the count and becomes the last success', () => {
    const job = new Job().register({ tolerableFailures: 5 });
    decline(job, pending(job));
    decline(job, pending(job));
    expect(job.state).toMatchObject({ consecutiveFailures: 2, lastSucceededSnapshotId: 0 });
    const id = job.complete('SAVEPOINT');
    expect(job.state).toMatchObject({ consecutiveFailures: 0, lastSucceededSnapshotId: id });
    expect(job.state.countedFailures.size).toBe(0);
  });

  it('R29 a completion older than the last success resets nothing (`checkpointId > lastSucceededCheckpointId`)', () => {
    const job = new Job().register({ tolerableFailures: 5 });
    const savepoint = pending(job, 'SAVEPOINT'); // 1
    completeId(job, pending(job)); // 2
    decline(job, pending(job)); // 3
    expect(job.state).toMatchObject({ consecutiveFailures: 1, lastSucceededSnapshotId: 2 });
    completeId(job, savepoint);
    expect(job.state).toMatchObject({ consecutiveFailures: 1, lastSucceededSnapshotId: 2 });
  });
});

describe('R60 failures older than the last success (CheckpointFailureManager.checkFailureAgainstCounter)', () => {
  it('R60 a task’s decline of a savepoint older than the last completed snapshot is ignored', () => {
    const job = new Job().register({ tolerableFailures: 0 });
    const savepoint = pending(job, 'SAVEPOINT'); // 1
    completeId(job, pending(job)); // 2
    const events = decline(job, savepoint, 'CHECKPOINT_ASYNC_EXCEPTION');
    expect(events[0]).toMatchObject({ type: 'SnapshotFailed', reason: 'CHECKPOINT_ASYNC_EXCEPTION' });
    expect(exceeded(events)).toEqual([]);
    expect(job.state.consecutiveFailures).toBe(0);
  });

  it('R60 a checkpoint that expires after a newer savepoint completed is ignored; a newer one counts', () => {
    const job = new Job().register({ tolerableFailures: 0, timeoutMs: 1000 });
    const checkpoint = pending(job); // 1
    job.now += 500;
    completeId(job, pending(job, 'SAVEPOINT')); // 2: completing a savepoint subsumes nothing (R23)
    job.now += 500;
    const expired = job.run({ type: 'ExpireOverdue' });
    expect(expired.reply).toEqual({ expired: [checkpoint] });
    expect(exceeded(expired.events)).toEqual([]);
    expect(job.state.consecutiveFailures).toBe(0);
    expect(exceeded(decline(job, pending(job)))).toHaveLength(1);
  });
});

describe('failure counting and the aggregate snapshot (codec)', () => {
  it('R28, R29 the codec carries the counted ids and the last success', () => {
    const job = new Job().register({ tolerableFailures: 5 });
    completeId(job, pending(job));
    decline(job, pending(job));
    const encoded = JSON.parse(JSON.stringify(encodeState(job.state)));
    expect(encoded).toMatchObject({ codecVersion: STATE_CODEC_VERSION, countedFailures: [2] });
    const decoded: JobState = decodeState(encoded)!;
    expect(decoded).toMatchObject({ consecutiveFailures: 1, lastSucceededSnapshotId: 1 });
    expect([...decoded.countedFailures]).toEqual([2]);
    // Aggregate snapshots of the codec before this change are not read: the log is replayed instead.
    expect(STATE_CODEC_VERSION).toBeGreaterThanOrEqual(9);
    expect(decodeState({ ...encoded, codecVersion: 8 })).toBeNull();
  });
});

describe('R28, R59, R60 a log written before failure counting followed Flink', () => {
  // As snapcat wrote it before issue 16 item 7, with tolerableFailures 1: a savepoint declined by a task
  // (not counted then), two declined checkpoints (the second crossed the threshold at 2), a third declined
  // checkpoint (counted as 3 then, the old count never cleared), and a savepoint triggered before it that
  // completes after it failed (the old fold reset on it).
  const at = (s: number) => new Date(T0 + s * 1000).toISOString();
  const props = (forced: boolean) => ({
    forced,
    discardSubsumed: !forced,
    discardFinished: !forced,
    discardCancelled: !forced,
    discardFailed: !forced,
    discardSuspended: !forced,
  });
  const triggered = (snapshotId: number, kind: 'CHECKPOINT' | 'SAVEPOINT', s: number) => ({
    type: 'SnapshotTriggered',
    jobId: JOB,
    occurredAt: at(s),
    snapshotId,
    kind,
    triggerType: 'MANUAL',
    triggerId: `t-${snapshotId}`,
    properties: props(kind === 'SAVEPOINT'),
    formatType: 'CANONICAL',
    tasks: ['a'],
    deadline: at(s + 60),
    externalPath:
      kind === 'CHECKPOINT'
        ? `/data/chk/${JOB}/chk-${snapshotId}`
        : `/data/sp/savepoint-012345-${snapshotId}`,
  });
  const failed = (snapshotId: number, s: number, location = `/data/chk/${JOB}/chk-${snapshotId}`) => [
    {
      type: 'SnapshotFailed',
      jobId: JOB,
      occurredAt: at(s),
      snapshotId,
      reason: 'CHECKPOINT_DECLINED',
      taskId: 'a',
      message: 'no',
    },
    {
      type: 'SnapshotDiscardRequested',
      jobId: JOB,
      occurredAt: at(s),
      snapshotId,
      cause: 'ABORTED',
      locations: [location],
      stateHandles: [],
      kept: [],
    },
  ];
  const raw: unknown[] = [
    {
      type: 'JobRegistered',
      jobId: JOB,
      occurredAt: at(0),
      name: 'job',
      tasks: ['a'],
      status: 'RUNNING',
      checkpointing: {
        numRetained: 1,
        timeoutMs: 60_000,
        maxConcurrent: 10,
        minPauseMs: 0,
        tolerableFailures: 1,
        retention: 'NEVER_RETAIN_AFTER_TERMINATION',
      },
      storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
    },
    triggered(1, 'SAVEPOINT', 1),
    ...failed(1, 2, '/data/sp/savepoint-012345-1'),
    triggered(2, 'CHECKPOINT', 3),
    ...failed(2, 4),
    triggered(3, 'CHECKPOINT', 5),
    ...failed(3, 6),
    {
      type: 'TolerableFailuresExceeded',
      jobId: JOB,
      occurredAt: at(6),
      snapshotId: 3,
      consecutiveFailures: 2,
      tolerableFailures: 1,
    },
    triggered(4, 'SAVEPOINT', 7),
    triggered(5, 'CHECKPOINT', 8),
    ...failed(5, 9),
    {
      type: 'TaskAcknowledged',
      jobId: JOB,
      occurredAt: at(10),
      snapshotId: 4,
      taskId: 'a',
      stateSize: 5,
      stateHandles: [],
    },
    {
      type: 'SnapshotCompleted',
      jobId: JOB,
      occurredAt: at(10),
      snapshotId: 4,
      kind: 'SAVEPOINT',
      stateSize: 5,
      externalPath: '/data/sp/savepoint-012345-4',
    },
  ];

  it('R28, R59, R60 parses as it is and folds to the same snapshots; only the derived count follows the new rules', () => {
    const log = raw.map((e) => Event.parse(e));
    const state = fold(initialState(JOB), log);
    expect(
      [...state.snapshots.values()].map((s) => [s.snapshotId, s.status, s.failureReason ?? null]),
    ).toEqual([
      [1, 'FAILED', 'CHECKPOINT_DECLINED'],
      [2, 'FAILED', 'CHECKPOINT_DECLINED'],
      [3, 'FAILED', 'CHECKPOINT_DECLINED'],
      [4, 'COMPLETED', null],
      [5, 'FAILED', 'CHECKPOINT_DECLINED'],
    ]);
    expect(state.counts).toEqual({ completed: 1, failed: 4, discarded: 0, compacted: 0 });
    // Savepoint 4 completed after checkpoint 5 failed: 4 is newer than any success before, so it resets the
    // count (handleCheckpointSuccess compares with the last success, not with the failures).
    expect(state).toMatchObject({ lastSucceededSnapshotId: 4, consecutiveFailures: 0 });
    // Up to the recorded crossing the old and new counts agree...
    const crossed = log.findIndex((e) => e.type === 'TolerableFailuresExceeded');
    // ...except that the task-level decline of savepoint 1 counts now (R59): the old fold showed 2 here.
    expect(fold(initialState(JOB), log.slice(0, crossed)).consecutiveFailures).toBe(3);
    // The recorded crossing clears the count (R28).
    expect(fold(initialState(JOB), log.slice(0, crossed + 1)).consecutiveFailures).toBe(0);
  });
});
