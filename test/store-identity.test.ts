import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newJobId } from './support/ids';
import { startReceiver, type Receiver } from './support/receiver';
import { deleteKeys, startRedisServer } from './support/redis';
import IORedis from 'ioredis';
import {
  ForeignStateError,
  claimStoreNamespace,
  closeRedis,
  connectRedis,
  storeNamespace,
} from '@snapcat/runtime';
import { startRedisCluster } from './support/redis-cluster';
import {
  client,
  runCli,
  startOutcome,
  startService,
  testPrefix,
  type RunningService,
} from './support/service';
import { eventually } from './support/wait';

type Gql = { data?: { jobs: { edges: { node: { id: string } }[] } }; errors?: unknown };

/** The ids of the jobs GraphQL shows (the read model). */
async function jobIds(service: RunningService): Promise<string[]> {
  const res = await fetch(`${service.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ jobs(first: 100) { edges { node { id } } } }' }),
  });
  const body = (await res.json()) as Gql;
  return body.data?.jobs.edges.map((e) => e.node.id) ?? [];
}

describe('a fresh event store beside an old Redis: each store keeps its own Redis state', () => {
  let root: string;
  let receiver: Receiver;
  let redis: IORedis;
  const running: RunningService[] = [];
  const prefix = testPrefix('identity');
  const env = (store: string, extra: Record<string, string> = {}) => ({
    SNAPCAT_EVENT_STORE: `sqlite:${join(root, store, 'events.db')}`,
    SNAPCAT_STORAGE_ROOTS: join(root, store, 'snapshots'),
    SNAPCAT_QUEUE_PREFIX: prefix,
    SNAPCAT_SECRET_KEY: 'test-secret-key-of-at-least-32-characters',
    SNAPCAT_WEBHOOK_ALLOW_PRIVATE: 'true',
    ...extra,
  });
  const start = async (store: string, extra?: Record<string, string>) => {
    const service = await startService(env(store, extra));
    running.push(service);
    return service;
  };
  /** The store id the service logged when it opened its event store. */
  const storeIdOf = (service: RunningService) => {
    const line = service.logs.find((l) => l.includes('"event store identified"'));
    return (JSON.parse(line!) as { store: string }).store;
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'snapcat-identity-'));
    receiver = await startReceiver();
    redis = new IORedis('redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop('SIGKILL')));
    await receiver.close();
    redis.disconnect();
    await deleteKeys(prefix);
    rmSync(root, { recursive: true, force: true });
  });

  it("B sees only its own jobs within 15 s, its schedule fires and its webhook is delivered; refuse exits 2; a stopped store's state is dropped, a running one's kept", async () => {
    const jobA = newJobId();
    const a = await start('a');
    const apiA = client(a.url);
    expect(
      (await apiA.put(`/jobs/${jobA}`, { tasks: ['t'], checkpointing: { numRetained: 2 } })).status,
    ).toBe(201);
    for (let i = 0; i < 40; i += 1) {
      const triggered = await apiA.post(`/jobs/${jobA}/snapshots`, { kind: 'CHECKPOINT' });
      await apiA.post(`/jobs/${jobA}/snapshots/${triggered.body.snapshotId}/acks`, {
        taskId: 't',
        stateSize: 1,
      });
    }
    await eventually(async () => (await jobIds(a)).includes(jobA), 10_000, "A's job in GraphQL");
    const storeA = storeIdOf(a);
    expect(await a.stop()).toBe(0);

    // A fresh store (./data deleted, or another deployment) on the same Redis and prefix.
    const b = await start('b');
    const started = Date.now();
    const storeB = storeIdOf(b);
    expect(storeB).not.toBe(storeA);
    // The prefix is claimed beside start-up (a Redis that is down does not hold the API back): logged once.
    const warned = () => b.logs.filter((l) => l.includes('"level":"warn"') && l.includes(storeA));
    await eventually(() => warned().length > 0, 5000, 'the warning naming both stores');
    expect(warned()).toHaveLength(1);
    expect(warned()[0]).toContain(storeB);
    const apiB = client(b.url);
    const jobB = newJobId();
    const subscribed = await apiB.post('/webhooks', { url: receiver.url });
    expect(subscribed.status).toBe(201);
    receiver.secrets.push(subscribed.body.secret);
    expect((await apiB.put(`/jobs/${jobB}`, { tasks: ['t'] })).status).toBe(201);
    expect((await apiB.put(`/jobs/${jobB}/savepoint-schedule`, { every: 'PT1S' })).status).toBe(200);
    await eventually(
      async () => {
        const ids = await jobIds(b);
        return ids.length === 1 && ids[0] === jobB;
      },
      15_000,
      "only B's job in GraphQL",
    );
    await eventually(
      async () => {
        const job = await apiB.get(`/jobs/${jobB}`);
        return (job.body.snapshots as { triggerType: string }[]).some((s) => s.triggerType === 'PERIODIC');
      },
      15_000,
      "B's periodic savepoint",
    );
    await eventually(
      () => receiver.accepted().some((m) => m.body.includes(jobB)),
      15_000,
      "B's webhook delivered",
    );
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await jobIds(b)).toEqual([jobB]);
    expect(await b.stop()).toBe(0);

    // With refuse, a third fresh store will not start on a prefix that holds B's state.
    const refused = await startOutcome(start('c', { SNAPCAT_ON_FOREIGN_READ_MODEL: 'refuse' }));
    expect(refused).toMatch(/^service exited with 2/);
    expect(refused).toContain(`holds the state of event store ${storeB}`);
    expect(refused).toContain('refusing to start (SNAPCAT_ON_FOREIGN_READ_MODEL=refuse)');

    // A again. B is not running (it holds no lease), so B's state is dropped; A's was dropped when B
    // started (A had stopped), so A rebuilds from its own log, with all 40 checkpoints.
    const keysOf = async (store: string) => (await redis.keys(`${storeNamespace(prefix, store)}:*`)).length;
    expect(await keysOf(storeA)).toBe(0);
    expect(await keysOf(storeB)).toBeGreaterThan(0);
    const again = await start('a');
    expect(storeIdOf(again)).toBe(storeA);
    await eventually(() => again.logs.some((l) => l.includes(`store ${storeB}'s state was dropped`)), 5000);
    expect(await keysOf(storeB)).toBe(0);
    await eventually(async () => (await jobIds(again)).includes(jobA), 10_000, "A's job rebuilt");
    expect(await jobIds(again)).toEqual([jobA]);
    expect((await client(again.url).get(`/jobs/${jobA}`)).body.counts.completed).toBe(40);

    // A second deployment (store D) on the same prefix while A runs: A's state is left alone, A serves on.
    const d = await start('d');
    const storeD = storeIdOf(d);
    await eventually(
      () => d.logs.some((l) => l.includes(`a process of store ${storeA} holds a lease`)),
      5000,
    );
    expect(await jobIds(again)).toEqual([jobA]);
    expect(await jobIds(d)).toEqual([]);
    expect(await d.stop()).toBe(0);

    // The operator lists the stores on the prefix and forgets D's state; A's own cannot be forgotten.
    const cli = (...args: string[]) => runCli(args, env('a'));
    const listed = await cli('redis', 'stores');
    expect(listed.stdout).toMatch(new RegExp(`${storeA} .*this store`));
    expect(listed.stdout).toMatch(new RegExp(`${storeD} .*last started`));
    expect(listed.stdout).not.toContain(storeB);
    expect(await keysOf(storeD)).toBeGreaterThan(0);
    expect(await cli('redis', 'forget', storeD)).toMatchObject({ status: 0 });
    expect(await keysOf(storeD)).toBe(0);
    expect((await cli('redis', 'stores')).stdout).not.toContain(storeD);
    expect(await cli('redis', 'forget', storeA)).toMatchObject({ status: 2 });
    expect(await keysOf(storeA)).toBeGreaterThan(0);
    // Run with another store's settings (a mistyped SNAPCAT_EVENT_STORE), A is another store: still refused
    // while a process of A holds a lease.
    const mistyped = await runCli(['redis', 'forget', storeA], env('d'));
    expect(mistyped).toMatchObject({ status: 2 });
    expect(mistyped.stderr).toContain(`store ${storeA} is running`);
    expect(await keysOf(storeA)).toBeGreaterThan(0);
  }, 120_000);

  it('a backup of the store restored beside the live Redis: its later state is dropped and rebuilt from the log (refuse: exit 2), so nothing written since is skipped', async () => {
    const database = join(root, 'restored', 'events.db');
    const first = await start('restored');
    const api = client(first.url);
    const kept = newJobId();
    expect((await api.put(`/jobs/${kept}`, { tasks: ['t'] })).status).toBe(201);
    await eventually(async () => (await jobIds(first)).includes(kept), 10_000, 'the first job in GraphQL');
    const store = storeIdOf(first);
    expect(await first.stop()).toBe(0);
    copyFileSync(database, `${database}.backup`); // closed cleanly: the WAL is in the file

    const second = await start('restored');
    const lost = [newJobId(), newJobId()];
    for (const jobId of lost)
      expect((await client(second.url).put(`/jobs/${jobId}`, { tasks: ['t'] })).status).toBe(201);
    await eventually(async () => (await jobIds(second)).length === 3, 10_000, 'three jobs in GraphQL');
    expect(await second.stop()).toBe(0);

    // The backup restored: the store has the same id, so the same namespace, and a shorter log.
    copyFileSync(database, `${database}.newer`); // closed cleanly, as above
    for (const suffix of ['-wal', '-shm']) rmSync(`${database}${suffix}`, { force: true });
    copyFileSync(`${database}.backup`, database);
    expect(existsSync(`${database}-wal`)).toBe(false);
    const refused = await startOutcome(start('restored', { SNAPCAT_ON_FOREIGN_READ_MODEL: 'refuse' }));
    expect(refused).toMatch(/^service exited with 2/);
    expect(refused).toContain(`a later point of event store ${store}'s log`);
    expect(refused).toContain('start once with SNAPCAT_ON_FOREIGN_READ_MODEL=rebuild');

    const restored = await start('restored');
    expect(storeIdOf(restored)).toBe(store);
    // The drop, logged as an error, is done before the process is up (its queue workers and consumers start
    // after it, not on keys it is deleting).
    const dropped = restored.logs.findIndex(
      (l) => l.includes('"level":"error"') && l.includes('a later point of event store'),
    );
    const listening = restored.logs.findIndex((l) => l.includes('"msg":"listening"'));
    expect(dropped).toBeGreaterThanOrEqual(0);
    expect(dropped).toBeLessThan(listening);
    // Events written now take the positions the lost ones had: they are projected, not skipped as seen.
    const after = newJobId();
    expect((await client(restored.url).put(`/jobs/${after}`, { tasks: ['t'] })).status).toBe(201);
    await eventually(
      async () => (await jobIds(restored)).sort().join() === [kept, after].sort().join(),
      15_000,
      'the restored job and the new one in GraphQL, the lost ones gone',
    );
    expect(restored.logs.filter((l) => l.includes('queue error'))).toEqual([]);

    // Back to the newer file: its log ends past every position the backup's run saved, but the events at
    // those positions are other ones (a walkthrough's read model then listed a job only the backup had).
    expect(await restored.stop()).toBe(0);
    for (const suffix of ['-wal', '-shm']) rmSync(`${database}${suffix}`, { force: true });
    copyFileSync(`${database}.newer`, database);
    const newer = await start('restored');
    expect(newer.logs.some((l) => l.includes('"level":"error"') && l.includes('another timeline'))).toBe(
      true,
    );
    await eventually(
      async () => (await jobIds(newer)).sort().join() === [kept, ...lost].sort().join(),
      15_000,
      "the newer file's jobs in GraphQL, not the backup's",
    );
    expect(await newer.stop()).toBe(0);
  }, 120_000);

  it('state of a later point of the store’s log is not dropped while a process of it runs (holds a lease): refused, whatever the policy', async () => {
    const space = `${prefix}-timeline`;
    const ns = storeNamespace(space, '00000000000000cc');
    const errors: string[] = [];
    const log = { error: (m: string) => errors.push(m), warn: () => {} };
    const emptyLog = async () => undefined; // the restored store has no event yet
    try {
      await redis.set(`${ns}:rm:position`, '42:42');
      await redis.set(`${ns}:pm:lease`, 'another-process', 'PX', 5000);
      await expect(
        claimStoreNamespace(redis, space, '00000000000000cc', 'rebuild', log, { logEnd: emptyLog }),
      ).rejects.toThrow(/holds a lease on that state/);
      expect(await redis.get(`${ns}:rm:position`)).toBe('42:42'); // nothing dropped
      await redis.del(`${ns}:pm:lease`); // the other copy stopped
      await claimStoreNamespace(redis, space, '00000000000000cc', 'rebuild', log, { logEnd: emptyLog });
      expect(errors).toEqual([expect.stringContaining('that state was dropped')]);
      expect(await redis.get(`${ns}:rm:position`)).toBeNull();
    } finally {
      await deleteKeys(space);
    }
  });

  it('state of a later point is not dropped under a process that went on without the claim (Redis answered late): refused, even before its consumers hold a lease', async () => {
    const space = `${prefix}-late`;
    const ns = storeNamespace(space, '00000000000000dd');
    const log = { error: () => {}, warn: () => {} };
    const emptyLog = async () => undefined;
    try {
      await redis.set(`${ns}:rm:position`, '42:42'); // no lease: the claim answered before any consumer's
      await expect(
        claimStoreNamespace(
          redis,
          space,
          '00000000000000dd',
          'rebuild',
          log,
          { logEnd: emptyLog },
          () => true,
        ),
      ).rejects.toThrow(/started its consumers while Redis did not answer/);
      expect(await redis.get(`${ns}:rm:position`)).toBe('42:42'); // nothing dropped
    } finally {
      await deleteKeys(space);
    }
  });

  it('state written before stores had ids counts as foreign: a warning, or refused; the same store is quiet', async () => {
    const space = `${prefix}-legacy`;
    const warnings: string[] = [];
    const log = { error: () => {}, warn: (m: string) => warnings.push(m) };
    try {
      await redis.set(`${space}:rm:current`, '3'); // what a pre-identity snapcat left
      await expect(claimStoreNamespace(redis, space, '00000000000000aa', 'refuse', log)).rejects.toThrow(
        ForeignStateError,
      );
      expect(await redis.get(`${space}:store`)).toBeNull(); // refusing changed nothing
      await claimStoreNamespace(redis, space, '00000000000000aa', 'rebuild', log);
      expect(warnings).toEqual([expect.stringContaining('from before stores had ids')]);
      await claimStoreNamespace(redis, space, '00000000000000aa', 'refuse', log);
      expect(warnings).toHaveLength(1);
      await expect(claimStoreNamespace(redis, space, '00000000000000bb', 'refuse', log)).rejects.toThrow(
        /holds the state of event store 00000000000000aa, not of this event store 00000000000000bb/,
      );
    } finally {
      await deleteKeys(space);
    }
  });
});

