import IORedis from 'ioredis';
import {
  InvalidCursorError,
  ReadModel,
  ReadModelKeys,
  decodeCursor,
  encodeCursor,
  matchesSnapshotFilter,
  newestSnapshotsPage,
  type StoredSnapshot,
} from '../src';
import { deleteKeys, recordRoundTrips } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';

// The read model's queries on the real Redis, over keys written here directly (the projector's job).
const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const prefix = testPrefix('rm-queries');
const keys = new ReadModelKeys(prefix);
afterAll(async () => {
  await deleteKeys(prefix);
  redis.disconnect();
});

const jobId = (n: number) => n.toString(16).padStart(32, '0');
const JOB = jobId(0xabc);

type Snap = Pick<
  StoredSnapshot,
  | 'snapshotId'
  | 'kind'
  | 'status'
  | 'persisted'
  | 'triggerType'
  | 'restorePath'
  | 'checkpointType'
  | 'checkpointedSize'
  | 'claimMode'
  | 'flinkCheckpointId'
  | 'standsFor'
  | 'heldBy'
  | 'savepointType'
  | 'jobVersion'
  | 'flinkVersion'
>;
/** A view as the projector writes it now (with every field a read would otherwise derive for old views). */
const snapshot = (snapshotId: number, over: Partial<Snap> = {}): Snap & { jobId: string } => ({
  jobId: JOB,
  snapshotId,
  kind: 'CHECKPOINT',
  status: 'COMPLETED',
  persisted: false,
  triggerType: 'MANUAL',
  restorePath: null,
  checkpointType: null,
  checkpointedSize: 0,
  claimMode: null,
  flinkCheckpointId: null,
  standsFor: null,
  savepointType: null,
  jobVersion: null,
  flinkVersion: null,
  heldBy: [],
  ...over,
});

async function writeSnapshots(version: number, snapshots: (Snap & { jobId: string })[]) {
  const space = keys.space(version);
  for (const s of snapshots) {
    await redis.set(space.snapshot(s.jobId, s.snapshotId), JSON.stringify(s));
    await redis.zadd(space.snapshots(s.jobId), s.snapshotId, String(s.snapshotId));
  }
}

describe('ReadModelKeys', () => {
  it('names every key under the prefix and the version', () => {
    const k = new ReadModelKeys('p');
    expect([k.current, k.lease, k.lag, k.channel]).toEqual([
      'p:rm:current',
      'p:rm:lease',
      'p:rm:lag',
      'p:snapshotEvents',
    ]);
    const s = k.space(3);
    expect(s).toEqual({
      ns: 'p:rm:v3',
      position: 'p:rm:v3:position',
      origin: 'p:rm:v3:origin',
      complete: 'p:rm:v3:complete',
      applied: 'p:rm:v3:applied',
      deleted: 'p:rm:v3:deleted',
      directories: 'p:rm:v3:dirs',
      directoriesIndexed: 'p:rm:v3:dirs-indexed-at',
      files: 'p:rm:v3:files',
      filesIndexed: 'p:rm:v3:files-indexed-at',
      jobs: 'p:rm:v3:jobs',
      job: expect.any(Function),
      jobTasks: expect.any(Function),
      snapshots: expect.any(Function),
      snapshot: expect.any(Function),
      snapshotKeyPrefix: expect.any(Function),
    });
    expect([
      s.job('j'),
      s.jobTasks('j'),
      s.snapshots('j'),
      s.snapshot('j', 7),
      s.snapshotKeyPrefix('j'),
    ]).toEqual([
      'p:rm:v3:job:j',
      'p:rm:v3:tasks:j',
      'p:rm:v3:snaps:j',
      'p:rm:v3:snap:j:7',
      'p:rm:v3:snap:j:',
    ]);
  });
});

describe('cursors', () => {
  it('round-trip a job id or a snapshot number, in base64url', () => {
    const cursor = encodeCursor('job', JOB);
    expect(cursor).toBe(Buffer.from(`job:${JOB}`).toString('base64url'));
    expect(decodeCursor(cursor, 'job')).toBe(JOB);
    expect(decodeCursor(encodeCursor('snapshot', '42'), 'snapshot')).toBe('42');
    expect(decodeCursor(encodeCursor('snapshot', '123456789012345'), 'snapshot')).toBe('123456789012345');
  });

  it.each([
    ['another kind', encodeCursor('job', '42'), 'snapshot'],
    ['a job cursor as a snapshot one', encodeCursor('job', JOB), 'snapshot'],
    ['not a number', encodeCursor('snapshot', '4x'), 'snapshot'],
    ['an empty number', encodeCursor('snapshot', ''), 'snapshot'],
    ['too many digits', encodeCursor('snapshot', '1234567890123456'), 'snapshot'],
    ['a short job id', encodeCursor('job', JOB.slice(1)), 'job'],
    ['an upper-case job id', encodeCursor('job', JOB.toUpperCase().replace(/0/g, 'A')), 'job'],
    ['a job id with a tail', encodeCursor('job', `${JOB}0`), 'job'],
    ['no kind at all', Buffer.from(JOB).toString('base64url'), 'job'],
    ['a prefix before the kind', encodeCursor('xjob', JOB), 'job'],
    ['another kind of the same length', encodeCursor('jab', JOB), 'job'],
  ])('refuse %s', (_name, cursor, kind) => {
    expect(() => decodeCursor(cursor, kind)).toThrow(new InvalidCursorError(cursor));
    expect(() => decodeCursor(cursor, kind)).toThrow(`invalid cursor ${JSON.stringify(cursor)}`);
    try {
      decodeCursor(cursor, kind);
    } catch (error) {
      expect((error as Error).name).toBe('InvalidCursorError');
    }
  });
});

