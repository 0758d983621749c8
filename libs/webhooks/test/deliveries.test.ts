import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { Deliveries, WEBHOOK_QUEUE, type DeliveryJob } from '../src';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { eventually } from '../../../test/support/wait';

// The delivery queue and log on the real Redis (127.0.0.1:6379), under a prefix of this suite's own.
const prefix = testPrefix('wh-deliveries');
const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const connection = { host: '127.0.0.1', port: 6379 };
let deliveries: Deliveries;

beforeAll(() => {
  deliveries = new Deliveries(redis, connection, prefix, 4);
});
afterAll(async () => {
  await deliveries.close();
  await deleteKeys(prefix);
  redis.disconnect();
});

const T0 = Date.parse('2026-11-30T10:00:00.000Z');
let n = 0;
const job = (over: Partial<DeliveryJob> = {}): DeliveryJob => {
  n += 1;
  return {
    deliveryId: `evt-${n}-wh_sub${n}aaaaaaaa`,
    subscriptionId: `wh_sub${n}aaaaaaaa`,
    messageId: `evt-${n}`,
    eventType: 'SnapshotCompleted',
    jobId: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
    body: `{"n":${n}}`,
    ...over,
  };
};

describe('Deliveries: the delivery log', () => {
  it('records a delivery as pending, with its fields, and enqueues it under its id with the attempts and backoff', async () => {
    const j = job();
    await deliveries.enqueue(j, T0);
    expect(await deliveries.get(j.deliveryId)).toEqual({
      id: j.deliveryId,
      subscriptionId: j.subscriptionId,
      messageId: j.messageId,
      eventType: 'SnapshotCompleted',
      jobId: j.jobId,
      status: 'pending',
      createdAt: '2026-11-30T10:00:00.000Z',
      updatedAt: '2026-11-30T10:00:00.000Z',
      attempts: [],
      body: j.body,
    });
    const queued = await deliveries.queue.getJob(j.deliveryId);
    expect(queued?.name).toBe('deliver');
    expect(queued?.data).toEqual(j);
    expect(queued?.opts).toMatchObject({
      attempts: 4,
      backoff: { type: 'webhook' },
      removeOnComplete: { age: 7 * 24 * 3600, count: 100_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
    expect(deliveries.queue.name).toBe(WEBHOOK_QUEUE);
    expect(await redis.exists(`${prefix}:${WEBHOOK_QUEUE}:${j.deliveryId}`)).toBe(1);
  });

  it('keys the log under the prefix, with a 30-day expiry', async () => {
    const j = job();
    await deliveries.enqueue(j, T0);
    await deliveries.recordAttempt(j.deliveryId, { attempt: 1, at: 'x', latencyMs: 1 }, T0);
    for (const key of [
      `${prefix}:wh:delivery:${j.deliveryId}`,
      `${prefix}:wh:delivery:${j.deliveryId}:attempts`,
      `${prefix}:wh:deliveries:${j.subscriptionId}`,
    ]) {
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(30 * 24 * 3600 - 60);
      expect(ttl).toBeLessThanOrEqual(30 * 24 * 3600);
    }
  });

  it('a delivery without a job has no jobId; an unknown delivery is undefined', async () => {
    const { jobId: _jobId, ...rest } = job();
    await deliveries.enqueue(rest, T0);
    const record = await deliveries.get(rest.deliveryId);
    expect(record).toBeDefined();
    expect(record).not.toHaveProperty('jobId');
    expect(await deliveries.get('no-such-delivery')).toBeUndefined();
  });

  it('enqueuing a known delivery again (a replayed event) keeps its status and times, and does not queue a settled one', async () => {
    const j = job();
    await deliveries.enqueue(j, T0);
    await deliveries.settle(j, 'succeeded', T0 + 5000);
    // Its job gone (BullMQ keeps finished ones a week, or a removed failed one): not queued again either.
    await (await deliveries.queue.getJob(j.deliveryId))!.remove();
    await deliveries.enqueue(j, T0 + 9000);
    expect(await deliveries.get(j.deliveryId)).toMatchObject({
      status: 'succeeded',
      createdAt: '2026-11-30T10:00:00.000Z',
      updatedAt: '2026-11-30T10:00:05.000Z',
    });
    expect(await deliveries.queue.getJob(j.deliveryId)).toBeUndefined();
  });

  it('records attempts in order, keeps the last 100, and moves updatedAt', async () => {
    const j = job();
    await deliveries.enqueue(j, T0);
    for (let attempt = 1; attempt <= 102; attempt += 1) {
      await deliveries.recordAttempt(
        j.deliveryId,
        { attempt, at: new Date(T0 + attempt).toISOString(), statusCode: 500, latencyMs: attempt },
        T0 + attempt * 1000,
      );
    }
    const record = (await deliveries.get(j.deliveryId))!;
    expect(record.attempts).toHaveLength(100);
    expect(record.attempts[0]).toEqual({
      attempt: 3,
      at: new Date(T0 + 3).toISOString(),
      statusCode: 500,
      latencyMs: 3,
    });
    expect(record.attempts[99]!.attempt).toBe(102);
    expect(record.updatedAt).toBe(new Date(T0 + 102_000).toISOString());
    expect(record.status).toBe('pending');
  });

  it('lists a subscription’s deliveries newest first, without their bodies, up to the limit', async () => {
    const subscriptionId = 'wh_listedaaaaaaaa';
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      const j = job({ subscriptionId, deliveryId: `list-${i}-${subscriptionId}` });
      ids.push(j.deliveryId);
      await deliveries.enqueue(j, T0 + i * 1000);
    }
    await deliveries.enqueue(job(), T0 + 10_000); // another subscription's
    const listed = await deliveries.list(subscriptionId, 3);
    expect(listed.map((r) => r.id)).toEqual([ids[3], ids[2], ids[1]]);
    for (const record of listed) expect(record).not.toHaveProperty('body');
    expect((await deliveries.list(subscriptionId, 10)).map((r) => r.id)).toEqual([...ids].reverse());
    // An expired record is left out, not listed as undefined.
    await redis.del(`${prefix}:wh:delivery:${ids[3]}`);
    expect((await deliveries.list(subscriptionId, 10)).map((r) => r.id)).toEqual([ids[2], ids[1], ids[0]]);
  });

  it('lists at most the newest 1,000 deliveries of a subscription', async () => {
    const subscriptionId = 'wh_manyaaaaaaaaaa';
    const key = `${prefix}:wh:deliveries:${subscriptionId}`;
    const old: (string | number)[] = [];
    for (let i = 0; i < 1000; i += 1) old.push(i, `old-${i}`);
    await redis.zadd(key, ...old);
    const j = job({ subscriptionId });
    await deliveries.enqueue(j, T0);
    expect(await redis.zcard(key)).toBe(1000);
    expect(await redis.zscore(key, 'old-0')).toBeNull();
    expect(await redis.zscore(key, 'old-1')).toBe('1');
    expect(await redis.zscore(key, j.deliveryId)).toBe(String(T0));
  });
});

describe('Deliveries: settling, redelivering and the oldest unsettled position', () => {
  it('settles with a status and a time', async () => {
    const j = job();
    await deliveries.enqueue(j, T0);
    await deliveries.settle(j, 'gone', T0 + 60_000);
    expect(await deliveries.get(j.deliveryId)).toMatchObject({
      status: 'gone',
      createdAt: '2026-11-30T10:00:00.000Z',
      updatedAt: '2026-11-30T10:01:00.000Z',
    });
  });

  it('redelivers as a new job with the same message, numbered per redelivery, and marks it pending', async () => {
    const j = job();
    await deliveries.enqueue(j, T0);
    await deliveries.settle(j, 'failed', T0 + 1000);
    expect(await deliveries.redeliver((await deliveries.get(j.deliveryId))!, T0 + 2000)).toBe(true);
    expect(await deliveries.get(j.deliveryId)).toMatchObject({
      status: 'pending',
      updatedAt: '2026-11-30T10:00:02.000Z',
    });
    // Pending again: not redelivered beside the redelivery under way.
    expect(await deliveries.redeliver((await deliveries.get(j.deliveryId))!, T0 + 2500)).toBe(false);
    await deliveries.settle(j, 'failed', T0 + 2800);
    expect(await deliveries.redeliver((await deliveries.get(j.deliveryId))!, T0 + 3000)).toBe(true);
    const first = await deliveries.queue.getJob(`${j.deliveryId}-r1`);
    const second = await deliveries.queue.getJob(`${j.deliveryId}-r2`);
    expect(first?.data).toEqual(j);
    expect(second?.data).toEqual(j);
    expect(second?.opts).toMatchObject({ attempts: 4, backoff: { type: 'webhook' } });
  });

  it('redelivers a delivery without a job without a jobId', async () => {
    const { jobId: _jobId, ...rest } = job();
    await deliveries.enqueue(rest, T0);
    await deliveries.settle(rest, 'failed', T0);
    await deliveries.redeliver((await deliveries.get(rest.deliveryId))!, T0);
    const again = await deliveries.queue.getJob(`${rest.deliveryId}-r1`);
    expect(again?.data).toEqual(rest);
    expect(again?.data).not.toHaveProperty('jobId');
  });

  it('answers the position before the oldest unsettled delivery, until every one settled', async () => {
    const own = new Deliveries(redis, connection, `${prefix}-unsettled`, 1);
    try {
      expect(await own.oldestUnsettled()).toBeUndefined();
      const a = job();
      const b = job();
      const c = job();
      await own.enqueue(a, T0, { commit: 20n, prepare: 21n });
      await own.enqueue(b, T0, { commit: 10n, prepare: 11n });
      await own.enqueue(c, T0); // no position: not tracked
      // Enqueued again from a later position (a replay): the first position stays.
      await own.enqueue(b, T0, { commit: 30n, prepare: 31n });
      expect(await own.oldestUnsettled()).toEqual({ commit: 10n, prepare: 11n });
      await own.settle(b, 'succeeded', T0);
      expect(await own.oldestUnsettled()).toEqual({ commit: 20n, prepare: 21n });
      expect(await redis.hget(`${prefix}-unsettled:wh:unsettled-from`, b.deliveryId)).toBeNull();
      await own.settle(a, 'skipped', T0);
      expect(await own.oldestUnsettled()).toBeUndefined();
      // A ranked delivery whose position is missing counts as none.
      await redis.zadd(`${prefix}-unsettled:wh:unsettled`, 5, 'orphan');
      expect(await own.oldestUnsettled()).toBeUndefined();
    } finally {
      await own.close();
      await deleteKeys(`${prefix}-unsettled`);
    }
  });

  it('a delivery enqueued again after it settled (its event handled twice) is not unsettled again', async () => {
    // Ranked again, it would never be settled again (its BullMQ job is done): the dispatcher's checkpoint would
    // stay before its event for good, and a Redis loss would send everything since again (a review found it).
    const own = new Deliveries(redis, connection, `${prefix}-settled`, 1);
    try {
      const j = job();
      await own.enqueue(j, T0, { commit: 42n, prepare: 42n });
      await own.settle(j, 'succeeded', T0);
      await own.enqueue(j, T0, { commit: 42n, prepare: 42n });
      expect(await own.oldestUnsettled()).toBeUndefined();
      expect(await own.get(j.deliveryId)).toMatchObject({ status: 'succeeded' });
      // A pending one enqueued again stays ranked where it first was.
      const k = job();
      await own.enqueue(k, T0, { commit: 50n, prepare: 50n });
      await own.enqueue(k, T0, { commit: 60n, prepare: 60n });
      expect(await own.oldestUnsettled()).toEqual({ commit: 50n, prepare: 50n });
    } finally {
      await own.close();
      await deleteKeys(`${prefix}-settled`);
    }
  });

  it('drops the deliveries of a subscription still queued (first attempts and redeliveries), settled skipped; not the settled ones nor another subscription’s', async () => {
    const own = new Deliveries(redis, connection, `${prefix}-drop`, 3);
    try {
      const queued = job({ subscriptionId: 'wh_dropped00' });
      const redelivered = job({ subscriptionId: 'wh_dropped00' });
      const done = job({ subscriptionId: 'wh_dropped00' });
      const other = job({ subscriptionId: 'wh_kept0000' });
      for (const [j, commit] of [
        [queued, 10n],
        [redelivered, 11n],
        [done, 12n],
        [other, 13n],
      ] as const) {
        await own.enqueue(j, T0, { commit, prepare: commit });
      }
      await own.settle(redelivered, 'failed', T0);
      await own.redeliver((await own.get(redelivered.deliveryId))!, T0);
      await own.settle(done, 'succeeded', T0);
      expect(await own.dropQueued('wh_dropped00', T0 + 1000)).toBe(2);
      for (const j of [queued, redelivered]) {
        expect(await own.get(j.deliveryId)).toMatchObject({ status: 'skipped' });
      }
      expect(await own.get(done.deliveryId)).toMatchObject({ status: 'succeeded' });
      expect(await own.queue.getJob(queued.deliveryId)).toBeUndefined();
      expect(await own.queue.getJob(`${redelivered.deliveryId}-r1`)).toBeUndefined();
      expect(await own.queue.getJob(other.deliveryId)).toBeDefined();
      expect(await own.oldestUnsettled()).toEqual({ commit: 13n, prepare: 13n });
    } finally {
      await own.close();
      await deleteKeys(`${prefix}-drop`);
    }
  });

  it('of deliveries tied on the commit position, answers the earliest position, wherever it ranks among them', async () => {
    // Ranked by commit alone, ties come back in the order of their ids; the earliest position is the middle one.
    const own = new Deliveries(redis, connection, `${prefix}-ties`, 1);
    try {
      await own.enqueue(job({ deliveryId: 'tie-a' }), T0, { commit: 40n, prepare: 45n });
      await own.enqueue(job({ deliveryId: 'tie-b' }), T0, { commit: 40n, prepare: 41n });
      await own.enqueue(job({ deliveryId: 'tie-c' }), T0, { commit: 40n, prepare: 47n });
      await own.enqueue(job({ deliveryId: 'later' }), T0, { commit: 50n, prepare: 40n });
      expect(await redis.zrangebyscore(`${prefix}-ties:wh:unsettled`, 40, 40)).toEqual([
        'tie-a',
        'tie-b',
        'tie-c',
      ]);
      expect(await own.oldestUnsettled()).toEqual({ commit: 40n, prepare: 41n });
      await own.settle(job({ deliveryId: 'tie-b' }), 'succeeded', T0);
      expect(await own.oldestUnsettled()).toEqual({ commit: 40n, prepare: 45n });
    } finally {
      await own.close();
      await deleteKeys(`${prefix}-ties`);
    }
  });

  it('two deployments on one Redis under different prefixes keep their unsettled positions apart, for the same delivery id', async () => {
    // A copied or restored store keeps its events' ids: beside the original (another prefix) its deliveries
    // have the same ids, and settling one in one deployment must not touch the other's position.
    const [a, b] = [`${prefix}-deployment-a`, `${prefix}-deployment-b`].map(
      (p) => new Deliveries(redis, connection, p, 1),
    ) as [Deliveries, Deliveries];
    try {
      const j = job();
      await a.enqueue(j, T0, { commit: 10n, prepare: 11n });
      await b.enqueue(j, T0, { commit: 20n, prepare: 21n });
      expect(await a.oldestUnsettled()).toEqual({ commit: 10n, prepare: 11n });
      expect(await b.oldestUnsettled()).toEqual({ commit: 20n, prepare: 21n });
      await a.settle(j, 'succeeded', T0);
      expect(await a.oldestUnsettled()).toBeUndefined();
      expect(await b.oldestUnsettled()).toEqual({ commit: 20n, prepare: 21n });
    } finally {
      await a.close();
      await b.close();
      await deleteKeys(`${prefix}-deployment-`);
    }
  });
});

describe('Deliveries: the claim on a failed job’s end', () => {
  it('is held by one at a time, and let go only by its holder (a lapsed claim taken by another stays theirs)', async () => {
    const first = await deliveries.claimEnding('job-1');
    expect(first).toEqual(expect.any(String));
    expect(await deliveries.claimEnding('job-1')).toBeUndefined();
    expect(await deliveries.claimEnding('job-2')).toEqual(expect.any(String)); // another job's
    // The first holder's claim lapsed and another took it: the first one's release leaves it.
    await redis.del(`${prefix}:wh:ending:job-1`);
    const second = await deliveries.claimEnding('job-1');
    await deliveries.releaseEnding('job-1', first!);
    expect(await deliveries.claimEnding('job-1')).toBeUndefined();
    await deliveries.releaseEnding('job-1', second!);
    expect(await deliveries.claimEnding('job-1')).toEqual(expect.any(String));
    expect(await redis.pttl(`${prefix}:wh:ending:job-1`)).toBeGreaterThan(50_000); // lapses if never let go
  });
});

describe('Deliveries: closing', () => {
  it('close() closes the connection the queue opened for itself', async () => {
    // A connection name of this test's own, to count its connections among everyone's on the shared Redis.
    const connectionName = `${prefix}-close-${randomUUID().slice(0, 8)}`;
    const own = new Deliveries(redis, { ...connection, connectionName }, `${prefix}-close`, 1);
    const named = async () =>
      String(await redis.client('LIST'))
        .split('\n')
        .filter((line) => line.includes(` name=${connectionName} `)).length;
    await own.queue.waitUntilReady();
    expect(await named()).toBe(1);
    await own.close();
    await eventually(async () => (await named()) === 0, 5000, 'the queue connection closed');
  });
});
