import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { SqliteEventStore, StoreFullError } from '@snapcat/event-store';
import { appendRoute, appendUntilRefused, event, type FileSizeLimitRun } from './support/full-disk';

/** A tmpfs of `sizeMb` the test mounts, with the store on it; undone after the describe. */
function onSmallDisk(sizeMb: number): { dir: string; store: () => SqliteEventStore } {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-full-'));
  let store: SqliteEventStore;
  beforeAll(() => {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: 'pipe' });
    } catch (error) {
      throw new Error(
        `this test mounts a small tmpfs to fill it, and could not (run as root): ${String(error)}`,
      );
    }
    store = new SqliteEventStore(join(dir, 'events.db'));
  });
  afterAll(async () => {
    await store.close();
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, store: () => store };
}

/**
 * The embedded store on a disk that fills up: a real one, a small tmpfs the test mounts (this machine's CI
 * runs as root; without mount rights the test fails saying so, never skips).
 */
describe('the embedded store on a full disk', () => {
  const disk = onSmallDisk(4);
  const dir = disk.dir;
  let store: SqliteEventStore;
  beforeAll(() => (store = disk.store()));

  it('an append is refused as the store being full, naming the file; nothing of its group is written; once space is freed the next one succeeds', async () => {
    writeFileSync(join(dir, 'filler'), Buffer.alloc(2_000_000));
    const { appended, refusals } = await appendUntilRefused(store);
    expect(refusals.length).toBeGreaterThan(0);
    const reason = (refusals[0] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(StoreFullError);
    expect(reason.message).toContain(join(dir, 'events.db'));
    // Every append acknowledged is there, and nothing else.
    expect(await store.readAll({ maxCount: 100_000 })).toHaveLength(appended);

    // Through the API's problem responder: a 503 naming the cause, retried in 30 s, not a 500. (An event of
    // 300 KB: a small one may still fit in the space a failed group left.)
    const { app, logged } = appendRoute(store);
    const full = await request(app).post('/append');
    expect(full.status).toBe(503);
    expect(full.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(full.headers['retry-after']).toBe('30');
    expect(full.body).toMatchObject({ type: 'urn:snapcat:problem:store-full', status: 503 });
    expect(full.body.detail).toMatch(/is full: nothing was written/);
    expect((await request(app).post('/append')).status).toBe(503);
    expect(logged).toEqual(['the event store is full: appends are refused']); // once, not per request

    rmSync(join(dir, 'filler'));
    expect((await request(app).post('/append')).status).toBe(201);
    expect(await store.readAll({ maxCount: 100_000 })).toHaveLength(appended + 1);
  }, 60_000);
});

describe('the embedded store on a full disk, an append larger than its page cache', () => {
  const disk = onSmallDisk(8);

  it('fills the disk before its group commits: the group fails whole, each append refused as store-full, none stored (the ones after it were committed on their own)', async () => {
    const store = disk.store();
    writeFileSync(join(disk.dir, 'filler'), Buffer.alloc(7_400_000));
    // One group: a small append, one of 5 MB (past the writer's 4 MiB page cache, so it spills before the
    // commit), a small one.
    const results = await Promise.allSettled([
      store.append('job-a', event(), 'any'),
      store.append('job-b', event(5_000_000), 'any'),
      store.append('job-c', event(), 'any'),
    ]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).name : 'stored'))).toEqual([
      'StoreFullError',
      'StoreFullError',
      'StoreFullError',
    ]);
    expect(await store.readAll({ maxCount: 100 })).toEqual([]);
    rmSync(join(disk.dir, 'filler'));
    await store.append('job-c', event(), 'any');
    expect((await store.readAll({ maxCount: 100 })).map((e) => e.streamId)).toEqual(['job-c']);
  }, 60_000);
});

/**
 * A write past a disk quota (EDQUOT) or a file-size limit (EFBIG): SQLite says SQLITE_IOERR_WRITE for both (only
 * ENOSPC is SQLITE_FULL). Staged with a real file-size limit (RLIMIT_FSIZE, set by `prlimit`) on a child
 * process of its own: in this one it would hold for jest's own files too, and signal-exit, loaded by an
 * earlier test of the same worker, turns the SIGXFSZ node ignores into the worker's death (a CI run).
 */
describe('the embedded store past a disk quota or a file-size limit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-limit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is refused as store-full naming SQLite’s code (no 500), all of a group or none of it is stored, and the next append succeeds once the limit is lifted', () => {
    const file = join(dir, 'events.db');
    const output = execFileSync(
      process.execPath,
      ['--import', 'tsx', 'test/support/file-size-limit-child.ts', file, String(2 * 1024 * 1024)],
      { encoding: 'utf8', timeout: 60_000 },
    );
    const run = JSON.parse(output) as FileSizeLimitRun;
    expect(run.refusal).toMatchObject({ name: 'StoreFullError', sqliteCode: 'SQLITE_IOERR_WRITE' });
    expect(run.refusal.message).toContain(file);
    expect(run.refusal.message).toMatch(
      /refused a write \(SQLITE_IOERR_WRITE: a disk quota or a file-size limit/,
    );
    expect(run.appended).toBeGreaterThan(0);
    expect(run.stored).toBe(run.appended); // every append acknowledged is there, and nothing else
    expect(run.api).toMatchObject({
      status: 503,
      retryAfter: '30',
      body: { type: 'urn:snapcat:problem:store-full', status: 503 },
      logged: ["the event store's disk refuses writes (SQLITE_IOERR_WRITE): appends are refused"],
    });
    expect(run.afterLift).toEqual({ status: 201, stored: run.appended + 1 });
  }, 60_000);
});
