import { ConfigError, loadConfig } from '../src';

describe('configuration from the environment', () => {
  it('SNAPCAT_ROLE: all by default; api, workers; the older SNAPCAT_WORKERS=off still means api', () => {
    expect(loadConfig({}).role).toBe('all');
    expect(loadConfig({ SNAPCAT_ROLE: 'api' }).role).toBe('api');
    expect(loadConfig({ SNAPCAT_ROLE: 'workers' }).role).toBe('workers');
    expect(loadConfig({ SNAPCAT_WORKERS: 'off' }).role).toBe('api');
    expect(loadConfig({ SNAPCAT_WORKERS: 'off', SNAPCAT_ROLE: 'api' }).role).toBe('api');
    expect(loadConfig({}).projector).toBe(true);
    expect(loadConfig({ SNAPCAT_PROJECTOR: 'off' }).projector).toBe(false);
  });

  it.each([
    [{ SNAPCAT_ROLE: 'projector' }, /SNAPCAT_ROLE/],
    [{ SNAPCAT_WORKERS: 'no' }, /SNAPCAT_WORKERS/],
    [
      { SNAPCAT_WORKERS: 'off', SNAPCAT_ROLE: 'workers' },
      /SNAPCAT_WORKERS: off contradicts SNAPCAT_ROLE=workers/,
    ],
    [{ SNAPCAT_PROJECTOR: 'false' }, /SNAPCAT_PROJECTOR/],
    [{ SNAPCAT_ON_FOREIGN_READ_MODEL: 'drop' }, /SNAPCAT_ON_FOREIGN_READ_MODEL/],
  ])('%j is refused, naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('SNAPCAT_EMBEDDED_REDIS: auto starts a private Redis only when SNAPCAT_REDIS_URL is unset; on needs a loopback URL', () => {
    expect(loadConfig({}).embeddedRedis).toBe(true);
    expect(loadConfig({ SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379' }).embeddedRedis).toBe(false);
    expect(loadConfig({ SNAPCAT_EMBEDDED_REDIS: 'off' }).embeddedRedis).toBe(false);
    for (const url of ['redis://127.0.0.1:7001', 'redis://localhost:6390']) {
      expect(loadConfig({ SNAPCAT_REDIS_URL: url, SNAPCAT_EMBEDDED_REDIS: 'on' }).embeddedRedis).toBe(true);
    }
    for (const url of [
      'redis://redis.example:6379',
      'rediss://127.0.0.1:6379',
      'redis+cluster://127.0.0.1:7000',
    ]) {
      expect(() => loadConfig({ SNAPCAT_REDIS_URL: url, SNAPCAT_EMBEDDED_REDIS: 'on' })).toThrow(
        /SNAPCAT_EMBEDDED_REDIS: on needs SNAPCAT_REDIS_URL to be a redis:\/\/ URL on 127.0.0.1/,
      );
    }
    expect(() => loadConfig({ SNAPCAT_EMBEDDED_REDIS: 'yes' })).toThrow(/SNAPCAT_EMBEDDED_REDIS/);
  });

  it('SNAPCAT_REDIS_URL: redis:// and rediss://, or redis+cluster:// naming every seed node', () => {
    for (const url of [
      'redis://127.0.0.1:6379',
      'rediss://user:secret@redis.example:6380/2',
      'redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000',
      'rediss+cluster://default:secret@redis-0.example:6379,redis-1.example:6379/',
    ]) {
      expect(loadConfig({ SNAPCAT_REDIS_URL: url }).redisUrl).toBe(url);
    }
    for (const url of ['http://127.0.0.1:6379', 'redis+cluster://', 'redis+cluster://host-without-port']) {
      expect(() => loadConfig({ SNAPCAT_REDIS_URL: url })).toThrow(/SNAPCAT_REDIS_URL: must be a redis:\/\//);
    }
  });

  it('SNAPCAT_ON_FOREIGN_READ_MODEL: rebuild by default, or refuse', () => {
    expect(loadConfig({}).onForeignReadModel).toBe('rebuild');
    expect(loadConfig({ SNAPCAT_ON_FOREIGN_READ_MODEL: 'refuse' }).onForeignReadModel).toBe('refuse');
  });
});
