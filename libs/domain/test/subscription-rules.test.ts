import {
  CommandRejected,
  Event,
  WebhookUrl,
  decideSubscription,
  evolveSubscriptions,
  parseRetryAfter,
  requireSubscription,
  signingKeys,
  subscriptionMatches,
  subscriptionView,
  webhookPayload,
  webhookPayloadSchemas,
  type SealedSecret,
  type SubscriptionCommand,
  type SubscriptionEvent,
  type Subscriptions,
} from '../src';

// Webhook subscriptions command by command: the events each decides, the state each event leaves.
const sealed = (n: number): SealedSecret => ({ v: 1, iv: `iv${n}`, tag: `tag${n}`, data: `secret-${n}` });
const T0 = Date.parse('2026-11-30T10:00:00.000Z');
const ID = 'wh_subscription1';
const JOB = 'a'.repeat(32);

function apply(state: Subscriptions, command: SubscriptionCommand, at = T0) {
  const events = decideSubscription(state, command, at);
  let next = state;
  for (const event of events) next = evolveSubscriptions(next, event);
  return { events, state: next };
}

const created = () =>
  apply(new Map(), {
    type: 'CreateSubscription',
    subscriptionId: ID,
    url: 'https://example.com/hook',
    eventTypes: ['SnapshotCompleted'],
    jobIds: [JOB],
    description: 'first',
    secret: sealed(1),
  }).state;

const rejection = (call: () => unknown) => {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(CommandRejected);
    const e = error as CommandRejected;
    return { code: e.code, field: e.field, rule: e.rule, message: e.message };
  }
  throw new Error('not rejected');
};

