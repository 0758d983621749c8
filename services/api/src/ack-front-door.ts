import type { IncomingMessage, ServerResponse } from 'node:http';
import { principalOf, crossSiteProblem, type accessCheck } from './access';
import type { RequestObserver } from './metrics';
import { invalidJsonProblem, type ProblemRequest } from './problem';
import type { UseCases } from './use-cases';

/** The acknowledgement route, as express declares it and /metrics labels it. */
export const ACK_ROUTE = '/api/v1/jobs/:jobId/snapshots/:snapshotId/acks';

/** The plain form of the route: no query string, no escaped character, no trailing slash, lower case. */
const PLAIN_ACK_PATH = /^\/api\/v1\/jobs\/([^/%?]+)\/snapshots\/([^/%?]+)\/acks$/;

/** JSON in UTF-8, among the types the express route's body parser takes (application/json, ...+json). */
const JSON_IN_UTF8 = /^application\/(?:json|[^\s/;]+\+json)\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

export interface AckFrontDoorDeps {
  /** The app's request observer: the same id, counters and log line as express's requests. */
  observe: RequestObserver;
  /** Whether tokens are configured: without them the cross-site guard applies (access.ts). */
  authenticationOn: boolean;
  /** The app's access check: identity, rate limit, scope. */
  access: ReturnType<typeof accessCheck>;
  acknowledge: UseCases['acknowledge'];
  /** The app's error mapping (problemMiddleware's). */
  respondWithProblem: (error: unknown, req: ProblemRequest, res: ServerResponse) => void;
  /** The most a body may hold; a larger one is left to express, which refuses it (413). */
  bodyLimit: number;
}

/**
 * Acknowledgements are the hot path: a job's subtasks send thousands a second. Through express each cost
 * twice what a bare express route does (bench/NOTES.md, eighteenth round), most of it in express's
 * per-request machinery, so the plain ones are answered before express (decision 0036): the same request id,
 * metrics and log line, cross-site guard, access check and rate limit, body parse, use case and problems as
 * the express route, in Node's request and response. Anything else — a query string, an escaped, cased or
 * slashed path, another content type or charset, a compressed, chunked, empty or too large body — goes on to
 * the express route, which answers every form. Returns whether it took the request.
 */
export function ackFrontDoor(deps: AckFrontDoorDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const path = PLAIN_ACK_PATH.exec(req.url ?? '');
    if (!path || !isPlainJsonBody(req, deps.bodyLimit)) return false;
    const request: IncomingMessage & ProblemRequest = req;
    const fail = (error: unknown) => deps.respondWithProblem(error, request, res);
    const requestId = deps.observe(req, res, () => ACK_ROUTE, req.url);
    const crossSite = deps.authenticationOn ? undefined : crossSiteProblem(req);
    if (crossSite) {
      fail(crossSite);
      return true;
    }
    deps.access(req, req.url!, req.socket.remoteAddress, res, (refused) => {
      if (refused) return fail(refused);
      readJson(req)
        .then(async (body) => {
          request.body = body;
          const caller = { requestId, principal: principalOf(req) };
          const { many, replies } = await deps.acknowledge(
            caller,
            { jobId: path[1], snapshotId: path[2] },
            body,
          );
          sendJson(res, many ? replies : replies[0]);
        })
        .catch(fail);
    });
    return true;
  };
}

/** A body of a declared length within the limit, JSON in UTF-8, neither compressed nor chunked. */
function isPlainJsonBody(req: IncomingMessage, limit: number): boolean {
  const { headers } = req;
  const length = Number(headers['content-length']);
  return (
    length > 0 &&
    length <= limit &&
    headers['transfer-encoding'] === undefined &&
    (headers['content-encoding'] === undefined || headers['content-encoding'] === 'identity') &&
    JSON_IN_UTF8.test(headers['content-type'] ?? '')
  );
}

/** The body as JSON, as the express route's parser reads it: strict (an object or an array), BOM dropped. */
function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks)
        .toString('utf8')
        .replace(/^\uFEFF/, '');
      const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1];
      if (first !== '{' && first !== '[') {
        return reject(invalidJsonProblem(`Unexpected token ${first ?? 'end'} at the start of the body`));
      }
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(invalidJsonProblem((error as Error).message));
      }
    });
  });
}

function sendJson(res: ServerResponse, value: unknown): void {
  const text = JSON.stringify(value);
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
