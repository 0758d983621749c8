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
import { join } from 'node:path';
import { LocalSnapshotStorage, LocationRefusedError, ROOT_CLAIM_FILE } from '../src';
import { collect } from '../../../test/support/async';

// Local storage beyond the contract: how locations become paths, what remove leaves, what listFiles names.
let base: string;
let root: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'snapcat-local-paths-'));
  root = join(base, 'root');
  mkdirSync(root, { recursive: true });
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

const file = (path: string, bytes: number) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, Buffer.alloc(bytes));
};

describe('LocalSnapshotStorage: locations', () => {
  it('needs a root', () => {
    expect(() => new LocalSnapshotStorage([])).toThrow('at least one storage root is required');
  });

  it('takes absolute paths and file:// URIs (decoded, resolved), refuses the rest with a reason', () => {
    const storage = new LocalSnapshotStorage([root]);
    expect(storage.toPath('/a/b/../c/')).toBe('/a/c');
    expect(storage.toPath('file:///a/b%20c/d')).toBe('/a/b c/d');
    expect(storage.toPath('file:/a/b')).toBe('/a/b');
    const reasons: [string, string][] = [
      ['relative/path', 'not a file:// URI nor an absolute path'],
      ['s3://bucket/x', 'not a file:// URI nor an absolute path'],
      ['/a/b\0c', 'contains a NUL byte'],
      ['file:///a/%00b', 'contains a NUL byte'],
    ];
    for (const [location, reason] of reasons) {
      let error: unknown;
      try {
        storage.toPath(location);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LocationRefusedError);
      expect((error as Error).message).toBe(`refused ${JSON.stringify(location)}: ${reason}`);
    }
    // A file: URI the URL parser refuses carries the parser's reason.
    expect(() => storage.toPath('file://host/a')).toThrow(LocationRefusedError);
    expect(() => storage.toPath('file://host/a')).toThrow(/^refused "file:\/\/host\/a": .+/);
  });

  it('a location is within when it is a root or below one, for every root; not through a link below one', async () => {
    const other = join(base, 'other');
    mkdirSync(other);
    const storage = new LocalSnapshotStorage([root, other]);
    symlinkSync(join(root, 'real'), join(other, 'link-into-root'));
    mkdirSync(join(root, 'real'));
    expect(await storage.isWithinRoots(root)).toBe(true);
    expect(await storage.isWithinRoots(`${root}/`)).toBe(true);
    expect(await storage.isWithinRoots(join(other, 'x', 'y'))).toBe(true);
    // Inside by its real path, but through a link below a root: what it names is not what it spells.
    expect(await storage.isWithinRoots(join(other, 'link-into-root', 'z'))).toBe(false);
    expect(await storage.isWithinRoots(join(root, 'real', 'z'))).toBe(true);
    expect(await storage.isWithinRoots(base)).toBe(false);
    expect(await storage.isWithinRoots(`${root}x`)).toBe(false);
    expect(await storage.isWithinRoots('relative')).toBe(false);
    // A missing root is created on first use.
    const fresh = join(base, 'fresh', 'deep');
    expect(await new LocalSnapshotStorage([fresh]).isWithinRoots(join(fresh, 'a'))).toBe(true);
    expect(existsSync(fresh)).toBe(true);
  });

  it('a missing location below a symlinked directory resolves through the link', async () => {
    const outside = join(base, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, join(root, 'escape'));
    const storage = new LocalSnapshotStorage([root]);
    expect(await storage.isWithinRoots(join(root, 'escape', 'missing', 'deeper'))).toBe(false);
    expect(await storage.isWithinRoots(join(root, 'missing', 'deeper'))).toBe(true);
  });
});

