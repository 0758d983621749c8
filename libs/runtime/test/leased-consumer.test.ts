import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import {
  EsdbEventStore,
  START,
  type Position,
  type RecordedEvent,
  type LogSubscription,
} from '@snapcat/event-store';
import { LeasedLogConsumer } from '../src';
import { EsdbTestServer } from '../../../test/esdb/test-server';

/** The smallest consumer of $all: it records what it is handed. */
class Recorder extends LeasedLogConsumer {
  readonly seen: RecordedEvent[] = [];
  constructor(
    private readonly store: EsdbEventStore,
    redis: IORedis,
    keyPrefix: string,
    readonly errors: string[],
  ) {
    super({
      redis,
      keyPrefix,
      name: 'recorder',
      log: { warn: () => {}, error: (msg) => errors.push(msg) },
      leaseMs: 1000,
      tickMs: 50,
      accessRetryMs: 500,
    });
  }
  protected async recover(): Promise<Position> {
    await this.markRecovered(START, new Date());
    return START;
  }
  protected async subscribeToLog(from: Position): Promise<LogSubscription> {
    return this.store.subscribeToAll({ from }, (e) => void this.seen.push(e), this.logSubscriptionFailed);
  }
}

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
    const recorder = new Recorder(store, redis, keyPrefix, []);
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
    await until(() => ops.blocked !== undefined, 5000);
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