describe('matchesSnapshotFilter', () => {
  const s = snapshot(1, {
    kind: 'SAVEPOINT',
    status: 'FAILED',
    persisted: true,
    triggerType: 'PERIODIC',
    jobVersion: '1.4.0',
    flinkVersion: '1.18.1',
  }) as StoredSnapshot;
  it.each([
    [{}, true],
    [{ kinds: ['SAVEPOINT'] }, true],
    [{ kinds: ['CHECKPOINT'] }, false],
    [{ statuses: ['FAILED', 'PENDING'] }, true],
    [{ statuses: ['COMPLETED'] }, false],
    [{ persisted: true }, true],
    [{ persisted: false }, false],
    [{ triggerTypes: ['PERIODIC'] }, true],
    [{ triggerTypes: ['MANUAL'] }, false],
    [{ kinds: ['SAVEPOINT'], statuses: ['FAILED'], persisted: true, triggerTypes: ['PERIODIC'] }, true],
    [{ kinds: ['SAVEPOINT'], statuses: ['FAILED'], persisted: true, triggerTypes: ['MANUAL'] }, false],
    [{ kinds: ['SAVEPOINT'], statuses: ['FAILED'], persisted: false, triggerTypes: ['PERIODIC'] }, false],
    [{ kinds: ['SAVEPOINT'], statuses: ['PENDING'], persisted: true, triggerTypes: ['PERIODIC'] }, false],
    [{ jobVersion: '1.4.0' }, true],
    [{ jobVersion: '1.4' }, false],
    [{ jobVersion: '1.4.0 ' }, false],
    [{ flinkVersion: '1.18.1' }, true],
    [{ flinkVersion: '1.19.0' }, false],
    [{ jobVersion: '1.4.0', flinkVersion: '1.18.1', kinds: ['SAVEPOINT'] }, true],
    [{ jobVersion: '1.4.0', flinkVersion: '1.19.0' }, false],
    [{ jobVersion: '1.5.0', flinkVersion: '1.18.1' }, false],
  ] as const)('%j: %s', (filter, expected) => {
    expect(matchesSnapshotFilter(s, filter as never)).toBe(expected);
  });
});

