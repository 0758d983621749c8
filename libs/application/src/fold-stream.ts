import type { EventStore, RecordedEvent } from '@snapcat/event-store';

const READ_PAGE = 1000;

/** A state folded from a stream, the revision it reflects, and how many events the fold read. */
export interface Folded<State> {
  state: State;
  /** The last revision folded; `after` when the stream held nothing beyond it. */
  revision: bigint;
  read: number;
}

/**
 * Folds the events of `stream` after revision `after` into `state`, a page at a time: what every catch-up of
 * a cached aggregate reads. The one place that pages through a stream for a fold (to be replaced by the
 * event store's paged iterator when it lands). The state is the given one when nothing was read.
 */
export async function foldStream<State>(
  store: EventStore,
  stream: string,
  after: { state: State; revision: bigint },
  evolve: (state: State, page: readonly RecordedEvent[]) => State,
): Promise<Folded<State>> {
  let { state, revision } = after;
  let read = 0;
  for (;;) {
    const page = await store.readStream(stream, { fromRevision: revision + 1n, maxCount: READ_PAGE });
    if (page.length === 0) break;
    read += page.length;
    state = evolve(state, page);
    revision = page[page.length - 1]!.revision;
    if (page.length < READ_PAGE) break;
  }
  return { state, revision, read };
}
