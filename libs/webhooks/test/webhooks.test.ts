import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { MemoryEventStore } from '@snapcat/event-store';
import {
  SecretBox,
  SubscriptionRepository,
  assertPublicUrl,
  isPrivateAddress,
  newWebhookSecret,
  webhookHeaders,
  webhookJsonSchemaFiles,
} from '../src';

describe('webhook adapters', () => {
  test('signatures verify with the standardwebhooks reference package, with every key given', () => {
    const a = newWebhookSecret();
    const b = newWebhookSecret();
    const body = JSON.stringify({
      type: 'SnapshotCompleted',
      timestamp: '2026-11-24T10:00:00.000Z',
      data: { x: 1 },
    });
    const now = Math.floor(Date.now() / 1000);
    const headers = webhookHeaders('5d0f0b8e-8f4e-4a39-9a0e-3d0f2f0c2a11', now, body, [a, b]);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(a).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(b).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow();
    expect(() => new Webhook(a).verify(`${body} `, headers)).toThrow();
    // Our signature is the reference one, byte for byte.
    const reference = new Webhook(a).sign(headers['webhook-id'], new Date(now * 1000), body);
    expect(webhookHeaders(headers['webhook-id'], now, body, [a])['webhook-signature']).toBe(reference);
  });

  test('the secret box round-trips, refuses another key and altered data', () => {
    const box = new SecretBox('k'.repeat(32));
    const secret = newWebhookSecret();
    const sealed = box.seal(secret);
    expect(JSON.stringify(sealed)).not.toContain(secret.slice(6));
    expect(box.open(sealed)).toBe(secret);
    expect(box.seal(secret).data).not.toBe(sealed.data); // a fresh IV each time
    expect(() => new SecretBox('j'.repeat(32)).open(sealed)).toThrow();
    const altered = { ...sealed, data: Buffer.from('x'.repeat(40)).toString('base64') };
    expect(() => box.open(altered)).toThrow();
  });

  test('the secret box opens what an earlier release sealed with the same master key (a stable key derivation)', () => {
    // Sealed on 2026-11-30 by new SecretBox('fixture-master-key').seal(...).
    const sealed = {
      v: 1 as const,
      iv: 'IcOx/gHZPdL0nocb',
      tag: '0ZfRhxlRN3YLKtW6ZwW94A==',
      data: 'H5WVSKPeRDt71nQsmx7G3/0WDgHXoV2CwNrgNepTpmxhcMfvnwo=',
    };
    expect(new SecretBox('fixture-master-key').open(sealed)).toBe('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
  });

  test.each([
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['10.0.0.1', true],
    ['172.16.5.4', true],
    ['172.32.0.1', false],
    ['192.168.1.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['0.0.0.0', true],
    ['224.0.0.1', true],
    ['8.8.8.8', false],
    ['::1', true],
    ['::', true],
    ['fe80::1', true],
    ['fd12:3456::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['::ffff:8.8.8.8', false],
    ['64:ff9b::10.0.0.1', true],
    ['2001:4860:4860::8888', false],
    ['not-an-ip', true],
  ])('isPrivateAddress(%s) is %s', (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });

  test('assertPublicUrl resolves names: localhost is refused, a public literal passes', async () => {
    await expect(assertPublicUrl('http://localhost:8080/x')).rejects.toThrow(
      /loopback, link-local or private/,
    );
    await expect(assertPublicUrl('http://[::1]/x')).rejects.toThrow(/::1/);
    await expect(assertPublicUrl('https://8.8.8.8/x')).resolves.toBeUndefined();
  });

  test('schema/webhooks holds exactly what the zod schemas generate (npm run schema)', () => {
    const dir = join(__dirname, '..', '..', '..', 'schema', 'webhooks');
    const generated = webhookJsonSchemaFiles();
    expect(readdirSync(dir).sort()).toEqual(Object.keys(generated).sort());
    for (const [name, content] of Object.entries(generated)) {
      expect(readFileSync(join(dir, name), 'utf8')).toBe(content);
    }
  });
});

describe('SubscriptionRepository', () => {
  test('concurrent readers fold each event once: a rotation keeps the previous key, not the new one twice', async () => {
    const store = new MemoryEventStore();
    const box = new SecretBox('k'.repeat(32));
    const writer = new SubscriptionRepository(store);
    const reader = new SubscriptionRepository(store);
    const subscriptionId = 'wh_0123456789ab';
    await writer.execute({
      type: 'CreateSubscription',
      subscriptionId,
      url: 'https://example.com/h',
      eventTypes: [],
      jobIds: [],
      description: '',
      secret: box.seal('old'),
    });
    await reader.current();
    await writer.execute({
      type: 'RotateSecret',
      subscriptionId,
      secret: box.seal('new'),
      overlapMs: 60_000,
    });
    const states = await Promise.all(Array.from({ length: 20 }, () => reader.current()));
    for (const state of states) {
      expect(state.get(subscriptionId)!.keys.map((k) => box.open(k.secret))).toEqual(['new', 'old']);
    }
  });
});
