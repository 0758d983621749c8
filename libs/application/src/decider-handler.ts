import { versionedMetadata } from '@snapcat/domain';
import {
  newEventId,
  foldStream,
  type EventStore,
  type NewEvent,
  type Position,
  type RecordedEvent,
} from '@snapcat/event-store';
import { AggregateCache, type Evictable } from './aggregate-cache';
import { appendBytes, appendTooLarge, commandOverLimit } from './append-limit';
import {
  GroupCommitQueue,
  settle,
  type CommandResult,
  type Entry,
  type Outcome,
  type Request,
} from './group-commit-queue';
import { OptimisticRetry } from './optimistic-retry';
import { noSnapshotYet, type SnapshotMarks, type Snapshotting } from './snapshot-policy';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** The state after a batch of commands, and each command's outcome in order. */
export interface Decision<State, Event, Reply> {
  state: State;
  outcomes: readonly Outcome<Event, Reply>[];
}

/**
 * An aggregate's rules: its state before any event, the outcomes of commands (decided in order, each
 * seeing the events of those before it), and the state after events (its own or another process's).
 */
export interface Decider<State, Command, Event, Reply, Metadata = undefined> {
  initialState(id: string): State;
  decide(
    state: State,
    requests: readonly Request<Command, Metadata>[],
    now: number,
  ): Decision<State, Event, Reply>;
  evolve(state: State, events: readonly Event[]): State;
}

/**
 * A decider of one command at a time (`decide` answers its events or throws why it refuses): decided in
 * order, each on the state after the ones before; a refused command fails alone, and a request of several
 * commands with it (all or nothing, as the job decider's `requestSizes`). Its reply is the state after it.
 */
export function oneCommandAtATime<State, Command, Event, Metadata = undefined>(rules: {
  initialState(id: string): State;
  decide(state: State, command: Command, now: number): Event[];
  evolve(state: State, event: Event): State;
}): Decider<State, Command, Event, State, Metadata> {
  const evolve = (state: State, events: readonly Event[]) => events.reduce(rules.evolve, state);
  return {
    initialState: rules.initialState,
    evolve,
    decide(state, requests, now) {
      const outcomes: Outcome<Event, State>[] = [];
      for (const request of requests) {
        const before = state;
        const decided: Outcome<Event, State>[] = [];
        for (const command of request.commands) {
          try {
            const events = rules.decide(state, command, now);
            state = evolve(state, events);
            decided.push({ ok: true, reply: state, events });
          } catch (error) {
            decided.push({ ok: false, error, events: [] });
          }
        }
        const refusal = request.commands.length > 1 ? decided.find((o) => !o.ok) : undefined;
        if (refusal && !refusal.ok) {
          state = before;
          outcomes.push(...decided.map(() => ({ ok: false as const, error: refusal.error, events: [] })));
        } else outcomes.push(...decided);
      }
      return { state, outcomes };
    },
  };
}

/** Where an aggregate's events live, and how a recorded one is read back. */
export interface StreamNaming<Event> {
  streamOf(id: string): string;
  /** The event a recorded one carries (validated here when the stream is not trusted as it is). */
  eventOf(recorded: RecordedEvent): Event;
}

/** Every aggregate in one stream (few, rarely changed: subscriptions, clusters). */
export const singleStream = <Event>(stream: string, eventOf: (recorded: RecordedEvent) => Event) => ({
  streamOf: () => stream,
  eventOf,
});

export interface HandlerStats {
  commands: number;
  appends: number;
  eventsAppended: number;
  conflicts: number;
  eventsRead: number;
  /** Group commits split because their events were more than the store takes in one append. */
  appendsSplit: number;
}

export const newHandlerStats = (): HandlerStats => ({
  commands: 0,
  appends: 0,
  eventsAppended: 0,
  conflicts: 0,
  eventsRead: 0,
  appendsSplit: 0,
});

export interface DeciderHandlerOptions<State, Metadata> {
  retry: OptimisticRetry;
  clock?: Clock;
  /** Commands decided and appended together at most (1: no group commit). */
  maxBatch?: number;
  /** Aggregates kept in memory at most; idle ones beyond it are dropped, oldest first. */
  cacheSize?: number;
  /** Without: a cold aggregate folds from the stream's first event. */
  snapshots?: Snapshotting<State>;
  /** What is written in the metadata of each event of a request (none: nothing). */
  eventMetadata?: (metadata: Metadata) => Record<string, unknown> | undefined;
  /** A failed batch's error as its callers see it. */
  failure?: (id: string, error: unknown) => unknown;
  /** Counters to add to (a caller may share one object with other parts' counters). */
  stats?: HandlerStats;
}

