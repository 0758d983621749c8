import type { Server } from 'node:http';
import type { Redis } from 'ioredis';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Projector, ReadModel, ReadModelKeys } from '@snapcat/read-model';
import {
  closeRedis,
  connectRedis,
  createMetricsRegistry,
  loadConfigOrExit,
  openCore,
  openStoreNamespace,
  redisHealth,
  startEmbeddedRedis,
  stopOnSignals,
} from '@snapcat/runtime';
import { openSnapshotStorage } from '@snapcat/storage';
import { redactConnection } from '@snapcat/event-store';
import { openQueues, redisKeys, runWorkersOnly, startWorkers } from '@snapcat/workers';
import { openClusters, openWebhooks, webhooksDisabledReason } from '@snapcat/webhooks';
import { CONSOLE_DIR, consoleBuilt } from './console';
import { createApp } from './app';
import { createGraphql, createSnapshotEventsPubSub } from './graphql';
import { createUseCases } from './use-cases';
import { registerServiceMetrics } from './metrics';
import { createRateLimiter } from './rate-limit';

/**
 * Composition root of `npm start`: by SNAPCAT_ROLE, the REST and GraphQL API with the workers (`all`), the API
 * only (`api`) or the workers only (`workers`); an API process runs a projector too unless
 * SNAPCAT_PROJECTOR=off.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const core = openCore(config);
  if (config.role === 'workers') return runWorkersOnly(config, core);
  const { log, store, bus } = core;
  const embeddedRedis = await startEmbeddedRedis(config, log);
  const prefix = await openStoreNamespace(config, store, log);
  const storage = openSnapshotStorage(config.storageRoots, config.s3);
  const connections: Redis[] = [];
  const connect = (options?: Parameters<typeof connectRedis>[1]) => {
    connections.push(connectRedis(config.redisUrl, options));
    return connections[connections.length - 1]!;
  };
  const redis = connect();
  const keys = new ReadModelKeys(prefix);
  const pubsub = createSnapshotEventsPubSub(
    createRedisEventTarget({ publishClient: connect(), subscribeClient: connect() }),
  );
  // Its own connection: the queries of concurrent requests are pipelined together. A query fails within
  // 2 s when Redis does not answer, rather than wait for it to come back.
  const queryRedis = connect({ autoPipelining: true, commandTimeoutMs: 2000 });
  const readModel = new ReadModel(queryRedis, prefix);

  const workers =
    config.role === 'all' ? await startWorkers({ config, prefix, store, bus, storage, log }) : undefined;
  // With embedded workers, their webhooks serve the API too; otherwise the API opens its own (no dispatcher).
  const webhooks = workers ? workers.webhooks : openWebhooks(config, prefix, store, log);
  const projector = config.projector
    ? new Projector({
        store,
        redis: connect(), // its own: its writes WATCH its lease
        prefix,
        log,
        sharedStates: bus,
        publish: (message) => pubsub.publish(keys.channel, message.jobId, message),
      })
    : undefined;
  // Not awaited: the REST API serves commands (the event store is the truth) while Redis is still down.
  projector
    ?.start()
    .catch((error: unknown) => log.error('projector did not start', { error: String(error) }));
  // A standby projector (another process holds the lease) knows no lag: the active one's is in Redis.
  const projectionLag = async () => (projector?.active ? projector.lag() : await readModel.lag());
  const redisReady = () => redisHealth.reachable && redis.status === 'ready';

  // One registry for the process: the app adds HTTP and command metrics, these are read on scrape.
  const metrics = createMetricsRegistry();
  // An API process without workers counts the queues too: a workers-only process serves no /metrics.
  const queues = workers ? undefined : openQueues(connect(), prefix);
  registerServiceMetrics(metrics, {
    queues: () => [
      ...Object.values(workers?.queues ?? queues!),
      ...(webhooks ? [webhooks.deliveries.queue] : []),
    ],
    projectionLag,
    consumers: async () => {
      const { processManager } = workers ?? {};
      const dispatcher = webhooks?.dispatcher;
      return [
        {
          consumer: 'projector' as const,
          active: projector?.active ?? false,
          position: projector?.active ? projector.position : await readModel.position(),
          blocked: projector?.blocked !== undefined,
        },
        ...(processManager
          ? [
              {
                consumer: 'process_manager' as const,
                active: processManager.active,
                position: processManager.active ? processManager.savedPosition : undefined,
                blocked: processManager.blocked !== undefined,
              },
            ]
          : []),
        ...(dispatcher
          ? [
              {
                consumer: 'webhook_dispatcher' as const,
                active: dispatcher.active,
                position: dispatcher.active ? dispatcher.savedPosition : undefined,
                blocked: dispatcher.blocked !== undefined,
              },
            ]
          : []),
      ];
    },
    redisReady,
    store,
  });

  const defaults = { checkpointDir: config.defaultCheckpointDir, savepointDir: config.defaultSavepointDir };
  // The Flink clusters: REST and GraphQL share one fold (header values sealed like webhook secrets).
  const clusters = openClusters(config, store);
  const app = createApp({
    bus,
    store,
    storage,
    // GET /api/v1/jobs lists from the read model; 503 at once while Redis is unreachable, as GraphQL.
    readModel,
    readModelAvailable: () => redisHealth.reachable,
    graphql: createGraphql({
      useCases: createUseCases({ bus, storage, defaults, clusters }),
      store,
      readModel,
      pubsub,
      topic: keys.channel,
      readModelAvailable: () => redisHealth.reachable,
      tokens: config.tokens,
      clusters,
    }),
    tokens: config.tokens,
    rateLimiter: createRateLimiter(config.rateLimit, {
      client: connect({ autoPipelining: true, commandTimeoutMs: 500 }),
      keyPrefix: `${prefix}:ratelimit`,
    }),
    projectionLag,
    redisReady,
    // What the store refuses snapcat's credentials (a request, the projector or a consumer met it): unready.
    storeAccessDenied: () => store.accessDenied,
    orphanReport: async () => {
      const text = await redis.get(redisKeys(prefix).orphanReport);
      return text ? JSON.parse(text) : null;
    },
    storeCounters: store.counters,
    webhooks: webhooks?.service ?? { disabled: webhooksDisabledReason(config)! },
    clusters,
    defaults,
    log: log.error,
    metrics,
    requestLog: log.debug,
  });
  const server: Server = app.listen(config.port, config.host, (error?: Error) => {
    if (error) {
      // Express 5 hands a failed bind (EADDRINUSE, EACCES) to this callback: without the port the process
      // must not go on running its workers and projector against the shared store and Redis.
      log.error('cannot listen: stopping', { port: config.port, host: config.host, error: error.message });
      process.exit(1);
    }
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
      console: consoleBuilt() ? `http://${config.host}:${port}/` : 'not built',
    });
    if (!consoleBuilt()) {
      log.warn(`the web console is not built (${CONSOLE_DIR}): run \`npm run build:console\`; / answers 503`);
    }
    if (config.tokens.length === 0) {
      log.warn(
        `authentication is off: no SNAPCAT_TOKENS, so every request may do everything; listening on ${config.host} only. ` +
          "Make a token with `npx snapcat token create --name <name> --scope admin --namespace '*'` and set SNAPCAT_TOKENS to its line",
      );
    }
  });

  stopOnSignals(log, config.shutdownGraceMs, {
    drain: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await workers?.close();
      if (!workers) await webhooks?.close();
      await projector?.stop();
      await Promise.all(Object.values(queues ?? {}).map((queue) => queue.close()));
    },
    close: async () => {
      await Promise.all(connections.map(closeRedis));
      await bus.flush();
      await store.close();
      await embeddedRedis?.stop();
    },
  });
}

void main();
