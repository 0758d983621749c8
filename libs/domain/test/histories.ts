import fc from 'fast-check';
import { CommandRejected } from '../src';
import { Job } from './harness';

/**
 * Random histories of one job for the property tests: commands chosen to reach every rule of the aggregate,
 * rejected ones skipped, as a client retrying would see them.
 */
export const TASKS = ['a', 'b', 'c'];
export const MAX_CONCURRENT = 2;

/** One step of a random history, chosen to reach every rule of the aggregate. */
export const step = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('complete' as const),
      kind: fc.constantFrom('CHECKPOINT', 'SAVEPOINT'),
    }),
  },
  {
    weight: 12,
    arbitrary: fc.record({
      op: fc.constant('trigger' as const),
      kind: fc.constantFrom('CHECKPOINT', 'SAVEPOINT'),
      periodic: fc.boolean(),
    }),
  },
  {
    weight: 36,
    arbitrary: fc.record({
      op: fc.constant('ack' as const),
      back: fc.nat(1),
      task: fc.constantFrom(...TASKS, ...TASKS, ...TASKS, 'x'),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('decline' as const),
      back: fc.nat(3),
      task: fc.constantFrom(...TASKS),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('persist' as const), back: fc.nat(6) }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('discard' as const), back: fc.nat(6), force: fc.boolean() }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('discarded' as const), back: fc.nat(8) }) },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 1500 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('retain' as const), n: fc.integer({ min: 1, max: 4 }) }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('fire' as const), ms: fc.integer({ min: 0, max: 2000 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('sweep' as const), maxCount: fc.integer({ min: 1, max: 3 }) }),
  },
  {
    weight: 2,
    // `acked`: every task acknowledges at once (a stop that completes); `stopping` below draws those.
    arbitrary: fc.record({
      op: fc.constant('stop' as const),
      drain: fc.boolean(),
      acked: fc.constant<boolean>(false),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('restore' as const),
      back: fc.nat(6),
      claimMode: fc.constantFrom('CLAIM', 'NO_CLAIM', 'LEGACY'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('status' as const),
      status: fc.constantFrom('RUNNING', 'SUSPENDED', 'RUNNING', 'FINISHED', 'CANCELED', 'FAILED'),
    }),
  },
);
export type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

export const retention = fc.constantFrom(
  'NEVER_RETAIN_AFTER_TERMINATION',
  'RETAIN_ON_FAILURE',
  'RETAIN_ON_CANCELLATION',
);

export function apply(job: Job, s: Step): void {
  const recent = (back: number) => Math.max(1, job.state.nextSnapshotId - 1 - back);
  try {
    switch (s.op) {
      case 'trigger':
        job.trigger(s.kind, s.periodic ? 'PERIODIC' : 'MANUAL');
        return;
      case 'complete': {
        const r = job.trigger(s.kind);
        if (r.accepted) for (const task of TASKS) job.ack(r.snapshotId, task);
        return;
      }
      case 'ack':
        job.ack(recent(s.back), s.task);
        return;
      case 'decline':
        job.run({ type: 'DeclineTask', snapshotId: recent(s.back), taskId: s.task });
        return;
      case 'persist':
        job.run({ type: 'PersistSnapshot', snapshotId: recent(s.back) });
        return;
      case 'discard':
        job.run({ type: 'RequestDiscard', snapshotId: recent(s.back), force: s.force });
        return;
      case 'discarded':
        job.run({ type: 'RecordDiscardCompleted', snapshotId: recent(s.back), bytesReclaimed: 1 });
        return;
      case 'tick':
        job.now += s.ms;
        job.run({ type: 'ExpireOverdue' });
        return;
      case 'retain':
        job.run({
          type: 'ConfigureJob',
          name: 'job',
          tasks: TASKS,
          checkpointing: { ...job.state.checkpointing, numRetained: s.n },
          storage: job.state.storage,
        });
        return;
      case 'status':
        job.run({ type: 'ChangeJobStatus', status: s.status });
        return;
      case 'stop': {
        const { reply } = job.run({
          type: 'TriggerSnapshot',
          kind: 'SAVEPOINT',
          triggerId: `stop-${job.state.nextSnapshotId}`,
          triggerType: 'MANUAL',
          formatType: 'CANONICAL',
          terminate: { drain: s.drain },
        });
        if (s.acked && reply.accepted) for (const task of job.state.tasks) job.ack(reply.snapshotId, task);
        return;
      }
      case 'restore':
        job.run({
          type: 'RestoreSnapshot',
          snapshotId: recent(s.back),
          claimMode: s.claimMode as 'CLAIM' | 'NO_CLAIM' | 'LEGACY',
          allowNonRestoredState: false,
        });
        return;
      case 'fire':
        job.now += s.ms;
        job.run({ type: 'FirePeriodicSavepoint', slot: job.now });
        return;
      case 'sweep':
        job.run({
          type: 'SetSavepointSchedule',
          schedule: { every: 'PT1S', retention: { maxCount: s.maxCount, maxAge: 'PT3S' } },
        });
        job.run({ type: 'ApplyRetention' });
        return;
    }
  } catch (e) {
    if (!(e instanceof CommandRejected)) throw e;
  }
}

export const history = fc.record({
  retention,
  minPauseMs: fc.constantFrom(0, 500),
  steps: fc.array(step, { minLength: 30, maxLength: 120 }),
});

/**
 * Histories with stops that complete as well as stops left pending: in the shared mix a stop completes
 * only when random acks happen to reach all of its tasks (12 to 20 of 300 histories, too close to a
 * coverage floor to trust).
 */
export const stopping = fc.record({
  retention,
  minPauseMs: fc.constantFrom(0, 500),
  steps: fc.array(
    fc.oneof(
      { weight: 15, arbitrary: step },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant('stop' as const),
          drain: fc.boolean(),
          acked: fc.constant(true),
        }),
      },
    ),
    { minLength: 30, maxLength: 120 },
  ),
});

export function runHistory(
  h: { retention: string; minPauseMs: number; steps: Step[] },
  check: (job: Job) => void,
) {
  const job = new Job().register({
    tasks: TASKS,
    retention: h.retention as never,
    maxConcurrent: MAX_CONCURRENT,
    minPauseMs: h.minPauseMs,
    timeoutMs: 4000,
    numRetained: 2,
  });
  for (const s of h.steps) {
    apply(job, s);
    check(job);
  }
  return job;
}
