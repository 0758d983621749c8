import type { Redis } from 'ioredis';
import {
  SubscriptionEvent,
  evolveSubscriptions,
  readEvent,
  upcastStored,
  versionedMetadata,
  subscriptionMatches,
  webhookPayload,
  type Subscriptions,
} from '@snapcat/domain';
import { HolderVisibility, JOB_STREAM_PREFIX, JobNamespaces } from '@snapcat/application';
import {
  newEventId,
  START,
  comparePositions,
  foldStream,
  formatPosition,
  isTombstone,
  parsePosition,
  type EventStore,
  type Position,
  type RecordedEvent,
  type LogSubscription,
} from '@snapcat/event-store';
import { LeasedLogConsumer, type LogFn } from '@snapcat/runtime';
import type { Deliveries } from './deliveries';
import { DELIVERY_FAILURES_STREAM, SUBSCRIPTIONS_STREAM } from './subscriptions';

/** Durable checkpoints of the dispatcher, so that losing Redis costs redeliveries, never a lost message. */
export const DISPATCHER_STREAM = 'snapcat-webhook-dispatcher';
const CHECKPOINT_TYPE = 'WebhookDispatcherCheckpointed';
/**
 * The checkpoints its stream keeps (its `$maxCount`): a restart reads the newest only. The subscriptions and
 * failures streams are not capped: the first is folded whole, the second holds messages to deliver.
 */
export const DISPATCHER_CHECKPOINTS_KEPT = 10;

export interface DispatcherDeps {
  store: EventStore;
  redis: Redis;
  deliveries: Deliveries;
  keyPrefix: string;
  /** How often the durable checkpoint is written (when it moved). */
  checkpointEveryMs: number;
  /**
   * Ends the deliveries BullMQ failed on its own that no worker's `failed` listener ended (delivery-worker.ts),
   * at most every `failedSweepEveryMs` (30 s), while this dispatcher is the active one: what it ends stops
   * holding the durable checkpoint.
   */
  endDeliveriesFailedByBullMq?: (stopping: () => boolean) => Promise<number>;
  failedSweepEveryMs?: number;
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
export class WebhookDispatcher extends LeasedLogConsumer {
  private subscriptions: Subscriptions = new Map();
  private readonly namespaces: JobNamespaces;
  private readonly holders: HolderVisibility;
  private position: Position = START;
  private lastCheckpoint: { at: number; position?: Position } = { at: 0 };
  private lastFailedSweepAt = 0;
  private failedSweep: Promise<void> | undefined;
  readonly stats = { eventsHandled: 0, deliveriesEnqueued: 0, checkpoints: 0 };

  constructor(private readonly deps: DispatcherDeps) {
    super({
      redis: deps.redis,
      keyPrefix: `${deps.keyPrefix}:wh`,
      name: 'webhook dispatcher',
      log: deps.log,
    });
    this.namespaces = new JobNamespaces(deps.store);
    this.holders = new HolderVisibility(this.namespaces);
  }

  protected async recover(): Promise<Position> {
    const from = await this.durableCheckpoint();
    await this.markRecovered(from, new Date(this.deps.now()));
    this.deps.log.info('webhook dispatcher resumes from its durable checkpoint', {
      position: formatPosition(from),
    });
    return from;
  }

  protected async subscribeToLog(from: Position): Promise<LogSubscription> {
    await this.deps.store.setStreamMaxCount?.(DISPATCHER_STREAM, DISPATCHER_CHECKPOINTS_KEPT);
    this.position = from;
    this.subscriptions = await this.subscriptionsAt(from);
    return this.deps.store.subscribeToAll(
      {
        from,
        filter: { streamNamePrefixes: [JOB_STREAM_PREFIX, SUBSCRIPTIONS_STREAM, DELIVERY_FAILURES_STREAM] },
        // Saved in Redis as an event's position is, so a restart does not scan again what the filter
        // skipped. `position` and the durable checkpoint stay at the last event handled: moved past the
        // dispatcher's own checkpoint events, a new durable checkpoint would follow each one, for ever.
        onCheckpoint: (position) => this.savePosition(position),
      },
      (event) => this.handle(event),
      this.logSubscriptionFailed,
    );
  }

  protected override whileActive(epoch: string): Promise<void> {
    this.endDeliveriesFailedByBullMq();
    return this.checkpoint(epoch);
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.failedSweep;
  }

