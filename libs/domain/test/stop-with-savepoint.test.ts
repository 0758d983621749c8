import { fold, initialState, snapshotView, type CommandOf } from '../src';
import { JOB, Job, T0 } from './harness';

type Trigger = Omit<CommandOf<'TriggerSnapshot'>, 'jobId'>;
const stop = (drain: boolean, triggerId = `stop-${drain}`): Trigger => ({
  type: 'TriggerSnapshot',
  kind: 'SAVEPOINT',
  triggerId,
  triggerType: 'MANUAL',
  formatType: 'CANONICAL',
  terminate: { drain },
});

/** The id of an accepted trigger. */
function idOf(reply: ReturnType<Job['trigger']>): number {
  if (!reply.accepted) throw new Error(`trigger rejected: ${reply.reason}`);
  return reply.snapshotId;
}

describe('stop-with-savepoint (R65, R66; SchedulerBase.stopWithSavepoint, SavepointType)', () => {
  it('R65 is a savepoint whose SavepointType is TERMINATE when drained, SUSPEND otherwise; a checkpoint cannot stop', () => {
    const job = new Job().register();
    const drained = job.run(stop(true)).reply;
    const plain = job.run(stop(false)).reply;
    expect(drained).toMatchObject({ accepted: true });
    expect(snapshotView(job.snapshot(1)).savepointType).toBe('TERMINATE');
    expect(snapshotView(job.snapshot(2)).savepointType).toBe('SUSPEND');
    expect(plain).toMatchObject({ accepted: true });
    const other = new Job().register();
    other.complete('SAVEPOINT');
    other.complete();
    expect(snapshotView(other.snapshot(1)).savepointType).toBe('SAVEPOINT');
    expect(snapshotView(other.snapshot(2)).savepointType).toBeNull();
    expect(other.reject({ ...stop(true), kind: 'CHECKPOINT' })).toMatchObject({
      code: 'INVALID',
      field: 'terminate',
      rule: 'stop-with-savepoint',
      message: 'only a savepoint stops the job: stop-with-savepoint (R65)',
    });
  });

  it('R65 triggering one first aborts every pending snapshot with CHECKPOINT_COORDINATOR_SUSPEND (CheckpointCoordinator.stopCheckpointScheduler), counting none', () => {
    const job = new Job().register({ tolerableFailures: 0 });
    const checkpoint = idOf(job.trigger());
    const savepoint = idOf(job.trigger('SAVEPOINT'));
    const { events } = job.run(stop(false));
    expect(events.map((e) => e.type)).toEqual([
      'SnapshotFailed',
      'SnapshotDiscardRequested',
      'SnapshotFailed',
      'SnapshotDiscardRequested',
      'SnapshotTriggered',
    ]);
    expect(job.snapshot(checkpoint).failureReason).toBe('CHECKPOINT_COORDINATOR_SUSPEND');
    expect(job.snapshot(savepoint).failureReason).toBe('CHECKPOINT_COORDINATOR_SUSPEND');
    expect(job.state.consecutiveFailures).toBe(0);
  });

  it('R65 while one is pending, periodic checkpoints are refused and schedule slots skipped with PERIODIC_SCHEDULER_SHUTDOWN (CheckpointCoordinator.preCheckGlobalState); manual triggers are not', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1M' } });
    job.run(stop(true));
    expect(job.trigger('CHECKPOINT', 'PERIODIC')).toMatchObject({
      accepted: false,
      reason: 'PERIODIC_SCHEDULER_SHUTDOWN',
    });
    job.now += 30_000; // the stop is still pending (60 s timeout)
    const slot = T0 + 60_000;
    expect(job.run({ type: 'FirePeriodicSavepoint', slot }).reply).toEqual({
      fired: false,
      reason: 'PERIODIC_SCHEDULER_SHUTDOWN',
    });
    expect(job.log.at(-1)).toMatchObject({
      type: 'PeriodicSavepointSkipped',
      reason: 'PERIODIC_SCHEDULER_SHUTDOWN',
    });
    expect(job.trigger()).toMatchObject({ accepted: true });
  });

  it('R66 once it completes the job is FINISHED, and its retention applies; the stop savepoint is kept', () => {
    const job = new Job().register({ numRetained: 2 });
    const checkpoint = job.complete();
    const { snapshotId } = job.run(stop(true)).reply as { snapshotId: number };
    job.ack(snapshotId, 'a');
    expect(job.state.status).toBe('RUNNING');
    const { events } = job.run({
      type: 'AcknowledgeTask',
      snapshotId,
      taskId: 'b',
      stateSize: 1,
      stateHandles: [],
    });
    expect(events.map((e) => e.type)).toEqual([
      'TaskAcknowledged',
      'SnapshotCompleted',
      'JobStatusChanged',
      'SnapshotDiscardRequested',
    ]);
    expect(job.state.status).toBe('FINISHED');
    expect(job.snapshot(checkpoint).discard!.cause).toBe('JOB_FINISHED');
    expect(job.snapshot(snapshotId).status).toBe('COMPLETED');
    expect(fold(initialState(JOB), job.log)).toEqual(job.state);
  });

  it('R66 when it fails the job goes on and the periodic scheduler is back; a task’s decline of it is not counted (CheckpointFailureManager.handleTaskLevelCheckpointException: the job fails instead)', () => {
    const job = new Job().register({ tolerableFailures: 0, timeoutMs: 1000 });
    const declined = (job.run(stop(false)).reply as { snapshotId: number }).snapshotId;
    job.run({ type: 'DeclineTask', snapshotId: declined, taskId: 'a' });
    expect(job.state).toMatchObject({ status: 'RUNNING', consecutiveFailures: 0 });
    expect(job.log.map((e) => e.type)).not.toContain('TolerableFailuresExceeded');
    expect(job.trigger('CHECKPOINT', 'PERIODIC')).toMatchObject({ accepted: true });
    job.run(stop(true, 'stop-2'));
    job.now += 1000;
    expect(job.run({ type: 'ExpireOverdue' }).reply.expired).toHaveLength(1);
    expect(job.state.status).toBe('RUNNING');
    expect(job.trigger('CHECKPOINT', 'PERIODIC')).toMatchObject({ accepted: true });
  });
});
