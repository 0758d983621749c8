import { hashToken } from '@snapcat/runtime';
import { startOutcome, startService, testPrefix } from './support/service';
import { deleteKeys } from './support/redis';

/*
 * Issue 18, item 5: without tokens snapcat listens on loopback only and says authentication is off; an address
 * others reach without tokens is refused at start, saying how to make a token. With tokens it listens on
 * every interface by default and every route but the public ones wants a token.
 */
describe('the safe default at start', () => {
  const prefix = testPrefix('access-start');
  afterAll(() => deleteKeys(prefix));
  const env = { SNAPCAT_EVENT_STORE: 'memory:', SNAPCAT_QUEUE_PREFIX: prefix, SNAPCAT_EMBEDDED_REDIS: 'off' };

  it('without tokens: 127.0.0.1 by default and one warning that authentication is off', async () => {
    const service = await startService({ ...env, SNAPCAT_HOST: '' });
    try {
      // The warning follows the `listening` line that startService waits for.
      for (let i = 0; i < 50 && !service.logs.some((l) => l.includes('authentication is off')); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const lines = service.logs
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === 'listening')).toMatchObject({
        host: '127.0.0.1',
        authentication: 'off',
      });
      const warnings = lines.filter((l) => String(l.msg).startsWith('authentication is off: '));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 'warn' });
      expect(warnings[0]!.msg).toMatch(/npx snapcat token create/);
      expect((await fetch(`${service.url}/api/v1/jobs`)).status).not.toBe(401);
    } finally {
      await service.stop();
    }
  }, 60_000);

  it('without tokens, a non-loopback SNAPCAT_HOST is refused with exit 2, saying how to make a token', async () => {
    const outcome = await startOutcome(startService({ ...env, SNAPCAT_HOST: '0.0.0.0' }));
    expect(outcome).toMatch(/^service exited with 2/);
    expect(outcome).toMatch(/SNAPCAT_HOST: 0\.0\.0\.0 is not a loopback address/);
    expect(outcome).toMatch(/npx snapcat token create --name/);
  }, 60_000);

  it('with tokens: 0.0.0.0 by default; routes want the token, probes do not', async () => {
    const token = 'snapcat_start-test-token';
    const service = await startService({
      ...env,
      SNAPCAT_HOST: '',
      SNAPCAT_TOKENS: `ci:read:*:${hashToken(token).toString('hex')}`,
    });
    try {
      const listening = service.logs.find((l) => l.includes('"msg":"listening"'))!;
      expect(JSON.parse(listening)).toMatchObject({ host: '0.0.0.0', authentication: '1 tokens' });
      expect(service.logs.join('\n')).not.toMatch(/authentication is off/);
      expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
      const refused = await fetch(`${service.url}/api/v1/jobs`);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const allowed = await fetch(`${service.url}/api/v1/jobs`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect([200, 503]).toContain(allowed.status);
      expect(service.logs.join('\n')).not.toContain(token);
    } finally {
      await service.stop();
    }
  }, 60_000);
});
