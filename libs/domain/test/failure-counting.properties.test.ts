import fc from 'fast-check';
import { TaskFailureReason, decodeState, encodeState, fold, initialState, type Event } from '../src';
import { JOB, Job } from './harness';
import { propertyRuns } from './property-runs';

/**
 * A direct model of Flink's CheckpointFailureManager (flink-runtime, org.apache.flink.runtime.checkpoint,
 * apache/flink master), written from its source and not from snapcat's: handleCheckpointException,
 * isJobManagerFailure, handleJobLevelCheckpointException, handleTaskLevelCheckpointException,
 * checkFailureAgainstCounter, checkFailureCounter, handleCheckpointSuccess, clearCount. `failJob` for
 * exceeding the threshold is what snapcat records as TolerableFailuresExceeded (R28).
 */
const UNKNOWN_CHECKPOINT_ID = -1;

/** CheckpointFailureReason constants constructed with `isPreFlight` true. */
const PRE_FLIGHT = new Set([
  'PERIODIC_SCHEDULER_SHUTDOWN',
  'TOO_MANY_CHECKPOINT_REQUESTS',
  'MINIMUM_TIME_BETWEEN_CHECKPOINTS',
  'NOT_ALL_REQUIRED_TASKS_RUNNING',
  'IO_EXCEPTION',
  'BLOCKING_OUTPUT_EXIST',
]);

/** checkFailureCounter's switch: the `// ignore` cases, and the counted ones. */
const IGNORED = new Set([
  'PERIODIC_SCHEDULER_SHUTDOWN',
  'TOO_MANY_CONCURRENT_CHECKPOINTS',
  'TOO_MANY_CHECKPOINT_REQUESTS',
  'MINIMUM_TIME_BETWEEN_CHECKPOINTS',
  'NOT_ALL_REQUIRED_TASKS_RUNNING',
  'CHECKPOINT_SUBSUMED',
  'CHECKPOINT_COORDINATOR_SUSPEND',
  'CHECKPOINT_COORDINATOR_SHUTDOWN',
  'JOB_FAILURE',
  'JOB_FAILOVER_REGION',
  'CHECKPOINT_DECLINED_TASK_NOT_READY',
  'CHECKPOINT_DECLINED_TASK_CLOSING',
  'CHECKPOINT_DECLINED_TASK_NOT_CHECKPOINTING',
  'CHECKPOINT_DECLINED_ALIGNMENT_LIMIT_EXCEEDED',
  'CHECKPOINT_DECLINED_ON_CANCELLATION_BARRIER',
  'CHECKPOINT_DECLINED_SUBSUMED',
  'CHECKPOINT_DECLINED_INPUT_END_OF_STREAM',
  'TASK_FAILURE',
  'TASK_CHECKPOINT_FAILURE',
  'UNKNOWN_TASK_CHECKPOINT_NOTIFICATION_FAILURE',
  'TRIGGER_CHECKPOINT_FAILURE',
  'FINALIZE_CHECKPOINT_FAILURE',
]);
const COUNTED = new Set([
  'IO_EXCEPTION',
  'CHECKPOINT_ASYNC_EXCEPTION',
  'CHECKPOINT_DECLINED',
  'CHECKPOINT_EXPIRED',
]);

interface Props {
  isSavepoint: boolean;
  isSynchronous: boolean;
}

class CheckpointFailureManagerModel {
  continuousFailureCounter = 0;
  readonly countedCheckpointIds = new Set<number>();
  lastSucceededCheckpointId = Number.MIN_SAFE_INTEGER; // Long.MIN_VALUE
  /** The counter each time `failJob(EXCEEDED_CHECKPOINT_TOLERABLE_FAILURE_MESSAGE)` was called, by id. */
  readonly exceeded: { checkpointId: number; counter: number }[] = [];

  constructor(private readonly tolerableCpFailureNumber: number) {}

  handleCheckpointException(
    checkpointId: number,
    props: Props,
    reason: string,
    executionAttemptID: string | undefined,
  ): void {
    if (PRE_FLIGHT.has(reason) || executionAttemptID === undefined) {
      // handleJobLevelCheckpointException
      if (!props.isSavepoint) this.checkFailureAgainstCounter(reason, checkpointId);
    } else if (props.isSavepoint && props.isSynchronous) {
      // handleTaskLevelCheckpointException: failureCallback.failJob(exception), not counted
    } else {
      this.checkFailureAgainstCounter(reason, checkpointId);
    }
  }

  private checkFailureAgainstCounter(reason: string, checkpointId: number): void {
    if (checkpointId === UNKNOWN_CHECKPOINT_ID || checkpointId > this.lastSucceededCheckpointId) {
      this.checkFailureCounter(reason, checkpointId);
      if (this.continuousFailureCounter > this.tolerableCpFailureNumber) {
        const counter = this.continuousFailureCounter;
        this.clearCount();
        this.exceeded.push({ checkpointId, counter });
      }
    }
  }

