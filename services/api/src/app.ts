import express, { type Request } from 'express';
import { grantsNamespace, jobView, snapshotView, wasCompacted, type JobState } from '@snapcat/domain';
import {
  ClusterRepository,
  HolderVisibility,
  JobNamespaces,
  jobStream,
  nextFireAt,
  recordedEventView,
  type CommandBus,
} from '@snapcat/application';
import type { SnapshotStorage } from '@snapcat/storage';
import type { EventStore, EventStoreCounters } from '@snapcat/event-store';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import {
  Problem,
  bodyTooLargeProblem,
  unsupportedEncoding,
  methodNotAllowed,
  notFound,
  problemMiddleware,
  problemResponder,
  rejectedInBody,
  requireUtf8,
  unsupportedCharset,
} from './problem';
import { ACK_ROUTE, frontDoor } from './front-door';
import { parse, refuseBodyWhereNone, refuseUnknownQuery, requestSchemas } from './requests';
import { webhookRoutes } from './webhooks';
import { FLINK_BASE, flinkCompatRoutes } from './flink-compat';
import { clusterRoutes } from './clusters';
import type { FlinkJobStatus } from './flink-status';
import type { ReadModel } from '@snapcat/read-model';
import {
  fromReadModel,
  listJobs,
  readModelFence,
  readModelJobIds,
  wholeReadModel,
  type JobListDeps,
} from './job-list';
import { createUseCases, type Caller, type UseCases } from './use-cases';
import { openApiDocument } from './openapi';
import { consoleRoutes } from './console';
import type { WebhookService } from '@snapcat/webhooks';
import {
  createMetricsRegistry,
  readinessCheck,
  redisNotReady,
  sendNotReady,
  registerCommandMetrics,
  type LogFn,
  type ReadinessDeps,
  type Registry,
} from '@snapcat/runtime';
import { httpObservability, requestId, requestObserver } from './metrics';
import {
  accessCheck,
  allowedMethods,
  routeOf,
  accessMiddleware,
  crossSiteGuard,
  grantOf,
  isLimited,
  mayReadClusters,
  principalOf,
  requireEveryNamespace,
  type RateLimiter,
} from './access';
import type { TokenEntry } from '@snapcat/runtime';

/** `redisState`, `storeAccessDenied` and `storeOutdated` make /readyz 503 (readiness.ts says when). */
export interface AppDeps
  extends JobListDeps, Pick<ReadinessDeps, 'redisState' | 'storeAccessDenied' | 'storeOutdated'> {
  /** The read model: the job list, and the last view of a snapshot compacted out of its job (decision 0035). */
  readModel?: Pick<
    ReadModel,
    'jobs' | 'jobIdsStartingWith' | 'jobIdsWithSnapshotsIn' | 'waitFor' | 'readiness'
  > &
    Partial<Pick<ReadModel, 'snapshot' | 'deletionFence'>>;
  bus: CommandBus;
  store: EventStore;
  /** Counters of the store adapter, when it is instrumented. */
  storeCounters?: EventStoreCounters;
  defaults: { checkpointDir: string; savepointDir: string };
  /** SNAPCAT_NAMESPACE_ROOTS: the storage each namespace's tokens may name (decision 0030). */
  namespaceRoots?: Readonly<Record<string, readonly string[]>>;
  /** Every directory a client names must lie inside its roots. */
  storage: SnapshotStorage;
  /** The latest orphan report of the workers, when they run. */
  orphanReport?: () => Promise<unknown>;
  /** The GraphQL endpoint (graphql-yoga), mounted at /graphql. */
  graphql?: ((req: IncomingMessage, res: ServerResponse) => unknown) & { graphqlEndpoint: string };
  /** Append-to-visible lag of the read model, for /readyz. */
  projectionLag?: () => Promise<unknown>;
  /** Webhook subscriptions, or why they are disabled. */
  webhooks?: WebhookService | { disabled: string };
  /**
   * The Flink clusters snapcat may talk to (their header values sealed with SNAPCAT_SECRET_KEY). Absent: a
   * repository on `store` without a key, which stores clusters without headers only.
   */
  clusters?: ClusterRepository;
  /** A managed job's status as Flink reports it, read when the job becomes managed; absent: not asked. */
  flinkJobStatus?: FlinkJobStatus;
  log: (msg: string, fields?: object) => void;
  /** The process's Prometheus registry, served at /metrics (a registry of the app's own if absent). */
  metrics?: Registry;
  /** One line per request (id, method, route, status, duration): the process's debug level. */
  requestLog?: LogFn;
  /** SNAPCAT_TOKENS: every route but the public ones needs a token with the scope access.ts names. None: off. */
  tokens?: readonly TokenEntry[];
  /** The per-caller rate limit (429 with Retry-After), if any. */
  rateLimiter?: RateLimiter;
  /** Where the web console's build is (console.ts), served at `/`. */
  consoleDir: string;
}

