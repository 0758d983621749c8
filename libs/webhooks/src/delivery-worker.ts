import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import {
  parseRetryAfter,
  retryDelayMs,
  signingKeys,
  versionedMetadata,
  type Subscription,
  type WebhookDeliveryFailed,
} from '@snapcat/domain';
import { newEventId, type EventStore } from '@snapcat/event-store';
import { logQueueErrors, type LogFn } from '@snapcat/runtime';
import { WEBHOOK_QUEUE, type Deliveries, type DeliveryJob } from './deliveries';
import { postWebhook, type PostResult } from './http-post';
import type { SecretBox } from './secret-box';
import { webhookHeaders } from './signature';
import { DELIVERY_FAILURES_STREAM, type SubscriptionRepository } from './subscriptions';

export interface DeliveryWorkerDeps {
  connection: ConnectionOptions;
  prefix: string;
  store: EventStore;
  subscriptions: SubscriptionRepository;
  deliveries: Deliveries;
  box: SecretBox;
  /** Waits before each attempt; the first is normally 0 (immediately). */
  scheduleMs: readonly number[];
  timeoutMs: number;
  allowPrivate: boolean;
  concurrency: number;
  now: () => number;
  log: { info: LogFn; warn: LogFn; error: LogFn };
}

/** A failed attempt that will be retried; carries the receiver's Retry-After to the backoff. */
class RetryableDeliveryError extends Error {
  override name = 'RetryableDeliveryError';
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

/** Messages about failures are not themselves reported when they fail: two failing receivers would ping-pong. */
const UNREPORTED = new Set(['WebhookDeliveryFailed', 'WebhookTest']);

/**
 * Sends deliveries: signs with every key valid now, POSTs, logs the attempt. A 2xx settles it; a 410
 * disables the subscription; any other answer is retried on the schedule (Retry-After honoured) until the
 * attempts run out, which appends WebhookDeliveryFailed to the log.
 */
export function startDeliveryWorker(deps: DeliveryWorkerDeps): Worker<DeliveryJob> {
  const worker = new Worker<DeliveryJob>(WEBHOOK_QUEUE, (job) => deliver(deps, job), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: deps.concurrency,
    // The lock is renewed while the worker lives, whatever the receiver's speed; after a crash another
    // worker takes the delivery over within lockDuration + stalledInterval. A delivery that keeps
    // crashing its worker is sent again up to maxStalledCount times before BullMQ gives up on it.
    lockDuration: 10_000,
    stalledInterval: 5_000,
    maxStalledCount: 10,
    settings: {
      backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
        retryDelayMs(
          deps.scheduleMs,
          attemptsMade,
          error instanceof RetryableDeliveryError ? error.retryAfterMs : undefined,
        ),
    },
  });
  logQueueErrors(worker, deps.log.error, { queue: WEBHOOK_QUEUE });
  return worker;
}

