import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { UnreadableEventError, readDomainEvent } from '@snapcat/domain';
import {
  EsdbEventStore,
  MemoryEventStore,
  START,
  formatPosition,
  type EventStore,
  type Position,
  type RecordedEvent,
  type LogSubscription,
} from '@snapcat/event-store';
import { LeasedLogConsumer } from '../src';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import { startRedisServer } from '../../../test/support/redis';

interface RecorderOptions {
  name?: string;
  /** Takes each event before it is recorded; may throw. */
  read?: (event: RecordedEvent) => unknown;
  /** Saves each event's position (or those it says), as the real consumers do once they handled it. */
  saves?: boolean | ((event: RecordedEvent) => boolean);
  /** The defaults the process manager runs with (tick 1 s, lease 5 s) rather than quick ones (50 ms, 1 s). */
  processManagerTiming?: boolean;
  /** Awaited before each subscription, as the process manager awaits Redis before it subscribes. */
  beforeSubscribing?: () => Promise<void>;
}

/**
 * The smallest consumer of $all: it records what it is handed, after `read` took it, then saves as `saves`
 * says; and what it logs, by level.
 */
class Recorder extends LeasedLogConsumer {
  readonly seen: RecordedEvent[] = [];
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  readonly infos: string[] = [];
  constructor(
    private readonly store: EventStore,
    redis: IORedis,
    keyPrefix: string,
    private readonly options: RecorderOptions = {},
  ) {
    super({
      redis,
      keyPrefix,
      name: options.name ?? 'recorder',
      log: {
        info: (msg) => this.infos.push(msg),
        warn: (msg) => this.warnings.push(msg),
        error: (msg) => this.errors.push(msg),
      },
      ...(options.processManagerTiming ? {} : { leaseMs: 1000, tickMs: 50, accessRetryMs: 500 }),
    });
  }
  protected async recover(): Promise<Position> {
    await this.markRecovered(START, new Date());
    return START;
  }
  protected async subscribeToLog(from: Position): Promise<LogSubscription> {
    await this.options.beforeSubscribing?.();
    const { read, saves } = this.options;
    const handle = async (event: RecordedEvent) => {
      read?.(event);
      this.seen.push(event);
      if (typeof saves === 'function' ? saves(event) : saves) await this.savePosition(event.position);
    };
    return this.store.subscribeToAll({ from }, handle, this.logSubscriptionFailed);
  }
}

const RECONNECTED =
  'pm: its Redis connection was made again, and Redis may have lost the writes made since its last saved position (a restart, a failover): consuming the log again from that position';

/** Whether the consumer's last save is at the event's position (none yet: not). */
const savedAt = (consumer: { savedPosition?: Position }, event: RecordedEvent | undefined) =>
  consumer.savedPosition !== undefined &&
  event !== undefined &&
  formatPosition(consumer.savedPosition) === formatPosition(event.position);

