import {
  SubscriptionEvent,
  decideSubscription,
  evolveSubscriptions,
  readEvent,
  type SubscriptionCommand,
  type Subscriptions,
} from '@snapcat/domain';
import { DeciderHandler, OptimisticRetry, oneCommandAtATime, singleStream } from '@snapcat/application';
import type { EventStore } from '@snapcat/event-store';

/** The stream every subscription event goes to: subscriptions are few and changed rarely. */
export const SUBSCRIPTIONS_STREAM = 'snapcat-webhooks';
/** WebhookDeliveryFailed events: a stream apart, so that folding the subscriptions never reads them. */
export const DELIVERY_FAILURES_STREAM = 'snapcat-webhook-failures';

const subscriptionRules = oneCommandAtATime({
  initialState: (): Subscriptions => new Map(),
  decide: decideSubscription,
  evolve: evolveSubscriptions,
});

/**
 * Subscriptions, folded from their stream by the decider handler (decision 0024): the fold is kept and
 * caught up from its revision on each read, so that every process (API, workers) sees a change as soon as
 * it is durable; reads and commands go through one queue, so the fold applies each event once.
 */
export class SubscriptionRepository {
  private readonly handler: DeciderHandler<
    Subscriptions,
    SubscriptionCommand,
    SubscriptionEvent,
    Subscriptions,
    undefined
  >;

  constructor(store: EventStore, now: () => number = Date.now) {
    this.handler = new DeciderHandler(
      store,
      subscriptionRules,
      singleStream(SUBSCRIPTIONS_STREAM, (recorded) => readEvent(SubscriptionEvent, recorded)),
      {
        // A command decided and appended alone; after 10 lost races, the last one is the error.
        maxBatch: 1,
        clock: { now },
        retry: new OptimisticRetry({ attempts: 10, exhausted: (_id, conflict) => conflict }),
      },
    );
  }

  /** The subscriptions as of now, including every change durable before the call. */
  current(): Promise<Subscriptions> {
    return this.handler.load(SUBSCRIPTIONS_STREAM, undefined);
  }

  /** Decides and appends; retried on a concurrent change. The state after, and the events written. */
  async execute(
    command: SubscriptionCommand,
  ): Promise<{ state: Subscriptions; events: SubscriptionEvent[] }> {
    const { reply, events } = await this.handler.execute(SUBSCRIPTIONS_STREAM, command, undefined);
    return { state: reply, events };
  }
}
