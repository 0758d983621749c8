import { z } from 'zod';
import { CommandRejected } from './errors';
import { EVENT_TYPES, Event } from './events';
import { otherJobFieldOf } from './holds';
import { JobId } from './schemas';
import { NamespaceGrantSchema, grantsNamespace, type NamespaceGrant } from './namespaces';

/**
 * Webhook subscriptions, as events of their own stream, and the rules of delivering to them. Pure: the
 * secret arrives sealed (encrypted by an adapter); this module never sees a secret in the clear.
 */

const Timestamp = z.iso.datetime();
export const SubscriptionId = z
  .string()
  .regex(/^wh_[A-Za-z0-9]{8,64}$/, { error: 'must look like wh_ followed by 8-64 letters or digits' });

/** A secret encrypted with the service's key (AES-256-GCM): opaque to everything but the secret box. */
export const SealedSecret = z.strictObject({
  v: z.literal(1),
  iv: z.string(),
  tag: z.string(),
  data: z.string(),
});
export type SealedSecret = z.infer<typeof SealedSecret>;

/** Emitted when every attempt of a delivery failed; itself a type subscribers may ask for. */
export const WebhookDeliveryFailed = z.strictObject({
  type: z.literal('WebhookDeliveryFailed'),
  subscriptionId: SubscriptionId,
  deliveryId: z.string(),
  /** The event that could not be delivered: its id (the webhook-id sent), type and job. */
  eventId: z.string(),
  eventType: z.string(),
  jobId: JobId.optional(),
  attempts: z.number().int().positive(),
  lastStatusCode: z.number().int().optional(),
  lastError: z.string(),
  occurredAt: Timestamp,
});
export type WebhookDeliveryFailed = z.infer<typeof WebhookDeliveryFailed>;

/** What `POST /webhooks/{id}/test` sends: a message that is not in the log. */
export const WebhookTest = z.strictObject({
  type: z.literal('WebhookTest'),
  subscriptionId: SubscriptionId,
  occurredAt: Timestamp,
});

export const SUBSCRIBABLE_EVENT_TYPES = [...EVENT_TYPES, 'WebhookDeliveryFailed'] as const;
export const SubscribableEventType = z.enum(SUBSCRIBABLE_EVENT_TYPES, {
  error: `must be one of ${SUBSCRIBABLE_EVENT_TYPES.join(', ')}`,
});
export type SubscribableEventType = z.infer<typeof SubscribableEventType>;

/** Only http(s), no credentials in the URL (they would be stored and shown in clear), no fragment. */
export const WebhookUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .max(2048)
  .refine((url) => !/^[a-z]+:\/\/[^/]*@/i.test(url), {
    error: 'must not carry user:password@',
    params: { rule: 'no-credentials' },
  })
  .refine((url) => !url.includes('#'), {
    error: 'must not carry a #fragment',
    params: { rule: 'no-fragment' },
  });

export const SubscriptionFields = {
  url: WebhookUrl,
  /** Empty: every subscribable type. */
  eventTypes: z.array(SubscribableEventType).max(SUBSCRIBABLE_EVENT_TYPES.length),
  /** Empty: every job. */
  jobIds: z.array(JobId).max(1000),
  description: z.string().max(1024),
};

const ofSubscription = { subscriptionId: SubscriptionId, occurredAt: Timestamp };

export const WebhookSubscriptionCreated = z.strictObject({
  type: z.literal('WebhookSubscriptionCreated'),
  ...ofSubscription,
  ...SubscriptionFields,
  /** Its creator's namespaces: it receives only their jobs' events. Absent (before namespaces): all. */
  namespaces: NamespaceGrantSchema.optional(),
  secret: SealedSecret,
});
export const WebhookSubscriptionUpdated = z.strictObject({
  type: z.literal('WebhookSubscriptionUpdated'),
  ...ofSubscription,
  url: SubscriptionFields.url.optional(),
  eventTypes: SubscriptionFields.eventTypes.optional(),
  jobIds: SubscriptionFields.jobIds.optional(),
  description: SubscriptionFields.description.optional(),
});
export const WebhookSubscriptionDisabled = z.strictObject({
  type: z.literal('WebhookSubscriptionDisabled'),
  ...ofSubscription,
  /** GONE: the receiver answered 410; USER: a PATCH with enabled=false. */
  reason: z.enum(['GONE', 'USER']),
});
export const WebhookSubscriptionEnabled = z.strictObject({
  type: z.literal('WebhookSubscriptionEnabled'),
  ...ofSubscription,
});
export const WebhookSecretRotated = z.strictObject({
  type: z.literal('WebhookSecretRotated'),
  ...ofSubscription,
  secret: SealedSecret,
  /** Until then the previous secret signs too. */
  previousValidUntil: Timestamp,
});
export const WebhookSubscriptionDeleted = z.strictObject({
  type: z.literal('WebhookSubscriptionDeleted'),
  ...ofSubscription,
});

