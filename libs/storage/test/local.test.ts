import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalSnapshotStorage, LocationRefusedError } from '../src';

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

  it('measures and deletes a snapshot directory and its state handles, then answers 0 (idempotent)', async () => {
    const chk = join(root, 'job', 'chk-1');
    plant(join(chk, 'sub'), 3, 100);
    plant(join(root, 'shared'), 2, 50);
    const request = {
      locations: [pathToFileURL(chk).href],
      stateHandles: [{ path: join(root, 'shared', 'f0'), sizeBytes: 50 }],
    };
    expect(await storage.measure(request)).toBe(350);
    expect(await storage.remove(request)).toBe(350);
    expect(existsSync(chk)).toBe(false);
    expect(existsSync(join(root, 'shared', 'f0'))).toBe(false);
    expect(existsSync(join(root, 'shared', 'f1'))).toBe(true);
    expect(await storage.remove(request)).toBe(0);
  });

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

  it('deletes a symlink inside a snapshot directory as a link, never what it points to', async () => {
    const chk = join(root, 'job', 'chk-2');
    plant(chk, 1, 10);
    symlinkSync(join(outside, 'secret'), join(chk, 'link'));
    await storage.remove({ locations: [chk], stateHandles: [] });
    expect(existsSync(chk)).toBe(false);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('do not delete');
  });

  it('writes a manifest atomically inside the roots, and refuses one outside', async () => {
    const path = await storage.writeManifest(join(root, 'sp', 'savepoint-1-abc'), { snapshotId: 1 });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ snapshotId: 1 });
    await expect(storage.writeManifest(outside, {})).rejects.toBeInstanceOf(LocationRefusedError);
  });

  it('tells whether a location lies within the roots', async () => {
    expect(await storage.isWithinRoots(join(root, 'a', 'b'))).toBe(true);
    expect(await storage.isWithinRoots(pathToFileURL(join(root, 'x')).href)).toBe(true);
    expect(await storage.isWithinRoots(outside)).toBe(false);
    expect(await storage.isWithinRoots('s3://bucket/path')).toBe(false);
  });
});
