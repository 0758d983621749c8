import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOutcome, startService, testPrefix, type RunningService } from './support/service';
import IORedis from 'ioredis';
import { deleteKeys, startRedisServer } from './support/redis';

describe('fail fast: a port already taken, a store that does not answer, a bad configuration', () => {
  let dir: string;
  let first: RunningService;
  const prefix = testPrefix('failfast');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-failfast-'));
    first = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
    });
  });
  afterAll(async () => {
    await first.stop('SIGKILL');
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs why and exits non-zero within 5 s, leaving nothing running; the first keeps serving', async () => {
    const started = Date.now();
    const outcome = await startOutcome(
      startService({
        SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
        SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
        SNAPCAT_QUEUE_PREFIX: prefix,
        SNAPCAT_PORT: String(first.port),
      }),
    );
    expect(outcome).toMatch(/service exited with 1[\s\S]*cannot listen: stopping[\s\S]*EADDRINUSE/);
    expect(Date.now() - started).toBeLessThan(5000 + 3000); // tsx's start-up on top of the 5 s
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
  }, 30_000);

  it('an event store that does not answer at start: one error line and exit 1 within seconds', async () => {
    const started = Date.now();
    const outcome = await startOutcome(
      startService({
        SNAPCAT_EVENT_STORE: 'esdb://127.0.0.1:1?tls=false',
        SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
        SNAPCAT_QUEUE_PREFIX: prefix,
      }),
    );
    expect(outcome).toMatch(/^service exited with 1/);
    const lines = outcome.split('\n').filter((l) => l.startsWith('{'));
    expect(lines.filter((l) => l.includes('"level":"error"'))).toEqual([
      expect.stringContaining('cannot read the event store: stopping'),
    ]);
    // The store's 5 s, tsx's start-up on top (over 6 s when the whole suite loads both cores): well short
    // of hanging, which is what this guards against.
    expect(Date.now() - started).toBeLessThan(5000 + 10_000);
  }, 30_000);

  it('a bad configuration value: the variable named on stderr and exit 2', async () => {
    const outcome = await startOutcome(startService({ SNAPCAT_ROLE: 'everything' }));
    expect(outcome).toMatch(/^service exited with 2/);
    expect(outcome).toContain('SNAPCAT_ROLE');
  }, 30_000);

  it('a Redis that refuses the database or the credentials SNAPCAT_REDIS_URL names: said on stderr, exit 2', async () => {
    const redis = await startRedisServer();
    const outcomeWith = (url: string) =>
      startOutcome(
        startService({
          SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'refused.db')}`,
          SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
          SNAPCAT_REDIS_URL: url,
        }),
      );
    try {
      const database = await outcomeWith(`${redis.url}/99`);
      expect(database).toMatch(/^service exited with 2/);
      expect(database).toContain('SNAPCAT_REDIS_URL names a database this Redis does not have');
      const admin = new IORedis(redis.url);
      await admin.config('SET', 'requirepass', 'the-right-one');
      admin.disconnect();
      const credentials = await outcomeWith(`redis://:not-it@127.0.0.1:${redis.port}`);
      expect(credentials).toMatch(/^service exited with 2/);
      expect(credentials).toContain("SNAPCAT_REDIS_URL's credentials are refused by Redis (WRONGPASS");
      expect(credentials).not.toContain('not-it');
    } finally {
      await redis.stop();
    }
  }, 60_000);
});