/**
 * The HTTP API: the front door of the two hot routes (front-door.ts, decision 0036), then the express app
 * (`express`), which answers every other request.
 */
export type App = RequestListener & { readonly express: express.Express };

/** The REST API. Every command goes through the command bus; its promise resolves once the events are durable. */
export function createApp(deps: AppDeps): App {
  const { bus, defaults, storage, graphql, log, readModel, readModelAvailable } = deps;
  const { clusters = new ClusterRepository(deps.store), metrics = createMetricsRegistry() } = deps;
  const authenticationOn = (deps.tokens ?? []).length > 0;
  const observe = requestObserver(metrics, deps.requestLog);
  const accessOptions = { tokens: deps.tokens ?? [], rateLimiter: deps.rateLimiter };
  const limitedCaller = (req: object) => isLimited(principalOf(req));
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(httpObservability(observe));
  app.use(crossSiteGuard(authenticationOn));
  // Before every route, the acks too: identify the caller, rate-limit, refuse what its scopes do not allow.
  app.use(accessMiddleware(accessOptions));
  app.use(refuseUnknownQuery);
  registerCommandMetrics(metrics, bus, deps.storeCounters);
  const routes = routeContext(
    deps,
    createUseCases({
      bus,
      storage,
      defaults,
      clusters,
      flinkJobStatus: deps.flinkJobStatus,
      namespaceRoots: deps.namespaceRoots,
      jobIds: readModel && readModelJobIds(readModel, readModelAvailable, deps.store),
      fence: readModelFence(readModel, readModelAvailable),
    }),
  );

  // Acknowledgements are the hot path: the front door answers the plain ones; this route every other form.
  // Matched first, on the app itself, rather than after every other layer and through the /api/v1 router.
  app.post(ACK_ROUTE, jsonBody, requireJson, async (req, res) => {
    const { many, replies } = await routes.useCases.acknowledge(routes.caller(req), req.params, body(req));
    res.json(many ? replies : replies[0]);
  });
  // GraphQL before the JSON parser: yoga reads its own request bodies, so their size is checked here.
  if (graphql) app.use(graphql.graphqlEndpoint, graphqlBodyLimit, graphql);
  app.use(jsonBody, requireJson, refuseBodyWhereNone);

  app.use(consoleRoutes(deps.consoleDir, { authentication: authenticationOn }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', readiness({ ...deps, clusters }));
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.metrics());
  });

  app.use(methodNotServed);
  app.use('/api/v1', apiRouter(deps, routes, clusters));
  // Flink's REST API's checkpoint reads, in Flink's shapes (decision 0017).
  app.use(FLINK_BASE, flinkCompatRoutes({ registeredJob: routes.registeredJob, log }));
  app.use((req, _res, next) => next(notFound('path', `no route for ${req.method} ${req.path}`)));
  const respondWithProblem = problemResponder(log, limitedCaller);
  app.use(problemMiddleware(respondWithProblem));
  const hotRoutes = frontDoor({
    observe,
    authenticationOn,
    access: accessCheck(accessOptions),
    acknowledge: routes.useCases.acknowledge,
    bodyLimit: REST_BODY_LIMIT,
    ...(graphql
      ? { graphql: { handle: graphql, endpoint: graphql.graphqlEndpoint, bodyLimit: GRAPHQL_BODY_LIMIT } }
      : {}),
    respondWithProblem,
  });
  const listener: RequestListener = (req, res) => {
    if (!hotRoutes(req, res)) app(req, res);
  };
  return Object.assign(listener, { express: app });
}

