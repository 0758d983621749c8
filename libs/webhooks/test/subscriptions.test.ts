import {
  EsdbEventStore,
  MemoryEventStore,
  WrongExpectedVersionError,
  type EventStore,
  type ExpectedRevision,
} from '@snapcat/event-store';
import { SUBSCRIPTIONS_STREAM, SecretBox, SubscriptionRepository } from '../src';
import { EsdbTestServer } from '../../../test/esdb/test-server';

const box = new SecretBox('k'.repeat(32));
const T0 = Date.parse('2026-11-30T10:00:00.000Z');

const create = (subscriptionId: string) => ({
  type: 'CreateSubscription' as const,
  subscriptionId,
  url: 'https://example.com/hook',
  eventTypes: [],
  jobIds: [],
  description: '',
  secret: box.seal('s'),
});

describe('SubscriptionRepository', () => {
  it('appends to its stream, with the time of its clock, and answers the state and the events', async () => {
    const store = new MemoryEventStore();
    const repository = new SubscriptionRepository(store, () => T0);
    const { state, events } = await repository.execute(create('wh_first000001'));
    expect(events).toEqual([expect.objectContaining({ type: 'WebhookSubscriptionCreated' })]);
    expect(state.get('wh_first000001')).toMatchObject({ createdAt: '2026-11-30T10:00:00.000Z' });
    const stored = await store.readStream(SUBSCRIPTIONS_STREAM, { fromRevision: 0n, maxCount: 10 });
    expect(stored.map((e) => [e.type, e.data])).toEqual([['WebhookSubscriptionCreated', events[0]]]);
    expect(stored[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
    // A command that changes nothing appends nothing.
    const again = await repository.execute({ type: 'DisableGone', subscriptionId: 'wh_unknown0001' });
    expect(again.events).toEqual([]);
    expect(again.state).toBe(state);
    expect(await store.readStream(SUBSCRIPTIONS_STREAM, { fromRevision: 0n, maxCount: 10 })).toHaveLength(1);
  });

  it('a command that changes nothing appends nothing, also before the stream exists', async () => {
    const store = new MemoryEventStore();
    const appends: ExpectedRevision[] = [];
    const counting: EventStore = Object.assign(Object.create(store) as EventStore, {
      append: (...args: Parameters<EventStore['append']>) => {
        appends.push(args[2]);
        return store.append(...args);
      },
    });
    const repository = new SubscriptionRepository(counting, () => T0);
    // No subscription yet: disabling an unknown one decides nothing (an empty append would be a request,
    // and the memory store has no last event to answer it with).
    const { state, events } = await repository.execute({
      type: 'DisableGone',
      subscriptionId: 'wh_unknown0001',
    });
    expect(events).toEqual([]);
    expect(state.size).toBe(0);
    expect(appends).toEqual([]);
    expect(await store.readStream(SUBSCRIPTIONS_STREAM)).toEqual([]);
    // The first append expects no stream, the next ones the revision folded.
    await repository.execute(create('wh_first000001'));
    await repository.execute(create('wh_second00001'));
    expect(appends).toEqual(['no_stream', 0n]);
  });

  it('creates the first subscription on EventStoreDB (the protocol test server): no stream is expected as no_stream, not as revision -1', async () => {
    // The port's revisions are 0-based: the EventStoreDB client cannot even encode -1 as an expected
    // revision (a uint64), where the memory and SQLite stores would take it for "no stream".
    const server = new EsdbTestServer();
    await server.start();
    const store = new EsdbEventStore(server.connectionString);
    try {
      const repository = new SubscriptionRepository(store, () => T0);
      await repository.execute(create('wh_first000001'));
      const { state } = await repository.execute(create('wh_second00001'));
      expect([...state.keys()]).toEqual(['wh_first000001', 'wh_second00001']);
      const stored = await store.readStream(SUBSCRIPTIONS_STREAM);
      expect(stored.map((e) => e.revision)).toEqual([0n, 1n]);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  it('uses the wall clock when given none', async () => {
    const before = Date.now();
    const { state } = await new SubscriptionRepository(new MemoryEventStore()).execute(
      create('wh_clock000001'),
    );
    const createdAt = Date.parse(state.get('wh_clock000001')!.createdAt);
    expect(createdAt).toBeGreaterThanOrEqual(before);
    expect(createdAt).toBeLessThanOrEqual(Date.now());
  });

  it('sees what another repository appended, and retries its own append after a concurrent change', async () => {
    const store = new MemoryEventStore();
    const a = new SubscriptionRepository(store, () => T0);
    const b = new SubscriptionRepository(store, () => T0);
    await a.execute(create('wh_first000001'));
    await b.current(); // b folded revision 0
    await a.execute(create('wh_second00001'));
    // b appends expecting revision 0: refused once, then decided again on the caught-up state.
    const { state } = await b.execute(create('wh_third000001'));
    expect([...state.keys()]).toEqual(['wh_first000001', 'wh_second00001', 'wh_third000001']);
    expect(await store.readStream(SUBSCRIPTIONS_STREAM, { fromRevision: 0n, maxCount: 10 })).toHaveLength(3);
  });

  it('gives up after 10 attempts that all lost the race', async () => {
    const store = new MemoryEventStore();
    let appends = 0;
    const racing: EventStore = Object.assign(Object.create(store) as EventStore, {
      append: async () => {
        appends += 1;
        throw new WrongExpectedVersionError(SUBSCRIPTIONS_STREAM, 0n, 1n);
      },
    });
    const repository = new SubscriptionRepository(racing, () => T0);
    await expect(repository.execute(create('wh_first000001'))).rejects.toBeInstanceOf(
      WrongExpectedVersionError,
    );
    expect(appends).toBe(10);
    // Any other failure is not retried.
    let failures = 0;
    const broken: EventStore = Object.assign(Object.create(store) as EventStore, {
      append: async () => {
        failures += 1;
        throw new Error('disk full');
      },
    });
    await expect(new SubscriptionRepository(broken).execute(create('wh_first000001'))).rejects.toThrow(
      'disk full',
    );
    expect(failures).toBe(1);
  });

  it('folds a stream longer than one page', async () => {
    const store = new MemoryEventStore();
    const writer = new SubscriptionRepository(store, () => T0);
    await writer.execute(create('wh_paged000001'));
    for (let i = 0; i < 1000; i += 1) {
      await writer.execute({
        type: 'UpdateSubscription',
        subscriptionId: 'wh_paged000001',
        description: `v${i}`,
      });
    }
    const reader = new SubscriptionRepository(store, () => T0);
    expect((await reader.current()).get('wh_paged000001')!.description).toBe('v999');
  });

  it('a failed catch-up does not stop the next one', async () => {
    const store = new MemoryEventStore();
    await new SubscriptionRepository(store, () => T0).execute(create('wh_first000001'));
    let fail = true;
    const flaky: EventStore = Object.assign(Object.create(store) as EventStore, {
      readStream: (...args: Parameters<EventStore['readStream']>) => {
        if (fail) {
          fail = false;
          return Promise.reject(new Error('unavailable'));
        }
        return store.readStream(...args);
      },
    });
    const repository = new SubscriptionRepository(flaky, () => T0);
    await expect(repository.current()).rejects.toThrow('unavailable');
    expect([...(await repository.current()).keys()]).toEqual(['wh_first000001']);
  });
});
