import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import {
  parseRetryAfter,
  retryDelayMs,
  signingKeys,
  versionedMetadata,
  type Subscription,
  type WebhookDeliveryFailed,
} from '@snapcat/domain';
import { namedEventId, type EventStore } from '@snapcat/event-store';
import { logQueueErrors, type LogFn } from '@snapcat/runtime';
import { WEBHOOK_QUEUE, type Deliveries, type DeliveryJob } from './deliveries';
import { isSuccess, postWebhook, type PostResult } from './http-post';
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
  /** How many times a delivery's worker may be lost while sending it before BullMQ fails it (10). */
  maxStalledCount?: number;
  /** How long the end of a delivery waits before it is tried again, when a step of it failed (5 s). */
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
  const worker = new Worker<DeliveryJob>(
    WEBHOOK_QUEUE,
    (job, token) => deliver(deps, job as Job<EndingDelivery>, token),
    {
      connection: deps.connection,
      prefix: deps.prefix,
      concurrency: deps.concurrency,
      // The lock is renewed while the worker lives, whatever the receiver's speed; after a crash another
      // worker takes the delivery over within lockDuration + stalledInterval. A delivery that keeps
      // crashing its worker is sent again up to maxStalledCount times before BullMQ gives up on it.
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: deps.maxStalledCount ?? 10,
      settings: {
        backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
          retryDelayMs(
            deps.scheduleMs,
            attemptsMade,
            error instanceof RetryableDeliveryError ? error.retryAfterMs : undefined,
          ),
      },
    },
  );
  logQueueErrors(worker, deps.log.error, { queue: WEBHOOK_QUEUE });
  // BullMQ fails a delivery on its own (no processor call) once its worker was lost while sending it more than
  // maxStalledCount times: the worker that takes it next says so here. A failed attempt that will be retried
  // is in another state than `failed`.
  worker.on('failed', (job) => {
    if (!job) return;
    void (async () => {
      if ((await job.getState()) === 'failed') await endFailedJob(deps, job.id!);
    })().catch((error: unknown) =>
      deps.log.error('webhook delivery whose job BullMQ failed not ended yet; the dispatcher tries again', {
        deliveryId: (job.data as DeliveryJob).deliveryId,
        error: (error as Error).message,
      }),
    );
  });
  return worker;
}

/**
 * How a delivery ends once its outcome is known: settled with a status, after disabling a subscription whose
 * receiver is gone, or after reporting the failure. Kept in the job's data while a step of it fails (the
 * store or Redis away), so that the job ends it later without sending again (its attempts are over).
 */
type Ending =
  | { status: 'succeeded' | 'skipped' | 'gone' }
  | { status: 'failed'; report?: { id: string; failed: WebhookDeliveryFailed } };

/** A delivery job's data: `ending` once its outcome is known and ending it failed (see Ending). */
export interface EndingDelivery extends DeliveryJob {
  ending?: Ending;
}

/**
 * One attempt of a delivery, then its end. An error of snapcat's own before the outcome is known (the store
 * failing the subscription lookup) costs an attempt; on the last one the delivery still ends failed and
 * reported: left pending, it held the dispatcher's checkpoint and refused redeliveries for good (a review).
 * An error once the outcome is known never changes it (a second review: a 200 whose record failed was
 * reported failed) and never sends again.
 */
async function deliver(deps: DeliveryWorkerDeps, job: Job<EndingDelivery>, token?: string): Promise<void> {
  const ending = job.data.ending ?? (await attemptOrGiveUp(deps, job));
  await end(deps, job, token, ending);
}

/** The attempt's ending; a retry is thrown. An error before the outcome is known fails the last attempt. */
async function attemptOrGiveUp(deps: DeliveryWorkerDeps, job: Job<EndingDelivery>): Promise<Ending> {
  try {
    return await attempt(deps, job);
  } catch (error) {
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (!final || error instanceof RetryableDeliveryError) throw error;
    const message = (error as Error).message;
    deps.log.error('webhook delivery’s last attempt failed in snapcat; settled failed', {
      subscriptionId: job.data.subscriptionId,
      deliveryId: job.data.deliveryId,
      error: message,
    });
    return failed(deps, job, { error: `snapcat could not attempt it: ${message}`, latencyMs: 0 });
  }
}

