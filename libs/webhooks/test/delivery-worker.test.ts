import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import IORedis from 'ioredis';
import { Job, Worker } from 'bullmq';
import { Webhook } from 'standardwebhooks';
import { MemoryEventStore } from '@snapcat/event-store';
import {
  DELIVERY_FAILURES_STREAM,
  Deliveries,
  SecretBox,
  WEBHOOK_QUEUE,
  SubscriptionRepository,
  newWebhookSecret,
  type DeliveryJob,
  type DeliveryRecord,
} from '../src';
import {
  endDeliveriesFailedByBullMq,
  startDeliveryWorker,
  type EndingDelivery,
} from '../src/delivery-worker';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { sleep, until } from '../../../test/support/wait';

// The delivery worker on the real Redis, sending to a receiver on loopback (private addresses allowed).
interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}
type Answer = { status: number; body?: string; headers?: Record<string, string> };

let server: Server;
let url: string;
const received: Received[] = [];
let answer: (call: number) => Answer = () => ({ status: 200 });
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      const a = answer(received.length);
      res.writeHead(a.status, a.headers).end(a.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
afterAll(() => redis.disconnect());

const box = new SecretBox('k'.repeat(32));
const JOB = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

/** A store, a subscription to `url`, the queue, and a worker with the given schedule. */
async function setUp(
  name: string,
  scheduleMs: number[],
  options: { secretBox?: SecretBox; store?: MemoryEventStore; worker?: false; reportRetryMs?: number } = {},
) {
  const prefix = testPrefix(`wh-worker-${name}`);
  const store = options.store ?? new MemoryEventStore();
  const now = () => Date.now();
  const subscriptions = new SubscriptionRepository(store, now);
  const secret = newWebhookSecret();
  const subscriptionId = 'wh_worker0000001';
  await subscriptions.execute({
    type: 'CreateSubscription',
    subscriptionId,
    url,
    eventTypes: [],
    jobIds: [],
    description: '',
    secret: (options.secretBox ?? box).seal(secret),
  });
  const connection = { host: '127.0.0.1', port: 6379 };
  const deliveries = new Deliveries(redis, connection, prefix, scheduleMs.length);
  const logs: { level: string; message: string; fields?: object }[] = [];
  const logFn = (level: string) => (message: string, fields?: object) =>
    logs.push({ level, message, ...(fields ? { fields } : {}) });
  const log = { info: logFn('info'), warn: logFn('warn'), error: logFn('error') };
  const startWorker = (more: { maxStalledCount?: number } = {}) =>
    startDeliveryWorker({
      connection,
      prefix,
      store,
      subscriptions,
      deliveries,
      box,
      scheduleMs,
      timeoutMs: 2000,
      allowPrivate: true,
      concurrency: 2,
      reportRetryMs: options.reportRetryMs ?? 100,
      now,
      log,
      ...more,
    });
  let worker: Worker | undefined = options.worker === false ? undefined : startWorker();
  let n = 0;
  return {
    get worker() {
      return worker;
    },
    /** Starts the worker (set up without one). */
    start(more: { maxStalledCount?: number } = {}) {
      worker = startWorker(more);
    },
    prefix,
    connection,
    /** What ending a delivery outside the worker needs. */
    ending: { store, subscriptions, deliveries, now, log },
    store,
    subscriptions,
    subscriptionId,
    secret,
    deliveries,
    logs,
    job(over: Partial<DeliveryJob> = {}): DeliveryJob {
      n += 1;
      return {
        deliveryId: `evt-${n}-${subscriptionId}`,
        subscriptionId,
        messageId: `evt-${n}`,
        eventType: 'SnapshotCompleted',
        jobId: JOB,
        body: JSON.stringify({ type: 'SnapshotCompleted', n }),
        ...over,
      };
    },
    async deliver(over: Partial<DeliveryJob> = {}): Promise<DeliveryRecord> {
      const job = this.job(over);
      await deliveries.enqueue(job, Date.now());
      return until(
        async () => {
          const record = await deliveries.get(job.deliveryId);
          return record && record.status !== 'pending' ? record : undefined;
        },
        10_000,
        `delivery ${job.deliveryId} settled`,
      );
    },
    async failures() {
      return (await store.readStream(DELIVERY_FAILURES_STREAM, { fromRevision: 0n, maxCount: 100 })).map(
        (e) => e.data as Record<string, unknown>,
      );
    },
    async close() {
      await worker?.close();
      await deliveries.close();
      await deleteKeys(prefix);
    },
  };
}

/** A store whose appends of failure reports are refused while `refusing()` says so (the log unavailable). */
function refusingReports(refusing: () => boolean): MemoryEventStore {
  const store = new MemoryEventStore();
  const append = store.append.bind(store);
  store.append = (async (stream, ...rest) => {
    if (stream === DELIVERY_FAILURES_STREAM && refusing()) throw new Error('event store unavailable');
    return append(stream, ...rest);
  }) as typeof store.append;
  return store;
}

/** The first settle of a delivery as failed throws `message` (Redis failing just then); says whether it did. */
function failFirstFailedSettle(deliveries: Deliveries, message: string): { failed: boolean } {
  const said = { failed: false };
  const settle = deliveries.settle.bind(deliveries);
  deliveries.settle = (async (...args: Parameters<typeof settle>) => {
    if (args[1] === 'failed' && !said.failed) {
      said.failed = true;
      throw new Error(message);
    }
    return settle(...args);
  }) as typeof settle;
  return said;
}

beforeEach(() => {
  received.length = 0;
  answer = () => ({ status: 200 });
});

describe('delivery worker', () => {
  it('signs with the subscription secret, sends the body once, and settles a 2xx as succeeded', async () => {
    const t = await setUp('ok', [0, 10]);
    try {
      answer = () => ({ status: 204 });
      const before = Date.now();
      const record = await t.deliver();
      expect(record.status).toBe('succeeded');
      expect(received).toHaveLength(1);
      const [message] = received;
      expect(message!.headers['webhook-id']).toBe('evt-1');
      expect(message!.headers['content-type']).toBe('application/json');
      const timestamp = Number(message!.headers['webhook-timestamp']);
      expect(timestamp * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(timestamp * 1000).toBeLessThanOrEqual(Date.now());
      expect(() =>
        new Webhook(t.secret).verify(message!.body, {
          'webhook-id': String(message!.headers['webhook-id']),
          'webhook-timestamp': String(message!.headers['webhook-timestamp']),
          'webhook-signature': String(message!.headers['webhook-signature']),
        }),
      ).not.toThrow();
      expect(message!.body).toBe(JSON.stringify({ type: 'SnapshotCompleted', n: 1 }));
      expect(record.attempts).toHaveLength(1);
      expect(record.attempts[0]).toEqual({
        attempt: 1,
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        statusCode: 204,
        latencyMs: expect.any(Number),
      });
      expect(Date.parse(record.attempts[0]!.at)).toBeGreaterThanOrEqual(before - 1);
      expect(await t.failures()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('retries an answer that is not 2xx on the schedule, logging each attempt and the wait before the next', async () => {
    const t = await setUp('retry', [0, 30, 40]);
    try {
      answer = (call) => (call < 3 ? { status: 503, body: 'busy' } : { status: 200 });
      const record = await t.deliver();
      expect(record.status).toBe('succeeded');
      expect(received).toHaveLength(3);
      expect(record.attempts.map((a) => [a.attempt, a.statusCode, a.error, a.nextAttemptInMs])).toEqual([
        [1, 503, 'HTTP 503: busy', 30],
        [2, 503, 'HTTP 503: busy', 40],
        [3, 200, undefined, undefined],
      ]);
      // The same message every time.
      expect(new Set(received.map((r) => r.headers['webhook-id']))).toEqual(new Set(['evt-1']));
      // One warning per failed attempt, with what comes next; never the secret nor the signature.
      const warnings = t.logs.filter((l) => l.level === 'warn');
      expect(warnings).toEqual(
        [1, 2].map((attempt) => ({
          level: 'warn',
          message: 'webhook delivery attempt failed; retrying',
          fields: {
            subscriptionId: t.subscriptionId,
            eventId: 'evt-1',
            deliveryId: record.id,
            attempt,
            statusCode: 503,
            error: 'HTTP 503: busy',
            nextAttemptAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
          },
        })),
      );
      const [first, second] = record.attempts;
      const nextAt = (i: number) =>
        Date.parse((warnings[i]!.fields as { nextAttemptAt: string }).nextAttemptAt);
      expect(nextAt(0) - Date.parse(first!.at)).toBeGreaterThanOrEqual(30);
      expect(nextAt(1) - Date.parse(second!.at)).toBeGreaterThanOrEqual(40);
      const logged = JSON.stringify(t.logs);
      expect(logged).not.toContain(t.secret);
      expect(logged).not.toContain(t.secret.replace(/^whsec_/, ''));
      for (const r of received) expect(logged).not.toContain(String(r.headers['webhook-signature']));
    } finally {
      await t.close();
    }
  });

  it('a failed attempt that is retried is kept with its BullMQ job as a RetryableDeliveryError (as queue dashboards show it)', async () => {
    const t = await setUp('retry-error', [0, 10]);
    try {
      answer = (call) => (call === 1 ? { status: 503, body: 'busy' } : { status: 200 });
      const record = await t.deliver();
      expect(record.status).toBe('succeeded');
      const job = (await t.deliveries.queue.getJob(record.id))!;
      expect(job.stacktrace).toHaveLength(1);
      expect(job.stacktrace?.[0]).toMatch(/^RetryableDeliveryError: HTTP 503: busy\n\s+at /);
    } finally {
      await t.close();
    }
  });

  it('an error of the worker’s queue is logged with the queue’s name', async () => {
    const t = await setUp('queue-error', [0]);
    try {
      t.worker!.emit('error', new Error('a Lua script failed'));
      expect(t.logs).toEqual([
        {
          level: 'error',
          message: 'queue error',
          fields: { queue: 'webhooks', error: 'a Lua script failed' },
        },
      ]);
    } finally {
      await t.close();
    }
  });

  it('a 300 answer is not a success: it is retried like any answer outside 2xx', async () => {
    const t = await setUp('three-hundred', [0, 10]);
    try {
      answer = (call) => (call === 1 ? { status: 300 } : { status: 200 });
      const record = await t.deliver();
      expect(record.attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
        [1, 300],
        [2, 200],
      ]);
      expect(record.status).toBe('succeeded');
    } finally {
      await t.close();
    }
  });

  it('waits at least as long as Retry-After asks', async () => {
    const t = await setUp('retry-after', [0, 10]);
    try {
      answer = (call) => (call === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 });
      const record = await t.deliver();
      expect(record.status).toBe('succeeded');
      expect(record.attempts[0]).toMatchObject({ statusCode: 429, nextAttemptInMs: 1000 });
      const [first, second] = record.attempts;
      expect(Date.parse(second!.at) - Date.parse(first!.at)).toBeGreaterThanOrEqual(900);
    } finally {
      await t.close();
    }
  });

  it('after the last attempt: settles as failed and appends WebhookDeliveryFailed with the last answer', async () => {
    const t = await setUp('exhausted', [0, 10]);
    try {
      answer = () => ({ status: 500, body: 'broken' });
      const record = await t.deliver();
      expect(record.status).toBe('failed');
      expect(received).toHaveLength(2);
      expect(record.attempts.map((a) => a.nextAttemptInMs)).toEqual([10, undefined]);
      const failures = await t.failures();
      expect(failures).toEqual([
        {
          type: 'WebhookDeliveryFailed',
          subscriptionId: t.subscriptionId,
          deliveryId: record.id,
          eventId: 'evt-1',
          eventType: 'SnapshotCompleted',
          jobId: JOB,
          attempts: 2,
          lastStatusCode: 500,
          lastError: 'HTTP 500: broken',
          occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
        },
      ]);
      expect(t.logs.filter((l) => l.level === 'warn')).toEqual([
        {
          level: 'warn',
          message: 'webhook delivery attempt failed; retrying',
          fields: expect.objectContaining({ attempt: 1, statusCode: 500, nextAttemptAt: expect.any(String) }),
        },
        {
          level: 'warn',
          message: 'webhook delivery failed after its last attempt',
          fields: {
            subscriptionId: t.subscriptionId,
            eventId: 'evt-1',
            deliveryId: record.id,
            attempt: 2,
            statusCode: 500,
            error: 'HTTP 500: broken',
            nextAttemptAt: null,
          },
        },
      ]);
    } finally {
      await t.close();
    }
  });

  it('a failure the log refuses to record on the last attempt is recorded once the log is back, and only then settled (not left pending)', async () => {
    let refusals = 3;
    const store = refusingReports(() => refusals-- > 0);
    const t = await setUp('unreported', [0], { store });
    try {
      answer = () => ({ status: 500 });
      const record = await t.deliver();
      expect({ status: record.status, sent: received.length, refusals }).toEqual({
        status: 'failed',
        sent: 1,
        refusals: -1, // refused three appends, then let the fourth through
      });
      expect(await t.failures()).toEqual([expect.objectContaining({ deliveryId: record.id, attempts: 1 })]);
      expect(t.logs.filter((l) => l.level === 'error').map((l) => l.message)).toEqual(
        Array(3).fill('webhook delivery not ended yet (the event log or Redis failed); trying again'),
      );
    } finally {
      await t.close();
    }
  });

  it('an error of snapcat’s own on the last attempt settles the delivery failed and reports it, not pending for good', async () => {
    const t = await setUp('own-error', [0]);
    try {
      const current = t.subscriptions.current.bind(t.subscriptions);
      t.subscriptions.current = async () => Promise.reject(new Error('the store is unavailable'));
      const job = t.job();
      await t.deliveries.enqueue(job, Date.now(), { commit: 5n, prepare: 5n });
      const record = await until(
        async () => {
          const r = await t.deliveries.get(job.deliveryId);
          return r?.status === 'pending' ? undefined : r;
        },
        10_000,
        'settled',
      );
      t.subscriptions.current = current;
      expect({ status: record.status, sent: received.length }).toEqual({ status: 'failed', sent: 0 });
      expect(await t.deliveries.oldestUnsettled()).toBeUndefined();
      expect(await t.failures()).toEqual([
        expect.objectContaining({
          deliveryId: job.deliveryId,
          lastError: 'snapcat could not attempt it: the store is unavailable',
        }),
      ]);
    } finally {
      await t.close();
    }
  });

  it('a delivery that got no answer and has no job: the failure says so, without a status code or a job', async () => {
    const t = await setUp('no-answer', [0]);
    try {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      await t.subscriptions.execute({
        type: 'UpdateSubscription',
        subscriptionId: t.subscriptionId,
        url: `http://127.0.0.1:${port}/gone`,
      });
      const record = await t.deliver({ eventType: 'JobRegistered', jobId: undefined });
      expect(record.status).toBe('failed');
      expect(record.attempts[0]).not.toHaveProperty('statusCode');
      expect(record.attempts[0]!.error).toMatch(/ECONNREFUSED/);
      const [failure] = await t.failures();
      expect(failure).not.toHaveProperty('lastStatusCode');
      expect(failure).not.toHaveProperty('jobId');
      expect(failure!.lastError).toMatch(/ECONNREFUSED/);
      // Nor has its log line a status code: no field at all, not one left undefined for the logger to render.
      const [line] = t.logs.filter((l) => l.level === 'warn');
      expect(line!.message).toBe('webhook delivery failed after its last attempt');
      expect(line!.fields).not.toHaveProperty('statusCode');
      expect(line!.fields).toMatchObject({ error: expect.stringMatching(/ECONNREFUSED/) });
    } finally {
      await t.close();
    }
  });

  it('failures of WebhookTest and WebhookDeliveryFailed messages are not reported (no ping-pong)', async () => {
    const t = await setUp('unreported', [0]);
    try {
      answer = () => ({ status: 500 });
      expect((await t.deliver({ eventType: 'WebhookTest' })).status).toBe('failed');
      expect((await t.deliver({ eventType: 'WebhookDeliveryFailed' })).status).toBe('failed');
      expect(await t.failures()).toEqual([]);
      expect((await t.deliver({ eventType: 'SnapshotFailed' })).status).toBe('failed');
      expect((await t.failures()).map((f) => f.eventType)).toEqual(['SnapshotFailed']);
    } finally {
      await t.close();
    }
  });

  it('a 410 disables the subscription (GONE) and settles the delivery as gone, without retrying', async () => {
    const t = await setUp('gone', [0, 10, 10]);
    try {
      answer = () => ({ status: 410 });
      const record = await t.deliver();
      expect(record.status).toBe('gone');
      expect(received).toHaveLength(1);
      expect(record.attempts).toEqual([
        expect.objectContaining({ attempt: 1, statusCode: 410, error: 'HTTP 410' }),
      ]);
      expect(record.attempts[0]).not.toHaveProperty('nextAttemptInMs');
      const subscription = (await t.subscriptions.current()).get(t.subscriptionId)!;
      expect(subscription).toMatchObject({ enabled: false, disabledReason: 'GONE' });
      expect(t.logs).toContainEqual({
        level: 'warn',
        message: 'webhook receiver answered 410 Gone; subscription disabled',
        fields: expect.objectContaining({ subscriptionId: t.subscriptionId, attempt: 1, statusCode: 410 }),
      });
      expect(await t.failures()).toEqual([]);
      // Disabled: the next delivery is skipped, nothing is sent.
      expect((await t.deliver()).status).toBe('skipped');
      expect(received).toHaveLength(1);
    } finally {
      await t.close();
    }
  });

  it('a deleted subscription: skipped, nothing sent, no attempt logged', async () => {
    const t = await setUp('deleted', [0]);
    try {
      await t.subscriptions.execute({ type: 'DeleteSubscription', subscriptionId: t.subscriptionId });
      const record = await t.deliver();
      expect(record.status).toBe('skipped');
      expect(record.attempts).toEqual([]);
      expect(received).toHaveLength(0);
    } finally {
      await t.close();
    }
  });

  it('a secret sealed with another key is not sent unsigned: each attempt says why', async () => {
    const t = await setUp('other-key', [0, 10], { secretBox: new SecretBox('o'.repeat(32)) });
    try {
      const record = await t.deliver();
      expect(record.status).toBe('failed');
      expect(received).toHaveLength(0);
      expect(record.attempts).toHaveLength(2);
      for (const attempt of record.attempts) {
        expect(attempt.error).toBe(
          'the subscription secret cannot be opened: was SNAPCAT_SECRET_KEY changed? (not sent)',
        );
        expect(attempt.latencyMs).toBe(0);
      }
    } finally {
      await t.close();
    }
  });
});

// How a delivery ends once its outcome is known, when a step of its end fails (a review of session 56's fix
// found each of these wrong): the outcome stands, a report is appended once, nothing is sent again.
describe('the end of a delivery whose outcome is known', () => {
  const lines = (t: { logs: { level: string; message: string }[] }) =>
    t.logs.map((l) => `${l.level}: ${l.message}`);

  it('a delivery whose failure report waits for the log is not dropped by a disable, delete or 410: it ends failed, reported', async () => {
    let logDown = true;
    const t = await setUp('drop-unreported', [0], {
      store: refusingReports(() => logDown),
      reportRetryMs: 2000,
    });
    try {
      answer = () => ({ status: 500 });
      const job = t.job();
      await t.deliveries.enqueue(job, Date.now(), { commit: 5n, prepare: 5n });
      // Its only attempt failed (500); the report was refused: the job waits, delayed, with its ending.
      await until(
        async () => {
          const j = await t.deliveries.queue.getJob(job.deliveryId);
          const ending = j && (j.data as { ending?: unknown }).ending;
          return ending && (await j.getState()) === 'delayed' ? true : undefined;
        },
        10_000,
        'its end delayed',
      );
      expect({ sent: received.length, logs: lines(t) }).toEqual({
        sent: 1,
        logs: [
          'warn: webhook delivery failed after its last attempt',
          'error: webhook delivery not ended yet (the event log or Redis failed); trying again',
        ],
      });
      // The subscription is disabled now (or deleted, or another delivery got a 410): what is queued is dropped.
      const dropped = await t.deliveries.dropQueued(t.subscriptionId, Date.now());
      logDown = false; // the log is back
      await sleep(3000);
      const record = await t.deliveries.get(job.deliveryId);
      expect({ dropped, status: record?.status, failures: (await t.failures()).length }).toEqual({
        dropped: 0, // its attempts are over: only its report waits
        status: 'failed',
        failures: 1,
      });
    } finally {
      await t.close();
    }
  });

  it('a settle that fails once after the report was appended: one report, with the receiver’s answer', async () => {
    const t = await setUp('double-report', [0]);
    failFirstFailedSettle(t.deliveries, "READONLY You can't write against a read only replica.");
    try {
      answer = () => ({ status: 500 });
      const record = await t.deliver();
      const failures = await t.failures();
      expect({
        status: record.status,
        sent: received.length,
        failures: failures.map((f) => f.lastError),
      }).toEqual({
        status: 'failed',
        sent: 1,
        failures: ['HTTP 500'],
      });
    } finally {
      await t.close();
    }
  });

  it('a report appended whose settle and job update then both fail: the failed job ends with that report, not a second one', async () => {
    const t = await setUp('report-kept-nowhere', [0]);
    const settle = failFirstFailedSettle(t.deliveries, 'Connection is closed.');
    // Redis lost just then: the end left (`ending`) cannot be kept in the job either, so the processor
    // throws and BullMQ fails the last attempt; the worker's `failed` listener ends it from the job as it is.
    const updateData = Job.prototype.updateData;
    Job.prototype.updateData = function (this: Job, data: EndingDelivery) {
      if (data.ending && settle.failed && !updateFailed) {
        updateFailed = true;
        return Promise.reject(new Error('Connection is closed.'));
      }
      return updateData.call(this, data);
    };
    let updateFailed = false;
    try {
      answer = () => ({ status: 500 });
      const record = await t.deliver();
      const failures = await t.failures();
      expect({
        status: record.status,
        settleFailed: settle.failed,
        updateFailed,
        failures: failures.map((f) => f.lastError),
      }).toEqual({ status: 'failed', settleFailed: true, updateFailed: true, failures: ['HTTP 500'] });
    } finally {
      Job.prototype.updateData = updateData;
      await t.close();
    }
  });

  it('a last attempt the receiver accepted (200) whose attempt record fails: succeeded, nothing reported', async () => {
    const t = await setUp('accepted-failed', [0]);
    t.deliveries.recordAttempt = async () => Promise.reject(new Error('Connection is closed.'));
    try {
      const record = await t.deliver();
      expect({ status: record.status, sent: received.length, failures: await t.failures() }).toEqual({
        status: 'succeeded',
        sent: 1,
        failures: [],
      });
    } finally {
      await t.close();
    }
  });

  it('a last attempt answered 410 whose drop of queued deliveries fails: gone, nothing reported', async () => {
    const t = await setUp('gone-failed', [0]);
    t.deliveries.dropQueued = async () => Promise.reject(new Error('Connection is closed.'));
    try {
      answer = () => ({ status: 410 });
      const job = t.job();
      await t.deliveries.enqueue(job, Date.now());
      await sleep(1500);
      const record = await t.deliveries.get(job.deliveryId);
      expect({ status: record?.status, sent: received.length, failures: await t.failures() }).toEqual({
        status: 'gone',
        sent: 1,
        failures: [],
      });
    } finally {
      await t.close();
    }
  });
});

describe('deliveries BullMQ failed on its own', () => {
  // Checks for stalled jobs at most every stalledInterval, whichever worker checked last.
  const quick = (t: Awaited<ReturnType<typeof setUp>>) => ({
    connection: t.connection,
    prefix: t.prefix,
    lockDuration: 1000,
    stalledInterval: 300,
  });
  /** A worker takes the delivery and is lost while sending it (its lock no longer renewed, as when killed). */
  async function loseAWorker(t: Awaited<ReturnType<typeof setUp>>) {
    const lost = new Worker(WEBHOOK_QUEUE, () => new Promise<void>(() => undefined), quick(t));
    await until(async () => (await t.deliveries.queue.getActiveCount()) === 1 || undefined, 5_000, 'taken');
    await lost.close(true);
  }
  /** ...and a worker with no listener, allowing no stall, takes it next: BullMQ fails it, no processor called. */
  async function loseTheWorker(t: Awaited<ReturnType<typeof setUp>>) {
    await loseAWorker(t);
    const checker = new Worker(WEBHOOK_QUEUE, async () => undefined, { ...quick(t), maxStalledCount: 0 });
    await until(async () => (await t.deliveries.queue.getFailedCount()) === 1 || undefined, 10_000, 'failed');
    await checker.close();
  }
  const position = { commit: 41n, prepare: 41n };
  /** A delivery queued whose first attempt the receiver answered 200, recorded (not settled). */
  async function queuedAnswered200(t: Awaited<ReturnType<typeof setUp>>): Promise<DeliveryJob> {
    const job = t.job();
    await t.deliveries.enqueue(job, Date.now(), position);
    await t.deliveries.recordAttempt(
      job.deliveryId,
      { attempt: 1, at: new Date().toISOString(), statusCode: 200, latencyMs: 3 },
      Date.now(),
    );
    return job;
  }
  /** A delivery queued, then failed by BullMQ as its worker was lost (loseTheWorker). */
  async function failedByBullMq(t: Awaited<ReturnType<typeof setUp>>): Promise<DeliveryJob> {
    const job = t.job();
    await t.deliveries.enqueue(job, Date.now(), position);
    await loseTheWorker(t);
    return job;
  }

  it('a delivery whose worker was lost more often than BullMQ allows ends failed and reported, and stops holding the dispatcher’s checkpoint', async () => {
    const t = await setUp('lost-worker', [0, 0], { worker: false });
    try {
      const job = await failedByBullMq(t);
      // BullMQ told no processor: the delivery was pending for good, and refused a redelivery.
      const before = (await t.deliveries.get(job.deliveryId))!;
      expect(before.status).toBe('pending');
      expect(await t.deliveries.redeliver(before, Date.now())).toBe(false);
      expect(await t.deliveries.oldestUnsettled()).toEqual(position);

      expect(await endDeliveriesFailedByBullMq(t.ending)).toBe(1);
      const after = (await t.deliveries.get(job.deliveryId))!;
      expect(after.status).toBe('failed');
      expect(await t.deliveries.oldestUnsettled()).toBeUndefined();
      const failures = await t.failures();
      expect(failures).toEqual([
        expect.objectContaining({
          type: 'WebhookDeliveryFailed',
          deliveryId: job.deliveryId,
          subscriptionId: t.subscriptionId,
          lastError:
            'BullMQ failed its job before snapcat could end it (job stalled more than allowable limit)',
        }),
      ]);
      expect(failures[0]).not.toHaveProperty('lastStatusCode');
      expect(failures[0]!.attempts).toBe(0); // none was sent
      // Once: a later sweep finds nothing; the delivery may be sent again.
      expect(await endDeliveriesFailedByBullMq(t.ending)).toBe(0);
      expect(await t.failures()).toHaveLength(1);
      // Its job removed (the sweep's window of the newest failures moves on), the event replayed does not
      // queue it again: it settled.
      await t.deliveries.enqueue(job, Date.now(), position);
      expect(await t.deliveries.queue.getJobCounts('failed', 'waiting')).toEqual({ failed: 0, waiting: 0 });
      expect(await t.deliveries.redeliver(after, Date.now())).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('the worker that takes a delivery BullMQ failed ends it at once: failed and reported, not pending', async () => {
    const t = await setUp('lost-listened', [0, 0], { worker: false });
    try {
      const job = t.job();
      await t.deliveries.enqueue(job, Date.now(), position);
      await loseAWorker(t);
      t.start({ maxStalledCount: 0 }); // its stalled check fails the job, and it takes the job next
      const record = await until(
        async () => {
          const r = await t.deliveries.get(job.deliveryId);
          return r?.status === 'pending' ? undefined : r;
        },
        15_000,
        'settled',
      );
      expect({ status: record.status, sent: received.length }).toEqual({ status: 'failed', sent: 0 });
      expect(await t.failures()).toEqual([
        expect.objectContaining({
          deliveryId: job.deliveryId,
          attempts: 0,
          lastError: expect.stringContaining('stalled'),
        }),
      ]);
      expect(await t.deliveries.oldestUnsettled()).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  it('an end begun elsewhere (its report kept in the job, the log refusing it) is finished with that report: one event, its id', async () => {
    let refusing = true;
    const t = await setUp('lost-kept', [0], { worker: false, store: refusingReports(() => refusing) });
    try {
      const job = await failedByBullMq(t);
      expect(await endDeliveriesFailedByBullMq(t.ending)).toBe(0); // the report refused: kept in the job
      const kept = ((await t.deliveries.queue.getJob(job.deliveryId))!.data as EndingDelivery).ending;
      expect(kept).toEqual({ status: 'failed', report: expect.objectContaining({ id: expect.any(String) }) });
      expect((await t.deliveries.get(job.deliveryId))!.status).toBe('pending');
      refusing = false;
      expect(await endDeliveriesFailedByBullMq(t.ending)).toBe(1);
      const events = await t.store.readStream(DELIVERY_FAILURES_STREAM, { fromRevision: 0n, maxCount: 10 });
      expect(events.map((e) => e.id)).toEqual([(kept as { report: { id: string } }).report.id]);
    } finally {
      await t.close();
    }
  });

  it('a delivery whose subscription was disabled meanwhile ends skipped, not reported', async () => {
    const t = await setUp('lost-disabled', [0], { worker: false });
    try {
      const job = await failedByBullMq(t);
      await t.subscriptions.execute({ type: 'DisableGone', subscriptionId: t.subscriptionId });
      expect(await endDeliveriesFailedByBullMq(t.ending)).toBe(1);
      expect((await t.deliveries.get(job.deliveryId))!.status).toBe('skipped');
      expect(await t.failures()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('an earlier round’s 2xx does not end a redelivery whose worker was lost: failed, reported', async () => {
    const t = await setUp('lost-redelivery', [0], { worker: false });
    try {
      const job = await queuedAnswered200(t);
      await t.deliveries.settle(job, 'succeeded', Date.now());
      await t.deliveries.queue.obliterate({ force: true }); // round 0's job done and gone
      await new Promise((r) => setTimeout(r, 5));
      expect(await t.deliveries.redeliver((await t.deliveries.get(job.deliveryId))!, Date.now())).toBe(true);
      await loseTheWorker(t);
      expect(await endDeliveriesFailedByBullMq(t.ending)).toBe(1);
      expect((await t.deliveries.get(job.deliveryId))!.status).toBe('failed');
      expect(await t.failures()).toEqual([
        expect.objectContaining({ deliveryId: job.deliveryId, attempts: 0 }),
      ]);
    } finally {
      await t.close();
    }
  });

  it('a delivery whose last attempt was answered 2xx before its job failed ends succeeded, not reported', async () => {
    const t = await setUp('lost-after-200', [0], { worker: false });
    try {
      // The receiver answered 200 and the attempt was recorded; then the worker was lost before settling.
      const job = await queuedAnswered200(t);
      await loseTheWorker(t);

      expect(await endDeliveriesFailedByBullMq(t.ending)).toBe(1);
      expect((await t.deliveries.get(job.deliveryId))!.status).toBe('succeeded');
      expect(await t.failures()).toEqual([]);
      expect(await t.deliveries.oldestUnsettled()).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  it('a failed job whose delivery settled meanwhile, or was sent again by a redelivery, is removed: nothing reported', async () => {
    const t = await setUp('lost-settled', [0], { worker: false });
    try {
      const job = await failedByBullMq(t);
      // Its subscription deleted: every pending delivery of it skipped; then sent again by a redelivery.
      await t.deliveries.settle(job, 'skipped', Date.now());
      expect(await t.deliveries.redeliver((await t.deliveries.get(job.deliveryId))!, Date.now())).toBe(true);

      expect(await endDeliveriesFailedByBullMq(t.ending)).toBe(0);
      expect(await t.deliveries.queue.getFailedCount()).toBe(0);
      expect((await t.deliveries.get(job.deliveryId))!.status).toBe('pending'); // the redelivery's
      expect(await t.failures()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
