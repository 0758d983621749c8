import type { StateHandle } from '@snapcat/domain';

/** What to delete for one snapshot: whole directories, and files that may lie elsewhere (shared state). */
export interface DeletionRequest {
  locations: string[];
  stateHandles: StateHandle[];
  /** Locations (files or directories) never deleted, even inside `locations`: what live snapshots still need. */
  keep?: string[];
}

/**
 * The name of snapcat's JSON manifest of a persisted checkpoint (docs/domain.md R39). Not `_metadata`: that
 * is Flink's own binary metadata file (`AbstractFsCheckpointStorageAccess.METADATA_FILE_NAME`, written by
 * `Checkpoints.storeCheckpointMetadata` after a magic number), which `flink run -s <directory>` reads
 * (`AbstractFsCheckpointStorageAccess.resolveCheckpointPointer`). Manifests written before this name was
 * chosen are `_metadata` files in the persisted directory; a discard deletes the directory whole, with them.
 */
export const MANIFEST_FILE_NAME = 'snapcat-manifest.json';

/**
 * The file at the top of each storage root that names the catalogue (its event store's id) allowed to delete
 * orphans there, and since when (decision 0044). A fresh store beside another's roots (a `./data` deleted, a
 * store path mistyped, two deployments on one bucket) sees every file of the other's live snapshots as an
 * orphan: a walkthrough's first sweep deleted all of them.
 */
export const ROOT_CLAIM_FILE = '.snapcat-root.json';

/** A storage root's claim (`claimRoots`), or a directory's (`claimIn`). */
export interface RootClaim {
  /** The root (or directory) as configured (as the listing names the files under it). */
  root: string;
  /** The event store id of the catalogue that claimed it; null: nobody did, and it holds files. */
  catalogue: string | null;
  /**
   * When it was claimed, by the storage's clock (the claim file's modification time, as the files' own times
   * are): files older than that are no leftovers of that catalogue's. Null when unclaimed.
   */
  claimedAt: string | null;
}

/** A claim file's text and time as a claim of `root`; an error naming `where` when it is not one. */
export function parseRootClaim(root: string, text: string, mtimeMs: number, where: string): RootClaim {
  let catalogue: unknown;
  try {
    catalogue = (JSON.parse(text) as { catalogue?: unknown } | null)?.catalogue;
  } catch {
    catalogue = undefined;
  }
  if (typeof catalogue !== 'string' || catalogue === '') {
    throw new Error(
      `${where} is no snapcat root claim ({"catalogue":"<event store id>"}): orphans are deleted nowhere`,
    );
  }
  return { root, catalogue, claimedAt: new Date(mtimeMs).toISOString() };
}

/** A claim file's text, for a claim made now (the time in it is for people: the file's own time counts). */
const rootClaimText = (catalogue: string): string =>
  `${JSON.stringify({ catalogue, claimedAt: new Date().toISOString() })}\n`;

/** How an adapter reaches one root's claim, for `claimRoot`. */
export interface RootClaimPlace {
  /** The root as configured, and where its claim file lies (for messages). */
  root: string;
  where: string;
  read(): Promise<RootClaim | undefined>;
  holdsOtherThanClaims(): Promise<boolean>;
  /** Writes the claim's text unless a claim is there (the first writer of a race wins where it can). */
  createIfAbsent(text: string): Promise<void>;
}

/**
 * `SnapshotStorage.claimRoots` for one root, the rule every adapter shares: the claim found, else a claim for
 * `catalogue` when the root holds nothing but claims (or the operator says so), read back; else unclaimed.
 */
export async function claimRoot(
  place: RootClaimPlace,
  catalogue: string,
  evenIfNotEmpty: boolean,
): Promise<RootClaim> {
  const found = await place.read();
  if (found) return found;
  if (!evenIfNotEmpty && (await place.holdsOtherThanClaims())) {
    return { root: place.root, catalogue: null, claimedAt: null };
  }
  await place.createIfAbsent(rootClaimText(catalogue));
  const claimed = await place.read();
  if (!claimed) throw new Error(`${place.where} was written and is not there: orphans are deleted nowhere`);
  return claimed;
}