  private checkFailureCounter(reason: string, checkpointId: number): void {
    if (IGNORED.has(reason)) return;
    if (!COUNTED.has(reason)) throw new Error(`Unknown checkpoint failure reason : ${reason}`);
    if (checkpointId === UNKNOWN_CHECKPOINT_ID || !this.countedCheckpointIds.has(checkpointId)) {
      this.countedCheckpointIds.add(checkpointId);
      this.continuousFailureCounter += 1;
    }
  }

  handleCheckpointSuccess(checkpointId: number): void {
    if (checkpointId > this.lastSucceededCheckpointId) {
      this.lastSucceededCheckpointId = checkpointId;
      this.clearCount();
    }
  }

  private clearCount(): void {
    this.continuousFailureCounter = 0;
    this.countedCheckpointIds.clear();
  }
}

const TASKS = ['a', 'b'];
const TIMEOUT_MS = 1000;

const step = fc.oneof(
  {
    weight: 7,
    arbitrary: fc.record({ op: fc.constant('trigger' as const), savepoint: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('decline' as const),
      back: fc.nat(3),
      task: fc.constantFrom(...TASKS),
      failureReason: fc.option(fc.constantFrom(...TaskFailureReason.options), { nil: undefined }),
    }),
  },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('complete' as const), back: fc.nat(3) }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 700 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('suspend' as const) }) },
);
type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

function run(job: Job, s: Step): Event[] {
  const pending = [...job.state.pending].sort((a, b) => a - b);
  const pick = (back: number) => pending[pending.length - 1 - (back % pending.length)]!;
  switch (s.op) {
    case 'trigger':
      return job.run({
        type: 'TriggerSnapshot',
        kind: s.savepoint ? 'SAVEPOINT' : 'CHECKPOINT',
        triggerId: `t-${job.log.length}`,
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
      }).events;
    case 'decline':
      if (pending.length === 0) return [];
      return job.run({
        type: 'DeclineTask',
        snapshotId: pick(s.back),
        taskId: s.task,
        ...(s.failureReason !== undefined ? { failureReason: s.failureReason } : {}),
      }).events;
    case 'complete': {
      if (pending.length === 0) return [];
      const id = pick(s.back);
      const events: Event[] = [];
      for (const task of TASKS) {
        if (job.state.snapshots.get(id)!.status !== 'PENDING') break;
        events.push(
          ...job.run({
            type: 'AcknowledgeTask',
            snapshotId: id,
            taskId: task,
            stateSize: 1,
            stateHandles: [],
          }).events,
        );
      }
      return events;
    }
    case 'tick':
      job.now += s.ms;
      return job.run({ type: 'ExpireOverdue' }).events;
    case 'suspend':
      return [
        ...job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' }).events,
        ...job.run({ type: 'ChangeJobStatus', status: 'RUNNING' }).events,
      ];
  }
}

describe('failure counting follows a direct model of CheckpointFailureManager', () => {
  it('R27, R28, R29, R59, R60 for any history of counted and uncounted failures and completions, the count and the crossings are the model’s', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.array(step, { maxLength: 60 }), (tolerable, steps) => {
        const job = new Job().register({
          tasks: TASKS,
          tolerableFailures: tolerable,
          timeoutMs: TIMEOUT_MS,
          maxConcurrent: 4,
          numRetained: 2,
        });
        const model = new CheckpointFailureManagerModel(tolerable);
        const crossings: { checkpointId: number; counter: number }[] = [];
        for (const s of steps) {
          for (const event of run(job, s)) {
            if (event.type === 'SnapshotFailed') {
              const snapshot = job.state.snapshots.get(event.snapshotId)!;
              const props = { isSavepoint: snapshot.kind === 'SAVEPOINT', isSynchronous: false };
              model.handleCheckpointException(event.snapshotId, props, event.reason, event.taskId);
            } else if (event.type === 'SnapshotCompleted') {
              model.handleCheckpointSuccess(event.snapshotId);
            } else if (event.type === 'TolerableFailuresExceeded') {
              crossings.push({ checkpointId: event.snapshotId, counter: event.consecutiveFailures });
              expect(event.tolerableFailures).toBe(tolerable);
            }
          }
          expect(job.state.consecutiveFailures).toBe(model.continuousFailureCounter);
          expect(crossings).toEqual(model.exceeded);
        }
        expect([...job.state.countedFailures].sort((a, b) => a - b)).toEqual(
          [...model.countedCheckpointIds].sort((a, b) => a - b),
        );
        expect(job.state.lastSucceededSnapshotId).toBe(
          model.lastSucceededCheckpointId === Number.MIN_SAFE_INTEGER ? 0 : model.lastSucceededCheckpointId,
        );
        // The fold of the log, and the aggregate snapshot, agree with the decisions.
        const replayed = fold(initialState(JOB), job.log);
        const decoded = decodeState(JSON.parse(JSON.stringify(encodeState(job.state))))!;
        for (const state of [replayed, decoded]) {
          expect(state.consecutiveFailures).toBe(job.state.consecutiveFailures);
          expect(state.lastSucceededSnapshotId).toBe(job.state.lastSucceededSnapshotId);
          expect(state.countedFailures).toEqual(job.state.countedFailures);
        }
      }),
      propertyRuns(),
    );
  });
});
