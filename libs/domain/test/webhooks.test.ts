import fc from 'fast-check';
import {
  CommandRejected,
  MAX_SUBSCRIPTIONS_PER_NAMESPACES,
  SUBSCRIBABLE_EVENT_TYPES,
  decideSubscription,
  evolveSubscriptions,
  parseRetryAfter,
  retryDelayMs,
  signingKeys,
  subscriptionMatches,
  type Subscription,
  subscriptionView,
  type SealedSecret,
  type SubscriptionCommand,
  type Subscriptions,
} from '../src';

const sealed = (n: number): SealedSecret => ({ v: 1, iv: `iv${n}`, tag: `tag${n}`, data: `secret-${n}` });
const JOB_A = 'a'.repeat(32);
const JOB_B = 'b'.repeat(32);
const IDS = ['wh_aaaaaaaa', 'wh_bbbbbbbb', 'wh_cccccccc'];

/** Runs commands from the empty state; rejected ones change nothing, as in the service. */
function run(commands: { command: SubscriptionCommand; at: number }[]) {
  let state: Subscriptions = new Map();
  let rejected = 0;
  for (const { command, at } of commands) {
    try {
      for (const event of decideSubscription(state, command, at)) state = evolveSubscriptions(state, event);
    } catch (error) {
      if (!(error instanceof CommandRejected)) throw error;
      rejected += 1;
    }
  }
  return { state, rejected };
}

const command: fc.Arbitrary<SubscriptionCommand> = fc.oneof(
  fc.record({
    type: fc.constant('CreateSubscription' as const),
    subscriptionId: fc.constantFrom(...IDS),
    url: fc.constant('https://example.com/hook'),
    eventTypes: fc.subarray([...SUBSCRIBABLE_EVENT_TYPES]),
    jobIds: fc.subarray([JOB_A, JOB_B]),
    description: fc.string(),
    secret: fc.nat(1000).map(sealed),
  }),
  fc.record({
    type: fc.constant('UpdateSubscription' as const),
    subscriptionId: fc.constantFrom(...IDS),
    enabled: fc.option(fc.boolean(), { nil: undefined }),
    description: fc.option(fc.string(), { nil: undefined }),
  }),
  fc.record({
    type: fc.constant('RotateSecret' as const),
    subscriptionId: fc.constantFrom(...IDS),
    secret: fc.nat(1000).map(sealed),
    overlapMs: fc.integer({ min: 1, max: 100_000 }),
  }),
  fc.record({ type: fc.constant('DisableGone' as const), subscriptionId: fc.constantFrom(...IDS) }),
  fc.record({ type: fc.constant('DeleteSubscription' as const), subscriptionId: fc.constantFrom(...IDS) }),
);
const history = fc
  .array(
    fc.record({ command, gap: fc.nat(50_000) }).map(({ command, gap }) => ({ command, gap })),
    { maxLength: 40 },
  )
  .map((steps) => {
    let at = Date.parse('2026-01-01T00:00:00Z');
    return steps.map(({ command, gap }) => ({ command, at: (at += gap) }));
  });

