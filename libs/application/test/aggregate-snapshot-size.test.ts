import { EsdbEventStore, type EventStore } from '@snapcat/event-store';
import { fold, initialState, type Command } from '@snapcat/domain';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import {
  AggregateSnapshotTooLargeError,
  CommandBus,
  MAX_AGGREGATE_SNAPSHOT_PARTS,
  aggregateStream,
  domainEvent,
  jobStream,
} from '../src';

// Issue 25 and decision 0003: an aggregate snapshot over EventStoreDB's MaxAppendSize is written in parts
// (loaded only whole), or skipped and counted when it would take too many; either way it is tried once
// per interval, not after every later command, and no command sees it fail.

const JOB = 'a99a0000a99a0000a99a0000a99a0000';
const MiB = 1_048_576;

/** Counts the appends asked of each stream (refused ones too). */
function countingAppends(store: EventStore) {
  const appends = new Map<string, number>();
  const counted: EventStore = Object.create(store) as EventStore;
  counted.append = (streamId, events, expected) => {
    appends.set(streamId, (appends.get(streamId) ?? 0) + 1);
    return store.append(streamId, events, expected);
  };
  return { store: counted, appendsTo: (stream: string) => appends.get(stream) ?? 0 };
}

/**
 * A job of `taskIds`, one checkpoint acknowledged by all tasks but the last (the snapshot falls due then,
 * with every acknowledgement pending in it), the last, a second checkpoint if asked, then `more` commands one at a
 * time, each awaited with the background work it set off.
 */
async function run(
  limit: number,
  taskIds: string[],
  handles: (taskId: string) => unknown[],
  secondCheckpoint: boolean,
  more = 40,
) {
  const server = new EsdbTestServer(undefined, { maxAppendSize: limit });
  await server.start();
  const esdb = new EsdbEventStore(server.connectionString, limit);
  const { store, appendsTo } = countingAppends(esdb);
  const backgroundErrors: unknown[] = [];
  const bus = new CommandBus(store, { onBackgroundError: (e) => backgroundErrors.push(e) });
  const ack = (taskId: string, snapshotId: number): Command =>
    ({
      type: 'AcknowledgeTask',
      jobId: JOB,
      snapshotId,
      taskId,
      stateSize: 1,
      stateHandles: handles(taskId),
    }) as Command;
  await bus.execute({
    type: 'ConfigureJob',
    jobId: JOB,
    name: 'wide',
    tasks: taskIds,
    checkpointing: {
      numRetained: 5, // no discard: its event would list every handle of the first checkpoint
      timeoutMs: 600_000,
      maxConcurrent: 1,
      minPauseMs: 0,
      tolerableFailures: 1000,
      retention: 'NEVER_RETAIN_AFTER_TERMINATION',
      persistOnFailure: true,
    },
    storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
  });
  const trigger = (triggerId: string) =>
    ({
      type: 'TriggerSnapshot',
      jobId: JOB,
      kind: 'CHECKPOINT',
      triggerId,
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    }) as Command;
  await bus.execute(trigger('t0'));
  await bus.executeAll(taskIds.slice(0, -1).map((t) => ack(t, 1))); // a batch of acknowledgements, decided in order
  await bus.flush();
  const afterDue = appendsTo(aggregateStream(JOB));
  await bus.execute(ack(taskIds.at(-1)!, 1));
  // A second checkpoint, all tasks: the job's stream is now longer than the first snapshot's weight, so a
  // writer that counted a failed snapshot as not tried would try again after every command from here.
  if (secondCheckpoint) {
    await bus.execute(trigger('t-second'));
    await bus.executeAll(taskIds.map((t) => ack(t, 2)));
    await bus.flush();
  }
  for (let i = 0; i < more / 2; i += 1) {
    const { reply } = await bus.execute(trigger(`t${i + 1}`));
    const { snapshotId } = reply as { snapshotId: number };
    await bus.execute({ type: 'DeclineTask', jobId: JOB, snapshotId, taskId: taskIds[0]! } as Command);
    await bus.flush();
  }
  const cold = new CommandBus(esdb);
  const loaded = await cold.load(JOB);
  const events = await esdb.readStream(jobStream(JOB));
  return {
    server,
    esdb,
    bus,
    cold,
    loaded,
    folded: fold(initialState(JOB), events.map(domainEvent)),
    events: events.length,
    backgroundErrors,
    afterDue,
    aggregateAppends: appendsTo(aggregateStream(JOB)),
    close: async () => {
      await esdb.close();
      await server.stop();
    },
  };
}

describe('aggregate snapshots over MaxAppendSize (EventStoreDB protocol test server, BatchAppend)', () => {
  it('a 40,000-task job’s ~1.7 MB aggregate snapshot against 1 MiB: written in parts once, loaded whole, not retried after each command', async () => {
    const tasks = Array.from({ length: 40_000 }, (_, i) => `window-agg-${String(i).padStart(5, '0')}`);
    const r = await run(MiB, tasks, () => [], false);
    try {
      expect(r.backgroundErrors).toEqual([]);
      expect(r.bus.stats).toMatchObject({
        aggregateSnapshotsWritten: 1,
        aggregateSnapshotsChunked: 1,
        aggregateSnapshotsSkipped: 0,
        aggregateSnapshotsFailed: 0,
      });
      // Its parts, then nothing more: the 41 commands after it did not write (or try) another.
      expect(r.afterDue).toBeGreaterThanOrEqual(2);
      expect(r.aggregateAppends).toBe(r.afterDue);
      expect(r.server.calls.batchAppend).toBeGreaterThan(0);
      // A cold writer starts from the whole snapshot and reads only the events after it.
      expect(r.cold.stats.aggregateSnapshotsLoaded).toBe(1);
      expect(r.cold.stats.eventsRead).toBe(r.events - 40_001); // revision 40,000 (40,001 events) is in it
      expect(r.loaded).toEqual(r.folded);
    } finally {
      await r.close();
    }
  });

  it(`an aggregate over ${MAX_AGGREGATE_SNAPSHOT_PARTS} appends is skipped, counted and reported once; the job loads from its events`, async () => {
    // 24 KiB appends: 1,500 tasks register in one, their acknowledgements with a handle each weigh ~500 KB,
    // more than 16 parts.
    const tasks = Array.from({ length: 1_500 }, (_, i) => `map-${String(i).padStart(5, '0')}`);
    const handle = (taskId: string) => [
      { path: `s3://flink-state/checkpoints/${JOB}/chk-1/${taskId}/${'f'.repeat(200)}`, sizeBytes: 4096 },
    ];
    const r = await run(24 * 1024, tasks, handle, true);
    try {
      expect(r.bus.stats).toMatchObject({
        aggregateSnapshotsWritten: 0,
        aggregateSnapshotsSkipped: 1,
        aggregateSnapshotsFailed: 0,
      });
      expect(r.backgroundErrors).toEqual([expect.any(AggregateSnapshotTooLargeError)]);
      expect(r.aggregateAppends).toBe(0);
      expect(r.cold.stats.aggregateSnapshotsLoaded).toBe(0);
      expect(r.cold.stats.eventsRead).toBe(r.events);
      expect(r.loaded).toEqual(r.folded);
    } finally {
      await r.close();
    }
  });
});
