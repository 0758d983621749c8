import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import IORedis from 'ioredis';
import type { Worker } from 'bullmq';
import { MemoryEventStore } from '@snapcat/event-store';
import {
  DELIVERY_FAILURES_STREAM,
  Deliveries,
  SecretBox,
  SubscriptionRepository,
  newWebhookSecret,
  type DeliveryJob,
} from '../src';
import { startDeliveryWorker } from '../src/delivery-worker';
import { deleteKeys } from '../../../test/support/redis';
import { until, sleep } from '../../../test/support/wait';

let server: Server;
let url: string;
let sent = 0;
let status = 500;
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      sent += 1;
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
afterAll(() => redis.disconnect());
const box = new SecretBox('k'.repeat(32));

async function setUp(name: string, store: MemoryEventStore, reportRetryMs = 100) {
  const prefix = `snapcat-test-wh-endings-${name}-${process.pid}-${Date.now().toString(36)}`;
  const subscriptions = new SubscriptionRepository(store, () => Date.now());
  const subscriptionId = 'wh_review0000001';
  await subscriptions.execute({
    type: 'CreateSubscription',
    subscriptionId,
    url,
    eventTypes: [],
    jobIds: [],
    description: '',
    secret: box.seal(newWebhookSecret()),
  });
  const connection = { host: '127.0.0.1', port: 6379 };
  const deliveries = new Deliveries(redis, connection, prefix, 1);
  const logs: string[] = [];
  const logFn = (level: string) => (message: string) => void logs.push(`${level}: ${message}`);
  const worker: Worker = startDeliveryWorker({
    connection,
    prefix,
    store,
    subscriptions,
    deliveries,
    box,
    scheduleMs: [0],
    timeoutMs: 2000,
    allowPrivate: true,
    concurrency: 1,
    reportRetryMs,
    now: () => Date.now(),
    log: { info: logFn('info'), warn: logFn('warn'), error: logFn('error') },
  });
  const job: DeliveryJob = {
    deliveryId: `evt-1-${subscriptionId}`,
    subscriptionId,
    messageId: 'evt-1',
    eventType: 'SnapshotCompleted',
    body: '{"type":"SnapshotCompleted"}',
  };
  return {
    prefix,
    subscriptions,
    subscriptionId,
    deliveries,
    worker,
    logs,
    job,
    failures: async () =>
      (await store.readStream(DELIVERY_FAILURES_STREAM, { fromRevision: 0n, maxCount: 100 })).map(
        (e) => e.data as Record<string, unknown>,
      ),
    async close() {
      await worker.close();
      await deliveries.close();
      await deleteKeys(prefix);
    },
  };
}

// How a delivery ends once its outcome is known, when a step of its end fails (a review of session 56's fix
// found each of these wrong): the outcome stands, a report is appended once, nothing is sent again.
describe('the end of a delivery whose outcome is known', () => {
  beforeEach(() => {
    sent = 0;
    status = 500;
  });

  it('a delivery whose failure report waits for the log is not dropped by a disable, delete or 410: it ends failed, reported', async () => {
    const store = new MemoryEventStore();
    let logDown = true;
    const append = store.append.bind(store);
    store.append = (async (stream, ...rest) => {
      if (stream === DELIVERY_FAILURES_STREAM && logDown) throw new Error('event store unavailable');
      return append(stream, ...rest);
    }) as typeof store.append;
    const t = await setUp('drop-unreported', store, 2000);
    try {
      await t.deliveries.enqueue(t.job, Date.now(), { commit: 5n, prepare: 5n });
      // its only attempt failed (500); the report was refused: the job waits, delayed, with `unreported`
      await until(
        async () => {
          const j = await t.deliveries.queue.getJob(t.job.deliveryId);
          const ending = j && (j.data as { ending?: unknown }).ending;
          return ending && (await j.getState()) === 'delayed' ? true : undefined;
        },
        10_000,
        'its end delayed',
      );
      expect({ sent, logs: t.logs }).toEqual({
        sent: 1,
        logs: [
          'warn: webhook delivery failed after its last attempt',
          'error: webhook delivery not ended yet (the event log or Redis failed); trying again',
        ],
      });
      // the subscription is disabled now (or deleted, or another delivery got a 410): what is queued is dropped
      const dropped = await t.deliveries.dropQueued(t.subscriptionId, Date.now());
      logDown = false; // the log is back
      await sleep(3000);
      const record = await t.deliveries.get(t.job.deliveryId);
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
    const store = new MemoryEventStore();
    const t = await setUp('double-report', store);
    const settle = t.deliveries.settle.bind(t.deliveries);
    let settleErrors = 1;
    t.deliveries.settle = (async (...args: Parameters<typeof settle>) => {
      if (args[1] === 'failed' && settleErrors > 0) {
        settleErrors -= 1;
        throw new Error("READONLY You can't write against a read only replica.");
      }
      return settle(...args);
    }) as typeof settle;
    try {
      await t.deliveries.enqueue(t.job, Date.now());
      const record = await until(
        async () => {
          const r = await t.deliveries.get(t.job.deliveryId);
          return r && r.status !== 'pending' ? r : undefined;
        },
        10_000,
        'settled',
      );
      const failures = await t.failures();
      expect({ status: record.status, sent, failures: failures.map((f) => f.lastError) }).toEqual({
        status: 'failed',
        sent: 1,
        failures: ['HTTP 500'],
      });
    } finally {
      await t.close();
    }
  });

  it('a last attempt the receiver accepted (200) whose attempt record fails: succeeded, nothing reported', async () => {
    status = 200;
    const store = new MemoryEventStore();
    const t = await setUp('accepted-failed', store);
    t.deliveries.recordAttempt = async () => Promise.reject(new Error('Connection is closed.'));
    try {
      await t.deliveries.enqueue(t.job, Date.now());
      const record = await until(
        async () => {
          const r = await t.deliveries.get(t.job.deliveryId);
          return r && r.status !== 'pending' ? r : undefined;
        },
        10_000,
        'settled',
      );
      expect({ status: record.status, sent, failures: (await t.failures()).map((f) => f.lastError) }).toEqual(
        {
          status: 'succeeded',
          sent: 1,
          failures: [],
        },
      );
    } finally {
      await t.close();
    }
  });

  it('a last attempt answered 410 whose drop of queued deliveries fails: gone, nothing reported', async () => {
    status = 410;
    const store = new MemoryEventStore();
    const t = await setUp('gone-failed', store);
    t.deliveries.dropQueued = async () => Promise.reject(new Error('Connection is closed.'));
    try {
      await t.deliveries.enqueue(t.job, Date.now());
      await sleep(1500);
      const record = await t.deliveries.get(t.job.deliveryId);
      expect({
        status: record?.status,
        sent,
        failures: (await t.failures()).map((f) => f.lastError),
      }).toEqual({
        status: 'gone',
        sent: 1,
        failures: [],
      });
    } finally {
      await t.close();
    }
  });
});