export const SubscriptionEvent = z.discriminatedUnion('type', [
  WebhookSubscriptionCreated,
  WebhookSubscriptionUpdated,
  WebhookSubscriptionDisabled,
  WebhookSubscriptionEnabled,
  WebhookSecretRotated,
  WebhookSubscriptionDeleted,
]);
export type SubscriptionEvent = z.infer<typeof SubscriptionEvent>;
export const SUBSCRIPTION_EVENT_TYPES = SubscriptionEvent.options.map((schema) => schema.shape.type.value);

export interface SigningKey {
  secret: SealedSecret;
  /** Absent for the current key; a rotated-out key signs until then. */
  validUntil?: string;
}

export interface Subscription {
  id: string;
  url: string;
  eventTypes: SubscribableEventType[];
  jobIds: string[];
  description: string;
  /** The namespaces whose jobs' events it receives: its creator's. */
  namespaces: NamespaceGrant;
  enabled: boolean;
  disabledReason?: 'GONE' | 'USER';
  /** Newest first. */
  keys: SigningKey[];
  createdAt: string;
  updatedAt: string;
}

/** Every subscription ever created and not deleted, keyed by id. */
export type Subscriptions = ReadonlyMap<string, Subscription>;

export function evolveSubscriptions(state: Subscriptions, event: SubscriptionEvent): Subscriptions {
  const next = new Map(state);
  const current = state.get(event.subscriptionId);
  const touch = (changes: Partial<Subscription>) => {
    if (current) next.set(current.id, { ...current, ...changes, updatedAt: event.occurredAt });
  };
  switch (event.type) {
    case 'WebhookSubscriptionCreated':
      next.set(event.subscriptionId, {
        id: event.subscriptionId,
        url: event.url,
        eventTypes: event.eventTypes,
        jobIds: event.jobIds,
        description: event.description,
        namespaces: event.namespaces ?? '*',
        enabled: true,
        keys: [{ secret: event.secret }],
        createdAt: event.occurredAt,
        updatedAt: event.occurredAt,
      });
      break;
    case 'WebhookSubscriptionUpdated': {
      const { type: _t, subscriptionId: _s, occurredAt: _o, ...changes } = event;
      touch(Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)));
      break;
    }
    case 'WebhookSubscriptionDisabled':
      touch({ enabled: false, disabledReason: event.reason });
      break;
    case 'WebhookSubscriptionEnabled':
      if (current) {
        const { disabledReason: _d, ...rest } = current;
        next.set(current.id, { ...rest, enabled: true, updatedAt: event.occurredAt });
      }
      break;
    case 'WebhookSecretRotated':
      // Older rotated-out keys are dropped: the overlap covers one rotation, as in the Standard Webhooks spec.
      touch({
        keys: [
          { secret: event.secret },
          ...(current?.keys[0]
            ? [{ secret: current.keys[0].secret, validUntil: event.previousValidUntil }]
            : []),
        ],
      });
      break;
    case 'WebhookSubscriptionDeleted':
      next.delete(event.subscriptionId);
      break;
  }
  return next;
}

export const foldSubscriptions = (events: Iterable<SubscriptionEvent>): Subscriptions => {
  let state: Subscriptions = new Map();
  for (const event of events) state = evolveSubscriptions(state, event);
  return state;
};

/** The keys that sign a message sent at `now`. */
export const signingKeys = (subscription: Subscription, now: number): SealedSecret[] =>
  subscription.keys
    .filter((key) => key.validUntil === undefined || Date.parse(key.validUntil) > now)
    .map((key) => key.secret);

/** What a client sees of a subscription: never a secret, not even sealed. */
export function subscriptionView(subscription: Subscription, now: number) {
  const { keys, ...rest } = subscription;
  const previous = keys.find((key) => key.validUntil !== undefined && Date.parse(key.validUntil) > now);
  return { ...rest, ...(previous ? { previousSecretValidUntil: previous.validUntil } : {}) };
}

