import { randomUUID } from 'node:crypto';
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  StreamDeletedError as ClientStreamDeletedError,
  StreamNotFoundError,
  WrongExpectedVersionError as ClientWrongExpectedVersion,
  jsonEvent,
  type ResolvedEvent,
} from '@eventstore/db-client';
import {
  EsdbEventStore,
  START,
  STREAM_DELETED,
  StreamDeletedError,
  isTombstone,
  type NewEvent,
  type RecordedEvent,
} from '../src';
import { EsdbTestServer, TestEventStoreData } from '../../../test/esdb/test-server';

const DELETED = 2n ** 63n - 1n;

async function collect(read: AsyncIterable<ResolvedEvent>) {
  const out: { type: string; revision: bigint; streamId: string; data: unknown }[] = [];
  for await (const { event } of read) if (event) out.push(event);
  return out;
}

// The test server's stream metadata, deletions and system events, through the real, unmodified client
// (KurrentDB docs server/features/streams.md; IndexReader, IndexWriter.CheckCommit, StorageWriterService).
describe('EventStoreDB test server: stream metadata, deletion, system events', () => {
  let server: EsdbTestServer;
  let client: EventStoreDBClient;
  beforeEach(async () => {
    server = new EsdbTestServer();
    await server.start();
    client = EventStoreDBClient.connectionString(server.connectionString);
  });
  afterEach(async () => {
    await client.dispose();
    await server.stop();
  });

  const append = (stream: string, n: number) =>
    client.appendToStream(
      stream,
      Array.from({ length: n }, (_, i) => jsonEvent({ type: `E${i}`, data: { i } })),
    );
  const revisions = async (stream: string, options = {}) =>
    (await collect(client.readStream(stream, options))).map((e) => e.revision);

  it('keeps metadata in $$<stream>; reads honour $maxCount and $tb, $all keeps every event', async () => {
    const s = `meta-${randomUUID()}`;
    await append(s, 5);
    await client.setStreamMetadata(s, { maxCount: 2 });
    expect((await client.getStreamMetadata(s)).metadata).toMatchObject({ maxCount: 2 });
    expect(await revisions(s)).toEqual([3n, 4n]);
    expect(await revisions(s, { direction: BACKWARDS, fromRevision: END })).toEqual([4n, 3n]);
    await client.setStreamMetadata(s, { truncateBefore: 1 });
    expect(await revisions(s)).toEqual([1n, 2n, 3n, 4n]);
    const all = await collect(client.readAll());
    expect(all.filter((e) => e.streamId === s)).toHaveLength(5);
    expect(all.filter((e) => e.streamId === `$$${s}` && e.type === '$metadata')).toHaveLength(2);
  });

  it('a soft delete reads as no stream; an append recreates it, revisions continuing', async () => {
    const s = `soft-${randomUUID()}`;
    await append(s, 3);
    await client.deleteStream(s);
    await expect(revisions(s)).rejects.toBeInstanceOf(StreamNotFoundError);
    expect((await client.getStreamMetadata(s)).metadata?.truncateBefore).toBeGreaterThan(2 ** 62);
    await expect(
      client.appendToStream(s, jsonEvent({ type: 'X', data: {} }), { expectedRevision: 'stream_exists' }),
    ).rejects.toBeInstanceOf(ClientStreamDeletedError);
    const again = await client.appendToStream(s, jsonEvent({ type: 'X', data: {} }), {
      expectedRevision: 'no_stream',
    });
    expect(again.nextExpectedRevision).toBe(3n);
    expect(await revisions(s)).toEqual([3n]);
    expect((await client.getStreamMetadata(s)).metadata?.truncateBefore).toBe(3);
    await expect(client.deleteStream(`never-${randomUUID()}`)).rejects.toBeInstanceOf(
      ClientWrongExpectedVersion,
    );
  });

  it('a tombstone is a $streamDeleted event in the stream, at long.MaxValue; reads and writes then fail', async () => {
    const s = `hard-${randomUUID()}`;
    await append(s, 2);
    const { position } = await client.tombstoneStream(s);
    const all = await collect(client.readAll());
    const tombstone = all.find((e) => e.streamId === s && e.type === '$streamDeleted');
    expect(tombstone).toMatchObject({ revision: DELETED });
    expect(position).toBeDefined();
    await expect(revisions(s)).rejects.toBeInstanceOf(ClientStreamDeletedError);
    await expect(append(s, 1)).rejects.toBeInstanceOf(ClientStreamDeletedError);
    await expect(client.deleteStream(s)).rejects.toBeInstanceOf(ClientStreamDeletedError);
    await expect(client.tombstoneStream(s)).rejects.toBeInstanceOf(ClientStreamDeletedError);
  });

  it('over plain Append too, an append to a tombstoned stream fails with StreamDeleted', async () => {
    const plain = new EsdbTestServer(undefined, { serverFeatures: false });
    await plain.start();
    const other = EventStoreDBClient.connectionString(plain.connectionString);
    try {
      await other.tombstoneStream('gone');
      await expect(other.appendToStream('gone', jsonEvent({ type: 'X', data: {} }))).rejects.toBeInstanceOf(
        ClientStreamDeletedError,
      );
      expect(plain.calls.append).toBe(1);
    } finally {
      await other.dispose();
      await plain.stop();
    }
  });

  it('$all starts with system events, and user events are followed by $> links of the standard projections', async () => {
    const s = `snapcat-job-${randomUUID()}`;
    await append(s, 1);
    const all = await collect(client.readAll());
    const system = all.filter((e) => e.streamId.startsWith('$'));
    expect(system.map((e) => e.streamId)).toEqual(
      expect.arrayContaining([
        '$epoch-information',
        '$users',
        '$user-admin',
        '$settings',
        '$projections-$all',
      ]),
    );
    const links = all.filter((e) => e.type === '$>');
    expect(links.map((e) => e.streamId).sort()).toEqual(['$ce-snapcat', '$et-E0']);
    expect(Buffer.from(links[0]!.data as Uint8Array).toString()).toBe(`0@${s}`);

    const bare = new EsdbTestServer(
      new TestEventStoreData({ systemEvents: false, standardProjections: false }),
    );
    expect(bare.data.log).toHaveLength(0);
  });
});

