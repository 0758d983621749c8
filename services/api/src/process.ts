import { accessSync, constants } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { Projector, ReadModel, ReadModelKeys, snapshotEventPublisher } from '@snapcat/read-model';
import {
  closeRedis,
  connectRedis,
  createMetricsRegistry,
  listenOrExit,
  openQueues,
  openStoreNamespace,
  refuseOthersRoots,
  projectorConsumerState,
  redisHealth,
  connectionState,
  type RedisState,
  registerServiceMetrics,
  workerMetricSources,
  startEmbeddedRedis,
  stopOnSignalOrStoreFailure,
  workerKeys,
  type Config,
  type ConsumerState,
  type Core,
  type CountedQueue,
  type Registry,
} from '@snapcat/runtime';
import { openSnapshotStorage, type SnapshotStorage } from '@snapcat/storage';
import { redactConnection } from '@snapcat/event-store';
import { openClusters, openWebhooks, webhooksDisabledReason, type Webhooks } from '@snapcat/webhooks';
import { consoleBuilt } from './console';
import { createApp, type App } from './app';
import { flinkJobStatusFrom } from './flink-status';
import { graphqlOnFirstRequest } from './graphql-endpoint';
import { createUseCases } from './use-cases';
import { readModelFence, readModelJobIds } from './job-list';
import { createRateLimiter } from './rate-limit';

/** What an API process needs of the workers it runs beside (SNAPCAT_ROLE=all): they share its /metrics. */
export interface EmbeddedWorkers {
  queues: Record<string, CountedQueue>;
  processManager: { active: boolean; savedPosition: ConsumerState['position']; blocked?: unknown };
  /** Undefined when webhooks are disabled; with workers, their webhooks serve the API too. */
  webhooks: Webhooks | undefined;
  close(): Promise<void>;
}

/** What the workers are started with: the process's core, its store's Redis namespace and its storage. */
export interface EmbeddedWorkerDeps extends Core {
  config: Config;
  prefix: string;
  storage: SnapshotStorage;
}

export interface ApiProcessOptions {
  /** The files the API reads at run time: located by the entry point (decision 0013). */
  files: { schemaFile: string; consoleDir: string };
  /** Starts the workers in this process; absent, the API runs alone (SNAPCAT_ROLE=api). */
  startWorkers?: (deps: EmbeddedWorkerDeps) => Promise<EmbeddedWorkers>;
}

/**
 * An API process: the REST and GraphQL API, a projector unless SNAPCAT_PROJECTOR=off, and the workers when
 * the entry point gives `startWorkers`. It serves until a signal stops it.
 */
export async function runApi(config: Config, core: Core, options: ApiProcessOptions): Promise<void> {
  const { log, store, bus } = core;
  // GraphQL is made on its first request (decision 0041): a build without its schema must not start at all.
  accessSync(options.files.schemaFile, constants.R_OK);
  const embeddedRedis = await startEmbeddedRedis(config, log);
  const prefix = await openStoreNamespace(config, store, log);
  const storage = openSnapshotStorage(config.storageRoots, config.s3);
  await refuseOthersRoots(config, storage, store, log);
  const redis = trackedRedis(config);
  const keys = new ReadModelKeys(prefix);
  // Its own connection: the queries of concurrent requests are pipelined together. A query fails within
  // 2 s when Redis does not answer, rather than wait for it to come back.
  const readModel = new ReadModel(redis.connect({ autoPipelining: true, commandTimeoutMs: 2000 }), prefix);

  const workers = await options.startWorkers?.({ ...core, config, prefix, storage });
  // With embedded workers, their webhooks serve the API too; otherwise the API opens its own (no dispatcher).
  const webhooks = workers ? workers.webhooks : openWebhooks(config, prefix, store, log);
  const projector = config.projector
    ? new Projector({
        store,
        redis: redis.connect(), // its own: its writes WATCH its lease
        prefix,
        log,
        sharedStates: bus,
        publish: snapshotEventPublisher(redis.main, keys),
      })
    : undefined;
  // Not awaited: the REST API serves commands (the event store is the truth) while Redis is still down.
  projector
    ?.start()
    .catch((error: unknown) => log.error('projector did not start', { error: String(error) }));
  const running: RunningParts = { projector, readModel, workers, webhooks };

  // One registry for the process: the app adds HTTP and command metrics, these are read on scrape.
  const metrics = createMetricsRegistry();
  // An API process without workers counts the queues too: a workers-only process serves no /metrics.
  const queues = workers ? undefined : openQueues(redis.connect(), prefix);
  registerProcessMetrics(metrics, core, running, workers?.queues ?? queues!, redis.state);
  const app = composeApp({ config, core, options, prefix, storage, redis, keys, running, metrics });
  const server = listen(app, config, core, running, options.files.consoleDir);
  const streams = eventStreams(server);

  stopOnSignalOrStoreFailure(log, store, config.shutdownGraceMs, {
    drain: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        streams.end();
        server.closeIdleConnections();
        // A stream just ended leaves its connection idle a moment later.
        setTimeout(() => server.closeIdleConnections(), 50).unref();
      });
      await workers?.close();
      if (!workers) await webhooks?.close();
      await projector?.stop();
      await Promise.all(Object.values(queues ?? {}).map((queue) => queue.close()));
    },
    close: async () => {
      await Promise.all(redis.connections.map(closeRedis));
      await bus.flush();
      await store.close();
      await embeddedRedis?.stop();
    },
  });
}