/** One cached aggregate, its stream's queue, and where its snapshots stand. */
class Aggregate<State, Command, Metadata> implements Evictable {
  state: State;
  /** The stream revision `state` reflects; -1n for a stream that does not exist yet. */
  revision = -1n;
  /** False until the aggregate looked for a snapshot and caught up (only a cold one does). */
  warmed = false;
  readonly snapshot: SnapshotMarks = noSnapshotYet();
  readonly queue: GroupCommitQueue<Command, Metadata>;

  constructor(
    readonly id: string,
    state: State,
    commit: (
      aggregate: Aggregate<State, Command, Metadata>,
      batch: Entry<Command, Metadata>[],
    ) => Promise<void>,
    maxBatch: number,
    failure: (id: string, error: unknown) => unknown,
  ) {
    this.state = state;
    this.queue = new GroupCommitQueue(
      (batch) => commit(this, batch),
      maxBatch,
      (error) => failure(id, error),
    );
  }

  get idle(): boolean {
    return this.queue.idle;
  }
}

/**
 * Runs commands against aggregates of one kind (decisions 0002, 0024). Within the process there is one
 * writer per stream: commands that queue up while an append is in flight are decided in order against the
 * cached aggregate and appended together (group commit). Across processes, the append's expected revision
 * detects a concurrent writer; the writer then catches up on the new events and decides the batch again.
 */
export class DeciderHandler<State, Command extends object, Event extends { type: string }, Reply, Metadata> {
  readonly stats: HandlerStats;
  readonly maxBatch: number;
  private readonly cache: AggregateCache<Aggregate<State, Command, Metadata>>;
  private readonly clock: Clock;
  private readonly retry: OptimisticRetry;
  private readonly snapshots: Snapshotting<State> | undefined;
  private readonly eventMetadata: (metadata: Metadata) => Record<string, unknown> | undefined;
  private readonly evolveRecorded: (state: State, page: readonly RecordedEvent[]) => State;

  constructor(
    private readonly store: EventStore,
    private readonly decider: Decider<State, Command, Event, Reply, Metadata>,
    private readonly streams: StreamNaming<Event>,
    options: DeciderHandlerOptions<State, Metadata>,
  ) {
    this.stats = options.stats ?? newHandlerStats();
    this.maxBatch = options.maxBatch ?? 1000;
    this.clock = options.clock ?? systemClock;
    this.retry = options.retry;
    this.snapshots = options.snapshots;
    this.eventMetadata = options.eventMetadata ?? (() => undefined);
    this.evolveRecorded = (state, page) => decider.evolve(state, page.map(streams.eventOf));
    const commit = this.commit.bind(this);
    const failure = options.failure ?? ((_id: string, error: unknown) => error);
    this.cache = new AggregateCache(
      options.cacheSize ?? 10_000,
      (id) => new Aggregate(id, decider.initialState(id), commit, this.maxBatch, failure),
    );
  }

  execute(id: string, command: Command, metadata: Metadata): Promise<CommandResult<Reply, Event>> {
    this.stats.commands += 1;
    return this.cache.use(id).queue.push('one', [command], metadata) as Promise<CommandResult<Reply, Event>>;
  }

  /**
   * Commands to one aggregate, decided in order and appended together: one queue entry (a batch of its own
   * when larger than `maxBatch`), all or nothing: the decider refuses the whole request with its first
   * refusal, and nothing of it is written. A store with an append limit refuses the request before any of it
   * is written when one of its commands cannot fit on its own; a request too large for one append is written
   * in parts (`commitInParts`), each of them all or nothing.
   */
  async executeAll(
    id: string,
    commands: readonly Command[],
    metadata: Metadata,
  ): Promise<CommandResult<Reply, Event>[]> {
    this.stats.commands += commands.length;
    const limit = this.store.maxAppendBytes;
    if (limit !== undefined && commands.length > 1) {
      // Before anything is written: the request's commands may go to the store in several appends.
      const refused = commandOverLimit(this.streams.streamOf(id), commands, limit);
      if (refused) throw refused;
    }
    if (commands.length === 0) return [];
    return (await this.cache.use(id).queue.push('many', commands, metadata)) as CommandResult<Reply, Event>[];
  }

  /** The aggregate's current state, including every command accepted before this call (in any process). */
  load(id: string, metadata: Metadata): Promise<State> {
    return this.cache.use(id).queue.push('load', [], metadata) as Promise<State>;
  }

  /** The cached state of an aggregate if it is exactly at `revision`, without I/O. */
  cachedState(id: string, revision: bigint): State | undefined {
    const aggregate = this.cache.peek(id);
    return aggregate?.revision === revision ? aggregate.state : undefined;
  }

  /** Waits for background writes (snapshots) to settle; call before closing the store. */
  async flush(): Promise<void> {
    await this.snapshots?.flush();
  }

