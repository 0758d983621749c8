// The browser's side of the session: the token (sessionStorage only: it goes when the tab closes, and never
// to localStorage), the viewer it stands for, and the GraphQL client bound to them.
import { createContext } from 'preact';
import { useContext, useState } from 'preact/hooks';
import { type ApiError, request, type Session, subscribe, type SubscriptionHandlers } from './graphql';
import type { Viewer } from './queries';

export const TOKEN_KEY = 'snapcat.token';

const store = (): Storage | null => {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the token lives as long as the page
  }
};
let memoryToken: string | null = null;

export const tokens = {
  get(): string | null {
    return store()?.getItem(TOKEN_KEY) ?? memoryToken;
  },
  set(token: string) {
    memoryToken = token;
    store()?.setItem(TOKEN_KEY, token);
  },
  clear() {
    memoryToken = null;
    store()?.removeItem(TOKEN_KEY);
  },
};

/**
 * Whether the page must ask for a token before anything else: the server said that it needs one (a meta
 * element it adds to the page, services/api/src/console.ts) and none is kept. Otherwise the console asks for
 * the viewer, and a 401 shows the form.
 */
export const tokenNeeded = (): boolean =>
  tokens.get() === null &&
  document.querySelector('meta[name="snapcat-authentication"]')?.getAttribute('content') === 'token';

const listeners = new Set<(error: ApiError) => void>();

/** Tells `listener` whenever the server answers UNAUTHENTICATED; returns the unsubscribe. */
export function onUnauthenticated(listener: (error: ApiError) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const session: Session = {
  token: () => tokens.get(),
  unauthenticated: (error) => listeners.forEach((listener) => listener(error)),
};

/** A query or mutation with the session's token. */
export const gql = <T,>(query: string, variables?: Record<string, unknown>, signal?: AbortSignal) =>
  request<T>(session, query, variables, signal);

/** A subscription with the session's token, until `signal` aborts. */
export const live = <T,>(
  query: string,
  variables: Record<string, unknown>,
  handlers: SubscriptionHandlers<T>,
  signal: AbortSignal,
) => subscribe<T>(session, query, variables, handlers, signal);

export const ViewerContext = createContext<Viewer>({
  name: 'anonymous',
  scopes: [],
  namespaces: null,
  authenticationEnabled: false,
});
export const useViewer = () => useContext(ViewerContext);

/** A number kept in sessionStorage under `key` (a preference of this tab, such as the stale threshold). */
export function useSessionNumber(key: string, initial: number): [number, (value: number) => void] {
  const [value, setValue] = useState(() => {
    const stored = Number(store()?.getItem(key) ?? NaN);
    return Number.isFinite(stored) ? stored : initial;
  });
  const update = (next: number) => {
    setValue(next);
    store()?.setItem(key, String(next));
  };
  return [value, update];
}
