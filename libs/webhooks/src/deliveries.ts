import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Queue, type ConnectionOptions } from 'bullmq';
import { comparePositions, formatPosition, parsePosition, type Position } from '@snapcat/event-store';

export const WEBHOOK_QUEUE = 'webhooks';

/** One message to one subscription; the BullMQ job's data, so that every retry sends the same bytes. */
export interface DeliveryJob {
  /** `<eventId>-<subscriptionId>`: also the first BullMQ job id, so a replayed event enqueues nothing. */
  deliveryId: string;
  subscriptionId: string;
  /** The webhook-id header: the event's id, the same on every attempt and redelivery. */
  messageId: string;
  eventType: string;
  jobId?: string;
  body: string;
}

const RELEASE_IF_OURS = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end`;

/** A delivery's BullMQ job id: the delivery's id, then `-r<round>` for each redelivery. */
const bullJobIdOf = (deliveryId: string, round: number) =>
  round > 0 ? `${deliveryId}-r${round}` : deliveryId;

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'gone' | 'skipped';

export interface DeliveryAttempt {
  attempt: number;
  at: string;
  statusCode?: number;
  latencyMs: number;
  error?: string;
  /** The wait before the next attempt, when one is planned. */
  nextAttemptInMs?: number;
}

export interface DeliveryRecord {
  id: string;
  subscriptionId: string;
  messageId: string;
  eventType: string;
  jobId?: string;
  status: DeliveryStatus;
  createdAt: string;
  updatedAt: string;
  attempts: DeliveryAttempt[];
}

/** How long the delivery log keeps a delivery, and how many it lists per subscription. */
const LOG_TTL_SECONDS = 30 * 24 * 3600;
const LOG_PER_SUBSCRIPTION = 1000;

/**
 * Records the delivery unless it is known (a replayed event must not reset the status of a finished one), and
 * ranks it unsettled at its position (ARGV[4], ARGV[5]; empty: not tracked) unless it settled already: a
 * settled one is never settled again, so ranked it would hold the dispatcher's checkpoint there for good.
 * A pending one is also in its subscription's pending set (KEYS[5]), which the log's trimming cannot drop.
 * Answers 1 when recorded, 0 when known and pending, 2 when known and settled (not to be queued again).
 */
const RECORD = `
local known = redis.call('EXISTS', KEYS[1]) == 1
if known and redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 2 end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[3])
  redis.call('HSETNX', KEYS[4], ARGV[3], ARGV[5])
