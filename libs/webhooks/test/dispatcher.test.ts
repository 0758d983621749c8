import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { jobStream } from '@snapcat/application';
import {
  MemoryEventStore,
  STREAM_DELETED,
  formatPosition,
  type EventStore,
  type Position,
} from '@snapcat/event-store';
import {
  DELIVERY_FAILURES_STREAM,
  DISPATCHER_STREAM,
  Deliveries,
  SUBSCRIPTIONS_STREAM,
  SecretBox,
  SubscriptionRepository,
  WebhookDispatcher,
  type DeliveryRecord,
  type DispatcherDeps,
} from '../src';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { eventually } from '../../../test/support/wait';

// The dispatcher on a memory store and the real Redis: which deliveries it enqueues, where it resumes.
const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
afterAll(() => redis.disconnect());

const box = new SecretBox('k'.repeat(32));
const JOB_A = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const JOB_B = 'b1b2c3d4e5f60718293a4b5c6d7e8f90';
const T0 = Date.parse('2026-11-30T10:00:00.000Z');

function world(name: string) {
  const prefix = testPrefix(`wh-dispatcher-${name}`);
  const store = new MemoryEventStore();
  const subscriptions = new SubscriptionRepository(store, () => T0);
  const logs: { message: string; fields?: object }[] = [];
  const log = (message: string, fields?: object) => logs.push({ message, ...(fields ? { fields } : {}) });
  const opened: { deliveries: Deliveries; dispatcher: WebhookDispatcher; prefix: string }[] = [];
  let now = T0;
  const w = {
    store,
    subscriptions,
    logs,
    prefix,
    tick: (ms: number) => (now += ms),
    /** A dispatcher (and its delivery queue) on `onPrefix`, started; reading `onStore` (the world's store by default). */
    start(
      onPrefix = prefix,
      checkpointEveryMs = 0,
      onStore: EventStore = store,
      DeliveriesOf: typeof Deliveries = Deliveries,
      extra: Partial<DispatcherDeps> = {},
    ) {
      const deliveries = new DeliveriesOf(redis, { host: '127.0.0.1', port: 6379 }, onPrefix, 1);
      const dispatcher = new WebhookDispatcher({
        store: onStore,
        redis,
        deliveries,
        keyPrefix: onPrefix,
        checkpointEveryMs,
        now: () => now,
        log: { info: log, warn: log, error: log },
        ...extra,
      });
      opened.push({ deliveries, dispatcher, prefix: onPrefix });
      dispatcher.start();
      return { deliveries, dispatcher };
    },
    async subscribe(
      id: string,
      fields: { eventTypes?: string[]; jobIds?: string[]; namespaces?: string[] } = {},
    ) {
      await subscriptions.execute({
        type: 'CreateSubscription',
        subscriptionId: id,
        url: 'https://example.com/hook',
        eventTypes: (fields.eventTypes ?? []) as never,
        jobIds: fields.jobIds ?? [],
        ...(fields.namespaces ? { namespaces: fields.namespaces } : {}),
        description: '',
        secret: box.seal('s'),
      });
    },
    /** Appends one job event; its id and position. */
    async event(jobId: string, type: string, extra: Record<string, unknown> = {}) {
      const id = randomUUID();
      const data = { type, jobId, occurredAt: new Date(T0).toISOString(), ...extra };
      const { position } = await store.append(jobStream(jobId), [{ id, type, data }], 'any');
      return { id, position, data };
    },
    /** A durable checkpoint at `position`, as an earlier dispatcher writes it. */
    async checkpointAt(position: Position) {
      await store.append(
        DISPATCHER_STREAM,
        [
          {
            id: randomUUID(),
            type: 'WebhookDispatcherCheckpointed',
            data: { position: formatPosition(position), at: new Date(T0).toISOString() },
          },
        ],
        'any',
      );
    },
    async close() {
      for (const o of opened) {
        await o.dispatcher.stop();
        await o.deliveries.close();
        await deleteKeys(o.prefix);
      }
    },
  };
  return w;
}

const deliveriesOf = async (deliveries: Deliveries, subscriptionId: string): Promise<DeliveryRecord[]> =>
  deliveries.list(subscriptionId, 100);

