// The console's only way to the data: POST /graphql (same origin) for queries and mutations, and the same
// with `accept: text/event-stream` for the live subscription (GraphQL over SSE, one connection per
// subscription). No DOM: the token comes from a Session (session.tsx keeps it in sessionStorage).
import { reconnectDelay, SseParser } from './sse';

export const ENDPOINT = '/graphql';

/** An error the console shows: the server's message and its `extensions.code` (or one of ours). */
export class ApiError extends Error {
  constructor(
    message: string,
    /** UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, CONFLICT, NOT_FOUND, UNAVAILABLE, ...; NETWORK, HTTP_ERROR. */
    readonly code: string,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Where the token comes from, and who hears that the server wants (another) one. */
export interface Session {
  token(): string | null;
  unauthenticated(error: ApiError): void;
}

interface ErrorEntry {
  message?: unknown;
  extensions?: { code?: unknown };
}

/**
 * The error in an answer, if any: HTTP 401 is UNAUTHENTICATED whatever the body; otherwise the first of the
 * body's `errors` (its message and extensions.code); otherwise, for a failed status, the status itself.
 */
export function errorOf(status: number, body: unknown): ApiError | null {
  const errors = (body as { errors?: unknown } | null)?.errors;
  const first = (Array.isArray(errors) ? errors[0] : undefined) as ErrorEntry | undefined;
  const message = typeof first?.message === 'string' ? first.message : null;
  const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : null;
  if (status === 401) return new ApiError(message ?? 'a token is required', 'UNAUTHENTICATED', status);
  if (first) {
    return new ApiError(
      message ?? 'the request failed',
      code ?? (status === 403 ? 'FORBIDDEN' : 'GRAPHQL_ERROR'),
      status,
    );
  }
  if (status >= 400) {
    return new ApiError(
      `the server answered HTTP ${status}`,
      status === 403 ? 'FORBIDDEN' : 'HTTP_ERROR',
      status,
    );
  }
  if (!body || typeof body !== 'object' || !('data' in body)) {
    return new ApiError('the server answered something that is not GraphQL', 'PROTOCOL', status);
  }
  return null;
}

/** Anything thrown on the way, as an ApiError (fetch's TypeError: the server cannot be reached). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if ((error as { name?: string } | null)?.name === 'AbortError') return new ApiError('aborted', 'ABORTED');
  return new ApiError(
    `the server cannot be reached (${error instanceof Error ? error.message : String(error)})`,
    'NETWORK',
  );
}

export function graphqlHeaders(token: string | null, accept = 'application/json'): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept,
    // The CSRF prevention the server asks of browsers (services/api/src/graphql.ts).
    'x-graphql-csrf': '1',
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  };
}

/** The answer's JSON, or null when it is not JSON (a proxy's error page: errorOf speaks of the status). */
const jsonBody = (response: Response): Promise<unknown> => response.json().catch(() => null);

/** A query or mutation: its data, or an ApiError (UNAUTHENTICATED ones told to the session first). */
export async function request<T>(
  session: Session,
  query: string,
  variables: Record<string, unknown> = {},
  signal?: AbortSignal,
): Promise<T> {
  try {
    const response = await fetch(ENDPOINT, {
      method: 'POST',
      headers: graphqlHeaders(session.token()),
      body: JSON.stringify({ query, variables }),
      signal,
    });
    const body = await jsonBody(response);
    const error = errorOf(response.status, body);
    if (error) throw error;
    return (body as { data: T }).data;
  } catch (thrown) {
    const error = toApiError(thrown);
    if (error.code === 'UNAUTHENTICATED') session.unauthenticated(error);
    throw error;
  }
}

export type LiveState = 'connecting' | 'live' | 'retrying' | 'closed';

export interface SubscriptionHandlers<T> {
  next(data: T): void;
  /** (Re)connected; `reconnected` after an interruption, during which events may have been missed. */
  open?(reconnected: boolean): void;
  state?(state: LiveState, error?: ApiError): void;
}

/** Codes no reconnect can cure. */
const FINAL = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'GRAPHQL_VALIDATION_FAILED',
]);

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });

/** Opens the subscription's event stream, or throws why the server would not. */
async function openStream(
  session: Session,
  query: string,
  variables: Record<string, unknown>,
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers: graphqlHeaders(session.token(), 'text/event-stream'),
    body: JSON.stringify({ query, variables }),
    signal,
  });
  const type = response.headers.get('content-type') ?? '';
  if (response.ok && response.body && type.includes('text/event-stream')) return response.body;
  throw (
    errorOf(response.status, await jsonBody(response)) ??
    new ApiError('the subscription was not accepted', 'PROTOCOL', response.status)
  );
}

/** Hands each `next` event's data to `next` until the stream ends or the server says `complete`. */
async function readEvents<T>(stream: ReadableStream<Uint8Array>, next: (data: T) => void): Promise<void> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    for (const message of parser.push(decoder.decode(value, { stream: true }))) {
      if (message.event === 'complete') {
        await reader.cancel().catch(() => undefined);
        return;
      }
      if (message.event !== 'next') continue;
      let payload: unknown;
      try {
        payload = JSON.parse(message.data);
      } catch {
        throw new ApiError('the server sent an event that is not JSON', 'PROTOCOL');
      }
      const error = errorOf(200, payload);
      if (error) throw error;
      next((payload as { data: T }).data);
    }
  }
}

/**
 * Runs a subscription until `signal` aborts: reconnects after an error or the end of the stream, waiting
 * `delay(attempt)` (1 s doubling to 15 s; reset once connected). Stops for good on an error no retry cures.
 */
export function subscribe<T>(
  session: Session,
  query: string,
  variables: Record<string, unknown>,
  handlers: SubscriptionHandlers<T>,
  signal: AbortSignal,
  delay: (attempt: number) => number = reconnectDelay,
): Promise<void> {
  let attempt = 0;
  let connectedBefore = false;
  const once = async () => {
    handlers.state?.('connecting');
    const stream = await openStream(session, query, variables, signal);
    handlers.open?.(connectedBefore);
    handlers.state?.('live');
    connectedBefore = true;
    attempt = 0;
    await readEvents<T>(stream, (data) => handlers.next(data));
  };
  return (async () => {
    while (!signal.aborted) {
      try {
        await once();
        // The server ended the stream (a restart, a deploy): connect again.
        if (!signal.aborted) handlers.state?.('retrying');
      } catch (thrown) {
        if (signal.aborted) return;
        const error = toApiError(thrown);
        if (FINAL.has(error.code)) {
          if (error.code === 'UNAUTHENTICATED') session.unauthenticated(error);
          handlers.state?.('closed', error);
          return;
        }
        handlers.state?.('retrying', error);
      }
      if (signal.aborted) return;
      await sleep(delay(attempt), signal);
      attempt += 1;
    }
  })();
}
