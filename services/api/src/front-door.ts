import type { IncomingMessage, ServerResponse } from 'node:http';
import { principalOf, crossSiteProblem, type accessCheck } from './access';
import type { RequestObserver } from './metrics';
import { sendJson } from '@snapcat/runtime';
import { invalidJsonProblem, requireUtf8, type ProblemRequest } from './problem';
import type { Caller, UseCases } from './use-cases';

/** The acknowledgement route, as express declares it and /metrics labels it. */
export const ACK_ROUTE = '/api/v1/jobs/:jobId/snapshots/:snapshotId/acks';

/** The plain form of the ack route: no query string, no escaped character, no trailing slash, lower case. */
const PLAIN_ACK_PATH = /^\/api\/v1\/jobs\/([^/%?]+)\/snapshots\/([^/%?]+)\/acks$/;

/** JSON in UTF-8, among the types the express route's body parser takes (application/json, ...+json). */
const JSON_IN_UTF8 = /^application\/(?:json|[^\s/;]+\+json)\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

export interface FrontDoorDeps {
  /** The app's request observer: the same id, counters and log line as express's requests. */
  observe: RequestObserver;
  /** Whether tokens are configured: without them the cross-site guard applies (access.ts). */
  authenticationOn: boolean;
  /** The app's access check: identity, rate limit, scope. */
  access: ReturnType<typeof accessCheck>;
  acknowledge: UseCases['acknowledge'];
  /** The most an ack request's body may hold; a larger one is left to express, which refuses it (413). */
  bodyLimit: number;
  /** GraphQL (yoga), its endpoint, and the most its request body may hold; absent: express answers GraphQL. */
  graphql?: {
    handle: (req: IncomingMessage, res: ServerResponse) => unknown;
    endpoint: string;
    bodyLimit: number;
  };
  /** The app's error mapping (problemMiddleware's). */
  respondWithProblem: (error: unknown, req: ProblemRequest, res: ServerResponse) => void;
}

/** A request the front door takes: its route's label, and what answers it once it is let in. */
interface Taken {
  route: string;
  answer: (res: ServerResponse, requestId: string, fail: (error: unknown) => void) => void;
}

/**
 * The two hot routes are answered before express (decision 0036): acknowledgements (a job's subtasks send
 * thousands a second) and GraphQL POSTs (every page of the console, every dashboard). Through express each
 * cost up to twice what the bare work does (bench/NOTES.md, eighteenth round), most of it in express's
 * per-request machinery. The front door runs what express would run before those routes, in Node's request
 * and response and with the app's own functions: the request id, metrics and log line, the cross-site
 * guard, the access check and rate limit; then, for an ack, the body parse, the use case and the problem
 * mapping; for GraphQL, yoga itself. It takes only the plain forms; anything else (a query string, an
 * escaped, cased or slashed path, another content type or charset, a compressed, chunked, empty or too large
 * body, another method) goes on to express, which answers every form. Returns whether it took the request.
 */
export function frontDoor(deps: FrontDoorDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const acks = ackRoute(deps);
  return (req, res) => {
    const taken = acks(req) ?? graphqlRoute(req, deps.graphql);
    if (!taken) return false;
    const request: IncomingMessage & ProblemRequest = req;
    const fail = (error: unknown) => deps.respondWithProblem(error, request, res);
    const requestId = deps.observe(req, res, () => taken.route, req.url);
    const crossSite = deps.authenticationOn ? undefined : crossSiteProblem(req);
    if (crossSite) {
      fail(crossSite);
      return true;
    }
    deps.access(req, req.url!, req.socket.remoteAddress, res, (refused) => {
      if (refused) fail(refused);
      else taken.answer(res, requestId, fail);
    });
    return true;
  };
}

/** A plain acknowledgement: its body parsed as the express route's parser would, then the use case. */
function ackRoute(deps: FrontDoorDeps) {
  return (req: IncomingMessage & ProblemRequest): Taken | undefined => {
    if (req.method !== 'POST') return undefined;
    const path = PLAIN_ACK_PATH.exec(req.url ?? '');
    if (!path || !isPlainBody(req, deps.bodyLimit) || !JSON_IN_UTF8.test(req.headers['content-type'] ?? '')) {
      return undefined;
    }
    return {
      route: ACK_ROUTE,
      answer: (res, requestId, fail) =>
        void readJson(req)
          .then(async (body) => {
            req.body = body;
            const caller: Caller = { requestId, principal: principalOf(req) };
            const { many, replies } = await deps.acknowledge(
              caller,
              { jobId: path[1], snapshotId: path[2] },
              body,
            );
            sendJson(res, 200, many ? replies : replies[0]);
          })
          .catch(fail),
    };
  };
}

/** A GraphQL POST within the body limit: yoga reads and answers it. */
function graphqlRoute(req: IncomingMessage, graphql: FrontDoorDeps['graphql']): Taken | undefined {
  if (
    !graphql ||
    req.method !== 'POST' ||
    req.url !== graphql.endpoint ||
    !isPlainBody(req, graphql.bodyLimit)
  ) {
    return undefined;
  }
  // Labelled as express labels a handler mounted with app.use: its mount path.
  return { route: graphql.endpoint, answer: (res) => void graphql.handle(req, res) };
}

/** A body of a declared length within the limit, neither compressed nor chunked. */
function isPlainBody(req: IncomingMessage, limit: number): boolean {
  const { headers } = req;
  const length = Number(headers['content-length']);
  return (
    length > 0 &&
    length <= limit &&
    headers['transfer-encoding'] === undefined &&
    (headers['content-encoding'] === undefined || headers['content-encoding'] === 'identity')
  );
}

/** The body as JSON, as the express route's parser reads it: strict (an object or an array), BOM dropped. */
function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', reject);
    req.on('end', () => {
      const bytes = Buffer.concat(chunks);
      try {
        requireUtf8(bytes);
      } catch (problem) {
        return reject(problem);
      }
      const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
      const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1];
      if (first !== '{' && first !== '[') {
        return reject(
          invalidJsonProblem(`Unexpected token ${first ?? 'end'} at the start of the body`, text),
        );
      }
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(invalidJsonProblem((error as Error).message));
      }
    });
  });
}
