import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { newJobId } from './support/ids';
import { startReceiver } from './support/receiver';
import { startRedisServer } from './support/redis';
import { client, startService } from './support/service';
import { eventually, sleep } from './support/wait';

describe('webhooks: Redis wiped while deliveries wait (test-owned redis-server)', () => {
  test('FLUSHALL loses the queue, the position and the delivery log; the durable checkpoint brings every event back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-webhooks-wipe-'));
    const redis = await startRedisServer();
    const service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'root'),
      SNAPCAT_REDIS_URL: redis.url,
      SNAPCAT_SECRET_KEY: 'test-secret-key-of-at-least-32-characters',
      SNAPCAT_WEBHOOK_ALLOW_PRIVATE: 'true',
      // Long enough that nothing is exhausted before the wipe.
      SNAPCAT_WEBHOOK_RETRY_SCHEDULE: 'PT0S,PT5S,PT5S,PT5S,PT5S,PT5S,PT5S,PT5S',
      SNAPCAT_WEBHOOK_CHECKPOINT_EVERY: 'PT0.5S',
    });
    const r = await startReceiver();
    try {
      const api = client(service.url);
      const created = await api.post('/webhooks', { url: r.url });
      r.secrets.push(created.body.secret);
      // Delivered before the wipe, and behind the durable checkpoint by then: not sent again after it.
      const earlier = newJobId();
      await api.put(`/jobs/${earlier}`, { tasks: ['a'] });
      await eventually(() => r.accepted().length === 1, 10_000);
      await sleep(1500);
      await r.down();
      const jobId = newJobId();
      expect((await api.put(`/jobs/${jobId}`, { tasks: ['a'] })).status).toBeLessThan(300);
      for (let i = 0; i < 5; i++) {
        const t = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
        await api.post(`/jobs/${jobId}/snapshots/${t.body.snapshotId}/acks`, { taskId: 'a' });
      }
      const events = (await api.get(`/jobs/${jobId}/events`)).body.events as { eventId: string }[];
      await sleep(2000); // first attempts failed (receiver down); durable checkpoints written meanwhile
      const wipe = new IORedis(redis.url);
      await wipe.flushall();
      wipe.disconnect();
      await r.up();
      await eventually(() => events.every((e) => r.accepted().some((m) => m.id === e.eventId)), 30_000);
      expect(r.accepted().every((m) => m.verifiedWith.length === 1)).toBe(true);
      expect(service.logs.join('\n')).toContain('webhook dispatcher resumes from its durable checkpoint');
      expect(r.accepted().filter((m) => m.payload.data.jobId === earlier)).toHaveLength(1);
    } finally {
      await service.stop('SIGKILL');
      await r.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('webhooks: the secret key changed', () => {
  test('deliveries are not sent unsigned: each attempt says the secret cannot be opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-webhooks-key-'));
    const env = {
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'root'),
      SNAPCAT_WEBHOOK_ALLOW_PRIVATE: 'true',
      SNAPCAT_WEBHOOK_RETRY_SCHEDULE: 'PT0S,PT0.2S',
    };
    const r = await startReceiver();
    let service = await startService({
      ...env,
      SNAPCAT_SECRET_KEY: 'the-first-key-of-at-least-32-characters',
    });
    try {
      const created = await client(service.url).post('/webhooks', { url: r.url });
      await service.stop('SIGTERM');
      service = await startService({ ...env, SNAPCAT_SECRET_KEY: 'another-key-of-at-least-32-characters!!' });
      const api = client(service.url);
      await api.put(`/jobs/${newJobId()}`, { tasks: ['a'] });
      // The JobRegistered delivery (its failure is then reported as a WebhookDeliveryFailed delivery, newer).
      const registered = async () =>
        (
          (await api.get(`/webhooks/${created.body.id}/deliveries`)).body.deliveries as {
            eventType: string;
            status: string;
          }[]
        ).find((d) => d.eventType === 'JobRegistered');
      await eventually(async () => (await registered())?.status === 'failed', 10_000);
      const delivery = (await registered()) as unknown as { attempts: { error: string }[] };
      expect(delivery.attempts).toHaveLength(2);
      expect(delivery.attempts[0]!.error).toContain('SNAPCAT_SECRET_KEY');
      expect(r.calls).toBe(0);
    } finally {
      await service.stop('SIGKILL');
      await r.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('webhooks: guards', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-webhooks-guard-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a URL to 127.0.0.1 (or another private address) is refused without SNAPCAT_WEBHOOK_ALLOW_PRIVATE', async () => {
    const service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'a.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'root-a'), // a catalogue's roots are its own (decision 0044)
      SNAPCAT_SECRET_KEY: 'test-secret-key-of-at-least-32-characters',
    });
    try {
      const api = client(service.url);
      for (const url of [
        'http://127.0.0.1:9/hook',
        'http://localhost:9/hook',
        'http://10.1.2.3/hook',
        'http://169.254.169.254/latest/meta-data',
        'http://[::1]:9/hook',
        'http://[::ffff:127.0.0.1]/hook',
      ]) {
        const res = await api.post('/webhooks', { url });
        expect(res.status).toBe(400);
        expect(res.body.errors).toEqual([
          expect.objectContaining({ field: 'body.url', rule: 'public-address' }),
        ]);
      }
      expect((await api.get('/webhooks')).body.subscriptions).toEqual([]);
    } finally {
      await service.stop('SIGKILL');
    }
  });

  test('without SNAPCAT_SECRET_KEY outside development, webhooks do not start and the service says why', async () => {
    const service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'b.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'root-b'), // a catalogue's roots are its own (decision 0044)
      SNAPCAT_SECRET_KEY: '',
    });
    try {
      const res = await fetch(`${service.url}/api/v1/webhooks`);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      // A configuration to change, not a moment's unavailability: no retry within the second.
      expect(res.headers.get('retry-after')).toBe('3600');
      // A method no webhook route serves is the 405 it is with webhooks on, not this 503.
      expect((await fetch(`${service.url}/api/v1/webhooks`, { method: 'DELETE' })).status).toBe(405);
      const problem = await res.json();
      expect(problem.detail).toContain('SNAPCAT_SECRET_KEY');
      expect(service.logs.join('\n')).toContain('webhooks are disabled: set SNAPCAT_SECRET_KEY');
      // The rest of the service runs.
      expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    } finally {
      await service.stop('SIGKILL');
    }
  });
});
