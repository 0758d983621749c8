import { randomUUID } from 'node:crypto';
import { Command, decide, initialState, type JobState } from '@snapcat/domain';
import { jobStream } from '@snapcat/application';
import {
  MemoryEventStore as ClonedMemoryEventStore,
  STREAM_DELETED,
  StreamDeletedError,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
} from '@snapcat/event-store';

export const T0 = Date.parse('2026-11-30T10:00:00.000Z');
export const job = (n: number) => n.toString(16).padStart(32, '0');
const MANUAL = { triggerType: 'MANUAL', formatType: 'CANONICAL' };

/**
 * The memory store clones events with the process's structuredClone: objects of another realm than the
 * test's, which the audit's isDeepStrictEqual tells apart from JSON-parsed views. Read back through JSON,
 * as from a real store.
 */
const asJson = (e: RecordedEvent): RecordedEvent => ({ ...e, data: JSON.parse(JSON.stringify(e.data)) });
export class MemoryEventStore extends ClonedMemoryEventStore {
  private readonly tombstoned = new Set<string>();
  override async append(
    streamId: string,
    events: NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    if (this.tombstoned.has(streamId)) throw new StreamDeletedError(streamId);
    return super.append(streamId, events, expected);
  }
  override async readAll(options?: ReadAllOptions) {
    return (await super.readAll(options)).map(asJson);
  }
  override async readStream(streamId: string, options?: ReadStreamOptions) {
    if (this.tombstoned.has(streamId)) throw new StreamDeletedError(streamId);
    return (await super.readStream(streamId, options)).map(asJson);
  }
  /**
   * Hard-deletes the stream, as EventStoreDB's tombstone: a `$streamDeleted` event in $all where it was
   * written (the stream's events stay there), and every read or write of the stream fails after it.
   */
  async tombstone(streamId: string): Promise<RecordedEvent> {
    await super.append(streamId, [{ id: randomUUID(), type: STREAM_DELETED, data: null }], 'any');
    this.tombstoned.add(streamId);
    const [tombstone] = await this.readAll({ direction: 'backwards', maxCount: 1 });
    return tombstone!;
  }
}

/** Decides commands on a job's state and appends their events; the state after. */
export async function decideAll(
  store: EventStore,
  jobId: string,
  commands: Record<string, unknown>[],
  from: JobState = initialState(jobId),
): Promise<JobState> {
  let state = from;
  for (const input of commands) {
    const decision = decide(state, Command.parse({ ...input, jobId }), T0);
    state = decision.state;
    await store.append(
      jobStream(jobId),
      decision.events.map((data) => ({ id: randomUUID(), type: data.type, data })),
      'any',
    );
  }
  return state;
}

export const configure = (name = 'job') => ({
  type: 'ConfigureJob',
  name,
  tasks: ['a', 'b'],
  checkpointing: { numRetained: 5 },
  storage: { checkpointDir: '/data/c', savepointDir: '/data/s' },
});

/** The commands of one completed checkpoint with the given id; each task's handles by path (10 bytes each). */
export const checkpoint = (snapshotId: number, handles: Record<string, string[]> = {}) => [
  { type: 'TriggerSnapshot', kind: 'CHECKPOINT', triggerId: `t${snapshotId}`, ...MANUAL },
  ...['a', 'b'].map((taskId) => ({
    type: 'AcknowledgeTask',
    snapshotId,
    taskId,
    stateSize: 1,
    stateHandles: (handles[taskId] ?? []).map((path) => ({ path, sizeBytes: 10 })),
  })),
];

/** A job registered with tasks a and b, and `checkpoints` completed checkpoints; its state. */
export async function writeJob(store: EventStore, jobId: string, checkpoints: number): Promise<JobState> {
  const commands: Record<string, unknown>[] = [configure(`job ${jobId.slice(-2)}`)];
  for (let i = 1; i <= checkpoints; i += 1) commands.push(...checkpoint(i));
  return decideAll(store, jobId, commands);
}

export { MANUAL };
