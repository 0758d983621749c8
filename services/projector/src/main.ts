import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub } from 'graphql-yoga';
import { Projector, ReadModelKeys } from '@snapcat/read-model';
import {
  closeRedis,
  connectRedis,
  loadConfigOrExit,
  openCore,
  openStoreNamespace,
  stopOnSignals,
} from '@snapcat/runtime';

/** The projector on its own (`npm run start:projector`); the API may then run with SNAPCAT_PROJECTOR=off. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const { log, store } = openCore(config);
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
  // Signals are handled before `listening` is logged: a supervisor may stop the process at once.
  stopOnSignals(log, config.shutdownGraceMs, {
    drain: () => projector.stop(),
    close: async () => {
      await closeRedis(redis);
      await store.close();
    },
  });
  log.info('listening', { role: 'projector' });
}

void main();
