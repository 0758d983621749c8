import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { LogFn } from '@snapcat/runtime';
import { routeOf } from './access';

/** The request id: the client's `x-correlation-id` when it sent one, else a fresh one; echoed back. */
export const REQUEST_ID_HEADER = 'x-correlation-id';

/** A client's id is kept if it is a sane header value; anything else is replaced by a fresh one. */
const SANE_ID = /^[\x21-\x7e]{1,200}$/;

/** The id requestObserver gave each request it saw. */
const requestIds = new WeakMap<object, string>();

/** The request's id (as set by requestObserver), which is also its commands' correlation id. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return requestIds.get(req) ?? (typeof given === 'string' ? given : randomUUID());
}

/**
 * The route a request matched, as its pattern (`/api/v1/jobs/:jobId`), never the URL itself, so that the
 * labels stay few: `unmatched` when no route answered (an unknown path, a body refused before routing).
 * An error leaves the routers before it is answered, which restores `req.baseUrl`: the mount path is then
 * what precedes the route's segments in the URL (every mount path of the API is a plain string).
 */
export function routeLabel(req: express.Request): string {
  const path: unknown = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof path === 'string') {
    // A router's own root (`/` mounted at /api/v1/webhooks) adds no segment to its mount.
    const segments = path === '/' ? 0 : path.split('/').length - 1;
    const url = req.originalUrl
      .split('?')[0]!
      .replace(/(.)\/$/, '$1')
      .split('/');
    const mount = url.slice(0, Math.max(1, url.length - segments)).join('/');
    return path === '/' ? mount : `${mount}${path}`;
  }
  // A handler mounted with app.use that answered itself (GraphQL at /graphql).
  if (req.baseUrl) return req.baseUrl;
  // Answered before any route (a 401 or 403 of the access check): the route the path is for, as its pattern.
  const route = routeOf(req.method, req.path);
  return route ? route.slice(route.indexOf(' ') + 1).replace(/\{(\w+)\}/g, ':$1') : 'unmatched';
}

/**
 * First middleware of the app: gives each request its id (echoed in `x-correlation-id`), counts and times
 * it by method, route pattern and status (`http_requests_total`, `http_request_duration_seconds`), and logs
 * one line per request at debug (nothing at the default level, info).
 */
export function httpObservability(observe: RequestObserver): express.RequestHandler {
  return (req, res, next) => {
    observe(req, res, () => routeLabel(req), req.originalUrl);
    next();
  };
}

/**
 * httpObservability's work on Node's request and response (the front door's too): gives the request its id
 * (returned, kept for `requestId`, and echoed in `x-correlation-id`), and once the response is finished counts,
 * times and logs it under `route()`.
 */
export function requestObserver(registry: Registry, requestLog?: LogFn) {
  const labelNames = ['method', 'route', 'status'] as const;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request to the end of its response, by method, route pattern and status code.',
    labelNames,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const counted = new Map<
    string,
    {
      requests: Counter.Internal;
      duration: Histogram.Internal<(typeof labelNames)[number]>;
    }
  >();
  return (
    req: IncomingMessage,
    res: ServerResponse,
    route: () => string,
    url: string | undefined,
  ): string => {
    const started = process.hrtime.bigint();
    const given = req.headers[REQUEST_ID_HEADER];
    const id = typeof given === 'string' && SANE_ID.test(given) ? given : randomUUID();
    requestIds.set(req, id);
    res.setHeader(REQUEST_ID_HEADER, id);
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const method = req.method ?? '';
      const path = route();
      const status = String(res.statusCode);
      // One pair of label children per method, route and status (few: routes are patterns), not a hash of
      // the labels per request.
      const key = `${method} ${path} ${status}`;
      let series = counted.get(key);
      if (!series) {
        series = {
          requests: requests.labels(method, path, status),
          duration: duration.labels(method, path, status),
        };
        counted.set(key, series);
      }
      series.requests.inc();
      series.duration.observe(seconds);
      requestLog?.('request', {
        requestId: id,
        method: req.method,
        route: path,
        // Without its query: a GraphQL GET carries its whole document there (a mutation's arguments: header
        // values, secrets) and pino's redaction sees no field in it.
        url: url?.split('?', 1)[0],
        status: res.statusCode,
        durationMs: Math.round(seconds * 1e6) / 1e3,
      });
    });
    return id;
  };
}
export type RequestObserver = ReturnType<typeof requestObserver>;