describe('LocalSnapshotStorage: remove and measure', () => {
  it('removes the directories it emptied, not those still holding kept files', async () => {
    const storage = new LocalSnapshotStorage([root]);
    const chk = join(root, 'job', 'chk-1');
    file(join(chk, 'a', 'b', 'f1'), 4);
    file(join(chk, 'keep', 'f2'), 6);
    file(join(chk, 'f3'), 8);
    mkdirSync(join(chk, 'empty', 'deeper'), { recursive: true });
    const removed = await storage.remove({ locations: [chk], stateHandles: [], keep: [join(chk, 'keep')] });
    expect(removed).toBe(12);
    expect(readdirSync(chk)).toEqual(['keep']);
    expect(readdirSync(join(chk, 'keep'))).toEqual(['f2']);
    await storage.remove({ locations: [join(root, 'job')], stateHandles: [] });
    expect(existsSync(join(root, 'job'))).toBe(false);
    expect(existsSync(root)).toBe(true);
  });

  it('a location that is a file is deleted as one; a handle that is a directory is not a file', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'single'), 5);
    mkdirSync(join(root, 'dir-handle'));
    file(join(root, 'dir-handle', 'inner'), 3);
    const request = {
      locations: [join(root, 'single')],
      stateHandles: [{ path: join(root, 'dir-handle'), sizeBytes: 3 }],
    };
    expect(await storage.measure(request)).toBe(5);
    expect(await storage.remove(request)).toBe(5);
    expect(existsSync(join(root, 'single'))).toBe(false);
    expect(existsSync(join(root, 'dir-handle', 'inner'))).toBe(true);
  });

  it('counts a file named twice (a directory and a handle in it) once', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'chk', 'f'), 9);
    const request = {
      locations: [join(root, 'chk')],
      stateHandles: [{ path: join(root, 'chk', 'f'), sizeBytes: 9 }],
    };
    expect(await storage.measure(request)).toBe(9);
    expect(await storage.remove(request)).toBe(9);
  });

  it('keep: files and directories, by path or file:// URI; a kept location that cannot be local narrows nothing', async () => {
    const storage = new LocalSnapshotStorage([root]);
    for (const name of ['a', 'b', 'c', 'dir/d', 'dirx/e']) file(join(root, 'chk', name), 1);
    const request = {
      locations: [join(root, 'chk')],
      stateHandles: [],
      keep: [join(root, 'chk', 'a'), `file://${join(root, 'chk', 'dir')}`, 's3://bucket/chk/b', 'relative/c'],
    };
    expect(await storage.measure(request)).toBe(3);
    expect(await storage.remove(request)).toBe(3);
    expect(readdirSync(join(root, 'chk')).sort()).toEqual(['a', 'dir']);
  });

  it('keeps a file through a symlinked kept directory', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'chk', 'shared', 'f'), 2);
    file(join(root, 'chk', 'g'), 3);
    symlinkSync(join(root, 'chk', 'shared'), join(root, 'alias'));
    const request = { locations: [join(root, 'chk')], stateHandles: [], keep: [join(root, 'alias')] };
    expect(await storage.remove(request)).toBe(3);
    expect(existsSync(join(root, 'chk', 'shared', 'f'))).toBe(true);
  });

  it('writes the manifest as pretty JSON with a final newline, into a directory it creates', async () => {
    const storage = new LocalSnapshotStorage([root]);
    const path = await storage.writeManifest(join(root, 'sp', 'new'), { snapshotId: 3, files: ['x'] });
    expect(readFileSync(path, 'utf8')).toBe('{\n  "snapshotId": 3,\n  "files": [\n    "x"\n  ]\n}\n');
    await expect(storage.writeManifest(join(base, 'elsewhere'), {})).rejects.toThrow(
      `refused ${JSON.stringify(join(base, 'elsewhere'))}: outside the configured storage roots`,
    );
  });
});