/** One attempt: sent and recorded; its ending, or a retry thrown. */
async function attempt(deps: DeliveryWorkerDeps, job: Job<EndingDelivery>): Promise<Ending> {
  const { deliveries, log } = deps;
  const { deliveryId, subscriptionId, messageId } = job.data;
  const attempt = job.attemptsMade + 1;
  const final = attempt >= (job.opts.attempts ?? 1);
  const subscription = await enabledSubscription(deps, subscriptionId);
  if (!subscription) return { status: 'skipped' };
  const sentAt = deps.now();
  const result = await send(deps, subscription, job.data, sentAt);
  const succeeded = isSuccess(result.statusCode);
  const gone = result.statusCode === 410;
  const retryAfterMs = parseRetryAfter(result.retryAfter, deps.now());
  const retrying = !succeeded && !gone && !final;
  const nextAttemptInMs = retrying ? retryDelayMs(deps.scheduleMs, attempt, retryAfterMs) : undefined;
  // Sent: the outcome stands whatever happens to its record (the log of attempts is for reading).
  await deliveries
    .recordAttempt(
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
    )
    .catch((error: unknown) =>
      log.error('webhook delivery attempt not recorded', { deliveryId, attempt, error: String(error) }),
    );
  if (succeeded) return { status: 'succeeded' };
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
    log.warn('webhook receiver answered 410 Gone; subscription disabled', attemptFields);
    return { status: 'gone' };
  }
  if (retrying) {
    log.warn('webhook delivery attempt failed; retrying', attemptFields);
    throw new RetryableDeliveryError(result.error ?? 'failed', retryAfterMs);
  }
  log.warn('webhook delivery failed after its last attempt', attemptFields);
  return failed(deps, job, result);
}

/**
 * How a delivery whose job BullMQ failed ends: succeeded when this job's last recorded attempt was answered
 * 2xx (the receiver has it; an earlier round's answers do not count); skipped when its subscription is gone or
 * disabled (as its next attempt would have been); else failed, with BullMQ's reason and this job's attempts.
 */
async function endingOfFailedJob(deps: EndDeps, job: Job<EndingDelivery>): Promise<Ending> {
  const record = await deps.deliveries.get(job.data.deliveryId);
  // This job's: a redelivery's round is a job of its own, made after the earlier rounds' attempts.
  const attempts = (record?.attempts ?? []).filter((a) => Date.parse(a.at) >= job.timestamp);
  if (isSuccess(attempts.at(-1)?.statusCode)) return { status: 'succeeded' };
  if (!(await enabledSubscription(deps, job.data.subscriptionId))) return { status: 'skipped' };
  const error = `BullMQ failed its job before snapcat could end it (${job.failedReason})`;
  return failed(deps, job, { latencyMs: 0, error }, attempts.length);
}

/** The subscription, when it still exists and is enabled: a delivery to one that is not is skipped. */
async function enabledSubscription(deps: Pick<DeliveryWorkerDeps, 'subscriptions'>, subscriptionId: string) {
  const subscription = (await deps.subscriptions.current()).get(subscriptionId);
  return subscription?.enabled ? subscription : undefined;
}

/**
 * The last attempt failed: reported (unless it is a message whose failures are not). The report's id is its
 * job's (one job a round of attempts): a report appended whose end then could not be kept (the settle and
 * the job's update both failing) is the same event when the round is ended again, not a second report. With
 * the job's creation time: after a Redis wipe a round's job id is made again, for another round (a review).
 */
function failed(
  deps: Pick<DeliveryWorkerDeps, 'now'>,
  job: Job<EndingDelivery>,
  result: PostResult,
  attempts = job.attemptsMade + 1,
): Ending {
  if (UNREPORTED.has(job.data.eventType)) return { status: 'failed' };
  const failure = failureOf(job.data, attempts, result, deps.now());
  return {
    status: 'failed',
    report: { id: namedEventId(`webhook-delivery-failed:${job.id}:${job.timestamp}`), failed: failure },
  };
}

/** What ending a delivery needs, in the worker or in the sweep of deliveries BullMQ failed on its own. */
type EndDeps = Pick<DeliveryWorkerDeps, 'store' | 'subscriptions' | 'deliveries' | 'now' | 'log'>;

/**
 * Ends the delivery: a gone receiver's subscription disabled, a failure reported, then settled (and a gone
 * subscription's other deliveries dropped). When a step fails, the job keeps what is left to do and tries
 * again later, not spending an attempt: a report appended is not appended again, every other step may be.
 */
async function end(
  deps: DeliveryWorkerDeps,
  job: Job<EndingDelivery>,
  token: string | undefined,
  ending: Ending,
): Promise<void> {
  const left = await endingSteps(deps, job.data, ending);
  if (!left) return;
  await job.updateData({ ...job.data, ending: left });
  await job.moveToDelayed(deps.now() + (deps.reportRetryMs ?? 5_000), token);
  throw new DelayedError();
}

