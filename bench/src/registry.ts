/**
 * Benchmark #11: what the shared-state registry (decision 0011) costs a job of 40,000 subtasks taking
 * incremental checkpoints: memory beside the rest of the job's state, and the time of the decisions it
 * adds to (an acknowledgement with handles, a completion that subsumes a checkpoint).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  Command,
  EMPTY_REGISTRY,
  decide,
  initialState,
  type Command as CommandType,
  type JobState,
  type StateHandle,
} from '@snapcat/domain';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The live heap after full collections: what a structure built since a reading holds. */
export function heapUsed(): number {
  for (let i = 0; i < 3; i += 1) gc();
  return process.memoryUsage().heapUsed;
}

const JOB = 'b0'.repeat(16);
const base = `/bench/checkpoints/${JOB}`;

/** A RocksDB-like incremental layout: each subtask keeps 3 shared SST files, one replaced per checkpoint, and a private file. */
function handlesOf(checkpoint: number, task: number): StateHandle[] {
  const shared = [0, 1, 2].map((slot) => {
    const generation = Math.floor((checkpoint + slot) / 3);
    return { path: `${base}/shared/${task}-${slot}-${generation}.sst`, sizeBytes: 64 << 20, shared: true };
  });
  return [...shared, { path: `${base}/chk-${checkpoint}/${task}-MANIFEST`, sizeBytes: 4096 }];
}

function run(state: JobState, command: CommandType, now: number): JobState {
  return decide(state, Command.parse(command), now).state;
}

export interface RegistryFigures {
  tasks: number;
  retained: number;
  referencedFiles: number;
  registryBytes: number;
  stateBytes: number;
  ackMicros: number;
  completionMs: number;
}

/** Builds a job of `tasks` subtasks that has taken `checkpoints` incremental checkpoints, `retained` of them kept. */
export function benchRegistry(
  tasks: number,
  checkpoints: number,
  retained: number,
  withHandles = true,
): RegistryFigures {
  const before = heapUsed();
  let now = Date.parse('2026-01-01T00:00:00Z');
  const taskIds = Array.from({ length: tasks }, (_, i) => `t${i}`);
  let state = run(
    initialState(JOB),
    {
      type: 'ConfigureJob',
      jobId: JOB,
      name: 'registry',
      tasks: taskIds,
      checkpointing: {
        numRetained: retained,
        timeoutMs: 3_600_000,
        maxConcurrent: 1,
        minPauseMs: 0,
        tolerableFailures: 0,
        retention: 'RETAIN_ON_CANCELLATION',
        persistOnFailure: true,
      },
      storage: { checkpointDir: '/bench/checkpoints', savepointDir: '/bench/savepoints' },
    },
    now,
  );
  let ackNanos = 0n;
  let acks = 0;
  const completions: number[] = [];
  for (let c = 1; c <= checkpoints; c += 1) {
    now += 1000;
    state = run(
      state,
      {
        type: 'TriggerSnapshot',
        jobId: JOB,
        kind: 'CHECKPOINT',
        triggerId: `c${c}`,
        triggerType: 'PERIODIC',
        formatType: 'CANONICAL',
      },
      now,
    );
    for (let t = 0; t < tasks; t += 1) {
      const command = Command.parse({
        type: 'AcknowledgeTask',
        jobId: JOB,
        snapshotId: c,
        taskId: taskIds[t],
        stateSize: 1,
        stateHandles: withHandles ? handlesOf(c, t) : [],
      });
      const last = t === tasks - 1;
      const started = process.hrtime.bigint();
      state = decide(state, command, now).state;
      const took = process.hrtime.bigint() - started;
      // The last acknowledgement completes the checkpoint and subsumes the oldest: timed apart.
      if (last) completions.push(Number(took) / 1e6);
      else {
        ackNanos += took;
        acks += 1;
      }
    }
  }
  const withRegistry = heapUsed() - before;
  const referencedFiles = state.sharedState.references.size;
  state = { ...state, sharedState: EMPTY_REGISTRY };
  const withoutRegistry = heapUsed() - before;
  return {
    tasks,
    retained,
    referencedFiles,
    registryBytes: withRegistry - withoutRegistry,
    stateBytes: withoutRegistry,
    ackMicros: Number(ackNanos) / 1e3 / acks,
    completionMs: completions.sort((a, b) => a - b)[Math.floor(completions.length / 2)]!,
  };
}
