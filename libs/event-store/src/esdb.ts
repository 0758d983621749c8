import type * as EsdbClient from '@eventstore/db-client';
import type {
  AllStreamSubscription,
  EventStoreDBClient,
  Filter,
  JSONType,
  ResolvedEvent,
} from '@eventstore/db-client';
import { connectionUser, toClientConnectionString } from './connection';
import { Hearing, NoAnswerError, answeredWithin, itemsWithin } from './esdb-no-answer';
import { newestEventPosition } from './pages';
import {
  AppendOutcomeUnknownError,
  AppendTooLargeError,
  START,
  STREAM_DELETED,
  StoreAccessDeniedError,
  StoreUnavailableError,
  StreamDeletedError,
  WrongExpectedVersionError,
  comparePositions,
  matchesFilter,
  type AppendResult,
  type EventFilter,
  type EventHandler,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StoreAccess,
  type LogSubscribeOptions,
  type LogSubscription,
} from './port';

/**
 * The client, required when the first EsdbEventStore is made rather than when this module loads: with gRPC
 * it is 2.2 MB of JavaScript that every start on SQLite would parse for nothing (BENCHMARKS.md #17).
 */
let loadedClient: typeof EsdbClient | undefined;
function esdb(): typeof EsdbClient {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- on first use, as said above
  return (loadedClient ??= require('@eventstore/db-client') as typeof EsdbClient);
}

const PAGE = 1000;
/**
 * The first page of a client-side read of $all (KurrentDB's own read batch, `DefaultReadBatchSize`), then
 * doubled up to PAGE: a backwards read of the last event (/readyz, metrics, reconcile) takes the few
 * records after it (the standard projections' links), not a thousand, which may hold 1 MB snapshots.
 */
const FIRST_PAGE = 32;

/**
 * A filtered subscription's checkpoint interval, as the multiplier the client sends: the server reports a
 * checkpoint each time it has scanned this many times its search window of events (32, KurrentDB
 * `Enumerator.DefaultReadBatchSize`, as this client names no window), matching or not: every 1,024 events
 * of $all. A restart scans again at most about that many events the filter skips.
 */
const CHECKPOINT_INTERVAL_MULTIPLIER = 32;

/**
 * A checkpoint the client reported, put into the subscription's own stream where it came (the client
 * calls `checkpointReached` while it turns a response into stream items), so that it reaches the loop
 * after the events before it and before the ones after it.
 */
class CheckpointReached {
  constructor(readonly position: Position) {}
}

/** The subscription's CaughtUp, put into its stream after the catch-up's events (see readAllOnServer). */
const CAUGHT_UP = Symbol('caught up');

/**
 * The production adapter: EventStoreDB through the official gRPC client. Event ids are chosen before the
 * append, so the server deduplicates a retried append. Filters run on the server where the client lets
 * them: a subscription's stream prefixes (it then reports checkpoints), and a forwards filtered readAll,
 * read as a catch-up subscription until CaughtUp, as client 6.x sends no filter on a plain read of $all
 * (see readAllOnServer). The server filters on one kind (stream prefixes or event types); the other, and
 * the system events the port leaves out, are filtered here. Backwards and unfiltered reads of $all page
 * through the log and filter on the client.
 */
export class EsdbEventStore implements EventStore {
  private readonly client: EventStoreDBClient;
  /** Streams whose `$maxCount` this process has seen in force (so it is read once per stream, not per call). */
  private readonly maxCounts = new Map<string, number>();
  /** The user the connection string logs in as, named when the server refuses it (never the password). */
  private readonly user: string | undefined;

  /**
   * `connectionString`: `esdb://`, `esdb+discover://`, or the same as `kurrentdb://` (mapped for the client:
   * see connection.ts). `maxAppendBytes`: the server's MaxAppendSize, 1 MiB unless the cluster is configured
   * otherwise.
   */
  constructor(
    connectionString: string,
    readonly maxAppendBytes = 1_048_576,
    /** How long a call may go without a word from the node before it fails (NoAnswerError). */
    private readonly noAnswerMs = NO_ANSWER_MS,
  ) {
    this.client = esdb().EventStoreDBClient.connectionString(toClientConnectionString(connectionString));
    this.user = connectionUser(connectionString);
  }

