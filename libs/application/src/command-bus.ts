import { randomUUID } from 'node:crypto';
import {
  decideBatch,
  fold,
  initialState,
  versionedMetadata,
  type Command,
  type Event,
  type JobState,
  type NamespaceGrant,
  type ReplyOf,
} from '@snapcat/domain';
import {
  AppendTooLargeError,
  StreamDeletedError,
  WrongExpectedVersionError,
  type EventStore,
  type NewEvent,
  type Position,
} from '@snapcat/event-store';
import {
  AGGREGATE_STREAM_MAX_COUNT,
  AggregateSnapshotTooLargeError,
  readAggregateSnapshot,
  writeAggregateSnapshot,
} from './aggregate-snapshots';
import { aggregateStream, domainEvent, jobStream } from './streams';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface CommandMetadata {
  correlationId?: string;
  causationId?: string;
  /** Who asked: the name of the caller's token (`anonymous` while authentication is off). */
  actor?: string;
  /** The namespaces the caller may act in (its token's); absent: all. Not written to the events. */
  namespaces?: NamespaceGrant;
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

/** The job's stream (or its aggregate snapshots) was hard-deleted from the event store: the job is gone (410). */
export class JobDeletedError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} was deleted from the event store`);
    this.name = 'JobDeletedError';
  }
}

/** A batch's failure as its callers see it: a deleted stream names the job. */
const failureOf = (jobId: string, error: unknown): unknown =>
  error instanceof StreamDeletedError ? new JobDeletedError(jobId) : error;

interface Queued {
  /** 'load': a read, answered with the state once earlier commands are durable; no commands. */
  kind: 'load' | 'one' | 'many';
  commands: readonly Command[];
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
  /** False until the writer looked for an aggregate snapshot (only a cold writer does). */
  warmed: boolean;
  /** The revision of the last aggregate snapshot written or tried: the next one is due an interval later. */
  snapshotRevision: bigint;
  snapshotting: boolean;
  /** True once this writer saw the aggregate stream's max count set (once per writer, off the command path). */
  capped: boolean;
  /** Size of the last aggregate snapshot written: tasks, snapshots, acknowledgements and handles it held. */
  snapshotWeight: number;
}

export interface CommandBusOptions {
  clock?: Clock;
  /** Commands decided and appended together at most. */
  maxBatch?: number;
  maxRetries?: number;
  /** Job aggregates kept in memory at most; idle ones beyond it are dropped, oldest first. */
  cacheSize?: number;
  /** Write an aggregate snapshot after this many new events in a job stream (cold starts read at most that many). */
  snapshotEvery?: number;
  /** Told of failures of background work (aggregate snapshots), which never fail a command. */
  onBackgroundError?: (error: unknown) => void;
}

const READ_PAGE = 1000;

/** Events of a command without correlation share one metadata object (stores copy or serialise it). */
const NO_METADATA: Readonly<Record<string, unknown>> = Object.freeze({});

/** A command's correlation (EventStoreDB's well-known metadata fields) and actor, written on each of its events. */
function eventMetadata(metadata: CommandMetadata): Record<string, unknown> {
  if (!metadata.correlationId && !metadata.causationId && !metadata.actor) return NO_METADATA;
  return {
    ...(metadata.correlationId ? { $correlationId: metadata.correlationId } : {}),
    ...(metadata.causationId ? { $causationId: metadata.causationId } : {}),
    ...(metadata.actor ? { actor: metadata.actor } : {}),
  };
}

/** An append's size as EventStoreDB counts it against MaxAppendSize: data + metadata + 2 × type length. */
function appendBytes(events: readonly NewEvent[]): number {
  let bytes = 0;
  for (const e of events) {
    bytes += Buffer.byteLength(JSON.stringify(e.data)) + 2 * e.type.length;
    if (e.metadata) bytes += Buffer.byteLength(JSON.stringify(e.metadata));
  }
  return bytes;
}

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '');

/**
 * One request's events over the store's limit: refused before the store. When one of its commands alone
 * is over, the error names that command and the field of its events that weighs most, if the command has
 * a field of that name (what the caller sent: an acknowledgement's `stateHandles`, a registration's
 * `tasks`); otherwise the request as a whole is too large.
 */
function appendTooLarge(
  jobId: string,
  commands: readonly Command[],
  outcomes: readonly { events: readonly Event[] }[],
  limit: number,
): AppendTooLargeError {
  let total = 0;
  let largest: { command: number; bytes: number; field?: string } | undefined;
  commands.forEach((command, index) => {
    let bytes = 0;
    let field: { name: string; bytes: number } | undefined;
    for (const event of outcomes[index]!.events) {
      bytes += jsonBytes(event) + 2 * event.type.length;
      for (const [name, value] of Object.entries(event)) {
        const size = jsonBytes(value);
        if (!field || size > field.bytes) field = { name, bytes: size };
      }
    }
    total += bytes;
    if (bytes > limit && (!largest || bytes > largest.bytes)) {
      largest = { command: index, bytes, field: field && field.name in command ? field.name : undefined };
    }
  });
  return new AppendTooLargeError(jobStream(jobId), limit, {
    bytes: largest?.bytes ?? total,
    ...(largest ? { command: largest.command, field: largest.field } : {}),
  });
}

/** Each command's namespace grant, when some caller of the batch is limited to namespaces. */
function grantsOf(batch: readonly Queued[]): NamespaceGrant[] | undefined {
  if (batch.every((q) => q.metadata.namespaces === undefined || q.metadata.namespaces === '*'))
    return undefined;
  return batch.flatMap((q) => q.commands.map(() => q.metadata.namespaces ?? '*'));
}

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
  private readonly snapshotEvery: number;
  private readonly onBackgroundError: (error: unknown) => void;
  private readonly background = new Set<Promise<void>>();
  private writingSnapshot = false;
  readonly stats = {
    commands: 0,
    appends: 0,
    eventsAppended: 0,
    conflicts: 0,
    eventsRead: 0,
    aggregateSnapshotsWritten: 0,
    aggregateSnapshotsLoaded: 0,
    /** Aggregate snapshots over the store's append limit, written in several parts. */
    aggregateSnapshotsChunked: 0,
    /** Aggregate snapshots not written: more than the store takes in MAX_AGGREGATE_SNAPSHOT_PARTS appends. */
    aggregateSnapshotsSkipped: 0,
    /** Aggregate snapshots whose write failed otherwise (the store refused or was unreachable). */
    aggregateSnapshotsFailed: 0,
    /** Group commits split because their events were more than the store takes in one append. */
    appendsSplit: 0,
  };

  constructor(
    private readonly store: EventStore,
    options: CommandBusOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxBatch = options.maxBatch ?? 1000;
    this.maxRetries = options.maxRetries ?? 10;
    this.cacheSize = options.cacheSize ?? 10_000;
    this.snapshotEvery = options.snapshotEvery ?? 250;
    this.onBackgroundError = options.onBackgroundError ?? (() => {});
  }

  /** Waits for background writes (aggregate snapshots) to settle; call before closing the store. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  execute<C extends Command>(command: C, metadata: CommandMetadata = {}): Promise<Executed<C>> {
    this.stats.commands += 1;
    return this.enqueue(command.jobId, 'one', [command], metadata) as Promise<Executed<C>>;
  }

  /**
   * Commands to one job, decided in order and appended together (a batch of acknowledgements): one queue
   * entry and one promise for all of them, not one each. Rejects with the first command's rejection, as
   * `Promise.all` over `execute` would; the others are decided and written all the same.
   */
  async executeAll<C extends Command>(
    commands: readonly C[],
    metadata: CommandMetadata = {},
  ): Promise<Executed<C>[]> {
    const jobId = commands[0]?.jobId;
    if (jobId === undefined) return [];
    if (commands.some((c) => c.jobId !== jobId)) throw new Error('executeAll takes commands to one job');
    this.stats.commands += commands.length;
    const chunks: Promise<unknown>[] = [];
    for (let i = 0; i < commands.length; i += this.maxBatch) {
      chunks.push(this.enqueue(jobId, 'many', commands.slice(i, i + this.maxBatch), metadata));
    }
    return ((await Promise.all(chunks)) as Executed<C>[][]).flat();
  }

  /** The job's current state, including every command accepted before this call. */
  load(jobId: string): Promise<JobState> {
    return this.enqueue(jobId, 'load', [], {}) as Promise<JobState>;
  }

  /** The cached state of a job if it is exactly at `revision`, without I/O: a reader in this process may share it. */
  cachedState(jobId: string, revision: bigint): JobState | undefined {
    const writer = this.writers.get(jobId);
    return writer?.revision === revision ? writer.state : undefined;
  }

  private enqueue(
    jobId: string,
    kind: Queued['kind'],
    commands: readonly Command[],
    metadata: CommandMetadata,
  ): Promise<unknown> {
    const writer = this.writer(jobId);
    return new Promise((resolve, reject) => {
      writer.queue.push({ kind, commands, metadata, resolve, reject });
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
      writer = {
        jobId,
        state: initialState(jobId),
        revision: -1n,
        queue: [],
        draining: false,
        warmed: false,
        snapshotRevision: -1n,
        snapshotting: false,
        capped: false,
        snapshotWeight: 0,
      };
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
        const batch = this.nextBatch(writer.queue);
        await this.process(writer, batch).catch((error: unknown) =>
          batch.forEach((q) => q.reject(failureOf(writer.jobId, error))),
        );
      }
    } finally {
      writer.draining = false;
    }
  }

  /** The queue's first entries holding at most `maxBatch` commands (at least one entry). */
  private nextBatch(queue: Queued[]): Queued[] {
    let entries = 0;
    let commands = 0;
    while (entries < queue.length) {
      commands += queue[entries]!.commands.length;
      if (entries > 0 && commands > this.maxBatch) break;
      entries += 1;
    }
    return queue.splice(0, entries);
  }

  /**
   * Decides the batch on the cached state and appends with that state's revision as the expected one: if
   * another process wrote meanwhile, the append fails, the writer catches up and decides again. So a warm
   * writer reads nothing before deciding (one store read saved per batch). A batch that writes nothing has
   * no append to check its replies (a rejection, a duplicate, a load), so the writer reads first.
   */
  private async process(writer: JobWriter, batch: Queued[]): Promise<void> {
    let fresh = false; // the writer has read to the stream's end since this batch began
    for (let attempt = 0; attempt <= this.maxRetries; attempt += 1) {
      if (!writer.warmed) {
        await this.catchUp(writer);
        fresh = true;
      }
      const decided = decideBatch(
        writer.state,
        batch.length === 1 ? batch[0]!.commands : batch.flatMap((q) => q.commands),
        this.clock.now(),
        grantsOf(batch),
      );
      const state = decided.state;
      const outcomes = decided.outcomes; // in the order of the entries' commands
      let position: Position | undefined;
      const events: NewEvent[] = [];
      let next = 0;
      for (const queued of batch) {
        let metadata: Record<string, unknown> | undefined;
        for (let i = 0; i < queued.commands.length; i += 1) {
          for (const event of outcomes[next + i]!.events) {
            metadata ??= eventMetadata(queued.metadata);
            events.push({
              id: randomUUID(),
              type: event.type,
              data: event,
              metadata: versionedMetadata(event.type, metadata),
            });
          }
        }
        next += queued.commands.length;
      }
      const settle = () => {
        let at = 0;
        for (const queued of batch) {
          if (queued.kind === 'load') queued.resolve(state);
          else if (queued.kind === 'one') {
            const outcome = outcomes[at]!;
            if (outcome.ok) queued.resolve({ reply: outcome.reply, events: outcome.events, position });
            else queued.reject(outcome.error);
          } else {
            let rejection: unknown;
            const executed: Executed<Command>[] = [];
            for (let i = at; i < at + queued.commands.length; i += 1) {
              const outcome = outcomes[i]!;
              if (outcome.ok) executed.push({ reply: outcome.reply, events: outcome.events, position });
              else rejection ??= outcome.error;
            }
            if (rejection === undefined) queued.resolve(executed);
            else queued.reject(rejection);
          }
          at += queued.commands.length;
        }
      };
      if (events.length === 0 && !fresh) {
        const decidedAt = writer.revision;
        await this.catchUp(writer);
        fresh = true;
        if (writer.revision !== decidedAt) continue; // others wrote: decide again on what they wrote
      }
      const limit = this.store.maxAppendBytes;
      if (limit !== undefined && events.length > 0 && appendBytes(events) > limit) {
        // More than the store takes in one append (EventStoreDB's MaxAppendSize). One entry (one request)
        // is refused here, before the store, naming what made it large; a group is split.
        if (batch.length === 1) throw appendTooLarge(writer.jobId, batch[0]!.commands, outcomes, limit);
        await this.appendInHalves(writer, batch);
        return;
      }
      if (events.length > 0) {
        try {
          const result = await this.store.append(
            jobStream(writer.jobId),
            events,
            writer.revision < 0n ? 'no_stream' : writer.revision,
          );
          this.stats.appends += 1;
          this.stats.eventsAppended += events.length;
          writer.revision = result.nextExpectedRevision;
          position = result.position;
        } catch (error) {
          if (!(error instanceof WrongExpectedVersionError)) throw error;
          this.stats.conflicts += 1;
          // Replicas racing for one stream would race again at once: a random pause, growing with the
          // attempts (at most 64 ms), lets one of them through.
          await new Promise((r) => setTimeout(r, Math.random() * 2 ** Math.min(attempt, 6)));
          await this.catchUp(writer); // another process wrote first: catch up and decide the batch again
          fresh = true;
          continue;
        }
      }
      writer.state = state;
      settle();
      this.maybeSnapshot(writer);
      return;
    }
    throw new ConcurrencyExhaustedError(writer.jobId);
  }

  /**
   * The first half of the entries, then the rest, each decided on what the one before wrote. An entry's
   * events stay in one append (one request is atomic); an entry alone over the limit fails alone.
   */
  private async appendInHalves(writer: JobWriter, batch: Queued[]): Promise<void> {
    const half = Math.ceil(batch.length / 2);
    for (const part of [batch.slice(0, half), batch.slice(half)]) {
      await this.process(writer, part).catch((error: unknown) =>
        part.forEach((q) => q.reject(failureOf(writer.jobId, error))),
      );
    }
    this.stats.appendsSplit += 1;
  }

  /**
   * Folds the events appended since the cached revision. A cold writer starts from the latest aggregate
   * snapshot, so loading a job reads at most `snapshotEvery` events whatever the stream's length.
   */
  private async catchUp(writer: JobWriter): Promise<void> {
    if (!writer.warmed) {
      writer.warmed = true;
      const snapshot = await readAggregateSnapshot(this.store, writer.jobId);
      if (snapshot && snapshot.revision > writer.revision) {
        writer.state = snapshot.state;
        writer.revision = snapshot.revision;
        writer.snapshotRevision = writer.revision;
        this.stats.aggregateSnapshotsLoaded += 1;
      }
    }
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

  /** Stores the aggregate in its side stream once enough events have passed; off the command path. */
  private maybeSnapshot(writer: JobWriter): void {
    // A large aggregate (many retained savepoints, each with its acknowledgements) is costly to encode and
    // to store, so its snapshots are spaced out in proportion: encoding stays a small, constant cost per
    // event, the side stream grows no faster than the job's own, and a cold start replays no more events
    // than the snapshot it starts from holds entries. Before its first snapshot a writer knows only the
    // task list's size (the rest needs a scan), which is the bulk for a job of many subtasks.
    const interval = Math.max(this.snapshotEvery, writer.snapshotWeight, writer.state.tasks.length);
    if (writer.snapshotting || writer.revision - writer.snapshotRevision < BigInt(interval)) return;
    // One snapshot written at a time per bus: when many jobs fall due together (equal load, a restart),
    // their snapshots go out one per commit instead of stalling one commit for all of them.
    if (this.writingSnapshot) return;
    this.writingSnapshot = true;
    writer.snapshotting = true;
    // Entries the snapshot holds: the job's task list (written once), snapshots, acknowledgements, handles,
    // and what discards in progress are deleting (the shared-state registry is rebuilt from these).
    let weight = writer.state.tasks.length + writer.state.snapshots.size;
    for (const snapshot of writer.state.snapshots.values()) {
      weight +=
        (snapshot.status === 'PENDING' ? snapshot.acknowledged : 0) +
        (snapshot.taskHandles?.length ?? 0) +
        (snapshot.discard?.deleting?.length ?? 0);
    }
    writer.snapshotWeight = weight;
    const revision = writer.revision;
    const write = writeAggregateSnapshot(this.store, writer.jobId, revision, writer.state, weight)
      .then(async (parts) => {
        this.stats.aggregateSnapshotsWritten += 1;
        if (parts > 1) this.stats.aggregateSnapshotsChunked += 1;
        // Older snapshots serve no cold start: the side stream keeps a few (its max count), not every one.
        const stream = aggregateStream(writer.jobId);
        if (!writer.capped) await this.store.setStreamMaxCount?.(stream, AGGREGATE_STREAM_MAX_COUNT);
        writer.capped = true;
      })
      .catch((error: unknown) => {
        if (error instanceof AggregateSnapshotTooLargeError) this.stats.aggregateSnapshotsSkipped += 1;
        else this.stats.aggregateSnapshotsFailed += 1;
        this.onBackgroundError(error);
      })
      .finally(() => {
        // Written or not, the next try is an interval later: a snapshot that cannot be written is not
        // encoded and tried again after every command (a cold start meanwhile reads further back).
        writer.snapshotRevision = revision;
        writer.snapshotting = false;
        this.writingSnapshot = false;
        this.background.delete(write);
      });
    this.background.add(write);
  }
}
