import IORedis from 'ioredis';
import { EMPTY_REGISTRY, RegistryEditor } from '@snapcat/domain';
import type { DeletionRequest, SnapshotStorage, StoredFile } from '@snapcat/storage';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import {
  ORPHANS_LISTED,
  noLiveState,
  writeOrphanReport,
  type OrphanReport,
  type OrphanReportDeps,
} from '../src/orphans';
import { UrgentWork } from '../src/urgent-work';
import { ReadModel } from '@snapcat/read-model';

/**
 * A storage of many objects, listed as S3 lists them (a page at a time): it records how far the listing had
 * gone at each deletion, and what was deleted.
 */
class ManyObjects implements Pick<SnapshotStorage, 'listFiles' | 'remove' | 'claimRoots' | 'claimIn'> {
  listed = 0;
  readonly removals: { listedBefore: number; paths: string[] }[] = [];
  readonly claimsRead: string[] = [];
  constructor(
    private readonly count: number,
    /**
     * The root's claim: another catalogue's, nobody's (`by: null`), or this one's since a time (the epoch by
     * default); `nested`: directories inside it another catalogue claimed.
     */
    private readonly claim: { by?: string | null; at?: number; nested?: string[]; unreadable?: boolean } = {},
  ) {}
  async claimRoots(catalogue: string) {
    if (this.claim.unreadable) throw new Error('s3://b/state/.snapcat-root.json is no snapcat root claim');
    if (this.claim.by === null) return [{ root: 's3://b/state', catalogue: null, claimedAt: null }];
    const at = new Date(this.claim.at ?? 0).toISOString();
    return [{ root: 's3://b/state', catalogue: this.claim.by ?? catalogue, claimedAt: at }];
  }
  async claimIn(directory: string) {
    this.claimsRead.push(directory);
    if (!this.claim.nested?.includes(directory)) return undefined;
    return { root: directory, catalogue: 'a-nested-catalogue', claimedAt: new Date(0).toISOString() };
  }
  async *listFiles(): AsyncGenerator<StoredFile> {
    for (let i = 0; i < this.count; i += 1) {
      this.listed += 1;
      yield { path: `s3://b/state/${i % 7 === 0 ? 'live' : 'old'}/f-${i}`, size: 10, mtimeMs: 1_000 };
    }
  }
  async remove(request: DeletionRequest) {
    this.removals.push({ listedBefore: this.listed, paths: request.stateHandles.map((h) => h.path) });
    return 0;
  }
}