  /**
   * Decides the batch on the cached state and appends with that state's revision as the expected one: if
   * another process wrote meanwhile, the append fails, the aggregate catches up and decides again. So a warm
   * aggregate reads nothing before deciding. A batch that writes nothing has no append to check its replies
   * (a rejection, a duplicate, a load), so the aggregate reads first.
   */
  private async commit(aggregate: Aggregate<State, Command, Metadata>, batch: Entry<Command, Metadata>[]) {
    let fresh = false; // the aggregate has read to the stream's end since this batch began
    for (let attempt = 0; ; attempt += 1) {
      if (!aggregate.warmed) {
        await this.warmUp(aggregate);
        fresh = true;
      }
      const decision = this.decider.decide(aggregate.state, batch, this.clock.now());
      const events = this.envelopes(batch, decision.outcomes);
      if (events.length === 0 && !fresh) {
        fresh = true;
        if (await this.catchUp(aggregate)) {
          await this.retry.beforeNext(aggregate.id, attempt); // others wrote: decide again on what they wrote
          continue;
        }
      }
      const limit = this.store.maxAppendBytes;
      if (limit !== undefined && events.length > 0 && appendBytes(events) > limit) {
        // More than the store takes in one append (EventStoreDB's MaxAppendSize). One command is refused
        // here, before the store, naming what made it large; a group is split by request, and a request of
        // many commands (a batch of acknowledgements, each answered on its own) by command.
        const only = batch.length === 1 ? batch[0]! : undefined;
        if (only?.commands.length === 1) {
          throw appendTooLarge(this.streams.streamOf(aggregate.id), only.commands, decision.outcomes, limit);
        }
        await (only ? aggregate.queue.commitInParts(only) : aggregate.queue.commitInHalves(batch));
        this.stats.appendsSplit += 1;
        return;
      }
      let position: Position | undefined;
      if (events.length > 0) {
        try {
          position = await this.append(aggregate, events);
        } catch (error) {
          if (!OptimisticRetry.lostRace(error)) throw error;
          this.stats.conflicts += 1;
          await this.retry.beforeNext(aggregate.id, attempt, error);
          await this.catchUp(aggregate); // another process wrote first: catch up and decide again
          fresh = true;
          continue;
        }
      }
      aggregate.state = decision.state;
      settle(batch, decision.state, decision.outcomes, position);
      this.snapshots?.committed(aggregate);
      return;
    }
  }

  /** The events to append for a batch's outcomes, each with its request's metadata and its schema version. */
  private envelopes(batch: readonly Entry<Command, Metadata>[], outcomes: readonly Outcome<Event, Reply>[]) {
    const events: NewEvent[] = [];
    let next = 0;
    for (const entry of batch) {
      let metadata: Record<string, unknown> | undefined;
      for (let i = 0; i < entry.commands.length; i += 1) {
        for (const event of outcomes[next + i]!.events) {
          metadata ??= this.eventMetadata(entry.metadata);
          events.push({
            id: newEventId(),
            type: event.type,
            data: event,
            metadata: versionedMetadata(event.type, metadata),
          });
        }
      }
      next += entry.commands.length;
    }
    return events;
  }

  private async append(
    aggregate: Aggregate<State, Command, Metadata>,
    events: NewEvent[],
  ): Promise<Position> {
    const result = await this.store.append(
      this.streams.streamOf(aggregate.id),
      events,
      aggregate.revision < 0n ? 'no_stream' : aggregate.revision,
    );
    this.stats.appends += 1;
    this.stats.eventsAppended += events.length;
    aggregate.revision = result.nextExpectedRevision;
    return result.position;
  }

  /** A cold aggregate starts from its latest snapshot, if any, so it reads only the events after it. */
  private async warmUp(aggregate: Aggregate<State, Command, Metadata>): Promise<void> {
    aggregate.warmed = true;
    const snapshot = await this.snapshots?.load(aggregate.id);
    if (snapshot && snapshot.revision > aggregate.revision) {
      aggregate.state = snapshot.state;
      aggregate.revision = snapshot.revision;
      aggregate.snapshot.revision = snapshot.revision;
    }
    await this.catchUp(aggregate);
  }

  /** Folds the events appended since the cached revision; whether there were any. */
  private async catchUp(aggregate: Aggregate<State, Command, Metadata>): Promise<boolean> {
    const stream = this.streams.streamOf(aggregate.id);
    let read = 0;
    const folded = await foldStream(this.store, stream, {
      initialState: aggregate.state,
      from: aggregate.revision + 1n,
      evolve: (state, page) => {
        read += page.length;
        return this.evolveRecorded(state, page);
      },
    });
    if (read === 0) return false;
    this.stats.eventsRead += read;
    aggregate.state = folded.state;
    aggregate.revision = folded.revision;
    return true;
  }
}