/** The /api/v1 routes but the acknowledgements (matched first, on the app itself). */
function apiRouter(deps: AppDeps, routes: RouteContext, clusters: ClusterRepository): express.Router {
  const { readModel, readModelAvailable, webhooks } = deps;
  const api = express.Router();
  api.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  api.get('/jobs', listJobs(routes.schemas.jobList, { readModel, readModelAvailable }));
  mountJobRoutes(api, routes);
  mountSnapshotRoutes(api, routes);
  mountScheduleRoutes(api, routes);
  api.get('/storage/orphans', async (req, res) => {
    requireEveryNamespace(req, 'the orphan report covers the files of every namespace');
    const report = deps.orphanReport ? await deps.orphanReport() : null;
    if (!report) throw notFound('path', 'no orphan report yet: the retention sweep writes one');
    res.json(report);
  });

  if (webhooks) api.use('/webhooks', webhookRoutes(webhooks));
  api.use('/clusters', clusterRoutes(clusters));
  return api;
}

/** What the /api/v1 routes share: the use cases, the request schemas, the caller and the job's state. */
interface RouteContext {
  bus: CommandBus;
  store: EventStore;
  useCases: UseCases;
  schemas: ReturnType<typeof requestSchemas>;
  caller: (req: Request) => Caller;
  registeredJob: (req: Request, jobId: string) => Promise<JobState>;
  jobPath: (req: Request) => { jobId: string };
  snapshotPath: (req: Request) => { jobId: string; snapshotId: number };
  /** The job with its snapshots, as the caller reads them (decision 0045: holders outside its namespaces). */
  jobViewFor: (req: Request, state: JobState) => Promise<ReturnType<typeof jobView>>;
  /** A snapshot's view as the caller reads it (decision 0045). */
  snapshotViewFor: <V extends { heldBy: readonly string[] }>(
    req: Request,
    view: V,
  ) => Promise<V & { hiddenHolders: number }>;
  /** A job event as the caller reads it (decision 0045). */
  eventFor: <E extends { type: string }>(req: Request, event: E) => Promise<E>;
  readModel: AppDeps['readModel'];
  readModelAvailable: AppDeps['readModelAvailable'];
}

function routeContext(
  { bus, store, defaults, readModel, readModelAvailable }: AppDeps,
  useCases: UseCases,
): RouteContext {
  const schemas = requestSchemas(defaults);
  const holders = new HolderVisibility(new JobNamespaces(store));
  const snapshotViewFor: RouteContext['snapshotViewFor'] = (req, view) =>
    holders.snapshot(grantOf(req), view);
  return {
    bus,
    store,
    readModel,
    readModelAvailable,
    useCases,
    schemas,
    // The request id and the caller's token: the audit trail of what it appends, and its namespaces.
    caller: (req) => ({ requestId: requestId(req), principal: principalOf(req) }),
    /** The job's state; 404 when it is not registered or outside the caller's namespaces (not revealed). */
    registeredJob: async (req, jobId) => {
      const state = await bus.load(jobId);
      if (!state.registered || !grantsNamespace(grantOf(req), state.namespace)) {
        throw notFound('jobId', `job ${jobId} is not registered`);
      }
      return state;
    },
    jobPath: (req) => parse(schemas.jobPath, req.params, 'path'),
    snapshotPath: (req) => parse(schemas.snapshotPath, req.params, 'path'),
    jobViewFor: async (req, state) => {
      const view = jobView(state);
      return { ...view, snapshots: await Promise.all(view.snapshots.map((s) => snapshotViewFor(req, s))) };
    },
    snapshotViewFor,
    eventFor: (req, event) => holders.event(grantOf(req), event),
  };
}

