import { randomUUID } from 'node:crypto';
import {
  AppendOutcomeUnknownError,
  AppendTooLargeError,
  EsdbEventStore,
  StoreUnavailableError,
  WrongExpectedVersionError,
  type NewEvent,
} from '../src';
import { EsdbTestServer, type Refusal } from '../../../test/esdb/test-server';

const ev = (data: unknown = { n: 1 }): NewEvent => ({ id: randomUUID(), type: 'T', data, metadata: {} });

// What the adapter makes of a real node's refusals, over both append paths: a busy, not-ready, timing-out
// or follower node is StoreUnavailableError (HTTP 503, retry later); anything else is not.
describe.each(['batchAppend', 'append'] as const)('EventStoreDB adapter refusals over %s', (path) => {
  let server: EsdbTestServer;
  let store: EsdbEventStore;
  beforeEach(async () => {
    server = new EsdbTestServer(undefined, { serverFeatures: path === 'batchAppend', maxAppendSize: 4096 });
    await server.start();
    store = new EsdbEventStore(server.connectionString);
    await store.append(`warm-${randomUUID()}`, [ev()], 'no_stream'); // the path is negotiated
  });
  afterEach(async () => {
    await store.close();
    await server.stop();
  });

  it.each(['not-ready', 'too-busy', 'timeout', 'not-leader'] as Refusal[])(
    'an append refused as %s is StoreUnavailableError, writes nothing, and the next one succeeds',
    async (refusal) => {
      const stream = `s-${randomUUID()}`;
      server.refuse(refusal);
      await expect(store.append(stream, [ev()], 'no_stream')).rejects.toBeInstanceOf(StoreUnavailableError);
      server.refuse(undefined);
      expect(await store.readStream(stream)).toEqual([]);
      await expect(store.append(stream, [ev()], 'no_stream')).resolves.toMatchObject({
        nextExpectedRevision: 0n,
      });
      expect(server.calls[path === 'batchAppend' ? 'append' : 'batchAppend']).toBe(0);
    },
  );

  const sent = () => server.calls[path === 'batchAppend' ? 'batchAppend' : 'append'];
  const ids = async (stream: string) => (await store.readStream(stream)).map((e) => e.id);

  it('an append written but answered with a commit timeout is sent again with the same ids: the repeat answers it written, once', async () => {
    const stream = `s-${randomUUID()}`;
    const events = [ev(), ev()];
    server.refuse('timeout-after-commit');
    const before = sent();
    const appended = store.append(stream, events, 'no_stream');
    for (let i = 0; i < 200 && sent() === before; i += 1) await new Promise((r) => setTimeout(r, 5));
    server.refuse(undefined); // the repeat, 250 ms later, meets a node that answers
    await expect(appended).resolves.toMatchObject({ nextExpectedRevision: 1n });
    expect(sent() - before).toBe(2);
    expect(await ids(stream)).toEqual(events.map((e) => e.id));
  });

  it('an append no attempt confirms is AppendOutcomeUnknownError after three, written once though each timed out', async () => {
    const stream = `s-${randomUUID()}`;
    const events = [ev()];
    server.refuse('timeout-after-commit');
    const before = sent();
    const error = await store.append(stream, events, 'no_stream').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppendOutcomeUnknownError);
    expect((error as Error).message).toMatch(
      /did not confirm the append \(3 attempts with the same event ids/,
    );
    expect(sent() - before).toBe(3);
    server.refuse(undefined);
    expect(await ids(stream)).toEqual(events.map((e) => e.id));
  });

  it('a timeout that wrote nothing: the repeat writes the events; another writer meanwhile makes it WrongExpectedVersion, not a second write', async () => {
    const stream = `s-${randomUUID()}`;
    server.refuse('timeout');
    const mine = ev();
    const appended = store.append(stream, [mine], 'no_stream');
    await new Promise((r) => setTimeout(r, 50));
    server.refuse(undefined);
    await expect(appended).resolves.toMatchObject({ nextExpectedRevision: 0n });
    expect(await ids(stream)).toEqual([mine.id]);

    const other = new EsdbEventStore(server.connectionString);
    await other.append(`warm-${randomUUID()}`, [ev()], 'no_stream'); // connected: its write below is quick
    server.refuse('timeout');
    const late = store.append(stream, [ev()], 0n);
    await new Promise((r) => setTimeout(r, 50));
    server.refuse(undefined);
    const theirs = ev();
    await other.append(stream, [theirs], 0n); // before the repeat, 250 ms after the first attempt
    await other.close();
    await expect(late).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(await ids(stream)).toEqual([mine.id, theirs.id]);
  });

  it('reads while not ready are StoreUnavailableError', async () => {
    server.setNotReady(true);
    await expect(store.readStream(`s-${randomUUID()}`)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.readAll({ maxCount: 1 })).rejects.toBeInstanceOf(StoreUnavailableError);
    server.setNotReady(false);
    await expect(store.readAll({ maxCount: 1 })).resolves.toHaveLength(1);
  });

  it('an unexpected server error is not taken for a busy node', async () => {
    server.refuse('unknown');
    const error: unknown = await store.append(`s-${randomUUID()}`, [ev()], 'any').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(StoreUnavailableError);
  });

  it('an append over MaxAppendSize is AppendTooLargeError naming the limit, and writes nothing', async () => {
    const stream = `s-${randomUUID()}`;
    // Counted as the server counts: data + metadata + 2 x type length, over all events of the append.
    const big = [ev({ pad: 'x'.repeat(2000) }), ev({ pad: 'y'.repeat(2000) }), ev({ pad: 'z'.repeat(100) })];
    const error: unknown = await store.append(stream, big, 'no_stream').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppendTooLargeError);
    expect(error).toMatchObject({ streamId: stream, maxBytes: 4096 });
    expect(await store.readStream(stream)).toEqual([]);
    await expect(store.append(stream, big.slice(0, 1), 'no_stream')).resolves.toBeDefined();
  });
});