/** The subscription, or CommandRejected NOT_FOUND. */
export function requireSubscription(state: Subscriptions, id: string): Subscription {
  const subscription = state.get(id);
  if (!subscription) {
    throw new CommandRejected(
      'NOT_FOUND',
      'subscriptionId',
      'exists',
      `webhook subscription ${id} does not exist`,
    );
  }
  return subscription;
}

export type SubscriptionCommand =
  | {
      type: 'CreateSubscription';
      subscriptionId: string;
      url: string;
      eventTypes: SubscribableEventType[];
      jobIds: string[];
      description: string;
      /** The creator's namespaces; absent: all. */
      namespaces?: NamespaceGrant;
      secret: SealedSecret;
    }
  | {
      type: 'UpdateSubscription';
      subscriptionId: string;
      url?: string;
      eventTypes?: SubscribableEventType[];
      jobIds?: string[];
      description?: string;
      enabled?: boolean;
    }
  | { type: 'RotateSecret'; subscriptionId: string; secret: SealedSecret; overlapMs: number }
  | { type: 'DisableGone'; subscriptionId: string }
  | { type: 'DeleteSubscription'; subscriptionId: string };

/**
 * The webhook subscriptions one set of namespaces (its creators' tokens) may hold at once: each one is a
 * delivery queue and a share of every matching event's fan-out, and creating them costs one request each.
 */
export const MAX_SUBSCRIPTIONS_PER_NAMESPACES = 1000;

/** A grant as one key: every namespace, or its names in order. */
const grantKey = (grant: NamespaceGrant | undefined): string =>
  grant === undefined || grant === '*' ? '*' : [...grant].sort().join('+');

/** The events a subscription command yields; CommandRejected when the state does not allow it. */
export function decideSubscription(
  state: Subscriptions,
  command: SubscriptionCommand,
  now: number,
): SubscriptionEvent[] {
  const occurredAt = new Date(now).toISOString();
  const { subscriptionId } = command;
  switch (command.type) {
    case 'CreateSubscription': {
      if (state.has(subscriptionId)) {
        throw new CommandRejected('CONFLICT', 'subscriptionId', 'unique', `${subscriptionId} exists already`);
      }
      const { type: _t, namespaces, ...fields } = command;
      const held = [...state.values()].filter((s) => grantKey(s.namespaces) === grantKey(namespaces)).length;
      if (held >= MAX_SUBSCRIPTIONS_PER_NAMESPACES) {
        throw new CommandRejected(
          'CONFLICT',
          'body',
          'max-subscriptions',
          `the caller's namespaces hold ${held} webhook subscriptions, the most they may (${MAX_SUBSCRIPTIONS_PER_NAMESPACES}): delete one first`,
        );
      }
      const limited = namespaces !== undefined && namespaces !== '*';
      return [
        {
          type: 'WebhookSubscriptionCreated',
          ...fields,
          ...(limited ? { namespaces: [...namespaces] } : {}),
          occurredAt,
        },
      ];
    }
    case 'UpdateSubscription': {
      const current = requireSubscription(state, subscriptionId);
      const { type: _t, enabled, subscriptionId: _s, ...changes } = command;
      const defined = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
      const events: SubscriptionEvent[] = [];
      if (Object.keys(defined).length > 0) {
        events.push({ type: 'WebhookSubscriptionUpdated', subscriptionId, occurredAt, ...defined });
      }
      if (enabled === true && !current.enabled) {
        events.push({ type: 'WebhookSubscriptionEnabled', subscriptionId, occurredAt });
      }
      if (enabled === false && current.enabled) {
        events.push({ type: 'WebhookSubscriptionDisabled', subscriptionId, occurredAt, reason: 'USER' });
      }
      return events;
    }
    case 'RotateSecret':
      requireSubscription(state, subscriptionId);
      return [
        {
          type: 'WebhookSecretRotated',
          subscriptionId,
          occurredAt,
          secret: command.secret,
          previousValidUntil: new Date(now + command.overlapMs).toISOString(),
        },
      ];
    case 'DisableGone': {
      const current = state.get(subscriptionId);
      // Idempotent: several deliveries may see the 410 at once, and a deleted subscription stays deleted.
      if (!current?.enabled) return [];
      return [{ type: 'WebhookSubscriptionDisabled', subscriptionId, occurredAt, reason: 'GONE' }];
    }
    case 'DeleteSubscription':
      requireSubscription(state, subscriptionId);
      return [{ type: 'WebhookSubscriptionDeleted', subscriptionId, occurredAt }];
  }
}