describe('webhook dispatcher', () => {
  it("a subscription of some namespaces gets only their jobs' events, the job's namespace read from its stream", async () => {
    const w = world('namespaces');
    try {
      // Registered before the dispatcher starts: it learns the namespace from the job's first event.
      const payments = await w.event(JOB_A, 'JobRegistered', { namespace: 'payments' });
      await w.subscribe('wh_payments0001', { namespaces: ['payments'] });
      await w.subscribe('wh_everything01');
      const other = await w.event(JOB_B, 'JobRegistered'); // before namespaces: default
      const completedA = await w.event(JOB_A, 'SnapshotCompleted', { snapshotId: 1 });
      const completedB = await w.event(JOB_B, 'SnapshotCompleted', { snapshotId: 1 });
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.stats.eventsHandled === 3 + 3, 10_000, 'every event handled');
      expect((await deliveriesOf(deliveries, 'wh_payments0001')).map((d) => d.messageId)).toEqual([
        completedA.id,
      ]);
      expect((await deliveriesOf(deliveries, 'wh_everything01')).map((d) => d.messageId).sort()).toEqual(
        [other.id, completedA.id, completedB.id].sort(),
      );
      expect(payments.data).toMatchObject({ namespace: 'payments' });
    } finally {
      await w.close();
    }
  });

  it("with only subscriptions of some namespaces (none of every namespace), each still gets its namespaces' jobs' events", async () => {
    const w = world('namespaces-only');
    try {
      await w.event(JOB_A, 'JobRegistered', { namespace: 'payments' });
      await w.event(JOB_B, 'JobRegistered', { namespace: 'search' });
      await w.subscribe('wh_payments0001', { namespaces: ['payments'] });
      await w.subscribe('wh_search000001', { namespaces: ['search'] });
      const completedA = await w.event(JOB_A, 'SnapshotCompleted', { snapshotId: 1 });
      const completedB = await w.event(JOB_B, 'SnapshotCompleted', { snapshotId: 1 });
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.stats.eventsHandled === 2 + 2 + 2, 10_000, 'every event handled');
      expect((await deliveriesOf(deliveries, 'wh_payments0001')).map((d) => d.messageId)).toEqual([
        completedA.id,
      ]);
      expect((await deliveriesOf(deliveries, 'wh_search000001')).map((d) => d.messageId)).toEqual([
        completedB.id,
      ]);
    } finally {
      await w.close();
    }
  });

  it('a hold names its holder, and a restore its source, only to subscriptions that may see that job: null for one whose namespaces lack it (decision 0045)', async () => {
    const w = world('holder');
    try {
      await w.event(JOB_A, 'JobRegistered', { namespace: 'payments' });
      await w.event(JOB_B, 'JobRegistered', { namespace: 'search' });
      await w.subscribe('wh_payments0001', { namespaces: ['payments'] });
      await w.subscribe('wh_both00000001', { namespaces: ['payments', 'search'] });
      await w.subscribe('wh_everything01');
      const hold = { snapshotId: 1, holderJobId: JOB_B, holderRestore: 1 };
      const held = await w.event(JOB_A, 'SnapshotHeld', hold);
      const released = await w.event(JOB_A, 'SnapshotHoldReleased', hold);
      await w.subscribe('wh_search000001', { namespaces: ['search'] });
      const restored = await w.event(JOB_B, 'SnapshotRestored', { fromJobId: JOB_A, restorePath: '/sp' });
      const ownRestore = await w.event(JOB_B, 'SnapshotRestored', { restorePath: '/own' });
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.stats.eventsHandled === 4 + 2 + 4, 10_000, 'every event handled');
      const dataOf = async (event: { id: string }, subscriptionId: string) =>
        JSON.parse((await deliveries.get(`${event.id}-${subscriptionId}`))!.body).data;
      for (const event of [held, released]) {
        expect(await dataOf(event, 'wh_payments0001')).toMatchObject({ ...hold, holderJobId: null });
        expect(await dataOf(event, 'wh_both00000001')).toMatchObject(hold);
        expect(await dataOf(event, 'wh_everything01')).toMatchObject(hold);
      }
      // The other way round: the restored job's subscription is not told the job it was restored from.
      expect(await dataOf(restored, 'wh_search000001')).toMatchObject({
        fromJobId: null,
        restorePath: '/sp',
      });
      expect(await dataOf(restored, 'wh_everything01')).toMatchObject({ fromJobId: JOB_A });
      expect(await dataOf(ownRestore, 'wh_search000001')).toMatchObject({ restorePath: '/own' });
      expect(await dataOf(ownRestore, 'wh_search000001')).not.toHaveProperty('fromJobId');
    } finally {
      await w.close();
    }
  });

  it("reads no job's stream for its namespace while every subscription is of every namespace", async () => {
    const w = world('namespaces-unread');
    try {
      await w.event(JOB_A, 'JobRegistered', { namespace: 'payments' });
      await w.subscribe('wh_everything01');
      await w.subscribe('wh_completions1', { eventTypes: ['SnapshotCompleted'] });
      const completed = await w.event(JOB_A, 'SnapshotCompleted', { snapshotId: 1 });
      const read: string[] = [];
      const counting: EventStore = Object.assign(Object.create(w.store) as EventStore, {
        readStream: (...args: Parameters<EventStore['readStream']>) => {
          read.push(args[0]);
          return w.store.readStream(...args);
        },
      });
      const { deliveries, dispatcher } = w.start(w.prefix, 0, counting);
      await eventually(() => dispatcher.stats.eventsHandled === 1 + 2 + 1, 10_000, 'every event handled');
      expect((await deliveriesOf(deliveries, 'wh_completions1')).map((d) => d.messageId)).toEqual([
        completed.id,
      ]);
      expect(read).not.toContain(jobStream(JOB_A));
    } finally {
      await w.close();
    }
  });

  it("passes over a hard-deleted job stream's tombstone in $all (no delivery, no failure) and delivers what follows", async () => {
    const w = world('tombstone');
    try {
      await w.subscribe('wh_everything01');
      // The memory store writes no tombstones: one of its events is given as EventStoreDB gives one (data null).
      const stand = await w.event(JOB_B, 'JobRegistered');
      const completed = await w.event(JOB_A, 'SnapshotCompleted', { snapshotId: 1 });
      const withTombstone: EventStore = Object.assign(Object.create(w.store) as EventStore, {
        subscribeToAll: (...[options, handler, onError]: Parameters<EventStore['subscribeToAll']>) =>
          w.store.subscribeToAll(
            options,
            (e) => handler(e.id === stand.id ? { ...e, type: STREAM_DELETED, data: null } : e),
            onError,
          ),
      });
      const { deliveries, dispatcher } = w.start(w.prefix, 0, withTombstone);
      await eventually(() => dispatcher.stats.eventsHandled === 1 + 2, 10_000, 'every event handled');
      expect((await deliveriesOf(deliveries, 'wh_everything01')).map((d) => d.messageId)).toEqual([
        completed.id,
      ]);
      expect(dispatcher.stats.deliveriesEnqueued).toBe(1);
      expect(w.logs.filter((l) => /fail/i.test(l.message))).toEqual([]);
    } finally {
      await w.close();
    }
  });

  it('enqueues one delivery per event and matching subscription, with the event as the body', async () => {
    const w = world('match');
    try {
      const early = await w.event(JOB_A, 'JobRegistered'); // before any subscription: sent to none
      await w.subscribe('wh_everything01');
      await w.subscribe('wh_completions1', { eventTypes: ['SnapshotCompleted'] });
      await w.subscribe('wh_jobbonly0001', { jobIds: [JOB_B] });
      const registered = await w.event(JOB_B, 'JobRegistered', { name: 'b' });
      const completed = await w.event(JOB_A, 'SnapshotCompleted', { snapshotId: 1 });
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.stats.eventsHandled === 3 + 3, 10_000, 'every event handled');
      expect(dispatcher.stats.deliveriesEnqueued).toBe(4);
      const everything = await deliveriesOf(deliveries, 'wh_everything01');
      expect(everything.map((d) => d.messageId).sort()).toEqual([registered.id, completed.id].sort());
      expect(everything.map((d) => d.messageId)).not.toContain(early.id);
      expect((await deliveriesOf(deliveries, 'wh_completions1')).map((d) => d.messageId)).toEqual([
        completed.id,
      ]);
      expect((await deliveriesOf(deliveries, 'wh_jobbonly0001')).map((d) => d.messageId)).toEqual([
        registered.id,
      ]);
      const record = (await deliveries.get(`${completed.id}-wh_completions1`))!;
      expect(record).toMatchObject({
        id: `${completed.id}-wh_completions1`,
        subscriptionId: 'wh_completions1',
        messageId: completed.id,
        eventType: 'SnapshotCompleted',
        jobId: JOB_A,
        status: 'pending',
        createdAt: new Date(T0).toISOString(),
      });
      expect(JSON.parse(record.body)).toEqual({
        type: 'SnapshotCompleted',
        timestamp: new Date(T0).toISOString(),
        data: { jobId: JOB_A, occurredAt: new Date(T0).toISOString(), snapshotId: 1 },
      });
      // The Redis position is the last event's.
      expect(await redis.get(`${w.prefix}:wh:position`)).toBe(formatPosition(completed.position));
    } finally {
      await w.close();
    }
  });

  it('a delivery’s unsettled position is the event before it; failures in the log are deliverable too', async () => {
    const w = world('positions');
    try {
      await w.subscribe('wh_everything01');
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.active, 10_000, 'dispatcher active');
      const first = await w.event(JOB_A, 'JobRegistered');
      await w.event(JOB_A, 'SnapshotTriggered');
      await eventually(() => dispatcher.stats.deliveriesEnqueued === 2, 10_000, 'two deliveries');
      // The subscription's own creation came first: the first delivery resumes after it.
      const [created] = await w.store.readStream('snapcat-webhooks', { fromRevision: 0n, maxCount: 1 });
      expect(await deliveries.oldestUnsettled()).toEqual(created!.position);
      await deliveries.settle(
        { deliveryId: `${first.id}-wh_everything01`, subscriptionId: 'wh_everything01' },
        'succeeded',
        T0,
      );
      expect(await deliveries.oldestUnsettled()).toEqual(first.position);
      // A WebhookDeliveryFailed in its own stream goes to the subscriptions, without a job.
      const failed = {
        type: 'WebhookDeliveryFailed',
        subscriptionId: 'wh_everything01',
        occurredAt: new Date(T0).toISOString(),
      };
      await w.store.append(
        DELIVERY_FAILURES_STREAM,
        [{ id: randomUUID(), type: failed.type, data: failed }],
        'any',
      );
      // Events of other streams are not dispatched.
      await w.store.append('other-stream', [{ id: randomUUID(), type: 'JobRegistered', data: {} }], 'any');
      await eventually(() => dispatcher.stats.deliveriesEnqueued === 3, 10_000, 'the failure delivered');
      const listed = await deliveriesOf(deliveries, 'wh_everything01');
      const failure = listed.find((d) => d.eventType === 'WebhookDeliveryFailed')!;
      expect(failure).not.toHaveProperty('jobId');
      expect(dispatcher.stats.eventsHandled).toBe(4);
    } finally {
      await w.close();
    }
  });

  it('without its Redis state (a wipe), resumes from the durable checkpoint, with the subscriptions of then', async () => {
    const w = world('recover');
    try {
      // A checkpoint written by an earlier dispatcher: after the first subscription, before the second.
      await w.subscribe('wh_everything01');
      const before = await w.event(JOB_A, 'JobRegistered');
      await w.store.append(
        DISPATCHER_STREAM,
        [
          {
            id: randomUUID(),
            type: 'WebhookDispatcherCheckpointed',
            data: { position: formatPosition(before.position), at: new Date(T0).toISOString() },
          },
        ],
        'any',
      );
      await w.subscribe('wh_later0000001');
      const after = await w.event(JOB_A, 'SnapshotTriggered');
      const { deliveries, dispatcher } = w.start();
      await eventually(
        () => dispatcher.stats.deliveriesEnqueued === 2,
        10_000,
        'deliveries after the checkpoint',
      );
      expect((await deliveriesOf(deliveries, 'wh_everything01')).map((d) => d.messageId)).toEqual([after.id]);
      expect((await deliveriesOf(deliveries, 'wh_later0000001')).map((d) => d.messageId)).toEqual([after.id]);
      expect(w.logs).toContainEqual({
        message: 'webhook dispatcher resumes from its durable checkpoint',
        fields: { position: formatPosition(before.position) },
      });
      expect(await redis.get(`${w.prefix}:wh:epoch`)).toBe(new Date(T0).toISOString());
    } finally {
      await w.close();
    }
  });

  it('with no checkpoint at all, starts from the beginning of the log', async () => {
    const w = world('from-start');
    try {
      await w.subscribe('wh_everything01');
      const event = await w.event(JOB_A, 'JobRegistered');
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.stats.deliveriesEnqueued === 1, 10_000, 'the delivery');
      expect((await deliveriesOf(deliveries, 'wh_everything01')).map((d) => d.messageId)).toEqual([event.id]);
      const start: Position = { commit: -1n, prepare: -1n };
      expect(w.logs).toContainEqual({
        message: 'webhook dispatcher resumes from its durable checkpoint',
        fields: { position: formatPosition(start) },
      });
    } finally {
      await w.close();
    }
  });

  it('resumes from a checkpoint at a subscription’s own creation (the position before its first delivery) with that subscription', async () => {
    const w = world('at-creation');
    try {
      // The checkpoint a dispatcher writes while the first delivery is unsettled: the creation's position.
      await w.subscribe('wh_everything01');
      const [created] = await w.store.readStream(SUBSCRIPTIONS_STREAM, { fromRevision: 0n, maxCount: 1 });
      const event = await w.event(JOB_A, 'JobRegistered');
      await w.checkpointAt(created!.position);
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.stats.eventsHandled === 1, 10_000, 'the event after the checkpoint');
      expect((await deliveriesOf(deliveries, 'wh_everything01')).map((d) => d.messageId)).toEqual([event.id]);
      expect(dispatcher.stats.deliveriesEnqueued).toBe(1);
    } finally {
      await w.close();
    }
  });

  it('resumes from the newest of its durable checkpoints', async () => {
    const w = world('newest-checkpoint');
    try {
      await w.subscribe('wh_everything01');
      const first = await w.event(JOB_A, 'JobRegistered');
      await w.checkpointAt(first.position);
      const second = await w.event(JOB_A, 'SnapshotTriggered');
      await w.checkpointAt(second.position);
      const third = await w.event(JOB_A, 'SnapshotCompleted', { snapshotId: 1 });
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.stats.eventsHandled === 1, 10_000, 'the event after the checkpoint');
      expect((await deliveriesOf(deliveries, 'wh_everything01')).map((d) => d.messageId)).toEqual([third.id]);
      expect(w.logs).toContainEqual({
        message: 'webhook dispatcher resumes from its durable checkpoint',
        fields: { position: formatPosition(second.position) },
      });
      expect(await redis.get(`${w.prefix}:wh:position`)).toBe(formatPosition(third.position));
    } finally {
      await w.close();
    }
  });

  it('resumes with the subscriptions of then when their stream holds more than one page (1,000) of events before the checkpoint', async () => {
    const w = world('paged');
    try {
      // 1,002 subscription events in one append, so that the fold reads a full page and then a short one:
      // A is created and updated 999 times (revisions 0-999), then B is created (1000) and A is limited to
      // SnapshotCompleted (1001). Both of the last changes are on the second page.
      const at = new Date(T0).toISOString();
      const A = 'wh_pagedA000001';
      const B = 'wh_pagedB000001';
      const created = (subscriptionId: string) => ({
        type: 'WebhookSubscriptionCreated',
        subscriptionId,
        occurredAt: at,
        url: 'https://example.com/hook',
        eventTypes: [],
        jobIds: [],
        description: '',
        secret: box.seal('s'),
      });
      const events: object[] = [created(A)];
      for (let i = 1; i < 1000; i += 1) {
        events.push({
          type: 'WebhookSubscriptionUpdated',
          subscriptionId: A,
          occurredAt: at,
          description: `v${i}`,
        });
      }
      events.push(created(B));
      events.push({
        type: 'WebhookSubscriptionUpdated',
        subscriptionId: A,
        occurredAt: at,
        eventTypes: ['SnapshotCompleted'],
      });
      await w.store.append(
        SUBSCRIPTIONS_STREAM,
        events.map((data) => ({ id: randomUUID(), type: (data as { type: string }).type, data })),
        'no_stream',
      );
      const before = await w.event(JOB_A, 'JobRegistered');
      await w.checkpointAt(before.position);
      const registered = await w.event(JOB_B, 'JobRegistered');
      const completed = await w.event(JOB_B, 'SnapshotCompleted', { snapshotId: 1 });
      const { deliveries, dispatcher } = w.start();
      await eventually(() => dispatcher.stats.eventsHandled === 2, 10_000, 'the events after the checkpoint');
      expect((await deliveriesOf(deliveries, B)).map((d) => d.messageId).sort()).toEqual(
        [registered.id, completed.id].sort(),
      );
      expect((await deliveriesOf(deliveries, A)).map((d) => d.messageId)).toEqual([completed.id]);
      expect(dispatcher.stats.deliveriesEnqueued).toBe(3);
    } finally {
      await w.close();
    }
  });

  it('a tick that fails is logged under the dispatcher’s name, and the next tick starts it', async () => {
    const w = world('failed-tick');
    try {
      await w.subscribe('wh_everything01');
      const event = await w.event(JOB_A, 'JobRegistered');
      let failures = 0;
      const flaky: EventStore = Object.assign(Object.create(w.store) as EventStore, {
        readStream: (...args: Parameters<EventStore['readStream']>) => {
          if (args[0] === DISPATCHER_STREAM && failures === 0) {
            failures += 1;
            return Promise.reject(new Error('checkpoint unreadable'));
          }
          return w.store.readStream(...args);
        },
      });
      const { deliveries, dispatcher } = w.start(w.prefix, 0, flaky);
      await eventually(() => dispatcher.stats.deliveriesEnqueued === 1, 10_000, 'the delivery, a tick later');
      expect(w.logs).toContainEqual({
        message: 'webhook dispatcher tick failed',
        fields: { error: 'Error: checkpoint unreadable' },
      });
      expect((await deliveriesOf(deliveries, 'wh_everything01')).map((d) => d.messageId)).toEqual([event.id]);
    } finally {
      await w.close();
    }
  });

  it('a wipe between the tick’s epoch read and the read of unsettled deliveries writes no checkpoint past them', async () => {
    const w = world('wipe-race');
    try {
      let wipeNextRead = false;
      // FLUSHALL landing just after the tick saw the epoch: the unsettled set reads empty.
      class WipedWhileRead extends Deliveries {
        override async oldestUnsettled() {
          if (wipeNextRead) {
            wipeNextRead = false;
            await deleteKeys(w.prefix);
          }
          return super.oldestUnsettled();
        }
      }
      await w.subscribe('wh_everything01');
      const [created] = await w.store.readStream(SUBSCRIPTIONS_STREAM, { fromRevision: 0n, maxCount: 1 });
      const { dispatcher } = w.start(w.prefix, 0, w.store, WipedWhileRead);
      const event = await w.event(JOB_A, 'JobRegistered');
      await eventually(() => dispatcher.stats.deliveriesEnqueued === 1, 10_000, 'the delivery');
      const checkpoints = async () =>
        (await w.store.readStream(DISPATCHER_STREAM, { fromRevision: 0n, maxCount: 100 })).map(
          (e) => (e.data as { position: string }).position,
        );
      await eventually(
        async () => (await checkpoints()).includes(formatPosition(created!.position)),
        10_000,
        'a checkpoint before the unsettled delivery',
      );
      wipeNextRead = true;
      // The next tick finds the epoch gone and recovers: the delivery Redis lost is enqueued again.
      await eventually(() => dispatcher.stats.deliveriesEnqueued === 2, 10_000, 'the delivery again');
      expect(await checkpoints()).not.toContain(formatPosition(event.position));
      expect(w.logs.filter((l) => l.message.includes('resumes from its durable checkpoint'))).toHaveLength(2);
    } finally {
      await w.close();
    }
  });

  it('saves a checkpoint of its subscription, past other streams’ events, as its position', async () => {
    const w = world('store-checkpoint');
    try {
      await w.subscribe('wh_everything01');
      const { dispatcher } = w.start();
      await w.event(JOB_A, 'JobRegistered');
      await eventually(() => dispatcher.stats.deliveriesEnqueued === 1, 10_000, 'the delivery');
      const others = Array.from({ length: 50 }, () => ({ id: randomUUID(), type: 'Other', data: {} }));
      const { position } = await w.store.append(`other-${randomUUID()}`, others, 'no_stream');
      await eventually(
        async () => (await redis.get(`${w.prefix}:wh:position`)) === formatPosition(position),
        10_000,
        'the position at the checkpoint',
      );
      expect(dispatcher.stats.eventsHandled).toBe(2); // the subscription's event and the job's
    } finally {
      await w.close();
    }
  });

  // Last: it waits for the dispatcher's ticks (one a second).
  it('writes a durable checkpoint before the oldest unsettled delivery, once per change, at its pace', async () => {
    const w = world('checkpoint');
    try {
      await w.subscribe('wh_everything01');
      const { deliveries, dispatcher } = w.start(w.prefix, 5000);
      const first = await w.event(JOB_A, 'JobRegistered');
      await eventually(() => dispatcher.stats.deliveriesEnqueued === 1, 10_000, 'one delivery');
      const checkpoints = async () =>
        (await w.store.readStream(DISPATCHER_STREAM, { fromRevision: 0n, maxCount: 100 })).map(
          (e) => e.data as { position: string; at: string },
        );
      // The first tick writes one (the last was "never"); the next ones wait for checkpointEveryMs.
      await eventually(async () => (await checkpoints()).length === 1, 10_000, 'a checkpoint');
      const [created] = await w.store.readStream('snapcat-webhooks', { fromRevision: 0n, maxCount: 1 });
      expect(await checkpoints()).toEqual([
        { position: formatPosition(created!.position), at: new Date(T0).toISOString() },
      ]);
      await deliveries.settle(
        { deliveryId: `${first.id}-wh_everything01`, subscriptionId: 'wh_everything01' },
        'succeeded',
        T0,
      );
      await new Promise((r) => setTimeout(r, 1200));
      expect(await checkpoints()).toHaveLength(1); // not yet: less than 5 s passed
      w.tick(5000);
      await eventually(async () => (await checkpoints()).length === 2, 10_000, 'a second checkpoint');
      // Every delivery settled: the checkpoint is the dispatcher's own position.
      expect((await checkpoints())[1]).toEqual({
        position: formatPosition(first.position),
        at: new Date(T0 + 5000).toISOString(),
      });
      expect(dispatcher.stats.checkpoints).toBe(2);
      // Nothing moved: no new checkpoint, however much time passes.
      w.tick(5000);
      await new Promise((r) => setTimeout(r, 1200));
      w.tick(5000);
      await new Promise((r) => setTimeout(r, 1200));
      expect(await checkpoints()).toHaveLength(2);
    } finally {
      await w.close();
    }
  });

  it('the active dispatcher ends the deliveries BullMQ failed on its own, at its pace, one sweep at a time, beside its ticks; a standby does not', async () => {
    const w = world('failed-sweep');
    let release = () => undefined as void;
    let held = false;
    try {
      const sweeps: string[] = [];
      const extra = (name: string): Partial<DispatcherDeps> => ({
        failedSweepEveryMs: 30_000,
        endDeliveriesFailedByBullMq: async () => {
          sweeps.push(name);
          if (held) await new Promise<void>((r) => (release = r));
          return 0;
        },
      });
      const first = w.start(w.prefix, 0, w.store, Deliveries, extra('first'));
      const second = w.start(w.prefix, 0, w.store, Deliveries, extra('second'));
      // The first tick of the one holding the lease sweeps; the next ones wait for failedSweepEveryMs.
      await eventually(() => sweeps.length === 1, 10_000, 'a sweep');
      await new Promise((r) => setTimeout(r, 2500));
      expect(sweeps).toHaveLength(1);
      // A slow sweep (appends to a struggling store) holds neither the ticks nor another sweep's place.
      held = true;
      w.tick(30_000);
      await eventually(() => sweeps.length === 2, 10_000, 'a second sweep');
      expect(sweeps[1]).toBe(sweeps[0]); // the same, active, dispatcher
      const active = sweeps[0] === 'first' ? first.dispatcher : second.dispatcher;
      const checkpoints = active.stats.checkpoints;
      await w.event(JOB_A, 'JobRegistered');
      w.tick(30_000);
      await eventually(() => active.stats.checkpoints > checkpoints, 10_000, 'a checkpoint during the sweep');
      expect(sweeps).toHaveLength(2);
    } finally {
      release();
      await w.close();
    }
  });
});
