import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  SubscriptionEvent,
  evolveSubscriptions,
  subscriptionMatches,
  webhookPayload,
  type Subscriptions,
} from '@snapcat/domain';
import { JOB_STREAM_PREFIX } from '@snapcat/application';
import {
  START,
  comparePositions,
  formatPosition,
  parsePosition,
  type EventStore,
  type Position,
  type RecordedEvent,
  type Subscription,
} from '@snapcat/event-store';
import { RedisLease, type LogFn } from '@snapcat/runtime';
import type { Deliveries } from './deliveries';
import { DELIVERY_FAILURES_STREAM, SUBSCRIPTIONS_STREAM } from './subscriptions';

/** Durable checkpoints of the dispatcher, so that losing Redis costs redeliveries, never a lost message. */
export const DISPATCHER_STREAM = 'snapcat-webhook-dispatcher';
const CHECKPOINT_TYPE = 'WebhookDispatcherCheckpointed';

const TICK_MS = 1000;
const LEASE_MS = 5000;

export interface DispatcherDeps {
  store: EventStore;
  redis: Redis;
  deliveries: Deliveries;
  keyPrefix: string;
  /** How often the durable checkpoint is written (when it moved). */
  checkpointEveryMs: number;
  now: () => number;
  log: { info: LogFn; warn: LogFn; error: LogFn };
}

/**
 * Consumes $all from its stored position and enqueues one delivery per (event, matching subscription).
 * Subscriptions are folded from the same ordered log, so an event goes to the subscriptions that existed
 * before it, whatever the moment it is dispatched (a replay dispatches the same way). One dispatcher in
 * the cluster is active at a time (a lease). The Redis position moves after the deliveries are enqueued:
 * at-least-once. After Redis was lost (no epoch key), it resumes from the durable checkpoint in the log,
 * which is never past a delivery that had not settled.
 */
export class WebhookDispatcher {
  private readonly keys;
  private readonly lease: RedisLease;
  private subscription: Subscription | undefined;
  private subscriptions: Subscriptions = new Map();
  private position: Position = START;
  private lastCheckpoint: { at: number; position?: Position } = { at: 0 };
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;
  readonly stats = { eventsHandled: 0, deliveriesEnqueued: 0, checkpoints: 0 };

  constructor(private readonly deps: DispatcherDeps) {
    const p = deps.keyPrefix;
    this.keys = { position: `${p}:wh:position`, epoch: `${p}:wh:epoch` };
    this.lease = new RedisLease(deps.redis, `${p}:wh:lease`, LEASE_MS);
  }

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), TICK_MS);
  }

  get active(): boolean {
    return this.subscription !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.ticking) await new Promise((r) => setTimeout(r, 10));
    await this.subscription?.close();
    this.subscription = undefined;
    await this.lease.release();
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      if (!(await this.lease.acquire())) {
        if (this.subscription) {
          this.deps.log.warn('webhook dispatcher lost its lease; standing by');
          await this.subscription.close();
          this.subscription = undefined;
        }
        return;
      }
      const epoch = await this.deps.redis.get(this.keys.epoch);
      if (this.subscription && epoch) {
        await this.checkpoint();
        return;
      }
      await this.subscription?.close();
      this.subscription = undefined;
      await this.begin(epoch ? await this.deps.redis.get(this.keys.position) : null);
    } catch (error) {
      this.deps.log.error('webhook dispatcher tick failed', { error: String(error) });
    } finally {
      this.ticking = false;
    }
  }

  private async begin(storedPosition: string | null): Promise<void> {
    const { store, redis, log } = this.deps;
    const from = storedPosition ? parsePosition(storedPosition) : await this.durableCheckpoint();
    if (!storedPosition) {
      await redis.set(this.keys.position, formatPosition(from));
      await redis.set(this.keys.epoch, new Date(this.deps.now()).toISOString());
      log.info('webhook dispatcher resumes from its durable checkpoint', { position: formatPosition(from) });
    }
    this.position = from;
    this.subscriptions = await this.subscriptionsAt(from);
    this.subscription = store.subscribeToAll(
      {
        from,
        filter: { streamNamePrefixes: [JOB_STREAM_PREFIX, SUBSCRIPTIONS_STREAM, DELIVERY_FAILURES_STREAM] },
      },
      (event) => this.handle(event),
      (error) => {
        log.error('webhook dispatcher subscription failed; resubscribing', { error: String(error) });
        this.subscription = undefined;
      },
    );
  }

  /** The subscriptions as they were at `position` (later changes arrive through $all, in order). */
  private async subscriptionsAt(position: Position): Promise<Subscriptions> {
    let state: Subscriptions = new Map();
    let fromRevision = 0n;
    for (;;) {
      const page = await this.deps.store.readStream(SUBSCRIPTIONS_STREAM, { fromRevision, maxCount: 1000 });
      for (const recorded of page) {
        if (comparePositions(recorded.position, position) > 0) return state;
        state = evolveSubscriptions(state, SubscriptionEvent.parse(recorded.data));
      }
      if (page.length < 1000) return state;
      fromRevision = page[page.length - 1]!.revision + 1n;
    }
  }

  private async handle(recorded: RecordedEvent): Promise<void> {
    const before = this.position;
    if (recorded.streamId === SUBSCRIPTIONS_STREAM) {
      this.subscriptions = evolveSubscriptions(this.subscriptions, SubscriptionEvent.parse(recorded.data));
    } else {
      const event = recorded.data as { type: string; occurredAt: string; jobId?: string };
      const body = JSON.stringify(webhookPayload(event));
      for (const subscription of this.subscriptions.values()) {
        if (!subscriptionMatches(subscription, event)) continue;
        await this.deps.deliveries.enqueue(
          {
            deliveryId: `${recorded.id}-${subscription.id}`,
            subscriptionId: subscription.id,
            messageId: recorded.id,
            eventType: event.type,
            ...(event.jobId ? { jobId: event.jobId } : {}),
            body,
          },
          this.deps.now(),
          before,
        );
        this.stats.deliveriesEnqueued += 1;
      }
    }
    await this.deps.redis.set(this.keys.position, formatPosition(recorded.position));
    this.position = recorded.position;
    this.stats.eventsHandled += 1;
  }

  private async durableCheckpoint(): Promise<Position> {
    const [last] = await this.deps.store.readStream(DISPATCHER_STREAM, {
      direction: 'backwards',
      maxCount: 1,
    });
    return last ? parsePosition((last.data as { position: string }).position) : START;
  }

  /** Writes where a restart without Redis must resume: before the oldest unsettled delivery. */
  private async checkpoint(): Promise<void> {
    const now = this.deps.now();
    if (now - this.lastCheckpoint.at < this.deps.checkpointEveryMs) return;
    const position = (await this.deps.deliveries.oldestUnsettled()) ?? this.position;
    this.lastCheckpoint.at = now;
    if (this.lastCheckpoint.position && comparePositions(this.lastCheckpoint.position, position) === 0)
      return;
    await this.deps.store.append(
      DISPATCHER_STREAM,
      [
        {
          id: randomUUID(),
          type: CHECKPOINT_TYPE,
          data: { position: formatPosition(position), at: new Date(now).toISOString() },
        },
      ],
      'any',
    );
    this.lastCheckpoint.position = position;
    this.stats.checkpoints += 1;
  }
}