/** The parts of an API process its metrics, readiness and start-up line report on. */
interface RunningParts {
  projector: Projector | undefined;
  readModel: ReadModel;
  workers: EmbeddedWorkers | undefined;
  webhooks: Webhooks | undefined;
}

/** The process's Redis connections, each opened for one use and all closed together at shutdown. */
function trackedRedis(config: Config) {
  const connections: Redis[] = [];
  const connect = (options?: Parameters<typeof connectRedis>[1]) => {
    connections.push(connectRedis(config.redisUrl, options));
    return connections[connections.length - 1]!;
  };
  const main = connect();
  return {
    connections,
    connect,
    /** The process's own connection (the orphan report). */
    main,
    state: () => connectionState(main),
  };
}
type TrackedRedis = ReturnType<typeof trackedRedis>;

/** A standby projector (another process holds the lease) knows no lag: the active one's is in Redis. */
const projectionLagOf =
  ({ projector, readModel }: RunningParts) =>
  async () =>
    projector?.active ? projector.lag() : await readModel.lag();

function registerProcessMetrics(
  metrics: Registry,
  { store }: Core,
  running: RunningParts,
  queues: Record<string, CountedQueue>,
  redisState: () => RedisState,
): void {
  const workerSources = workerMetricSources(queues, {
    processManager: running.workers?.processManager,
    webhooks: running.webhooks,
  });
  registerServiceMetrics(metrics, {
    queues: workerSources.queues,
    projectionLag: projectionLagOf(running),
    consumers: async () => [
      await projectorConsumerState(running.projector, () => running.readModel.position()),
      ...workerSources.consumers(),
    ],
    redisState,
    store,
  });
}

interface AppParts {
  config: Config;
  core: Core;
  options: ApiProcessOptions;
  prefix: string;
  storage: SnapshotStorage;
  redis: TrackedRedis;
  keys: ReadModelKeys;
  running: RunningParts;
  metrics: Registry;
}

/** The HTTP API with its GraphQL endpoint, on this process's store, Redis and workers. */
function composeApp({ config, core, options, prefix, storage, redis, keys, running, metrics }: AppParts) {
  const { log, store, bus } = core;
  const { readModel, webhooks } = running;
  const defaults = { checkpointDir: config.defaultCheckpointDir, savepointDir: config.defaultSavepointDir };
  // The Flink clusters: REST and GraphQL share one fold (header values sealed like webhook secrets).
  const clusters = openClusters(config, store);
  const flinkJobStatus = flinkJobStatusFrom(clusters, log.warn);
  return createApp({
    bus,
    store,
    storage,
    // GET /api/v1/jobs lists from the read model; 503 at once while Redis is unreachable, as GraphQL.
    readModel,
    readModelAvailable: () => redisHealth.reachable,
    graphql: graphqlOnFirstRequest(async () => {
      const { createGraphql, createSnapshotEventsPubSub } = await import('./graphql');
      const { createRedisEventTarget } = await import('@graphql-yoga/redis-event-target');
      return createGraphql({
        useCases: createUseCases({
          bus,
          storage,
          defaults,
          clusters,
          flinkJobStatus,
          namespaceRoots: config.namespaceRoots,
          jobIds: readModelJobIds(readModel, () => redisHealth.reachable, store),
          fence: readModelFence(readModel, () => redisHealth.reachable),
        }),
        store,
        readModel,
        // Subscriptions only: the projector publishes (snapshotEventPublisher), this process's or another's.
        pubsub: createSnapshotEventsPubSub(
          createRedisEventTarget({ publishClient: redis.main, subscribeClient: redis.connect() }),
        ),
        topic: keys.channel,
        readModelAvailable: () => redisHealth.reachable,
        maxStreamsPerToken: config.maxStreamsPerToken,
        tokens: config.tokens,
        clusters,
        schemaFile: options.files.schemaFile,
      });
    }, log.error),
    tokens: config.tokens,
    rateLimiter: createRateLimiter(config.rateLimit, {
      client: redis.connect({ autoPipelining: true, commandTimeoutMs: 500 }),
      keyPrefix: `${prefix}:ratelimit`,
    }),
    projectionLag: projectionLagOf(running),
    redisState: redis.state,
    // What the store refuses snapcat's credentials (a request, the projector or a consumer met it): unready.
    storeAccessDenied: () => store.accessDenied,
    // An event a newer snapcat wrote (a rolling upgrade): unready, so traffic goes to upgraded replicas.
    storeOutdated: () => store.newerEvent,
    orphanReport: async () => {
      const text = await redis.main.get(workerKeys(prefix).orphanReport);
      return text ? JSON.parse(text) : null;
    },
    storeCounters: store.counters,
    webhooks: webhooks?.service ?? { disabled: webhooksDisabledReason(config)! },
    clusters,
    flinkJobStatus,
    defaults,
    namespaceRoots: config.namespaceRoots,
    log: log.error,
    metrics,
    requestLog: log.debug,
    consoleDir: options.files.consoleDir,
  });
}

