import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, StoreUnavailableError, WrongExpectedVersionError, type NewEvent } from '../src';
import { eventually, sleep } from '../../../test/support/wait';

/** The writer thread (sqlite-writer.ts): commits off the event loop, grouped, and loud when it dies. */
describe('sqlite store: the writer thread', () => {
  let dir: string;
  let store: SqliteEventStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-writer-'));
    store = new SqliteEventStore(join(dir, 'events.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const events = (n: number, padding = 0): NewEvent[] =>
    Array.from({ length: n }, () => ({ id: randomUUID(), type: 'E', data: { pad: 'x'.repeat(padding) } }));
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('the event loop goes on while a large commit is written: timers and reads run before it resolves', async () => {
    await store.append('warm', events(1), 'no_stream'); // the thread is up
    const order: string[] = [];
    const large = store.append('large', events(20_000, 200), 'no_stream').then(() => order.push('append'));
    let turns = 0;
    const counting = (async () => {
      while (!order.includes('append')) {
        await turn();
        turns += 1;
      }
    })();
    await turn();
    await turn(); // the batch is with the thread now
    order.push(`read ${(await store.readStream('warm')).length}`);
    await large;
    await counting;
    expect(order).toEqual(['read 1', 'append']);
    expect(turns).toBeGreaterThan(2);
    // Read-your-writes: resolved means visible to this thread's connection.
    expect(await store.readStream('large', { direction: 'backwards', maxCount: 1 })).toMatchObject([
      { revision: 19_999n },
    ]);
  });

  it('appends from many callers share commits; those arriving during a commit form the next one', async () => {
    await store.append('warm', events(1), 'no_stream');
    const { stats } = store.writerThread();
    const before = { ...stats };
    const concurrent = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.append(`s-${i}`, events(1), 'no_stream')),
    );
    expect(concurrent).toHaveLength(200);
    expect(stats.operations - before.operations).toBe(200);
    expect(stats.commits - before.commits).toBeLessThan(200);

    const mark = { ...stats };
    const large = store.append('large', events(5_000, 200), 'no_stream');
    await turn(); // sent: the thread commits it
    const during = Array.from({ length: 50 }, (_, i) => store.append(`d-${i}`, events(1), 'no_stream'));
    await Promise.all([large, ...during]);
    expect(stats.commits - mark.commits).toBe(2);
    expect(stats.operations - mark.operations).toBe(51);
  });

  it('errors come back as the classes the store throws, and fail only their own append', async () => {
    const shared = events(1);
    await store.append('a', shared, 'no_stream');
    const results = await Promise.allSettled([
      store.append('a', events(1), 'no_stream'),
      store.append('b', shared, 'no_stream'), // an event id of another stream
      store.append('c', events(1), 'no_stream'),
    ]);
    expect(results[0]).toMatchObject({ status: 'rejected', reason: expect.any(WrongExpectedVersionError) });
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ streamId: 'a', actual: 0n });
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(Database.SqliteError);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE' });
    expect(results[2]).toMatchObject({ status: 'fulfilled' });
    expect(await store.readStream('b')).toEqual([]);
  });

  it('a killed writer thread fails the appends in flight and every later call loudly; nothing half-written', async () => {
    const unrecoverable: Error[] = [];
    store.onUnrecoverable((error) => unrecoverable.push(error));
    await store.append('warm', events(1), 'no_stream');
    const inFlight = store.append('large', events(20_000, 200), 'no_stream');
    const queued = (async () => {
      await turn();
      await turn();
      const next = store.append('next', events(1), 'no_stream');
      await store.writerThread().terminate();
      return next;
    })();
    await expect(inFlight).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(queued).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.append('later', events(1), 'no_stream')).rejects.toThrow(/writer thread stopped/);
    await expect(store.readAll({ maxCount: 1 })).rejects.toBeInstanceOf(StoreUnavailableError);
    // Said once, with the error every call gets: the process stops on it (stopOnSignalOrStoreFailure).
    expect(unrecoverable).toHaveLength(1);
    expect(unrecoverable[0]).toBeInstanceOf(StoreUnavailableError);
    expect(unrecoverable[0]!.message).toMatch(/writer thread stopped/);

    const reopened = new SqliteEventStore(join(dir, 'events.db'));
    try {
      expect([0, 20_000]).toContain((await reopened.readStream('large')).length); // one transaction
      expect(await reopened.readStream('warm')).toHaveLength(1);
    } finally {
      await reopened.close();
    }
  });

  it('close writes what was appended before it, then stops the thread', async () => {
    const appended = Promise.all(
      Array.from({ length: 20 }, (_, i) => store.append(`c-${i}`, events(1), 'any')),
    );
    await store.close();
    await expect(appended).resolves.toHaveLength(20);
    await expect(store.append('after', events(1), 'any')).rejects.toBeInstanceOf(StoreUnavailableError);
    const reopened = new SqliteEventStore(join(dir, 'events.db'));
    try {
      expect(await reopened.readAll()).toHaveLength(20);
    } finally {
      await reopened.close();
    }
  });

  it('close resolves in a process that has nothing else to wait for (a script, the CLI): what follows it runs', () => {
    // The threads are unref'd so that an idle store never keeps a process alive; while closing, they must be
    // what keeps it alive, or the process exits (0) in the middle of close and skips whatever comes after.
    const script = [
      "const { SqliteEventStore } = require('./libs/event-store/src');",
      `const store = new SqliteEventStore(${JSON.stringify(join(dir, 'script.db'))});`,
      'store',
      "  .append('s', [{ id: 'e1', type: 'E', data: {} }], 'no_stream')",
      '  .then(() => store.close())',
      "  .then(() => { process.stdout.write('closed'); process.exitCode = 3; });",
    ].join('\n');
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: join(__dirname, '..', '..', '..'),
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('closed');
    expect(run.status).toBe(3);
  }, 30_000);

  describe('at rest', () => {
    const IDLE_MS = 150;
    let idle: SqliteEventStore;
    beforeEach(() => {
      idle = new SqliteEventStore(join(dir, 'idle.db'), { threadsIdleMs: IDLE_MS });
    });
    afterEach(() => idle.close());
    // The process's own threads, as the kernel counts them: a worker thread is one.
    const threads = () => readdirSync('/proc/self/task').length;

    it('the writer and checkpointer threads stop once idle, and the next write starts them again', async () => {
      const unrecoverable: Error[] = [];
      idle.onUnrecoverable((error) => unrecoverable.push(error));
      const before = threads();
      await idle.append('s', events(1), 'no_stream');
      const first = idle.writerThread();
      expect(threads()).toBe(before + 2);
      await eventually(() => threads() === before, 5_000, 'the threads to stop');

      await idle.append('s', events(1), 0n); // a new writer: durable and visible as before
      expect(idle.writerThread()).not.toBe(first);
      expect(threads()).toBe(before + 2);
      expect(await idle.readStream('s')).toHaveLength(2);
      await eventually(() => threads() === before, 5_000, 'the threads to stop');
      await idle.close();
      expect(unrecoverable).toEqual([]); // stopping at rest, or closing, is no failure
    });

    it('writes keep them running, and writes racing their stop are all committed, in order', async () => {
      const before = threads();
      let revision = -1;
      const busyUntil = Date.now() + 3 * IDLE_MS;
      while (Date.now() < busyUntil) {
        await idle.append('busy', events(1), revision < 0 ? 'no_stream' : BigInt(revision));
        revision += 1;
        await sleep(10);
      }
      expect(threads()).toBe(before + 2); // never idle for a whole period
      // Writes at every offset around the moment they stop: each lands on the old thread or a new one.
      for (let i = 0; i < 12; i += 1) {
        await sleep(IDLE_MS + (i % 4) * 40);
        await idle.append('busy', events(1), BigInt(revision));
        revision += 1;
      }
      const stream = await idle.readStream('busy');
      expect(stream.map((e) => e.revision)).toEqual(stream.map((_, i) => BigInt(i)));
      expect(stream).toHaveLength(revision + 1);
    });

    it('a failed writer is kept, however long idle: every call goes on failing loudly', async () => {
      await idle.append('s', events(1), 'no_stream');
      await idle.writerThread().terminate();
      await sleep(3 * IDLE_MS);
      await expect(idle.append('s', events(1), 0n)).rejects.toThrow(/writer thread stopped/);
      await expect(idle.readStream('s')).rejects.toBeInstanceOf(StoreUnavailableError);
    });
  });
});
