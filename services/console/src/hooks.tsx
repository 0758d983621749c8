// Hooks the pages share: loading (with abort and reload), polling, the live subscription, the clock, the
// colour scheme, and running an action with its outcome.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { type ApiError, type LiveState, toApiError } from './graphql';
import { LIVE } from './queries';
import { live } from './session';

export interface Resource<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload(): void;
  /**
   * Reloads, or once the load in flight ends if there is one (a poll's tick, a live event: aborting the load, a
   * load slower than the ticks never ended; skipped, a change during the load would not be seen).
   */
  refresh(): void;
}

/**
 * Loads `load` when `deps` change and on `reload()`; a new load aborts the one in flight (`refresh()` leaves it
 * be and loads once more after it). The data stays while reloading (no flicker); an error keeps the last data
 * too.
 */
export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Resource<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const inFlight = useRef<AbortController | null>(null);
  /** A refresh was asked for while a load was in flight. */
  const again = useRef(false);
  const loader = useRef(load);
  loader.current = load;
  const reload = useCallback(() => {
    const start = () => {
      inFlight.current?.abort();
      again.current = false;
      const controller = new AbortController();
      inFlight.current = controller;
      setState((s) => ({ ...s, loading: true }));
      const settled = () => {
        if (inFlight.current === controller) inFlight.current = null;
        return !controller.signal.aborted;
      };
      loader.current(controller.signal).then(
        (data) => {
          if (!settled()) return;
          setState({ data, loading: false });
          if (again.current) start();
        },
        (error: unknown) => {
          if (!settled()) return;
          setState((s) => ({ data: s.data, error: toApiError(error), loading: false }));
          if (again.current) start();
        },
      );
    };
    start();
    // The caller's deps decide when the load changes (the loader itself is read from a ref).
  }, deps);
  const refresh = useCallback(() => {
    if (inFlight.current) again.current = true;
    else reload();
  }, [reload]);
  useEffect(() => {
    reload();
    return () => inFlight.current?.abort();
  }, [reload]);
  return { data: state.data, error: state.error, loading: state.loading, reload, refresh };
}

/** Calls `tick` every `ms` while the tab is visible. */
export function usePolling(tick: () => void, ms: number) {
  const latest = useRef(tick);
  latest.current = tick;
  useEffect(() => {
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') latest.current();
    }, ms);
    const onVisible = () => {
      if (document.visibilityState === 'visible') latest.current();
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [ms]);
}

/** The current time, renewed every `ms` (for "3 min ago"). */
export function useNow(ms = 15_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** While a page's reads fail under an open subscription: the first read again after this, then twice as long. */
const READ_RETRY_FIRST_MS = 2_000;
const READ_RETRY_MAX_MS = 30_000;
/** Refusals that reading again will not change (the token, the address): not retried on a timer. */
const LASTING_REFUSALS = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'BAD_USER_INPUT', 'NOT_FOUND', 'CONFLICT']);

/**
 * The job's snapshot events, live (GraphQL over SSE): `onChange` runs 150 ms after the last of a burst, after a
 * reconnect (events may have been missed), and whenever the subscription opens while the page's last reads
 * failed (`readError`: a first load refused, with the service or Redis away, is read again once it is back).
 * While the subscription is open and the reads fail for a while (a read-model rebuild answers 503 for some
 * seconds; the link dropped a read), `onChange` runs again on a timer, 2 s then twice as long up to 30 s (or
 * the answer's Retry-After), while the tab is visible, until a read succeeds: the page said Stale until the
 * job's next event, which a quiet job may not have for hours. The subscription ends when the page does.
 */
export function useLiveJob(
  jobId: string,
  onChange: () => void,
  readError: ApiError | undefined,
): { state: LiveState; error?: ApiError } {
  const [status, setStatus] = useState<{ state: LiveState; error?: ApiError }>({ state: 'connecting' });
  const latest = useRef(onChange);
  latest.current = onChange;
  const failed = useRef(readError !== undefined);
  failed.current = readError !== undefined;
  const retries = useRef(0);
  useEffect(() => {
    retries.current = 0;
  }, [jobId]);
  // Each failed read is a new error: the next try is timed from it.
  useEffect(() => {
    if (readError === undefined) retries.current = 0;
    if (readError === undefined || status.state !== 'live' || LASTING_REFUSALS.has(readError.code)) {
      return undefined;
    }
    const backoff = Math.min(READ_RETRY_MAX_MS, READ_RETRY_FIRST_MS * 2 ** retries.current);
    const delay = Math.max(backoff, (readError.retryAfterS ?? 0) * 1000);
    let timer: ReturnType<typeof setTimeout>;
    const retry = () => {
      if (document.visibilityState !== 'visible') {
        timer = setTimeout(retry, delay);
        return;
      }
      retries.current += 1;
      latest.current();
    };
    timer = setTimeout(retry, delay);
    return () => clearTimeout(timer);
  }, [readError, status.state]);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const changed = () => {
      clearTimeout(timer);
      timer = setTimeout(() => latest.current(), 150);
    };
    void live<unknown>(
      LIVE,
      { jobId },
      {
        next: changed,
        open: (reconnected) => {
          if (reconnected || failed.current) changed();
        },
        state: (state, error) => setStatus(error ? { state, error } : { state }),
      },
      controller.signal,
    );
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [jobId]);
  return status;
}

const DARK = '(prefers-color-scheme: dark)';

/** 'dark' or 'light', following the system setting as it changes. */
export function useColorScheme(): 'light' | 'dark' {
  const query = () => (window.matchMedia?.(DARK).matches ? 'dark' : 'light');
  const [scheme, setScheme] = useState<'light' | 'dark'>(query);
  useEffect(() => {
    const media = window.matchMedia?.(DARK);
    if (!media) return undefined;
    const changed = () => setScheme(media.matches ? 'dark' : 'light');
    media.addEventListener('change', changed);
    return () => media.removeEventListener('change', changed);
  }, []);
  return scheme;
}

export interface Actions {
  busy: boolean;
  notice: string | null;
  error: ApiError | null;
  /** Runs `action`; its resolved text becomes the notice, its error the alert. Resolves whether it worked. */
  run(action: () => Promise<string>): Promise<boolean>;
  dismiss(): void;
}

const RECORDED_NOTICE =
  'Recorded. The page shows it once the read model catches up (Redis or the projector is behind): do not send it again.';

/** An action's outcome, for the page's notice (role=status) or alert (role=alert). */
export function useActions(): Actions {
  const [state, setState] = useState<{ busy: boolean; notice: string | null; error: ApiError | null }>({
    busy: false,
    notice: null,
    error: null,
  });
  const run = useCallback(async (action: () => Promise<string>) => {
    setState({ busy: true, notice: null, error: null });
    try {
      const notice = await action();
      setState({ busy: false, notice, error: null });
      return true;
    } catch (error) {
      const failed = toApiError(error);
      // Stored, not yet shown (the read model is behind, or Redis away): done, and must not be sent again.
      if (failed.code === 'RECORDED') {
        setState({ busy: false, notice: RECORDED_NOTICE, error: null });
        return true;
      }
      setState({ busy: false, notice: null, error: failed });
      return false;
    }
  }, []);
  const dismiss = useCallback(() => setState((s) => ({ ...s, notice: null, error: null })), []);
  return { ...state, run, dismiss };
}

/** The document's title while the page shows. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · snapcat console` : 'snapcat console';
  }, [title]);
}