describe('the orphan report over a large bucket (streamed)', () => {
  const prefix = testPrefix('orphans');
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  afterAll(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });
  const reportDeps = (
    storage: ManyObjects,
    key: string,
    options: { deleteOrphans: boolean; urgent?: UrgentWork },
  ): OrphanReportDeps => ({
    storage: storage as unknown as SnapshotStorage,
    redis,
    orphanReportKey: key,
    orphanGraceMs: 0,
    log: { info: () => {}, warn: () => {} },
    catalogue: async () => 'this-catalogue',
    fence,
    ...options,
  });
  const fence = new ReadModel(redis, prefix).deletionFence();

  it("deletes no orphan under another catalogue's root, nor one older than this catalogue's claim: reports them", async () => {
    const warnings: string[] = [];
    const foreign = new ManyObjects(100, { by: 'another-catalogue' });
    const key = `${prefix}:report-claims`;
    const deps = {
      ...reportDeps(foreign, key, { deleteOrphans: true }),
      log: { info: () => {}, warn: (m: string) => void warnings.push(m) },
    };
    expect(await writeOrphanReport(deps, noLiveState(), 10_000)).toBe(100);
    expect(foreign.removals).toEqual([]);
    const report = JSON.parse((await redis.get(key))!) as OrphanReport;
    expect(report.claims).toEqual([
      {
        root: 's3://b/state',
        catalogue: 'another-catalogue',
        claimedAt: new Date(0).toISOString(),
        ours: false,
      },
    ]);
    expect(report.notDeleted).toBe(100);
    expect(warnings).toEqual([
      expect.stringContaining('orphans under s3://b/state are reported, never deleted'),
    ]);

    // Claimed by this catalogue after the files were written (1,000 ms): no leftovers of its own jobs.
    const older = new ManyObjects(100, { at: 2_000 });
    expect(
      await writeOrphanReport(reportDeps(older, key, { deleteOrphans: true }), noLiveState(), 10_000),
    ).toBe(100);
    expect(older.removals).toEqual([]);
    expect((JSON.parse((await redis.get(key))!) as OrphanReport).notDeleted).toBe(100);

    // A root that holds files and that nobody claimed: nothing deleted there either.
    const unclaimed = new ManyObjects(100, { by: null });
    expect(
      await writeOrphanReport(reportDeps(unclaimed, key, { deleteOrphans: true }), noLiveState(), 10_000),
    ).toBe(100);
    expect(unclaimed.removals).toEqual([]);
  });

  it('a store in memory (another catalogue at every start) claims no root and deletes no orphan', async () => {
    const storage = new ManyObjects(50);
    const key = `${prefix}:report-memory`;
    const deps = { ...reportDeps(storage, key, { deleteOrphans: true }), catalogue: async () => undefined };
    expect(await writeOrphanReport(deps, noLiveState(), 10_000)).toBe(50);
    expect(storage.removals).toEqual([]);
    expect(JSON.parse((await redis.get(key))!)).toMatchObject({ deleted: false, fileCount: 50 });
  });

  it('claims that cannot be read: nothing deleted, and the report says so and why', async () => {
    const storage = new ManyObjects(50, { unreadable: true });
    const key = `${prefix}:report-unreadable`;
    expect(
      await writeOrphanReport(reportDeps(storage, key, { deleteOrphans: true }), noLiveState(), 10_000),
    ).toBe(50);
    expect(storage.removals).toEqual([]);
    const report = JSON.parse((await redis.get(key))!) as OrphanReport;
    expect(report).toMatchObject({
      deleted: false,
      claimsUnreadable: 's3://b/state/.snapcat-root.json is no snapcat root claim',
    });
    expect(report.claims).toBeUndefined();
  });

  it("deletes nothing in a directory another catalogue claimed inside this one's root (its nested root)", async () => {
    const storage = new ManyObjects(700, { nested: ['s3://b/state/old'] });
    const key = `${prefix}:report-nested`;
    expect(
      await writeOrphanReport(reportDeps(storage, key, { deleteOrphans: true }), noLiveState(), 10_000),
    ).toBe(700);
    const deleted = storage.removals.flatMap((r) => r.paths);
    expect(deleted.length).toBeGreaterThan(0);
    expect(deleted.every((path) => path.startsWith('s3://b/state/live/'))).toBe(true);
    // The report tells each listed file's fate.
    const report = JSON.parse((await redis.get(key))!) as OrphanReport;
    expect(report.files.filter((f) => f.deleted).map((f) => f.path)).toEqual(deleted);
    expect(report.files.filter((f) => f.deleted === false)).toHaveLength(700 - deleted.length);
    // Each directory's claim is read once a sweep, however many files lie in it.
    expect(storage.claimsRead.sort()).toEqual(['s3://b/state/live', 's3://b/state/old']);
  });

  it('lists the first ORPHANS_LISTED, counts them all, and deletes in batches as the listing goes', async () => {
    const count = 25_000;
    const storage = new ManyObjects(count);
    // A live snapshot's directory: its files are no orphans.
    const editor = new RegistryEditor(EMPTY_REGISTRY);
    editor.ownDirectory(1, 's3://b/state/live');
    const registry = editor.seal();
    const key = `${prefix}:report`;
    const deps = reportDeps(storage, key, { deleteOrphans: true });
    const orphans = await writeOrphanReport(deps, { ...noLiveState(), registries: [registry] }, 10_000);
    const expected = Array.from({ length: count }, (_, i) => i).filter((i) => i % 7 !== 0);
    expect(orphans).toBe(expected.length);
    const report = JSON.parse((await redis.get(key))!) as OrphanReport;
    expect(report.fileCount).toBe(expected.length);
    expect(report.totalBytes).toBe(expected.length * 10);
    expect(report.files).toHaveLength(ORPHANS_LISTED);
    expect(report.files[0]!.path).toBe('s3://b/state/old/f-1');
    // Every orphan deleted once, live files never, in batches of at most 1,000 made while listing.
    const deleted = storage.removals.flatMap((r) => r.paths);
    expect(deleted).toEqual(expected.map((i) => `s3://b/state/old/f-${i}`));
    expect(Math.max(...storage.removals.map((r) => r.paths.length))).toBeLessThanOrEqual(1_000);
    expect(storage.removals[0]!.listedBefore).toBeLessThan(count / 10);
  });

  it('checks each batch against the jobs as they are just before deleting it, and deletes nothing while their list is not whole', async () => {
    const storage = new ManyObjects(3_000);
    const key = `${prefix}:report-rechecked`;
    const deps = reportDeps(storage, key, { deleteOrphans: true });
    // A directory imported after the sweep began: live by the time the first batch is deleted.
    const editor = new RegistryEditor(EMPTY_REGISTRY);
    editor.ownDirectory(1, 's3://b/state/old');
    const imported = { ...noLiveState(), registries: [editor.seal()] };
    expect(await writeOrphanReport(deps, noLiveState(), 10_000, async () => imported)).toBe(3_000);
    expect(storage.removals.flatMap((r) => r.paths).filter((p) => p.includes('/old/'))).toEqual([]);
    expect(storage.removals.flatMap((r) => r.paths)).toHaveLength(429); // the 'live' ones, nobody's now

    // Redis lost the list of jobs and the process manager is listing them again: the report, no deletion.
    const unsure = new ManyObjects(3_000);
    let asked = 0;
    const lost = async () => {
      asked += 1;
      return undefined;
    };
    expect(
      await writeOrphanReport(reportDeps(unsure, key, { deleteOrphans: true }), noLiveState(), 10_000, lost),
    ).toBe(3_000);
    expect(unsure.removals).toEqual([]);
    expect(asked).toBe(1);
    expect((JSON.parse((await redis.get(key))!) as OrphanReport).deleted).toBe(false);
  });

  it('marks each batch before checking it (decision 0047): an import or acknowledgement recorded meanwhile is refused, one being recorded keeps its files', async () => {
    const storage = new ManyObjects(21);
    const key = `${prefix}:report-fenced`;
    const other = 'b'.repeat(32);
    // An import of s3://b/state/old being recorded as the sweep comes (its reservation held).
    const importing = await fence.recording(other, ['s3://b/state/old']);
    const metDuringCheck: string[][] = [];
    const check = async () => {
      // An acknowledgement of an orphan, asked while the batch is checked: it meets the sweep's mark.
      const late = await fence.recording(other, ['s3://b/state/live/f-7']);
      metDuringCheck.push([...late.conflicts.keys()]);
      await late.release();
      return noLiveState();
    };
    try {
      await writeOrphanReport(
        reportDeps(storage, key, { deleteOrphans: true }),
        noLiveState(),
        10_000,
        check,
      );
    } finally {
      await importing.release();
    }
    expect(metDuringCheck).toEqual([['s3://b/state/live/f-7']]);
    // The import's files are left; the rest is deleted, and the marks let go.
    expect(storage.removals.flatMap((r) => r.paths)).toEqual([
      's3://b/state/live/f-0',
      's3://b/state/live/f-7',
      's3://b/state/live/f-14',
    ]);
    const after = await fence.recording(other, ['s3://b/state/live/f-7']);
    expect(after.conflicts.size).toBe(0);
    await after.release();
  });

  it('deletes nothing of a batch whose marks were lost while it was checked (Redis lost them): the next sweep looks again', async () => {
    const storage = new ManyObjects(14);
    const warnings: string[] = [];
    const deps = {
      ...reportDeps(storage, `${prefix}:report-fence-lost`, { deleteOrphans: true }),
      log: { info: () => {}, warn: (msg: string) => void warnings.push(msg) },
    };
    const lose = async () => {
      await deleteKeys(`${prefix}:fence`);
      return noLiveState();
    };
    expect(await writeOrphanReport(deps, noLiveState(), 10_000, lose)).toBe(14);
    expect(storage.removals).toEqual([]);
    expect(warnings).toEqual(['orphans not deleted: the deletion fence was lost meanwhile']);
  });

  it('waits to list and report while urgent work (a tick firing savepoints) runs in the process', async () => {
    const storage = new ManyObjects(10);
    const key = `${prefix}:report-after-firing`;
    const urgent = new UrgentWork();
    let fire!: () => void;
    const firing = urgent.run(() => new Promise<void>((resolve) => (fire = resolve)));
    const deps = reportDeps(storage, key, { deleteOrphans: false, urgent });
    const report = writeOrphanReport(deps, { ...noLiveState(), registries: [EMPTY_REGISTRY] }, 10_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(storage.listed).toBe(0);
    expect(await redis.get(key)).toBeNull();
    fire();
    await firing;
    expect(await report).toBe(10);
    expect(storage.listed).toBe(10);
  });
});
