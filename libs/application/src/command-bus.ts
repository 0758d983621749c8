import { randomFillSync } from 'node:crypto';
import {
  decideBatch,
  fold,
  initialState,
  type Command,
  type Event,
  type JobState,
  type NamespaceGrant,
  type ReplyOf,
} from '@snapcat/domain';
import { StreamDeletedError, type EventStore, type Position } from '@snapcat/event-store';
import {
  DeciderHandler,
  newHandlerStats,
  type Clock,
  type Decider,
  type HandlerStats,
  type StreamNaming,
} from './decider-handler';
import type { Request } from './group-commit-queue';
import { OptimisticRetry } from './optimistic-retry';
import {
  AggregateSnapshotPolicy,
  newAggregateSnapshotStats,
  type AggregateSnapshotStats,
} from './snapshot-policy';
import { domainEvent, jobStream } from './streams';

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

/** Each command's namespace grant, when some caller of the batch is limited to namespaces. */
function grantsOf(batch: readonly Request<Command, CommandMetadata>[]): NamespaceGrant[] | undefined {
  if (batch.every((q) => q.metadata.namespaces === undefined || q.metadata.namespaces === '*'))
    return undefined;
  return batch.flatMap((q) => q.commands.map(() => q.metadata.namespaces ?? '*'));
}

/**
 * What savepoint directory names take that no client can predict (`savepointPath`): 48 random bits, from
 * the same CSPRNG, drawn a pool at a time: a `randomBytes` call per savepoint was 6 % of the main thread while
 * 10,000 periodic savepoints fired (bench #9).
 */
const ENTROPY_BYTES = 6;
const entropyPool = Buffer.alloc(ENTROPY_BYTES * 512);
let entropyDrawn = entropyPool.length;
const drawEntropy = (): string => {
  if (entropyDrawn === entropyPool.length) {
    randomFillSync(entropyPool);
    entropyDrawn = 0;
  }
  entropyDrawn += ENTROPY_BYTES;
  return entropyPool.toString('hex', entropyDrawn - ENTROPY_BYTES, entropyDrawn);
};

/** The job aggregate's rules (libs/domain) as the handler takes them: a batch decided with one draft. */
const jobDecider: Decider<JobState, Command, Event, ReplyOf<Command>, CommandMetadata> = {
  initialState,
  decide: (state, requests, now) =>
    decideBatch(
      state,
      requests.length === 1 ? requests[0]!.commands : requests.flatMap((q) => q.commands),
      now,
      grantsOf(requests),
      drawEntropy,
      requests.map((q) => q.commands.length),
    ),
  evolve: fold,
};

const jobStreams: StreamNaming<Event> = { streamOf: jobStream, eventOf: domainEvent };

/** A load reads; it writes nothing, so it has nothing to say in metadata. */
const LOAD: CommandMetadata = Object.freeze({});

/**
 * Runs commands against job aggregates: the decider handler (decision 0024) configured for jobs, with
 * group commit (decision 0002), aggregate snapshots (decision 0003), and a deleted stream answered as a
 * deleted job.
 */
export class CommandBus {
  readonly stats: HandlerStats & AggregateSnapshotStats;
  private readonly handler: DeciderHandler<JobState, Command, Event, ReplyOf<Command>, CommandMetadata>;

  constructor(store: EventStore, options: CommandBusOptions = {}) {
    // One object for both parts' counters: /metrics reads them all as the command bus's.
    this.stats = { ...newHandlerStats(), ...newAggregateSnapshotStats() };
    const snapshots = new AggregateSnapshotPolicy(
      store,
      { every: options.snapshotEvery ?? 250, onBackgroundError: options.onBackgroundError ?? (() => {}) },
      this.stats,
    );
    this.handler = new DeciderHandler(store, jobDecider, jobStreams, {
      retry: new OptimisticRetry({ attempts: (options.maxRetries ?? 10) + 1 }),
      clock: options.clock,
      maxBatch: options.maxBatch,
      cacheSize: options.cacheSize,
      snapshots,
      eventMetadata,
      failure: failureOf,
      stats: this.stats,
    });
  }

  /** Waits for background writes (aggregate snapshots) to settle; call before closing the store. */
  flush(): Promise<void> {
    return this.handler.flush();
  }

  execute<C extends Command>(command: C, metadata: CommandMetadata = {}): Promise<Executed<C>> {
    return this.handler.execute(command.jobId, command, metadata) as Promise<Executed<C>>;
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
    return this.handler.executeAll(jobId, commands, metadata) as Promise<Executed<C>[]>;
  }

  /** The job's current state, including every command accepted before this call. */
  load(jobId: string): Promise<JobState> {
    return this.handler.load(jobId, LOAD);
  }

  /** The job's current state, or undefined when its stream was hard-deleted (nothing of it is left). */
  async loadUnlessDeleted(jobId: string): Promise<JobState | undefined> {
    try {
      return await this.load(jobId);
    } catch (error) {
      if (error instanceof JobDeletedError) return undefined;
      throw error;
    }
  }

  /** The cached state of a job if it is exactly at `revision`, without I/O: a reader in this process may share it. */
  cachedState(jobId: string, revision: bigint): JobState | undefined {
    return this.handler.cachedState(jobId, revision);
  }
}
