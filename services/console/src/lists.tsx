// A list read page by page through a connection's `endCursor` ("Load more"), refreshed when the live
// subscription says something changed.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { type ApiError, toApiError } from './graphql';
import { type Connection, readUpTo } from './queries';

export interface PagedList<T> {
  items: T[];
  hasMore: boolean;
  /** The first page arrived. */
  loaded: boolean;
  loading: boolean;
  error: ApiError | undefined;
  more(): void;
  refresh(): void;
  /** Changes the rows shown at once (what a mutation answered), until the next read. */
  patch(update: (item: T) => T): void;
}

interface State<T> {
  items: T[];
  endCursor: string | null;
  hasMore: boolean;
  loaded: boolean;
  loading: boolean;
  error: ApiError | undefined;
}

const FIRST_READ: State<never> = {
  items: [],
  endCursor: null,
  hasMore: false,
  loaded: false,
  loading: true,
  error: undefined,
};

/** The list after a page arrived: appended to what is shown (`append`), or instead of it. */
function withPage<T>(s: State<T>, page: Connection<T>, append: boolean): State<T> {
  const nodes = page.edges.map((edge) => edge.node);
  return {
    items: append ? [...s.items, ...nodes] : nodes,
    // An empty page after the end keeps the cursor it was read after.
    endCursor: page.pageInfo.endCursor ?? (append ? s.endCursor : null),
    hasMore: page.pageInfo.hasNextPage,
    loaded: true,
    loading: false,
    error: undefined,
  };
}

type Read = [first: number, after: string | null, append: boolean];

/** What a refresh reads: as many as are shown, from the top (newest first, whose rows change). */
function refreshRead<T>(s: State<T>, pageSize: number): Read {
  if (!s.loaded) return [pageSize, null, false];
  // As many as are shown, however many "Load more"s that took (a refresh cut 560 rows back to 500).
  return [Math.max(pageSize, s.items.length), null, false];
}

/** A list read a page at a time, newest first: "Load more" reads on; a refresh reads again what is shown. */
export function usePagedList<T>(
  fetchPage: (first: number, after: string | null, signal: AbortSignal) => Promise<Connection<T>>,
  pageSize: number,
  deps: unknown[],
): PagedList<T> {
  const [state, setState] = useState<State<T>>(FIRST_READ);
  // The state as of the last change (not the last render): a refresh after a read decides on it at once.
  const current = useRef(state);
  const update = useCallback((change: (s: State<T>) => State<T>) => {
    current.current = change(current.current);
    setState(current.current);
  }, []);
  const fetcher = useRef(fetchPage);
  fetcher.current = fetchPage;
  const inFlight = useRef<AbortController | null>(null);
  /** A refresh was asked for while a read was in flight: it runs once that one ends. */
  const again = useRef(false);
  const refreshNow = useRef<() => void>(() => undefined);

  const go = useCallback((first: number, after: string | null, append: boolean) => {
    inFlight.current?.abort();
    again.current = false;
    const controller = new AbortController();
    inFlight.current = controller;
    update((s) => ({ ...s, loading: true }));
    readUpTo((f, a) => fetcher.current(f, a, controller.signal), first, after)
      .then(
        (page) => (s: State<T>) => withPage(s, page, append),
        (error: unknown) => (s: State<T>) => ({ ...s, loading: false, error: toApiError(error) }),
      )
      .then((change) => {
        if (inFlight.current === controller) inFlight.current = null;
        if (controller.signal.aborted) return;
        update(change);
        if (again.current) refreshNow.current();
      });
  }, []);

  useEffect(() => {
    update(() => FIRST_READ);
    go(pageSize, null, false);
    return () => inFlight.current?.abort();
    // The caller's deps (filters, the job) start the list over.
  }, deps);

  const more = useCallback(() => {
    const s = current.current;
    if (s.hasMore && s.endCursor) go(pageSize, s.endCursor, true);
  }, [go, pageSize]);

  // Never aborts a read in flight (on a slow link, events coming faster than the reads would abort each one):
  // refreshes once it ends instead.
  const refresh = useCallback(() => {
    if (inFlight.current) {
      again.current = true;
      return;
    }
    go(...refreshRead(current.current, pageSize));
  }, [go, pageSize]);
  refreshNow.current = refresh;

  const patch = useCallback((change: (item: T) => T) => {
    update((s) => ({ ...s, items: s.items.map(change) }));
  }, []);

  return {
    patch,
    items: state.items,
    hasMore: state.hasMore,
    loaded: state.loaded,
    loading: state.loading,
    error: state.error,
    more,
    refresh,
  };
}
