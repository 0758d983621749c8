import IORedis from 'ioredis';
import { CommandRejected } from '@snapcat/domain';
import { MemoryEventStore } from '@snapcat/event-store';
import { Deliveries, SecretBox, SubscriptionRepository, WebhookService } from '../src';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';

// The service behind the REST API's /webhooks: subscriptions in a memory store, the delivery log in Redis.
const prefix = testPrefix('wh-service');
const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const deliveries = new Deliveries(redis, { host: '127.0.0.1', port: 6379 }, prefix, 3);
afterAll(async () => {
  await deliveries.close();
  await deleteKeys(prefix);
  redis.disconnect();
});

const box = new SecretBox('k'.repeat(32));
const NOW = Date.parse('2026-11-30T10:00:00.000Z');
const JOB = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

function service(allowPrivate = true) {
  const subscriptions = new SubscriptionRepository(new MemoryEventStore(), () => NOW);
  return {
    subscriptions,
    service: new WebhookService({
      subscriptions,
      deliveries,
      box,
      allowPrivate,
      rotationOverlapMs: 3_600_000,
      now: () => NOW,
    }),
  };
}

const input = { url: 'https://8.8.8.8/hook', eventTypes: [], jobIds: [JOB], description: 'mine' };

/** The rejection a call ends with. */
async function rejection(call: Promise<unknown>): Promise<CommandRejected> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CommandRejected);
  return error as CommandRejected;
}

