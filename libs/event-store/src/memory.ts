import { EventEmitter } from 'node:events';
import { catchUpSubscription } from './catch-up';
import { newestEventPosition } from './pages';
import {
  START,
  checkExpected,
  matchesFilter,
  type AppendResult,
  type EventHandler,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type LogSubscribeOptions,
  type LogSubscription,
} from './port';

/**
 * An event store in process memory: for tests and for trying snapcat out. Nothing survives a restart.
 * A stream's max count hides its older events from stream reads, as EventStoreDB does before a scavenge;
 * they stay in memory and in $all (nothing here runs for long enough to need them gone).
 */
export class MemoryEventStore implements EventStore {
  private readonly log: RecordedEvent[] = [];
  private readonly streams = new Map<string, RecordedEvent[]>();
  private readonly maxCounts = new Map<string, number>();
  private readonly byId = new Map<string, RecordedEvent>();
  private readonly appended = new EventEmitter().setMaxListeners(0);

  async append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    const stream = this.streams.get(streamId) ?? [];
    const retried = retriedAppend(streamId, events, (id) => this.byId.get(id));
    if (retried) return retried;
    checkExpected(streamId, expected, BigInt(stream.length) - 1n);
    const created = new Date();
    for (const event of events) {
      const seq = BigInt(this.log.length);
      const recorded: RecordedEvent = {
        id: event.id,
        type: event.type,
        streamId,
        revision: BigInt(stream.length),
        position: { commit: seq, prepare: seq },
        data: structuredClone(event.data),
        metadata: structuredClone(event.metadata ?? {}),
        created,
      };
      stream.push(recorded);
      this.log.push(recorded);
      this.byId.set(event.id, recorded);
    }
    this.streams.set(streamId, stream);
    this.appended.emit('appended');
    const last = stream[stream.length - 1]!;
    return { nextExpectedRevision: last.revision, position: last.position };
  }

  async setStreamMaxCount(streamId: string, maxCount: number): Promise<void> {
    this.maxCounts.set(streamId, maxCount);
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const all = this.streams.get(streamId) ?? [];
    const kept = this.maxCounts.get(streamId);
    const stream = kept === undefined ? all : all.slice(-kept);
    const max = options.maxCount ?? Number.MAX_SAFE_INTEGER;
    const first = Number(stream[0]?.revision ?? 0n); // a revision is its index in `all`
    if (options.direction === 'backwards') {
      const from = options.fromRevision ?? BigInt(all.length - 1);
      return stream
        .filter((e) => e.revision <= from)
        .reverse()
        .slice(0, max);
    }
    const from = Math.max(0, Number(options.fromRevision ?? 0n) - first);
    return stream.slice(from, from + max);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const max = options.maxCount ?? Number.MAX_SAFE_INTEGER;
    const out: RecordedEvent[] = [];
    if (options.direction === 'backwards') {
      const before = options.after ? Number(options.after.commit) : this.log.length;
      for (let i = Math.min(before, this.log.length) - 1; i >= 0 && out.length < max; i -= 1) {
        if (matchesFilter(this.log[i]!, options.filter)) out.push(this.log[i]!);
      }
      return out;
    }
    const after = options.after ?? START;
    for (let i = Math.max(0, Number(after.commit) + 1); i < this.log.length && out.length < max; i += 1) {
      if (matchesFilter(this.log[i]!, options.filter)) out.push(this.log[i]!);
    }
    return out;
  }

  lastPosition(): Promise<Position | undefined> {
    return newestEventPosition(this);
  }

  logEnd(): Promise<Position | undefined> {
    return this.lastPosition(); // it records nothing but events
  }

  subscribeToAll(
    options: LogSubscribeOptions,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): LogSubscription {
    return catchUpSubscription(this, this.appended, options, handler, onError, 1000);
  }

  async close(): Promise<void> {}
}

/**
 * EventStoreDB's idempotence: appending events whose ids are already the stream's, in the same order,
 * succeeds without writing them again. Returns the original result, or null for a new append.
 */
export function retriedAppend(
  streamId: string,
  events: NewEvent[],
  find: (id: string) => Pick<RecordedEvent, 'streamId' | 'revision' | 'position'> | undefined,
): AppendResult | null {
  const first = events[0] && find(events[0].id);
  if (!first || first.streamId !== streamId) return null;
  let last = first;
  for (const [i, event] of events.entries()) {
    const found = find(event.id);
    if (!found || found.streamId !== streamId || found.revision !== first.revision + BigInt(i)) return null;
    last = found;
  }
  return { nextExpectedRevision: last.revision, position: last.position };
}