// What the adapter makes of them: only snapcat's own events and tombstones reach the port.
describe('EventStoreDB adapter: system events, tombstones, max count', () => {
  let server: EsdbTestServer;
  let client: EventStoreDBClient;
  let store: EsdbEventStore;
  beforeEach(async () => {
    server = new EsdbTestServer();
    await server.start();
    client = EventStoreDBClient.connectionString(server.connectionString);
    store = new EsdbEventStore(server.connectionString);
  });
  afterEach(async () => {
    await store.close();
    await client.dispose();
    await server.stop();
  });

  const ev = (type: string): NewEvent => ({ id: randomUUID(), type, data: { type }, metadata: {} });

  it('readAll and subscribeToAll leave out system streams and $-typed events, and deliver a tombstone', async () => {
    const prefix = `snapcat-job-${randomUUID().slice(0, 8)}`;
    const s = `${prefix}-a`;
    await store.append(s, [ev('JobRegistered')], 'no_stream');
    await client.appendToStream(s, jsonEvent({ type: '$custom', data: {} })); // a $-typed event in the stream
    await client.setStreamMetadata(s, { maxCount: 100 });
    await client.tombstoneStream(s);
    const seen = (events: RecordedEvent[]) =>
      events.filter((e) => e.streamId.startsWith(prefix)).map((e) => [e.type, isTombstone(e), e.data]);
    const expected = [
      ['JobRegistered', false, { type: 'JobRegistered' }],
      [STREAM_DELETED, true, null],
    ];
    expect(seen(await store.readAll())).toEqual(expected);
    expect((await store.readAll()).some((e) => e.streamId.startsWith('$') || e.type === '$>')).toBe(false);
    const live: RecordedEvent[] = [];
    const sub = store.subscribeToAll({ from: START }, (e) => {
      live.push(e);
    });
    try {
      for (let i = 0; i < 100 && seen(live).length < 2; i += 1) await new Promise((r) => setTimeout(r, 20));
      expect(seen(live)).toEqual(expected);
      expect(live.some((e) => e.streamId.startsWith('$'))).toBe(false);
    } finally {
      await sub.close();
    }
  });

  it('a hard-deleted stream is StreamDeletedError on read and append; a soft-deleted one reads empty', async () => {
    const s = `snapcat-job-${randomUUID()}`;
    await store.append(s, [ev('A')], 'no_stream');
    await client.tombstoneStream(s);
    await expect(store.readStream(s)).rejects.toEqual(new StreamDeletedError(s));
    await expect(store.append(s, [ev('B')], 0n)).rejects.toMatchObject({
      name: 'StreamDeletedError',
      streamId: s,
    });
    const soft = `snapcat-job-${randomUUID()}`;
    await store.append(soft, [ev('A')], 'no_stream');
    await client.deleteStream(soft);
    expect(await store.readStream(soft)).toEqual([]);
  });

  it('setStreamMaxCount writes $maxCount into the stream metadata once, keeping what else it holds', async () => {
    const s = `snapcat-aggregate-${randomUUID()}`;
    await client.setStreamMetadata(s, { cacheControl: 10 });
    await store.setStreamMaxCount(s, 3);
    await store.setStreamMaxCount(s, 3);
    const another = new EsdbEventStore(server.connectionString); // another process: reads, finds it set
    await another.setStreamMaxCount(s, 3);
    await another.close();
    expect((await client.getStreamMetadata(s)).metadata).toMatchObject({ maxCount: 3, cacheControl: 10 });
    const metadataEvents = server.data.streams.get(`$$${s}`)!.filter((e) => e.type === '$metadata');
    expect(metadataEvents).toHaveLength(2); // the test's own and one for the cap: no rewrite
  });
});
