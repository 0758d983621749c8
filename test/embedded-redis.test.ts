import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { newJobId } from './support/ids';
import { client, startOutcome, startService } from './support/service';
import { until } from './support/wait';

/**
 * A port nothing listens on (yet), below the kernel's ephemeral range (32768-60999 here): a port the kernel
 * handed out once can be handed to another test's server listening on port 0 before the Redis takes it (a CI
 * run saw an HTTP server answer there: "got H as reply type byte").
 */
const freePort = async (): Promise<number> => {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer()
        .once('error', () => resolve(false))
        .listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
};

const redisAnswers = async (url: string) => {
  const redis = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
};

const logged = (logs: string[], msg: string) =>
  logs.flatMap((line) => {
    try {
      const entry = JSON.parse(line) as { msg?: string };
      return entry.msg?.startsWith(msg) ? [entry as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });

/**
 * The embedded default (SNAPCAT_EMBEDDED_REDIS: `auto` when SNAPCAT_REDIS_URL is unset, which cannot be tried
 * here without taking the machine's Redis port; `on` is the same rule on a port of the test's choosing).
 */
describe('a private redis-server when nothing answers at the Redis address', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-embedded-redis-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const env = (redisUrl: string) => ({
    SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
    SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
    SNAPCAT_REDIS_URL: redisUrl,
    SNAPCAT_EMBEDDED_REDIS: 'on',
  });

  it('starts one beside the SQLite log, says so in one line, serves the read model, and stops it on SIGTERM', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const service = await startService(env(url));
    try {
      const started = logged(service.logs, 'started a private Redis');
      expect(started).toHaveLength(1);
      expect(started[0]).toMatchObject({ redis: url, dataDir: join(dir, 'redis') });
      expect(await redisAnswers(url)).toBe(true);

      const jobId = newJobId();
      expect((await client(service.url).put(`/jobs/${jobId}`, { tasks: ['a'] })).status).toBe(201);
      // The read model (projector, Redis) answers from the private Redis.
      await until(
        async () => {
          const res = await fetch(`${service.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: `{ job(id: "${jobId}") { id } }` }),
          });
          const body = (await res.json()) as { data?: { job: { id: string } | null } };
          return body.data?.job?.id === jobId ? true : undefined;
        },
        10_000,
        'the job in the read model',
      );
      expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
      expect(existsSync(join(dir, 'redis', 'appendonlydir'))).toBe(true);
    } finally {
      expect(await service.stop('SIGTERM')).toBe(0);
    }
    expect(logged(service.logs, 'stopped')).toHaveLength(1);
    expect(await redisAnswers(url)).toBe(false);
  });

  it('never logs the password of the URL it starts a Redis at (a password it does not configure: refused, exit 2)', async () => {
    const port = await freePort();
    const outcome = await startOutcome(startService(env(`redis://snap:s3cret-pw@127.0.0.1:${port}`)));
    expect(outcome).toMatch(/^service exited with 2/);
    expect(outcome).toContain(`"redis":"redis://snap:***@127.0.0.1:${port}"`);
    expect(outcome).not.toContain('s3cret-pw');
    await until(async () => !(await redisAnswers(`redis://127.0.0.1:${port}`)) || undefined, 5000, 'it gone');
  }, 30_000);

  it('adopts the private Redis a killed start left running, and stops it with itself', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const first = await startService(env(url));
    await first.stop('SIGKILL');
    expect(await redisAnswers(url)).toBe(true); // orphaned: SIGKILL gives no chance to stop it

    const second = await startService(env(url));
    expect(logged(second.logs, 'using the private Redis a previous start left running')).toHaveLength(1);
    expect(logged(second.logs, 'started a private Redis')).toHaveLength(0);
    expect(await second.stop('SIGTERM')).toBe(0);
    await until(
      async () => ((await redisAnswers(url)) ? undefined : true),
      5000,
      'the adopted Redis stopped',
    );
  });

  it('two replicas on the same defaults share it: neither stops it under the other; left running, the next start adopts it', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const started: Awaited<ReturnType<typeof startService>>[] = [];
    const start = async () => {
      const service = await startService(env(url));
      started.push(service);
      return service;
    };
    try {
      const a = await start();
      const b = await start();
      expect(logged(b.logs, 'using the private Redis another snapcat process runs')).toHaveLength(1);
      expect(logged(b.logs, 'started a private Redis')).toHaveLength(0);
      // The one that started it stops first: B still uses it, so it stays.
      expect(await a.stop('SIGTERM')).toBe(0);
      expect(logged(a.logs, 'left the private Redis running')).toHaveLength(1);
      expect(await redisAnswers(url)).toBe(true);
      expect((await client(b.url).put(`/jobs/${newJobId()}`, { tasks: ['a'] })).status).toBe(201);
      expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
      // B never owned it: it leaves it running too; the next start adopts it and stops it with itself.
      expect(await b.stop('SIGTERM')).toBe(0);
      expect(await redisAnswers(url)).toBe(true);
      const c = await start();
      expect(logged(c.logs, 'using the private Redis a previous start left running')).toHaveLength(1);
      expect(await c.stop('SIGTERM')).toBe(0);
      await until(
        async () => ((await redisAnswers(url)) ? undefined : true),
        5000,
        'the adopted Redis stopped',
      );
    } finally {
      for (const service of started) await service.stop('SIGKILL');
      // Left running by a failure above: its pid file is there while it runs.
      if (await redisAnswers(url)) {
        process.kill(Number(readFileSync(join(dir, 'redis', 'redis.pid'), 'utf8')), 'SIGKILL');
      }
    }
  }, 60_000);

  it('leaves a Redis that is not its own alone', async () => {
    // The machine's Redis answers at the default address: nothing is started, nothing adopted.
    const { SNAPCAT_REDIS_URL: _default, ...atDefault } = env('redis://127.0.0.1:6379');
    const service = await startService(atDefault);
    try {
      expect(logged(service.logs, 'started a private Redis')).toHaveLength(0);
      expect(logged(service.logs, 'using the private Redis')).toHaveLength(0);
    } finally {
      expect(await service.stop('SIGTERM')).toBe(0);
    }
    expect(await redisAnswers('redis://127.0.0.1:6379')).toBe(true);
  });

  it('without redis-server on PATH: one line says how to get one, and REST serves commands alone', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const service = await startService({ ...env(url), PATH: join(dir, 'empty-bin') });
    try {
      const hints = service.logs.filter((line) => line.includes('no redis-server on PATH'));
      expect(hints).toHaveLength(1);
      expect(hints[0]).toContain('apt-get install redis-server');
      expect((await client(service.url).put(`/jobs/${newJobId()}`, { tasks: ['a'] })).status).toBe(201);
    } finally {
      expect(await service.stop('SIGTERM')).toBe(0);
    }
  });
});