describe('webhook subscriptions (domain)', () => {
  test('property: a view never carries a secret, sealed or not, whatever the history', () => {
    fc.assert(
      fc.property(history, (steps) => {
        const { state } = run(steps);
        const now = steps.at(-1)?.at ?? 0;
        for (const subscription of state.values()) {
          const shown = JSON.stringify(subscriptionView(subscription, now));
          expect(shown).not.toMatch(/secret-\d|"iv"|"tag"|"keys"/);
        }
      }),
    );
  });

  test('property: at most two keys sign, the newest always, the previous only before its validUntil', () => {
    let rotationsSeen = 0;
    fc.assert(
      fc.property(history, fc.nat(200_000), (steps, later) => {
        const { state } = run(steps);
        const now = (steps.at(-1)?.at ?? 0) + later;
        for (const subscription of state.values()) {
          const keys = signingKeys(subscription, now);
          expect(keys.length).toBeGreaterThanOrEqual(1);
          expect(keys.length).toBeLessThanOrEqual(2);
          expect(keys[0]).toEqual(subscription.keys[0]!.secret);
          if (subscription.keys.length > 1) rotationsSeen += 1;
          const previous = subscription.keys[1];
          expect(keys.length === 2).toBe(previous !== undefined && Date.parse(previous.validUntil!) > now);
        }
      }),
    );
    expect(rotationsSeen).toBeGreaterThan(0); // the generator does reach rotations
  });

  test('property: a disabled or deleted subscription matches nothing; an enabled one matches by type and job', () => {
    fc.assert(
      fc.property(
        history,
        fc.constantFrom(...SUBSCRIBABLE_EVENT_TYPES),
        fc.constantFrom(JOB_A, JOB_B),
        (steps, type, jobId) => {
          const { state } = run(steps);
          for (const id of IDS) {
            const subscription = state.get(id);
            if (!subscription) continue;
            const expected =
              subscription.enabled &&
              (subscription.eventTypes.length === 0 || subscription.eventTypes.includes(type)) &&
              (subscription.jobIds.length === 0 || subscription.jobIds.includes(jobId));
            expect(subscriptionMatches(subscription, { type, jobId })).toBe(expected);
          }
        },
      ),
    );
  });

  test('rules: create twice is a conflict; commands on an unknown id are NOT_FOUND; 410 twice disables once', () => {
    const create: SubscriptionCommand = {
      type: 'CreateSubscription',
      subscriptionId: IDS[0]!,
      url: 'https://x.example/h',
      eventTypes: [],
      jobIds: [],
      description: '',
      secret: sealed(1),
    };
    const { state } = run([{ command: create, at: 0 }]);
    expect(() => decideSubscription(state, create, 1)).toThrow(
      expect.objectContaining({ code: 'CONFLICT', field: 'subscriptionId' }),
    );
    for (const type of ['RotateSecret', 'DeleteSubscription', 'UpdateSubscription'] as const) {
      expect(() =>
        decideSubscription(
          state,
          { type, subscriptionId: IDS[1]!, secret: sealed(2), overlapMs: 1 } as SubscriptionCommand,
          1,
        ),
      ).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    }
    const gone = decideSubscription(state, { type: 'DisableGone', subscriptionId: IDS[0]! }, 1);
    expect(gone).toEqual([expect.objectContaining({ type: 'WebhookSubscriptionDisabled', reason: 'GONE' })]);
    const after = evolveSubscriptions(state, gone[0]!);
    expect(decideSubscription(after, { type: 'DisableGone', subscriptionId: IDS[0]! }, 2)).toEqual([]);
    // Events of types nobody can subscribe to never match, even with an empty type filter.
    expect(subscriptionMatches(state.get(IDS[0]!)!, { type: 'WebhookSubscriptionCreated' })).toBe(false);
  });

  test(`one set of namespaces holds at most ${MAX_SUBSCRIPTIONS_PER_NAMESPACES} subscriptions: one more is a CONFLICT (max-subscriptions); other namespaces are not counted; a deletion frees a place`, () => {
    const create = (id: string, namespaces?: string[]): SubscriptionCommand => ({
      type: 'CreateSubscription',
      subscriptionId: id,
      url: 'https://x.example/h',
      eventTypes: [],
      jobIds: [],
      description: '',
      secret: sealed(1),
      ...(namespaces ? { namespaces } : {}),
    });
    const commands = Array.from({ length: MAX_SUBSCRIPTIONS_PER_NAMESPACES }, (_, i) => ({
      command: create(`wh_${String(i).padStart(8, '0')}`, ['payments', 'ads']),
      at: i,
    }));
    const { state, rejected } = run(commands);
    expect(rejected).toBe(0);
    expect(() => decideSubscription(state, create('wh_one_more', ['ads', 'payments']), 1)).toThrow(
      expect.objectContaining({ code: 'CONFLICT', field: 'body', rule: 'max-subscriptions' }),
    );
    expect(decideSubscription(state, create('wh_one_more', ['ads']), 1)).toHaveLength(1);
    expect(decideSubscription(state, create('wh_one_more'), 1)).toHaveLength(1);
    const deleted = decideSubscription(
      state,
      { type: 'DeleteSubscription', subscriptionId: 'wh_00000000' },
      2,
    );
    const freed = deleted.reduce(evolveSubscriptions, state);
    expect(decideSubscription(freed, create('wh_one_more', ['payments', 'ads']), 3)).toHaveLength(1);
  });

  test('a subscription limited to namespaces gets its own delivery failures only; one of every namespace gets all', () => {
    const subscription = (id: string, namespaces: Subscription['namespaces']): Subscription => ({
      id,
      url: 'https://x.example/h',
      eventTypes: [],
      jobIds: [],
      description: '',
      namespaces,
      enabled: true,
      keys: [],
      createdAt: '2026-12-05T00:00:00Z',
      updatedAt: '2026-12-05T00:00:00Z',
    });
    const failure = (subscriptionId: string) => ({
      type: 'WebhookDeliveryFailed',
      jobId: JOB_A,
      subscriptionId,
    });
    const teamB = subscription(IDS[0]!, ['team-b']);
    const admin = subscription(IDS[1]!, '*');
    // The admin's delivery of a team-b job failed: its lastError names the admin's receiver's answer.
    expect(subscriptionMatches(teamB, failure(admin.id), 'team-b')).toBe(false);
    expect(subscriptionMatches(teamB, failure(teamB.id), 'team-b')).toBe(true);
    expect(subscriptionMatches(admin, failure(teamB.id), 'team-b')).toBe(true);
  });

  test('retry delays follow the schedule, stretched by Retry-After, and end with it', () => {
    const schedule = [0, 5_000, 300_000];
    expect(retryDelayMs(schedule, 1)).toBe(5_000);
    expect(retryDelayMs(schedule, 2, 1_000)).toBe(300_000);
    expect(retryDelayMs(schedule, 1, 60_000)).toBe(60_000);
    expect(retryDelayMs(schedule, 3)).toBe(-1);
    // Honoured up to the schedule's longest wait or an hour, not ten years (a review's receiver asked for
    // 315360000 s).
    expect(retryDelayMs(schedule, 1, 315_360_000_000)).toBe(3_600_000);
    expect(retryDelayMs([0, 7_200_000], 1, 315_360_000_000)).toBe(7_200_000);
    const now = Date.parse('2026-11-24T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Tue, 24 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 24 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