const until = async (predicate: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

// A leased consumer whose user may not read $all (a secure EventStoreDB: $admins only, by default).
describe('a leased log consumer the event store refuses', () => {
  let server: EsdbTestServer;
  let redis: IORedis;
  const keyPrefix = `snapcat-test-leased-${process.pid}-${randomUUID()}`;
  const stores: EsdbEventStore[] = [];
  const consumers: Recorder[] = [];
  const consumer = (user: string) => {
    const store = new EsdbEventStore(server.connectionStringAs(user));
    stores.push(store);
    const recorder = new Recorder(store, redis, keyPrefix);
    consumers.push(recorder);
    recorder.start();
    return recorder;
  };
  beforeAll(async () => {
    server = new EsdbTestServer(undefined, { secure: true });
    await server.start();
    redis = new IORedis('redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    for (const c of consumers) await c.stop();
    await Promise.all(stores.map((s) => s.close()));
    const keys = await redis.keys(`${keyPrefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await server.stop();
  });

  it('says so once per attempt, retries after accessRetryMs (not every tick), gives up its lease, and resumes once granted', async () => {
    const ops = consumer('ops');
    // Blocked and standing by: read in one step, since each retry subscribes again (active) until refused,
    // and under load a poll could land in that moment (a CI run saw it).
    await until(() => ops.blocked !== undefined && !ops.active, 5000);
    expect(ops.blocked).toMatchObject({ permission: 'read on $all', user: 'ops' });
    expect(ops.active).toBe(false);
    await new Promise((r) => setTimeout(r, 1200));
    // 50 ms ticks would have tried some 24 times; a 500 ms wait allows 3 or 4 attempts.
    expect(ops.accessRefusals).toBeGreaterThanOrEqual(2);
    expect(ops.accessRefusals).toBeLessThanOrEqual(4);
    expect(ops.errors).toHaveLength(ops.accessRefusals);
    expect(ops.errors[0]).toBe(
      'recorder cannot consume the log: event store: reading $all needs the $admins role (or a stream policy granting read on $all) for user ops; it stands by and tries again in 0.5 s',
    );

    // The lease is free for a process whose credentials work.
    const admin = consumer('admin');
    await until(() => admin.active, 5000);
    await admin.stop();

    // An operator grants ops the role: it consumes again, without a restart.
    server.users.get('ops')!.groups.push('$admins');
    await until(() => ops.active, 5000);
    const writer = new EsdbEventStore(server.connectionString);
    stores.push(writer);
    await writer.append('s-after', [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await until(() => ops.seen.some((e) => e.streamId === 's-after'), 5000);
    await until(() => ops.blocked === undefined, 5000);
  }, 30_000);
});

// Decision 0037: a rolling upgrade. An event a newer snapcat wrote can never be read by this process: the
// consumer gives its lease up for good (an upgraded process takes it), said once. An event that does not fit
// its own version is no upgrade's business: the consumer keeps saying so and trying.
describe('a leased log consumer that meets an event it cannot read', () => {
  let redis: IORedis;
  const prefix = `snapcat-test-unreadable-${process.pid}-${randomUUID()}`;
  const consumers: Recorder[] = [];
  const reading = async (schemaVersion: number, data: object) => {
    const store = new MemoryEventStore();
    await store.append(
      'snapcat-job-x',
      [{ id: randomUUID(), type: 'JobStatusChanged', data, metadata: { schemaVersion } }],
      'any',
    );
    const keyPrefix = `${prefix}-${schemaVersion}`;
    // It reads each job event as snapcat does (upcast, then validated).
    const reader = new Recorder(store, redis, keyPrefix, { name: 'reader', read: readDomainEvent });
    consumers.push(reader);
    reader.start();
    return { reader, lease: `${keyPrefix}:lease` };
  };
  const statusChanged = {
    type: 'JobStatusChanged',
    jobId: '0123456789abcdef0123456789abcdef',
    occurredAt: '2026-12-04T10:00:00.000Z',
    from: 'CREATED',
    to: 'RUNNING',
  };
  beforeAll(() => {
    redis = new IORedis('redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    for (const c of consumers) await c.stop();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('stands down for good on a newer event: said once, blocked, its lease given up and never taken again', async () => {
    const { reader, lease } = await reading(2, statusChanged);
    await until(() => reader.blocked !== undefined, 5000);
    expect(reader.blocked).toBeInstanceOf(UnreadableEventError);
    await new Promise((r) => setTimeout(r, 500)); // ten ticks
    expect(reader.errors).toEqual([
      expect.stringMatching(/^reader stands down: event JobStatusChanged \(schema version 2\)/),
    ]);
    expect(reader.active).toBe(false);
    expect(await redis.exists(lease)).toBe(0);
  });

  it('keeps trying on an event that does not fit its version, and holds its lease', async () => {
    const { reader, lease } = await reading(1, { ...statusChanged, jobId: 42 });
    await until(() => reader.errors.length >= 3, 5000);
    expect(reader.blocked).toBeUndefined();
    expect(reader.errors.every((e) => e === 'reader subscription failed; resubscribing')).toBe(true);
    expect(await redis.exists(lease)).toBe(1);
  });
});

// Redis acknowledged a position, then lost it (a failover to a replica that lagged): the running consumer
// sees its position go back and consumes again from there, rather than going on past what it had done.
/**
 * A saving consumer of its own store, on Redis under a key prefix of its own; stopped, its keys deleted and
 * Redis disconnected after the describe block it is set up in.
 */
function savingConsumer(name: string) {
  const keyPrefix = `snapcat-test-${name}-${process.pid}-${randomUUID()}`;
  const redis = new IORedis('redis://127.0.0.1:6379');
  const store = new MemoryEventStore();
  const saver = new Recorder(store, redis, keyPrefix, { name: 'saver', saves: true });
  afterAll(async () => {
    await saver.stop();
    const keys = await redis.keys(`${keyPrefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });
  return { keyPrefix, redis, errors: saver.errors, warnings: saver.warnings, store, saver };
}

describe('a leased log consumer whose Redis loses acknowledged writes', () => {
  const { keyPrefix, redis, errors, store, saver } = savingConsumer('rewound');

  it('says so and consumes again from the position Redis holds', async () => {
    saver.start();
    await until(() => saver.active, 5000);
    for (const n of [1, 2, 3])
      await store.append(`s-${n}`, [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await until(() => savedAt(saver, saver.seen[2]), 5000);
    // Redis comes back with the position after the first event only.
    await redis.set(`${keyPrefix}:position`, formatPosition(saver.seen[0]!.position));
    await until(() => saver.seen.length === 5, 5000);
    expect(saver.seen.slice(3).map((e) => e.streamId)).toEqual(['s-2', 's-3']);
    expect(errors).toEqual([
      'saver: Redis lost writes it had acknowledged; consuming the log again from its position',
    ]);
    // Caught up again: quiet.
    await new Promise((r) => setTimeout(r, 300));
    expect(errors).toHaveLength(1);
    expect(saver.seen).toHaveLength(5);
  });
});

describe('a leased log consumer whose Redis restarts without the writes it made since its last saved position', () => {
  let server: Awaited<ReturnType<typeof startRedisServer>>;
  let redis: IORedis;
  let consumer: Recorder | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
    redis = new IORedis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  });
  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
  });
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });
  const append = (store: EventStore, stream: string) =>
    store.append(stream, [{ id: randomUUID(), type: 'T', data: {} }], 'any');
  const streams = (c: Recorder) => c.seen.map((e) => e.streamId);
  /**
   * Starts `c`; it handles s-1 and saves its position, which Redis snapshots (what a restart brings back, with
   * the lease); then it handles s-2.
   */
  const snapshotAfterFirst = async (c: Recorder, store: EventStore) => {
    consumer = c;
    c.start();
    await until(() => c.active, 5000);
    await append(store, 's-1');
    await until(() => c.seen.length === 1, 5000);
    await new Promise((r) => setTimeout(r, 100));
    await redis.save();
    await append(store, 's-2');
    await until(() => c.seen.length === 2, 5000);
  };

  it('consumes again from the saved position: what it handled after it (batched, not saved yet) is handled again', async () => {
    const store = new MemoryEventStore();
    // Saves after the first event only, as the process manager saves every 250 ms or 500 events: the second
    // event's work is written to Redis, its position not yet.
    const onlyFirst = (event: RecordedEvent) => event.streamId === 's-1';
    const c = new Recorder(store, redis, 'restart', { name: 'pm', saves: onlyFirst });
    consumer = c;
    c.start();
    await until(() => c.active, 5000);
    await append(store, 's-1');
    await until(() => savedAt(c, c.seen[0]), 5000);
    await redis.save(); // what the restarted Redis holds: the position after s-1, the epoch
    await append(store, 's-2');
    await until(() => c.seen.length === 2, 5000);
    // Redis crashes and comes back without what came after its snapshot: the position it holds is the one
    // this process saved, so nothing looks behind.
    await server.restart();
    await until(() => c.seen.length === 3, 10_000);
    expect(streams(c)).toEqual(['s-1', 's-2', 's-2']);
    expect(c.warnings).toEqual([RECONNECTED]);
    expect(c.errors).toEqual([]);
  });

  // With the process manager's tick and lease (a 50 ms tick hid both; a review of session 56's fix found
  // both cases it missed).
  it('an event handled between the reconnection and the next tick does not move the position past what Redis lost', async () => {
    const store = new MemoryEventStore();
    // s-2 is handled within 250 ms of the last save (batched, not saved); s-3, after the reconnection, is saved
    // (ProcessManager.handled saves once 250 ms passed since its last save).
    const c = new Recorder(store, redis, `between-${randomUUID()}`, {
      name: 'pm',
      saves: (e) => e.streamId !== 's-2',
      processManagerTiming: true,
    });
    await snapshotAfterFirst(c, store);
    // The log goes on: an event comes right after the connection is made again.
    redis.once('ready', () => void append(store, 's-3'));
    await server.restart();
    await new Promise((r) => setTimeout(r, 3000));
    expect({ seen: streams(c), warnings: c.warnings }).toEqual({
      seen: ['s-1', 's-2', 's-3', 's-2', 's-3'], // s-2, whose work Redis lost, consumed again
      warnings: [RECONNECTED],
    });
  });

  it('a reconnection while the consumer subscribes again (after a failed subscription) is noticed: what Redis lost is consumed again', async () => {
    const store = new MemoryEventStore();
    let crashes = 0;
    let boom = 1;
    const c = new Recorder(store, redis, `resubscribing-${randomUUID()}`, {
      name: 'pm',
      saves: (e) => {
        if (e.streamId === 'boom' && boom-- > 0) throw new Error('a handler failed'); // the subscription fails
        return true;
      },
      processManagerTiming: true,
      beforeSubscribing: async () => {
        if (crashes-- > 0) await server.restart();
      },
    });
    await snapshotAfterFirst(c, store);
    await new Promise((r) => setTimeout(r, 100)); // s-2's position saved, not in the snapshot
    crashes = 1; // the next subscribe: Redis crashes meanwhile, and comes back without s-2's position and work
    await append(store, 'boom');
    await new Promise((r) => setTimeout(r, 4000));
    // The subscription made during the crash consumed from the position read before it (boom again), then
    // the reconnection is handled: from the position Redis kept, s-2 (whose work it lost) again.
    expect(streams(c)).toEqual(['s-1', 's-2', 'boom', 'boom', 's-2', 'boom']);
  });
});

describe('a leased log consumer deposed while it handles an event', () => {
  const { keyPrefix, redis, errors, warnings, store, saver } = savingConsumer('deposed');

  it('does not set the position back under its successor: it stands by, and takes over from what the successor saved', async () => {
    saver.start();
    await until(() => saver.active, 5000);
    for (const n of [1, 2, 3])
      await store.append(`s-${n}`, [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await until(() => savedAt(saver, saver.seen[2]), 5000);
    // Paused past its lease: a successor took it over and saved where it got to, the third event. Until the
    // saver's next tick notices, its subscription still delivers the fourth event.
    const successors = formatPosition(saver.seen[2]!.position);
    // Held until the assertions below are made, then let go: a TTL lapsed first on a machine loaded by CI
    // (400 ms once, 1.5 s once, 4 s once: the saver took the lapsed lease back and saved the fourth event).
    await redis.set(`${keyPrefix}:lease`, 'successor');
    await store.append('s-4', [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await until(() => saver.seen.length === 4, 5000);
    await until(() => warnings.length > 0, 5000);
    expect(await redis.get(`${keyPrefix}:position`)).toBe(successors);
    expect(warnings[0]).toBe('saver lost its lease; standing by');
    // Taking the lease is said too, each time: which process is active is an operator's first question.
    expect(saver.infos).toEqual(['saver active: it holds the lease']);
    // The successor lets its lease go without a further save: the saver takes over from the stored position
    // and handles the fourth event again (its save had not landed), without a false alarm of lost writes.
    await redis.del(`${keyPrefix}:lease`);
    await until(() => saver.seen.length === 5, 10_000);
    expect(saver.seen[4]!.streamId).toBe('s-4');
    await until(() => savedAt(saver, saver.seen[4]), 5000);
    expect(await redis.get(`${keyPrefix}:position`)).toBe(formatPosition(saver.seen[4]!.position));
    expect(saver.infos).toEqual(['saver active: it holds the lease', 'saver active: it holds the lease']);
    expect(errors).toEqual([]);
  });
});
