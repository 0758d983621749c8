import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newJobId } from './support/ids';
import { startRedisServer } from './support/redis';
import { client, startService, type RunningService } from './support/service';
import { sleep, until } from './support/wait';

describe('Redis goes down under a running service, comes back, and goes down again for the shutdown', () => {
  let dir: string;
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let service: RunningService;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-redis-outage-'));
    redis = await startRedisServer();
    service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_REDIS_URL: redis.url,
      SNAPCAT_ENV: 'development', // webhooks on too: their queue and dispatcher also lose Redis
    });
  });
  afterAll(async () => {
    await service.stop('SIGKILL');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('not ready and saying why, GraphQL failing fast, REST going on, a quiet JSON log; SIGTERM exits 0', async () => {
    const api = client(service.url);
    const gql = async () => {
      const started = Date.now();
      const res = await fetch(`${service.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ jobs(first: 5) { edges { node { id } } } }' }),
      });
      return { ms: Date.now() - started, body: (await res.json()) as { errors?: { message: string }[] } };
    };
    await until(
      async () => ((await fetch(`${service.url}/readyz`)).status === 200 ? true : undefined),
      10_000,
      'ready once Redis is connected',
    );

    // The endpoint is made on its first request (decision 0041): made here, so that the query timed below is
    // the read model's failure alone, not the loading of GraphQL besides.
    expect((await gql()).body.errors).toBeUndefined();
    // Counted from before the stop: the service may log the outage while the stop still waits for the exit.
    const linesBefore = service.logs.length;
    await redis.stop();
    const downAt = Date.now();
    const notReady = await until(
      async () => {
        const res = await fetch(`${service.url}/readyz`);
        return res.status === 503 ? ((await res.json()) as { detail: string; redis: string }) : undefined;
      },
      5000,
      '/readyz 503',
    );
    expect(Date.now() - downAt).toBeLessThan(5000);
    expect(notReady).toMatchObject({ redis: 'unreachable' });
    expect(notReady.detail).toContain('REST commands keep working');

    const query = await gql();
    expect(query.ms).toBeLessThan(2500);
    expect(query.body.errors?.[0]?.message).toMatch(/read model is unavailable: Redis is unreachable/);

    const jobId = newJobId();
    expect((await api.put(`/jobs/${jobId}`, { tasks: ['a'] })).status).toBe(201);
    const triggered = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
    expect(triggered.status).toBe(202);
    const ack = await api.post(`/jobs/${jobId}/snapshots/${triggered.body.snapshotId}/acks`, { taskId: 'a' });
    expect(ack.status).toBe(200);
    // A savepoint's files lie in its own directory, which names six characters of the job's id: the job's
    // own, so no owner is looked up in the read model (R72), which Redis down could not answer.
    const savepoint = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    const { snapshotId, externalPath } = (
      await api.get(`/jobs/${jobId}/snapshots/${savepoint.body.snapshotId}`)
    ).body;
    expect(externalPath).toMatch(/\/savepoint-[0-9a-f]{6}-[0-9a-f]{12}$/);
    const inItsDirectory = await api.post(`/jobs/${jobId}/snapshots/${snapshotId}/acks`, {
      taskId: 'a',
      stateHandles: [{ path: `${externalPath}/sst-1`, sizeBytes: 5 }],
    });
    expect([inItsDirectory.status, inItsDirectory.body.snapshotStatus]).toEqual([200, 'COMPLETED']);

    await sleep(Math.max(0, downAt + 12_000 - Date.now()));
    const during = service.logs.slice(linesBefore);
    // Over 12 s: ioredis retries every ~2 s on each of ~15 connections. On failure, the lines themselves show.
    expect(during.length < 10 ? 'quiet' : during).toBe('quiet');
    for (const line of during) expect(() => JSON.parse(line)).not.toThrow();
    expect(during.filter((l) => l.includes('"redis unreachable'))).toHaveLength(1);

    // Back on the same port: one line says so, and the service is ready again with what REST wrote.
    redis = await startRedisServer(redis.port);
    await until(
      async () => ((await fetch(`${service.url}/readyz`)).status === 200 ? true : undefined),
      15_000,
      '/readyz 200 again',
    );
    expect(service.logs.filter((l) => l.includes('"redis reachable again"'))).toHaveLength(1);
    await until(
      async () => ((await gql()).body.errors === undefined ? true : undefined),
      10_000,
      'GraphQL answering',
    );

    // Down again, then SIGTERM: exit 0 within the grace (10 s), the store closed cleanly (no -wal left).
    await redis.stop();
    await until(
      async () => ((await fetch(`${service.url}/readyz`)).status === 503 ? true : undefined),
      5000,
      'not ready again',
    );
    const stopping = Date.now();
    expect(await service.stop('SIGTERM')).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(10_000 + 1000);
    expect(service.logs.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    expect(existsSync(join(dir, 'events.db-wal'))).toBe(false);
  }, 90_000);
});

/**
 * A service on a Redis of its own (the test stops or pauses it), its store and storage in a directory of its
 * own, ready before `run` gets them; both stopped and the directory removed after.
 */
async function onOwnRedis(
  extra: Record<string, string>,
  run: (service: RunningService, redis: Awaited<ReturnType<typeof startRedisServer>>) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-redis-own-'));
  const redis = await startRedisServer();
  const service = await startService({
    SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
    SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
    SNAPCAT_REDIS_URL: redis.url,
    ...extra,
  });
  try {
    await until(
      async () => ((await fetch(`${service.url}/readyz`)).status === 200 ? true : undefined),
      10_000,
      'ready',
    );
    await run(service, redis);
  } finally {
    await service.stop('SIGKILL');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('an API without workers (SNAPCAT_WORKERS=off) while Redis is down', () => {
  it(
    'logs JSON lines only, and few: its queues (read for /metrics) print no connection errors',
    () =>
      onOwnRedis({ SNAPCAT_WORKERS: 'off' }, async (service, redis) => {
        const linesBefore = service.logs.length;
        await redis.stop();
        await sleep(8000);
        const during = service.logs.slice(linesBefore);
        for (const line of during) expect(() => JSON.parse(line)).not.toThrow();
        expect(during.length < 10 ? 'quiet' : during).toBe('quiet');
      }),
    40_000,
  );
});

describe('Redis hangs (stopped, no connection closed) under a running service', () => {
  it(
    'is found by the heartbeat: said once, /readyz 503 with redis unreachable; and said again when it answers',
    () =>
      onOwnRedis({}, async (service, redis) => {
        const readiness = async () => {
          const res = await fetch(`${service.url}/readyz`);
          return { status: res.status, redis: ((await res.json()) as { redis?: string }).redis };
        };
        redis.pause();
        await until(
          async () => (service.logs.some((l) => l.includes('"redis unreachable')) ? true : undefined),
          10_000,
          'the hang said in the log',
        );
        expect(await readiness()).toEqual({ status: 503, redis: 'unreachable' });
        redis.resume();
        await until(
          async () => (service.logs.some((l) => l.includes('"redis reachable again"')) ? true : undefined),
          10_000,
          'the recovery said in the log',
        );
        await until(
          async () => ((await readiness()).status === 200 ? true : undefined),
          10_000,
          'ready again',
        );
        expect(service.logs.filter((l) => l.includes('"redis unreachable'))).toHaveLength(1);
      }),
    60_000,
  );
});
