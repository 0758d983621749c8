import IORedis from 'ioredis';
import { closeRedis, connectRedis, execAll, redisHealth } from '../src/redis';
import { startRedisServer } from '../../../test/support/redis';
import { until } from '../../../test/support/wait';
import { TcpProxy } from '../../../test/support/tcp-proxy';

// A failover behind one address (decision 0048), with real Redis servers: a TCP proxy stands for the DNS name
// of a managed Redis's primary endpoint. Connections made before the failover stay on the node they reached;
// new ones go where the proxy points now.

const settleWithin = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: Error) => ({ error: error.message }),
    ),
    new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms).unref()),
  ]);

describe('a Redis failover behind one address (real Redis servers, a TCP proxy for the DNS name)', () => {
  let first: Awaited<ReturnType<typeof startRedisServer>>;
  let second: Awaited<ReturnType<typeof startRedisServer>>;
  let admin: { first: IORedis; second: IORedis };
  let address: TcpProxy;
  let url: string;
  const said: { msg: string; error?: string }[] = [];

  beforeAll(async () => {
    [first, second] = await Promise.all([startRedisServer(), startRedisServer()]);
    admin = { first: new IORedis(first.url), second: new IORedis(second.url) };
    const hear = (msg: string, fields?: object) => void said.push({ msg, ...fields });
    redisHealth.reportTo({ warn: hear, info: hear });
  });
  beforeEach(async () => {
    // first is the primary, second its replica; the address reaches first.
    await admin.first.replicaof('NO', 'ONE');
    await admin.second.replicaof('127.0.0.1', first.port);
    address = new TcpProxy(first.port);
    url = `redis://127.0.0.1:${await address.listen()}`;
    said.length = 0;
  });
  afterEach(() => address.close());
  afterAll(async () => {
    admin.first.disconnect();
    admin.second.disconnect();
    await Promise.all([first.stop(), second.stop()]);
  });

  /** second promoted, first its replica (it refuses writes from now on); `move` points the address at second. */
  const failOver = async ({ move }: { move: boolean }) => {
    await admin.second.replicaof('NO', 'ONE');
    await admin.first.replicaof('127.0.0.1', second.port);
    if (move) address.target = second.port;
  };

  it('a connection opened before the failover writes on the new primary: its writes and scripts are made again there, not refused for ever', async () => {
    const redis = connectRedis(url);
    redis.defineCommand('bump', { numberOfKeys: 1, lua: "return redis.call('incr', KEYS[1])" });
    const bump = (key: string) => (redis as unknown as { bump(key: string): Promise<number> }).bump(key);
    try {
      expect(await redis.set('k', 'before')).toBe('OK');
      await failOver({ move: true });
      // Without the reconnection, first answers READONLY to these for as long as the connection lives.
      expect(await settleWithin(redis.set('k', 'after'), 5000)).toEqual({ value: 'OK' });
      expect(await settleWithin(bump('n'), 5000)).toEqual({ value: 1 });
      expect(await admin.second.get('k')).toBe('after');
      expect(await admin.second.get('n')).toBe('1');
      expect(redisHealth.reachable).toBe(true);
      // Said as an outage, with Redis's own words, and its end.
      expect(said).toEqual([
        {
          msg: 'redis unreachable: GraphQL, the workers and webhooks wait; REST commands go on',
          error: expect.stringMatching(/^ReplyError: READONLY/),
        },
        { msg: 'redis reachable again', downForMs: expect.any(Number) },
      ]);
    } finally {
      await closeRedis(redis);
    }
  });

  it('while the address still reaches the demoted node, Redis counts as unreachable, a write waits (it is not refused), the node is asked again once a second, and the write is made once the address moves', async () => {
    const redis = connectRedis(url);
    try {
      expect(await redis.set('k', 'before')).toBe('OK');
      await failOver({ move: false });
      const connectionsBefore = address.accepted.length;
      const write = redis.set('k', 'during');
      expect(await settleWithin(write, 3000)).toBe('pending');
      expect(redisHealth.reachable).toBe(false);
      // Each reconnection asked the node its role: a replica, so Redis never counted as back meanwhile.
      expect(said.map(({ msg }) => msg)).not.toContain('redis reachable again');
      // Three seconds on the demoted node: a reconnection a second, not ioredis's 50 ms (60 of them).
      const reconnections = address.accepted.length - connectionsBefore;
      expect(reconnections).toBeGreaterThanOrEqual(2);
      expect(reconnections).toBeLessThanOrEqual(5);
      address.target = second.port;
      expect(await settleWithin(write, 5000)).toEqual({ value: 'OK' });
      expect(await admin.second.get('k')).toBe('during');
      expect(redisHealth.reachable).toBe(true);
      expect(said.at(-1)?.msg).toBe('redis reachable again');
    } finally {
      await closeRedis(redis);
    }
  });
  it('a connection nobody watches (a BullMQ duplicate) meeting the demoted node does not leave Redis unreachable for good: the answer lapses', async () => {
    const redis = connectRedis(url);
    const duplicate = redis.duplicate(); // as BullMQ makes its blocking connections: options copied, not watched
    try {
      expect(await redis.set('k', 'before')).toBe('OK');
      expect(await duplicate.set('d', 'before')).toBe('OK');
      await failOver({ move: true });
      expect(await settleWithin(redis.set('k', 'after'), 5000)).toEqual({ value: 'OK' });
      await until(async () => redisHealth.reachable || undefined, 5000, 'the watched connection back');
      // The duplicate meets the demoted node after that, reconnects and writes: no watched connection is
      // made anew to tell.
      expect(await settleWithin(duplicate.set('d', 'after'), 5000)).toEqual({ value: 'OK' });
      expect(await admin.second.get('d')).toBe('after');
      expect(redisHealth.reachable).toBe(false);
      await until(async () => redisHealth.reachable || undefined, 7000, 'the answer lapsed');
    } finally {
      duplicate.disconnect();
      await closeRedis(redis);
    }
  }, 30_000);

  it('a user who may not ask ROLE, behind an address that reaches the demoted node: unreachable throughout, said once, not flipping every second', async () => {
    for (const node of [admin.first, admin.second]) {
      await node.acl('SETUSER', 'snap', 'on', '>pw', '~*', '&*', '+@all', '-role');
    }
    const [, port] = /:(\d+)$/.exec(url)!;
    const redis = connectRedis(`redis://snap:pw@127.0.0.1:${port}`);
    try {
      expect(await redis.set('k', 'before')).toBe('OK');
      await failOver({ move: false });
      const write = redis.set('k', 'during');
      expect(await settleWithin(write, 4000)).toBe('pending');
      expect(redisHealth.reachable).toBe(false);
      expect(said.map(({ msg }) => msg)).toEqual([
        'redis unreachable: GraphQL, the workers and webhooks wait; REST commands go on',
      ]);
      address.target = second.port;
      expect(await settleWithin(write, 5000)).toEqual({ value: 'OK' });
      await until(async () => redisHealth.reachable || undefined, 7000, 'the answer lapsed');
      expect(said.map(({ msg }) => msg)).toEqual([
        'redis unreachable: GraphQL, the workers and webhooks wait; REST commands go on',
        'redis reachable again',
      ]);
    } finally {
      await closeRedis(redis);
    }
  }, 30_000);
  it('a pipeline sent to the demoted node: what ioredis aborts as it reconnects fails execAll, never silently (exec() alone resolves with the errors among its results)', async () => {
    const redis = connectRedis(url);
    try {
      expect(await redis.set('k', 'before')).toBe('OK');
      await failOver({ move: true });
      const pipeline = redis.pipeline();
      for (let i = 0; i < 5000; i += 1) pipeline.hset('h', `f${i}`, 'x'.repeat(50));
      const outcome = await execAll(pipeline).then(
        () => 'resolved',
        (error: Error) => error.message,
      );
      const whole = (await admin.second.hlen('h')) === 5000;
      expect({ outcome, whole }).not.toEqual({ outcome: 'resolved', whole: false });
    } finally {
      await closeRedis(redis);
    }
  }, 30_000);
});
