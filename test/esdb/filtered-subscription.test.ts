import { randomUUID } from 'node:crypto';
import { EventStoreDBClient, START, jsonEvent, streamNameFilter, type Position } from '@eventstore/db-client';
import { EsdbTestServer, TestEventStoreData } from './test-server';

// The checkpoints of a filtered $all subscription, as the real, unmodified client receives them from the
// protocol test server (which follows KurrentDB's Enumerator.AllSubscriptionFiltered). Events sit at
// n × 137 (the n-th event of the log); a catch-up checkpoint is where the next page starts: (n × 137, 0).
// The log holds only the test's events (no seeded system events, no standard projections' links), so that
// those positions can be written down.
const at = (n: number, prepare = 0) => ({ commit: BigInt(n * 137), prepare: BigInt(prepare) });
const eventAt = (n: number) => at(n, n * 137);

type Item = { checkpoint: Position } | { event: string; position: Position } | { caughtUp: true };

describe('filtered $all subscription checkpoints (protocol test server, real client)', () => {
  let server: EsdbTestServer;
  let client: EventStoreDBClient;
  beforeEach(async () => {
    server = new EsdbTestServer(new TestEventStoreData({ systemEvents: false, standardProjections: false }));
    await server.start();
    client = EventStoreDBClient.connectionString(server.connectionString);
  });
  afterEach(async () => {
    await client.dispose();
    await server.stop();
  });

  /** Appends `count` events to `stream` in one append. */
  const append = (stream: string, count: number, type = 'E') =>
    client.appendToStream(
      stream,
      Array.from({ length: count }, () => jsonEvent({ id: randomUUID(), type, data: {} })),
    );

  /** Subscribes; what arrives is in `items`, in order. */
  function subscribe(options: { from?: Position; checkpointInterval?: number; maxSearchWindow?: number }) {
    const items: Item[] = [];
    const subscription = client.subscribeToAll({
      fromPosition: options.from ?? START,
      filter: streamNameFilter({
        prefixes: ['mine-'],
        checkpointInterval: options.checkpointInterval ?? 1,
        ...(options.maxSearchWindow ? { maxSearchWindow: options.maxSearchWindow } : {}),
        checkpointReached: (_s, position) => {
          items.push({ checkpoint: position });
        },
      }),
    });
    subscription.on('caughtUp', () => items.push({ caughtUp: true }));
    subscription.on('data', (resolved: { event?: { type: string; position?: Position } }) =>
      items.push({ event: resolved.event!.type, position: resolved.event!.position! }),
    );
    opened.push(subscription);
    return items;
  }
  const opened: { unsubscribe(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.unsubscribe();
  });
  const waitFor = async (probe: () => boolean) => {
    for (let i = 0; i < 500 && !probe(); i += 1) await new Promise((r) => setTimeout(r, 10));
    expect(probe()).toBe(true);
  };
  const caughtUp = async (items: Item[]) => {
    await waitFor(() => items.some((i) => 'caughtUp' in i));
    return items;
  };

  it('catch-up: a checkpoint every 32 events scanned, at the start of the next page, and one at the end', async () => {
    await append('other-a', 40);
    await append('mine-1', 1, 'Mine'); // the 41st event
    await append('other-b', 59);
    const items = await caughtUp(subscribe({}));
    expect(items).toEqual([
      { checkpoint: at(0) }, // page 1 (events 1-32, from (0, 0)) scanned nothing matching
      { event: 'Mine', position: eventAt(41) }, // page 2 (33-64): the event ...
      { checkpoint: eventAt(41) }, // ... is later than the page's start
      { checkpoint: at(65) }, // page 3 (65-96): its start
      { checkpoint: at(97) }, // page 4 (97-100) reaches the end of the log
      { caughtUp: true },
    ]);
    expect(server.subscriptions).toEqual({ events: 1, checkpoints: 4, eventsScanned: 100 });
  });

  it('the interval is checkpointInterval × the search window (32, or maxSearchWindow)', async () => {
    await append('other-a', 100);
    const checkpoints = (items: Item[]) =>
      items.flatMap((i) => ('checkpoint' in i ? [i.checkpoint.commit / 137n] : []));
    const twice = await caughtUp(subscribe({ checkpointInterval: 2 }));
    expect(checkpoints(twice)).toEqual([33n, 97n]); // after 64 scanned, and at the end
    const window10 = await caughtUp(subscribe({ maxSearchWindow: 10 }));
    expect(checkpoints(window10)).toEqual([0n, 11n, 21n, 31n, 41n, 51n, 61n, 71n, 81n, 91n]);
  });

  it('live: every 32nd event appended after the subscription is a checkpoint at its own position', async () => {
    await append('other-a', 5);
    const items = await caughtUp(subscribe({}));
    await append('other-b', 20);
    await append('mine-1', 1, 'Mine'); // the 26th event, the 21st live one
    await append('other-c', 50);
    await waitFor(() => items.filter((i) => 'checkpoint' in i).length === 3);
    expect(items.slice(2)).toEqual([
      { event: 'Mine', position: eventAt(26) },
      { checkpoint: eventAt(37) }, // the 32nd live event
      { checkpoint: eventAt(69) }, // the 64th
    ]);
  });

  it('from a checkpoint (next record, prepare 0), the event at that commit position comes', async () => {
    await append('other-a', 40);
    await append('mine-1', 1, 'Mine'); // the 41st event: page 2 starts at (33 × 137, 0)
    const items = await caughtUp(subscribe({ from: at(41) }));
    expect(items.filter((i) => 'event' in i)).toEqual([{ event: 'Mine', position: eventAt(41) }]);
    // From the event itself, it does not come again.
    const after = await caughtUp(subscribe({ from: eventAt(41) }));
    expect(after.filter((i) => 'event' in i)).toEqual([]);
  });
});
