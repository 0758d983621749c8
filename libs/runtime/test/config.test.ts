import { ConfigError, DEVELOPMENT_SECRET_KEY, loadConfig, loadConfigOrExit } from '../src';
import { parseClusterUrl } from '../src/redis';

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

  it('without tokens, a process that serves no API may listen beyond loopback (its ops endpoints are public)', () => {
    const everywhere = { SNAPCAT_HOST: '0.0.0.0', SNAPCAT_OPS_PORT: '9464' };
    expect(() => loadConfig(everywhere)).toThrow(/SNAPCAT_HOST: 0.0.0.0 is not a loopback address/);
    expect(loadConfig(everywhere, { servesApi: false }).host).toBe('0.0.0.0'); // start:workers, start:projector
    expect(loadConfig({ ...everywhere, SNAPCAT_ROLE: 'workers' }).host).toBe('0.0.0.0');
    expect(() => loadConfig({ ...everywhere, SNAPCAT_ROLE: 'workers' }, { servesApi: true })).toThrow(
      /not a loopback address/,
    );
  });

  it('SNAPCAT_OPS_PORT: unset (or empty) serves no ops endpoints; a port, or 0 for any free one', () => {
    expect(loadConfig({}).opsPort).toBeUndefined();
    expect(loadConfig({ SNAPCAT_OPS_PORT: '' }).opsPort).toBeUndefined();
    expect(loadConfig({ SNAPCAT_ROLE: 'workers', SNAPCAT_OPS_PORT: '9464' }).opsPort).toBe(9464);
    expect(loadConfig({ SNAPCAT_OPS_PORT: '0' }).opsPort).toBe(0);
  });

  it.each([
    [{ SNAPCAT_ROLE: 'projector' }, /SNAPCAT_ROLE/],
    [{ SNAPCAT_WORKERS: 'no' }, /SNAPCAT_WORKERS/],
    [
      { SNAPCAT_WORKERS: 'off', SNAPCAT_ROLE: 'workers' },
      /SNAPCAT_WORKERS: off contradicts SNAPCAT_ROLE=workers/,
    ],
    [{ SNAPCAT_PROJECTOR: 'false' }, /SNAPCAT_PROJECTOR/],
    [{ SNAPCAT_OPS_PORT: '65536' }, /SNAPCAT_OPS_PORT/],
    [{ SNAPCAT_OPS_PORT: 'metrics' }, /SNAPCAT_OPS_PORT/],
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
      // A user without a password (an ACL user with nopass), and no credentials at all before the @.
      'redis+cluster://default@10.0.0.1:7000',
      'redis+cluster://@10.0.0.1:7000',
      'redis+sentinel://default@s1:26379/mymaster',
    ]) {
      expect(loadConfig({ SNAPCAT_REDIS_URL: url }).redisUrl).toBe(url);
    }
    for (const url of [
      'http://127.0.0.1:6379',
      'redis+cluster://',
      'redis+cluster://host-without-port',
      // A stray % was a URIError at the first connection, after the configuration had taken it.
      'redis+cluster://default:50%@redis-0.example:6379',
    ]) {
      expect(() => loadConfig({ SNAPCAT_REDIS_URL: url })).toThrow(/SNAPCAT_REDIS_URL: must be a redis:\/\//);
    }
  });

  it('a redis+cluster:// URL’s credentials are percent-decoded, a colon after the first being the password’s', () => {
    expect(parseClusterUrl('rediss+cluster://us%40er:p+w:d%25@h1:7000,h2:7001/')).toEqual({
      tls: true,
      username: 'us@er',
      password: 'p+w:d%',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
    });
    expect(parseClusterUrl('redis+cluster://h1:7000')).toEqual({
      tls: false,
      nodes: [{ host: 'h1', port: 7000 }],
    });
    expect(parseClusterUrl('redis+cluster://us%3Aer@h1:7000')).toEqual({
      tls: false,
      username: 'us:er',
      nodes: [{ host: 'h1', port: 7000 }],
    });
  });

  it('SNAPCAT_ON_FOREIGN_READ_MODEL: rebuild by default, or refuse', () => {
    expect(loadConfig({}).onForeignReadModel).toBe('rebuild');
    expect(loadConfig({ SNAPCAT_ON_FOREIGN_READ_MODEL: 'refuse' }).onForeignReadModel).toBe('refuse');
  });

  it('periods the workers run at must be longer than zero (a zero sweep stopped every worker tick)', () => {
    for (const name of [
      'SNAPCAT_RETENTION_SWEEP',
      'SNAPCAT_FLINK_POLL',
      'SNAPCAT_WEBHOOK_TIMEOUT',
      'SNAPCAT_WEBHOOK_CHECKPOINT_EVERY',
      'SNAPCAT_SHUTDOWN_GRACE',
    ]) {
      expect(() => loadConfig({ [name]: 'PT0S' })).toThrow(new RegExp(`${name}: must be longer than zero`));
      expect(() => loadConfig({ [name]: 'PT0.5S' })).not.toThrow();
    }
    expect(loadConfig({ SNAPCAT_RETENTION_SWEEP: 'PT2S' }).retentionSweepMs).toBe(2000);
  });
});

