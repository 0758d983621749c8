import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { restoredDirectory, snapshotView, type JobState } from '@snapcat/domain';
import { jobStream } from '@snapcat/application';
import {
  StoreAccessDeniedError,
  formatPosition,
  type LogSubscribeOptions,
  type Position,
  type RecordedEvent,
} from '@snapcat/event-store';
import { Projector, ReadModel, ReadModelKeys, verifyReadModel, type SnapshotEventMessage } from '../src';
import { storedJobViews } from '../src/writes';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { eventually } from '../../../test/support/wait';
import { MemoryEventStore, checkpoint, configure, decideAll, job, writeJob } from './jobs';

// The projector in this process, on a memory store and the real Redis, with a fast tick: what it writes,
// publishes and measures, and how it hands over. (projector.test.ts: crashes, fencing, rebuilds, on SQLite.)
const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(prefix);
  redis.disconnect();
});

function setUp(name: string, options: { cacheSize?: number } = {}) {
  const prefix = testPrefix(`rm-live-${name}`);
  prefixes.push(prefix);
  const store = new MemoryEventStore();
  const published: SnapshotEventMessage[] = [];
  const logs: { level: string; message: string; fields?: object }[] = [];
  const log = (level: string) => (message: string, fields?: object) =>
    logs.push({ level, message, ...(fields ? { fields } : {}) });
  const projectors: Projector[] = [];
  const make = (over: Partial<ConstructorParameters<typeof Projector>[0]> = {}) => {
    const projector = new Projector({
      store,
      redis,
      prefix,
      log: { info: log('info'), error: log('error') },
      publish: (m) => published.push(m),
      tickMs: 50,
      leaseMs: 1000,
      ...options,
      ...over,
    });
    projectors.push(projector);
    return projector;
  };
  const keys = new ReadModelKeys(prefix);
  const readModel = new ReadModel(redis, prefix);
  const caughtUp = async () => {
    const [last] = await store.readAll({ direction: 'backwards', maxCount: 1 });
    expect(await readModel.waitFor(last!.position, 10_000)).toBe(true);
  };
  return {
    prefix,
    store,
    published,
    logs,
    make,
    keys,
    readModel,
    caughtUp,
    async stop() {
      for (const p of projectors) await p.stop();
    },
  };
}

const quiet = { info: () => {}, error: () => {} };

const views = (state: JobState) => {
  const { summary, tasks } = storedJobViews(state);
  return JSON.parse(JSON.stringify({ summary, tasks })) as { summary: unknown; tasks: string[] };
};