describe('LocalSnapshotStorage: claims (decision 0044)', () => {
  it('two roots that are one directory through a link are refused (a file would have two names); nested roots spelled nested are not', async () => {
    const base = mkdtempSync(join(tmpdir(), 'snapcat-aliased-'));
    try {
      const real = join(base, 'real');
      mkdirSync(join(real, 'y'), { recursive: true });
      symlinkSync(real, join(base, 'lnk'));
      const aliased = new LocalSnapshotStorage([join(base, 'lnk'), real]);
      await expect(aliased.claimRoots('c')).rejects.toMatchObject({
        name: 'StorageConfigurationError',
        message: expect.stringContaining('one directory through a symbolic link'),
      });
      await expect(aliased.whyNotStateFile(join(real, 'f'))).rejects.toThrow(/symbolic link/);
      const nested = new LocalSnapshotStorage([real, join(real, 'y')]);
      expect(await nested.claimRoots('c', { evenIfNotEmpty: true })).toHaveLength(2);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it("a directory by the claim file's name is no claim, said so (not a bare EISDIR)", async () => {
    const root = mkdtempSync(join(tmpdir(), 'snapcat-claims-'));
    try {
      mkdirSync(join(root, ROOT_CLAIM_FILE));
      await expect(
        new LocalSnapshotStorage([root]).claimRoots('c', { evenIfNotEmpty: true }),
      ).rejects.toThrow(`${join(root, ROOT_CLAIM_FILE)} is no snapcat root claim`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a root holding only empty directories (Flink made a job area before writing) is in use: not claimed', async () => {
    const base = mkdtempSync(join(tmpdir(), 'snapcat-claims-'));
    try {
      const root = join(base, 'root');
      mkdirSync(join(root, 'checkpoints', 'j'.repeat(32), 'shared'), { recursive: true });
      const storage = new LocalSnapshotStorage([root]);
      expect(await storage.claimRoots('catalogue-a')).toEqual([{ root, catalogue: null, claimedAt: null }]);
      expect(existsSync(join(root, ROOT_CLAIM_FILE))).toBe(false);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('LocalSnapshotStorage: listFiles', () => {
  it('names files under each root as configured (not through the symlink it resolves to), with sizes and times', async () => {
    const real = join(base, 'real');
    mkdirSync(real);
    const linked = join(base, 'linked');
    symlinkSync(real, linked);
    const other = join(base, 'other');
    const storage = new LocalSnapshotStorage([`${linked}/`, other]);
    file(join(real, 'a', 'b'), 2);
    file(join(other, 'c'), 3);
    file(join(base, 'outside', 'd'), 4);
    symlinkSync(join(base, 'outside'), join(real, 'out')); // not followed, and not listed
    symlinkSync(join(base, 'gone'), join(other, 'dangling'));
    const files = await collect(storage.listFiles());
    expect(files.map((f) => [f.path, f.size]).sort()).toEqual(
      [
        [join(linked, 'a', 'b'), 2],
        [join(other, 'c'), 3],
      ].sort(),
    );
    for (const f of files) expect(f.mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  });

  it('a symbolic link to a place inside the roots fails the listing: what lies there has two names (the orphan sweep would see one)', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'vol1', 'job', 'shared', 's1'), 2);
    symlinkSync(join(root, 'vol1'), join(root, 'chk'));
    await expect(collect(storage.listFiles())).rejects.toThrow(
      `${join(root, 'chk')} is a symbolic link to ${join(root, 'vol1')}, inside the storage roots`,
    );
    expect(existsSync(join(root, 'vol1', 'job', 'shared', 's1'))).toBe(true);
  });
});

describe('LocalSnapshotStorage: file-system errors', () => {
  // The file system as local.ts calls it (its imports are read at each call): one call made to fail.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fsp = require('node:fs/promises') as typeof import('node:fs/promises');
  const readdir = fsp.readdir;
  const failure = (code: string) => Object.assign(new Error(`${code} (injected)`), { code });
  afterEach(() => jest.restoreAllMocks());

  it('a file gone before its unlink was deleted by someone else; any other unlink error fails the removal', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'chk', 'f'), 4);
    const unlink = fsp.unlink;
    jest.spyOn(fsp, 'unlink').mockImplementationOnce(async (path) => {
      await unlink(path); // someone else, just before
      throw failure('ENOENT');
    });
    expect(await storage.remove({ locations: [join(root, 'chk')], stateHandles: [] })).toBe(0);
    file(join(root, 'chk', 'f'), 4);
    jest.spyOn(fsp, 'unlink').mockRejectedValueOnce(failure('EACCES'));
    await expect(storage.remove({ locations: [join(root, 'chk')], stateHandles: [] })).rejects.toThrow(
      'EACCES (injected)',
    );
    expect(existsSync(join(root, 'chk', 'f'))).toBe(true);
  });

  it('a kept location the file system cannot resolve fails the request: it is never taken as not kept', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'chk', 'a'), 1);
    file(join(root, 'not-a-dir'), 1);
    const below = join(root, 'not-a-dir', 'x');
    await expect(
      storage.remove({ locations: [join(root, 'chk')], stateHandles: [], keep: [below] }),
    ).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(existsSync(join(root, 'chk', 'a'))).toBe(true);
    await expect(storage.isWithinRoots(below)).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('a file that arrives in a directory while it is deleted fails the removal (the discard is tried again); kept files do not', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'chk', 'f'), 4);
    file(join(root, 'chk', 'kept'), 1);
    const unlink = fsp.unlink;
    jest.spyOn(fsp, 'unlink').mockImplementationOnce(async (path) => {
      await unlink(path);
      file(join(root, 'chk', 'late'), 2); // a task still uploading
    });
    const request = { locations: [join(root, 'chk')], stateHandles: [], keep: [join(root, 'chk', 'kept')] };
    await expect(storage.remove(request)).rejects.toThrow(
      `1 files are still there after their deletion (the first: ${join(root, 'chk', 'late')}): tried again later`,
    );
    expect(await storage.remove(request)).toBe(2); // the retry
    expect(readdirSync(join(root, 'chk'))).toEqual(['kept']);
  });

  it('removing emptied directories never follows a symlink (to an empty directory outside the roots)', async () => {
    const storage = new LocalSnapshotStorage([root]);
    const outside = join(base, 'outside');
    mkdirSync(join(outside, 'empty'), { recursive: true });
    mkdirSync(join(root, 'chk'));
    symlinkSync(outside, join(root, 'chk', 'link'));
    const request = { locations: [join(root, 'chk')], stateHandles: [], keep: [join(root, 'chk')] };
    expect(await storage.remove(request)).toBe(0);
    expect(existsSync(join(outside, 'empty'))).toBe(true);
    expect(existsSync(join(root, 'chk', 'link'))).toBe(true);
  });

  it('a location that is a kept file: nothing is deleted, and that is no error', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'f'), 3);
    const request = { locations: [join(root, 'f')], stateHandles: [], keep: [join(root, 'f')] };
    expect(await storage.remove(request)).toBe(0);
    expect(existsSync(join(root, 'f'))).toBe(true);
  });

  it('a directory that cannot be read fails the request: it is neither taken for a file nor skipped', async () => {
    const storage = new LocalSnapshotStorage([root]);
    file(join(root, 'chk', 'f'), 2);
    jest.spyOn(fsp, 'readdir').mockRejectedValueOnce(failure('EACCES'));
    await expect(storage.measure({ locations: [join(root, 'chk')], stateHandles: [] })).rejects.toThrow(
      'EACCES (injected)',
    );
    // The second read: emptied directories being removed.
    mkdirSync(join(root, 'empty'));
    let reads = 0;
    jest
      .spyOn(fsp, 'readdir')
      .mockImplementation(((...args: Parameters<typeof readdir>) =>
        (reads += 1) === 2 ? Promise.reject(failure('EACCES')) : readdir(...args)) as typeof readdir);
    await expect(storage.remove({ locations: [join(root, 'empty')], stateHandles: [] })).rejects.toThrow(
      'EACCES (injected)',
    );
  });

  it('an emptied directory someone else removed first is no error; another rmdir error fails the removal', async () => {
    const storage = new LocalSnapshotStorage([root]);
    mkdirSync(join(root, 'a'));
    jest.spyOn(fsp, 'rmdir').mockRejectedValueOnce(failure('ENOENT'));
    expect(await storage.remove({ locations: [join(root, 'a')], stateHandles: [] })).toBe(0);
    jest.spyOn(fsp, 'rmdir').mockRejectedValueOnce(failure('EBUSY'));
    await expect(storage.remove({ locations: [join(root, 'a')], stateHandles: [] })).rejects.toThrow(
      'EBUSY (injected)',
    );
  });
});
