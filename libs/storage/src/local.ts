import { randomBytes } from 'node:crypto';
import {
  link,
  lstat,
  mkdir,
  readFile,
  readdir,
  realpath,
  rename,
  rmdir,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LocationRefusedError,
  MANIFEST_FILE_NAME,
  StorageConfigurationError,
  ROOT_CLAIM_FILE,
  STORAGE_ROOT_REFUSED,
  claimRoot,
  isRootClaimFile,
  parseRootClaim,
  type RootClaim,
  type DeletionRequest,
  type SnapshotStorage,
  type StateFileRefusal,
  type StoredFile,
} from './port';

/**
 * Snapshot storage on the local filesystem (file:// locations and absolute paths), confined to roots.
 * Every path is resolved to its real path (symlinks followed, `..` collapsed, URI escapes decoded)
 * before it is compared with the real paths of the roots; nothing outside them is read or deleted. A path
 * must also be spelled under a root as configured: one inside only through a link (a root that is a
 * symbolic link, named by its target, or `/private/tmp` for a root `/tmp`) is refused, since the listing
 * names files under the roots as configured and the orphan sweep would not know the other spelling live.
 */
export class LocalSnapshotStorage implements SnapshotStorage {
  private realRoots: Promise<string[]> | undefined;
  /** Directories found inside the roots by their real path, and when (`whyNotStateFile`). */
  private readonly confinedDirectories = new Map<string, number>();
  /** The roots as configured, made absolute once (not through their links: `resolvedRoots`). */
  private readonly configuredRoots: string[];

  constructor(roots: string[]) {
    if (roots.length === 0) throw new Error('at least one storage root is required');
    this.configuredRoots = roots.map((root) => resolve(root));
  }

  toPath(location: string): string {
    let path: string;
    if (location.startsWith('file:')) {
      try {
        path = fileURLToPath(location);
      } catch (error) {
        throw new LocationRefusedError(location, (error as Error).message);
      }
    } else if (isAbsolute(location)) {
      path = location;
    } else {
      throw new LocationRefusedError(location, 'not a file:// URI nor an absolute path');
    }
    if (path.includes('\0')) throw new LocationRefusedError(location, 'contains a NUL byte');
    return resolve(path);
  }

  spelledWithinRoots(location: string): boolean {
    try {
      return isInside(this.toPath(location), this.configuredRoots);
    } catch (error) {
      if (error instanceof LocationRefusedError) return false;
      throw error;
    }
  }
  async isWithinRoots(location: string): Promise<boolean> {
    try {
      await this.confine(location);
      return true;
    } catch (error) {
      if (error instanceof LocationRefusedError) return false;
      throw error;
    }
  }

  /**
   * An acknowledgement names hundreds of files in a few directories: each directory's real path is resolved
   * once a while (`confinedDirectories`), each file is one `lstat` (a real path per file made 1,000
   * acknowledgements of 600 handles time out on this machine).
   */
  async whyNotStateFile(location: string): Promise<StateFileRefusal | undefined> {
    let path: string;
    try {
      path = this.toPath(location);
      const directory = dirname(path);
      const checkedAt = this.confinedDirectories.get(directory);
      if (checkedAt === undefined || Date.now() - checkedAt > DIRECTORY_CHECK_MS) {
        await this.confine(directory);
        if (this.confinedDirectories.size >= DIRECTORIES_CHECKED) this.confinedDirectories.clear();
        this.confinedDirectories.set(directory, Date.now());
      }
    } catch (error) {
      if (!(error instanceof LocationRefusedError)) throw error;
      return { rule: 'within-storage-roots', message: error.message };
    }
    const stat = await lstat(path).catch(() => undefined);
    if (stat?.isSymbolicLink()) return { rule: 'within-storage-roots', message: THROUGH_A_LINK };
    if (!stat?.isDirectory()) return undefined;
    return { rule: 'state-file', message: "is a directory: a state handle names a file, as Flink's do" };
  }

  async measure(request: DeletionRequest): Promise<number> {
    let bytes = 0;
    for (const file of (await this.filesOf(request)).files) bytes += file.size;
    return bytes;
  }