/** How long an idle keep-alive connection stays open. */
const HTTP_KEEP_ALIVE_MS = 65_000;

/** Listens on the configured address and logs `listening` with what runs; a failed bind stops the process. */
function listen(
  app: App,
  config: Config,
  { log }: Core,
  { workers, projector, webhooks }: RunningParts,
  consoleDir: string,
): Server {
  const server = createServer(app);
  void listenOrExit(server, config.port, config.host, log).then(started);
  function started() {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    log.info('listening', {
      port,
      host: config.host,
      eventStore: redactConnection(config.eventStore),
      workers: workers ? 'embedded' : 'off',
      projector: projector ? 'embedded' : 'off',
      webhooks: webhooks ? 'on' : 'off',
      authentication: config.tokens.length > 0 ? `${config.tokens.length} tokens` : 'off',
      console: consoleBuilt(consoleDir) ? `http://${config.host}:${port}/` : 'not built',
    });
    if (config.opsPort !== undefined) {
      log.warn(
        `SNAPCAT_OPS_PORT (${config.opsPort}) is for a workers or projector process and is ignored here: ` +
          `this process serves /healthz, /readyz and /metrics on its API port (${port})`,
      );
    }
    if (!consoleBuilt(consoleDir)) {
      log.warn(`the web console is not built (${consoleDir}): run \`npm run build:console\`; / answers 503`);
    }
    if (config.tokens.length === 0) {
      log.warn(
        `authentication is off: no SNAPCAT_TOKENS, so every request may do everything; listening on ${config.host} only. ` +
          "Make a token with `npx snapcat token create --name <name> --scope admin --namespace '*'` and set SNAPCAT_TOKENS to its line",
      );
    }
  }
  // Idle keep-alive connections stay open longer than a load balancer's idle timeout (AWS ALB: 60 s), so the
  // server never closes one just as a proxy or client sends on it (Node's default, 5 s, races them: the client
  // sees the connection closed under its request). The header timeout must exceed it.
  server.keepAliveTimeout = HTTP_KEEP_ALIVE_MS;
  server.headersTimeout = HTTP_KEEP_ALIVE_MS + 1000;
  return server;
}

/**
 * The event streams a server answers (GraphQL subscriptions over SSE, the console's live updates), which no
 * shutdown would otherwise end: `server.close` waits for every connection, so one open console tab held every
 * stop for the whole grace, its stream then cut (a walkthrough). `end()` completes each as the subscription
 * protocol does (`event: complete`), so clients see the stream finish and reconnect to another replica.
 */
function eventStreams(server: Server): { end(): void } {
  const open = new Set<ServerResponse>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!req.headers.accept?.includes('text/event-stream')) return;
    open.add(res);
    res.on('close', () => open.delete(res));
  });
  return {
    end() {
      for (const res of open) {
        res.on('error', () => undefined); // what the subscription writes after the end goes nowhere
        if (!res.writableEnded) res.end('event: complete\ndata:\n\n');
      }
    },
  };
}
