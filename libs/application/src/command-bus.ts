import { randomUUID } from 'node:crypto';
import {
  CommandRejected,
  decide,
  fold,
  initialState,
  type Command,
  type Event,
  type JobState,
  type ReplyOf,
} from '@snapcat/domain';
import { WrongExpectedVersionError, type EventStore, type Position } from '@snapcat/event-store';
import { domainEvent, jobStream } from './streams';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface CommandMetadata {
  correlationId?: string;
  causationId?: string;
}

export interface Executed<C extends Command> {
  reply: ReplyOf<C>;
  events: Event[];
  /** Where the last event landed in $all; undefined when the command wrote nothing. */
  position?: Position;
}

/** Another writer kept winning the race for the stream; the caller may retry. */
export class ConcurrencyExhaustedError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId}: gave up after repeated concurrent writes by other processes`);
    this.name = 'ConcurrencyExhaustedError';
  }
}

interface Queued {
  command: Command | null; // null: a read, answered with the state once earlier commands are durable
  metadata: CommandMetadata;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface JobWriter {
  jobId: string;
  state: JobState;
  /** The stream revision `state` reflects; -1n for a stream that does not exist yet. */
  revision: bigint;
  queue: Queued[];
  draining: boolean;
}

export interface CommandBusOptions {
  clock?: Clock;
  /** Commands decided and appended together at most. */
  maxBatch?: number;
  maxRetries?: number;
  /** Job aggregates kept in memory at most; idle ones beyond it are dropped, oldest first. */
  cacheSize?: number;
}

const READ_PAGE = 1000;

/**
 * Runs commands against job aggregates. Within the process there is one writer per job stream: commands
 * that queue up while an append is in flight are decided in order against the cached aggregate and
 * appended together (group commit). Across processes, the append's expected revision detects a concurrent
 * writer; the writer then catches up on the new events and decides the batch again.
 */
export class CommandBus {
  private readonly writers = new Map<string, JobWriter>();
  private readonly clock: Clock;
  private readonly maxBatch: number;
  private readonly maxRetries: number;
  private readonly cacheSize: number;
  readonly stats = { commands: 0, appends: 0, eventsAppended: 0, conflicts: 0, eventsRead: 0 };

  constructor(
    private readonly store: EventStore,
    options: CommandBusOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxBatch = options.maxBatch ?? 1000;
    this.maxRetries = options.maxRetries ?? 10;
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  execute<C extends Command>(command: C, metadata: CommandMetadata = {}): Promise<Executed<C>> {
    this.stats.commands += 1;
    return this.enqueue(command.jobId, command, metadata) as Promise<Executed<C>>;
  }

  /** The job's current state, including every command accepted before this call. */
  load(jobId: string): Promise<JobState> {
    return this.enqueue(jobId, null, {}) as Promise<JobState>;
  }

  private enqueue(jobId: string, command: Command | null, metadata: CommandMetadata): Promise<unknown> {
    const writer = this.writer(jobId);
    return new Promise((resolve, reject) => {
      writer.queue.push({ command, metadata, resolve, reject });
      if (!writer.draining) {
        writer.draining = true;
        // Start on the next turn of the event loop, so that every request read from the sockets in this
        // turn joins the batch: group commit even when the store's append is synchronous (SQLite).
        setImmediate(() => void this.drain(writer));
      }
    });
  }

  private writer(jobId: string): JobWriter {
    let writer = this.writers.get(jobId);
    if (writer) {
      this.writers.delete(jobId); // re-insert: the Map's order is the LRU order
    } else {
      writer = { jobId, state: initialState(jobId), revision: -1n, queue: [], draining: false };
      this.evictIdle();
    }
    this.writers.set(jobId, writer);
    return writer;
  }

  private evictIdle(): void {
    for (const [jobId, writer] of this.writers) {
      if (this.writers.size < this.cacheSize) return;
      if (!writer.draining && writer.queue.length === 0) this.writers.delete(jobId);
    }
  }

  private async drain(writer: JobWriter): Promise<void> {
    try {
      while (writer.queue.length > 0) {
        const batch = writer.queue.splice(0, this.maxBatch);
        await this.process(writer, batch).catch((error: unknown) => batch.forEach((q) => q.reject(error)));
      }
    } finally {
      writer.draining = false;
    }
  }

  private async process(writer: JobWriter, batch: Queued[]): Promise<void> {
    for (let attempt = 0; attempt <= this.maxRetries; attempt += 1) {
      await this.catchUp(writer);
      const now = this.clock.now();
      let state = writer.state;
      const events: { event: Event; metadata: CommandMetadata }[] = [];
      const outcomes: (() => void)[] = [];
      let position: Position | undefined;
      for (const queued of batch) {
        if (queued.command === null) {
          const snapshot = state;
          outcomes.push(() => queued.resolve(snapshot));
          continue;
        }
        try {
          const decision = decide(state, queued.command, now);
          state = decision.state;
          for (const event of decision.events) events.push({ event, metadata: queued.metadata });
          outcomes.push(() => queued.resolve({ reply: decision.reply, events: decision.events, position }));
        } catch (error) {
          if (!(error instanceof CommandRejected)) throw error;
          outcomes.push(() => queued.reject(error));
        }
      }
      if (events.length > 0) {
        try {
          const result = await this.store.append(
            jobStream(writer.jobId),
            events.map(({ event, metadata }) => ({
              id: randomUUID(),
              type: event.type,
              data: event,
              metadata: {
                ...(metadata.correlationId ? { $correlationId: metadata.correlationId } : {}),
                ...(metadata.causationId ? { $causationId: metadata.causationId } : {}),
              },
            })),
            writer.revision < 0n ? 'no_stream' : writer.revision,
          );
          this.stats.appends += 1;
          this.stats.eventsAppended += events.length;
          writer.revision = result.nextExpectedRevision;
          position = result.position;
        } catch (error) {
          if (!(error instanceof WrongExpectedVersionError)) throw error;
          this.stats.conflicts += 1;
          continue; // another process wrote first: catch up and decide the batch again
        }
      }
      writer.state = state;
      outcomes.forEach((settle) => settle());
      return;
    }
    throw new ConcurrencyExhaustedError(writer.jobId);
  }

  /** Folds the events other processes appended since the cached revision (all of them on a cold start). */
  private async catchUp(writer: JobWriter): Promise<void> {
    for (;;) {
      const page = await this.store.readStream(jobStream(writer.jobId), {
        fromRevision: writer.revision + 1n,
        maxCount: READ_PAGE,
      });
      if (page.length === 0) return;
      this.stats.eventsRead += page.length;
      writer.state = fold(writer.state, page.map(domainEvent));
      writer.revision = page[page.length - 1]!.revision;
      if (page.length < READ_PAGE) return;
    }
  }
}