describe('SNAPCAT_SECRET_KEY', () => {
  const KEY = 'k'.repeat(32);

  it('32 characters or more seal webhook secrets; unset or empty, webhooks are off outside development', () => {
    expect(loadConfig({ SNAPCAT_SECRET_KEY: KEY }).webhooks).toMatchObject({
      secretKey: KEY,
      usingDevelopmentKey: false,
    });
    for (const env of [{}, { SNAPCAT_SECRET_KEY: '' }]) {
      expect(loadConfig(env).webhooks).toMatchObject({ secretKey: undefined, usingDevelopmentKey: false });
      expect(loadConfig({ ...env, SNAPCAT_ENV: 'development' }).webhooks).toMatchObject({
        secretKey: DEVELOPMENT_SECRET_KEY,
        usingDevelopmentKey: true,
      });
    }
  });

  it.each([['x'], [' '], ['k'.repeat(31)]])('set but shorter than 32 characters (%j): refused', (key) => {
    for (const environment of ['production', 'development']) {
      const load = () => loadConfig({ SNAPCAT_SECRET_KEY: key, SNAPCAT_ENV: environment });
      expect(load).toThrow(ConfigError);
      expect(load).toThrow(
        'invalid configuration:\n  SNAPCAT_SECRET_KEY: must be at least 32 characters (e.g. openssl rand -base64 32)',
      );
    }
  });

  it('the message never repeats the key', () => {
    const key = 'short-but-secret';
    expect(() => loadConfig({ SNAPCAT_SECRET_KEY: key })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(key) }),
    );
  });

  describe('at start (loadConfigOrExit)', () => {
    const saved = process.env.SNAPCAT_SECRET_KEY;
    afterEach(() => {
      jest.restoreAllMocks();
      if (saved === undefined) delete process.env.SNAPCAT_SECRET_KEY;
      else process.env.SNAPCAT_SECRET_KEY = saved;
    });

    it('a short key: the variable named on stderr, nothing on stdout, exit 2', () => {
      process.env.SNAPCAT_SECRET_KEY = 'too-short';
      const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
      const stdout = jest.spyOn(process.stdout, 'write');
      jest.spyOn(process, 'exit').mockImplementation((code) => {
        throw new Error(`exit ${code}`);
      });
      expect(() => loadConfigOrExit()).toThrow('exit 2');
      expect(stderr.mock.calls.map(([text]) => text)).toEqual([
        'snapcat: invalid configuration:\n' +
          '  SNAPCAT_SECRET_KEY: must be at least 32 characters (e.g. openssl rand -base64 32)\n',
      ]);
      expect(stdout).not.toHaveBeenCalled();
    });

    it('a key of 32 characters starts', () => {
      process.env.SNAPCAT_SECRET_KEY = KEY;
      const exit = jest.spyOn(process, 'exit');
      expect(loadConfigOrExit().webhooks.secretKey).toBe(KEY);
      expect(exit).not.toHaveBeenCalled();
    });
  });

  describe('SNAPCAT_EVENT_STORE: EventStoreDB and KurrentDB connection strings', () => {
    const PASSWORD = 'pw-never-echoed-51';
    const caFile = __filename; // any file that exists
    const store = (value: string) => loadConfig({ SNAPCAT_EVENT_STORE: value });
    const refusal = (value: string) => {
      try {
        store(value);
      } catch (error) {
        if (error instanceof ConfigError) return error.message;
        throw error;
      }
      return 'accepted';
    };

    it.each([
      'esdb://eventstore:2113?tls=false',
      `esdb://svc:${PASSWORD}@n1:2113?tls=true&tlsCAFile=${caFile}`,
      `esdb+discover://svc:${PASSWORD}@n1:2113,n2:2113,n3:2113?tlsCAFile=${caFile}&nodePreference=leader`,
      `kurrentdb://svc:${PASSWORD}@kurrentdb:2113?tlsCAFile=${caFile}`,
      'kurrentdb+discover://cluster.example.com:2113?nodePreference=follower',
    ])('%s is taken as given', (value) => {
      expect(store(value).eventStore).toBe(value);
    });

    it.each([
      [
        'mysql://h',
        /SNAPCAT_EVENT_STORE: must be memory:, sqlite:<file> or an EventStoreDB\/KurrentDB connection string/,
      ],
      [
        'esdb://h?nodePreference=primary',
        /SNAPCAT_EVENT_STORE: nodePreference: must be leader, follower, random, read_only_replica/,
      ],
      [
        'esdb://h?tlsCAFile=/no/such/ca.crt',
        /SNAPCAT_EVENT_STORE: tlsCAFile: no such file: \/no\/such\/ca.crt/,
      ],
      ['esdb://h?tlsVerifyCert=false', /SNAPCAT_EVENT_STORE: tlsVerifyCert: .*tlsCAFile/],
      ['esdb://h?tlsCaPath=/x', /SNAPCAT_EVENT_STORE: tlsCaPath: is not a setting of the client/],
      [
        `esdb://svc:${PASSWORD}:x@h`,
        /SNAPCAT_EVENT_STORE: credentials: the password must not contain a raw ":"/,
      ],
      [`esdb://svc:${PASSWORD}@x@h`, /SNAPCAT_EVENT_STORE: hosts: .*%40/],
    ])('%s is refused, naming the setting and the rule, never the password', (value, message) => {
      const text = refusal(value);
      expect(text).toMatch(message);
      expect(text).not.toContain(PASSWORD);
    });

    it('credentials with tls=false: accepted, with a warning told at start', () => {
      expect(store(`esdb://svc:${PASSWORD}@h?tls=false`).eventStoreWarnings).toEqual([
        expect.stringContaining('the client sends no credentials without TLS'),
      ]);
      expect(store('esdb://h?tls=false').eventStoreWarnings).toEqual([]);
    });
  });
  it('a file:// storage root is its path; one that is no absolute file URI is refused', () => {
    expect(loadConfig({ SNAPCAT_STORAGE_ROOTS: 'file:///data/flink,/other' }).storageRoots).toEqual([
      '/data/flink',
      '/other',
    ]);
    expect(() => loadConfig({ SNAPCAT_STORAGE_ROOTS: 'file://host/data' })).toThrow(
      /file:\/\/host\/data: not a file:\/\/ URI of an absolute local path/,
    );
  });
  it('an empty storage location (a trailing comma) is refused, not taken for the working directory', () => {
    expect(() => loadConfig({ SNAPCAT_STORAGE_ROOTS: '/data/snapshots,' })).toThrow(
      /SNAPCAT_STORAGE_ROOTS: entry 2 of the comma-separated list is empty/,
    );
    expect(() => loadConfig({ SNAPCAT_STORAGE_ROOTS: ' ,/data' })).toThrow(/entry 1 .* is empty/);
    expect(() =>
      loadConfig({ SNAPCAT_STORAGE_ROOTS: '/data', SNAPCAT_NAMESPACE_ROOTS: 'team-a=/data/a,' }),
    ).toThrow(/SNAPCAT_NAMESPACE_ROOTS: namespace team-a names an empty location/);
  });
  it('a bad entry of a comma-separated list is named by its place, counted from 1', () => {
    expect(() => loadConfig({ SNAPCAT_WEBHOOK_RETRY_SCHEDULE: 'PT0S,abc' })).toThrow(
      /SNAPCAT_WEBHOOK_RETRY_SCHEDULE: entry 2 of the comma-separated list: must be an ISO-8601 duration/,
    );
  });
  it('SNAPCAT_CHECKPOINT_DIR and SNAPCAT_SAVEPOINT_DIR must lie in a storage root, or the start is refused', () => {
    const roots = { SNAPCAT_STORAGE_ROOTS: '/data/snapshots' };
    expect(loadConfig({ ...roots, SNAPCAT_CHECKPOINT_DIR: '/data/snapshots/cp' }).defaultCheckpointDir).toBe(
      '/data/snapshots/cp',
    );
    // Outside the roots, every job registered without directories was a 400 naming body.storage.checkpointDir.
    expect(() => loadConfig({ ...roots, SNAPCAT_CHECKPOINT_DIR: '/nope' })).toThrow(
      /SNAPCAT_CHECKPOINT_DIR: \/nope is not inside SNAPCAT_STORAGE_ROOTS/,
    );
    expect(() => loadConfig({ ...roots, SNAPCAT_SAVEPOINT_DIR: '/data/snapshots-2' })).toThrow(
      /SNAPCAT_SAVEPOINT_DIR: \/data\/snapshots-2 is not inside SNAPCAT_STORAGE_ROOTS/,
    );
  });
  describe('SNAPCAT_NAMESPACE_ROOTS (decision 0030)', () => {
    const roots = { SNAPCAT_STORAGE_ROOTS: '/data,s3://bucket' };
    it('maps each namespace to its storage, inside the roots; absent: none', () => {
      expect(loadConfig(roots).namespaceRoots).toEqual({});
      const config = loadConfig({
        ...roots,
        SNAPCAT_NAMESPACE_ROOTS: 'team-a=/data/a, s3a://bucket/a/ ; team-b=/data/b',
      });
      expect(config.namespaceRoots).toEqual({
        'team-a': ['/data/a', 's3a://bucket/a'],
        'team-b': ['/data/b'],
      });
    });

    it.each([
      ['team-a', /"team-a" is not namespace=location/],
      ['Team=/data/a', /Team is not a namespace name/],
      ['team-a=/elsewhere', /\/elsewhere \(namespace team-a\) is not inside SNAPCAT_STORAGE_ROOTS/],
      ['team-a=/data/a;team-a=/data/b', /namespace team-a is given twice/],
      [
        'team-a=/data/a;team-b=/data/a/b',
        /\/data\/a\/b \(namespace team-b\) overlaps \/data\/a \(namespace team-a\)/,
      ],
      ['team-a=s3://bucket/a;team-b=s3p://bucket', /s3p:\/\/bucket \(namespace team-b\) overlaps/],
      [
        'team-a=/data',
        /\/data \(namespace team-a\) overlaps \/data\/checkpoints \(the default directories\)/,
      ],
    ])('%s is refused, naming the variable and the rule', (value, message) => {
      expect(() => loadConfig({ ...roots, SNAPCAT_NAMESPACE_ROOTS: value })).toThrow(ConfigError);
      expect(() => loadConfig({ ...roots, SNAPCAT_NAMESPACE_ROOTS: value })).toThrow(message);
    });
  });
});