/** The steps of a delivery's end, in order; what is left of it when one failed (logged), else undefined. */
async function endingSteps(
  deps: EndDeps,
  delivery: DeliveryJob,
  ending: Ending,
): Promise<Ending | undefined> {
  let left = ending;
  try {
    if (left.status === 'gone') {
      await deps.subscriptions.execute({ type: 'DisableGone', subscriptionId: delivery.subscriptionId });
    }
    if (left.status === 'failed' && left.report) {
      const { id, failed: event } = left.report;
      await deps.store.append(
        DELIVERY_FAILURES_STREAM,
        [{ id, type: event.type, data: event, metadata: versionedMetadata(event.type) }],
        'any',
      );
      left = { status: 'failed' };
    }
    await deps.deliveries.settle(delivery, left.status, deps.now());
    if (left.status === 'gone') await deps.deliveries.dropQueued(delivery.subscriptionId, deps.now());
    return undefined;
  } catch (error) {
    deps.log.error('webhook delivery not ended yet (the event log or Redis failed); trying again', {
      subscriptionId: delivery.subscriptionId,
      deliveryId: delivery.deliveryId,
      status: left.status,
      error: (error as Error).message,
    });
    return left;
  }
}

/**
 * Ends the deliveries BullMQ failed on its own, as a backstop of the workers' `failed` listener (a process lost
 * between the failure and its end): the newest `limit` of the failed set, until `stopping()` says to stop.
 * One that cannot be ended now is logged and left for the next sweep. Answers how many ended.
 */
export async function endDeliveriesFailedByBullMq(
  deps: EndDeps,
  stopping: () => boolean = () => false,
  limit = 100,
): Promise<number> {
  const jobs = (await deps.deliveries.queue.getFailed(0, limit - 1)) as (Job<EndingDelivery> | undefined)[];
  let ended = 0;
  for (const job of jobs) {
    if (stopping()) break;
    if (!job) continue;
    try {
      if (await endFailedJob(deps, job.id!)) ended += 1;
    } catch (error) {
      deps.log.error('webhook delivery whose job BullMQ failed not ended yet; the dispatcher tries again', {
        deliveryId: job.data.deliveryId,
        error: (error as Error).message,
      });
    }
  }
  return ended;
}

/**
 * Ends a delivery whose BullMQ job failed for good without the processor ending it: a worker lost while
 * sending it (a process killed, say, by what each attempt does) more than maxStalledCount times, which BullMQ
 * fails with `job stalled more than allowable limit` without calling the processor; or the end of its last
 * attempt that could not be kept (Redis failing just then). Left pending, it refused redeliveries and held
 * the dispatcher's durable checkpoint for good (a review). One process ends it (a claim in Redis: the
 * worker's listener and the dispatcher's sweep may meet), on the job as read once claimed (what another
 * process kept in it meanwhile); then its job is removed, as is one whose delivery settled otherwise (a
 * replayed event queues a settled delivery no more: `Deliveries.enqueue`), so that the sweep's window of the
 * newest failures moves on. Answers whether it ended the delivery.
 */
export async function endFailedJob(deps: EndDeps, jobId: string): Promise<boolean> {
  const { deliveries } = deps;
  const claim = await deliveries.claimEnding(jobId);
  if (!claim) return false;
  try {
    const job = (await deliveries.queue.getJob(jobId)) as Job<EndingDelivery> | undefined;
    if (!job || (await job.getState()) !== 'failed') return false;
    // Settled otherwise (its subscription deleted), or a redelivery's job sends it now.
    if ((await deliveries.pendingJobId(job.data.deliveryId)) !== jobId) {
      await job.remove();
      return false;
    }
    let ending = job.data.ending;
    if (!ending) {
      ending = await endingOfFailedJob(deps, job);
      // Kept before any step, so that a report appended is the same event if this is cut short.
      await job.updateData({ ...job.data, ending });
    }
    const left = await endingSteps(deps, job.data, ending);
    if (left) {
      await job.updateData({ ...job.data, ending: left });
      return false;
    }
    deps.log.warn('webhook delivery whose job BullMQ failed ended', {
      subscriptionId: job.data.subscriptionId,
      deliveryId: job.data.deliveryId,
      status: ending.status,
      reason: job.failedReason,
    });
    await job.remove();
    return true;
  } finally {
    await deliveries.releaseEnding(jobId, claim);
  }
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
