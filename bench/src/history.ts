/**
 * Benchmark #19: what a job's history costs (decision 0035). A job with one task and numRetained 1 takes
 * checkpoints; each subsumes the one before, whose discard the storage worker records as done. Measured
 * after `cycles` such checkpoints: the time of the next 1,000 (trigger, acknowledge, record the discard:
 * decide and fold, as the command bus runs them), the state's heap, and its aggregate snapshot's size.
 */
import { Command, decide, decodeState, encodeState, initialState, type JobState } from '@snapcat/domain';
import { heapUsed } from './registry';

const JOB = 'b1'.repeat(16);
const TIMED = 1_000;

export interface HistoryFigures {
  microsPerCheckpoint: number;
  stateBytes: number;
  aggregateBytes: number;
  snapshotsInState: number;
}

export function benchHistory(cycles: number): HistoryFigures {
  let now = Date.parse('2026-01-01T00:00:00Z');
  let state = initialState(JOB);
  const run = (command: Record<string, unknown>) => {
    state = decide(state, Command.parse({ ...command, jobId: JOB }), now).state;
  };
  run({
    type: 'ConfigureJob',
    name: 'history',
    tasks: ['t'],
    // The defaults: numRetained 1, so each checkpoint subsumes the one before.
    checkpointing: initialState(JOB).checkpointing,
    storage: { checkpointDir: '/bench/checkpoints', savepointDir: '/bench/savepoints' },
  });
  const checkpoint = (id: number) => {
    now += 10_000;
    run({
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: `t${id}`,
      triggerType: 'PERIODIC',
      formatType: 'CANONICAL',
    });
    run({
      type: 'AcknowledgeTask',
      snapshotId: id,
      taskId: 't',
      stateSize: 1,
      stateHandles: [{ path: `/bench/checkpoints/${JOB}/chk-${id}/t`, sizeBytes: 1 }],
    });
    if (id > 1) run({ type: 'RecordDiscardCompleted', snapshotId: id - 1, bytesReclaimed: 1 });
  };
  for (let id = 1; id <= cycles; id += 1) checkpoint(id);
  const started = process.hrtime.bigint();
  for (let id = cycles + 1; id <= cycles + TIMED; id += 1) checkpoint(id);
  const micros = Number(process.hrtime.bigint() - started) / 1e3 / TIMED;
  const aggregate = JSON.stringify(encodeState(state));
  const parsed = JSON.parse(aggregate) as Parameters<typeof decodeState>[0];
  const before = heapUsed();
  const decoded: JobState = decodeState(parsed)!;
  const stateBytes = heapUsed() - before;
  return {
    microsPerCheckpoint: micros,
    stateBytes: Math.max(0, stateBytes),
    aggregateBytes: aggregate.length,
    snapshotsInState: decoded.snapshots.size,
  };
}
