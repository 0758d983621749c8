import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalSnapshotStorage, LocationRefusedError } from '../src';
import { storageContract } from './contract';

describe('local snapshot storage', () => {
  let base: string;
  let root: string;
  let outside: string;
  let storage: LocalSnapshotStorage;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'snapcat-storage-'));
    root = join(base, 'root');
    outside = join(base, 'outside');
    mkdirSync(root, { recursive: true });
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'secret'), 'do not delete');
    storage = new LocalSnapshotStorage([root]);
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  const plant = (dir: string, files: number, size: number) => {
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < files; i += 1) writeFileSync(join(dir, `f${i}`), Buffer.alloc(size));
  };

  const tricks: [
    string,
    () => { locations: string[]; stateHandles: { path: string; sizeBytes: number }[] },
  ][] = [
    ['.. in an absolute path', () => ({ locations: [join(root, '..', 'outside')], stateHandles: [] })],
    [
      '.. in a state handle',
      () => ({ locations: [], stateHandles: [{ path: `${root}/../outside/secret`, sizeBytes: 1 }] }),
    ],
    [
      'a symlinked directory pointing out',
      () => {
        symlinkSync(outside, join(root, 'link'));
        return { locations: [join(root, 'link')], stateHandles: [] };
      },
    ],
    [
      'a symlinked file pointing out',
      () => {
        symlinkSync(join(outside, 'secret'), join(root, 'secret-link'));
        return { locations: [], stateHandles: [{ path: join(root, 'secret-link'), sizeBytes: 1 }] };
      },
    ],
    ['an absolute path elsewhere', () => ({ locations: [outside], stateHandles: [] })],
    ['a percent-encoded ..', () => ({ locations: [`file://${root}/%2e%2e/outside`], stateHandles: [] })],
    ['a percent-encoded slash', () => ({ locations: [`file://${root}/..%2foutside`], stateHandles: [] })],
    ['a relative path', () => ({ locations: ['../outside'], stateHandles: [] })],
    ['a root prefix that is not the root', () => ({ locations: [`${root}-evil`], stateHandles: [] })],
  ];
  it.each(tricks)('refuses %s and leaves the file outside the root in place', async (_name, make) => {
    const request = make();
    await expect(storage.remove(request)).rejects.toBeInstanceOf(LocationRefusedError);
    await expect(storage.measure(request)).rejects.toBeInstanceOf(LocationRefusedError);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('do not delete');
  });

  it("refuses a place named through a link to another job's files inside the root, and deletes nothing", async () => {
    // Team B's live checkpoint; team A's job names a link to it (its own spelling, its own area).
    const theirs = join(root, 'team-b', 'job-b', 'chk-9');
    plant(theirs, 2, 5);
    const ours = join(root, 'team-a', 'job-a');
    mkdirSync(ours, { recursive: true });
    symlinkSync(theirs, join(ours, 'chk-1'));
    symlinkSync(join(theirs, 'f0'), join(ours, 'handle'));
    symlinkSync(join(root, 'team-b', 'job-b'), join(ours, 'through'));
    const requests = [
      { locations: [join(ours, 'chk-1')], stateHandles: [] },
      { locations: [], stateHandles: [{ path: join(ours, 'handle'), sizeBytes: 5 }] },
      { locations: [join(ours, 'through', 'chk-9')], stateHandles: [] },
      { locations: [], stateHandles: [{ path: `file://${ours}/through/chk-9/f1`, sizeBytes: 5 }] },
    ];
    for (const request of requests) {
      await expect(storage.remove(request)).rejects.toThrow(
        /passes through a symbolic link below its storage root/,
      );
      await expect(storage.measure(request)).rejects.toBeInstanceOf(LocationRefusedError);
    }
    expect(readdirSync(theirs).sort()).toEqual(['f0', 'f1']);
    // Its own files, named as they are, are deleted as before.
    plant(join(ours, 'chk-2'), 1, 3);
    expect(await storage.remove({ locations: [join(ours, 'chk-2')], stateHandles: [] })).toBe(3);
  });

  it('refuses to delete a storage root itself: the other jobs below it are not in any keep list', async () => {
    plant(join(root, 'job-a', 'chk-1'), 1, 4);
    plant(join(root, 'job-b', 'chk-7'), 1, 4);
    for (const location of [root, `${root}/`, `file://${root}`]) {
      await expect(storage.remove({ locations: [location], stateHandles: [] })).rejects.toThrow(
        /is a storage root: a snapshot lies below one, never is one/,
      );
    }
    expect(readdirSync(root).sort()).toEqual(['job-a', 'job-b']);
  });

  it('deletes a symlink inside a snapshot directory as a link, never what it points to', async () => {
    const chk = join(root, 'job', 'chk-2');
    plant(chk, 1, 10);
    symlinkSync(join(outside, 'secret'), join(chk, 'link'));
    await storage.remove({ locations: [chk], stateHandles: [] });
    expect(existsSync(chk)).toBe(false);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('do not delete');
  });

  it('a root that is a symbolic link: paths are taken only as spelled under it, the spelling its listing uses', async () => {
    const real = join(base, 'real');
    mkdirSync(join(real, 'chk'), { recursive: true });
    writeFileSync(join(real, 'chk', 'f'), 'live');
    const link = join(base, 'link');
    symlinkSync(real, link);
    const linked = new LocalSnapshotStorage([link]);
    expect(await linked.isWithinRoots(join(link, 'chk', 'f'))).toBe(true);
    // Inside by its real path, but the orphan sweep lists it as link/chk/f: a reference by this name would
    // not keep it.
    expect(await linked.isWithinRoots(join(real, 'chk', 'f'))).toBe(false);
    await expect(
      linked.remove({ locations: [], stateHandles: [{ path: join(real, 'chk', 'f'), sizeBytes: 4 }] }),
    ).rejects.toThrow(/only through a symbolic link: name it under a root as configured/);
    expect(readFileSync(join(real, 'chk', 'f'), 'utf8')).toBe('live');
    const listed: string[] = [];
    for await (const file of linked.listFiles()) listed.push(file.path);
    expect(listed).toEqual([join(link, 'chk', 'f')]);
  });

  it('writes the manifest atomically (no temporary file left) and names it by path', async () => {
    const path = await storage.writeManifest(pathToFileURL(join(root, 'sp', 'x')).href, { snapshotId: 2 });
    expect(path).toBe(join(root, 'sp', 'x', 'snapcat-manifest.json'));
    expect(readdirSync(join(root, 'sp', 'x'))).toEqual(['snapcat-manifest.json']);
  });

  it('a file:// URI and an s3:// location: the first is inside, the second is not local', async () => {
    expect(await storage.isWithinRoots(pathToFileURL(join(root, 'x')).href)).toBe(true);
    expect(await storage.isWithinRoots('s3://bucket/path')).toBe(false);
  });
});

// The contract every storage passes (the S3 adapter runs it too: s3.test.ts).
let contractBase = '';
storageContract(
  'local files',
  async () => {
    contractBase = mkdtempSync(join(tmpdir(), 'snapcat-contract-'));
    const root = join(contractBase, 'root');
    const outside = join(contractBase, 'outside');
    mkdirSync(root, { recursive: true });
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'secret'), 'do not delete');
    return {
      storage: new LocalSnapshotStorage([root]),
      storageWithRoots: (roots) => new LocalSnapshotStorage(roots),
      root,
      outside,
      put: async (location, bytes) => {
        mkdirSync(dirname(location), { recursive: true });
        writeFileSync(location, Buffer.alloc(bytes, 1));
      },
      exists: async (location) => existsSync(location),
      read: async (location) => readFileSync(location, 'utf8'),
    };
  },
  async () => rmSync(contractBase, { recursive: true, force: true }),
);
