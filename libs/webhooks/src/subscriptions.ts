import { randomUUID } from 'node:crypto';
import {
  SubscriptionEvent,
  decideSubscription,
  evolveSubscriptions,
  readEvent,
  versionedMetadata,
  type SubscriptionCommand,
  type Subscriptions,
} from '@snapcat/domain';
import { WrongExpectedVersionError, type EventStore, type RecordedEvent } from '@snapcat/event-store';

/** The stream every subscription event goes to: subscriptions are few and changed rarely. */
export const SUBSCRIPTIONS_STREAM = 'snapcat-webhooks';
/** WebhookDeliveryFailed events: a stream apart, so that folding the subscriptions never reads them. */
export const DELIVERY_FAILURES_STREAM = 'snapcat-webhook-failures';

const PAGE = 1000;
const ATTEMPTS = 10;

/**
 * Subscriptions, folded from their stream. The fold is kept and caught up from its revision on each
 * read, so that every process (API, workers) sees a change as soon as it is durable.
 */
export class SubscriptionRepository {
  private state: Subscriptions = new Map();
  private revision = -1n;

  constructor(
    private readonly store: EventStore,
    private readonly now: () => number = Date.now,
  ) {}

  private lastCatchUp: Promise<unknown> = Promise.resolve();

  /**
   * The subscriptions as of now, including every change durable before the call. Catch-ups run one after
   * the other (concurrent deliveries call this): a fold must apply each event once.
   */
  current(): Promise<Subscriptions> {
    const run = this.lastCatchUp.then(() => this.catchUp());
    this.lastCatchUp = run.catch(() => undefined);
    return run;
  }

  private async catchUp(): Promise<Subscriptions> {
    for (;;) {
      const page = await this.store.readStream(SUBSCRIPTIONS_STREAM, {
        fromRevision: this.revision + 1n,
        maxCount: PAGE,
      });
      for (const recorded of page) this.apply(recorded);
      if (page.length < PAGE) return this.state;
    }
  }

  /** Decides and appends; retried on a concurrent change. The state after, and the events written. */
  async execute(command: SubscriptionCommand) {
    for (let attempt = 1; ; attempt++) {
      const state = await this.current();
      const events = decideSubscription(state, command, this.now());
      if (events.length === 0) return { state, events };
      try {
        await this.store.append(
          SUBSCRIPTIONS_STREAM,
          events.map((data) => ({
            id: randomUUID(),
            type: data.type,
            data,
            metadata: versionedMetadata(data.type),
          })),
          this.revision < 0n ? 'no_stream' : this.revision,
        );
        return { state: await this.current(), events };
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError) || attempt >= ATTEMPTS) throw error;
      }
    }
  }

  private apply(recorded: RecordedEvent): void {
    if (recorded.revision <= this.revision) return;
    this.state = evolveSubscriptions(this.state, readEvent(SubscriptionEvent, recorded));
    this.revision = recorded.revision;
  }
}