describe('ReadModel (real Redis)', () => {
  it('reads the version `current` names (1 when unset), and looks it up again only after a second', async () => {
    const own = `${prefix}-space`;
    const k = new ReadModelKeys(own);
    try {
      await redis.set(k.space(1).job(JOB), JSON.stringify({ jobId: JOB, status: 'RUNNING' }));
      await redis.set(k.space(2).job(JOB), JSON.stringify({ jobId: JOB, status: 'FINISHED' }));
      const readModel = new ReadModel(redis, own);
      expect(await readModel.job(JOB)).toEqual({
        jobId: JOB,
        status: 'RUNNING',
        jobVersion: null,
        flinkVersion: null,
      });
      await redis.set(k.current, '2');
      expect((await readModel.job(JOB))?.status).toBe('RUNNING'); // cached for a second
      await new Promise((r) => setTimeout(r, 1100));
      expect((await readModel.job(JOB))?.status).toBe('FINISHED');
      expect((await new ReadModel(redis, own).job(JOB))?.status).toBe('FINISHED');
    } finally {
      await deleteKeys(own);
    }
  });

  it('a failed lookup of `current` is not cached', async () => {
    let fail = true;
    const flaky = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === 'get' && fail) {
          return () => {
            fail = false;
            return Promise.reject(new Error('down'));
          };
        }
        const value = Reflect.get(target, property, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const readModel = new ReadModel(flaky as IORedis, prefix);
    await expect(readModel.job(JOB)).rejects.toThrow('down');
    await new Promise((r) => setImmediate(r));
    expect(await readModel.job(JOB)).toBeNull();
  });

  it('answers null, [] and null for what is not there; the job, its tasks and the lag when they are', async () => {
    const readModel = new ReadModel(redis, prefix);
    expect(await readModel.job(jobId(0xfff))).toBeNull();
    expect(await readModel.tasks(jobId(0xfff))).toEqual([]);
    expect(await readModel.snapshot(JOB, 999)).toBeNull();
    expect(await readModel.position()).toBeNull();
    expect(await readModel.lag()).toBeNull();
    await redis.set(keys.space(1).jobTasks(JOB), JSON.stringify(['a', 'b']));
    expect(await readModel.tasks(JOB)).toEqual(['a', 'b']);
    await redis.set(keys.lag, JSON.stringify({ last: 3, p99: 9, at: 1 }));
    expect(await readModel.lag()).toEqual({ last: 3, p99: 9, at: 1 });
    await writeSnapshots(1, [snapshot(5)]);
    expect(await readModel.snapshot(JOB, 5)).toEqual(snapshot(5));
  });

  it('waits for a position: at once when reached, polling until then, false after the timeout', async () => {
    const readModel = new ReadModel(redis, prefix);
    const position = keys.space(1).position;
    await redis.del(position);
    expect(await readModel.waitFor({ commit: 0n, prepare: 0n }, 30)).toBe(false);
    await redis.set(position, '10:10');
    expect(await readModel.position()).toEqual({ commit: 10n, prepare: 10n });
    expect(await readModel.waitFor({ commit: 10n, prepare: 10n }, 0)).toBe(true);
    expect(await readModel.waitFor({ commit: 9n, prepare: 9n }, 0)).toBe(true);
    const started = Date.now();
    expect(await readModel.waitFor({ commit: 11n, prepare: 11n }, 60)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    setTimeout(() => void redis.set(position, '12:12'), 50);
    expect(await readModel.waitFor({ commit: 11n, prepare: 11n }, 5000)).toBe(true);
  });

  it('pages jobs in id order, filtered by status, with a cursor after the last', async () => {
    const own = `${prefix}-jobs`;
    const readModel = new ReadModel(redis, own);
    const ownKeys = new ReadModelKeys(own);
    try {
      const statuses = Array.from({ length: 450 }, (_, i) => (i % 3 === 0 ? 'FAILED' : 'RUNNING'));
      const space = ownKeys.space(1);
      const pipeline = redis.pipeline();
      for (const [i, status] of statuses.entries()) {
        pipeline.set(space.job(jobId(i + 1)), JSON.stringify({ jobId: jobId(i + 1), status }));
        pipeline.zadd(space.jobs, 0, jobId(i + 1));
      }
      pipeline.zadd(space.jobs, 0, jobId(1000)); // listed, but its view is gone
      await pipeline.exec();
      const first = await readModel.jobs({}, 2);
      expect(first.items.map((j) => j.jobId)).toEqual([jobId(1), jobId(2)]);
      expect(first).toMatchObject({ hasNextPage: true, endCursor: encodeCursor('job', jobId(2)) });
      const next = await readModel.jobs({}, 2, first.endCursor!);
      expect(next.items.map((j) => j.jobId)).toEqual([jobId(3), jobId(4)]);
      // Filtered: the scan goes on past 200 ids to fill the page.
      const failed = await readModel.jobs({ status: 'FAILED' }, 100);
      expect(failed.items).toHaveLength(100);
      expect(failed.items.every((j) => j.status === 'FAILED')).toBe(true);
      expect(failed.items[99]!.jobId).toBe(jobId(298));
      expect(failed.hasNextPage).toBe(true);
      const rest = await readModel.jobs({ status: 'FAILED' }, 100, failed.endCursor!);
      expect(rest.items).toHaveLength(50);
      expect(rest).toMatchObject({ hasNextPage: false, endCursor: encodeCursor('job', jobId(448)) });
      const all = await readModel.jobs({}, 1000);
      expect(all.items).toHaveLength(450);
      expect(all.hasNextPage).toBe(false);
      const exact = await readModel.jobs({}, 450);
      expect(exact.hasNextPage).toBe(false);
      const none = await readModel.jobs({ status: 'CANCELED' }, 5);
      expect(none).toEqual({ items: [], hasNextPage: false, endCursor: null });
      await expect(readModel.jobs({}, 2, 'bogus')).rejects.toBeInstanceOf(InvalidCursorError);
    } finally {
      await deleteKeys(own);
    }
  });

  it('pages a job’s snapshots newest first, filtered, with a cursor below the last', async () => {
    const snapshots = Array.from({ length: 260 }, (_, i) =>
      snapshot(i + 1, { kind: (i + 1) % 2 === 0 ? 'SAVEPOINT' : 'CHECKPOINT' }),
    );
    await writeSnapshots(1, snapshots);
    await redis.zadd(keys.space(1).snapshots(JOB), 261, '261'); // ranked, view gone
    const readModel = new ReadModel(redis, prefix);
    const first = await readModel.snapshots(JOB, {}, 3);
    expect(first.items.map((s) => s.snapshotId)).toEqual([260, 259, 258]);
    expect(first).toMatchObject({ hasNextPage: true, endCursor: encodeCursor('snapshot', '258') });
    const next = await readModel.snapshots(JOB, {}, 3, first.endCursor!);
    expect(next.items.map((s) => s.snapshotId)).toEqual([257, 256, 255]);
    const last = await readModel.snapshots(JOB, {}, 3, encodeCursor('snapshot', '3'));
    expect(last).toMatchObject({ hasNextPage: false, endCursor: encodeCursor('snapshot', '1') });
    expect(last.items.map((s) => s.snapshotId)).toEqual([2, 1]);
    // Filtered: scans past 200 ids.
    const savepoints = await readModel.snapshots(JOB, { kinds: ['SAVEPOINT'] }, 120);
    expect(savepoints.items).toHaveLength(120);
    expect(savepoints.items[119]!.snapshotId).toBe(22);
    expect(savepoints.hasNextPage).toBe(true);
    const rest = await readModel.snapshots(JOB, { kinds: ['SAVEPOINT'] }, 120, savepoints.endCursor!);
    expect(rest.items.map((s) => s.snapshotId)).toEqual(Array.from({ length: 10 }, (_, i) => 20 - 2 * i));
    expect(rest.hasNextPage).toBe(false);
    // A filter with every field unset is no filter.
    const unfiltered = await readModel.snapshots(JOB, { kinds: undefined, persisted: undefined }, 2);
    expect(unfiltered.items.map((s) => s.snapshotId)).toEqual([260, 259]);
    expect(await readModel.snapshots(jobId(0xeee), {}, 5)).toEqual({
      items: [],
      hasNextPage: false,
      endCursor: null,
    });
    await expect(readModel.snapshots(JOB, {}, 2, encodeCursor('job', JOB))).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
  });

  it('pages exactly: first items and no next page when that is all there is', async () => {
    const own = `${prefix}-exact`;
    try {
      const ownKeys = new ReadModelKeys(own);
      const space = ownKeys.space(1);
      for (const id of [1, 2]) {
        await redis.set(space.snapshot(JOB, id), JSON.stringify(snapshot(id)));
        await redis.zadd(space.snapshots(JOB), id, String(id));
      }
      const readModel = new ReadModel(redis, own);
      expect(await readModel.snapshots(JOB, {}, 2)).toMatchObject({ hasNextPage: false });
      expect(await readModel.snapshots(JOB, {}, 1)).toMatchObject({ hasNextPage: true });
      expect(await readModel.snapshots(JOB, { statuses: ['COMPLETED'] }, 2)).toMatchObject({
        hasNextPage: false,
      });
    } finally {
      await deleteKeys(own);
    }
  });
});

/** The real Redis client, with the reads a query makes of the listings recorded (command and LIMIT count). */
function recordingReads() {
  const reads: [string, number][] = [];
  const proxy = new Proxy(redis, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const method = (value as (...a: unknown[]) => unknown).bind(target);
      if (property !== 'zrangebylex' && property !== 'zrevrangebyscore') return method;
      return (...args: unknown[]) => {
        reads.push([property, Number(args[args.length - 1])]);
        return method(...args);
      };
    },
  });
  return { redis: proxy as IORedis, reads };
}

