import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import {
  MemoryEventStore,
  START,
  type EventStore,
  type Position,
  type RecordedEvent,
  type LogSubscription,
} from '@snapcat/event-store';
import { LeasedLogConsumer } from '../src';
import { startRedisServer } from '../../../test/support/redis';

/** A consumer with the process manager's defaults (tick 1 s, lease 5 s), saving the events `saves` says. */
class Batched extends LeasedLogConsumer {
  readonly seen: string[] = [];
  constructor(
    private readonly store: EventStore,
    redis: IORedis,
    readonly warnings: string[],
    private readonly saves: (event: RecordedEvent) => boolean,
    keyPrefix = `snapcat-test-pm-reconnect-${randomUUID()}`,
    private readonly beforeSubscribing: () => Promise<void> = async () => undefined,
  ) {
    super({
      redis,
      keyPrefix,
      name: 'pm',
      log: { info: () => undefined, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(m) },
    });
  }
  protected async recover(): Promise<Position> {
    await this.markRecovered(START, new Date());
    return START;
  }
  readonly froms: string[] = [];
  protected async subscribeToLog(from: Position): Promise<LogSubscription> {
    // as the process manager awaits Redis (maintenanceSchedulers) before it subscribes
    await this.beforeSubscribing();
    this.froms.push(String(from.commit));
    return this.store.subscribeToAll(
      { from },
      async (event) => {
        this.seen.push(event.streamId);
        if (this.saves(event)) await this.savePosition(event.position);
      },
      this.logSubscriptionFailed,
    );
  }
}

const until = async (predicate: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

// A leased consumer with the process manager's tick and lease, whose Redis restarts from a snapshot older than
// what the consumer wrote: what the lost writes had done is done again (a review of session 56's fix found both
// cases it missed).
describe('a leased log consumer whose Redis restarts from an older snapshot', () => {
  let server: Awaited<ReturnType<typeof startRedisServer>>;
  let redis: IORedis;
  let consumer: Batched | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
    redis = new IORedis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  });
  afterAll(async () => {
    await consumer?.stop();
    redis.disconnect();
    await server.stop();
  });

  it('an event handled between the reconnection and the next tick does not move the position past what Redis lost', async () => {
    const store = new MemoryEventStore();
    const warnings: string[] = [];
    // s-2 is handled within 250 ms of the last save (batched, not saved); s-3, after the reconnection, is saved
    // (ProcessManager.handled saves once 250 ms passed since its last save).
    consumer = new Batched(store, redis, warnings, (e) => e.streamId !== 's-2');
    consumer.start();
    await until(() => consumer!.active, 5000);
    await store.append('s-1', [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await until(() => consumer!.seen.length === 1, 5000);
    await new Promise((r) => setTimeout(r, 100));
    await redis.save();
    await store.append('s-2', [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await until(() => consumer!.seen.length === 2, 5000);
    // The log goes on: an event comes right after the connection is made again.
    redis.once('ready', () => void store.append('s-3', [{ id: randomUUID(), type: 'T', data: {} }], 'any'));
    await server.restart();
    await new Promise((r) => setTimeout(r, 3000));
    expect({ seen: consumer.seen, warnings }).toEqual({
      seen: ['s-1', 's-2', 's-3', 's-2', 's-3'], // s-2, whose work Redis lost, consumed again
      warnings: [expect.stringContaining('its Redis connection was made again')],
    });
  });

  it('a reconnection while the consumer subscribes again (after a failed subscription) is noticed: what Redis lost is consumed again', async () => {
    const store = new MemoryEventStore();
    const warnings: string[] = [];
    let crashes = 0;
    let boom = 1;
    const c = new Batched(
      store,
      redis,
      warnings,
      (e) => {
        if (e.streamId === 'boom' && boom-- > 0) throw new Error('a handler failed'); // the subscription fails
        return true;
      },
      undefined,
      async () => {
        if (crashes-- > 0) await server.restart();
      },
    );
    consumer = c;
    c.start();
    await until(() => c.active, 5000);
    await store.append('s-1', [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await until(() => c.seen.length === 1, 5000);
    await new Promise((r) => setTimeout(r, 100));
    await redis.save(); // what the restarted Redis will hold: the position after s-1 (and the lease)
    await store.append('s-2', [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await until(() => c.seen.length === 2, 5000);
    await new Promise((r) => setTimeout(r, 100)); // s-2's position saved, not in the snapshot
    crashes = 1; // the next subscribe: Redis crashes meanwhile, and comes back without s-2's position and work
    await store.append('boom', [{ id: randomUUID(), type: 'T', data: {} }], 'any');
    await new Promise((r) => setTimeout(r, 4000));
    // The subscription made during the crash consumed from the position read before it (boom again), then
    // the reconnection is handled: from the position Redis kept, s-2 (whose work it lost) again.
    expect(c.seen).toEqual(['s-1', 's-2', 'boom', 'boom', 's-2', 'boom']);
  });
});