describe('WebhookService: subscriptions', () => {
  it('a caller sees and changes only subscriptions whose namespaces it holds all of; others do not exist for it', async () => {
    const { service: s, subscriptions } = service();
    const payments = await s.create(input, ['payments']);
    const everywhere = await s.create(input);
    expect(payments.namespaces).toEqual(['payments']);
    expect(everywhere.namespaces).toBe('*');
    expect((await s.list(['payments'])).map((x) => x.id)).toEqual([payments.id]);
    expect((await s.list(['search'])).map((x) => x.id)).toEqual([]);
    expect((await s.list('*')).map((x) => x.id).sort()).toEqual([payments.id, everywhere.id].sort());
    const calls: [string, (id: string) => Promise<unknown>][] = [
      ['get', (id) => s.get(id, ['search'])],
      ['update', (id) => s.update(id, { description: 'x' }, ['search'])],
      ['rotate', (id) => s.rotateSecret(id, ['search'])],
      ['deliveries', (id) => s.deliveries(id, 10, ['search'])],
      ['redeliver', (id) => s.redeliver(id, 'd1', ['search'])],
      ['test', (id) => s.test(id, ['search'])],
      ['delete', (id) => s.delete(id, ['search'])],
    ];
    for (const [name, call] of calls) {
      for (const id of [payments.id, everywhere.id]) {
        const e = await rejection(call(id));
        expect([name, e.code, e.field]).toEqual([name, 'NOT_FOUND', 'subscriptionId']);
      }
    }
    // Nothing changed, and a caller of the namespace can act on it.
    expect((await subscriptions.current()).get(payments.id)!.description).toBe('mine');
    await s.update(payments.id, { description: 'changed' }, ['payments', 'search']);
    expect((await s.get(payments.id, ['payments'])).description).toBe('changed');
  });

  it('creates a subscription with a fresh secret, shown once and stored sealed', async () => {
    const { service: s, subscriptions } = service();
    const created = await s.create(input);
    expect(created.id).toMatch(/^wh_[0-9a-f]{24}$/);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(created).toMatchObject({ ...input, enabled: true, createdAt: '2026-11-30T10:00:00.000Z' });
    expect(created).not.toHaveProperty('keys');
    const stored = (await subscriptions.current()).get(created.id)!;
    expect(stored.keys).toHaveLength(1);
    expect(box.open(stored.keys[0]!.secret)).toBe(created.secret);
    const other = await s.create(input);
    expect(other.id).not.toBe(created.id);
    expect(other.secret).not.toBe(created.secret);
    const { secret: _secret, ...view } = created;
    expect(await s.get(created.id)).toEqual(view);
    expect((await s.list()).map((v) => v.id)).toEqual([created.id, other.id]);
    expect(await s.list()).not.toContainEqual(expect.objectContaining({ secret: expect.anything() }));
  });

  it('refuses a private address unless private addresses are allowed, and a host that does not resolve', async () => {
    const { service: strict } = service(false);
    const refused = await rejection(strict.create({ ...input, url: 'http://127.0.0.1:9/x' }));
    expect(refused).toMatchObject({ code: 'INVALID', field: 'url', rule: 'public-address' });
    expect(refused.message).toBe(
      '127.0.0.1 resolves to 127.0.0.1, a loopback, link-local or private address; ' +
        'set SNAPCAT_WEBHOOK_ALLOW_PRIVATE=true to allow it',
    );
    const unresolvable = await rejection(strict.create({ ...input, url: 'http://no-such-host.invalid/x' }));
    expect(unresolvable).toMatchObject({ code: 'INVALID', field: 'url', rule: 'resolvable' });
    expect(unresolvable.message).toMatch(
      /^the host of http:\/\/no-such-host\.invalid\/x does not resolve: .*ENOTFOUND/,
    );
    expect(await strict.list()).toEqual([]);
    // A public address passes; so does a private one where they are allowed.
    await expect(strict.create(input)).resolves.toMatchObject({ url: input.url });
    await expect(
      service(true).service.create({ ...input, url: 'http://127.0.0.1:9/x' }),
    ).resolves.toBeDefined();
  });

  it('updates (checking a new URL as on creation), disables, and deletes', async () => {
    const { service: s } = service(false);
    const { id } = await s.create(input);
    const updated = await s.update(id, { description: 'theirs', enabled: false });
    expect(updated).toMatchObject({ id, description: 'theirs', enabled: false, disabledReason: 'USER' });
    expect(await rejection(s.update(id, { url: 'http://10.0.0.1/x' }))).toMatchObject({
      rule: 'public-address',
    });
    expect(await s.update(id, { url: 'https://1.1.1.1/x' })).toMatchObject({ url: 'https://1.1.1.1/x' });
    await s.delete(id);
    expect(await rejection(s.get(id))).toMatchObject({ code: 'NOT_FOUND', field: 'subscriptionId' });
  });

  it('rotates the secret: a new one, and the previous one signs for the overlap', async () => {
    const { service: s, subscriptions } = service();
    const created = await s.create(input);
    const rotated = await s.rotateSecret(created.id);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);
    expect(rotated.previousSecretValidUntil).toBe('2026-11-30T11:00:00.000Z');
    const keys = (await subscriptions.current()).get(created.id)!.keys;
    expect(keys.map((k) => box.open(k.secret))).toEqual([rotated.secret, created.secret]);
  });
});

