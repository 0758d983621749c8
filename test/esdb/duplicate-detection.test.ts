import { randomUUID } from 'node:crypto';
import { EsdbEventStore, WrongExpectedVersionError, type NewEvent } from '@snapcat/event-store';
import { EsdbTestServer } from './test-server';

// How the protocol test server answers an append whose event ids it may have seen, as KurrentDB's
// IndexWriter.CheckCommit decides: through the adapter and the real client, over BatchAppend.
const ev = (): NewEvent => ({ id: randomUUID(), type: 'T', data: {} });

describe('duplicate detection (protocol test server)', () => {
  let server: EsdbTestServer;
  let store: EsdbEventStore;
  const open = async (committedEventsCacheBytes?: number) => {
    server = new EsdbTestServer(undefined, committedEventsCacheBytes ? { committedEventsCacheBytes } : {});
    await server.start();
    store = new EsdbEventStore(server.connectionString);
  };
  afterEach(async () => {
    await store.close();
    await server.stop();
  });
  /** A restart; the client's first append after it fails on the old connection, so one goes first. */
  const restart = async () => {
    await server.stop();
    await server.start();
    for (let i = 0; ; i += 1) {
      const warm = await store.append(`warm-${randomUUID()}`, [ev()], 'any').catch((e: unknown) => e);
      if (!(warm instanceof Error) || i > 50) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const ids = async (stream: string) => (await store.readStream(stream)).map((e) => e.id);
  const s = () => `s-${randomUUID()}`;

  describe('expected revision any: the cache of recently committed ids', () => {
    beforeEach(() => open());

    it('all ids seen in the stream: not written again, the answer names the last of them', async () => {
      const stream = s();
      const [a, b] = [ev(), ev()];
      await store.append(stream, [a, b], 'any');
      await store.append(stream, [ev()], 'any');
      const again = await store.append(stream, [a, b], 'any');
      expect(again.nextExpectedRevision).toBe(1n);
      expect(await ids(stream)).toHaveLength(3);
    });

    it('the first id seen, a later one not: WrongExpectedVersion, nothing written', async () => {
      const stream = s();
      const a = ev();
      await store.append(stream, [a], 'any');
      await expect(store.append(stream, [a, ev()], 'any')).rejects.toBeInstanceOf(WrongExpectedVersionError);
      expect(await ids(stream)).toEqual([a.id]);
    });

    it('the first id new: written whole, a later duplicate too', async () => {
      const stream = s();
      const a = ev();
      await store.append(stream, [a], 'any');
      const fresh = ev();
      await store.append(stream, [fresh, a], 'any');
      expect(await ids(stream)).toEqual([a.id, fresh.id, a.id]);
    });

    it('ids seen in another stream are no duplicates here', async () => {
      const a = ev();
      await store.append(s(), [a], 'any');
      const other = s();
      await store.append(other, [a], 'any');
      expect(await ids(other)).toEqual([a.id]);
    });

    it('the cache is memory: after a restart the retry is written again', async () => {
      const stream = s();
      const a = ev();
      await store.append(stream, [a], 'any');
      await restart();
      await store.append(stream, [a], 'any');
      expect(await ids(stream)).toEqual([a.id, a.id]);
    });
  });

  it('any: the cache is bounded (8 MiB of entries by default): an old retry is written again', async () => {
    await open(1000); // an entry of a 40-character stream name counts 132 bytes
    const stream = `s-${randomUUID()}`.padEnd(40, '-');
    const a = ev();
    await store.append(stream, [a], 'any');
    await store.append(stream, [a], 'any');
    expect(await ids(stream)).toHaveLength(1); // still cached
    for (let i = 0; i < 8; i += 1) await store.append(stream, [ev()], 'any');
    await store.append(stream, [a], 'any');
    expect((await ids(stream)).filter((id) => id === a.id)).toHaveLength(2);
  });

  describe('an exact expected revision: the slots after it', () => {
    beforeEach(() => open());

    it('all ids there: not written again, however old (no cache, no restart matters)', async () => {
      const stream = s();
      const [a, b] = [ev(), ev()];
      await store.append(stream, [ev()], 'no_stream');
      await store.append(stream, [a, b], 0n);
      await store.append(stream, [ev()], 2n);
      await restart();
      const again = await store.append(stream, [a, b], 0n);
      expect(again.nextExpectedRevision).toBe(2n);
      await store.append(stream, [a, b].slice(0, 1), 0n); // a prefix of it, too
      expect(await ids(stream)).toHaveLength(4);
    });

    it('no_stream is revision -1: a retry of the stream’s first events is idempotent', async () => {
      const stream = s();
      const [a, b] = [ev(), ev()];
      await store.append(stream, [a, b], 'no_stream');
      await expect(store.append(stream, [a, b], 'no_stream')).resolves.toMatchObject({
        nextExpectedRevision: 1n,
      });
      await expect(store.append(stream, [b], 'no_stream')).rejects.toBeInstanceOf(WrongExpectedVersionError);
    });

    it('the first differs: WrongExpectedVersion; the first equal but a later one not, or past the end: WrongExpectedVersion', async () => {
      const stream = s();
      const [a, b] = [ev(), ev()];
      await store.append(stream, [a, b], 'no_stream');
      await store.append(stream, [ev()], 1n);
      await expect(store.append(stream, [ev(), b], 0n)).rejects.toMatchObject({ actual: 2n });
      await expect(store.append(stream, [a, ev()], 'no_stream')).rejects.toBeInstanceOf(
        WrongExpectedVersionError,
      );
      await expect(store.append(stream, [b, ev()], 0n)).rejects.toMatchObject({ actual: 2n });
      const all = await ids(stream);
      const again = (id: string) => ({ ...ev(), id });
      await expect(store.append(stream, [again(all[1]!), again(all[2]!), ev()], 0n)).rejects.toBeInstanceOf(
        WrongExpectedVersionError,
      );
      expect(await ids(stream)).toEqual(all);
    });

    it('at the current revision the ids are not looked at: the same ids are written again', async () => {
      const stream = s();
      const a = ev();
      await store.append(stream, [a], 'no_stream');
      await store.append(stream, [a], 0n);
      expect(await ids(stream)).toEqual([a.id, a.id]);
    });
  });

  it('stream_exists: like any on a stream that exists; WrongExpectedVersion on one that does not', async () => {
    await open();
    const stream = s();
    const a = ev();
    await expect(store.append(stream, [a], 'stream_exists')).rejects.toBeInstanceOf(
      WrongExpectedVersionError,
    );
    await store.append(stream, [a], 'no_stream');
    await store.append(stream, [a], 'stream_exists');
    expect(await ids(stream)).toEqual([a.id]);
  });
});
