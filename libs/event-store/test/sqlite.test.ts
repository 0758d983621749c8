import { randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, type ExpectedRevision } from '../src';
import { eventStoreContract } from './contract';
import { PAGE_CACHE_KIB } from '../src/sqlite-page-cache';

eventStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-'));
  const file = join(dir, 'events.db');
  // Two connections to one file: the race is decided by SQLite, not by one process's event loop.
  const store = new SqliteEventStore(file, { pollMs: 50 });
  const other = new SqliteEventStore(file, { pollMs: 50 });
  return {
    store,
    other,
    async cleanup() {
      await store.close();
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite store: durability', () => {
  it('opens the log in WAL mode with synchronous=FULL: an append is fsynced before it is acknowledged', async () => {
    // A SIGKILL cannot tell FULL from NORMAL (both survive a process crash); a power loss can. So the
    // settings themselves are asserted, as SQLite reports them for the store's connection.
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-'));
    const store = new SqliteEventStore(join(dir, 'events.db'));
    try {
      expect(store.durability()).toEqual({ journalMode: 'wal', synchronous: 'FULL' });
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite store: page caches', () => {
  it("keeps the reader's and the writer's page caches small, not better-sqlite3's 16 MB each (bench #10)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-'));
    const store = new SqliteEventStore(join(dir, 'events.db'));
    try {
      expect(store.pageCacheKiB()).toEqual({ reader: PAGE_CACHE_KIB.reader, writer: PAGE_CACHE_KIB.writer });
      expect(Math.max(PAGE_CACHE_KIB.reader, PAGE_CACHE_KIB.writer)).toBeLessThan(16_000);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite store: an idle filtered subscription', () => {
  it('polls where the log ends without reading its newest event (an aggregate snapshot can be megabytes)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-'));
    const store = new SqliteEventStore(join(dir, 'events.db'), { pollMs: 10 });
    // The log ends with a large event the subscription's filter skips, as a job's aggregate snapshot is.
    await store.append('job-1', [{ id: randomUUID(), type: 'A', data: {}, metadata: {} }], 'no_stream');
    const big = { blob: 'x'.repeat(1_000_000) };
    await store.append(
      'aggregate-1',
      [{ id: randomUUID(), type: 'Big', data: big, metadata: {} }],
      'no_stream',
    );
    const reads: string[] = [];
    const readAll = store.readAll.bind(store);
    store.readAll = (options) => {
      reads.push(options?.direction === 'backwards' ? 'backwards' : 'forwards');
      return readAll(options);
    };
    const checkpoints: unknown[] = [];
    const subscription = store.subscribeToAll(
      {
        from: { commit: 0n, prepare: 0n },
        filter: { streamNamePrefixes: ['job-'] },
        onCheckpoint: (p) => void checkpoints.push(p),
      },
      async () => undefined,
    );
    try {
      await new Promise((r) => setTimeout(r, 300));
      // It polled (a read every 10 ms) and moved past the skipped event; it never read an event backwards.
      expect(reads.length).toBeGreaterThan(5);
      expect(reads.filter((r) => r === 'backwards')).toEqual([]);
      expect(checkpoints).toEqual([await store.lastPosition()]);
    } finally {
      await subscription.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite store: checkpoints', () => {
  it('a thread copies the write-ahead log into the database file; commits do not wait for it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-'));
    const file = join(dir, 'events.db');
    const store = new SqliteEventStore(file);
    try {
      const before = statSync(file).size;
      let revision: ExpectedRevision = 'no_stream';
      // ~500 KB of events in 10 commits: the log stays under SQLite's own threshold (1,000 pages), so
      // the file grows only if the thread copies them.
      for (let i = 0; i < 10; i += 1) {
        const events = Array.from({ length: 50 }, () => ({
          id: randomUUID(),
          type: 'Padded',
          data: { pad: 'x'.repeat(1000) },
        }));
        revision = (await store.append('snapcat-job-checkpoint', events, revision)).nextExpectedRevision;
      }
      const deadline = Date.now() + 5000;
      while (statSync(file).size < before + 300_000 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(statSync(file).size).toBeGreaterThan(before + 300_000);
      expect(await store.readStream('snapcat-job-checkpoint')).toHaveLength(500);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite store: its file stays the store', () => {
  it.each(['deleted', 'replaced'] as const)(
    'a file %s under the open store is unrecoverable (its writes would go where no other process reads)',
    async (how) => {
      const dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-'));
      const file = join(dir, 'events.db');
      const store = new SqliteEventStore(file);
      const failures: Error[] = [];
      store.onUnrecoverable((error) => failures.push(error));
      try {
        await new Promise((resolve) => setTimeout(resolve, 2500));
        expect(failures).toEqual([]); // untouched: nothing said
        rmSync(file);
        if (how === 'replaced') await new SqliteEventStore(file).close(); // a new store at the same path
        const deadline = Date.now() + 5000;
        while (failures.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        expect(failures.map((e) => e.message)).toEqual([
          `the SQLite store file ${file} was ${how} while this process had it open: its writes would go to a file no other process reads`,
        ]);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    15_000,
  );
});

describe('sqlite store: a corrupt file', () => {
  it('is unrecoverable at the first read that finds it malformed: said once, and the read fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-'));
    const file = join(dir, 'events.db');
    const writing = new SqliteEventStore(file);
    for (let i = 0; i < 20; i += 1) {
      await writing.append(
        `s-${i}`,
        [{ id: randomUUID(), type: 'T', data: { pad: 'x'.repeat(2000) } }],
        'no_stream',
      );
    }
    await writing.close();
    // Pages past the header overwritten (what copying another file over the open one leaves SQLite).
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(statSync(file).size - 8192, 0xa5), 0, undefined, 8192);
    closeSync(fd);
    const store = new SqliteEventStore(file);
    const failures: Error[] = [];
    store.onUnrecoverable((error) => failures.push(error));
    try {
      await expect(store.readAll()).rejects.toMatchObject({
        code: expect.stringMatching(/^SQLITE_(CORRUPT|NOTADB)/),
      });
      await store.readAll().catch(() => undefined); // a second failure is not said again
      expect(failures.map((e) => e.message)).toEqual([
        expect.stringContaining(`the SQLite store file ${file} is corrupt (SQLITE_`),
      ]);
    } finally {
      await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
