import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { jobStream } from '@snapcat/application';
import { MemoryEventStore } from '@snapcat/event-store';
import { loadConfig } from '@snapcat/runtime';
import { openWebhooks, webhooksDisabledReason } from '../src';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { eventually } from '../../../test/support/wait';

// openWebhooks wires what a process needs from the configuration: refused without a key, the whole
// delivery path (dispatcher, queue, worker, receiver) with one.
const KEY = 'test-secret-key-of-at-least-32-characters';
const env = (extra: Record<string, string>) =>
  loadConfig({ SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379', ...extra });

function logger() {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => lines.push({ level, message });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

describe('openWebhooks', () => {
  it('is off without SNAPCAT_SECRET_KEY outside development, and says why once', () => {
    const config = env({});
    const reason =
      'webhooks are disabled: set SNAPCAT_SECRET_KEY (32+ characters) to seal subscription secrets; ' +
      'only SNAPCAT_ENV=development may run without one';
    expect(webhooksDisabledReason(config)).toBe(reason);
    const { lines, log } = logger();
    expect(openWebhooks(config, testPrefix('wh-open-off'), new MemoryEventStore(), log)).toBeUndefined();
    expect(lines).toEqual([{ level: 'warn', message: reason }]);
    expect(webhooksDisabledReason(env({ SNAPCAT_SECRET_KEY: KEY }))).toBeUndefined();
  });

  it('in development without a key: runs, sealed with the public development key, and warns so', async () => {
    const { lines, log } = logger();
    const webhooks = openWebhooks(
      env({ SNAPCAT_ENV: 'development' }),
      testPrefix('wh-open-dev'),
      new MemoryEventStore(),
      log,
    );
    try {
      expect(webhooks).toBeDefined();
      expect(lines).toEqual([
        {
          level: 'warn',
          message: 'webhook secrets are sealed with the public development key (SNAPCAT_ENV=development)',
        },
      ]);
    } finally {
      await webhooks?.close();
    }
  });

  it('with a key: the service, and on startDelivery the dispatcher and worker that deliver signed messages', async () => {
    const prefix = testPrefix('wh-open');
    const received: { body: string; headers: Record<string, string> }[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({
          body,
          headers: {
            'webhook-id': String(req.headers['webhook-id']),
            'webhook-timestamp': String(req.headers['webhook-timestamp']),
            'webhook-signature': String(req.headers['webhook-signature']),
          },
        });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const store = new MemoryEventStore();
    const { lines, log } = logger();
    const webhooks = openWebhooks(
      env({
        SNAPCAT_SECRET_KEY: KEY,
        SNAPCAT_WEBHOOK_ALLOW_PRIVATE: 'true',
        SNAPCAT_WEBHOOK_CHECKPOINT_EVERY: 'PT0.1S',
      }),
      prefix,
      store,
      log,
    )!;
    try {
      expect(lines).toEqual([]);
      expect(webhooks.dispatcher).toBeUndefined();
      const created = await webhooks.service.create({
        url: `http://127.0.0.1:${port}/hook`,
        eventTypes: [],
        jobIds: [],
        description: '',
      });
      webhooks.startDelivery();
      expect(webhooks.dispatcher).toBeDefined();
      const jobId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
      const id = randomUUID();
      const data = { type: 'JobRegistered', jobId, occurredAt: new Date().toISOString() };
      await store.append(jobStream(jobId), [{ id, type: data.type, data }], 'any');
      await eventually(() => received.length === 1, 15_000, 'the message delivered');
      expect(received[0]!.headers['webhook-id']).toBe(id);
      expect(() => new Webhook(created.secret).verify(received[0]!.body, received[0]!.headers)).not.toThrow();
      await eventually(
        async () => (await webhooks.service.deliveries(created.id, 5))[0]?.status === 'succeeded',
        10_000,
        'the delivery settled',
      );
    } finally {
      await webhooks.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await deleteKeys(prefix);
    }
  });

  it('an error of the delivery queue is logged with the queue’s name', async () => {
    const lines: { message: string; fields?: object }[] = [];
    const at = (message: string, fields?: object) => lines.push({ message, ...(fields ? { fields } : {}) });
    const webhooks = openWebhooks(
      env({ SNAPCAT_SECRET_KEY: KEY }),
      testPrefix('wh-open-queue-error'),
      new MemoryEventStore(),
      { info: at, warn: at, error: at },
    )!;
    try {
      webhooks.deliveries.queue.emit('error', new Error('a Lua script failed'));
      expect(lines).toEqual([
        { message: 'queue error', fields: { queue: 'webhooks', error: 'a Lua script failed' } },
      ]);
    } finally {
      await webhooks.close();
    }
  });

  it('close() closes every Redis connection it opened: its two, and the delivery worker’s', async () => {
    // The connections are told apart from everyone else's on the shared Redis by name: ours by the URL's
    // connectionName, BullMQ's blocking connection of the worker by the prefix it names it after.
    const prefix = testPrefix('wh-open-close');
    const connectionName = `${prefix}-connection`;
    const observer = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    const open = async () =>
      String(await observer.client('LIST'))
        .split('\n')
        .map((line) => / name=(\S*)/.exec(line)?.[1] ?? '')
        .filter((name) => name === connectionName || name.startsWith(`${prefix}:`));
    const { log } = logger();
    const webhooks = openWebhooks(
      env({
        SNAPCAT_REDIS_URL: `redis://127.0.0.1:6379?connectionName=${connectionName}`,
        SNAPCAT_SECRET_KEY: KEY,
      }),
      prefix,
      new MemoryEventStore(),
      log,
    )!;
    try {
      webhooks.startDelivery();
      await eventually(() => webhooks.dispatcher!.active, 10_000, 'the dispatcher active');
      await eventually(async () => (await open()).length === 3, 10_000, 'three connections open');
      expect((await open()).filter((name) => name === connectionName)).toHaveLength(2);
      await webhooks.close();
      await eventually(async () => (await open()).length === 0, 5000, 'every connection closed');
    } finally {
      observer.disconnect();
      await deleteKeys(prefix);
    }
  });
});