/** One attempt of a delivery: sent, recorded, then settled, retried (by throwing) or given up. */
async function deliver(deps: DeliveryWorkerDeps, job: Job<DeliveryJob>): Promise<void> {
  const { deliveries, log } = deps;
  const { deliveryId, subscriptionId, messageId } = job.data;
  const attempt = job.attemptsMade + 1;
  const final = attempt >= (job.opts.attempts ?? 1);
  const subscription = (await deps.subscriptions.current()).get(subscriptionId);
  if (!subscription?.enabled) {
    await deliveries.settle(deliveryId, 'skipped', deps.now());
    return;
  }
  const sentAt = deps.now();
  const result = await send(deps, subscription, job.data, sentAt);
  const succeeded = result.statusCode !== undefined && result.statusCode >= 200 && result.statusCode < 300;
  const gone = result.statusCode === 410;
  const retryAfterMs = parseRetryAfter(result.retryAfter, deps.now());
  const retrying = !succeeded && !gone && !final;
  const nextAttemptInMs = retrying ? retryDelayMs(deps.scheduleMs, attempt, retryAfterMs) : undefined;
  await deliveries.recordAttempt(
    deliveryId,
    {
      attempt,
      at: new Date(sentAt).toISOString(),
      ...(result.statusCode !== undefined ? { statusCode: result.statusCode } : {}),
      latencyMs: result.latencyMs,
      ...(result.error ? { error: result.error } : {}),
      ...(nextAttemptInMs !== undefined ? { nextAttemptInMs } : {}),
    },
    deps.now(),
  );
  if (succeeded) return deliveries.settle(deliveryId, 'succeeded', deps.now());
  // One line per failed attempt: what was tried and what comes next; never the secret nor the signature.
  const attemptFields = {
    subscriptionId,
    eventId: messageId,
    deliveryId,
    attempt,
    ...(result.statusCode !== undefined ? { statusCode: result.statusCode } : {}),
    ...(result.error ? { error: result.error } : {}),
    nextAttemptAt:
      nextAttemptInMs === undefined ? null : new Date(deps.now() + nextAttemptInMs).toISOString(),
  };
  if (gone) {
    await deps.subscriptions.execute({ type: 'DisableGone', subscriptionId });
    log.warn('webhook receiver answered 410 Gone; subscription disabled', attemptFields);
    await deliveries.settle(deliveryId, 'gone', deps.now());
    await deliveries.dropQueued(subscriptionId, deps.now());
    return;
  }
  if (retrying) {
    log.warn('webhook delivery attempt failed; retrying', attemptFields);
    throw new RetryableDeliveryError(result.error ?? 'failed', retryAfterMs);
  }
  if (!UNREPORTED.has(job.data.eventType)) await reportFailure(deps, job.data, attempt, result);
  log.warn('webhook delivery failed after its last attempt', attemptFields);
  return deliveries.settle(deliveryId, 'failed', deps.now());
}

/** Signs the body with the subscription's keys valid at `sentAt` and POSTs it; not sent if they cannot be opened. */
async function send(
  deps: DeliveryWorkerDeps,
  subscription: Subscription,
  { messageId, body }: DeliveryJob,
  sentAt: number,
): Promise<PostResult> {
  const secrets = openKeys(deps.box, subscription, sentAt);
  if (!secrets) {
    return {
      latencyMs: 0,
      error: 'the subscription secret cannot be opened: was SNAPCAT_SECRET_KEY changed? (not sent)',
    };
  }
  return postWebhook({
    url: subscription.url,
    headers: webhookHeaders(messageId, Math.floor(sentAt / 1000), body, secrets),
    body,
    timeoutMs: deps.timeoutMs,
    allowPrivate: deps.allowPrivate,
  });
}

/** The signing secrets in clear; undefined when they were sealed with another SNAPCAT_SECRET_KEY. */
function openKeys(box: SecretBox, subscription: Subscription, now: number): string[] | undefined {
  try {
    return signingKeys(subscription, now).map((sealed) => box.open(sealed));
  } catch {
    return undefined;
  }
}

/** Appends WebhookDeliveryFailed to the log: the delivery's last attempt failed. */
async function reportFailure(
  deps: DeliveryWorkerDeps,
  delivery: DeliveryJob,
  attempts: number,
  result: PostResult,
): Promise<void> {
  const failed: WebhookDeliveryFailed = {
    type: 'WebhookDeliveryFailed',
    subscriptionId: delivery.subscriptionId,
    deliveryId: delivery.deliveryId,
    eventId: delivery.messageId,
    eventType: delivery.eventType,
    ...(delivery.jobId ? { jobId: delivery.jobId } : {}),
    attempts,
    ...(result.statusCode !== undefined ? { lastStatusCode: result.statusCode } : {}),
    lastError: result.error ?? 'failed',
    occurredAt: new Date(deps.now()).toISOString(),
  };
  await deps.store.append(
    DELIVERY_FAILURES_STREAM,
    [{ id: newEventId(), type: failed.type, data: failed, metadata: versionedMetadata(failed.type) }],
    'any',
  );
}
