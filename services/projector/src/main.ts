import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub } from 'graphql-yoga';
import { Projector, ReadModelKeys } from '@snapcat/read-model';
import {
  closeOps,
  closeRedis,
  connectRedis,
  loadConfigOrExit,
  openCore,
  openStoreNamespace,
  opsAddress,
  redisHealth,
  startOpsEndpoints,
  stopOnSignals,
} from '@snapcat/runtime';

/**
 * The projector on its own (`npm run start:projector`); the API may then run with SNAPCAT_PROJECTOR=off.
 * With SNAPCAT_OPS_PORT it serves /healthz, /readyz and /metrics there (its lease, position and lag).
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit({ servesApi: false });
  const core = openCore(config);
  const { log, store } = core;
  const prefix = await openStoreNamespace(config, store, log);
  const redis = connectRedis(config.redisUrl);
  const pubsub = createPubSub({
    eventTarget: createRedisEventTarget({
      publishClient: connectRedis(config.redisUrl),
      subscribeClient: connectRedis(config.redisUrl),
    }),
  });
  const channel = new ReadModelKeys(prefix).channel;
  const projector = new Projector({
    store,
    redis,
    prefix,
    log,
    publish: (message) => pubsub.publish(channel, message.jobId, message),
  });
  await projector.start();
  const ops = await startOpsEndpoints(config, core, {
    role: 'projector',
    redisReady: () => redisHealth.reachable && redis.status === 'ready',
    waitingForRedis: 'the read model waits for it',
    service: {
      // A standby knows no lag: the active projector's is reported by its own process.
      projectionLag: async () => (projector.active ? projector.lag() : null),
      consumers: () => [
        {
          consumer: 'projector',
          active: projector.active,
          position: projector.position,
          blocked: projector.blocked !== undefined,
        },
      ],
    },
  });
  // Signals are handled before `listening` is logged: a supervisor may stop the process at once.
  stopOnSignals(log, config.shutdownGraceMs, {
    drain: () => projector.stop(),
    // The probes answer until the end: a supervisor sees a draining process as alive.
    close: async () => {
      await closeOps(ops);
      await closeRedis(redis);
      await store.close();
    },
  });
  log.info('listening', { role: 'projector', ...opsAddress(ops) });
}

void main();
