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
import { TcpProxy } from '../../../test/support/tcp-proxy';
import { eventually } from '../../../test/support/wait';

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
    await eventually(() => sent() > before, 5000);
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
    const firstRefused = server.refusedAppends + 1;
    const appended = store.append(stream, [mine], 'no_stream');
    await eventually(() => server.refusedAppends >= firstRefused, 5000);
    server.refuse(undefined);
    await expect(appended).resolves.toMatchObject({ nextExpectedRevision: 0n });
    expect(await ids(stream)).toEqual([mine.id]);

    const other = new EsdbEventStore(server.connectionString);
    await other.append(`warm-${randomUUID()}`, [ev()], 'no_stream'); // connected: its write below is quick
    server.refuse('timeout');
    const refusedBefore = server.refusedAppends;
    const late = store.append(stream, [ev()], 0n);
    await eventually(() => server.refusedAppends > refusedBefore, 5000);
    server.refuse(undefined);
    const theirs = ev();
    await other.append(stream, [theirs], 0n); // before the repeat, 250 ms after the first attempt
    await other.close();
    await expect(late).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(await ids(stream)).toEqual([mine.id, theirs.id]);
  });

  it('an append with expected revision any is not sent again once its outcome is unknown (a repeat would look only in a cache of recent ids)', async () => {
    const stream = `s-${randomUUID()}`;
    const events = [ev()];
    server.refuse('timeout-after-commit');
    const before = sent();
    const error = await store.append(stream, events, 'any').catch((e: unknown) => e);
    server.refuse(undefined);
    expect(error).toBeInstanceOf(AppendOutcomeUnknownError);
    expect((error as Error).message).toMatch(/\(1 attempt with the same event ids: .*(timed out|Deadline)/);
    expect(sent() - before).toBe(1);
    expect(await ids(stream)).toEqual(events.map((e) => e.id));
  });

  describe('the connection lost after the node wrote the append (a TCP proxy cuts it)', () => {
    let proxy: TcpProxy;
    let viaProxy: EsdbEventStore;
    beforeEach(async () => {
      proxy = new TcpProxy(Number(/:(\d+)\?/.exec(server.connectionString)![1]));
      viaProxy = new EsdbEventStore(`esdb://127.0.0.1:${await proxy.listen()}?tls=false`);
      await viaProxy.append(`warm-${randomUUID()}`, [ev()], 'no_stream');
    });
    afterEach(async () => {
      await viaProxy.close();
      await proxy.close();
    });
    /** Starts an append the node writes and never answers, then cuts every connection and refuses new ones. */
    const cutAfterCommit = async (stream: string, events: NewEvent[]) => {
      server.refuse('silent-after-commit');
      const before = sent();
      const appended = viaProxy.append(stream, events, 'no_stream').catch((e: unknown) => e);
      await eventually(() => sent() > before, 5000);
      server.refuse(undefined);
      proxy.refusing = true;
      proxy.dropAll();
      return appended;
    };

    it('the repeat, once the node is reachable again, answers it written, once', async () => {
      const stream = `s-${randomUUID()}`;
      const events = [ev()];
      const appended = cutAfterCommit(stream, events);
      setTimeout(() => (proxy.refusing = false), 100);
      expect(await appended).toMatchObject({ nextExpectedRevision: 0n });
      expect(await ids(stream)).toEqual(events.map((e) => e.id));
    });

    it('no repeat reaching the node: AppendOutcomeUnknownError naming each attempt, not a plain 503', async () => {
      const stream = `s-${randomUUID()}`;
      const events = [ev()];
      const error = await cutAfterCommit(stream, events);
      expect(error).toBeInstanceOf(AppendOutcomeUnknownError);
      expect((error as Error).message).toMatch(
        /\(3 attempts with the same event ids: .+; .+; .+\): it may be/,
      );
      expect(await ids(stream)).toEqual(events.map((e) => e.id));
    });

    it('a node the client knows unreachable before the append: a plain StoreUnavailableError (nothing written)', async () => {
      proxy.refusing = true;
      proxy.dropAll();
      // A call on the cut connection is "Connection dropped" (sent or not, the client cannot tell); after it,
      // the client knows there is no connection to send on.
      await viaProxy.readStream(`s-${randomUUID()}`).catch(() => undefined);
      const stream = `s-${randomUUID()}`;
      const error = await viaProxy.append(stream, [ev()], 'no_stream').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).not.toBeInstanceOf(AppendOutcomeUnknownError);
      expect(await ids(stream)).toEqual([]);
    });
  });

  it('a node that stops answering (a proxy drops every packet): reads and appends fail within the bound, also after the client reconnects, and serve again once it answers', async () => {
    const proxy = new TcpProxy(Number(/:(\d+)\?/.exec(server.connectionString)![1]));
    const silent = new EsdbEventStore(`esdb://127.0.0.1:${await proxy.listen()}?tls=false`, undefined, 1000);
    try {
      const stream = `s-${randomUUID()}`;
      await silent.append(stream, [ev()], 'no_stream');
      proxy.blackhole = true;
      const timed = async (call: Promise<unknown>) => {
        const started = Date.now();
        const error = await call.then(
          () => undefined,
          (e: unknown) => e,
        );
        return { error, ms: Date.now() - started };
      };
      const accepted = proxy.accepted.length;
      for (let round = 0; round < 3; round += 1) {
        // After the first round the connection is cut too: the client connects again, into the silence,
        // and asks the node's features with no deadline of its own.
        if (round === 1) proxy.dropAll();
        const read = await timed(silent.readStream(stream));
        expect(read.error).toBeInstanceOf(StoreUnavailableError);
        expect(read.ms).toBeLessThan(3000);
        const append = await timed(silent.append(stream, [ev()], 0n));
        expect(append.error).toBeInstanceOf(AppendOutcomeUnknownError);
        expect(append.ms).toBeLessThan(8000);
        const all = await timed(silent.readAll({ maxCount: 10 }));
        expect(all.error).toBeInstanceOf(StoreUnavailableError);
        expect(all.ms).toBeLessThan(3000);
        const filtered = await timed(silent.readAll({ filter: { eventTypes: ['JobRegistered'] } }));
        expect(filtered.error).toBeInstanceOf(StoreUnavailableError);
        expect(filtered.ms).toBeLessThan(3000);
        if (round !== 1) {
          expect((read.error as Error).message).toMatch(/no answer from EventStoreDB within 1000 ms/);
          expect((all.error as Error).message).toMatch(/no answer from EventStoreDB within 1000 ms/);
        }
      }
      expect(proxy.accepted.length).toBeGreaterThan(accepted); // the last round ran on a new connection
      // The proxy threw the bytes away (a real network would resend them): cut, so the client connects anew.
      proxy.blackhole = false;
      proxy.dropAll();
      await eventually(async () => (await silent.readStream(stream).catch(() => [])).length === 1, 30_000);
    } finally {
      await silent.close();
      await proxy.close();
    }
  }, 60_000);

  it('a node silent from the first connection: a filtered read (a catch-up subscription) fails within the bound', async () => {
    const proxy = new TcpProxy(Number(/:(\d+)\?/.exec(server.connectionString)![1]));
    proxy.blackhole = true;
    const silent = new EsdbEventStore(`esdb://127.0.0.1:${await proxy.listen()}?tls=false`, undefined, 1000);
    try {
      const started = Date.now();
      const read = silent.readAll({ filter: { eventTypes: ['JobRegistered'] } });
      const outcome = await Promise.race([
        read.then(
          () => 'answered',
          (error: unknown) => error,
        ),
        new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000)),
      ]);
      expect(outcome).toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      proxy.blackhole = false;
      await proxy.close();
      await silent.close();
    }
  });

  it('a filtered read of a log with few matching events goes on while the node sends only checkpoints (it is scanning), past the bound', async () => {
    for (let i = 0; i < 40; i += 1) {
      await store.append(
        `other-${i}`,
        Array.from({ length: 100 }, () => ev()),
        'any',
      );
    }
    const job = `job-${randomUUID()}`;
    await store.append(job, [{ ...ev(), type: 'JobRegistered' }], 'no_stream');
    server.subscriptionPaceMs = 300; // a checkpoint every 1,024 events scanned, 300 ms apart: ~2 s in all
    const patient = new EsdbEventStore(server.connectionString, undefined, 1000);
    try {
      const found = await patient.readAll({ filter: { eventTypes: ['JobRegistered'] } });
      expect(found.map((e) => e.streamId)).toEqual([job]);
      expect(server.subscriptions.checkpoints).toBeGreaterThanOrEqual(3);
    } finally {
      server.subscriptionPaceMs = 0;
      await patient.close();
    }
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