end
redis.call('SADD', KEYS[5], ARGV[3])
redis.call('EXPIRE', KEYS[5], ARGV[1])
if known then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -${LOG_PER_SUBSCRIPTION + 1})
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1`;

/**
 * Marks a settled delivery pending again for a redelivery and answers its round, or 0 when it is pending
 * already: checked and set in one step, as concurrent requests each passed a check made apart (a review:
 * three redeliveries at once, three parallel POSTs of one message).
 */
const REDELIVER = `
if redis.call('HGET', KEYS[1], 'status') == 'pending' then return 0 end
local round = redis.call('HINCRBY', KEYS[1], 'redeliveries', 1)
redis.call('HSET', KEYS[1], 'status', 'pending', 'updatedAt', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return round`;

/**
 * The delivery queue and the delivery log (Redis). Also tracks the deliveries not yet settled with the
 * log position before their event, which bounds where the dispatcher must resume after Redis is lost.
 */
export class Deliveries {
  readonly queue: Queue<DeliveryJob>;
  private readonly keys;

  constructor(
    private readonly redis: Redis,
    connection: ConnectionOptions,
    prefix: string,
    private readonly attempts: number,
  ) {
    this.queue = new Queue<DeliveryJob>(WEBHOOK_QUEUE, { connection, prefix });
    this.keys = {
      delivery: (id: string) => `${prefix}:wh:delivery:${id}`,
      attempts: (id: string) => `${prefix}:wh:delivery:${id}:attempts`,
      bySubscription: (subscriptionId: string) => `${prefix}:wh:deliveries:${subscriptionId}`,
      pending: (subscriptionId: string) => `${prefix}:wh:pending:${subscriptionId}`,
      ending: (bullJobId: string) => `${prefix}:wh:ending:${bullJobId}`,
      unsettled: `${prefix}:wh:unsettled`,
      unsettledFrom: `${prefix}:wh:unsettled-from`,
    };
  }

  /**
   * Records and enqueues a delivery. `after` is the log position just before its event: until the delivery
   * settles, the dispatcher's durable checkpoint stays at or before it.
   */
  async enqueue(job: DeliveryJob, now: number, after?: Position): Promise<void> {
    const fields = {
      id: job.deliveryId,
      subscriptionId: job.subscriptionId,
      messageId: job.messageId,
      eventType: job.eventType,
      jobId: job.jobId ?? '',
      body: job.body,
      status: 'pending',
      createdAt: new Date(now).toISOString(),
      updatedAt: new Date(now).toISOString(),
    };
    const recorded = await this.redis.eval(
      RECORD,
      5,
      this.keys.delivery(job.deliveryId),
      this.keys.bySubscription(job.subscriptionId),
      this.keys.unsettled,
      this.keys.unsettledFrom,
      this.keys.pending(job.subscriptionId),
      LOG_TTL_SECONDS,
      now,
      job.deliveryId,
      after ? Number(after.commit) : '',
      after ? formatPosition(after) : '',
      ...Object.entries(fields).flat(),
    );
    // Settled: a replayed event sends it no more, whether or not BullMQ still keeps its job (a week).
    if (recorded === 2) return;
    await this.add(job, bullJobIdOf(job.deliveryId, 0));
  }

  /**
   * Claims the end of a failed job for a while (60 s), so that one process ends it: the claim's token, or
   * undefined when another holds it. Released with its token once done; one whose process died lapses.
   */
  async claimEnding(bullJobId: string): Promise<string | undefined> {
    const token = randomUUID();
    const taken = await this.redis.set(this.keys.ending(bullJobId), token, 'PX', 60_000, 'NX');
    return taken === 'OK' ? token : undefined;
  }

  /** Lets the claim go, unless it lapsed and is another's now. */
  async releaseEnding(bullJobId: string, token: string): Promise<void> {
    await this.redis.eval(RELEASE_IF_OURS, 1, this.keys.ending(bullJobId), token);
  }

  /**
   * The BullMQ job that sends the delivery now (its first, or its newest redelivery's), while it is pending;
   * undefined once it settled or when it is unknown.
   */
  async pendingJobId(deliveryId: string): Promise<string | undefined> {
    const [status, round] = await this.redis.hmget(this.keys.delivery(deliveryId), 'status', 'redeliveries');
    if (status !== 'pending') return undefined;
    return bullJobIdOf(deliveryId, Number(round ?? 0));
  }

  private async add(job: DeliveryJob, bullJobId: string): Promise<void> {
    await this.queue.add('deliver', job, {
      jobId: bullJobId,
      attempts: this.attempts,
      backoff: { type: 'webhook' },
      removeOnComplete: { age: 7 * 24 * 3600, count: 100_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  async recordAttempt(deliveryId: string, attempt: DeliveryAttempt, now: number): Promise<void> {
    await this.redis
      .multi()
      .rpush(this.keys.attempts(deliveryId), JSON.stringify(attempt))
      .ltrim(this.keys.attempts(deliveryId), -100, -1)
      .expire(this.keys.attempts(deliveryId), LOG_TTL_SECONDS)
      .hset(this.keys.delivery(deliveryId), 'updatedAt', new Date(now).toISOString())
      .exec();
  }

  async settle(
    { deliveryId, subscriptionId }: Pick<DeliveryJob, 'deliveryId' | 'subscriptionId'>,
    status: Exclude<DeliveryStatus, 'pending'>,
    now: number,
  ): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.delivery(deliveryId), 'status', status, 'updatedAt', new Date(now).toISOString())
      .zrem(this.keys.unsettled, deliveryId)
      .hdel(this.keys.unsettledFrom, deliveryId)
      .srem(this.keys.pending(subscriptionId), deliveryId)
      .exec();
  }

  async get(deliveryId: string): Promise<(DeliveryRecord & { body: string }) | undefined> {
    const [[, hash], [, attempts]] = (await this.redis
      .multi()
      .hgetall(this.keys.delivery(deliveryId))
      .lrange(this.keys.attempts(deliveryId), 0, -1)
      .exec()) as [[unknown, Record<string, string>], [unknown, string[]]];
    if (!hash.id) return undefined;
    return {
      id: hash.id,
      subscriptionId: hash.subscriptionId!,
      messageId: hash.messageId!,
      eventType: hash.eventType!,
      ...(hash.jobId ? { jobId: hash.jobId } : {}),
      status: hash.status as DeliveryStatus,
      createdAt: hash.createdAt!,
      updatedAt: hash.updatedAt!,
      attempts: attempts.map((a) => JSON.parse(a) as DeliveryAttempt),
      body: hash.body!,
    };
  }

  /** The subscription's deliveries, newest first. */
  async list(subscriptionId: string, limit: number): Promise<DeliveryRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.bySubscription(subscriptionId), 0, limit - 1);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((r) => r !== undefined).map(({ body: _body, ...record }) => record);
  }

  /**
   * Sends a delivery again, with the same webhook-id and body, as a new BullMQ job with fresh attempts; false
   * (nothing sent) when it is still pending, its attempts or another redelivery not over.
   */
  async redeliver(record: DeliveryRecord & { body: string }, now: number): Promise<boolean> {
    const round = (await this.redis.eval(
      REDELIVER,
      2,
      this.keys.delivery(record.id),
      this.keys.pending(record.subscriptionId),
      new Date(now).toISOString(),
      record.id,
      LOG_TTL_SECONDS,
    )) as number;
    if (round === 0) return false;
    const job: DeliveryJob = {
      deliveryId: record.id,
      subscriptionId: record.subscriptionId,
      messageId: record.messageId,
      eventType: record.eventType,
      ...(record.jobId ? { jobId: record.jobId } : {}),
      body: record.body,
    };
    try {
      await this.add(job, bullJobIdOf(record.id, round));
    } catch (error) {
      // Not queued: settled as it was, not left pending with nothing to send it (best effort: Redis failed).
      await this.settle(job, record.status as Exclude<DeliveryStatus, 'pending'>, now).catch(() => undefined);
      throw error;
    }
    return true;
  }

  /**
   * Drops the subscription's deliveries still waiting in the queue (a first attempt not taken yet, or a retry
   * delayed by hours), once it is deleted or disabled: each is settled `skipped` now rather than when its
   * attempt comes due, so that nothing holds the dispatcher's checkpoint for it. One being sent finishes.
   * Found in the pending set, and in the log for those recorded before the set was kept: the log lists only
   * the newest 1,000 (a review: the 1,005th oldest of a receiver down for a while stayed queued).
   */
  async dropQueued(subscriptionId: string, now: number): Promise<number> {
    const [pending, logged] = await Promise.all([
      this.redis.smembers(this.keys.pending(subscriptionId)),
      this.redis.zrange(this.keys.bySubscription(subscriptionId), 0, -1),
    ]);
    let dropped = 0;
    for (const id of new Set([...pending, ...logged])) {
      const [status, redeliveries] = await this.redis.hmget(this.keys.delivery(id), 'status', 'redeliveries');
      if (status !== 'pending') continue;
      const rounds = Number(redeliveries ?? 0);
      const bullIds = [id, ...Array.from({ length: rounds }, (_, i) => `${id}-r${i + 1}`)];
      let waiting = false;
      for (const bullId of bullIds) {
        const job = await this.queue.getJob(bullId);
        const state = job && (await job.getState());
        if (state !== 'delayed' && state !== 'waiting' && state !== 'prioritized') continue;
        // Its outcome is known and only its end waits (a failure's report the log refused): it ends as decided
        // (a review: dropped, the failure was never reported).
        if ('ending' in job!.data) continue;
        // A job a worker took meanwhile cannot be removed: it runs, and skips the delivery itself.
        if (
          await job!.remove().then(
            () => true,
            () => false,
          )
        )
          waiting = true;
      }
      if (!waiting) continue;
      await this.settle({ deliveryId: id, subscriptionId }, 'skipped', now);
      dropped += 1;
    }
    return dropped;
  }

  /** The position before the oldest unsettled delivery's event; undefined when every delivery settled. */
  async oldestUnsettled(): Promise<Position | undefined> {
    const [oldest, score] = await this.redis.zrange(this.keys.unsettled, 0, 0, 'WITHSCORES');
    if (!oldest || score === undefined) return undefined;
    // Scored by commit position alone: a checkpoint and the event after it may share one (EventStoreDB's
    // checkpoint is (next record, 0)), so the earliest position of the ties.
    const tied = await this.redis.zrangebyscore(this.keys.unsettled, score, score);
    const texts = await this.redis.hmget(this.keys.unsettledFrom, ...tied);
    let earliest: Position | undefined;
    for (const text of texts) {
      if (!text) continue;
      const position = parsePosition(text);
      if (!earliest || comparePositions(position, earliest) < 0) earliest = position;
    }
    return earliest;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