describe('ReadModel (real Redis): filters, page ends and reads', () => {
  const own = testPrefix('rm-queries-pages');
  const ownKeys = new ReadModelKeys(own);
  const space = ownKeys.space(1);
  afterEach(async () => {
    jest.restoreAllMocks();
    await deleteKeys(own);
  });

  async function writeJobs(jobs: { jobId: string; status?: string; namespace?: string }[]) {
    const pipeline = redis.pipeline();
    for (const j of jobs) {
      pipeline.set(space.job(j.jobId), JSON.stringify({ status: 'RUNNING', ...j }));
      pipeline.zadd(space.jobs, 0, j.jobId);
    }
    await pipeline.exec();
  }

  it('filters jobs by namespace; a summary without one is in `default`', async () => {
    await writeJobs([
      { jobId: jobId(1), namespace: 'team-a' },
      { jobId: jobId(2) },
      { jobId: jobId(3), namespace: 'default' },
      { jobId: jobId(4), namespace: 'team-b' },
    ]);
    const readModel = new ReadModel(redis, own);
    const ids = async (namespaces: string[]) =>
      (await readModel.jobs({ namespaces }, 10)).items.map((j) => j.jobId);
    expect(await ids(['team-a'])).toEqual([jobId(1)]);
    expect(await ids(['default'])).toEqual([jobId(2), jobId(3)]);
    expect(await ids(['team-a', 'team-b'])).toEqual([jobId(1), jobId(4)]);
    expect(await ids([])).toEqual([]);
    expect((await readModel.jobs({}, 10)).items).toHaveLength(4);
  });

  it('R57, R58 a snapshot view projected before restorePath, checkpointType and checkpointedSize reads them as a replay gives them; a written one as written', async () => {
    const chk = `/data/chk/${JOB}/chk-3`;
    const old = (snapshotId: number, kind: string, status: string) => ({
      jobId: JOB,
      snapshotId,
      kind,
      status,
      persisted: true,
      stateSize: 700,
      externalPath: chk,
      savepointPath: `/data/sp/${JOB}/savepoint-3-0a1b2c3d4e5f`,
      manifestPath: `/data/sp/${JOB}/savepoint-3-0a1b2c3d4e5f/_metadata`,
    });
    const own = `${prefix}-upgrade`;
    const space = new ReadModelKeys(own).space(1);
    const pipeline = redis.pipeline();
    pipeline.set(space.snapshot(JOB, 3), JSON.stringify(old(3, 'CHECKPOINT', 'COMPLETED')));
    pipeline.set(space.snapshot(JOB, 4), JSON.stringify(old(4, 'CHECKPOINT', 'DISCARDING')));
    pipeline.set(space.snapshot(JOB, 5), JSON.stringify(old(5, 'SAVEPOINT', 'COMPLETED')));
    pipeline.set(
      space.snapshot(JOB, 6),
      JSON.stringify({
        ...old(6, 'CHECKPOINT', 'COMPLETED'),
        restorePath: chk,
        checkpointType: 'INCREMENTAL',
        checkpointedSize: 80,
      }),
    );
    pipeline.zadd(space.snapshots(JOB), 3, '3', 4, '4', 5, '5', 6, '6');
    await pipeline.exec();
    const readModel = new ReadModel(redis, own);
    // A completed checkpoint restores from its chk-<id>, not from the savepoint directory of its manifest.
    expect(await readModel.snapshot(JOB, 3)).toMatchObject({
      restorePath: chk,
      checkpointType: null,
      checkpointedSize: 700,
      claimMode: null, // R62: nothing restored from it before restores were recorded
      heldBy: [], // decision 0032: a view written before holds were shown names no holder
    });
    expect((await readModel.snapshot(JOB, 4))?.restorePath).toBeNull();
    // R65: a savepoint projected before stop-with-savepoint was a plain one.
    expect(await readModel.snapshot(JOB, 5)).toMatchObject({
      restorePath: chk,
      checkpointType: 'FULL',
      savepointType: 'SAVEPOINT',
    });
    expect((await readModel.snapshot(JOB, 3))?.savepointType).toBeNull();
    expect(await readModel.snapshot(JOB, 6)).toMatchObject({
      restorePath: chk,
      checkpointType: 'INCREMENTAL',
      checkpointedSize: 80,
    });
    // Pages read them the same way.
    const page = await readModel.snapshots(JOB, {}, 10);
    expect(
      page.items.map((s) => [s.snapshotId, s.restorePath, s.checkpointType, s.checkpointedSize]),
    ).toEqual([
      [6, chk, 'INCREMENTAL', 80],
      [5, chk, 'FULL', 700],
      [4, null, null, 700],
      [3, chk, null, 700],
    ]);
    await deleteKeys(own);
  });

  it('R61 a snapshot view or job summary stored before versions reads them as unknown (null); a written one as written; a version filter matches the written ones only', async () => {
    const old = (snapshotId: number) => ({
      jobId: JOB,
      snapshotId,
      kind: 'SAVEPOINT',
      status: 'COMPLETED',
      persisted: false,
      triggerType: 'MANUAL',
      stateSize: 5,
      externalPath: `/data/sp/${JOB}/savepoint-${snapshotId}`,
    });
    const pipeline = redis.pipeline();
    pipeline.set(space.snapshot(JOB, 1), JSON.stringify(old(1)));
    pipeline.set(
      space.snapshot(JOB, 2),
      JSON.stringify({ ...old(2), jobVersion: '1.4.0', flinkVersion: '1.18.1' }),
    );
    pipeline.set(
      space.snapshot(JOB, 3),
      JSON.stringify({ ...old(3), jobVersion: '1.5.0', flinkVersion: '1.18.1' }),
    );
    pipeline.zadd(space.snapshots(JOB), 1, '1', 2, '2', 3, '3');
    pipeline.set(space.job(jobId(1)), JSON.stringify({ jobId: jobId(1), status: 'RUNNING' }));
    pipeline.set(
      space.job(jobId(2)),
      JSON.stringify({ jobId: jobId(2), status: 'RUNNING', jobVersion: '1.5.0', flinkVersion: '1.18.1' }),
    );
    pipeline.zadd(space.jobs, 0, jobId(1), 0, jobId(2));
    await pipeline.exec();
    const readModel = new ReadModel(redis, own);
    expect(await readModel.snapshot(JOB, 1)).toMatchObject({ jobVersion: null, flinkVersion: null });
    expect(await readModel.snapshot(JOB, 2)).toMatchObject({ jobVersion: '1.4.0', flinkVersion: '1.18.1' });
    const versions = async (filter: { jobVersion?: string; flinkVersion?: string }) =>
      (await readModel.snapshots(JOB, filter, 10)).items.map((s) => [
        s.snapshotId,
        s.jobVersion,
        s.flinkVersion,
      ]);
    expect(await versions({})).toEqual([
      [3, '1.5.0', '1.18.1'],
      [2, '1.4.0', '1.18.1'],
      [1, null, null],
    ]);
    expect(await versions({ jobVersion: '1.4.0' })).toEqual([[2, '1.4.0', '1.18.1']]);
    expect(await versions({ flinkVersion: '1.18.1' })).toEqual([
      [3, '1.5.0', '1.18.1'],
      [2, '1.4.0', '1.18.1'],
    ]);
    expect(await versions({ jobVersion: '1.5.0', flinkVersion: '1.19.0' })).toEqual([]);
    expect(await readModel.job(jobId(1))).toMatchObject({ jobVersion: null, flinkVersion: null });
    expect(await readModel.job(jobId(2))).toMatchObject({ jobVersion: '1.5.0', flinkVersion: '1.18.1' });
    expect((await readModel.jobs({}, 10)).items.map((j) => [j.jobVersion, j.flinkVersion])).toEqual([
      [null, null],
      ['1.5.0', '1.18.1'],
    ]);
  });

  it('R38, R62 a summary written before persistOnFailure reads it as true, before restores with none; a written one as written', async () => {
    const checkpointing = { numRetained: 1, retention: 'NEVER_RETAIN_AFTER_TERMINATION' };
    const pipeline = redis.pipeline();
    const counts = { total: 0, inProgress: 0, completed: 0, failed: 0, discarded: 0 };
    pipeline.set(
      space.job(jobId(1)),
      JSON.stringify({ jobId: jobId(1), status: 'RUNNING', checkpointing, counts }),
    );
    pipeline.set(
      space.job(jobId(2)),
      JSON.stringify({
        jobId: jobId(2),
        status: 'RUNNING',
        checkpointing: { ...checkpointing, persistOnFailure: false },
      }),
    );
    pipeline.zadd(space.jobs, 0, jobId(1), 0, jobId(2));
    await pipeline.exec();
    const readModel = new ReadModel(redis, own);
    expect((await readModel.job(jobId(1)))?.checkpointing).toEqual({
      ...checkpointing,
      persistOnFailure: true,
    });
    expect((await readModel.job(jobId(2)))?.checkpointing.persistOnFailure).toBe(false);
    expect(await readModel.job(jobId(1))).toMatchObject({
      latestRestore: null,
      counts: { restored: 0, compacted: 0 },
    });
    // R67: a summary written before warnings existed has none.
    expect((await readModel.job(jobId(1)))?.warnings).toEqual([]);
    // R67, R68: one written before managed jobs has no source and no restore reported by Flink (null, not
    // absent: GraphQL and REST answer null); one written with them reads them as written.
    expect(await readModel.job(jobId(1))).toMatchObject({ source: null, flinkRestore: null });
    const source = { type: 'flink', cluster: 'prod' };
    const flinkRestore = {
      flinkCheckpointId: 7,
      snapshotId: null,
      isSavepoint: false,
      externalPath: '/cp/7',
      restoredAt: 1,
    };
    await redis.set(
      space.job(jobId(3)),
      JSON.stringify({ jobId: jobId(3), status: 'RUNNING', checkpointing, counts, source, flinkRestore }),
    );
    expect(await readModel.job(jobId(3))).toMatchObject({ source, flinkRestore });
    expect((await readModel.jobs({}, 10)).items.map((j) => j.checkpointing.persistOnFailure)).toEqual([
      true,
      false,
    ]);
  });

  it('a page of jobs on an empty listing, or after the last job, is empty', async () => {
    const readModel = new ReadModel(redis, own);
    const empty = { items: [], hasNextPage: false, endCursor: null };
    expect(await readModel.jobs({}, 5)).toEqual(empty);
    await writeJobs([{ jobId: jobId(1) }]);
    expect(await readModel.jobs({}, 5, encodeCursor('job', jobId(1)))).toEqual(empty);
  });

  it('says there is a next page when more jobs match than fit, within one scan or at its end', async () => {
    await writeJobs(Array.from({ length: 5 }, (_, i) => ({ jobId: jobId(i + 1) })));
    const readModel = new ReadModel(redis, own);
    const two = await readModel.jobs({}, 2);
    expect(two.items.map((j) => j.jobId)).toEqual([jobId(1), jobId(2)]);
    expect(two.hasNextPage).toBe(true);
    await writeJobs(Array.from({ length: 445 }, (_, i) => ({ jobId: jobId(i + 6) })));
    const scan = await readModel.jobs({}, 200); // exactly one scan of 200 ids
    expect(scan.items).toHaveLength(200);
    expect(scan.hasNextPage).toBe(true);
    expect(scan.endCursor).toBe(encodeCursor('job', jobId(200)));
  });

  it('reads only as many ids as a page of jobs needs', async () => {
    await writeJobs(Array.from({ length: 450 }, (_, i) => ({ jobId: jobId(i + 1) })));
    const { redis: recorded, reads } = recordingReads();
    const readModel = new ReadModel(recorded, own);
    expect((await readModel.jobs({}, 2)).hasNextPage).toBe(true);
    expect(reads).toEqual([['zrangebylex', 200]]); // one scan, not the whole listing
    reads.length = 0;
    await redis.del(space.jobs);
    await writeJobs(Array.from({ length: 5 }, (_, i) => ({ jobId: jobId(i + 1) })));
    expect((await readModel.jobs({}, 10)).items).toHaveLength(5);
    expect(reads).toEqual([['zrangebylex', 200]]); // a short scan is the end: no read after it
  });

  it('reads first + 1 snapshot ids unfiltered (a filter whose fields are all unset is none), 200 at a time filtered', async () => {
    for (let id = 1; id <= 10; id += 1) {
      await redis.set(space.snapshot(JOB, id), JSON.stringify(snapshot(id)));
      await redis.zadd(space.snapshots(JOB), id, String(id));
    }
    const { redis: recorded, reads } = recordingReads();
    const readModel = new ReadModel(recorded, own);
    for (const filter of [{}, { kinds: undefined, persisted: undefined }, { kinds: null, statuses: null }]) {
      reads.length = 0;
      const page = await readModel.snapshots(JOB, filter as never, 3);
      expect(page.items.map((s) => s.snapshotId)).toEqual([10, 9, 8]);
      expect(page.hasNextPage).toBe(true);
      expect(reads).toEqual([['zrevrangebyscore', 4]]);
    }
    reads.length = 0;
    const completed = await readModel.snapshots(JOB, { statuses: ['COMPLETED'] }, 3);
    expect(completed.items.map((s) => s.snapshotId)).toEqual([10, 9, 8]);
    expect(reads).toEqual([['zrevrangebyscore', 200]]);
    // A short read is the end: no read after it.
    reads.length = 0;
    expect((await readModel.snapshots(JOB, {}, 20)).items).toHaveLength(10);
    expect(reads).toEqual([['zrevrangebyscore', 21]]);
  });

  it('looks `current` up again only when more than a second has passed', async () => {
    await redis.set(ownKeys.space(1).job(JOB), JSON.stringify({ jobId: JOB, status: 'RUNNING' }));
    await redis.set(ownKeys.space(2).job(JOB), JSON.stringify({ jobId: JOB, status: 'FINISHED' }));
    const now = jest.spyOn(Date, 'now');
    const t0 = Date.parse('2026-12-01T10:00:00.000Z');
    const readModel = new ReadModel(redis, own);
    now.mockReturnValue(t0);
    expect((await readModel.job(JOB))?.status).toBe('RUNNING');
    await redis.set(ownKeys.current, '2');
    now.mockReturnValue(t0 + 1000);
    expect((await readModel.job(JOB))?.status).toBe('RUNNING'); // a second: still cached
    now.mockReturnValue(t0 + 1001);
    expect((await readModel.job(JOB))?.status).toBe('FINISHED');
  });

  it('waitFor looks once more at its deadline: a position reached by then counts', async () => {
    // The position is missing at the first look and there at the second; the clock reaches the deadline
    // (timeout 0: the time of the call) and moves past it only after the second look.
    let looks = 0;
    const appearing = new Proxy(redis, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        const method = (value as (...a: unknown[]) => unknown).bind(target);
        if (property !== 'get') return method;
        return async (key: string) => {
          if (key !== space.position) return method(key);
          looks += 1;
          return looks === 1 ? null : '12:12';
        };
      },
    });
    const t0 = Date.parse('2026-12-01T10:00:00.000Z');
    let clock = 0;
    jest.spyOn(Date, 'now').mockImplementation(() => (looks >= 2 ? t0 + 1 + clock++ : t0));
    const readModel = new ReadModel(appearing as IORedis, own);
    expect(await readModel.waitFor({ commit: 11n, prepare: 11n }, 0)).toBe(true);
    expect(looks).toBe(2);
  });
});