describe('subscription commands', () => {
  it('create: the subscription, enabled, with its secret as the only key; twice is a conflict', () => {
    const state = created();
    expect(state.get(ID)).toEqual({
      id: ID,
      url: 'https://example.com/hook',
      eventTypes: ['SnapshotCompleted'],
      jobIds: [JOB],
      description: 'first',
      namespaces: '*',
      enabled: true,
      keys: [{ secret: sealed(1) }],
      createdAt: '2026-11-30T10:00:00.000Z',
      updatedAt: '2026-11-30T10:00:00.000Z',
    });
    expect(
      rejection(() =>
        decideSubscription(
          state,
          {
            type: 'CreateSubscription',
            subscriptionId: ID,
            url: 'https://x.org/',
            eventTypes: [],
            jobIds: [],
            description: '',
            secret: sealed(2),
          },
          T0,
        ),
      ),
    ).toEqual({ code: 'CONFLICT', field: 'subscriptionId', rule: 'unique', message: `${ID} exists already` });
  });

  it('commands on an unknown subscription: NOT_FOUND', () => {
    for (const command of [
      { type: 'UpdateSubscription', subscriptionId: 'wh_unknown00', description: 'x' },
      { type: 'RotateSecret', subscriptionId: 'wh_unknown00', secret: sealed(2), overlapMs: 1 },
      { type: 'DeleteSubscription', subscriptionId: 'wh_unknown00' },
    ] as SubscriptionCommand[]) {
      expect(rejection(() => decideSubscription(new Map(), command, T0))).toEqual({
        code: 'NOT_FOUND',
        field: 'subscriptionId',
        rule: 'exists',
        message: 'webhook subscription wh_unknown00 does not exist',
      });
    }
    expect(() => requireSubscription(new Map(), 'wh_unknown00')).toThrow(CommandRejected);
    expect(
      decideSubscription(new Map(), { type: 'DisableGone', subscriptionId: 'wh_unknown00' }, T0),
    ).toEqual([]);
  });

  it('update: only the fields given change, and updatedAt; nothing given, nothing written', () => {
    const state = created();
    const { events, state: next } = apply(
      state,
      { type: 'UpdateSubscription', subscriptionId: ID, description: 'second', url: undefined },
      T0 + 1000,
    );
    expect(events).toEqual([
      {
        type: 'WebhookSubscriptionUpdated',
        subscriptionId: ID,
        occurredAt: '2026-11-30T10:00:01.000Z',
        description: 'second',
      },
    ]);
    expect(next.get(ID)).toMatchObject({
      description: 'second',
      url: 'https://example.com/hook',
      eventTypes: ['SnapshotCompleted'],
      updatedAt: '2026-11-30T10:00:01.000Z',
      createdAt: '2026-11-30T10:00:00.000Z',
    });
    expect(decideSubscription(state, { type: 'UpdateSubscription', subscriptionId: ID }, T0)).toEqual([]);
    expect(
      decideSubscription(state, { type: 'UpdateSubscription', subscriptionId: ID, url: undefined }, T0),
    ).toEqual([]);
    expect(
      decideSubscription(state, { type: 'UpdateSubscription', subscriptionId: ID, enabled: true }, T0),
    ).toEqual([]);
    // An update event with an undefined field (as a client could send) leaves that field alone.
    const event: SubscriptionEvent = {
      type: 'WebhookSubscriptionUpdated',
      subscriptionId: ID,
      occurredAt: '2026-11-30T10:00:02.000Z',
      url: undefined,
      jobIds: [],
    };
    expect(evolveSubscriptions(state, event).get(ID)).toMatchObject({
      url: 'https://example.com/hook',
      jobIds: [],
    });
    // An event for a subscription that is not there changes nothing.
    expect(evolveSubscriptions(new Map(), event).size).toBe(0);
  });

  it('disable and enable by the user: one event each, only when it changes something', () => {
    const state = created();
    const disabled = apply(
      state,
      { type: 'UpdateSubscription', subscriptionId: ID, enabled: false },
      T0 + 1000,
    );
    expect(disabled.events).toEqual([
      {
        type: 'WebhookSubscriptionDisabled',
        subscriptionId: ID,
        occurredAt: '2026-11-30T10:00:01.000Z',
        reason: 'USER',
      },
    ]);
    expect(disabled.state.get(ID)).toMatchObject({
      enabled: false,
      disabledReason: 'USER',
      updatedAt: '2026-11-30T10:00:01.000Z',
    });
    expect(
      decideSubscription(
        disabled.state,
        { type: 'UpdateSubscription', subscriptionId: ID, enabled: false },
        T0,
      ),
    ).toEqual([]);
    const both = apply(
      disabled.state,
      { type: 'UpdateSubscription', subscriptionId: ID, enabled: true, description: 'back' },
      T0 + 2000,
    );
    expect(both.events.map((e) => e.type)).toEqual([
      'WebhookSubscriptionUpdated',
      'WebhookSubscriptionEnabled',
    ]);
    expect(both.state.get(ID)).toMatchObject({
      enabled: true,
      description: 'back',
      updatedAt: '2026-11-30T10:00:02.000Z',
    });
    expect(both.state.get(ID)).not.toHaveProperty('disabledReason');
    // Enabled for a subscription that is not there: nothing.
    expect(
      evolveSubscriptions(new Map(), {
        type: 'WebhookSubscriptionEnabled',
        subscriptionId: ID,
        occurredAt: 'x',
      }).size,
    ).toBe(0);
  });

  it('410 Gone disables an enabled subscription once', () => {
    const state = created();
    const gone = apply(state, { type: 'DisableGone', subscriptionId: ID }, T0 + 1000);
    expect(gone.events).toEqual([
      {
        type: 'WebhookSubscriptionDisabled',
        subscriptionId: ID,
        occurredAt: '2026-11-30T10:00:01.000Z',
        reason: 'GONE',
      },
    ]);
    expect(gone.state.get(ID)).toMatchObject({ enabled: false, disabledReason: 'GONE' });
    expect(decideSubscription(gone.state, { type: 'DisableGone', subscriptionId: ID }, T0)).toEqual([]);
  });

  it('rotate: the new key first, the previous valid for the overlap; an older one is dropped', () => {
    const state = created();
    const once = apply(
      state,
      { type: 'RotateSecret', subscriptionId: ID, secret: sealed(2), overlapMs: 60_000 },
      T0 + 1000,
    );
    expect(once.events).toEqual([
      {
        type: 'WebhookSecretRotated',
        subscriptionId: ID,
        occurredAt: '2026-11-30T10:00:01.000Z',
        secret: sealed(2),
        previousValidUntil: '2026-11-30T10:01:01.000Z',
      },
    ]);
    expect(once.state.get(ID)!.keys).toEqual([
      { secret: sealed(2) },
      { secret: sealed(1), validUntil: '2026-11-30T10:01:01.000Z' },
    ]);
    const twice = apply(
      once.state,
      { type: 'RotateSecret', subscriptionId: ID, secret: sealed(3), overlapMs: 1000 },
      T0 + 2000,
    );
    expect(twice.state.get(ID)!.keys).toEqual([
      { secret: sealed(3) },
      { secret: sealed(2), validUntil: '2026-11-30T10:00:03.000Z' },
    ]);
  });

  it('signing keys and the view: the previous key signs, and shows, until (not at) its validUntil', () => {
    const state = apply(
      created(),
      { type: 'RotateSecret', subscriptionId: ID, secret: sealed(2), overlapMs: 60_000 },
      T0,
    ).state;
    const subscription = state.get(ID)!;
    const until = T0 + 60_000;
    expect(signingKeys(subscription, until - 1)).toEqual([sealed(2), sealed(1)]);
    expect(signingKeys(subscription, until)).toEqual([sealed(2)]);
    const view = subscriptionView(subscription, until - 1);
    expect(view).toMatchObject({ id: ID, previousSecretValidUntil: '2026-11-30T10:01:00.000Z' });
    expect(view).not.toHaveProperty('keys');
    expect(subscriptionView(subscription, until)).not.toHaveProperty('previousSecretValidUntil');
    expect(subscriptionView(created().get(ID)!, T0)).not.toHaveProperty('previousSecretValidUntil');
  });

  it('delete: the subscription is gone; other subscriptions stay', () => {
    const state = apply(created(), {
      type: 'CreateSubscription',
      subscriptionId: 'wh_another0001',
      url: 'https://example.org/',
      eventTypes: [],
      jobIds: [],
      description: '',
      secret: sealed(9),
    }).state;
    const { events, state: next } = apply(
      state,
      { type: 'DeleteSubscription', subscriptionId: ID },
      T0 + 5000,
    );
    expect(events).toEqual([
      { type: 'WebhookSubscriptionDeleted', subscriptionId: ID, occurredAt: '2026-11-30T10:00:05.000Z' },
    ]);
    expect([...next.keys()]).toEqual(['wh_another0001']);
    expect(state.has(ID)).toBe(true); // the state before is left as it was
  });
});