/** The fields by which a log event is matched against subscriptions. */
export interface Deliverable {
  type: string;
  jobId?: string;
  /** A WebhookDeliveryFailed's: the subscription whose delivery failed. */
  subscriptionId?: string;
}

/**
 * Whether the event goes to the subscription. `namespace` is the namespace of the event's job (undefined
 * for events of no job, or of a job never registered): a subscription limited to namespaces gets only
 * their jobs' events.
 */
export function subscriptionMatches(
  subscription: Subscription,
  event: Deliverable,
  namespace?: string,
): boolean {
  if (!subscription.enabled) return false;
  if (subscription.namespaces !== '*' && event.jobId !== undefined) {
    if (namespace === undefined || !grantsNamespace(subscription.namespaces, namespace)) return false;
  }
  // Another subscription's failure names its receiver's answer (`lastError`: up to 512 bytes of its body, an
  // internal address it could not reach): only a subscription of every namespace gets others' failures.
  if (
    event.type === 'WebhookDeliveryFailed' &&
    subscription.namespaces !== '*' &&
    event.subscriptionId !== subscription.id
  ) {
    return false;
  }
  if (
    subscription.eventTypes.length > 0 &&
    !subscription.eventTypes.includes(event.type as SubscribableEventType)
  ) {
    return false;
  }
  if (!(SUBSCRIBABLE_EVENT_TYPES as readonly string[]).includes(event.type)) return false;
  return (
    subscription.jobIds.length === 0 ||
    (event.jobId !== undefined && subscription.jobIds.includes(event.jobId))
  );
}

/** A Retry-After the schedule does not exceed is honoured up to this. */
const RETRY_AFTER_HONOURED_MS = 3_600_000;

/**
 * The wait before attempt `attemptsMade + 1` (the schedule's entry for it), at least as long as the
 * receiver asked for with Retry-After (up to the schedule's longest wait or an hour); -1 when the schedule
 * is exhausted.
 */
export function retryDelayMs(
  schedule: readonly number[],
  attemptsMade: number,
  retryAfterMs?: number,
): number {
  const planned = schedule[attemptsMade];
  if (planned === undefined) return -1;
  // Honoured up to the schedule's longest wait or an hour, whichever is longer: a receiver asking for years
  // (Retry-After: 315360000) would hold its delivery, and the dispatcher's checkpoint behind it, that long.
  return Math.max(planned, Math.min(retryAfterMs ?? 0, Math.max(...schedule, RETRY_AFTER_HONOURED_MS)));
}

/** Retry-After in milliseconds from now: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The body of every webhook: the event's type, when it happened, and its fields. */
export function webhookPayload(event: { type: string; occurredAt: string } & Record<string, unknown>) {
  const { type, ...data } = event;
  return { type, timestamp: event.occurredAt, data };
}

/**
 * Decision 0045: a subscription limited to namespaces is not told of a job outside them that an event names
 * (a hold's holder, a restore's source): null.
 */
function otherJobHideable(schema: z.ZodObject<{ type: z.ZodLiteral<string> }>): z.ZodType {
  const data = schema.omit({ type: true });
  const field = otherJobFieldOf(schema.shape.type.value);
  if (!field) return data;
  const named = (data.shape as Record<string, z.ZodType>)[field]!;
  return data.extend({
    [field]: named.nullable().meta({
      description: 'Null when that job lies outside the subscription’s namespaces (decision 0045).',
    }),
  });
}

/** The payload schemas subscribers can validate against, one per type, from the same zod schemas. */
export function webhookPayloadSchemas(): Record<string, z.ZodType> {
  const kinds: z.ZodObject<{ type: z.ZodLiteral<string> }>[] = [
    ...Event.options,
    WebhookDeliveryFailed,
    WebhookTest,
  ];
  return Object.fromEntries(
    kinds.map((schema) => [
      schema.shape.type.value,
      z.strictObject({
        type: schema.shape.type,
        timestamp: Timestamp,
        data: otherJobHideable(schema),
      }),
    ]),
  );
}
