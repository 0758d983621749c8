import { randomBytes, randomUUID } from 'node:crypto';
import {
  CommandRejected,
  grantCovers,
  requireSubscription,
  type NamespaceGrant,
  subscriptionView,
  webhookPayload,
  type SubscribableEventType,
} from '@snapcat/domain';
import { AddressRefusedError, assertPublicUrl } from './address-guard';
import type { Deliveries } from './deliveries';
import { newWebhookSecret, type SecretBox } from './secret-box';
import type { SubscriptionRepository } from './subscriptions';

export interface SubscriptionInput {
  url: string;
  eventTypes: SubscribableEventType[];
  jobIds: string[];
  description: string;
}

export interface WebhookServiceDeps {
  subscriptions: SubscriptionRepository;
  deliveries: Deliveries;
  box: SecretBox;
  allowPrivate: boolean;
  /** How long a rotated-out secret keeps signing. */
  rotationOverlapMs: number;
  now: () => number;
}

/**
 * What the REST API does with webhooks: subscription commands, the delivery log, redeliveries, tests.
 * `grant` is the caller's namespaces (issue 18): a subscription is created for them and receives only their
 * jobs' events; a caller sees and changes only the subscriptions whose namespaces it holds all of, and any
 * other reads as one that does not exist.
 */
export class WebhookService {
  constructor(private readonly deps: WebhookServiceDeps) {}

  /** The new subscription and its secret: the only answer that ever shows the secret. */
  async create(input: SubscriptionInput, grant: NamespaceGrant = '*') {
    await this.requirePublic(input.url);
    const secret = newWebhookSecret();
    const subscriptionId = `wh_${randomBytes(12).toString('hex')}`;
    const { state } = await this.deps.subscriptions.execute({
      type: 'CreateSubscription',
      subscriptionId,
      ...input,
      namespaces: grant,
      secret: this.deps.box.seal(secret),
    });
    return { ...this.view(state.get(subscriptionId)!), secret };
  }

  async list(grant: NamespaceGrant = '*') {
    const state = await this.deps.subscriptions.current();
    return [...state.values()].filter((s) => grantCovers(grant, s.namespaces)).map((s) => this.view(s));
  }

  async get(subscriptionId: string, grant: NamespaceGrant = '*') {
    return this.view(await this.existing(subscriptionId, grant));
  }

  async update(
    subscriptionId: string,
    patch: Partial<SubscriptionInput> & { enabled?: boolean },
    grant: NamespaceGrant = '*',
  ) {
    await this.existing(subscriptionId, grant);
    if (patch.url !== undefined) await this.requirePublic(patch.url);
    const { state } = await this.deps.subscriptions.execute({
      type: 'UpdateSubscription',
      subscriptionId,
      ...patch,
    });
    if (patch.enabled === false) await this.deps.deliveries.dropQueued(subscriptionId, this.deps.now());
    return this.view(state.get(subscriptionId)!);
  }

  /** Deletes the subscription; its deliveries still queued are dropped (settled `skipped`). */
  async delete(subscriptionId: string, grant: NamespaceGrant = '*'): Promise<void> {
    await this.existing(subscriptionId, grant);
    await this.deps.subscriptions.execute({ type: 'DeleteSubscription', subscriptionId });
    await this.deps.deliveries.dropQueued(subscriptionId, this.deps.now());
  }

  /** A new secret; the previous one keeps signing for the overlap, so receivers can switch without loss. */
  async rotateSecret(subscriptionId: string, grant: NamespaceGrant = '*') {
    await this.existing(subscriptionId, grant);
    const secret = newWebhookSecret();
    const { state } = await this.deps.subscriptions.execute({
      type: 'RotateSecret',
      subscriptionId,
      secret: this.deps.box.seal(secret),
      overlapMs: this.deps.rotationOverlapMs,
    });
    return { ...this.view(state.get(subscriptionId)!), secret };
  }

  async deliveries(subscriptionId: string, limit: number, grant: NamespaceGrant = '*') {
    await this.existing(subscriptionId, grant);
    return this.deps.deliveries.list(subscriptionId, limit);
  }

  async redeliver(subscriptionId: string, deliveryId: string, grant: NamespaceGrant = '*') {
    await this.existing(subscriptionId, grant);
    const record = await this.deps.deliveries.get(deliveryId);
    if (!record || record.subscriptionId !== subscriptionId) {
      throw new CommandRejected(
        'NOT_FOUND',
        'deliveryId',
        'exists',
        `delivery ${deliveryId} is not in the log`,
      );
    }
    // A delivery still being attempted: a second job would POST side by side with it (the same webhook-id)
    // and both would write its record (a review saw three parallel POSTs and attempts 1,1,1,2,2,2). Checked
    // again with the change itself: concurrent requests all read it settled.
    if (record.status === 'pending' || !(await this.deps.deliveries.redeliver(record, this.deps.now()))) {
      throw new CommandRejected(
        'CONFLICT',
        'deliveryId',
        'delivery-pending',
        `delivery ${deliveryId} is still being attempted: redeliver it once it succeeded, failed or was skipped`,
      );
    }
    return { deliveryId, messageId: record.messageId };
  }

  /** Sends a WebhookTest message (not an event of the log) through the same queue, signatures and log. */
  async test(subscriptionId: string, grant: NamespaceGrant = '*') {
    await this.existing(subscriptionId, grant);
    const messageId = `msg_${randomUUID()}`;
    const deliveryId = `${messageId}-${subscriptionId}`;
    const occurredAt = new Date(this.deps.now()).toISOString();
    const body = JSON.stringify(webhookPayload({ type: 'WebhookTest', subscriptionId, occurredAt }));
    await this.deps.deliveries.enqueue(
      { deliveryId, subscriptionId, messageId, eventType: 'WebhookTest', body },
      this.deps.now(),
    );
    return { deliveryId, messageId };
  }

  /** The subscription, or NOT_FOUND when it does not exist or lies beyond the caller's namespaces. */
  private async existing(subscriptionId: string, grant: NamespaceGrant) {
    const state = await this.deps.subscriptions.current();
    const visible = state.get(subscriptionId);
    return requireSubscription(
      visible && !grantCovers(grant, visible.namespaces) ? new Map() : state,
      subscriptionId,
    );
  }

  private view(subscription: Parameters<typeof subscriptionView>[0]) {
    return subscriptionView(subscription, this.deps.now());
  }

  private async requirePublic(url: string): Promise<void> {
    if (this.deps.allowPrivate) return;
    try {
      await assertPublicUrl(url);
    } catch (error) {
      if (error instanceof AddressRefusedError) {
        throw new CommandRejected(
          'INVALID',
          'url',
          'public-address',
          `${error.message}; set SNAPCAT_WEBHOOK_ALLOW_PRIVATE=true to allow it`,
        );
      }
      throw new CommandRejected(
        'INVALID',
        'url',
        'resolvable',
        `the host of ${url} does not resolve: ${(error as Error).message}`,
      );
    }
  }
}
