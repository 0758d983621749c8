import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, startOutcome, startService } from './support/service';
import { serviceOnEsdbTestServer } from './support/esdb-service';
import { EsdbTestServer } from './esdb/test-server';
import { eventually, sleep } from './support/wait';

const JOB = 'a11c0000beef0000a11c0000beef0000';
const KEY = 'secure-test-key-not-a-real-one-0123456789';

const readyz = async (url: string) => {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
};
const jsonLines = (logs: string[]) =>
  logs.flatMap((line) => line.split('\n')).filter((line) => line.startsWith('{'));

// A production node is secure, and reading $all needs the $admins role by default: a service account
// without it can still write its streams, but the projector, the process manager and the webhook dispatcher
// cannot follow the log. The service must say so (/readyz names the permission, one loud log line per
// consumer) instead of retrying forever.
describe('a secure EventStoreDB with a user that may not read $all (ops)', () => {
  const fx = serviceOnEsdbTestServer('secure-ops', { user: 'ops', env: { SNAPCAT_SECRET_KEY: KEY } });

  it('/readyz answers 503 naming the permission and the user; the consumers stand by instead of spinning', async () => {
    const ready = await readyz(fx.service.url);
    expect(ready.status).toBe(503);
    expect(ready.retryAfter).toBe('1');
    expect(ready.body).toMatchObject({
      type: 'urn:snapcat:problem:unavailable',
      detail:
        'event store: reading $all needs the $admins role (or a stream policy granting read on $all) for user ops',
      eventStore: 'access-denied',
      permission: 'read on $all',
      user: 'ops',
    });

    // Each consumer was refused once and now waits 30 s: over 3 s, no more attempts (a consumer retrying
    // every 1 s tick would add 3 each).
    // Waits for each consumer's line, logged after its refusal: /readyz's own read above was refused too,
    // so a count of three could come before the last consumer's.
    const refused = () =>
      ['projector', 'process manager', 'webhook dispatcher'].every((consumer) =>
        fx.service.logs.some((line) => line.includes(`"${consumer} cannot`)),
      );
    await eventually(refused, 10_000, 'the three consumers to be refused');
    const before = fx.server.denied.length;
    await sleep(3000);
    expect(fx.server.denied.length - before).toBe(0);
    expect(fx.server.denied.filter((d) => !(d.user === 'ops' && d.stream === '$all'))).toEqual([]);

    const errors = jsonLines(fx.service.logs)
      .map((line) => JSON.parse(line) as { level: string; msg: string; permission?: string })
      .filter((line) => line.level === 'error');
    for (const consumer of ['projector', 'process manager', 'webhook dispatcher']) {
      const lines = errors.filter((e) => e.msg.startsWith(`${consumer} cannot`));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ permission: 'read on $all' });
      expect(lines[0]!.msg).toContain('reading $all needs the $admins role');
      expect(lines[0]!.msg).toContain('for user ops');
    }
    expect(fx.service.logs.join('\n')).not.toContain('changeit'); // the password is never logged

    const metrics = await (await fetch(`${fx.service.url}/metrics`)).text();
    expect(metrics).toMatch(/^snapcat_consumer_blocked\{consumer="projector"\} 1$/m);
    expect(metrics).toMatch(/^snapcat_consumer_blocked\{consumer="process_manager"\} 1$/m);
    expect(metrics).toMatch(/^snapcat_consumer_blocked\{consumer="webhook_dispatcher"\} 1$/m);
  }, 60_000);

  it('commands still write (user streams are open to every user); a write refused is 503 store-access-denied', async () => {
    const api = client(fx.service.url);
    expect((await api.put(`/jobs/${JOB}`, { tasks: ['a'] })).status).toBe(201);

    fx.server.userStreamAcl.write = ['$admins']; // an operator locks the streams down
    const res = await fetch(`${fx.service.url}/api/v1/jobs/${JOB}/snapshots`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'CHECKPOINT' }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('30');
    expect(await res.json()).toMatchObject({
      type: 'urn:snapcat:problem:store-access-denied',
      detail: `event store: writing to stream snapcat-job-${JOB} needs write permission on it (an ACL or stream policy) for user ops`,
      permission: `write on snapcat-job-${JOB}`,
    });

    fx.server.userStreamAcl.write = ['$all']; // and opens them again: the same request succeeds, no restart
    expect((await api.post(`/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(202);
  }, 60_000);

  it('once ops is given $admins, /readyz answers 200 without a restart', async () => {
    fx.server.users.get('ops')!.groups.push('$admins');
    const ready = await readyz(fx.service.url);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', eventStore: 'reachable' });
  }, 30_000);
});

describe('a secure EventStoreDB and a wrong password', () => {
  let server: EsdbTestServer;
  let dir: string;
  beforeAll(async () => {
    server = new EsdbTestServer(undefined, { secure: true });
    await server.start();
    dir = mkdtempSync(join(tmpdir(), 'snapcat-secure-login-'));
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the login is refused: one error line naming the user, exit 1 at once, the password never logged', async () => {
    const wrong = 'not-the-password-7f3a';
    const started = Date.now();
    const outcome = await startOutcome(
      startService({
        SNAPCAT_EVENT_STORE: server.connectionStringAs('admin', wrong),
        SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      }),
    );
    expect(outcome).toMatch(/^service exited with 1/);
    const errors = outcome.split('\n').filter((l) => l.startsWith('{') && l.includes('"level":"error"'));
    expect(errors).toEqual([expect.stringContaining('cannot read the event store: stopping')]);
    expect(errors[0]).toContain('the login of user admin was refused');
    expect(outcome).not.toContain(wrong);
    expect(server.refusedLogins).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(15_000); // no 5 s of retries: waiting changes no password
  }, 30_000);
});
