import { Projector, ReadModel, ReadModelKeys, snapshotEventPublisher } from '@snapcat/read-model';
import {
  closeOps,
  closeRedis,
  connectRedis,
  loadConfigOrExit,
  openCore,
  openStoreNamespace,
  opsAddress,
  projectorConsumerState,
  connectionState,
  startOpsEndpoints,
  stopOnSignalOrStoreFailure,
} from '@snapcat/runtime';

/**
 * The projector on its own (`npm run start:projector`); the API may then run with SNAPCAT_PROJECTOR=off.
 * With SNAPCAT_OPS_PORT it serves /healthz, /readyz and /metrics there (its lease, position and lag), from
 * before the projector starts.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit({ servesApi: false });
  const core = openCore(config, { servesApi: false });
  const { log, store } = core;
  // Set once they are made: the ops endpoints come first.
  let projector: Projector | undefined = undefined;
  let readModel: ReadModel | undefined = undefined;
  let started = false;
  const redis = connectRedis(config.redisUrl);
  const ops = await startOpsEndpoints(config, core, {
    role: 'projector',
    starting: () => (started ? undefined : 'the projector (the store’s namespace in Redis, its lease)'),
    redisState: () => connectionState(redis),
    waitingForRedis: 'the read model waits for it',
    service: {
      // A standby knows no lag: the active projector's is reported by its own process.
      projectionLag: async () => (projector?.active ? projector.lag() : null),
      consumers: async () => {
        const model = readModel;
        return projector && model ? [await projectorConsumerState(projector, () => model.position())] : [];
      },
    },
  });
  const prefix = await openStoreNamespace(config, store, log);
  const publishing = connectRedis(config.redisUrl);
  const running = new Projector({
    store,
    redis,
    prefix,
    log,
    publish: snapshotEventPublisher(publishing, new ReadModelKeys(prefix)),
  });
  readModel = new ReadModel(redis, prefix);
  projector = running;
  await running.start();
  started = true;
  // Signals are handled before `listening` is logged: a supervisor may stop the process at once.
  stopOnSignalOrStoreFailure(log, store, config.shutdownGraceMs, {
    drain: () => running.stop(),
    close: async () => {
      await closeRedis(redis);
      await closeRedis(publishing);
      await store.close();
      closeOps(ops); // the probes answer until the end: a supervisor sees a draining process as alive
    },
  });
  log.info('listening', { role: 'projector', ...opsAddress(ops) });
}

void main();