const body = (req: Request) => req.body ?? {};

const requireJson: express.RequestHandler = (req, _res, next) => {
  const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    return next(
      new Problem(
        415,
        'unsupported-media-type',
        'Unsupported media type',
        'send the body as application/json',
        [{ field: 'header.content-type', rule: 'json', message: 'must be application/json' }],
      ),
    );
  }
  next();
};

/** A job: registered or reconfigured, read, its status changed, a restore recorded, its events. */
function mountJobRoutes(
  api: express.Router,
  { bus, store, useCases, schemas, caller, registeredJob, jobPath, jobViewFor, eventFor }: RouteContext,
) {
  api.put('/jobs/:jobId', async (req, res) => {
    const { jobId, reply, events } = await useCases.configureJob(caller(req), req.params, body(req));
    const state = await bus.load(jobId);
    res
      .status(reply.created ? 201 : 200)
      .json({ ...(await jobViewFor(req, state)), changed: events.length > 0 });
  });

  api.get('/jobs/:jobId', async (req, res) => {
    const { jobId } = jobPath(req);
    res.json(await jobViewFor(req, await registeredJob(req, jobId)));
  });

  api.post('/jobs/:jobId/status', async (req, res) => {
    const { jobId, reply } = await useCases.changeStatus(caller(req), req.params, body(req));
    res.json({ jobId, status: reply.status, changed: reply.changed });
  });

  api.post('/jobs/:jobId/restores', async (req, res) => {
    const restored = useCases.restore(caller(req), req.params, body(req));
    const { jobId, reply } = await restored.catch((error: unknown) => {
      throw rejectedInBody(error, 'snapshotId');
    });
    res.status(201).json({ jobId, ...reply });
  });

  api.get('/jobs/:jobId/events', async (req, res) => {
    const { jobId } = jobPath(req);
    const { from, limit } = parse(schemas.events, req.query, 'query');
    await registeredJob(req, jobId);
    const events = await store.readStream(jobStream(jobId), { fromRevision: BigInt(from), maxCount: limit });
    if (events.length === 0 && from === 0) throw notFound('jobId', `job ${jobId} has no events`);
    res.json({
      jobId,
      events: await Promise.all(
        events.map(async (recorded) => {
          const view = recordedEventView(recorded);
          return { ...view, data: await eventFor(req, view.data) };
        }),
      ),
      next: events.length === limit ? from + limit : null,
    });
  });
}