  async remove(request: DeletionRequest): Promise<number> {
    let bytes = 0;
    const { files, directories } = await this.filesOf(request, { deleting: true });
    for (const file of files) {
      try {
        await unlink(file.path);
        bytes += file.size;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    for (const dir of directories) await removeEmptyDirs(dir);
    // The directories walked again, as the S3 adapter lists them again: a file a task uploaded after the walk
    // fails the deletion (its discard is retried), so that the catalog says DISCARDED only when nothing of
    // it is left. What is kept stays, and is no reason to fail.
    const left = (await this.filesOf({ ...request, stateHandles: [] })).files;
    if (left.length > 0) {
      throw new Error(
        `${left.length} files are still there after their deletion (the first: ${left[0]!.path}): tried again later`,
      );
    }
    return bytes;
  }

  async writeManifest(directory: string, manifest: unknown): Promise<string> {
    const dir = await this.confine(directory);
    await mkdir(dir, { recursive: true });
    const target = join(dir, MANIFEST_FILE_NAME);
    const temporary = `${target}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`, { flush: true });
    await rename(temporary, target); // atomic: a reader sees the whole manifest or none
    return target;
  }

  async claimRoots(catalogue: string, { evenIfNotEmpty = false } = {}): Promise<RootClaim[]> {
    // A missing root is made (by `confine`, as Flink makes its directories): a new deployment's first sweep
    // claims it empty.
    return Promise.all(
      this.configuredRoots.map((root) => {
        const file = join(root, ROOT_CLAIM_FILE);
        return claimRoot(
          {
            root,
            where: file,
            read: () => this.claimIn(root),
            holdsOtherThanClaims: () => this.holdsOtherThanClaims(root),
            createIfAbsent: (text) => createIfAbsent(file, text),
          },
          catalogue,
          evenIfNotEmpty,
        );
      }),
    );
  }

  async claimIn(directory: string): Promise<RootClaim | undefined> {
    const file = join(await this.confine(directory), ROOT_CLAIM_FILE);
    let text: string;
    let mtimeMs: number;
    try {
      [text, { mtimeMs }] = await Promise.all([readFile(file, 'utf8'), lstat(file)]);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      // A directory by the claim's name is no claim: said as any other, not as a bare EISDIR.
      if (code === 'EISDIR') return parseRootClaim(directory, '', 0, file);
      throw error;
    }
    return parseRootClaim(directory.replace(/\/+$/, ''), text, mtimeMs, file);
  }

  /**
   * Whether the root holds anything but claims: a file, or a directory even empty (Flink makes a job's
   * `checkpoints/<id>/shared` when it starts, before it writes any file there).
   */
  private async holdsOtherThanClaims(root: string): Promise<boolean> {
    const entries = await readdir(await this.confine(root));
    return entries.some((name) => !isRootClaimFile(name));
  }

  async holdsFiles(location: string): Promise<boolean> {
    const files = filesUnder(await this.confine(location));
    const first = await files.next();
    await files.return(false); // closes the walk
    return first.done !== true;
  }

  /**
   * Files under the roots, named under the roots as configured (as snapshots name them), not their real paths.
   * A symbolic link is not listed (Flink writes none; it is no orphan, and unlinking one would cut every path
   * through it). One to a place inside the roots fails the listing: the files there have two names, and
   * only one of them is listed, so a file live under the other would look unreferenced (the orphan sweep).
   */
  async *listFiles(under?: string): AsyncGenerator<StoredFile> {
    if (under !== undefined) {
      const real = await this.confine(under);
      const spelled = under.replace(/\/+$/, '');
      for await (const file of filesUnder(real)) {
        const path = spelled + file.path.slice(real.length);
        // What lies there through a link is another place's: no snapshot of this one (a discard would not
        // delete it, `remove` refuses it).
        if (file.link) throw new LocationRefusedError(path, THROUGH_A_LINK);
        yield { path, size: file.size, mtimeMs: file.mtimeMs };
      }
      return;
    }
    const real = await this.resolvedRoots();
    for (const [i, root] of real.entries()) {
      // A root inside another (or given twice) is listed with it: its files once, not once per root.
      if (real.some((other, j) => j !== i && isInside(root, [other]) && (root !== other || j < i))) continue;
      const configured = this.configuredRoots[i]!;
      for await (const file of filesUnder(root)) {
        const path = configured + file.path.slice(root.length);
        if (!file.link) {
          yield { path, size: file.size, mtimeMs: file.mtimeMs };
          continue;
        }
        const target = await realpath(file.path).catch(() => undefined); // a dangling link aliases nothing
        if (target && isInside(target, real)) {
          throw new Error(
            `${path} is a symbolic link to ${target}, inside the storage roots: its files have two names, so ` +
              'no listing can tell which are live: replace the link with the directory it points to',
          );
        }
      }
    }
  }

  /** The real path of a location, if it lies inside a root; a missing tail is resolved lexically. */
  private async confine(location: string): Promise<string> {
    const spelled = this.toPath(location);
    const path = await realpathOfExistingPrefix(spelled);
    const roots = await this.resolvedRoots();
    if (!isInside(path, roots)) {
      throw new LocationRefusedError(location, 'outside the configured storage roots');
    }
    const configured = this.configuredRoots;
    if (!isInside(spelled, configured)) {
      throw new LocationRefusedError(
        location,
        `inside the storage roots only through a symbolic link: name it under a root as configured (${configured.join(', ')})`,
      );
    }
    // Below its root a path must be its own real path. Through a link (the place itself, or a directory on
    // the way) it would name, and delete, what the link points to: another job's files, which that job's
    // references name differently, so no keep list here protects them.
    const unaliased = configured.some(
      (root, i) => isInside(spelled, [root]) && roots[i]! + spelled.slice(root.length) === path,
    );
    if (!unaliased) {
      throw new LocationRefusedError(location, THROUGH_A_LINK);
    }
    return path;
  }

  private resolvedRoots(): Promise<string[]> {
    this.realRoots ??= Promise.all(
      this.configuredRoots.map(async (root) => {
        await mkdir(root, { recursive: true });
        return realpath(root);
      }),
    ).then((real) => {
      this.refuseAliasedRoots(real);
      return real;
    });
    return this.realRoots;
  }

  /**
   * Two roots that are one place through a link (`/data/lnk -> /data/real`, both configured): the files
   * there have two names, the listing gives them under both, and the orphan sweep deleted a live checkpoint's
   * files named by the other spelling (a walkthrough). Nested roots spelled nested are fine.
   */
  private refuseAliasedRoots(real: string[]): void {
    real.forEach((a, i) =>
      real.forEach((b, j) => {
        if (i === j || !isInside(b, [a])) return;
        const [spelledA, spelledB] = [this.configuredRoots[i]!, this.configuredRoots[j]!];
        if (spelledB.slice(spelledA.length) === b.slice(a.length) && spelledB.startsWith(spelledA)) return;
        throw new StorageConfigurationError(
          `storage roots ${spelledA} and ${spelledB} are ${a === b ? 'one directory' : 'nested'} through a ` +
            'symbolic link: its files would have two names, and a live one could be taken for an orphan. ' +
            'Configure one of them, spelled as snapshots name their files',
        );
      }),
    );
  }

  /**
   * Every regular file (or link inside a location, deleted as a link) the request covers, confined and deduplicated,
   * and the real paths of its locations that exist (whose emptied directories a removal takes away): each
   * location is resolved once, as a real path costs a system call per component (~50 us each here).
   * `deleting`: a location that is a storage root is refused (STORAGE_ROOT_REFUSED).
   */
  private async filesOf(
    request: DeletionRequest,
    { deleting = false } = {},
  ): Promise<{ files: { path: string; size: number }[]; directories: string[] }> {
    const kept = await this.keptPaths(request.keep ?? []);
    const files = new Map<string, number>();
    const directories: string[] = [];
    const roots = deleting ? await this.resolvedRoots() : [];
    for (const location of request.locations) {
      const dir = await this.confine(location);
      if (roots.includes(dir)) throw new LocationRefusedError(location, STORAGE_ROOT_REFUSED);
      const found: StoredFile[] = [];
      if (await walk(dir, found)) directories.push(dir);
      for (const f of found) files.set(f.path, f.size);
    }
    for (const handle of request.stateHandles) {
      const path = await this.confine(handle.path);
      const stat = await lstat(path).catch(() => undefined);
      if (stat && !stat.isDirectory()) files.set(path, stat.size);
    }
    // A claim file is never deleted: another catalogue's root nested in what is deleted keeps its claim.
    const unkept = [...files].filter(([path]) => !isKept(path, kept) && !isRootClaimFile(path));
    return { files: unkept.map(([path, size]) => ({ path, size })), directories };
  }

  /** Kept locations as real paths; one that cannot be a local path cannot lie in what is deleted. */
  private async keptPaths(keep: string[]): Promise<Set<string>> {
    const paths = new Set<string>();
    for (const location of keep) {
      try {
        paths.add(await realpathOfExistingPrefix(this.toPath(location)));
      } catch (error) {
        if (!(error instanceof LocationRefusedError)) throw error;
      }
    }
    return paths;
  }
}

/**
 * Writes `text` at `file` whole under another name, then links it into place: it appears complete or not at
 * all, and only where nothing is (EEXIST: another process was first, and its file stays).
 */
async function createIfAbsent(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, text, { flag: 'wx', flush: true });
  try {
    await link(temporary, file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/** How long a directory found free of links stays so for `whyNotStateFile`, and how many are remembered. */
const DIRECTORY_CHECK_MS = 10_000;
const DIRECTORIES_CHECKED = 10_000;

/** Whether a real path is one of the real roots or lies below one. */
function isInside(path: string, roots: readonly string[]): boolean {
  return roots.some((root) => path === root || path.startsWith(root + sep));
}

/** Whether the path, or a directory it lies in, is kept: O(depth), whatever the number kept. */
function isKept(path: string, kept: Set<string>): boolean {
  if (kept.size === 0) return false;
  for (let p = path; ; p = dirname(p)) {
    if (kept.has(p)) return true;
    if (dirname(p) === p) return false;
  }
}

async function realpathOfExistingPrefix(path: string): Promise<string> {
  let existing = path;
  const missing: string[] = [];
  for (;;) {
    try {
      const real = await realpath(existing);
      return missing.length ? join(real, ...missing.reverse()) : real;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const parent = dirname(existing);
      if (parent === existing) return path;
      missing.push(relative(parent, existing));
      existing = parent;
    }
  }
}

/** Collects the files under `dir` (`filesUnder`); true when `dir` is a directory. */
async function walk(dir: string, out: StoredFile[]): Promise<boolean> {
  const files = filesUnder(dir);
  for (;;) {
    const next = await files.next();
    if (next.done) return next.value;
    out.push(next.value);
  }
}

/**
 * The files under `dir`, depth first, one directory's entries at a time, not following symlinks (a link is
 * listed as itself; `dir` itself when it is a file); returns whether `dir` is a directory.
 */
const THROUGH_A_LINK =
  'passes through a symbolic link below its storage root: name the place the link points to';

async function* filesUnder(dir: string): AsyncGenerator<StoredFile & { link?: true }, boolean> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code === 'ENOTDIR') {
      const stat = await lstat(dir);
      yield { path: dir, size: stat.size, mtimeMs: stat.mtimeMs };
      return false;
    }
    throw error;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else {
      const stat = await lstat(path).catch(() => undefined);
      if (stat)
        yield {
          path,
          size: stat.size,
          mtimeMs: stat.mtimeMs,
          ...(stat.isSymbolicLink() ? { link: true as const } : {}),
        };
    }
  }
  return true;
}

async function removeEmptyDirs(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw error;
  }
  for (const entry of entries) if (entry.isDirectory()) await removeEmptyDirs(join(dir, entry.name));
  await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT' && error.code !== 'ENOTEMPTY') throw error;
  });
}