/** Whether a listed path is a claim file, or one being written (`<claim>.<pid>.tmp`): no orphan, no state. */
export const isRootClaimFile = (path: string): boolean => /(^|\/)\.snapcat-root\.json(\.[^/]*)?$/.test(path);

/** A file (or object) under a storage root, as the orphan report lists it. */
export interface StoredFile {
  /** Its location as snapshots name it: a path under a configured root, or an s3:// URI. */
  path: string;
  size: number;
  mtimeMs: number;
}

export interface SnapshotStorage {
  /** Bytes the request would reclaim now (files that exist); refuses anything outside the roots. */
  measure(request: DeletionRequest): Promise<number>;
  /** Deletes, one file at a time; what is already gone counts as deleted. Returns the bytes freed by this call. */
  remove(request: DeletionRequest): Promise<number>;
  /** Writes `<directory>/snapcat-manifest.json` (creating the directory) and returns its location. */
  writeManifest(directory: string, manifest: unknown): Promise<string>;
  /**
   * Whether a file lies at or under the location; stops at the first one found (one page of a listing), where
   * `measure` reads them all. Refuses anything outside the roots.
   */
  holdsFiles(location: string): Promise<boolean>;
  /** Whether a location lies inside the roots (registration uses it to refuse other directories). */
  isWithinRoots(location: string): Promise<boolean>;
  /**
   * Whether a location is spelled inside a root, without asking the file system: what an acknowledgement's
   * every state handle is checked with (a deletion checks the real path again, and refuses a link out).
   */
  spelledWithinRoots(location: string): boolean;
  /**
   * Why a location cannot be an acknowledged state handle, by what the storage holds now (undefined: it can):
   * outside the roots by its real path (through a symbolic link below a root), or a directory (Flink's state
   * handles are files, and the orphan sweep would take what lies in a directory for orphans). Objects have
   * no directories: an object store answers by the spelling.
   */
  whyNotStateFile(location: string): Promise<StateFileRefusal | undefined>;
  /**
   * Files under the roots, for the orphan report, or under one location inside them (`under`: what an import
   * checks its directory holds), named as `under` is spelled: streamed (a page of objects, a directory's
   * entries at a time), so a bucket of millions of objects is never held in memory.
   */
  listFiles(under?: string): AsyncIterable<StoredFile>;
  /**
   * Each root's claim (`ROOT_CLAIM_FILE`): which catalogue may delete orphans under it, since when. A root
   * without one is claimed for `catalogue` now when it holds no file yet, or with `evenIfNotEmpty` (an
   * operator's `snapcat storage claim`); one that holds files stays unclaimed (`catalogue` null): files
   * there may be another catalogue's that never claimed it. Created only where none is: a race keeps the first.
   */
  claimRoots(catalogue: string, options?: { evenIfNotEmpty?: boolean }): Promise<RootClaim[]>;
  /** The claim file directly in `directory` (inside the roots), if any: another catalogue's nested root. */
  claimIn(directory: string): Promise<RootClaim | undefined>;
  /**
   * What the storage's own configuration means for snapcat's deletions, said once at start (a versioned
   * bucket keeps what snapcat deletes); empty when nothing needs saying or it cannot be read.
   */
  deletionCaveats?(): Promise<string[]>;
}

/**
 * Why a deletion of a storage root itself is refused: a snapshot's directory lies below a root, and deleting a
 * root would take every other job's files in it, which one job's keep list does not name.
 */
export const STORAGE_ROOT_REFUSED = 'is a storage root: a snapshot lies below one, never is one';

/** Why a location cannot be a state handle (`whyNotStateFile`): the rule it breaks, and the storage's words. */
export interface StateFileRefusal {
  rule: 'within-storage-roots' | 'state-file';
  message: string;
}

/** Roots configured so that the storage cannot be used safely (two names for one place): the process stops. */
export class StorageConfigurationError extends Error {
  override name = 'StorageConfigurationError';
}

/** A location outside the roots, or one that cannot be a local path: never retried. */
export class LocationRefusedError extends Error {
  constructor(
    readonly location: string,
    reason: string,
  ) {
    super(`refused ${JSON.stringify(location)}: ${reason}`);
    this.name = 'LocationRefusedError';
  }
}