/** A job's snapshots: triggered, imported, read, declined, persisted, discarded. */
function mountSnapshotRoutes(
  api: express.Router,
  {
    bus,
    useCases,
    caller,
    registeredJob,
    snapshotPath,
    snapshotViewFor,
    readModel,
    readModelAvailable,
  }: RouteContext,
) {
  api.post('/jobs/:jobId/snapshots', async (req, res) => {
    const { jobId, reply } = await useCases.trigger(caller(req), req.params, body(req));
    res
      .status(202)
      .location(`${req.baseUrl}/jobs/${jobId}/snapshots/${reply.snapshotId}`)
      .json({ snapshotId: reply.snapshotId, triggerId: reply.triggerId, status: reply.status });
  });

  api.post('/jobs/:jobId/snapshots/import', async (req, res) => {
    const { jobId, reply } = await useCases.importSnapshot(caller(req), req.params, body(req));
    const snapshot = (await bus.load(jobId)).snapshots.get(reply.snapshotId)!;
    res
      .status(reply.duplicate ? 200 : 201)
      .location(`${req.baseUrl}/jobs/${jobId}/snapshots/${reply.snapshotId}`)
      .json({ jobId, ...(await snapshotViewFor(req, snapshotView(snapshot))), duplicate: reply.duplicate });
  });

  api.get('/jobs/:jobId/snapshots/:snapshotId', async (req, res) => {
    const { jobId, snapshotId } = snapshotPath(req);
    const state = await registeredJob(req, jobId);
    const snapshot = state.snapshots.get(snapshotId);
    if (snapshot) return void res.json({ jobId, ...(await snapshotViewFor(req, snapshotView(snapshot))) });
    // A finished snapshot compacted out of the job's state (decision 0035): its last view is in the read model.
    const lookup = wasCompacted(state, snapshotId) ? readModel?.snapshot?.bind(readModel) : undefined;
    const meanwhile = 'snapshots still in their job are served from it';
    // A read model catching up with the log does not show it yet: a 503, not a 404 (a review).
    if (lookup) await wholeReadModel(readModel!, readModelAvailable, meanwhile);
    const compacted = lookup
      ? await fromReadModel(() => lookup(jobId, snapshotId), readModelAvailable, meanwhile)
      : null;
    if (!compacted) throw notFound('snapshotId', `snapshot ${snapshotId} of job ${jobId} does not exist`);
    res.json(await snapshotViewFor(req, compacted));
  });

  api.post('/jobs/:jobId/snapshots/:snapshotId/decline', async (req, res) => {
    const { snapshotId, reply } = await useCases.decline(caller(req), req.params, body(req));
    res.json({ snapshotId, status: reply.snapshotStatus });
  });

  api.post('/jobs/:jobId/snapshots/:snapshotId/persist', async (req, res) => {
    const { snapshotId, reply } = await useCases.persist(caller(req), req.params, body(req));
    const { savepointPath, restorePath, changed, savepointSnapshotId } = reply;
    if (savepointSnapshotId !== undefined) {
      // A managed job's checkpoint: a NATIVE savepoint of the job is being taken in Flink for it (R67).
      return void res
        .status(202)
        .location(`${req.baseUrl}/jobs/${req.params.jobId}/snapshots/${savepointSnapshotId}`)
        .json({ snapshotId, persisted: false, savepointSnapshotId, savepointPath, restorePath, changed });
    }
    res.json({ snapshotId, persisted: true, savepointPath, restorePath, changed });
  });

  api.post('/jobs/:jobId/snapshots/:snapshotId/discard', async (req, res) => {
    const { snapshotId, reply } = await useCases.discard(caller(req), req.params, body(req));
    res.status(202).json({ snapshotId, status: reply.snapshotStatus, changed: reply.changed });
  });
}

/** A job's savepoint schedule: set, read, removed. */
function mountScheduleRoutes(
  api: express.Router,
  { useCases, caller, registeredJob, jobPath }: RouteContext,
) {
  api.put('/jobs/:jobId/savepoint-schedule', async (req, res) => {
    const { jobId, schedule, reply } = await useCases.setSchedule(caller(req), req.params, body(req));
    res.json({
      jobId,
      schedule,
      nextFireAt: nextFireAt(schedule, Date.now()),
      changed: reply.changed,
    });
  });

  api.get('/jobs/:jobId/savepoint-schedule', async (req, res) => {
    const { jobId } = jobPath(req);
    const { schedule, lastSlot } = await registeredJob(req, jobId);
    if (!schedule) throw notFound('path', `job ${jobId} has no savepoint schedule`);
    res.json({
      jobId,
      schedule,
      nextFireAt: nextFireAt(schedule, Date.now()),
      lastSlotAt: lastSlot === null ? null : new Date(lastSlot).toISOString(),
    });
  });

  api.delete('/jobs/:jobId/savepoint-schedule', async (req, res) => {
    const { jobId, reply } = await useCases.removeSchedule(caller(req), req.params);
    res.json({ jobId, changed: reply.changed });
  });
}

/**
 * `GET /readyz`: 200 when the event store answers (with snapcat's credentials) and Redis is connected;
 * otherwise 503 naming what is missing (readiness.ts). The Flink clusters' states are informative only.
 */
