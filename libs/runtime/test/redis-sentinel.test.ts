import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { Queue, Worker } from 'bullmq';
import { closeRedis, connectRedis, parseSentinelUrl, REDIS_SENTINEL_URL } from '../src/redis';
import { loadConfig } from '../src/config';
import { startRedisServer } from '../../../test/support/redis';
import { until } from '../../../test/support/wait';

/** A Redis Sentinel of the test's own (`redis-server --sentinel`), watching `primary` as `snapcat-main`. */
async function startSentinel(primaryPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-sentinel-'));
  const probe = await startRedisServer(); // a free port, taken from a server started and stopped
  const port = probe.port;
  await probe.stop();
  writeFileSync(
    join(dir, 'sentinel.conf'),
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor snapcat-main 127.0.0.1 ${primaryPort} 1`,
      'sentinel down-after-milliseconds snapcat-main 1000',
      'sentinel failover-timeout snapcat-main 5000',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel'], {
    stdio: 'ignore',
  });
  const admin = new IORedis(port, { retryStrategy: () => 50 });
  admin.on('error', () => {});
  // Ready once it has found the replica (a failover needs one).
  await until(
    async () => {
      const replicas = (await admin
        .call('SENTINEL', 'REPLICAS', 'snapcat-main')
        .catch(() => [])) as unknown[];
      return replicas.length > 0 || undefined;
    },
    15_000,
    'the sentinel to find the replica',
  );
  admin.disconnect();
  return {
    port,
    async stop() {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('parseSentinelUrl', () => {
  it('reads the sentinels, the master, the database and both credentials, decoded; a + is a +', () => {
    expect(
      parseSentinelUrl(
        'rediss+sentinel://us%40er:p+w:d@s1:26379,s2:26380/my%20main/3?sentinelPassword=a+b%26c',
      ),
    ).toEqual({
      tls: true,
      username: 'us@er',
      password: 'p+w:d',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      name: 'my main',
      db: 3,
      sentinelUsername: undefined,
      sentinelPassword: 'a+b&c',
    });
  });

  it('a master named by digits alone is the master, not a database', () => {
    expect(parseSentinelUrl('redis+sentinel://h1:26379/5')).toMatchObject({
      sentinels: [{ host: 'h1', port: 26379 }],
      name: '5',
    });
    expect(parseSentinelUrl('redis+sentinel://h1:26379/5')).not.toHaveProperty('db');
  });

  it.each([
    ['no master name', 'redis+sentinel://s1:26379/'],
    ['a stray %', 'redis+sentinel://u:50%@s1:26379/m'],
    ['another query parameter', 'redis+sentinel://s1:26379/m?db=2'],
    ['a sentinel without its port', 'redis+sentinel://s1/m'],
  ])('refuses %s', (_name, url) => {
    expect(parseSentinelUrl(url)).toBeUndefined();
    expect(() => loadConfig({ SNAPCAT_REDIS_URL: url })).toThrow(/SNAPCAT_REDIS_URL/);
  });
});

describe('Redis Sentinel (redis+sentinel://): real servers and a real sentinel', () => {
  let primary: Awaited<ReturnType<typeof startRedisServer>>;
  let replica: Awaited<ReturnType<typeof startRedisServer>>;
  let sentinel: Awaited<ReturnType<typeof startSentinel>>;
  let url: string;

  beforeAll(async () => {
    [primary, replica] = await Promise.all([startRedisServer(), startRedisServer()]);
    const toReplica = new IORedis(replica.url);
    await toReplica.replicaof('127.0.0.1', primary.port);
    toReplica.disconnect();
    sentinel = await startSentinel(primary.port);
    url = `redis+sentinel://127.0.0.1:${sentinel.port}/snapcat-main`;
  }, 30_000);
  afterAll(async () => {
    await sentinel.stop();
    await Promise.all([primary.stop(), replica.stop()]);
  });

  it('SNAPCAT_REDIS_URL takes the form, with a database and the sentinels’ credentials; a form without the master’s name is refused', () => {
    for (const ok of [
      'redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster',
      'rediss+sentinel://user:p%40ss@s1:26379/mymaster/2?sentinelPassword=s%26cret',
    ]) {
      expect(REDIS_SENTINEL_URL.test(ok)).toBe(true);
      expect(loadConfig({ SNAPCAT_REDIS_URL: ok }).redisUrl).toBe(ok);
    }
    expect(REDIS_SENTINEL_URL.test('redis+sentinel://s1:26379/')).toBe(false);
    expect(() => loadConfig({ SNAPCAT_REDIS_URL: 'redis+sentinel://s1:26379' })).toThrow(
      /SNAPCAT_REDIS_URL.*redis\+sentinel:\/\/host:port,host:port\/<master name>/s,
    );
  });

  it('writes reach the primary the sentinels name, and the promoted one right after a failover (not the old one, which would discard them)', async () => {
    const redis = connectRedis(url);
    const [oldPrimary, promoted] = [new IORedis(primary.url), new IORedis(replica.url)];
    const admin = new IORedis(sentinel.port);
    try {
      expect(await redis.set('k', 'before')).toBe('OK');
      expect(await oldPrimary.get('k')).toBe('before');
      // Refused (NOGOODSLAVE) until the sentinel has seen the replica in sync: asked until it starts.
      await until(
        () =>
          admin.call('SENTINEL', 'FAILOVER', 'snapcat-main').then(
            () => true,
            () => undefined,
          ),
        20_000,
        'a failover the sentinel starts',
      );
      await until(
        async () => ((await promoted.role())[0] === 'master' ? true : undefined),
        10_000,
        'the replica promoted',
      );
      // Soon after the switch, writes land on the promoted primary (replication never brings a write made on
      // the old one there). The old one still takes writes for a while (the sentinel demotes it ~10 s later,
      // when it resyncs and drops them), so a connection left there would lose them.
      await until(
        async () => {
          await redis.set('k', 'after');
          return (await promoted.get('k')) === 'after' || undefined;
        },
        3_000,
        'a write on the promoted primary',
      );
    } finally {
      await closeRedis(redis);
      for (const connection of [oldPrimary, promoted, admin]) connection.disconnect();
    }
  }, 45_000);

  it('a BullMQ queue and worker run over it (their connections are the same kind)', async () => {
    const [connection, workerConnection] = [connectRedis(url), connectRedis(url)];
    const queue = new Queue('sentinel-test', { connection, prefix: 'snapcat-test-sentinel' });
    const done: unknown[] = [];
    const worker = new Worker('sentinel-test', async (job) => void done.push(job.data), {
      connection: workerConnection,
      prefix: 'snapcat-test-sentinel',
    });
    try {
      await queue.add('one', { n: 1 });
      await until(async () => done.length > 0 || undefined, 10_000, 'the job run');
      expect(done).toEqual([{ n: 1 }]);
    } finally {
      await worker.close();
      await queue.close();
      await Promise.all([closeRedis(connection), closeRedis(workerConnection)]);
    }
  }, 30_000);
});
