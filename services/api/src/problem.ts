import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { z } from 'zod';
import { CommandRejected, UnreadableEventError, fieldName } from '@snapcat/domain';
import {
  AppendTooLargeError,
  StoreAccessDeniedError,
  StoreFullError,
  AppendOutcomeUnknownError,
  StoreUnavailableError,
  StreamDeletedError,
} from '@snapcat/event-store';
import { ConcurrencyExhaustedError, JobDeletedError } from '@snapcat/application';
import { isRedisUnavailableError, sendProblem, type FieldError } from '@snapcat/runtime';

/** An RFC 9457 problem. Thrown by handlers, rendered by the error middleware as application/problem+json. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly errors: FieldError[] = [],
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
  }
}

/** A body over the parser's limit (bytes): 413 naming `body` and `max-size`, as GraphQL's 413 does. */
export function bodyTooLargeProblem(limit: number | undefined): Problem {
  const most = limit === undefined ? 'the size allowed' : `${limit} bytes`;
  return new Problem(413, 'too-large', 'Payload too large', `the body is larger than ${most}`, [
    { field: 'body', rule: 'max-size', message: `must be at most ${most}` },
  ]);
}

export function validationProblem(
  error: z.ZodError,
  location: 'body' | 'path' | 'query',
  input: unknown,
): Problem {
  const errors = error.issues.flatMap((issue): FieldError[] => {
    const path = fieldName(location, issue.path);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        field: `${path}.${key}`,
        rule: 'unknown-field',
        message: 'is not a known field',
      }));
    }
    const missing = valueAt(input, issue.path) === undefined;
    return [
      {
        field: path,
        rule: missing ? 'required' : ruleOf(issue),
        message: missing ? 'is required' : issue.message,
      },
    ];
  });
  // A value past Number.MAX_SAFE_INTEGER fails both zod's int() and its max(): one field, one rule, one error.
  const seen = new Set<string>();
  const distinct = errors.filter(({ field, rule }) => {
    const key = `${field}\u0000${rule}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const first = distinct[0];
  return new Problem(
    400,
    'invalid-request',
    'Invalid request',
    first ? `${first.field}: ${first.message}` : 'the request is invalid',
    distinct,
  );
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function ruleOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small':
      return issue.origin === 'array' || issue.origin === 'string' ? 'min-length' : 'minimum';
    case 'too_big':
      return issue.origin === 'array' || issue.origin === 'string' ? 'max-length' : 'maximum';
    case 'invalid_type':
      return `type-${issue.expected}`;
    case 'invalid_value':
      return 'one-of';
    case 'invalid_format':
      return `format-${issue.format}`;
    case 'custom':
      // A refinement names its rule in `params.rule` (the domain's rule names, so both paths agree).
      return typeof issue.params?.rule === 'string' ? issue.params.rule : 'custom';
    case 'invalid_union':
      return 'one-of'; // none of the forms the field may take (its message names them)
    default:
      return issue.code.replace(/_/g, '-');
  }
}

/** Fields of a rejected command that come from the URL path rather than the body. */
const PATH_FIELDS = new Set(['jobId', 'snapshotId', 'subscriptionId', 'deliveryId']);

const REJECTIONS: Record<CommandRejected['code'], [number, string, string]> = {
  NOT_FOUND: [404, 'not-found', 'Not found'],
  CONFLICT: [409, 'conflict', 'Conflict'],
  INVALID: [400, 'invalid-request', 'Invalid request'],
  FORBIDDEN: [403, 'forbidden', 'Forbidden'],
};

function fromCommandRejected(e: CommandRejected, inBody = false): Problem {
  const [status, slug, title] = REJECTIONS[e.code];
  // `body`: the request as a whole (one webhook subscription too many), no one field of it.
  // A batch's refused command names its place in the body: `body[1].checkpointType` (a review).
  const body = e.commandIndex === undefined ? 'body' : `body[${e.commandIndex}]`;
  const field =
    e.field === 'body'
      ? body
      : PATH_FIELDS.has(e.field) && !inBody
        ? `path.${e.field}`
        : `${body}.${e.field}`;
  return new Problem(status, slug, title, e.message, [{ field, rule: e.rule, message: e.message }]);
}

/**
 * A rejection as a request that sends the field in its body sees it: a restore's `snapshotId` (the source)
 * is `body.snapshotId`, where a snapshot's own routes have it in the path. Anything else as it is.
 */
export function rejectedInBody(error: unknown, field: string): unknown {
  return error instanceof CommandRejected && error.field === field ? fromCommandRejected(error, true) : error;
}

/**
 * A body that is not JSON, or JSON that is neither an object nor an array (body-parser's strict mode; the
 * front door's): `null`, `5` or `"text"` are JSON, so they are told so (`type-object`), not "not valid JSON".
 */
export function invalidJsonProblem(message: string | undefined, text?: string): Problem {
  const scalar = text === undefined ? undefined : jsonScalar(text);
  if (scalar !== undefined) {
    const detail = `body: must be a JSON object (or an array where the route takes a batch), not ${scalar}`;
    return new Problem(400, 'invalid-request', 'Invalid request', detail, [
      { field: 'body', rule: 'type-object', message: detail.slice('body: '.length) },
    ]);
  }
  return new Problem(400, 'invalid-json', 'Invalid JSON', 'the body is not valid JSON', [
    { field: 'body', rule: 'json', message: message ?? 'not valid JSON' },
  ]);
}

/** What kind of JSON scalar `text` is (`null`, `a number`...), or undefined when it is not one. */
function jsonScalar(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null) return 'null';
  return typeof value === 'object' ? undefined : `a ${typeof value}`;
}

/** 415 for a body declared in a charset other than UTF-8 (body-parser would decode utf-16 and utf-7 too). */
export function unsupportedCharset(detail: string): Problem {
  return new Problem(415, 'unsupported-encoding', 'Unsupported encoding', detail, [
    { field: 'header.content-type', rule: 'utf-8', message: detail },
  ]);
}

/** 415 for a body compressed in a way the route does not read (its Content-Encoding). */
export function unsupportedEncoding(detail: string): Problem {
  return new Problem(415, 'unsupported-encoding', 'Unsupported encoding', detail, [
    { field: 'header.content-encoding', rule: 'supported-encoding', message: detail },
  ]);
}

/**
 * A JSON body must be UTF-8 (RFC 8259, section 8.1): one that is not would be read with U+FFFD in place of
 * its bad bytes, and recorded so. A 400 naming the body, rule `utf-8`.
 */
export function requireUtf8(bytes: Uint8Array): void {
  if (isUtf8(bytes)) return;
  throw new Problem(400, 'invalid-json', 'Invalid JSON', 'the body is not valid UTF-8', [
    { field: 'body', rule: 'utf-8', message: 'is not valid UTF-8, which JSON must be' },
  ]);
}

/** Retry-After of a 503 for the embedded store's full disk: it lasts until an operator frees space. */
const STORE_FULL_RETRY_AFTER_S = 30;

/** Retry-After of a 503 for the store refusing snapcat's credentials: it lasts until an operator acts. */
export const ACCESS_DENIED_RETRY_AFTER_S = 30;

/**
 * A job whose stream was hard-deleted from the event store (an operator's tombstone): gone for good, 410,
 * naming the job (path.jobId, rule `deleted`).
 */
export function goneProblem(error: JobDeletedError | StreamDeletedError): Problem {
  const field = error instanceof JobDeletedError ? 'path.jobId' : 'stream';
  return new Problem(410, 'gone', 'Gone', error.message, [
    { field, rule: 'deleted', message: error.message },
  ]);
}

/** 404 for what a path names that does not exist (`path.<field>`, rule `exists`), or for the path itself. */
export function notFound(field: string, detail: string): Problem {
  const location = field === 'path' ? 'path' : `path.${field}`;
  return new Problem(404, 'not-found', 'Not found', detail, [
    { field: location, rule: 'exists', message: detail },
  ]);
}

/** 405 for a method the API does not serve at a path it serves others at (`Allow` lists those). */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): Problem {
  const detail = `${method} is not served at ${path}; ${allowed.join(', ')} ${allowed.length === 1 ? 'is' : 'are'}`;
  return new Problem(405, 'method-not-allowed', 'Method not allowed', detail, [
    { field: 'method', rule: 'allowed-methods', message: detail },
  ]);
}

/**
 * A hard-deleted job, as the caller may be told of it: gone (410) to a caller of every namespace; to one
 * limited to some, not found (404) as for a job never registered (R55): the deleted stream no longer says
 * which namespace it was in, and "gone" would tell another team's token the id was used.
 */
export function deletedJobProblem(
  error: JobDeletedError | StreamDeletedError,
  limited: boolean,
  /** A read answers an unknown job with rule `exists`, a command with the domain's `job-exists`. */
  read: boolean,
): Problem {
  if (!limited || !(error instanceof JobDeletedError)) return goneProblem(error);
  const detail = `job ${error.jobId} is not registered`;
  if (read) return notFound('jobId', detail);
  return fromCommandRejected(new CommandRejected('NOT_FOUND', 'jobId', 'job-exists', detail));
}

/**
 * The body parsed, but what it records exceeds what the event store takes in one append (EventStoreDB's
 * MaxAppendSize): nothing was written, and the same request cannot succeed. Names the field that weighs
 * most when one command of the request is over the limit on its own (`body[3].stateHandles` in an array).
 */
function appendTooLarge(error: AppendTooLargeError, body: unknown): Problem {
  const limit = error.maxBytes === undefined ? '' : ` (${error.maxBytes} bytes)`;
  const at = Array.isArray(body) ? `body[${error.command ?? 0}]` : 'body';
  const field = error.field === undefined ? 'body' : `${at}.${error.field}`;
  const size = error.bytes === undefined ? '' : `${field} records ${error.bytes} bytes, `;
  const detail = `${size}more than the event store accepts in one append${limit}; send less at once`;
  return new Problem(413, 'too-large', 'Payload too large', detail, [
    { field, rule: 'max-append-size', message: detail },
  ]);
}

/**
 * Maps every error to a problem: client mistakes to 4xx (an append larger than the store takes to 413, a
 * deleted job to 410),
 * an unreachable or busy store to 503, the rest to 500.
 *
 * The store refusing snapcat's own credentials (a write to a stream its user may not write, a refused
 * login) is a 503 too, `store-access-denied`, naming the permission: the caller did nothing wrong (not a
 * 4xx), it is no bug (not a 500), nothing was written, and the same request succeeds once an operator
 * grants the permission, without a restart. Retry-After is 30 s, and the error is logged (once a minute
 * per permission: a client retrying must not flood the log).
 */
export function problemMiddleware(respond: ProblemResponder): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => respond(error, req, res);
}

/** An http-errors client error (body-parser's), which says its message may be shown (`expose`). */
/**
 * A path parameter that does not decode (`/jobs/%zz`): express's router throws a URIError marked 400 but not
 * `expose`d, which would otherwise be answered as an internal error.
 */
export function malformedPathProblem(error: unknown): Problem | undefined {
  if (!(error instanceof URIError) || (error as { status?: unknown }).status !== 400) return undefined;
  const detail = `the path holds a malformed percent-escape (${error.message})`;
  return new Problem(400, 'invalid-path', 'Invalid path', detail, [
    { field: 'path', rule: 'percent-encoding', message: detail },
  ]);
}

function isClientHttpError(e: {
  status?: number;
  expose?: unknown;
  message?: string;
}): e is { status: number; message: string } {
  return typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true;
}

export type ProblemResponder = (error: unknown, req: ProblemRequest, res: ServerResponse) => void;

/** A request as problemResponder reads it: its method, and its parsed body (to name a field too large). */
export type ProblemRequest = Pick<IncomingMessage, 'method'> & { body?: unknown };

/** The mapping, on Node's request and response (the front door's too). */
export function problemResponder(
  log: (msg: string, fields: object) => void,
  /** Whether the request's caller is limited to some namespaces (`deletedJobProblem`). */
  limitedCaller: (req: object) => boolean = () => false,
): ProblemResponder {
  const loggedAt = new Map<string, number>();
  return (error, req, res) => {
    if (error instanceof Problem) {
      // Every 503 is worth a retry: one second unless the handler said otherwise.
      if (error.status === 503 && !res.getHeader('Retry-After')) res.setHeader('Retry-After', '1');
      return sendProblem(res, error);
    }
    if (error instanceof CommandRejected) return sendProblem(res, fromCommandRejected(error));
    const e = error as { type?: string; status?: number; message?: string; limit?: number; body?: string };
    if (e.type === 'entity.parse.failed')
      return sendProblem(res, invalidJsonProblem(e.message, typeof e.body === 'string' ? e.body : undefined));
    if (e.type === 'entity.too.large') return sendProblem(res, bodyTooLargeProblem(e.limit));
    if (e.type === 'charset.unsupported') return sendProblem(res, unsupportedCharset(String(e.message)));
    if (e.type === 'encoding.unsupported') return sendProblem(res, unsupportedEncoding(String(e.message)));
    const badPath = malformedPathProblem(error);
    if (badPath) return sendProblem(res, badPath);
    if (isClientHttpError(e)) {
      // The rest of what the body parser refuses (a body that does not inflate, one cut short): the client's.
      const detail = `the body cannot be read: ${e.message}`;
      return sendProblem(
        res,
        new Problem(e.status, 'unreadable-body', 'Unreadable body', detail, [
          { field: 'body', rule: 'readable', message: detail },
        ]),
      );
    }
    if (error instanceof AppendTooLargeError) return sendProblem(res, appendTooLarge(error, req.body));
    if (error instanceof JobDeletedError || error instanceof StreamDeletedError) {
      const read = req.method === 'GET' || req.method === 'HEAD';
      return sendProblem(res, deletedJobProblem(error, limitedCaller(req), read));
    }
    const unavailable = unavailableProblem(error, (key, msg, fields) => {
      // Said once a minute per cause: each request meets it again until an operator acts.
      if (Date.now() - (loggedAt.get(key) ?? -Infinity) < 60_000) return;
      loggedAt.set(key, Date.now());
      log(msg, fields);
    });
    if (unavailable) {
      res.setHeader('Retry-After', String(unavailable.retryAfterS));
      return sendProblem(res, unavailable.problem);
    }
    log('request failed', { error: error instanceof Error ? error.stack : String(error) });
    return sendProblem(res, new Problem(500, 'internal', 'Internal error', 'an unexpected error occurred'));
  };
}

/**
 * The 503s: the store refuses snapcat's credentials, holds an event a newer snapcat wrote, or does not answer.
 * Undefined for any other error. `say` logs a cause (keyed, so that the caller can say each once a while).
 */
export function unavailableProblem(
  error: unknown,
  say: (key: string, msg: string, fields: object) => void = () => {},
): { problem: Problem; retryAfterS: number } | undefined {
  if (error instanceof StoreAccessDeniedError) {
    say(error.permission, 'the event store refused snapcat', {
      error: error.message,
      permission: error.permission,
    });
    const problem = new Problem(503, 'store-access-denied', 'Service unavailable', error.message, [], {
      permission: error.permission,
    });
    return { problem, retryAfterS: ACCESS_DENIED_RETRY_AFTER_S };
  }
  if (error instanceof UnreadableEventError) {
    // The job's log holds an event this snapcat cannot read (a newer one wrote it, decision 0037): no answer
    // from this process would be right; an upgraded replica can give one.
    say(error.message, 'an event of the log cannot be read', { error: error.message });
    const problem = new Problem(
      503,
      'unreadable-event',
      'Service unavailable',
      error.message,
      [],
      error.named,
    );
    return { problem, retryAfterS: 1 };
  }
  if (error instanceof StoreFullError) {
    const said =
      error.sqliteCode === 'SQLITE_FULL'
        ? 'the event store is full: appends are refused'
        : `the event store's disk refuses writes (${error.sqliteCode}): appends are refused`;
    say(`full ${error.file}`, said, { file: error.file });
    const problem = new Problem(503, 'store-full', 'Service unavailable', error.message);
    return { problem, retryAfterS: STORE_FULL_RETRY_AFTER_S };
  }
  if (error instanceof AppendOutcomeUnknownError) {
    say(`unknown ${error.streamId}`, 'the event store did not confirm an append', { error: error.message });
    const problem = new Problem(503, 'outcome-unknown', 'Service unavailable', error.message);
    return { problem, retryAfterS: 1 };
  }
  if (error instanceof StoreUnavailableError || error instanceof ConcurrencyExhaustedError) {
    const problem = new Problem(503, 'unavailable', 'Service unavailable', (error as Error).message);
    return { problem, retryAfterS: 1 };
  }
  if (isRedisUnavailableError(error)) {
    // Redis failing over, loading, out of memory, or gone mid-request (decision 0048): nothing to mend here.
    const detail = `Redis cannot answer now: ${(error as Error).message}`;
    say(`redis ${(error as Error).message.split(' ')[0]}`, 'redis could not answer a request', {
      error: detail,
    });
    return { problem: new Problem(503, 'unavailable', 'Service unavailable', detail), retryAfterS: 1 };
  }
  return undefined;
}