  /**
   * A failure as the port names it: the server refusing the login or the operation (StoreAccessDeniedError),
   * unreachable or busy (StoreUnavailableError), or the error itself.
   */
  private failure(error: unknown, access: StoreAccess): unknown {
    const code = (error as { code?: unknown } | null)?.code;
    // The client throws AccessDeniedError for PERMISSION_DENIED with the `access-denied` trailer, for
    // UNAUTHENTICATED (a login refused: HTTP 401) and for BatchAppend's AccessDenied status (no code); an
    // append's server-features probe fails with the raw gRPC error.
    if (
      error instanceof esdb().AccessDeniedError ||
      code === GRPC_PERMISSION_DENIED ||
      code === GRPC_UNAUTHENTICATED
    ) {
      const reason = code === GRPC_UNAUTHENTICATED ? 'not-authenticated' : 'access-denied';
      return new StoreAccessDeniedError(reason, access, this.user, { cause: error });
    }
    return portError(error, access.streamId);
  }

  /**
   * Appends; sent again, the same events with the same expected revision, when the server refused for a while
   * or did not say whether it wrote them (a commit timeout, a deadline, a connection dropped mid-call). For an
   * exact expected revision (or none yet), EventStoreDB answers a repeat of an append it wrote as written
   * (idempotent writes, KurrentDB's IndexWriter.CheckCommit: the same ids in the slots after that revision),
   * and one whose slots another writer took with a wrong expected version, so a repeat tells the first one's
   * outcome. With `any` it would look only in a node's cache of recent ids (empty after a restart or a new
   * leader): such an append is not repeated once its outcome is unknown. When nothing tells the outcome:
   * AppendOutcomeUnknownError. Repeats start only within APPEND_RETRY_BUDGET_MS of the first attempt.
   */
  async append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    const started = Date.now();
    const attempts: string[] = [];
    let unknownOutcome = false;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.appendOnce(streamId, events, expected);
      } catch (error) {
        // A refusal that a repeat would meet again (credentials, a wrong revision, a size) is answered at once.
        if (!(error instanceof StoreUnavailableError) || error instanceof StoreAccessDeniedError) throw error;
        attempts.push(error.message);
        unknownOutcome ||= outcomeUnknown(error.cause);
        const pause = APPEND_RETRY_PAUSES_MS[attempt];
        const repeatable = !unknownOutcome || typeof expected === 'bigint' || expected === 'no_stream';
        if (pause === undefined || !repeatable || Date.now() - started + pause > APPEND_RETRY_BUDGET_MS) {
          if (!unknownOutcome) throw error;
          throw new AppendOutcomeUnknownError(streamId, attempts, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  private async appendOnce(
    streamId: string,
    events: NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    try {
      const append = this.client.appendToStream(
        streamId,
        events.map((e) =>
          esdb().jsonEvent({
            id: e.id,
            type: e.type,
            data: e.data as JSONType,
            metadata: (e.metadata ?? {}) as JSONType,
          }),
        ),
        { expectedRevision: expected },
      );
      const result = await answeredWithin(append, this.noAnswerMs);
      if (!result.position) throw new Error('EventStoreDB answered an append without a position');
      return { nextExpectedRevision: result.nextExpectedRevision, position: result.position };
    } catch (error) {
      if (error instanceof esdb().WrongExpectedVersionError) {
        const actual = error.actualVersion;
        throw new WrongExpectedVersionError(
          streamId,
          expected,
          typeof actual === 'bigint' ? actual : 'no_stream',
        );
      }
      if (error instanceof esdb().MaxAppendSizeExceededError) {
        throw new AppendTooLargeError(streamId, error.maxAppendSize || undefined);
      }
      throw this.failure(error, { operation: 'write', streamId });
    }
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const backwards = options.direction === 'backwards';
    const out: RecordedEvent[] = [];
    try {
      const read = this.client.readStream(streamId, {
        direction: backwards ? esdb().BACKWARDS : esdb().FORWARDS,
        fromRevision: options.fromRevision ?? (backwards ? 'end' : 'start'),
        maxCount: options.maxCount ?? Number.MAX_SAFE_INTEGER,
      });
      for await (const resolved of itemsWithin(read, this.noAnswerMs, () => read.cancel())) {
        out.push(toRecorded(resolved));
      }
      return out;
    } catch (error) {
      if (error instanceof esdb().StreamNotFoundError) return [];
      throw this.failure(error, { operation: 'read', streamId });
    }
  }

  /**
   * Sets `$maxCount` in the stream's metadata (a `$metadata` event in `$$<stream>`), keeping what else the
   * metadata holds; read first, so that a stream already capped costs a read, not a write, once per process.
   */
  async setStreamMaxCount(streamId: string, maxCount: number): Promise<void> {
    if (this.maxCounts.get(streamId) === maxCount) return;
    try {
      const { metadata } = await answeredWithin(this.client.getStreamMetadata(streamId), this.noAnswerMs);
      if (metadata?.maxCount !== maxCount) {
        const write = this.client.setStreamMetadata(streamId, { ...metadata, maxCount });
        await answeredWithin(write, this.noAnswerMs);
      }
      this.maxCounts.set(streamId, maxCount);
    } catch (error) {
      throw this.failure(error, { operation: 'write', streamId });
    }
  }

  /** EventStoreDB has no read of a position alone: the newest event, read once (its subscriptions do not poll). */
  lastPosition(): Promise<Position | undefined> {
    return newestEventPosition(this);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const { filter } = options;
    const onServer = filter && (filter.eventTypes ?? filter.streamNamePrefixes);
    if (onServer && options.direction !== 'backwards') return this.readAllOnServer(filter, options);
    const backwards = options.direction === 'backwards';
    const max = options.maxCount ?? Number.MAX_SAFE_INTEGER;
    const out: RecordedEvent[] = [];
    // START (-1) is no position EventStoreDB can take: it means the beginning.
    let after = options.after && options.after.commit >= 0n ? options.after : undefined;
    let from: Position | 'start' | 'end' = after ?? (backwards ? 'end' : 'start');
    let page = Math.min(PAGE, Math.max(FIRST_PAGE, max));
    try {
      for (;;) {
        let seen = 0;
        let last: Position | undefined;
        const read = this.client.readAll({
          direction: backwards ? esdb().BACKWARDS : esdb().FORWARDS,
          fromPosition: from,
          maxCount: page,
        });
        let full = false;
        for await (const resolved of itemsWithin(read, this.noAnswerMs, () => read.cancel())) {
          seen += 1;
          const event = toRecorded(resolved);
          last = event.position;
          // Whether the server includes the event at the position we start from, the port excludes it.
          if (after && comparePositions(event.position, after) !== (backwards ? -1 : 1)) continue;
          if (!delivered(event) || !matchesFilter(event, options.filter)) continue;
          out.push(event);
          if (out.length >= max) {
            full = true;
            break;
          }
        }
        if (full) {
          await read.cancel(); // end the call on the server too, or the client keeps it open until dispose
          return out;
        }
        if (seen < page || !last) return out;
        from = after = last; // the next page starts at the last event read, which it must not repeat
        page = Math.min(PAGE, page * 2);
      }
    } catch (error) {
      throw this.failure(error, ALL);
    }
  }

  /**
   * A filtered forwards read of $all, filtered on the server: a catch-up subscription with the filter from
   * `after`, ended at its CaughtUp (the end of the log as the server found it; a later event may come
   * before it or not, as the port allows) or at `maxCount` events. Needs a server that sends CaughtUp
   * (EventStoreDB 23.10 and later; KurrentDB `Enumerator.AllSubscriptionFiltered.GoLive`).
   */
  private async readAllOnServer(filter: EventFilter, options: ReadAllOptions): Promise<RecordedEvent[]> {
    const max = options.maxCount ?? Number.MAX_SAFE_INTEGER;
    // The server's checkpoints say it is scanning: a log with few matching events sends little else.
    const hearing = new Hearing();
    const onServer = serverFilter(filter, () => hearing.heard());
    // An empty list of prefixes or types matches nothing (matchesFilter); the server would take it as all.
    if (!onServer || max <= 0) return [];
    const after = options.after && options.after.commit >= 0n ? options.after : undefined;
    const out: RecordedEvent[] = [];
    let subscription: AllStreamSubscription | undefined;
    let silent = false;
    try {
      const caughtUp = (subscription = this.client.subscribeToAll({
        fromPosition: after ?? 'start',
        filter: onServer,
      }));
      // Emitted while the client turns the CaughtUp response into stream items: after the events before it.
      caughtUp.on('caughtUp', () => caughtUp.push(CAUGHT_UP));
      const items = subscription as AsyncIterable<ResolvedEvent | typeof CAUGHT_UP>;
      const cancel = () => caughtUp.unsubscribe();
      for await (const item of itemsWithin(items, this.noAnswerMs, cancel, hearing)) {
        if (item === CAUGHT_UP) break;
        const event = toRecorded(item);
        if (after && comparePositions(event.position, after) <= 0) continue;
        if (!delivered(event) || !matchesFilter(event, filter)) continue;
        out.push(event);
        if (out.length >= max) break;
      }
      return out;
    } catch (error) {
      silent = error instanceof NoAnswerError;
      throw this.failure(error, ALL);
    } finally {
      // Ends the call on the server, which would otherwise go on live; not waited for once the node went
      // silent: the client's unsubscribe waits for the connection first, with no deadline.
      const ended = subscription?.unsubscribe();
      if (silent) void ended?.catch(() => undefined);
      else await ended;
    }
  }

  subscribeToAll(
    options: LogSubscribeOptions,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): LogSubscription {
    let position = options.from;
    let closed = false;
    let current: { unsubscribe(): Promise<void> } | undefined;
    const prefixes = options.filter?.streamNamePrefixes;

    let caughtUp = false;
    const run = async () => {
      let backoff = 100;
      while (!closed) {
        try {
          const subscription = this.client.subscribeToAll({
            fromPosition: comparePositions(position, START) === 0 ? 'start' : position,
            ...(prefixes
              ? {
                  filter: esdb().streamNameFilter({
                    prefixes,
                    checkpointInterval: CHECKPOINT_INTERVAL_MULTIPLIER,
                    checkpointReached: (sub, at) => {
                      sub.push(new CheckpointReached(at));
                    },
                  }),
                }
              : {}),
          });
          current = subscription;
          // Emitted while the client turns the CaughtUp response into stream items: after the events before it.
          subscription.on('caughtUp', () => subscription.push(CAUGHT_UP));
          type Item = ResolvedEvent | CheckpointReached | typeof CAUGHT_UP;
          for await (const item of subscription as AsyncIterable<Item>) {
            if (closed) return;
            backoff = 100;
            if (item === CAUGHT_UP) {
              if (!caughtUp) await options.onCaughtUp?.();
              caughtUp = true;
              continue;
            }
            if (item instanceof CheckpointReached) {
              // The server may repeat a checkpoint, or send one at the event it just sent.
              if (comparePositions(item.position, position) <= 0) continue;
              await options.onCheckpoint?.(item.position);
              position = item.position;
              continue;
            }
            const event = toRecorded(item);
            if (delivered(event) && matchesFilter(event, options.filter)) await handler(event);
            position = event.position;
          }
          if (closed) return;
        } catch (error) {
          if (closed) return;
          const reconnectable =
            error instanceof esdb().UnavailableError ||
            error instanceof esdb().CancelledError ||
            error instanceof esdb().DeadlineExceededError;
          if (!reconnectable) {
            onError?.(this.failure(error, ALL));
            return;
          }
        }
        // The server went away: resubscribe from the last event or checkpoint delivered, with backoff.
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    };
    const loop = run();
    return {
      async close() {
        closed = true;
        await current?.unsubscribe().catch(() => {});
        await loop;
      },
    };
  }

  /**
   * Closes the client's channel. Nothing is left to write by then (appends are answered, the command bus
   * flushed), and the channel's dispose can wait on a call the server never ends: seen 3 times in 12 loaded
   * runs of the lifecycle test, a SIGTERM outlasting its 10 s grace and exiting 1. Bounded.
   */
  async close(): Promise<void> {
    const gaveUp = new Promise<void>((resolve) => setTimeout(resolve, DISPOSE_WAIT_MS).unref());
    await Promise.race([this.client.dispose(), gaveUp]);
  }
}

/** How long closing waits for the client's channel to be disposed of. */
const DISPOSE_WAIT_MS = 2000;

/**
 * The part of a filter the server applies (it takes stream prefixes or event types, not both): the event
 * types when given, as they are the narrower part of snapcat's filters (reconcile's `JobRegistered` among
 * all job events), else the prefixes. Types go as prefixes (a type's own prefix matches it; matchesFilter
 * drops a longer type). Undefined for an empty list, which matches nothing. `checkpointReached`: called at
 * each checkpoint the server sends while it scans (every 1,024 events it read; the client drops them without).
 */
function serverFilter(filter: EventFilter, checkpointReached?: () => void): Filter | undefined {
  const base = {
    checkpointInterval: CHECKPOINT_INTERVAL_MULTIPLIER,
    ...(checkpointReached ? { checkpointReached } : {}),
  };
  if (filter.eventTypes) {
    return filter.eventTypes.length
      ? esdb().eventTypeFilter({ ...base, prefixes: filter.eventTypes })
      : undefined;
  }
  const prefixes = filter.streamNamePrefixes ?? [];
  return prefixes.length ? esdb().streamNameFilter({ ...base, prefixes }) : undefined;
}

/**
 * What of $all reaches snapcat: no system stream (`$…`: metadata streams, projections' links, the server's
 * own), and no system event inside a user stream, except a tombstone, which consumers must see.
 */
function delivered(event: RecordedEvent): boolean {
  if (event.streamId.startsWith('$')) return false;
  return !event.type.startsWith('$') || event.type === STREAM_DELETED;
}

function toRecorded(resolved: ResolvedEvent): RecordedEvent {
  const e = resolved.event;
  if (!e || !e.position) throw new Error('EventStoreDB delivered an event without a record or position');
  return {
    id: e.id,
    type: e.type,
    streamId: e.streamId,
    revision: e.revision,
    position: e.position,
    // A tombstone's data is empty bytes: none.
    data: e.type === STREAM_DELETED ? null : e.data,
    metadata: (e.metadata ?? {}) as Record<string, unknown>,
    created: new Date(e.created),
  };
}

/**
 * The pauses before an append is sent again (EsdbEventStore.append), and the time after its first attempt
 * within which a repeat may start: with commit timeouts (2 s by default) a command answers within about 7 s;
 * after a client deadline (10 s) it is not repeated, so that it answers about when it did before.
 */
const APPEND_RETRY_PAUSES_MS = [250, 1000];
const APPEND_RETRY_BUDGET_MS = 6000;
/**
 * How long a call waits for a word from the node: above the client's own deadline for an append (10 s), so
 * that its error speaks when it has one; a streaming read fails after this long without an event.
 */
const NO_ANSWER_MS = 12_000;

/**
 * Whether the server may have made a write it did not confirm: a commit or prepare timeout, a deadline, a
 * cancel, or the connection lost mid-call. Not a node that said it was not ready, too busy or not the leader,
 * nor a call that found no connection to go out on: those wrote nothing.
 */
function outcomeUnknown(error: unknown): boolean {
  if (error instanceof NoAnswerError) return true;
  if (error instanceof esdb().UnavailableError) return !WROTE_NOTHING.test(error.message);
  return (
    error instanceof esdb().TimeoutError ||
    error instanceof esdb().DeadlineExceededError ||
    error instanceof esdb().CancelledError
  );
}

const ALL: StoreAccess = { operation: 'read', streamId: '$all' };
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

/** gRPC status codes of a server that cannot be reached (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE). */
const UNREACHABLE_GRPC_CODES = new Set([1, 4, 14]);

/**
 * A node that is not ready (starting, rebuilding its index, electing a leader) or too busy answers a
 * BatchAppend with a status the client does not recognise: it throws UnknownError("Could not recognize
 * Server Is Not Ready" / "... Server Is Busy"). Only those messages are a busy node; any other
 * UnknownError is a genuine failure and stays one. (Unary calls get UNAVAILABLE "Server Is Not Ready"
 * or "Server Is Too Busy", which the client already turns into UnavailableError.)
 */
const NOT_READY_OR_BUSY = /\bServer Is (Not Ready|Busy|Too Busy)\b/;

/** An UnavailableError's words for a call that wrote nothing (gRPC's channel and picker; a node's refusals). */
const WROTE_NOTHING = new RegExp(
  'No connection established|Channel closed before call started|Name resolution failed|' +
    `Picked subchannel .* is unhealthy|${NOT_READY_OR_BUSY.source}`,
);

/**
 * The errors after which the caller may retry later, as StoreUnavailableError (HTTP 503 with
 * Retry-After): the server unreachable, not ready or too busy, a commit or prepare timeout (ABORTED,
 * TimeoutError; whether the append was written is unknown, the event ids make a retry idempotent), a
 * deadline, or a follower that is not the leader (the client reconnects to the leader it names). A
 * hard-deleted stream is StreamDeletedError.
 */
function portError(error: unknown, streamId: string): unknown {
  if (error instanceof esdb().StreamDeletedError) return new StreamDeletedError(error.streamName ?? streamId);
  if (
    error instanceof NoAnswerError ||
    error instanceof esdb().UnavailableError ||
    error instanceof esdb().DeadlineExceededError ||
    error instanceof esdb().CancelledError ||
    error instanceof esdb().TimeoutError ||
    error instanceof esdb().NotLeaderError ||
    (error instanceof esdb().UnknownError && NOT_READY_OR_BUSY.test(error.message)) ||
    // An append's server-features probe fails with the raw gRPC error, not the client's wrapped one.
    UNREACHABLE_GRPC_CODES.has((error as { code?: unknown } | null)?.code as number)
  ) {
    // A BatchAppend's timeout comes without a message: its class names it.
    const words = (error as Error).message || (error as Error).constructor.name;
    return new StoreUnavailableError(`EventStoreDB unavailable: ${words}`, {
      cause: error,
    });
  }
  return error;
}