describe('ReadModel.jobWithNewestSnapshots (real Redis): the job and its first page in one round trip', () => {
  const own = testPrefix('rm-queries-first-page');
  const ownKeys = new ReadModelKeys(own);
  afterEach(async () => {
    jest.restoreAllMocks();
    await deleteKeys(own);
  });

  async function writeJob(version: number, summary: object, snapshotIds: number[], over: Partial<Snap> = {}) {
    const space = ownKeys.space(version);
    await redis.set(space.job(JOB), JSON.stringify({ jobId: JOB, status: 'RUNNING', ...summary }));
    for (const id of snapshotIds) {
      await redis.set(space.snapshot(JOB, id), JSON.stringify(snapshot(id, over)));
      await redis.zadd(space.snapshots(JOB), id, String(id));
    }
  }

  /** What the resolvers read apart before: the summary, the deletion time and ReadModel.snapshots' page. */
  async function readApart(readModel: ReadModel, first: number) {
    return {
      summary: await readModel.job(JOB),
      deletedAt: await readModel.deletedAt(JOB),
      page: await readModel.snapshots(JOB, {}, first),
    };
  }

  async function readTogether(readModel: ReadModel, first: number) {
    const job = await readModel.jobWithNewestSnapshots(JOB, first);
    return job && { summary: job.summary, deletedAt: job.deletedAt, page: newestSnapshotsPage(job, first) };
  }

  it('answers as the summary, deletedAt and the first page read apart, for pages of every size; ids without a view are skipped', async () => {
    await writeJob(1, { name: 'orders' }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // Listed ids whose views are missing: the page reads on past them, as ReadModel.snapshots does.
    await redis.del(ownKeys.space(1).snapshot(JOB, 11), ownKeys.space(1).snapshot(JOB, 8));
    await redis.zadd(ownKeys.space(1).snapshots(JOB), 13, '13');
    const readModel = new ReadModel(redis, own);
    for (const first of [1, 2, 3, 4, 9, 10, 11, 20, 500]) {
      expect(await readTogether(readModel, first)).toEqual(await readApart(readModel, first));
    }
    expect((await readTogether(readModel, 3))?.page).toMatchObject({
      items: [{ snapshotId: 12 }, { snapshotId: 10 }, { snapshotId: 9 }],
      hasNextPage: true,
      endCursor: encodeCursor('snapshot', '9'),
    });
  });

  it('serves any smaller first page from what it read, and no larger one', async () => {
    await writeJob(1, {}, [1, 2, 3, 4, 5]);
    const readModel = new ReadModel(redis, own);
    const job = (await readModel.jobWithNewestSnapshots(JOB, 4))!;
    // The fifth view it read only tells that a next page exists.
    expect(job.newest.map((s) => s.snapshotId)).toEqual([5, 4, 3, 2]);
    expect(job.more).toBe(true);
    for (const first of [1, 2, 3, 4]) {
      expect(newestSnapshotsPage(job, first)).toEqual(await readModel.snapshots(JOB, {}, first));
    }
    expect(newestSnapshotsPage(job, 5)).toBeUndefined();
  });

  it('a job without snapshots has an empty page; an unknown job is null', async () => {
    await writeJob(1, {}, []);
    const readModel = new ReadModel(redis, own);
    expect(await readTogether(readModel, 20)).toEqual(await readApart(readModel, 20));
    expect((await readTogether(readModel, 20))?.page).toEqual({
      items: [],
      hasNextPage: false,
      endCursor: null,
    });
    expect(await readModel.jobWithNewestSnapshots(jobId(0xfff), 20)).toBeNull();
  });

  it('a hard-deleted job comes with its deletion time', async () => {
    await writeJob(1, {}, [1, 2]);
    await redis.hset(ownKeys.space(1).deleted, JOB, '2026-12-01T10:00:00.000Z');
    const readModel = new ReadModel(redis, own);
    expect((await readModel.jobWithNewestSnapshots(JOB, 1))?.deletedAt).toBe('2026-12-01T10:00:00.000Z');
    expect(await readTogether(readModel, 1)).toEqual(await readApart(readModel, 1));
  });

  it('reads a summary and views stored in an older shape as the other reads do', async () => {
    const space = ownKeys.space(1);
    await redis.set(space.job(JOB), JSON.stringify({ jobId: JOB, status: 'RUNNING', counts: { total: 1 } }));
    const old = { jobId: JOB, snapshotId: 3, kind: 'SAVEPOINT', status: 'COMPLETED', persisted: true };
    await redis.set(space.snapshot(JOB, 3), JSON.stringify({ ...old, stateSize: 7, externalPath: '/sp/3' }));
    await redis.zadd(space.snapshots(JOB), 3, '3');
    const readModel = new ReadModel(redis, own);
    const job = (await readModel.jobWithNewestSnapshots(JOB, 5))!;
    expect(job.summary).toMatchObject({ latestRestore: null, jobVersion: null, counts: { restored: 0 } });
    expect(job.newest[0]).toMatchObject({ checkpointType: 'FULL', checkpointedSize: 7, standsFor: null });
    expect(await readTogether(readModel, 5)).toEqual(await readApart(readModel, 5));
  });

  it('reads one version whole: the one `current` named when looked up, then the new one after a rebuild switched', async () => {
    await writeJob(1, { name: 'before' }, [1, 2, 3], { kind: 'CHECKPOINT' });
    await writeJob(2, { name: 'after' }, [1, 2], { kind: 'SAVEPOINT' });
    const now = jest.spyOn(Date, 'now');
    const t0 = Date.parse('2026-12-01T10:00:00.000Z');
    now.mockReturnValue(t0);
    const readModel = new ReadModel(redis, own);
    const names = async () => {
      const job = (await readModel.jobWithNewestSnapshots(JOB, 5))!;
      return [job.summary.name, ...new Set(job.newest.map((s) => s.kind)), job.newest.length];
    };
    expect(await names()).toEqual(['before', 'CHECKPOINT', 3]);
    await redis.set(ownKeys.current, '2'); // the rebuild switches over; the old space stays readable a while
    expect(await names()).toEqual(['before', 'CHECKPOINT', 3]);
    expect(await readTogether(readModel, 5)).toEqual(await readApart(readModel, 5));
    now.mockReturnValue(t0 + 1001);
    expect(await names()).toEqual(['after', 'SAVEPOINT', 2]);
    expect(await readTogether(readModel, 5)).toEqual(await readApart(readModel, 5));
  });

  it('takes one round trip (one command) where the reads apart take three', async () => {
    await writeJob(
      1,
      {},
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    const connection = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    try {
      const readModel = new ReadModel(connection, own);
      await readTogether(readModel, 20); // `current` looked up, the script loaded on the connection
      const together = recordRoundTrips(connection);
      await readTogether(readModel, 20);
      expect(together).toEqual({ commands: ['evalsha'], roundTrips: 1 });
      // As the GraphQL resolvers read before: the summary, then the job's fields (its deletion, its page).
      const apart = recordRoundTrips(connection);
      await readModel.job(JOB);
      await Promise.all([readModel.deletedAt(JOB), readModel.snapshots(JOB, {}, 20)]);
      expect(apart).toEqual({ commands: ['get', 'hget', 'zrevrangebyscore', 'mget'], roundTrips: 3 });
    } finally {
      connection.disconnect();
    }
  });
});