describe('projector (in process)', () => {
  it('writes each job’s views, its applied revision and the position, and publishes every event once', async () => {
    const t = setUp('views');
    try {
      const a = await writeJob(t.store, job(1), 2);
      const projector = t.make();
      await projector.start();
      expect(await redis.get(t.keys.current)).toBe('1');
      expect(projector.active).toBe(true);
      expect(t.logs).toContainEqual({
        level: 'info',
        message: 'projector active: it holds the lease',
        fields: { prefix: t.prefix },
      });
      await t.caughtUp();
      const space = t.keys.space(1);
      expect(await t.readModel.job(job(1))).toEqual(views(a).summary);
      expect(await t.readModel.tasks(job(1))).toEqual(['a', 'b']);
      expect(await t.readModel.snapshot(job(1), 2)).toEqual(
        JSON.parse(JSON.stringify({ jobId: job(1), ...snapshotView(a.snapshots.get(2)!) })),
      );
      expect(await redis.hget(space.applied, job(1))).toBe(String(a.version - 1));
      expect(await redis.zrange(space.jobs, 0, -1)).toEqual([job(1)]);
      // Live: a second job and more of the first.
      const b = await writeJob(t.store, job(2), 0);
      const a2 = await decideAll(t.store, job(1), checkpoint(3), a);
      await t.caughtUp();
      expect(await t.readModel.job(job(2))).toEqual(views(b).summary);
      expect(await t.readModel.job(job(1))).toEqual(views(a2).summary);
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
      // Published: every event, in order, as the log has it.
      const all = await t.store.readAll({ maxCount: 1000 });
      expect(t.published.map((m) => m.position)).toEqual(all.map((e) => formatPosition(e.position)));
      expect(projector.stats).toMatchObject({ applied: all.length, shared: 0 }); // no shared states given
      const [registered] = t.published;
      const first = all[0]!;
      expect(registered).toEqual({
        jobId: job(1),
        type: 'JobRegistered',
        snapshotId: null,
        revision: '0',
        position: formatPosition(first.position),
        occurredAt: (first.data as { occurredAt: string }).occurredAt,
        data: first.data,
      });
      expect(t.published.find((m) => m.type === 'SnapshotTriggered')).toMatchObject({
        snapshotId: 1,
        revision: '1',
      });
      expect(await redis.get(space.position)).toBe(formatPosition(all[all.length - 1]!.position));
    } finally {
      await t.stop();
    }
  });

  it('an event delivered again (the stored position went back) is a duplicate: not applied, not published', async () => {
    const t = setUp('duplicates');
    try {
      await writeJob(t.store, job(1), 1);
      const first = t.make();
      await first.start();
      await t.caughtUp();
      await first.stop();
      const published = t.published.length;
      await redis.set(t.keys.space(1).position, '-1:-1');
      const second = t.make();
      await second.start();
      await eventually(() => second.stats.duplicates === published, 10_000, 'every event seen again');
      expect(second.stats.applied).toBe(0);
      expect(t.published).toHaveLength(published);
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('measures the lag of the last 1,000 events and writes it to Redis every second', async () => {
    const t = setUp('lag');
    try {
      const projector = t.make();
      expect(projector.lag()).toEqual({ last: null, p99: null, samples: 0 });
      // History appended before the projector ran is caught up with, not lag: its age is no delay of it.
      await writeJob(t.store, job(900), 1);
      await new Promise((r) => setTimeout(r, 300));
      await projector.start();
      const appending = Date.now();
      await writeJob(t.store, job(1), 1);
      await t.caughtUp();
      const lag = projector.lag();
      expect(lag.samples).toBe(5);
      expect(lag.last).toBeGreaterThanOrEqual(0);
      expect(lag.p99).toBeGreaterThanOrEqual(lag.last!);
      expect(lag.p99).toBeLessThanOrEqual(Date.now() - appending); // from append to written, in ms
      await eventually(async () => (await t.readModel.lag()) !== null, 5000, 'the lag written');
      const stored = (await t.readModel.lag())!;
      expect(stored).toMatchObject({ last: lag.last, p99: lag.p99, samples: 5 });
      expect(stored.at).toBeGreaterThan(Date.now() - 5000);
      // Many events: only the last 1,000 are kept.
      for (let n = 2; n <= 205; n += 1) await writeJob(t.store, job(n), 1); // 1,025 events
      await t.caughtUp();
      expect(projector.lag().samples).toBe(1000);
    } finally {
      await t.stop();
    }
  });

  it('p99 is the value below which 99% of the samples lie', async () => {
    const t = setUp('p99');
    const projector = t.make();
    const lags = (projector as unknown as { lags: number[] }).lags;
    lags.push(...Array.from({ length: 200 }, (_, i) => 200 - i));
    expect(projector.lag()).toEqual({ last: 1, p99: 199, samples: 200 });
    lags.splice(0, lags.length, 5);
    expect(projector.lag()).toEqual({ last: 5, p99: 5, samples: 1 });
  });

  it('one projector holds the lease; when it stops (releasing it) the other takes over from the position', async () => {
    const t = setUp('handover');
    try {
      await writeJob(t.store, job(1), 1);
      const a = t.make();
      const b = t.make();
      await a.start();
      await b.start();
      await t.caughtUp();
      expect([a.active, b.active]).toEqual([true, false]);
      await a.stop();
      expect(await redis.get(t.keys.lease)).toBeNull();
      await eventually(() => b.active, 5000, 'b active');
      await writeJob(t.store, job(2), 0);
      await t.caughtUp();
      expect(b.stats.applied).toBe(1);
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('a projector whose lease was taken stands by, says so, and writes nothing', async () => {
    const t = setUp('standby');
    try {
      const projector = t.make();
      await projector.start();
      await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      await redis.set(t.keys.lease, 'someone-else', 'PX', 60_000);
      await eventually(() => !projector.active, 5000, 'standing by');
      expect(t.logs).toContainEqual({ level: 'info', message: 'projector lost its lease; standing by' });
      const position = await t.readModel.position();
      await writeJob(t.store, job(2), 0);
      await new Promise((r) => setTimeout(r, 300));
      expect(await t.readModel.position()).toEqual(position);
      expect(await t.readModel.job(job(2))).toBeNull();
      await redis.del(t.keys.lease);
      await t.caughtUp();
      expect(await t.readModel.job(job(2))).not.toBeNull();
    } finally {
      await t.stop();
    }
  });

  it('a batch found fenced by another holder is not written, and the projector resubscribes', async () => {
    const t = setUp('fenced');
    try {
      const projector = t.make({ tickMs: 60_000 }); // no renewal: the lease is taken between two ticks
      await projector.start();
      await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      await redis.set(t.keys.lease, 'someone-else', 'PX', 60_000);
      await writeJob(t.store, job(2), 0);
      await eventually(
        () => t.logs.some((l) => l.message === 'projector stopped; resubscribing'),
        5000,
        'the failed batch',
      );
      expect(t.logs).toContainEqual({
        level: 'error',
        message: 'projector stopped; resubscribing',
        fields: { error: 'LeaseLostError: another projector holds the lease: batch not written' },
      });
      expect(projector.active).toBe(false);
      expect(await t.readModel.job(job(2))).toBeNull();
    } finally {
      await t.stop();
    }
  });

  it('follows a switch of `current` to another key space, from that space’s position', async () => {
    const t = setUp('switch');
    try {
      const projector = t.make();
      await projector.start();
      await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      await redis.set(t.keys.current, '2'); // a rebuild switched over to an empty version 2
      await eventually(
        async () => (await redis.get(t.keys.space(2).position)) !== null,
        5000,
        'version 2 filled',
      );
      await t.caughtUp();
      expect(await redis.get(t.keys.space(2).job(job(1)))).not.toBeNull();
      await writeJob(t.store, job(2), 0);
      await t.caughtUp();
      expect(await redis.get(t.keys.space(2).job(job(2)))).not.toBeNull();
      expect(await redis.get(t.keys.space(1).job(job(2)))).toBeNull();
    } finally {
      await t.stop();
    }
  });

  it('reloads a job’s state after a gap, and keeps at most cacheSize states', async () => {
    const t = setUp('cache', { cacheSize: 1 });
    try {
      const projector = t.make();
      await projector.start();
      const a = await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      const b = await writeJob(t.store, job(2), 0);
      await t.caughtUp();
      expect(projector.stats.reloads).toBe(2); // first sight of each job
      const a1 = await decideAll(t.store, job(1), checkpoint(1), a); // job 1 was evicted: reloaded
      await t.caughtUp();
      expect(projector.stats.reloads).toBe(3);
      await decideAll(t.store, job(1), [{ type: 'ChangeJobStatus', status: 'SUSPENDED' }], a1);
      await t.caughtUp();
      expect(projector.stats.reloads).toBe(3); // job 1 is the one cached now
      await decideAll(t.store, job(2), checkpoint(1), b);
      await t.caughtUp();
      expect(projector.stats.reloads).toBe(4);
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('uses the state another component holds at the exact revision instead of folding', async () => {
    const t = setUp('shared');
    try {
      const state = await writeJob(t.store, job(1), 0);
      const asked: [string, bigint][] = [];
      const renamed = { ...state, name: 'from the command bus' } as JobState;
      const projector = t.make({
        sharedStates: {
          cachedState: (jobId, revision) => {
            asked.push([jobId, revision]);
            return revision === 0n ? renamed : undefined;
          },
        },
      });
      await projector.start();
      await t.caughtUp();
      expect(asked).toEqual([[job(1), 0n]]);
      expect(projector.stats).toMatchObject({ shared: 1, reloads: 0 });
      expect(await t.readModel.job(job(1))).toMatchObject({ name: 'from the command bus' });
    } finally {
      await t.stop();
    }
  });

  it('a failing write is logged, and the projector resubscribes and catches up', async () => {
    const t = setUp('failing');
    let failures = 1;
    const flaky = intercepting('hmget', (method) => async (...args) => {
      if (failures === 0) return method(...args);
      failures -= 1;
      throw new Error('redis hiccup');
    });
    try {
      const projector = t.make({ redis: flaky });
      await projector.start();
      await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      expect(t.logs).toContainEqual({
        level: 'error',
        message: 'projector stopped; resubscribing',
        fields: { error: 'Error: redis hiccup' },
      });
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('writes more than 1,000 events arriving at once in batches of at most 1,000', async () => {
    const t = setUp('batches');
    try {
      for (let n = 1; n <= 210; n += 1) await writeJob(t.store, job(n), 1); // 210 x 5 events
      const execs: number[] = [];
      const before: number[] = [];
      const counting = new Proxy(redis, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver) as unknown;
          if (property === 'multi') {
            return () => {
              const tx = (value as () => ReturnType<IORedis['multi']>).call(target);
              const exec = tx.exec.bind(tx);
              tx.exec = async () => {
                execs.push(tx.length);
                const published = t.published.length; // the events of the batches written before
                const result = await exec();
                if (result !== null) before.push(published); // not a retry after a lease renewal
                return result;
              };
              return tx;
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const projector = t.make({ redis: counting as IORedis });
      await projector.start();
      await t.caughtUp();
      // The position is in Redis when EXEC answers; the projector counts the batch a moment later.
      await eventually(() => projector.stats.applied >= 1050, 5_000, 'the second batch counted');
      expect(projector.stats.applied).toBe(1050);
      expect(execs.length).toBeGreaterThanOrEqual(2);
      expect(before.slice(0, 2)).toEqual([0, 1000]); // the first batch: exactly 1,000 events
      expect(t.logs.filter((l) => l.level === 'error')).toEqual([]); // no flush of an empty batch failed
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
      const events: RecordedEvent[] = await t.store.readAll({ maxCount: 2000 });
      expect(t.published).toHaveLength(events.length);
    } finally {
      await t.stop();
    }
  });
});

/** The store, with every subscription it opened: each can be dropped as a failing connection would. */
function tracked(store: MemoryEventStore) {
  const subscriptions: {
    handler: (e: RecordedEvent) => unknown;
    drop: (error: Error) => Promise<void>;
  }[] = [];
  const proxy = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'subscribeToAll') {
        return (
          options: Parameters<MemoryEventStore['subscribeToAll']>[0],
          handler: (e: RecordedEvent) => void | Promise<void>,
          onError?: (error: unknown) => void,
        ) => {
          const inner = target.subscribeToAll(options, handler, onError);
          subscriptions.push({
            handler,
            drop: async (error) => {
              await inner.close();
              onError?.(error);
            },
          });
          return inner;
        };
      }
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
  return { store: proxy, subscriptions };
}

/**
 * The store, but its subscriptions deliver nothing by themselves: the test hands each its events and
 * checkpoints, in the order and grouping it chooses, and fails it when it says.
 */
function scripted(store: MemoryEventStore) {
  const subscriptions: {
    deliver: (e: RecordedEvent) => Promise<void>;
    checkpoint: (position: Position) => void;
    fail: (error: Error) => void;
  }[] = [];
  const proxy = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'subscribeToAll') {
        return (
          options: LogSubscribeOptions,
          handler: (e: RecordedEvent) => void | Promise<void>,
          onError?: (error: unknown) => void,
        ) => {
          subscriptions.push({
            deliver: async (e) => handler(e),
            checkpoint: (position) => void options.onCheckpoint?.(position),
            fail: (error) => onError?.(error),
          });
          return { close: async () => {} };
        };
      }
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
  return { store: proxy, subscriptions };
}

type Command = (...args: unknown[]) => Promise<unknown>;

/** The real Redis client with one command wrapped: `wrap` gets the client's own, bound, and calls it or not. */
function intercepting(command: string, wrap: (original: Command) => Command): IORedis {
  return new Proxy(redis, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const method = (value as Command).bind(target);
      return property === command ? wrap(method) : method;
    },
  });
}

/** The real Redis client, with its next lease renewal (the ACQUIRE script) held or failed on demand. */
function leaseControlled() {
  const control: { next?: 'hold' | 'fail'; held?: Promise<void>; release?: () => void; holding?: boolean } =
    {};
  const proxy = intercepting('eval', (method) => async (...args) => {
    const acquire = String(args[0]).includes("'PEXPIRE'");
    if (acquire && control.next === 'fail') {
      control.next = undefined;
      throw new Error('redis hiccup in the lease');
    }
    if (acquire && control.next === 'hold') {
      control.next = undefined;
      control.holding = true;
      await new Promise<void>((r) => (control.release = r));
      control.holding = false;
    }
    return method(...args);
  });
  return { redis: proxy, control };
}

describe('projector (in process): its ticks, lease and subscription', () => {
  it('while active it renews the lease every tick, for leaseMs, with one subscription and one log line; a standby says nothing', async () => {
    const t = setUp('quiet');
    const { store, subscriptions } = tracked(t.store);
    try {
      await writeJob(t.store, job(1), 0);
      const a = t.make({ store });
      const b = t.make({ store });
      await a.start();
      await b.start();
      await t.caughtUp();
      const ttl = await redis.pttl(t.keys.lease);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1000); // leaseMs: 1000
      await new Promise((r) => setTimeout(r, 400)); // 8 ticks of each
      expect([a.active, b.active]).toEqual([true, false]);
      expect(subscriptions).toHaveLength(1); // a renewal does not resubscribe
      expect(t.logs.filter((l) => l.message === 'projector active: it holds the lease')).toHaveLength(1);
      expect(t.logs.filter((l) => l.message === 'projector lost its lease; standing by')).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('without leaseMs the lease lasts 5 seconds', async () => {
    const t = setUp('default-lease');
    try {
      const projector = new Projector({ store: t.store, redis, prefix: t.prefix, log: quiet });
      await projector.start();
      const ttl = await redis.pttl(t.keys.lease);
      await projector.stop();
      expect(ttl).toBeGreaterThan(4000);
      expect(ttl).toBeLessThanOrEqual(5000);
    } finally {
      await t.stop();
    }
  });

  it('writes no lag before it has applied an event', async () => {
    const t = setUp('no-lag');
    try {
      await t.make().start();
      await new Promise((r) => setTimeout(r, 1300)); // the lag is flushed every second
      expect(await t.readModel.lag()).toBeNull();
    } finally {
      await t.stop();
    }
  });

  it('stop() during a tick waits for the tick; then the lease is released and nothing runs', async () => {
    const t = setUp('stop-in-tick');
    const { redis: held, control } = leaseControlled();
    try {
      await writeJob(t.store, job(1), 0);
      const projector = t.make({ redis: held });
      await projector.start();
      await t.caughtUp();
      control.next = 'hold';
      await eventually(() => control.holding === true, 5000, 'a tick renewing the lease');
      const stopped = projector.stop().then(() => 'stopped');
      await new Promise((r) => setTimeout(r, 100));
      control.release!();
      const timeout = new Promise((r) => setTimeout(() => r('stop() did not return'), 3000));
      expect(await Promise.race([stopped, timeout])).toBe('stopped');
      await new Promise((r) => setTimeout(r, 200)); // past several tick intervals
      expect(projector.active).toBe(false);
      expect(await redis.get(t.keys.lease)).toBeNull();
    } finally {
      control.release?.();
      await t.stop();
    }
  });

  it('stop() while start() is still running: it ends stopped, with the lease released and no timer left', async () => {
    const t = setUp('stop-in-start');
    try {
      await writeJob(t.store, job(1), 0);
      const intervals = jest.spyOn(global, 'setInterval');
      const projector = t.make();
      const started = projector.start();
      await projector.stop();
      await started;
      await new Promise((r) => setTimeout(r, 200));
      expect(projector.active).toBe(false);
      expect(await redis.get(t.keys.lease)).toBeNull();
      expect(await t.readModel.job(job(1))).toBeNull();
      expect(intervals).not.toHaveBeenCalled(); // no tick nor lag timer started after stop()
    } finally {
      jest.restoreAllMocks();
      await t.stop();
    }
  });

  it('a tick that fails is logged, and the next one carries on', async () => {
    const t = setUp('tick-fails');
    const { redis: flaky, control } = leaseControlled();
    try {
      const projector = t.make({ redis: flaky });
      await projector.start();
      await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      control.next = 'fail';
      await eventually(() => control.next === undefined, 5000, 'the failed tick');
      await eventually(() => t.logs.some((l) => l.level === 'error'), 5000, 'the error logged');
      expect(t.logs).toContainEqual({
        level: 'error',
        message: 'projector tick failed',
        fields: { error: 'Error: redis hiccup in the lease' },
      });
      await writeJob(t.store, job(2), 0);
      await t.caughtUp();
      expect(projector.active).toBe(true);
      expect(await t.readModel.job(job(2))).not.toBeNull();
    } finally {
      await t.stop();
    }
  });

  it('with `current` deleted under it, it keeps writing version 1, where readers look', async () => {
    const t = setUp('current-gone');
    try {
      await t.make().start();
      await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      await redis.del(t.keys.current);
      await new Promise((r) => setTimeout(r, 150)); // a few ticks without it
      await writeJob(t.store, job(2), 0);
      const [last] = await t.store.readAll({ direction: 'backwards', maxCount: 1 });
      expect(await t.readModel.waitFor(last!.position, 3000)).toBe(true);
      expect(await redis.get(t.keys.space(1).job(job(2)))).not.toBeNull();
      expect(await redis.keys(`${t.keys.space(0).ns}:*`)).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('a subscription that fails is logged, and the projector subscribes again from the stored position', async () => {
    const t = setUp('dropped');
    const { store, subscriptions } = tracked(t.store);
    try {
      const projector = t.make({ store });
      await projector.start();
      await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      await subscriptions[0]!.drop(new Error('connection dropped'));
      expect(t.logs).toContainEqual({
        level: 'error',
        message: 'projector stopped; resubscribing',
        fields: { error: 'Error: connection dropped' },
      });
      await writeJob(t.store, job(2), 0);
      const [last] = await t.store.readAll({ direction: 'backwards', maxCount: 1 });
      expect(await t.readModel.waitFor(last!.position, 3000)).toBe(true);
      expect(subscriptions).toHaveLength(2);
      expect(await t.readModel.job(job(2))).not.toBeNull();
      expect(projector.stats.duplicates).toBe(0); // from the stored position: nothing delivered twice
    } finally {
      await t.stop();
    }
  });

  it('an event a closed subscription still delivers is ignored, and the new one carries on', async () => {
    const t = setUp('late');
    const { store, subscriptions } = tracked(t.store);
    try {
      const projector = t.make({ store });
      await projector.start();
      await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      const [late] = await t.store.readAll({ maxCount: 1 });
      await subscriptions[0]!.drop(new Error('connection dropped'));
      await eventually(() => subscriptions.length === 2, 5000, 'subscribed again');
      await new Promise((r) => setTimeout(r, 50));
      await subscriptions[0]!.handler({ ...late!, revision: 5n }); // as if left in the old one's buffer
      await writeJob(t.store, job(2), 0);
      const [last] = await t.store.readAll({ direction: 'backwards', maxCount: 1 });
      expect(await t.readModel.waitFor(last!.position, 3000)).toBe(true);
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
      expect(await redis.hget(t.keys.space(1).applied, job(1))).toBe('0');
    } finally {
      await t.stop();
    }
  });

  it('a switch of `current` while a write is in flight: the new key space is followed once that write ended, and gets every event', async () => {
    const t = setUp('switch-in-flight');
    const { store, subscriptions } = tracked(t.store);
    // The projector's reads of applied revisions wait at a gate while `hold` (the real Redis; the command is
    // sent when the gate opens): a write of version 1 in flight, between its read and its MULTI.
    let hold = false;
    let held!: () => void;
    const reached = new Promise<void>((resolve) => (held = resolve));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const gated = intercepting('hmget', (method) => async (...args) => {
      if (hold) {
        held();
        await gate;
      }
      return method(...args);
    });
    try {
      // A lease longer than the hold: the held write still commits to version 1 when the gate opens.
      const projector = t.make({ store, redis: gated, leaseMs: 10_000 });
      await projector.start();
      await writeJob(t.store, job(1), 1);
      await t.caughtUp();
      hold = true;
      await writeJob(t.store, job(2), 1); // a job the projector has not seen: its write reads its revision
      await reached;
      await redis.set(t.keys.current, '2'); // as a rebuild's switch does (the projector then fills version 2)
      await new Promise((resolve) => setTimeout(resolve, 1000)); // 20 ticks: time enough to switch
      // Before the fix, version 2 was followed at once: its events waited behind the held write, whose
      // job-2 revision stayed in the cache, so version 2 skipped job 2's events as already applied.
      expect(subscriptions).toHaveLength(1);
      hold = false;
      open();
      await eventually(() => subscriptions.length === 2, 5000, 'version 2 followed');
      const [last] = await t.store.readAll({ direction: 'backwards', maxCount: 1 });
      expect(await t.readModel.waitFor(last!.position, 5000)).toBe(true);
      const lastRevision = async (jobId: string) =>
        String((await t.store.readStream(jobStream(jobId), { maxCount: 1000 })).length - 1);
      const expected = [await lastRevision(job(1)), await lastRevision(job(2))];
      expect(await redis.hmget(t.keys.space(2).applied, job(1), job(2))).toEqual(expected);
      expect(await redis.hmget(t.keys.space(1).applied, job(1), job(2))).toEqual(expected);
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
    } finally {
      open();
      await t.stop();
    }
  });

  it('reads each job’s applied revision from Redis once, not in every batch', async () => {
    const t = setUp('applied-once');
    const fields: string[] = [];
    const counting = intercepting('hmget', (method) => (key, ...ids) => {
      fields.push(...(ids as string[]));
      return method(key, ...ids);
    });
    try {
      const projector = t.make({ redis: counting });
      await projector.start();
      const a = await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      await decideAll(t.store, job(1), checkpoint(1), a);
      await t.caughtUp();
      await writeJob(t.store, job(2), 0);
      await t.caughtUp();
      expect(fields).toEqual([job(1), job(2)]);
    } finally {
      await t.stop();
    }
  });
});

describe('projector (in process): checkpoints, hard-deleted jobs, refusals', () => {
  /** Job 1's events, two events of another stream, job 2's events, one more of another stream. */
  async function logWithOtherStreams(store: MemoryEventStore) {
    const other = () => store.append('snapcat-webhooks', [{ id: randomUUID(), type: 'X', data: {} }], 'any');
    await writeJob(store, job(1), 0);
    await other();
    await other();
    await writeJob(store, job(2), 0);
    await other();
    const log = await store.readAll({ maxCount: 100 });
    const of = (n: number) => log.filter((e) => e.streamId === jobStream(job(n)));
    const others = log.filter((e) => e.streamId === 'snapcat-webhooks').map((e) => e.position);
    return { job1: of(1), job2: of(2), others };
  }

  it('the position written with a batch is the later of its last event and its checkpoint; a checkpoint alone is written too', async () => {
    const t = setUp('checkpoint-batches');
    const { store, subscriptions } = scripted(t.store);
    try {
      const { job1, job2, others } = await logWithOtherStreams(t.store);
      const position = async () => redis.get(t.keys.space(1).position);
      await t.make({ store }).start();
      const [subscription] = subscriptions;
      // Job 1's events, then a checkpoint past them (the other stream scanned), in one turn: one batch.
      for (const e of job1) void subscription!.deliver(e);
      subscription!.checkpoint(others[0]!);
      expect(await t.readModel.waitFor(others[0]!, 3000)).toBe(true);
      expect(await position()).toBe(formatPosition(others[0]!));
      // A checkpoint, then the events after it, in one turn.
      subscription!.checkpoint(others[1]!);
      for (const e of job2) void subscription!.deliver(e);
      const last = job2[job2.length - 1]!.position;
      expect(await t.readModel.waitFor(last, 3000)).toBe(true);
      expect(await position()).toBe(formatPosition(last));
      expect(await t.readModel.job(job(2))).not.toBeNull();
      // Everything written: a checkpoint alone.
      subscription!.checkpoint(others[2]!);
      expect(await t.readModel.waitFor(others[2]!, 3000)).toBe(true);
      expect(await position()).toBe(formatPosition(others[2]!));
    } finally {
      await t.stop();
    }
  });

  it('a checkpoint a closed subscription still delivers is ignored, and the new one carries on', async () => {
    const t = setUp('late-checkpoint');
    const { store, subscriptions } = scripted(t.store);
    try {
      const { job1, job2 } = await logWithOtherStreams(t.store);
      await t.make({ store }).start();
      for (const e of job1) await subscriptions[0]!.deliver(e);
      expect(await t.readModel.waitFor(job1[job1.length - 1]!.position, 3000)).toBe(true);
      subscriptions[0]!.fail(new Error('connection dropped'));
      await eventually(() => subscriptions.length === 2, 5000, 'subscribed again');
      subscriptions[0]!.checkpoint({ commit: 1_000_000n, prepare: 1_000_000n }); // left in the old one's buffer
      for (const e of job2) await subscriptions[1]!.deliver(e);
      const last = job2[job2.length - 1]!.position;
      expect(await t.readModel.waitFor(last, 3000)).toBe(true);
      expect(await redis.get(t.keys.space(1).position)).toBe(formatPosition(last));
      expect(await t.readModel.job(job(2))).not.toBeNull();
    } finally {
      await t.stop();
    }
  });

  it('a job whose stream was hard-deleted before the projector reloaded it keeps its views as written, marked deleted', async () => {
    const t = setUp('tombstoned');
    try {
      const a = await projectedOnceThenStopped(t);
      // More of job 1, then its stream hard-deleted: the next projector starts with no state of it, and the
      // reload at its first new event finds the stream gone.
      await decideAll(t.store, job(1), checkpoint(2), a);
      const tombstone = await t.store.tombstone(jobStream(job(1)));
      const second = t.make();
      await second.start();
      await t.caughtUp();
      expect(await t.readModel.job(job(1))).toEqual(views(a).summary);
      expect(await t.readModel.deletedAt(job(1))).toBe(tombstone.created.toISOString());
      expect(await redis.hget(t.keys.space(1).applied, job(1))).toBe(String(a.version - 1));
      expect(second.stats.reloads).toBe(0);
      expect(t.logs.filter((l) => l.level === 'error')).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('a reload that fails otherwise fails the batch: logged, and written after resubscribing', async () => {
    const t = setUp('reload-fails');
    try {
      const a = await projectedOnceThenStopped(t);
      const b = await decideAll(t.store, job(1), checkpoint(2), a);
      let failures = 1;
      const store = new Proxy(t.store, {
        get(target, property, receiver) {
          if (property === 'readStream') {
            return async (streamId: string, options?: Parameters<MemoryEventStore['readStream']>[1]) => {
              if (streamId === jobStream(job(1)) && failures-- > 0) throw new Error('store hiccup');
              return target.readStream(streamId, options);
            };
          }
          return Reflect.get(target, property, receiver) as unknown;
        },
      });
      await t.make({ store }).start();
      await t.caughtUp();
      expect(await t.readModel.job(job(1))).toEqual(views(b).summary);
      expect(t.logs).toContainEqual({
        level: 'error',
        message: 'projector stopped; resubscribing',
        fields: { error: 'Error: store hiccup' },
      });
    } finally {
      await t.stop();
    }
  });

  it('a store that refuses its credentials: the projector says so, gives up its lease and stands by, blocked', async () => {
    const t = setUp('refused');
    const { store, subscriptions } = tracked(t.store);
    try {
      const projector = t.make({ store });
      await projector.start();
      expect(projector.active).toBe(true);
      const refusal = new StoreAccessDeniedError(
        'access-denied',
        { operation: 'read', streamId: '$all' },
        'snapcat',
      );
      await subscriptions[0]!.drop(refusal);
      expect(t.logs).toContainEqual({
        level: 'error',
        message: `projector cannot follow the log: ${refusal.message}; it stands by and tries again in 30 s`,
        fields: { permission: 'read on $all', refusals: 1 },
      });
      expect(projector.blocked).toBe(refusal);
      await eventually(async () => (await redis.get(t.keys.lease)) === null, 3000, 'the lease given up');
      expect(projector.active).toBe(false);
      await new Promise((r) => setTimeout(r, 200)); // several ticks: it waits, not subscribing again
      expect(subscriptions).toHaveLength(1);
    } finally {
      await t.stop();
    }
  });

  it('writes a job’s task list when it is registered or reconfigured, and leaves it alone otherwise', async () => {
    const t = setUp('tasks');
    try {
      await t.make().start();
      const a = await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      expect(await t.readModel.tasks(job(1))).toEqual(['a', 'b']);
      // A task list no event wrote: a checkpoint's events rewrite the summary, not the task list.
      await redis.set(t.keys.space(1).jobTasks(job(1)), JSON.stringify(['left alone']));
      const b = await decideAll(t.store, job(1), checkpoint(1), a);
      await t.caughtUp();
      expect(await t.readModel.job(job(1))).toEqual(views(b).summary);
      expect(await t.readModel.tasks(job(1))).toEqual(['left alone']);
      // Reconfigured with another task list: a batch of that one event.
      const before = (await t.store.readAll({ maxCount: 1000 })).length;
      const c = await decideAll(t.store, job(1), [{ ...configure('job 01'), tasks: ['a', 'b', 'c'] }], b);
      const added = (await t.store.readAll({ maxCount: 1000 })).slice(before);
      expect(added.map((e) => e.type)).toEqual(['JobReconfigured']);
      await t.caughtUp();
      expect(await t.readModel.tasks(job(1))).toEqual(['a', 'b', 'c']);
      expect(await t.readModel.job(job(1))).toEqual(views(c).summary);
    } finally {
      await t.stop();
    }
  });

  it('Redis losing acknowledged batches (a lagging replica promoted) is noticed: projected again from the position it kept', async () => {
    const t = setUp('rewound');
    try {
      await t.make().start();
      const a = await writeJob(t.store, job(1), 0);
      await t.caughtUp();
      // What a replica holds: every key as it was then (the lease aside: renewed every tick, it is current).
      const kept = new Map<string, [Buffer, number]>();
      for (const key of await redis.keys(`${t.prefix}*`)) {
        if (key.endsWith(':lease')) continue;
        kept.set(key, [(await redis.dumpBuffer(key))!, await redis.pttl(key)]);
      }
      const b = await decideAll(t.store, job(1), checkpoint(1), a);
      await writeJob(t.store, job(2), 0);
      await t.caughtUp();
      expect(await t.readModel.job(job(1))).toEqual(views(b).summary);
      // The failover: the later batches are gone, the earlier point comes back whole.
      for (const key of await redis.keys(`${t.prefix}*`)) {
        if (!key.endsWith(':lease') && !kept.has(key)) await redis.del(key);
      }
      for (const [key, [dump, ttl]] of kept) await redis.restore(key, ttl > 0 ? ttl : 0, dump, 'REPLACE');
      await eventually(
        () => t.logs.some((l) => l.message.startsWith('Redis lost read-model writes it had acknowledged')),
        5_000,
        'the loss noticed',
      );
      await t.caughtUp();
      expect(await t.readModel.job(job(1))).toEqual(views(b).summary);
      expect(await t.readModel.job(job(2))).not.toBeNull();
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
      expect(t.logs.filter((l) => l.message.startsWith('the read model was lost'))).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('a key space is complete once the log up to the projector’s start is in it; a wipe empties it, and it is projected again', async () => {
    const t = setUp('complete');
    try {
      // Job ids sharing their first six characters, as a savepoint's directory names them.
      const ids = [job(1), job(2), `abcdef${'0'.repeat(26)}`];
      for (const id of ids) await writeJob(t.store, id, 1);
      // Before any projector: not complete, so no answer (an empty one would be wrong).
      expect(await t.readModel.jobIdsStartingWith('000000')).toBeUndefined();
      const projector = t.make();
      await projector.start();
      await t.caughtUp();
      expect(await t.readModel.jobIdsStartingWith('000000')).toEqual([job(1), job(2)]);
      expect(await t.readModel.jobIdsStartingWith('abcdef')).toEqual([ids[2]]);
      // A wipe (every key of the prefix) while the log is quiet: noticed at the next tick.
      await deleteKeys(t.prefix);
      await eventually(
        () => t.logs.some((l) => l.message.startsWith('the read model was lost from Redis')),
        5_000,
        'the loss noticed',
      );
      // One more job: had the projector gone on in the emptied space, it would be all the index held.
      await writeJob(t.store, job(3), 0);
      await t.caughtUp();
      await eventually(async () => (await t.readModel.jobIdsStartingWith('000000'))?.length === 3, 5_000);
      expect(await t.readModel.jobIdsStartingWith('000000')).toEqual([job(1), job(2), job(3)]);
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
      // Projected again, the history is not published again to live subscriptions: each event once.
      const positions = t.published.map((m) => m.position);
      expect(new Set(positions).size).toBe(positions.length);
      expect(t.published.filter((m) => m.jobId === job(3))).toHaveLength(1);
    } finally {
      await t.stop();
    }
  });
});

describe('the index of directories no Flink layout names (decision 0032)', () => {
  it('holds each completed snapshot’s such directory, by exact directory; a space written before the index is indexed from its views', async () => {
    const t = setUp('directories');
    try {
      await writeJob(t.store, job(1), 2); // checkpoints in `<jobId>/chk-N`: their path names the job
      const importInto = (jobId: string, externalPath: string) =>
        decideAll(t.store, jobId, [
          configure('importer'),
          { type: 'ImportSnapshot', externalPath, kind: 'SAVEPOINT' },
        ]);
      const importer = await importInto(job(2), 'file:///data/imports/nightly/');
      await importInto(job(3), '/data/imports/nightly-2');
      const nightly = restoredDirectory('/data/imports/nightly/_metadata');
      // Before any projector: not complete, so no answer (an empty one would leave the owner out).
      expect(await t.readModel.jobIdsWithSnapshotIn(nightly)).toBeUndefined();
      const projector = t.make();
      await projector.start();
      await t.caughtUp();
      expect(await t.readModel.jobIdsWithSnapshotIn(nightly)).toEqual([job(2)]);
      expect(await t.readModel.jobIdsWithSnapshotIn('/data/imports')).toEqual([]);
      expect(await t.readModel.jobIdsWithSnapshotIn(`/data/c/${job(1)}/chk-1`)).toEqual([]);
      const space = t.keys.space(1);
      expect(await redis.zcard(space.directories)).toBe(2);
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
      await projector.stop();
      // As an older snapcat left it: views, no index. The audit tells, and the next projector indexes it.
      await redis.del(space.directories, space.directoriesIndexed);
      expect(await t.readModel.jobIdsWithSnapshotIn(nightly)).toBeUndefined();
      expect((await verifyReadModel(t.store, redis, t.prefix)).map((d) => d.key)).toEqual([
        `${space.directories} /data/imports/nightly\u0000${job(2)}\u00001`,
        `${space.directories} /data/imports/nightly-2\u0000${job(3)}\u00001`,
      ]);
      await t.make().start();
      expect(await t.readModel.jobIdsWithSnapshotIn(nightly)).toEqual([job(2)]);
      expect(await t.readModel.jobIdsWithSnapshotIn('/data/imports/nightly-2')).toEqual([job(3)]);
      expect(t.logs).toContainEqual(
        expect.objectContaining({ message: expect.stringMatching(/indexed the directories/) }),
      );
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
      // The index follows the live snapshots: a discarded import leaves it; the directory imported into
      // another job then is that job's.
      await decideAll(
        t.store,
        job(2),
        [
          { type: 'RequestDiscard', snapshotId: 1, force: true },
          { type: 'RecordDiscardCompleted', snapshotId: 1, bytesReclaimed: 0 },
        ],
        importer,
      );
      await t.caughtUp();
      expect(await t.readModel.jobIdsWithSnapshotIn(nightly)).toEqual([]);
      await importInto(job(4), nightly);
      await t.caughtUp();
      expect(await t.readModel.jobIdsWithSnapshotIn(nightly)).toEqual([job(4)]);
      expect(await redis.zrange(space.directories, 0, -1)).toEqual([
        `/data/imports/nightly\u0000${job(4)}\u00001`,
        `/data/imports/nightly-2\u0000${job(3)}\u00001`,
      ]);
      // Another run's checkpoint adopted by an import: its directory names a job the catalogue does not hold.
      const adopted = `/data/c/${'f0'.repeat(16)}/chk-5`;
      await importInto(job(5), adopted);
      await t.caughtUp();
      expect(await t.readModel.jobIdsWithSnapshotsIn([adopted, '/data/c', nightly])).toEqual(
        new Map([
          [adopted, [job(5)]],
          [nightly, [job(4)]],
        ]),
      );
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
      // What a deletion touches: the directory itself, one it lies in, one inside it; not one beside it
      // whose name merely starts alike (`chk-5` is not in `chk-50`, nor `nightly` in `nightly-2`).
      expect(await t.readModel.jobIdsWithSnapshotsTouching([adopted])).toEqual(
        new Map([[adopted, [job(5)]]]),
      );
      expect(await t.readModel.jobIdsWithSnapshotsTouching([`${adopted}/shared`])).toEqual(
        new Map([[adopted, [job(5)]]]),
      );
      expect(await t.readModel.jobIdsWithSnapshotsTouching(['/data/imports'])).toEqual(
        new Map([
          [nightly, [job(4)]],
          ['/data/imports/nightly-2', [job(3)]],
        ]),
      );
      expect(
        await t.readModel.jobIdsWithSnapshotsTouching([`${adopted}0`, `/data/c/${'f0'.repeat(16)}/chk`]),
      ).toEqual(new Map());
      expect(await t.readModel.jobIdsWithSnapshotsTouching([nightly])).toEqual(
        new Map([[nightly, [job(4)]]]),
      );
      // A rolling upgrade: an older release's projector held the lease a while and projected that import without
      // its entry (its batches move `position`, not `directoriesIndexed`). No answer (a 503), rather than one
      // that leaves the owner out, until a projector of this release indexes the views again.
      await t.stop();
      await redis.zrem(space.directories, `${adopted}\u0000${job(5)}\u00001`);
      await redis.set(space.directoriesIndexed, (await redis.get(space.position))!.replace(/^\d+/, '1'));
      expect(await t.readModel.jobIdsWithSnapshotsIn([adopted])).toBeUndefined();
      await t.make().start();
      expect(await t.readModel.jobIdsWithSnapshotsIn([adopted])).toEqual(new Map([[adopted, [job(5)]]]));
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('a space indexed by a release that left snapshots being discarded out (its mark the bare position) is indexed again: an import whose discard is under way is found', async () => {
    const t = setUp('directories-discarding');
    try {
      const nightly = '/data/imports/nightly';
      const imported = await decideAll(t.store, job(7), [
        configure('importer'),
        { type: 'ImportSnapshot', externalPath: nightly, kind: 'SAVEPOINT' },
      ]);
      // Its discard requested, not done: the files are being deleted.
      await decideAll(t.store, job(7), [{ type: 'RequestDiscard', snapshotId: 1, force: true }], imported);
      await t.make().start();
      await t.caughtUp();
      expect(await t.readModel.jobIdsWithSnapshotsTouching([nightly])).toEqual(
        new Map([[nightly, [job(7)]]]),
      );
      await t.stop();
      // As the release before format 2 left it: no entry for the snapshot being discarded, and its mark.
      const space = t.keys.space(1);
      await redis.zrem(space.directories, `${nightly}\u0000${job(7)}\u00001`);
      await redis.set(space.directoriesIndexed, (await redis.get(space.position))!);
      expect(await t.readModel.jobIdsWithSnapshotsTouching([nightly])).toBeUndefined(); // a 503, not "nobody"
      await t.make().start();
      expect(await t.readModel.jobIdsWithSnapshotsTouching([nightly])).toEqual(
        new Map([[nightly, [job(7)]]]),
      );
    } finally {
      await t.stop();
    }
  });
});

describe('the index of loose files other jobs reference (decision 0046)', () => {
  it('holds each job’s live references to files no Flink layout names, follows discards and deletions, and is indexed again from the jobs’ states', async () => {
    const t = setUp('files');
    try {
      const [f, g] = ['/data/client/shared/f', 'file:///data/client/shared/g'];
      const laidOut = `/data/c/${job(1)}/shared/x`;
      const first = await decideAll(t.store, job(1), [
        configure(),
        ...checkpoint(1, { a: [f, laidOut], b: [g] }),
      ]);
      await decideAll(t.store, job(2), [configure(), ...checkpoint(1, { a: [f] })]);
      const gone = '/data/client/shared/g';
      // Before any projector: not complete, so no answer (an empty one would let a deletion take them).
      expect(await t.readModel.jobIdsReferencingFiles([f], [])).toBeUndefined();
      const projector = t.make();
      await projector.start();
      await t.caughtUp();
      expect(await t.readModel.jobIdsReferencingFiles([f, gone, laidOut, '/data/client/shared'], [])).toEqual(
        new Map([
          [f, [job(1), job(2)]],
          [gone, [job(1)]],
        ]),
      );
      // Inside a directory: every loose file below it, not beside it (`/data/client/sha` holds nothing).
      expect((await t.readModel.jobIdsReferencingFiles([], ['/data/client']))?.size).toBe(2);
      expect(await t.readModel.jobIdsReferencingFiles([], ['/data/client/sha', '/data/c'])).toEqual(
        new Map(),
      );
      const space = t.keys.space(1);
      expect(await redis.zcard(space.files)).toBe(3); // the laid-out file is not indexed
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);

      // The first job's checkpoint is discarded: its references go, the second job's stays.
      await decideAll(t.store, job(1), [{ type: 'RequestDiscard', snapshotId: 1, force: true }], first);
      await t.caughtUp();
      expect(await t.readModel.jobIdsReferencingFiles([f, gone], [])).toEqual(new Map([[f, [job(2)]]]));
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);

      // As an older snapcat left the space: no index. The audit tells, the lookups give no answer, and the
      // next projector indexes it again from the jobs' states.
      await projector.stop();
      await redis.del(space.files, space.filesIndexed);
      expect(await t.readModel.jobIdsReferencingFiles([f], [])).toBeUndefined();
      expect((await verifyReadModel(t.store, redis, t.prefix)).map((d) => d.key)).toEqual([
        `${space.files} ${f}\u0000${job(2)}`,
      ]);
      // A projector deposed while it indexes (another takes the lease as it reads a job) changes nothing of
      // the index nor its mark: what it built stays aside (a first version emptied the index as it began).
      const before = `/before\u0000${job(9)}`;
      await redis.zadd(space.files, 0, before);
      const deposing = new Proxy(t.store, {
        get(target, property) {
          const value = Reflect.get(target, property, target) as unknown;
          if (property !== 'readStream') return typeof value === 'function' ? value.bind(target) : value;
          return async (...args: Parameters<typeof target.readStream>) => {
            await redis.set(t.keys.lease, 'another projector', 'PX', 60_000);
            return target.readStream(...args);
          };
        },
      });
      const deposed = t.make({ store: deposing });
      await deposed.start();
      await eventually(
        () => t.logs.some((l) => /lost its lease while indexing/.test(JSON.stringify(l.fields ?? {}))),
        5_000,
        'the indexing projector deposed',
      );
      expect(await redis.zrange(space.files, 0, -1)).toEqual([before]);
      expect(await redis.get(space.filesIndexed)).toBeNull();
      await deposed.stop();
      await redis.del(t.keys.lease);
      // Written while no projector runs, so after the stored position: the backfill reads these jobs as they
      // end, and the events it projects next agree (job 3 referenced f and h, then let go; job 4 keeps h).
      const h = '/data/client/shared/h';
      const third = await decideAll(t.store, job(3), [configure(), ...checkpoint(1, { a: [f, h] })]);
      await decideAll(t.store, job(3), [{ type: 'RequestDiscard', snapshotId: 1, force: true }], third);
      await decideAll(t.store, job(4), [configure(), ...checkpoint(1, { b: [h] })]);
      await t.make().start();
      await t.caughtUp();
      expect(await t.readModel.jobIdsReferencingFiles([f, h], [])).toEqual(
        new Map([
          [f, [job(2)]],
          [h, [job(4)]],
        ]),
      );
      expect(await redis.zrange(space.files, 0, -1)).toEqual([`${f}\u0000${job(2)}`, `${h}\u0000${job(4)}`]);
      expect(t.logs).toContainEqual(
        expect.objectContaining({ message: expect.stringMatching(/indexed the loose files/) }),
      );
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);

      // A hard-deleted job needs nothing: left out of the answer.
      await t.store.tombstone(jobStream(job(2)));
      await t.caughtUp();
      expect(await t.readModel.jobIdsReferencingFiles([f], [])).toEqual(new Map());
      expect(await verifyReadModel(t.store, redis, t.prefix)).toEqual([]);
    } finally {
      await t.stop();
    }
  });
});

/** Job 1 written and projected by a first projector, which then stops: a second one starts with no state of it. */
async function projectedOnceThenStopped(t: ReturnType<typeof setUp>) {
  const a = await writeJob(t.store, job(1), 1);
  const first = t.make();
  await first.start();
  await t.caughtUp();
  await first.stop();
  return a;
}
