import type { Worker } from 'bullmq';
import type { EventStore } from '@snapcat/event-store';
import { ClusterRepository } from '@snapcat/application';
import { connectRedis, logQueueErrors, type Config, type LogFn } from '@snapcat/runtime';
import { Deliveries } from './deliveries';
import { endDeliveriesFailedByBullMq, startDeliveryWorker } from './delivery-worker';
import { WebhookDispatcher } from './dispatcher';
import { SecretBox } from './secret-box';
import { WebhookService } from './service';
import { SubscriptionRepository } from './subscriptions';

export * from './address-guard';
export * from './deliveries';
export * from './dispatcher';
export * from './secret-box';
export * from './service';
export * from './signature';
export * from './subscriptions';

type Log = { info: LogFn; warn: LogFn; error: LogFn };

/**
 * The Flink clusters (issue 19) on the store, their header values sealed by the SecretBox webhook secrets are
 * sealed with (SNAPCAT_SECRET_KEY; the public development key with SNAPCAT_ENV=development). Without a key
 * clusters without headers still work; one with headers is refused (and a sealed one cannot be opened).
 * It is the ClusterRegistry (@snapcat/application) the Flink connector reads.
 */
export function openClusters(config: Config, store: EventStore): ClusterRepository {
  const key = config.webhooks.secretKey;
  return new ClusterRepository(store, { box: key ? new SecretBox(key) : undefined });
}

/** Why webhooks are off, when they are; undefined when they can run. Said once, at start. */
export function webhooksDisabledReason(config: Config): string | undefined {
  return config.webhooks.secretKey
    ? undefined
    : 'webhooks are disabled: set SNAPCAT_SECRET_KEY (32+ characters) to seal subscription secrets; ' +
        'only SNAPCAT_ENV=development may run without one';
}

/**
 * Opens what every process that touches webhooks needs: the subscriptions, the delivery queue and log,
 * and the API-facing service. `startDelivery` adds the dispatcher and the delivery worker (workers only).
 * Undefined when webhooks are disabled (no secret key outside development).
 */
export function openWebhooks(config: Config, prefix: string, store: EventStore, log: Log) {
  const reason = webhooksDisabledReason(config);
  if (reason) {
    log.warn(reason);
    return undefined;
  }
  if (config.webhooks.usingDevelopmentKey) {
    log.warn('webhook secrets are sealed with the public development key (SNAPCAT_ENV=development)');
  }
  const settings = config.webhooks;
  const redis = connectRedis(config.redisUrl);
  const connection = connectRedis(config.redisUrl);
  const box = new SecretBox(settings.secretKey!);
  const now = () => Date.now();
  const subscriptions = new SubscriptionRepository(store, now);
  const deliveries = new Deliveries(redis, connection, prefix, settings.scheduleMs.length);
  logQueueErrors(deliveries.queue, log.error, { queue: deliveries.queue.name });
  const service = new WebhookService({
    subscriptions,
    deliveries,
    box,
    allowPrivate: settings.allowPrivate,
    rotationOverlapMs: settings.rotationOverlapMs,
    now,
  });
  let dispatcher: WebhookDispatcher | undefined;
  let worker: Worker | undefined;

  return {
    service,
    /** The delivery queue and log (the API counts the queue for /metrics). */
    deliveries,
    /** The dispatcher (active on one process at a time) and the delivery worker (on every process). */
    startDelivery() {
      dispatcher = new WebhookDispatcher({
        store,
        redis,
        deliveries,
        keyPrefix: prefix,
        checkpointEveryMs: settings.checkpointEveryMs,
        endDeliveriesFailedByBullMq: (stopping) =>
          endDeliveriesFailedByBullMq({ store, subscriptions, deliveries, now, log }, stopping),
        now,
        log,
      });
      dispatcher.start();
      worker = startDeliveryWorker({
        connection,
        prefix,
        store,
        subscriptions,
        deliveries,
        box,
        scheduleMs: settings.scheduleMs,
        timeoutMs: settings.timeoutMs,
        allowPrivate: settings.allowPrivate,
        concurrency: settings.concurrency,
        now,
        log,
      });
    },
    get dispatcher() {
      return dispatcher;
    },
    async close() {
      await dispatcher?.stop();
      await worker?.close();
      await deliveries.close();
      await Promise.all([redis.quit(), connection.quit()]).catch(() => undefined);
    },
  };
}
export type Webhooks = NonNullable<ReturnType<typeof openWebhooks>>;
export * from './json-schema';
