import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
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
  /** How long a failure's report waits before it is appended again, when the log refused it (5 s). */
  reportRetryMs?: number;
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
  const worker = new Worker<DeliveryJob>(WEBHOOK_QUEUE, (job, token) => deliver(deps, job, token), {
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

/** A delivery job's data once its last attempt failed and the log refused the failure's report. */
interface UnreportedDelivery extends DeliveryJob {
  unreported?: { id: string; failed: WebhookDeliveryFailed };
}

/**
 * One attempt of a delivery. An error of snapcat's own on the last attempt (the store or Redis failing, not
 * the receiver) still ends it failed and reported: left pending, it held the dispatcher's checkpoint and
 * refused redeliveries for good (a review).
 */
async function deliver(
  deps: DeliveryWorkerDeps,
  job: Job<UnreportedDelivery>,
  token?: string,
): Promise<void> {
  if (job.data.unreported) return reportThenSettle(deps, job, token, job.data.unreported);
  try {
    return await attempt(deps, job, token);
  } catch (error) {
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (!final || error instanceof RetryableDeliveryError || error instanceof DelayedError) throw error;
    const message = (error as Error).message;
    deps.log.error('webhook delivery’s last attempt failed in snapcat; settled failed', {
      subscriptionId: job.data.subscriptionId,
      deliveryId: job.data.deliveryId,
      error: message,
    });
    return giveUp(deps, job, token, { error: `snapcat could not attempt it: ${message}`, latencyMs: 0 });
  }
}

/** One attempt: sent, recorded, then settled, retried (by throwing) or given up. */
async function attempt(
  deps: DeliveryWorkerDeps,
  job: Job<UnreportedDelivery>,
  token?: string,
): Promise<void> {
  const { deliveries, log } = deps;
  const { deliveryId, subscriptionId, messageId } = job.data;
  const attempt = job.attemptsMade + 1;
  const final = attempt >= (job.opts.attempts ?? 1);
  const subscription = (await deps.subscriptions.current()).get(subscriptionId);
  if (!subscription?.enabled) {
    await deliveries.settle(job.data, 'skipped', deps.now());
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
  if (succeeded) return deliveries.settle(job.data, 'succeeded', deps.now());
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
    await deliveries.settle(job.data, 'gone', deps.now());
    await deliveries.dropQueued(subscriptionId, deps.now());
    return;
  }
  if (retrying) {
    log.warn('webhook delivery attempt failed; retrying', attemptFields);
    throw new RetryableDeliveryError(result.error ?? 'failed', retryAfterMs);
  }
  log.warn('webhook delivery failed after its last attempt', attemptFields);
  return giveUp(deps, job, token, result);
}

/** The last attempt failed: the failure reported (unless it is a message whose failures are not), then settled. */
async function giveUp(
  deps: DeliveryWorkerDeps,
  job: Job<UnreportedDelivery>,
  token: string | undefined,
  result: PostResult,
): Promise<void> {
  if (UNREPORTED.has(job.data.eventType)) return deps.deliveries.settle(job.data, 'failed', deps.now());
  const failed = failureOf(job.data, job.attemptsMade + 1, result, deps.now());
  return reportThenSettle(deps, job, token, { id: newEventId(), failed });
}

/**
 * Appends the failure's report, then settles the delivery failed. When the log refuses it, the job waits and
 * tries the report again (not the delivery: its attempts are over), its event id kept so that a report whose
 * append's outcome was unknown is not written twice where the store knows the id.
 */
async function reportThenSettle(
  deps: DeliveryWorkerDeps,
  job: Job<UnreportedDelivery>,
  token: string | undefined,
  unreported: NonNullable<UnreportedDelivery['unreported']>,
): Promise<void> {
  try {
    await deps.store.append(
      DELIVERY_FAILURES_STREAM,
      [
        {
          id: unreported.id,
          type: unreported.failed.type,
          data: unreported.failed,
          metadata: versionedMetadata(unreported.failed.type),
        },
      ],
      'any',
    );
  } catch (error) {
    deps.log.error('webhook delivery failure not reported yet: the event log refused it; trying again', {
      subscriptionId: job.data.subscriptionId,
      deliveryId: job.data.deliveryId,
      error: (error as Error).message,
    });
    if (!job.data.unreported) await job.updateData({ ...job.data, unreported });
    await job.moveToDelayed(deps.now() + (deps.reportRetryMs ?? 5_000), token);
    throw new DelayedError();
  }
  return deps.deliveries.settle(job.data, 'failed', deps.now());
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

/** WebhookDeliveryFailed, for the log: the delivery's last attempt failed. */
function failureOf(
  delivery: DeliveryJob,
  attempts: number,
  result: PostResult,
  now: number,
): WebhookDeliveryFailed {
  return {
    type: 'WebhookDeliveryFailed',
    subscriptionId: delivery.subscriptionId,
    deliveryId: delivery.deliveryId,
    eventId: delivery.messageId,
    eventType: delivery.eventType,
    ...(delivery.jobId ? { jobId: delivery.jobId } : {}),
    attempts,
    ...(result.statusCode !== undefined ? { lastStatusCode: result.statusCode } : {}),
    lastError: result.error ?? 'failed',
    occurredAt: new Date(now).toISOString(),
  };
}