function readiness({
  projectionLag,
  clusters,
  readModel,
  ...deps
}: Pick<
  AppDeps,
  'store' | 'storeAccessDenied' | 'storeOutdated' | 'redisState' | 'projectionLag' | 'log' | 'readModel'
> & {
  clusters: ClusterRepository;
}): express.RequestHandler {
  // Commands need only the event store, so they go on; the answer says so, for whoever routes traffic on it.
  const waitingForRedis = 'GraphQL queries, the workers and webhooks wait for it; REST commands keep working';
  const check = readinessCheck({ ...deps, waitingForRedis });
  return async (req, res) => {
    const state = await check();
    if (!state.ready) return sendNotReady(res, state);
    let projectionLagMs: unknown = null;
    let readModelState = 'none';
    try {
      if (state.redis === 'connected') projectionLagMs = (await projectionLag?.()) ?? null;
      // Informative: a read model catching up holds GraphQL and the job list (503), not the commands.
      if (state.redis === 'connected' && readModel) readModelState = await readModel.readiness();
    } catch {
      // Redis went away between the health flag and the read (the flag follows within a moment).
      return sendNotReady(res, redisNotReady('unreachable', waitingForRedis));
    }
    // Each Flink cluster's state, as the connector recorded it: informative, never a reason to be unready
    // (one cluster down must not take the catalog, nor the other clusters' jobs, with it). The route is
    // public, cluster names describe infrastructure: they go to callers who may read /clusters only.
    const named = mayReadClusters(principalOf(req));
    const flinkClusters = (await clusters.views().catch(() => [])).map((c) => ({
      ...(named ? { name: c.name } : {}),
      state: c.state,
      since: c.stateSince,
    }));
    res.json({
      status: 'ready',
      eventStore: 'reachable',
      redis: state.redis,
      projectionLagMs,
      readModel: readModelState,
      flinkClusters,
    });
  };
}

/** The most a REST request body may hold (a batch of acknowledgements is the largest). */
export const REST_BODY_LIMIT = 16 * 1024 * 1024;

/** REST bodies: JSON (any +json type too) in UTF-8, within the limit. */
const jsonBody = express.json({
  limit: REST_BODY_LIMIT,
  type: ['application/json', 'application/*+json'],
  verify: (_req, _res, bytes, charset) => {
    if (charset !== 'utf-8') throw unsupportedCharset(`unsupported charset "${charset.toUpperCase()}"`);
    requireUtf8(bytes);
  },
});

/**
 * A method the path's resource is not served with is a 405 before any router sees it: a router's guard (a
 * namespace-limited token on /clusters) or a route with a parameter in the literal's place (`GET
 * …/snapshots/import` as snapshot "import") would answer something else. A path that does not decode is left
 * to the routers' 400 (`percent-encoding`), whatever the method.
 */
const methodNotServed: express.RequestHandler = (req, res, next) => {
  if (req.method === 'OPTIONS' || routeOf(req.method, req.path) || !decodes(req.path)) return next();
  const allowed = allowedMethods(req.path);
  if (allowed.length === 0) return next();
  res.set('Allow', allowed.join(', '));
  next(methodNotAllowed(req.method, req.path, allowed));
};

function decodes(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

/** The most a GraphQL request body may hold (a document and its variables). */
export const GRAPHQL_BODY_LIMIT = 1024 * 1024;

/** A body without a declared length (chunked), read here within the limit; yoga then takes the bytes read. */
const graphqlChunkedBody = express.raw({ limit: GRAPHQL_BODY_LIMIT, type: () => true, inflate: false });

const graphqlBodyLimit: express.RequestHandler = (req, res, next) => {
  // yoga reads bodies as sent: a compressed one would be parsed as its compressed bytes (a 400 saying it is
  // not UTF-8). Refused as the chunked path's parser refuses it, naming the header.
  const encoding = req.get('content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity')
    return next(unsupportedEncoding(`unsupported content encoding "${encoding}"`));
  const length = req.get('content-length');
  if (length === undefined && req.get('transfer-encoding') !== undefined)
    return graphqlChunkedBody(req, res, next);
  if (Number(length ?? 0) <= GRAPHQL_BODY_LIMIT) return next();
  // The same problem as a chunked body over the limit (the parser's) and a REST body over its own.
  next(bodyTooLargeProblem(GRAPHQL_BODY_LIMIT));
};
