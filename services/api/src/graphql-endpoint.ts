import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendProblem } from '@snapcat/runtime';
import { Problem } from './problem';

/** Where the GraphQL endpoint is mounted (graphql.ts gives yoga the same). */
export const GRAPHQL_ENDPOINT = '/graphql';

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

/**
 * The GraphQL endpoint, made on its first request: graphql, graphql-tools, yoga and their plugins are about
 * 17 MB of a process's memory that a replica serving only acknowledgements never needs (decision 0041).
 * Requests that arrive while it is being made wait for it. When making it fails (a bug: the schema and the
 * resolvers disagree), the error is logged, the request gets a 500 problem, and the next request tries again.
 */
export function graphqlOnFirstRequest(
  make: () => Promise<Handler>,
  log: (msg: string, fields: object) => void,
): Handler & { graphqlEndpoint: string } {
  let made: Promise<Handler> | undefined;
  /** `made`'s value once it settled: the requests after the first call it without a promise each. */
  let handler: Handler | undefined;
  const endpoint = (req: IncomingMessage, res: ServerResponse): unknown => {
    if (handler) return handler(req, res);
    made ??= make().then(
      (h) => (handler = h),
      (error: unknown) => {
        made = undefined;
        throw error;
      },
    );
    return made.then(
      (h) => h(req, res),
      (error: unknown) => {
        log('the GraphQL endpoint could not be made', { error: String(error) });
        if (!res.headersSent) sendProblem(res, notMade());
      },
    );
  };
  return Object.assign(endpoint, { graphqlEndpoint: GRAPHQL_ENDPOINT });
}

const notMade = () =>
  new Problem(500, 'internal', 'Internal error', 'the GraphQL endpoint could not be made (logged)');
