import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { sendJson, sendProblem } from './http-json';
import type { Core } from './boot';
import type { Config } from './config';
import type { Logger } from './log';
import { createMetricsRegistry } from './metrics';
import { readinessCheck, sendNotReady, type Readiness } from './readiness';
import type { RedisState } from './redis';
import { registerCommandMetrics, registerServiceMetrics, type ServiceMetricsDeps } from './service-metrics';

export interface OpsServerOptions {
  host: string;
  /** SNAPCAT_OPS_PORT; 0 takes any free port (logged). */
  port: number;
  /** Named in the answers and the log: what this process runs. */
  role: 'workers' | 'projector';
  metrics: Registry;
  ready: () => Promise<Readiness>;
  log: Logger;
}

/**
 * The operations endpoints of a process that serves no API (a workers or a projector process), on
 * SNAPCAT_OPS_PORT: `GET /healthz` (the process runs), `GET /readyz` (it can do its work: the event store
 * answers and holds nothing a newer snapcat wrote, Redis is connected) and `GET /metrics` (Prometheus),
 * in the same shapes as an API process's. Public, as there, and nothing else: no command reaches it.
 * Resolves once listening; a port it cannot take stops the process (it must not run unseen).
 */
export async function serveOps(options: OpsServerOptions): Promise<Server> {
  const { role, metrics, ready, log } = options;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const routes: Record<string, () => Promise<void> | void> = {
      '/healthz': () => sendJson(res, 200, { status: 'ok', role }),
      '/readyz': async () => {
        const state = await ready();
        if (state.ready) {
          return sendJson(res, 200, { status: 'ready', role, eventStore: 'reachable', redis: state.redis });
        }
        sendNotReady(res, state, { role });
      },
      '/metrics': async () => {
        const text = await metrics.metrics();
        res.setHeader('Content-Type', metrics.contentType);
        res.end(text);
      },
    };
    const route = path ? routes[path] : undefined;
    if (!route) {
      const detail = `a ${role} process serves only /healthz, /readyz and /metrics`;
      return sendProblem(res, {
        status: 404,
        slug: 'not-found',
        title: 'Not found',
        detail,
        errors: [{ field: 'path', rule: 'exists', message: detail }],
      });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendProblem(res, {
        status: 405,
        slug: 'method-not-allowed',
        title: 'Method not allowed',
        detail: `${path} answers GET only`,
        errors: [{ field: 'method', rule: 'allowed', message: 'must be GET or HEAD' }],
      });
    }
    Promise.resolve()
      .then(route)
      .catch((error: unknown) => {
        log.error('ops endpoint failed', { path, error: String(error) });
        if (!res.headersSent)
          sendProblem(res, {
            status: 500,
            slug: 'internal',
            title: 'Internal error',
            detail: 'an unexpected error occurred',
          });
      });
  });
  // Probes and scrapes are small and quick: a client that sends its request slowly holds nothing for long.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  await listenOrExit(server, options.port, options.host, log);
  return server;
}

/**
 * Listens, or stops the process (exit 1) saying why: a process without its port must not go on working
 * against the shared store and Redis unseen. Resolves once listening.
 */
export function listenOrExit(server: Server, port: number, host: string, log: Logger): Promise<void> {
  return new Promise((resolve) => {
    // A failed bind (EADDRINUSE, EACCES) is the server's first error, before it listens.
    const failed = (error: Error) => {
      log.error('cannot listen: stopping', { port, host, error: error.message });
      process.exit(1);
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

/** Where the ops endpoints listen, for the `listening` line (nothing when there are none). */
export function opsAddress(server: Server | undefined): { host?: string; port?: number } {
  const address = server?.address();
  return typeof address === 'object' && address ? { host: address.address, port: address.port } : {};
}

/**
 * A workers or projector process's operations endpoints, when SNAPCAT_OPS_PORT is set (undefined when not:
 * such a process then serves no HTTP, as before): the command bus's and the store's counters and `service`'s
 * families on /metrics beside Node's own, and readiness from the store, its refusals and Redis. Started
 * before the process's own parts (`starting` says until when), so that a start waiting for Redis or the
 * store is seen alive but not ready, and a port it cannot take stops it before it takes any work.
 */
export async function startOpsEndpoints(
  config: Config,
  { store, bus, log }: Core,
  options: {
    role: OpsServerOptions['role'];
    starting: () => string | undefined;
    redisState: () => RedisState;
    waitingForRedis: string;
    service: ServiceMetricsDeps;
  },
): Promise<Server | undefined> {
  if (config.opsPort === undefined) return undefined;
  const metrics = createMetricsRegistry();
  registerCommandMetrics(metrics, bus, store.counters);
  registerServiceMetrics(metrics, { store, redisState: options.redisState, ...options.service });
  const ready = readinessCheck({
    store,
    storeAccessDenied: () => store.accessDenied,
    storeOutdated: () => store.newerEvent,
    redisState: options.redisState,
    waitingForRedis: options.waitingForRedis,
    starting: options.starting,
    log: log.error,
  });
  const server = await serveOps({
    host: config.host,
    port: config.opsPort,
    role: options.role,
    metrics,
    ready,
    log,
  });
  // Said at once: what follows may wait a long time (for Redis, for the store), probed meanwhile.
  log.info('ops endpoints listening', { role: options.role, ...opsAddress(server) });
  return server;
}

/**
 * Stops accepting connections and drops the open ones: the last step of a shutdown, after the store is closed
 * (a probe still open then only learns that the process is gone).
 */
export function closeOps(server: Server | undefined): void {
  server?.close();
  server?.closeAllConnections();
}