describe('WebhookService: the delivery log', () => {
  it('disabling or deleting a subscription drops its deliveries still queued (README: they are dropped), not at their next attempt hours later', async () => {
    const { service: s } = service();
    for (const end of ['disable', 'delete'] as const) {
      const { id } = await s.create(input);
      const sent = await s.test(id);
      expect(await deliveries.queue.getJob(sent.deliveryId)).toBeDefined();
      if (end === 'disable') await s.update(id, { enabled: false });
      else await s.delete(id);
      expect(await deliveries.queue.getJob(sent.deliveryId)).toBeUndefined();
      expect(await deliveries.get(sent.deliveryId)).toMatchObject({ status: 'skipped' });
    }
  });

  it('deleting a subscription drops every delivery still queued, not only the newest 1,000 its log lists', async () => {
    const { service: s } = service();
    const { id } = await s.create(input);
    const sent = [];
    for (let i = 0; i < 1_005; i += 1) sent.push(await s.test(id));
    await s.delete(id);
    const left = await Promise.all(sent.map((d) => deliveries.queue.getJob(d.deliveryId)));
    expect(left.filter((job) => job !== undefined)).toHaveLength(0);
    expect(await deliveries.get(sent[0]!.deliveryId)).toMatchObject({ status: 'skipped' });
  });

  it('sends a test message through the queue: a WebhookTest payload, a msg_ id, logged as pending', async () => {
    const { service: s } = service();
    const { id } = await s.create(input);
    const sent = await s.test(id);
    expect(sent.messageId).toMatch(/^msg_[0-9a-f-]{36}$/);
    expect(sent.deliveryId).toBe(`${sent.messageId}-${id}`);
    const record = (await deliveries.get(sent.deliveryId))!;
    expect(record).toMatchObject({
      subscriptionId: id,
      messageId: sent.messageId,
      eventType: 'WebhookTest',
      status: 'pending',
      createdAt: '2026-11-30T10:00:00.000Z',
    });
    expect(record).not.toHaveProperty('jobId');
    expect(JSON.parse(record.body)).toEqual({
      type: 'WebhookTest',
      timestamp: '2026-11-30T10:00:00.000Z',
      data: { subscriptionId: id, occurredAt: '2026-11-30T10:00:00.000Z' },
    });
    expect((await deliveries.queue.getJob(sent.deliveryId))?.data.eventType).toBe('WebhookTest');
    expect((await s.deliveries(id, 10)).map((d) => d.id)).toEqual([sent.deliveryId]);
    await s.test(id);
    expect(await s.deliveries(id, 1)).toHaveLength(1);
    expect(await s.deliveries(id, 5)).toHaveLength(2);
  });

  it('redelivers a delivery of the subscription; refuses one of another subscription or none', async () => {
    const { service: s } = service();
    const a = await s.create(input);
    const b = await s.create(input);
    const sent = await s.test(a.id);
    // Still being attempted: a redelivery would run beside it.
    expect(await rejection(s.redeliver(a.id, sent.deliveryId))).toMatchObject({
      code: 'CONFLICT',
      field: 'deliveryId',
      rule: 'delivery-pending',
    });
    expect(await deliveries.queue.getJob(`${sent.deliveryId}-r1`)).toBeUndefined();
    await deliveries.settle({ ...sent, subscriptionId: a.id }, 'failed', Date.now());
    expect(await s.redeliver(a.id, sent.deliveryId)).toEqual(sent);
    expect(await deliveries.queue.getJob(`${sent.deliveryId}-r1`)).toBeDefined();
    for (const [subscriptionId, deliveryId] of [
      [b.id, sent.deliveryId],
      [a.id, 'no-such-delivery'],
    ] as const) {
      const refused = await rejection(s.redeliver(subscriptionId, deliveryId));
      expect(refused).toMatchObject({ code: 'NOT_FOUND', field: 'deliveryId', rule: 'exists' });
      expect(refused.message).toBe(`delivery ${deliveryId} is not in the log`);
    }
  });

  it('redeliveries asked at once of one settled delivery: one is queued, the others are refused as pending', async () => {
    const { service: s } = service();
    const { id } = await s.create(input);
    const sent = await s.test(id);
    await deliveries.settle({ ...sent, subscriptionId: id }, 'failed', Date.now());
    const answers = await Promise.allSettled([1, 2, 3].map(() => s.redeliver(id, sent.deliveryId)));
    expect(answers.map((a) => a.status).sort()).toEqual(['fulfilled', 'rejected', 'rejected']);
    for (const a of answers) {
      if (a.status === 'rejected')
        expect(a.reason).toMatchObject({ code: 'CONFLICT', rule: 'delivery-pending' });
    }
    const queued = await Promise.all(
      [1, 2, 3].map((r) => deliveries.queue.getJob(`${sent.deliveryId}-r${r}`)),
    );
    expect(queued.map((job) => job !== undefined)).toEqual([true, false, false]);
  });

  it('answers NOT_FOUND for the deliveries, redeliveries and tests of an unknown subscription', async () => {
    const { service: s } = service();
    for (const call of [
      s.deliveries('wh_unknown0000', 5),
      s.redeliver('wh_unknown0000', 'x'),
      s.test('wh_unknown0000'),
    ]) {
      expect(await rejection(call)).toMatchObject({ code: 'NOT_FOUND', field: 'subscriptionId' });
    }
  });
});
