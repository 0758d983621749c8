import type { EventFilter, EventStore, Position, RecordedEvent } from './port';

/** Events read at once when paging through a stream or the log: one read's memory stays bounded. */
export const READ_PAGE = 1000;

export interface StreamPagesOptions {
  direction?: 'forwards' | 'backwards';
  /** Inclusive. Defaults to the start (forwards) or the end (backwards). */
  fromRevision?: bigint;
  pageSize?: number;
}

/**
 * A stream's events, a page at a time (never an empty page), read as the consumer asks for them: a consumer
 * that stops early reads no further. A page shorter than `pageSize` is the last. A hard-deleted stream
 * throws StreamDeletedError, as `readStream` does.
 */
export async function* readStreamPages(
  store: Pick<EventStore, 'readStream'>,
  streamId: string,
  { direction = 'forwards', fromRevision, pageSize = READ_PAGE }: StreamPagesOptions = {},
): AsyncGenerator<RecordedEvent[], void, undefined> {
  let from = fromRevision;
  for (;;) {
    const page = await store.readStream(streamId, {
      ...(direction === 'backwards' ? { direction } : {}), // forwards is readStream's default
      ...(from !== undefined ? { fromRevision: from } : {}),
      maxCount: pageSize,
    });
    if (page.length > 0) yield page;
    if (page.length < pageSize) return;
    const last = page[page.length - 1]!.revision;
    if (direction === 'backwards' && last === 0n) return;
    // From the last event read, not from a count: a capped stream ($maxCount) starts past revision 0.
    from = direction === 'backwards' ? last - 1n : last + 1n;
  }
}

export interface AllPagesOptions {
  /** Exclusive: the events after it. Defaults to the start of the log. */
  after?: Position;
  filter?: EventFilter;
  pageSize?: number;
}

/** The global log forwards, a page at a time, as `readAll` gives it (tombstones included). */
export async function* readAllPages(
  store: Pick<EventStore, 'readAll'>,
  { after, filter, pageSize = READ_PAGE }: AllPagesOptions = {},
): AsyncGenerator<RecordedEvent[], void, undefined> {
  let from = after;
  for (;;) {
    const page = await store.readAll({
      ...(from ? { after: from } : {}),
      maxCount: pageSize,
      ...(filter ? { filter } : {}),
    });
    if (page.length > 0) yield page;
    if (page.length < pageSize) return;
    from = page[page.length - 1]!.position;
  }
}

export interface FoldStreamOptions<S> {
  /** The state before the event at `from`: the empty stream's state when `from` is 0 (the default). */
  initialState: S;
  /** The state after a page of events, oldest first: a fold over many events at once can be cheaper. */
  evolve: (state: S, events: RecordedEvent[]) => S;
  /** The first revision folded (inclusive). */
  from?: bigint;
  /** The last revision folded (inclusive); the stream's end when absent. */
  until?: bigint;
  /** Folds events while it holds: the first event for which it fails ends the fold (it is not folded). */
  takeWhile?: (event: RecordedEvent) => boolean;
  pageSize?: number;
}

/**
 * A state folded from a stream's events, and the revision it is at: the last event folded, or `from - 1`
 * when none was. A hard-deleted stream throws StreamDeletedError (its state is gone with it).
 */
export async function foldStream<S>(
  store: Pick<EventStore, 'readStream'>,
  streamId: string,
  { initialState, evolve, from = 0n, until, takeWhile, pageSize = READ_PAGE }: FoldStreamOptions<S>,
): Promise<{ state: S; revision: bigint }> {
  let state = initialState;
  let revision = from - 1n;
  const ended = (e: RecordedEvent) =>
    (until !== undefined && e.revision > until) || !(takeWhile?.(e) ?? true);
  if (until !== undefined && revision >= until) return { state, revision };
  for await (const page of readStreamPages(store, streamId, { fromRevision: from, pageSize })) {
    const cut = page.findIndex(ended);
    const events = cut < 0 ? page : page.slice(0, cut);
    if (events.length > 0) {
      state = evolve(state, events);
      revision = events[events.length - 1]!.revision;
    }
    if (cut >= 0 || (until !== undefined && revision >= until)) break;
  }
  return { state, revision };
}

/**
 * `lastPosition` for a store that has no cheaper way than reading the log's newest event (the memory store
 * holds it already; EventStoreDB has no read of a position alone).
 */
export async function newestEventPosition(store: Pick<EventStore, 'readAll'>): Promise<Position | undefined> {
  return (await store.readAll({ direction: 'backwards', maxCount: 1 }))[0]?.position;
}
