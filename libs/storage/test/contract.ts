import { LocationRefusedError, MANIFEST_FILE_NAME, ROOT_CLAIM_FILE, type SnapshotStorage } from '../src';
import { collect } from '../../../test/support/async';

/** What the contract needs of a storage under test, and of the place it stores in. */
export interface StorageFixture {
  storage: SnapshotStorage;
  /** A configured root, as locations name it (a path, or s3://bucket/prefix). */
  root: string;
  /** A location outside every root, where a file `secret` exists. */
  outside: string;
  put(location: string, bytes: number): Promise<void>;
  exists(location: string): Promise<boolean>;
  read(location: string): Promise<string>;
  /** The same place's storage with other roots (each inside the place). */
  storageWithRoots(roots: string[]): SnapshotStorage;
}

/** The behaviour every snapshot storage must have (the local and the S3 adapters run it alike). */
export function storageContract(
  name: string,
  setUp: () => Promise<StorageFixture>,
  tearDown: () => Promise<void>,
) {
  describe(`snapshot storage contract: ${name}`, () => {
    let f: StorageFixture;
    beforeEach(async () => {
      f = await setUp();
    });
    afterEach(() => tearDown());

    const plant = async (dir: string, files: number, size: number) => {
      for (let i = 0; i < files; i += 1) await f.put(`${dir}/f${i}`, size);
    };

    it('claims an empty root for the first catalogue that asks, by the storage clock; keeps that claim for every later one', async () => {
      const before = Date.now();
      const [first] = await f.storage.claimRoots('catalogue-a');
      expect(first).toEqual({ root: f.root, catalogue: 'catalogue-a', claimedAt: expect.any(String) });
      expect(Date.parse(first!.claimedAt!)).toBeGreaterThanOrEqual(before - 5000);
      expect(await f.storage.claimRoots('catalogue-b', { evenIfNotEmpty: true })).toEqual([first]);
      expect(JSON.parse(await f.read(`${f.root}/${ROOT_CLAIM_FILE}`))).toMatchObject({
        catalogue: 'catalogue-a',
      });
      expect(await f.storage.claimIn(f.root)).toEqual(first);
      expect(await f.storage.claimIn(`${f.root}/elsewhere`)).toBeUndefined();
      const listed = (await collect(f.storage.listFiles())).map((file) => file.path);
      expect(listed).toContain(`${f.root}/${ROOT_CLAIM_FILE}`);
    });

    it("a deletion never deletes a claim file: another catalogue's root inside what is deleted keeps its claim", async () => {
      const imported = `${f.root}/imported`;
      await plant(`${imported}/team-b/data`, 2, 10);
      await f.put(`${imported}/team-b/${ROOT_CLAIM_FILE}`, 5);
      expect(await f.storage.remove({ locations: [imported], stateHandles: [] })).toBe(20);
      expect(await f.exists(`${imported}/team-b/${ROOT_CLAIM_FILE}`)).toBe(true);
      expect(await f.exists(`${imported}/team-b/data/f0`)).toBe(false);
    });

    it('a claim file that is no claim is an error naming it, and is left as it is (whose root it is cannot be told)', async () => {
      await f.put(`${f.root}/${ROOT_CLAIM_FILE}`, 3);
      const noClaim = `is no snapcat root claim ({"catalogue":"<event store id>"}): orphans are deleted nowhere`;
      await expect(f.storage.claimRoots('catalogue-a', { evenIfNotEmpty: true })).rejects.toThrow(noClaim);
      await expect(f.storage.claimIn(f.root)).rejects.toThrow(`${ROOT_CLAIM_FILE} ${noClaim}`);
      expect(await f.read(`${f.root}/${ROOT_CLAIM_FILE}`)).toBe('\u0001\u0001\u0001');
    });

    it('leaves a root that holds files unclaimed, unless the operator claims it', async () => {
      await f.put(`${f.root}/someone/chk-1/_metadata`, 10);
      expect(await f.storage.claimRoots('catalogue-a')).toEqual([
        { root: f.root, catalogue: null, claimedAt: null },
      ]);
      expect(await f.storage.claimIn(f.root)).toBeUndefined();
      const [claimed] = await f.storage.claimRoots('catalogue-a', { evenIfNotEmpty: true });
      expect(claimed).toMatchObject({ root: f.root, catalogue: 'catalogue-a' });
    });

    it('measures and deletes a snapshot directory and its state handles, then answers 0 (idempotent)', async () => {
      const chk = `${f.root}/job/chk-1`;
      await plant(`${chk}/sub`, 3, 100);
      await plant(`${f.root}/shared`, 2, 50);
      const request = { locations: [chk], stateHandles: [{ path: `${f.root}/shared/f0`, sizeBytes: 50 }] };
      expect(await f.storage.measure(request)).toBe(350);
      expect(await f.storage.remove(request)).toBe(350);
      expect(await f.exists(`${chk}/sub/f0`)).toBe(false);
      expect(await f.exists(`${f.root}/shared/f0`)).toBe(false);
      expect(await f.exists(`${f.root}/shared/f1`)).toBe(true);
      expect(await f.storage.remove(request)).toBe(0);
    });

    it('keeps what the request keeps, files and directories inside the deleted one, and counts only what it deletes', async () => {
      const chk = `${f.root}/job/chk-2`;
      await plant(chk, 2, 10);
      await f.put(`${chk}/referenced`, 1000);
      await plant(`${chk}/live`, 2, 7);
      await f.put(`${f.root}/shared/kept`, 500);
      const request = {
        locations: [chk],
        stateHandles: [{ path: `${f.root}/shared/kept`, sizeBytes: 500 }],
        keep: [`${chk}/referenced`, `${chk}/live`, `${f.root}/shared/kept`],
      };
      expect(await f.storage.measure(request)).toBe(20);
      expect(await f.storage.remove(request)).toBe(20);
      expect(await f.exists(`${chk}/f0`)).toBe(false);
      for (const kept of [`${chk}/referenced`, `${chk}/live/f0`, `${chk}/live/f1`, `${f.root}/shared/kept`]) {
        expect(await f.exists(kept)).toBe(true);
      }
    });

    it('says whether a location holds a file (a directory with one at any depth, an empty file), and refuses one outside the roots', async () => {
      const area = `${f.root}/checkpoints/job-a`;
      expect(await f.storage.holdsFiles(area)).toBe(false); // nothing there
      await f.put(`${f.root}/checkpoints/job-ab/chk-1/_metadata`, 10); // a sibling sharing the name's start
      expect(await f.storage.holdsFiles(area)).toBe(false);
      await f.put(`${area}/shared/deep/x`, 0); // empty: `measure` would say 0 bytes
      expect(await f.storage.holdsFiles(area)).toBe(true);
      expect(await f.storage.holdsFiles(`${area}/shared/deep/x`)).toBe(true); // the file itself
      await expect(f.storage.holdsFiles(f.outside)).rejects.toBeInstanceOf(LocationRefusedError);
    });

    it('a handle that is already gone is deleted: no error, no bytes', async () => {
      const request = { locations: [], stateHandles: [{ path: `${f.root}/gone/x`, sizeBytes: 9 }] };
      expect(await f.storage.measure(request)).toBe(0);
      expect(await f.storage.remove(request)).toBe(0);
    });

    it('refuses locations outside the roots (and a root-like prefix) and leaves the file there', async () => {
      for (const request of [
        { locations: [f.outside], stateHandles: [] },
        { locations: [], stateHandles: [{ path: `${f.outside}/secret`, sizeBytes: 1 }] },
        { locations: [`${f.root}-evil`], stateHandles: [] },
      ]) {
        await expect(f.storage.remove(request)).rejects.toBeInstanceOf(LocationRefusedError);
        await expect(f.storage.measure(request)).rejects.toBeInstanceOf(LocationRefusedError);
      }
      expect(await f.read(`${f.outside}/secret`)).toBe('do not delete');
    });

    it('writes a manifest inside the roots as snapcat-manifest.json (never Flink’s _metadata), and refuses one outside', async () => {
      const dir = `${f.root}/sp/savepoint-012345-0123456789ab`;
      const path = await f.storage.writeManifest(dir, { snapshotId: 1 });
      expect(path).toBe(`${dir}/${MANIFEST_FILE_NAME}`);
      expect(MANIFEST_FILE_NAME).toBe('snapcat-manifest.json');
      expect(JSON.parse(await f.read(path))).toEqual({ snapshotId: 1 });
      expect(await f.exists(`${dir}/_metadata`)).toBe(false);
      await expect(f.storage.writeManifest(f.outside, {})).rejects.toBeInstanceOf(LocationRefusedError);
    });

    it('deletes a persisted directory whole: the manifest of today and one written before as _metadata', async () => {
      const old = `${f.root}/sp/${'0'.repeat(32)}/savepoint-1-0a1b2c3d4e5f`;
      await f.put(`${old}/_metadata`, 40); // as the storage worker wrote manifests before issue 16
      const today = `${f.root}/sp/savepoint-000000-0a1b2c3d4e5f`;
      await f.storage.writeManifest(today, { snapshotId: 2 });
      const request = { locations: [old, today], stateHandles: [] };
      expect(await f.storage.remove(request)).toBeGreaterThanOrEqual(40);
      expect(await f.exists(`${old}/_metadata`)).toBe(false);
      expect(await f.exists(`${today}/${MANIFEST_FILE_NAME}`)).toBe(false);
    });

    it('tells whether a location lies within the roots', async () => {
      expect(await f.storage.isWithinRoots(`${f.root}/a/b`)).toBe(true);
      expect(await f.storage.isWithinRoots(f.root)).toBe(true);
      expect(await f.storage.isWithinRoots(f.outside)).toBe(false);
      expect(await f.storage.isWithinRoots(`${f.root}-evil/x`)).toBe(false);
    });

    it('tells, from the spelling alone, whether a location lies within the roots (what each ack handle is checked with)', () => {
      expect(f.storage.spelledWithinRoots(`${f.root}/a/b`)).toBe(true);
      expect(f.storage.spelledWithinRoots(f.outside)).toBe(false);
      expect(f.storage.spelledWithinRoots(`${f.root}-evil/x`)).toBe(false);
      expect(f.storage.spelledWithinRoots(`${f.root}/a/../../escaped`)).toBe(false);
      expect(f.storage.spelledWithinRoots('relative/x')).toBe(false);
    });

    it('lists the files under the roots with their sizes and times, named as snapshots name them', async () => {
      const before = Date.now() - 60_000;
      await f.put(`${f.root}/job/chk-3/a`, 3);
      await f.put(`${f.root}/shared/b`, 4);
      const files = await collect(f.storage.listFiles());
      expect(files.map((x) => [x.path, x.size]).sort()).toEqual([
        [`${f.root}/job/chk-3/a`, 3],
        [`${f.root}/shared/b`, 4],
      ]);
      for (const file of files) expect(file.mtimeMs).toBeGreaterThan(before);
    });

    it('lists a file once when one root lies inside another, or a root is given twice', async () => {
      await f.put(`${f.root}/a/inner/x`, 3);
      await f.put(`${f.root}/b/y`, 4);
      const storage = f.storageWithRoots([`${f.root}/a/inner`, f.root, `${f.root}/b`, f.root]);
      const files = await collect(storage.listFiles());
      expect(files.map((x) => x.path).sort()).toEqual([`${f.root}/a/inner/x`, `${f.root}/b/y`]);
    });

    it('lists the files under one location only, named as it is spelled (what an import checks it holds)', async () => {
      await f.put(`${f.root}/sp/savepoint-1/_metadata`, 3);
      await f.put(`${f.root}/sp/savepoint-1/op/x`, 4);
      await f.put(`${f.root}/sp/savepoint-10/_metadata`, 5); // a neighbour sharing its spelling's start
      const files = await collect(f.storage.listFiles(`${f.root}/sp/savepoint-1/`));
      expect(files.map((x) => [x.path, x.size]).sort()).toEqual([
        [`${f.root}/sp/savepoint-1/_metadata`, 3],
        [`${f.root}/sp/savepoint-1/op/x`, 4],
      ]);
      expect(await collect(f.storage.listFiles(`${f.root}/sp/none`))).toEqual([]);
      await expect(collect(f.storage.listFiles(f.outside))).rejects.toThrow(
        /outside the configured storage roots/,
      );
    });
  });
}