describe('the store claim on a 3-master Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let redis: ReturnType<typeof connectRedis>;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    redis = connectRedis(cluster.url);
  }, 60_000);
  afterAll(async () => {
    await closeRedis(redis);
    await cluster.stop();
  });

  it('records the store, and finds state from before stores had ids, whichever slots its keys lie in (no CROSSSLOT)', async () => {
    const warnings: string[] = [];
    const log = { error: () => {}, warn: (m: string) => warnings.push(m) };
    await claimStoreNamespace(redis, 'fresh', '00000000000000aa', 'refuse', log);
    expect(await redis.get('fresh:store')).toBe('00000000000000aa');
    // The legacy keys lie in different slots; the last of them alone is left.
    await redis.set('legacy:jobs', '1');
    await expect(claimStoreNamespace(redis, 'legacy', '00000000000000aa', 'refuse', log)).rejects.toThrow(
      ForeignStateError,
    );
    await claimStoreNamespace(redis, 'legacy', '00000000000000aa', 'rebuild', log);
    expect(warnings).toEqual([expect.stringContaining('from before stores had ids')]);
    expect(await redis.get('legacy:store')).toBe('00000000000000aa');
  }, 60_000);
});

describe('a restored backup of the store while Redis hangs at the start', () => {
  it('the process whose consumers started on the later state exits 2 once Redis answers; its restart drops that state and rebuilds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-identity-hung-'));
    const redis = await startRedisServer();
    const database = join(dir, 'events.db');
    const env = {
      SNAPCAT_EVENT_STORE: `sqlite:${database}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_REDIS_URL: redis.url,
      SNAPCAT_QUEUE_PREFIX: testPrefix('hung'), // one for every start: the state the restore is beside
    };
    const jobsOf = async (service: RunningService) => (await jobIds(service)).sort();
    const services: RunningService[] = [];
    const start = async () => {
      services.push(await startService(env));
      return services[services.length - 1]!;
    };
    try {
      const first = await start();
      const kept = newJobId();
      expect((await client(first.url).put(`/jobs/${kept}`, { tasks: ['t'] })).status).toBe(201);
      await eventually(async () => (await jobsOf(first)).includes(kept), 10_000, 'the first job shown');
      expect(await first.stop()).toBe(0);
      copyFileSync(database, `${database}.backup`);
      const second = await start();
      expect((await client(second.url).put(`/jobs/${newJobId()}`, { tasks: ['t'] })).status).toBe(201);
      await eventually(async () => (await jobsOf(second)).length === 2, 10_000, 'two jobs shown');
      expect(await second.stop()).toBe(0);
      for (const suffix of ['-wal', '-shm']) rmSync(`${database}${suffix}`, { force: true });
      copyFileSync(`${database}.backup`, database);

      // Redis hangs while the restored store starts: the claim waits for it in the background, and the
      // consumers start meanwhile (on positions past this log's end). Once Redis answers, that process stops.
      redis.pause();
      const third = await start();
      redis.resume();
      await eventually(async () => third.child.exitCode !== null, 20_000, 'the third process exits');
      expect(await third.stop()).toBe(2);
      expect(third.logs.join('')).toContain('a later point of event store');

      // Its restart (leases expire within 5 s) claims before its consumers start: dropped, rebuilt.
      await new Promise((resolve) => setTimeout(resolve, 5500));
      const restarted = await start();
      const after = newJobId();
      expect((await client(restarted.url).put(`/jobs/${after}`, { tasks: ['t'] })).status).toBe(201);
      await eventually(
        async () => (await jobsOf(restarted)).join() === [kept, after].sort().join(),
        15_000,
        'the restored job and the new one shown, the lost one gone',
      );
    } finally {
      await Promise.all(services.map((s) => s.stop('SIGKILL')));
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('the store’s record on the Redis prefix', () => {
  it('is written again by a running process when Redis lost it (a FLUSHDB), so a store started later is told of this one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-identity-kept-'));
    const prefix = testPrefix('kept');
    const redis = connectRedis('redis://127.0.0.1:6379');
    const service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
    });
    try {
      await eventually(async () => (await redis.get(`${prefix}:store`)) !== null, 10_000, 'the claim');
      const store = (await redis.get(`${prefix}:store`))!;
      await redis.del(`${prefix}:store`, `${prefix}:stores`);
      await eventually(async () => (await redis.get(`${prefix}:store`)) === store, 10_000, 'recorded again');
      expect(await redis.hkeys(`${prefix}:stores`)).toEqual([store]);
      expect(service.logs.join('')).toContain(`Redis lost the record of event store ${store}`);
    } finally {
      await service.stop();
      await closeRedis(redis);
      await deleteKeys(prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