describe('webhook messages', () => {
  it('Retry-After: delta-seconds (surrounding space allowed) or an HTTP date; anything else is unreadable', () => {
    expect(parseRetryAfter(' 30 ', T0)).toBe(30_000);
    expect(parseRetryAfter('0', T0)).toBe(0);
    expect(parseRetryAfter('3x', T0)).toBeUndefined();
    expect(parseRetryAfter('x3', T0)).toBeUndefined();
    expect(parseRetryAfter('', T0)).toBeUndefined();
    expect(parseRetryAfter(new Date(T0 + 5000).toUTCString(), T0)).toBe(5000);
  });

  it('the payload: type, the event’s time as timestamp, the rest as data', () => {
    expect(webhookPayload({ type: 'JobRegistered', occurredAt: 'T', jobId: JOB, name: 'n' })).toEqual({
      type: 'JobRegistered',
      timestamp: 'T',
      data: { occurredAt: 'T', jobId: JOB, name: 'n' },
    });
  });

  it('payload schemas: one per event type and for the two webhook-only messages, each validating its payload', () => {
    const schemas = webhookPayloadSchemas();
    const types = Event.options.map((o) => o.shape.type.value);
    expect(Object.keys(schemas).sort()).toEqual([...types, 'WebhookDeliveryFailed', 'WebhookTest'].sort());
    const test = { type: 'WebhookTest', subscriptionId: ID, occurredAt: '2026-11-30T10:00:00.000Z' };
    expect(schemas.WebhookTest!.safeParse(webhookPayload(test)).success).toBe(true);
    expect(schemas.WebhookTest!.safeParse({ ...webhookPayload(test), extra: 1 }).success).toBe(false);
    expect(schemas.WebhookTest!.safeParse({ ...webhookPayload(test), type: 'Other' }).success).toBe(false);
    expect(schemas.WebhookTest!.safeParse({ ...webhookPayload(test), timestamp: 'yesterday' }).success).toBe(
      false,
    );
  });

  it.each([
    ['https://example.com/hook', true],
    ['http://example.com:8080/x?y=1', true],
    ['ftp://example.com/x', false],
    ['https://user:pw@example.com/x', false],
    ['HTTPS://user@example.com/x', false],
    ['https://example.com/x@y', true],
    ['https://example.com/cb?next=https://user@example.org/', true],
    ['https://example.com/x#part', false],
  ])('WebhookUrl %s: %s', (url, ok) => {
    expect(WebhookUrl.safeParse(url).success).toBe(ok);
  });
});

describe('subscriptions limited to namespaces', () => {
  const limited = (namespaces: '*' | string[]) =>
    apply(new Map(), {
      type: 'CreateSubscription',
      subscriptionId: ID,
      url: 'https://example.com/hook',
      eventTypes: [],
      jobIds: [],
      description: '',
      secret: sealed(1),
      namespaces,
    });

  it('keeps the namespaces given (a copy), and records none for every namespace', () => {
    const given = ['team-a', 'team-b'];
    const { events, state } = limited(given);
    expect(events[0]).toMatchObject({ namespaces: ['team-a', 'team-b'] });
    expect((events[0] as { namespaces: string[] }).namespaces).not.toBe(given);
    expect(state.get(ID)!.namespaces).toEqual(['team-a', 'team-b']);
    expect(limited('*').events[0]).not.toHaveProperty('namespaces');
    expect(limited('*').state.get(ID)!.namespaces).toBe('*');
  });

  it('gets its namespaces’ jobs’ events, and its own delivery failures of no job (not another subscription’s)', () => {
    const subscription = limited(['team-a']).state.get(ID)!;
    expect(subscriptionMatches(subscription, { type: 'SnapshotCompleted', jobId: JOB }, 'team-a')).toBe(true);
    expect(subscriptionMatches(subscription, { type: 'SnapshotCompleted', jobId: JOB }, 'team-b')).toBe(
      false,
    );
    expect(subscriptionMatches(subscription, { type: 'SnapshotCompleted', jobId: JOB })).toBe(false);
    expect(subscriptionMatches(subscription, { type: 'WebhookDeliveryFailed', subscriptionId: ID })).toBe(
      true,
    );
    expect(
      subscriptionMatches(subscription, { type: 'WebhookDeliveryFailed', subscriptionId: 'wh_other000' }),
    ).toBe(false);
  });
});
