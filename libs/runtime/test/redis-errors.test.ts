import {
  execAll,
  isRedisConnectionError,
  isRedisUnavailableError,
  logQueueErrors,
  redisHealth,
} from '../src/redis';
import { EventEmitter } from 'node:events';
import IORedis, { ReplyError } from 'ioredis';

function systemError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('isRedisConnectionError: what redisHealth already reports once', () => {
  it.each([
    ['refused', systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:6379')],
    ['reset', systemError('ECONNRESET', 'read ECONNRESET')],
    // A queue writing on a socket the server has just closed (seen in CI when Redis stopped under load).
    ['broken pipe', systemError('EPIPE', 'write EPIPE')],
    ['timed out', systemError('ETIMEDOUT', 'connect ETIMEDOUT')],
    ['no host', systemError('ENOTFOUND', 'getaddrinfo ENOTFOUND redis')],
    ['closed', new Error('Connection is closed.')],
    ['command timeout', new Error('Command timed out')],
  ])('%s is a connection error', (_name, error) => {
    expect(isRedisConnectionError(error)).toBe(true);
  });

  it.each([
    ['a Lua script failing', new Error('ERR Error running script: a Lua script failed')],
    ['out of memory', new Error("OOM command not allowed when used memory > 'maxmemory'")],
    ['wrong type', new Error('WRONGTYPE Operation against a key holding the wrong kind of value')],
  ])('%s is not', (_name, error) => {
    expect(isRedisConnectionError(error)).toBe(false);
  });

  it('logQueueErrors keeps the queue quiet for a broken pipe and loud for anything else', () => {
    const emitter = new EventEmitter();
    const lines: { message: string; fields?: object }[] = [];
    logQueueErrors(emitter, (message, fields) => lines.push({ message, fields }), { queue: 'timeouts' });
    emitter.emit('error', systemError('EPIPE', 'write EPIPE'));
    emitter.emit('error', new Error('ERR Error running script'));
    expect(lines).toEqual([
      { message: 'queue error', fields: { queue: 'timeouts', error: 'ERR Error running script' } },
    ]);
  });
});

describe('redisHealth: the outage said once, in the words of what the process does', () => {
  const outage = (servesApi?: boolean) => {
    const said: string[] = [];
    const log = { warn: (msg: string) => said.push(msg), info: (msg: string) => said.push(msg) };
    redisHealth.reportTo(log, servesApi === undefined ? undefined : { servesApi });
    const connection = Object.assign(new EventEmitter(), { status: 'reconnecting' });
    redisHealth.watch(connection);
    connection.emit('error', systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:6379'));
    connection.status = 'ready';
    connection.emit('ready');
    redisHealth.forget(connection);
    return said;
  };

  it('an API process tells that REST commands go on; workers and a projector, that they wait', () => {
    expect(outage()[0]).toBe(
      'redis unreachable: GraphQL, the workers and webhooks wait; REST commands go on',
    );
    expect(outage(false)[0]).toBe('redis unreachable: this process waits for it');
    expect(outage(false)[1]).toBe('redis reachable again');
  });
});

describe('isRedisUnavailableError: what the API answers with a 503 (decision 0048)', () => {
  const reply = (message: string) => new ReplyError(message) as Error;

  it.each([
    ['a demoted primary', reply("READONLY You can't write against a read only replica.")],
    ['loading', reply('LOADING Redis is loading the dataset in memory')],
    ['out of memory', reply("OOM command not allowed when used memory > 'maxmemory'.")],
    ['a script running', reply('BUSY Redis is busy running a script.')],
    ['a cluster down', reply('CLUSTERDOWN The cluster is down')],
    [
      'a primary down',
      reply('MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no'),
    ],
    ['a slot migrating', reply('TRYAGAIN Multiple keys request during rehashing of slot')],
    ['too few replicas', reply('NOREPLICAS Not enough good replicas to write.')],
    ['the connection closed under a command', new Error('Connection is closed.')],
    ['a command timed out', new Error('Command timed out')],
    [
      'a command aborted as its connection closed (a pipeline)',
      Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' }),
    ],
  ])('%s is', (_name, error) => {
    expect(isRedisUnavailableError(error)).toBe(true);
  });

  it.each([
    ['a Lua script failing', reply('ERR Error running script: a Lua script failed')],
    ['wrong type', reply('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['a word merely starting so', reply('OOMPH is not a reply')],
    ['the same words, not from Redis', new Error('READONLY file system')],
    // Another client's (S3's, the event store's): not Redis's to answer for.
    [
      'a refused connection of another client',
      systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'),
    ],
    ['no error', 'READONLY'],
  ])('%s is not', (_name, error) => {
    expect(isRedisUnavailableError(error)).toBe(false);
  });
});

describe('execAll: a pipeline whose every command succeeded, or an error', () => {
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const key = `snapcat-test-exec-all-${process.pid}`;
  afterAll(async () => {
    await redis.del(key, `${key}:h`);
    redis.disconnect();
  });

  it('answers each result; fails with the first failed command, where exec() resolves with it among the results', async () => {
    expect(await execAll(redis.pipeline().set(key, 'v').get(key))).toEqual(['OK', 'v']);
    const failing = () => redis.pipeline().hset(`${key}:h`, 'f', '1').hset(key, 'f', '1').get(key);
    const results = await failing().exec();
    expect(results?.map(([error]) => error?.message.split(' ')[0] ?? null)).toEqual([
      null,
      'WRONGTYPE',
      null,
    ]);
    await expect(execAll(failing())).rejects.toThrow(/^WRONGTYPE/);
  });
});