  /**
   * Started beside the tick, not awaited by it: a sweep of slow appends held the tick, which renews the lease,
   * and another process took it over and swept too (a review). One at a time; each delivery ends once (a claim).
   */
  private endDeliveriesFailedByBullMq(): void {
    const sweep = this.deps.endDeliveriesFailedByBullMq;
    const now = this.deps.now();
    if (
      !sweep ||
      this.failedSweep ||
      now - this.lastFailedSweepAt < (this.deps.failedSweepEveryMs ?? 30_000)
    ) {
      return;
    }
    this.lastFailedSweepAt = now;
    this.failedSweep = sweep(() => this.stopped)
      .catch((error: unknown) =>
        this.deps.log.error('webhook deliveries BullMQ failed could not be ended; trying again later', {
          error: (error as Error).message,
        }),
      )
      .then(() => {
        this.failedSweep = undefined;
      });
  }

  /** The subscriptions as they were at `position` (later changes arrive through $all, in order). */
  private async subscriptionsAt(position: Position): Promise<Subscriptions> {
    const { state } = await foldStream<Subscriptions>(this.deps.store, SUBSCRIPTIONS_STREAM, {
      initialState: new Map(),
      evolve: (subscriptions, events) =>
        events.reduce((s, e) => evolveSubscriptions(s, readEvent(SubscriptionEvent, e)), subscriptions),
      takeWhile: (recorded) => comparePositions(recorded.position, position) <= 0,
    });
    return state;
  }

  private async handle(recorded: RecordedEvent): Promise<void> {
    const before = this.position;
    if (recorded.streamId === SUBSCRIPTIONS_STREAM) {
      this.subscriptions = evolveSubscriptions(this.subscriptions, readEvent(SubscriptionEvent, recorded));
    } else if (!isTombstone(recorded)) {
      // A tombstone (a job's stream hard-deleted) is no message: nothing to deliver.
      // Upcast, so that a subscriber gets today's shape of an event stored long ago; not validated: the
      // dispatcher forwards what the log holds, and one odd event must not stop every delivery.
      const event = upcastStored(recorded) as { type: string; occurredAt: string; jobId?: string };
      const body = JSON.stringify(webhookPayload(event));
      const namespace = await this.namespaceOf(event.jobId);
      for (const subscription of this.subscriptions.values()) {
        if (!subscriptionMatches(subscription, event, namespace)) continue;
        // Decision 0045: a hold's holder outside the subscription's namespaces is not told (null).
        const asSeen = await this.holders.event(subscription.namespaces, event);
        await this.deps.deliveries.enqueue(
          {
            deliveryId: `${recorded.id}-${subscription.id}`,
            subscriptionId: subscription.id,
            messageId: recorded.id,
            eventType: event.type,
            ...(event.jobId ? { jobId: event.jobId } : {}),
            body: asSeen === event ? body : JSON.stringify(webhookPayload(asSeen)),
          },
          this.deps.now(),
          before,
        );
        this.stats.deliveriesEnqueued += 1;
      }
    }
    await this.savePosition(recorded.position);
    this.position = recorded.position;
    this.stats.eventsHandled += 1;
  }

  /** The namespace of the event's job, read only while some subscription is limited to namespaces. */
  private async namespaceOf(jobId: string | undefined): Promise<string | undefined> {
    if (jobId === undefined) return undefined;
    for (const subscription of this.subscriptions.values()) {
      if (subscription.namespaces !== '*') return this.namespaces.of(jobId);
    }
    return undefined;
  }

  private async durableCheckpoint(): Promise<Position> {
    const [last] = await this.deps.store.readStream(DISPATCHER_STREAM, {
      direction: 'backwards',
      maxCount: 1,
    });
    return last ? parsePosition((last.data as { position: string }).position) : START;
  }

  /** Writes where a restart without Redis must resume: before the oldest unsettled delivery. */
  private async checkpoint(epoch: string): Promise<void> {
    const now = this.deps.now();
    if (now - this.lastCheckpoint.at < this.deps.checkpointEveryMs) return;
    const handled = this.position; // read first: every delivery up to it is in Redis by now
    const oldest = await this.deps.deliveries.oldestUnsettled();
    // A wipe after the tick read the epoch leaves no unsettled delivery to read, and `handled` would then
    // skip every delivery Redis lost: only what was read from a Redis of the same epoch is believed.
    if ((await this.deps.redis.get(this.keys.epoch)) !== epoch) return;
    const position = oldest ?? handled;
    this.lastCheckpoint.at = now;
    if (this.lastCheckpoint.position && comparePositions(this.lastCheckpoint.position, position) === 0)
      return;
    await this.deps.store.append(
      DISPATCHER_STREAM,
      [
        {
          id: newEventId(),
          type: CHECKPOINT_TYPE,
          data: { position: formatPosition(position), at: new Date(now).toISOString() },
          metadata: versionedMetadata(CHECKPOINT_TYPE),
        },
      ],
      'any',
    );
    this.lastCheckpoint.position = position;
    this.stats.checkpoints += 1;
  }
}
