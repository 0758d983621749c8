// The console's only way to the data: POST /graphql (same origin) for queries and mutations, and the same
// with `accept: text/event-stream` for the live subscription (GraphQL over SSE, one connection per
// subscription). No DOM: the token comes from a Session (session.tsx keeps it in sessionStorage).
import { reconnectDelay, SseParser } from './sse';

export const ENDPOINT = '/graphql';

/** An error the console shows: the server's message and its `extensions.code` (or one of ours). */
export class ApiError extends Error {
  constructor(
    message: string,
    /**
     * UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, CONFLICT, NOT_FOUND, UNAVAILABLE, ...; RATE_LIMITED (429),
     * NETWORK, HTTP_ERROR.
     */
    readonly code: string,
    readonly status: number | null = null,
    /** The answer's Retry-After, in seconds, when it had one. */
    readonly retryAfterS: number | null = null,
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

/** The headers of an answer errorOf reads (fetch's Headers). */
export interface AnswerHeaders {
  get(name: string): string | null;
}

const text = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);

/** The code of a problem+json answer (or of a failed status without a body saying more), from its status. */
function codeOfStatus(status: number): string {
  const codes: Record<number, string> = {
    401: 'UNAUTHENTICATED',
    403: 'FORBIDDEN',
    404: 'NOT_FOUND',
    409: 'CONFLICT',
    429: 'RATE_LIMITED',
    503: 'UNAVAILABLE',
  };
  return codes[status] ?? (status === 400 || status === 413 ? 'BAD_USER_INPUT' : 'HTTP_ERROR');
}

/**
 * An RFC 9457 problem (what the API answers before GraphQL sees the request: a spent rate limit, a body too
 * large): its `detail` (else its `title`), each of its `errors` the detail does not already say, named by its
 * field, and the wait Retry-After asks for.
 */
function problemError(status: number, body: unknown, retryAfterS: number | null): ApiError {
  const problem = (body ?? {}) as { title?: unknown; detail?: unknown; errors?: unknown };
  let message = text(problem.detail) ?? text(problem.title) ?? `the server answered HTTP ${status}`;
  const entries = Array.isArray(problem.errors)
    ? (problem.errors as { field?: unknown; message?: unknown }[])
    : [];
  const said = entries
    .map((e) => {
      const what = text(e?.message);
      const field = text(e?.field);
      return what && field ? `${field}: ${what}` : what;
    })
    .filter((line): line is string => line !== null && !message.includes(line));
  if (said.length > 0) message += ` (${said.join('; ')})`;
  if (retryAfterS !== null && !/retry/i.test(message)) message += ` (retry in ${retryAfterS} s)`;
  return new ApiError(message, codeOfStatus(status), status, retryAfterS);
}

/** Retry-After in seconds (the delay form; a date is read as no advice). */
function retryAfterOf(headers: AnswerHeaders | undefined): number | null {
  const value = headers?.get('retry-after')?.trim();
  return value && /^\d+$/.test(value) ? Number(value) : null;
}

/**
 * The error in an answer, if any: a problem+json answer speaks for itself (problemError); HTTP 401 is
 * UNAUTHENTICATED whatever the body; otherwise the first of the body's `errors` (its message and
 * extensions.code); otherwise, for a failed status, the status itself.
 */
export function errorOf(status: number, body: unknown, headers?: AnswerHeaders): ApiError | null {
  const retryAfterS = retryAfterOf(headers);
  if (status >= 400 && (headers?.get('content-type') ?? '').includes('application/problem+json')) {
    return problemError(status, body, retryAfterS);
  }
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
      retryAfterS,
    );
  }
  if (status >= 400) {
    const code = status === 403 || status === 429 || status === 503 ? codeOfStatus(status) : 'HTTP_ERROR';
    return new ApiError(`the server answered HTTP ${status}`, code, status, retryAfterS);
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
    const error = errorOf(response.status, body, response.headers);
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
    errorOf(response.status, await jsonBody(response), response.headers) ??
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
