/**
 * How much reading a job event costs on the replay path (decision 0023): a cast, the structural check of an
 * event at its current schema version, and a full zod parse. `npx tsx bench/src/event-read.ts [count]`.
 */
import { Event, SCHEMA_VERSION_KEY, fold, initialState, readDomainEvent, readEvent } from '@snapcat/domain';
import type { StoredEvent } from '@snapcat/domain';

const COUNT = Number(process.argv[2] ?? 100_000);
const JOB = '0123456789abcdef0123456789abcdef';
const TASKS = ['source', 'map', 'window', 'sink'];
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const metadata = { $correlationId: 'bench', [SCHEMA_VERSION_KEY]: 1 };

/** A job's log as bench #7 replays it: checkpoints triggered, acknowledged by each task, completed, subsumed. */
function jobLog(count: number): StoredEvent[] {
  const events: Event[] = [
    {
      type: 'JobRegistered',
      jobId: JOB,
      occurredAt: at(0),
      name: 'bench',
      tasks: TASKS,
      status: 'RUNNING',
      checkpointing: {
        numRetained: 1,
        timeoutMs: 600_000,
        maxConcurrent: 1,
        minPauseMs: 0,
        tolerableFailures: 0,
        retention: 'NEVER_RETAIN_AFTER_TERMINATION',
      },
      storage: { checkpointDir: 'file:///data/chk', savepointDir: 'file:///data/sp' },
    },
  ];
  for (let id = 1; events.length < count; id++) {
    const t = id * 1000;
    const dir = `file:///data/chk/${JOB}/chk-${id}`;
    events.push({
      type: 'SnapshotTriggered',
      jobId: JOB,
      occurredAt: at(t),
      snapshotId: id,
      kind: 'CHECKPOINT',
      triggerType: 'PERIODIC',
      triggerId: `t-${id}`,
      properties: {
        forced: false,
        discardSubsumed: true,
        discardFinished: true,
        discardCancelled: true,
        discardFailed: true,
        discardSuspended: true,
      },
      formatType: 'CANONICAL',
      tasks: TASKS,
      deadline: at(t + 600_000),
      externalPath: dir,
    });
    for (const taskId of TASKS) {
      events.push({
        type: 'TaskAcknowledged',
        jobId: JOB,
        occurredAt: at(t + 10),
        snapshotId: id,
        taskId,
        stateSize: 2048,
        stateHandles: [{ path: `${dir}/${taskId}-state`, sizeBytes: 2048 }],
      });
    }
    events.push({
      type: 'SnapshotCompleted',
      jobId: JOB,
      occurredAt: at(t + 20),
      snapshotId: id,
      kind: 'CHECKPOINT',
      stateSize: 8192,
      externalPath: dir,
    });
  }
  return events.slice(0, count).map((data) => ({ type: data.type, data, metadata }));
}

function rate(label: string, log: StoredEvent[], read: (e: StoredEvent) => Event, withFold: boolean) {
  let best = 0;
  for (let round = 0; round < 5; round++) {
    const started = process.hrtime.bigint();
    if (withFold) fold(initialState(JOB), log.map(read));
    else for (const e of log) read(e);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    best = Math.max(best, log.length / seconds);
  }
  console.log(`${label.padEnd(40)} ${Math.round(best).toLocaleString('en')} events/s`);
}

const log = jobLog(COUNT);
for (const withFold of [false, true]) {
  const suffix = withFold ? ' + fold' : '';
  rate(`cast${suffix}`, log, (e) => e.data as Event, withFold);
  rate(`readDomainEvent (current: check)${suffix}`, log, readDomainEvent, withFold);
  rate(`readEvent (full zod parse)${suffix}`, log, (e) => readEvent(Event, e), withFold);
}
