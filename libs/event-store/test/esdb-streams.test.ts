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
import { EsdbTestServer, TestEventStoreData } from '../../../test/esdb/test-server';

const DELETED = 2n ** 63n - 1n;

async function collect(read: AsyncIterable<ResolvedEvent>) {
  const out: { type: string; revision: bigint; streamId: string }[] = [];
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
      expect.arrayContaining(['$epoch-information', '$users', '$user-admin', '$settings', '$projections-$all']),
    );
    const links = all.filter((e) => e.type === '$>');
    expect(links.map((e) => e.streamId).sort()).toEqual(['$ce-snapcat', '$et-E0']);
    expect(Buffer.from(links[0]!.data as Uint8Array).toString()).toBe(`0@${s}`);

    const bare = new EsdbTestServer(new TestEventStoreData({ systemEvents: false, standardProjections: false }));
    expect(bare.data.log).toHaveLength(0);
  });
});
