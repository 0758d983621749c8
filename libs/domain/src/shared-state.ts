import { CowMap, type CowMapEditor, type ReadonlyCowMap } from './cow-map';
import type { KeptLocation, StateHandle } from './schemas';

/**
 * The shared-state registry of one job (after Flink's `SharedStateRegistryImpl`): which live snapshots
 * reference each state location, which directories belong to live snapshots, and what requested discards
 * are deleting now. Incremental checkpoints share files (`<checkpointDir>/<jobId>/shared/`); a discard
 * deletes only what no other live snapshot references (decision 0011).
 *
 * Copy-on-write (`CowMap`): every version of a job's state keeps its own registry, and a new version
 * shares all but the changed leaves of the maps with the one before. A draft edits its own copy
 * (`RegistryEditor`) and seals it, so a batch of acknowledgements copies each changed leaf once.
 */
export interface SharedStateRegistry {
  /** Normalised location -> the live snapshots whose acknowledgements reported it, and its size. */
  readonly references: ReadonlyCowMap<Reference>;
  /** Normalised directory of a live snapshot (its external path, its savepoint path) -> its snapshots. */
  readonly directories: ReadonlyCowMap<readonly number[]>;
  /** Normalised location (file or directory) being deleted -> who deletes it (`DeletionOwner`). */
  readonly deleting: ReadonlyCowMap<DeletionOwner>;
  /** Bytes of every referenced location, each counted once: what a restore of every live snapshot needs. */
  readonly referencedBytes: number;
}

/** A snapshot's discard (its id, positive), or a stray acknowledgement's cleanup (`strayCleanupOwner`). */
export type DeletionOwner = number;
export const strayCleanupOwner = (cleanupId: number): DeletionOwner => -cleanupId;

export interface Reference {
  /** The size the first live reference reported (a file has one size; later reports are not compared). */
  readonly sizeBytes: number;
  /** Snapshot ids, ascending. */
  readonly snapshots: readonly number[];
}

/** What a discard deletes and keeps: recorded in `SnapshotDiscardRequested`, executed by the storage worker. */
export interface DiscardPlan {
  /** Directories to delete, except the `kept` locations inside them. */
  locations: string[];
  /** Files to delete: the snapshot's handles that no live snapshot references any more. */
  stateHandles: StateHandle[];
  /** What is not deleted, and why. */
  kept: KeptLocation[];
}

/** Views of registries still being edited: a draft must never start from one (it would share their maps). */
const unsealed = new WeakSet<SharedStateRegistry>();
export const isSealed = (registry: SharedStateRegistry): boolean => !unsealed.has(registry);

export const EMPTY_REGISTRY: SharedStateRegistry = {
  references: CowMap.empty(),
  directories: CowMap.empty(),
  deleting: CowMap.empty(),
  referencedBytes: 0,
};

/**
 * The one key a location is registered under: `file://` URIs and absolute paths as a normalised path
 * (escapes decoded, `.` and `..` and doubled slashes collapsed, no trailing slash); `s3a://` and `s3p://`
 * as `s3://` (Flink writes all three for one store). Other schemes are kept as written, less a trailing slash.
 */
export function normaliseLocation(location: string): string {
  if (location.startsWith('/')) return normalisePath(location);
  if (location.startsWith('file:')) {
    const path = location.replace(/^file:(\/\/[^/]*)?/, '');
    // An empty segment counts for the URL parser (`/a//..` is `/a/`), not for a split on slashes.
    if (!PLAIN_FILE_URI.test(location) || path.includes('//')) {
      return normalisePath(safeDecode(urlPath(location)));
    }
    return normalisePath(path);
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(location);
  if (!scheme) return location;
  const name = scheme[1]!.toLowerCase();
  const rest = location.slice(scheme[0].length).replace(/\/+$/, '');
  return `${name === 's3a' || name === 's3p' ? 's3' : name}://${rest}`;
}

/** Whether `location` is `directory` or lies below it (both normalised). */
export function isWithin(location: string, directory: string): boolean {
  return (
    location === directory ||
    (location.startsWith(directory) &&
      (directory.endsWith('/') || location.charCodeAt(directory.length) === 47)) /* / */
  );
}

/** Shared state as Flink lays it out or marks it: `shared: true`, or (unmarked) a `shared/` directory. */
export function isSharedHandle(handle: StateHandle): boolean {
  return handle.shared ?? /\/shared\//.test(handle.path);
}

/** Why a location is not deleted now, or null when nothing live needs it and no discard is deleting it. */
export function whyKept(
  registry: SharedStateRegistry,
  location: string,
  /** The snapshot being discarded: its own references and deletions keep nothing. */
  discarding?: number,
  /** Answers per directory, shared by the calls of one plan (`liveDirectoryOwners`). */
  directories?: Map<string, number[] | null>,
): Omit<KeptLocation, 'path'> | null {
  // No closures nor generators here: this runs for every handle of every discard (tsx wraps each
  // closure it creates, and a 40,000-subtask checkpoint has 160,000 handles in bench #11).
  const reference = registry.references.get(location);
  if (reference) {
    const referrers = without(reference.snapshots, discarding);
    if (referrers.length > 0) return { reason: 'REFERENCED', snapshots: referrers };
  }
  const owners = liveDirectoryOwners(registry, location, discarding, directories);
  if (owners) return { reason: 'LIVE_DIRECTORY', snapshots: owners };
  // Only the very location: a file in a directory being deleted was kept by that discard (someone
  // referenced it) or came later (a late acknowledgement), so it is not deleted unless named again.
  const deleter = registry.deleting.get(location);
  if (deleter === undefined || deleter === discarding) return null;
  return deleter > 0
    ? { reason: 'BEING_DELETED', snapshots: [deleter] }
    : { reason: 'BEING_DELETED', snapshots: [], cleanupId: -deleter };
}

/**
 * Whether any of the registries keeps a location: `whyKept(registry, location) !== null` for some registry,
 * answered from one index of their live locations built once, instead of every registry asked per location.
 * The orphan sweep asks it for every file under the roots, over every job's registry (files x jobs lookups
 * before). A property test holds it to `whyKept`.
 */
export function keptByAnyOf(
  registries: readonly SharedStateRegistry[],
  /** Directories kept whole besides (normalised): the areas Flink owns (`flinkOwnedAreas`), restore sources. */
  alsoKept: Iterable<string> = [],
  /**
   * Jobs whose every file laid out under their id is kept, wherever the prefix before it (`jobAreaOf`), and
   * every savepoint directory Flink names for them.
   */
  keptJobs: ReadonlySet<string> = new Set(),
): (location: string) => boolean {
  const exact = new Set<string>();
  const directories = new Set<string>(alsoKept);
  for (const registry of registries) {
    for (const [location, reference] of registry.references.entries()) {
      if (reference.snapshots.length > 0) exact.add(location);
    }
    for (const [location] of registry.deleting.entries()) exact.add(location);
    for (const [directory, owners] of registry.directories.entries()) {
      if (owners.length > 0) directories.add(directory);
    }
  }
  // Flink names a savepoint's directory `savepoint-<the job id's first six characters>-<random>`
  // (`AbstractFsCheckpointStorageAccess.initializeLocationForSavepoint`): one taken in Flink that the mirror
  // never saw (a CLI's, during an outage) has no catalogue entry, and a walkthrough's sweep deleted one.
  const savepointPrefixes = new Set([...keptJobs].map((jobId) => jobId.slice(0, 6)));
  return (location) => {
    if (exact.has(location)) return true;
    if (keptJobs.size > 0) {
      const owner = jobAreaOf(location);
      if (owner !== undefined && keptJobs.has(owner)) return true;
      const prefix = savepointJobPrefixOf(location);
      if (prefix !== undefined && savepointPrefixes.has(prefix)) return true;
    }
    if (directories.size === 0) return false;
    const last = firstAncestorEnd(location);
    for (let end = location.length; end >= last; end = location.lastIndexOf('/', end - 1)) {
      if (directories.has(end === location.length ? location : location.slice(0, end))) return true;
    }
    return false;
  };
}

/**
 * The live snapshots (other than `discarding`) owning the location or a directory it lies in, if any.
 * `directories` caches the answer per directory for one plan: a discard's handles share a few parents.
 */
function liveDirectoryOwners(
  registry: SharedStateRegistry,
  location: string,
  discarding: number | undefined,
  directories?: Map<string, number[] | null>,
): number[] | undefined {
  if (registry.directories.size === 0) return undefined;
  const owners = registry.directories.get(location);
  if (owners) {
    const others = without(owners, discarding);
    if (others.length > 0) return others;
  }
  const slash = location.lastIndexOf('/');
  // firstAncestorEnd is at least 1: this also stops at a path's root (slash 0) and without a slash.
  if (slash < firstAncestorEnd(location)) return undefined;
  const parent = location.slice(0, slash);
  const cached = directories?.get(parent);
  if (cached !== undefined) return cached ?? undefined;
  const found = liveDirectoryOwners(registry, parent, discarding, directories);
  directories?.set(parent, found ?? null);
  return found;
}

/** A copy of the ids without `id` (all of them when `id` is undefined). */
function without(ids: readonly number[], id: number | undefined): number[] {
  // `slice` sizes the kept list exactly (see `withId`).
  return ids.filter((each) => each !== id).slice();
}

/**
 * The snapshot whose requested discard is deleting the location or a directory it lies in, if any: a
 * snapshot that names such a location cannot complete (its files may be gone by the time it restores).
 */
export function deletingSnapshot(registry: SharedStateRegistry, location: string): DeletionOwner | undefined {
  if (registry.deleting.size === 0) return undefined;
  for (const place of placesAround(location)) {
    const owner = registry.deleting.get(place);
    if (owner !== undefined) return owner;
  }
  return undefined;
}

/**
 * Whether a normalised location is, or lies in, one of `places` (normalised): by the places around it, so a
 * question costs its depth, not the number of places.
 */
export function withinAnyOf(places: Iterable<string>): (location: string) => boolean {
  const set = new Set(places);
  return (location) => {
    if (set.size === 0) return false;
    for (const place of placesAround(location)) if (set.has(place)) return true;
    return false;
  };
}

/** The directory a location lies in, normalised (`<checkpointDir>/<jobId>` of a `chk-N`). */
/**
 * Flink's metadata file in a snapshot's directory (`AbstractFsCheckpointStorageAccess.METADATA_FILE_NAME`),
 * written when a checkpoint or savepoint completes (`PendingCheckpoint.finalizeCheckpoint`).
 */
export const FLINK_METADATA_FILE = '_metadata';

export const parentOf = (location: string): string => normaliseLocation(location).replace(/\/[^/]*$/, '');

/**
 * A normalised location and the directories it lies in, nearest first, down to its bucket or host
 * (`s3://bucket`) or its first directory (`/data`).
 */
export function* placesAround(location: string): Generator<string> {
  const last = firstAncestorEnd(location);
  for (let end = location.length; end >= last; end = location.lastIndexOf('/', end - 1)) {
    yield end === location.length ? location : location.slice(0, end);
  }
}

/**
 * What discarding a snapshot deletes: its handles that nothing else keeps, and its directories less the
 * live locations inside them. A directory that lies inside another live snapshot's directory is not
 * deleted as a whole (only the snapshot's own unreferenced handles in it are).
 */
export function planDiscard(
  registry: SharedStateRegistry,
  snapshotId: number,
  handles: readonly StateHandle[],
  directories: readonly string[],
  /** The job discarding: its files in another job's directories are kept (`isOtherJobsFile`). */
  job?: PlanningJob,
): DiscardPlan {
  const seen = new Set<string>();
  const own = directories.map(normaliseLocation);
  const { deleted, kept } = partitionHandles(registry, handles, snapshotId, seen, job, own);
  const plan: DiscardPlan = { locations: [], stateHandles: deleted, kept };
  for (const directory of directories) {
    const location = normaliseLocation(directory);
    const why = whyKept(registry, location, snapshotId);
    if (why) {
      if (!seen.has(location)) plan.kept.push({ path: location, ...why });
      seen.add(location);
      continue;
    }
    plan.locations.push(directory);
    // Live locations inside the directory: other snapshots' files and directories. A scan of the
    // registry, once per discarded directory (bench #11 measures it for 240,000 files).
    for (const [path, reference] of registry.references.entries()) {
      if (seen.has(path) || !isWithin(path, location)) continue;
      const referrers = without(reference.snapshots, snapshotId);
      if (referrers.length === 0) continue;
      plan.kept.push({ path, reason: 'REFERENCED', snapshots: referrers });
      seen.add(path);
    }
    for (const [path, owners] of registry.directories.entries()) {
      if (path === location || seen.has(path) || !isWithin(path, location)) continue;
      const others = without(owners, snapshotId);
      if (others.length === 0) continue;
      plan.kept.push({ path, reason: 'LIVE_DIRECTORY', snapshots: others });
      seen.add(path);
    }
  }
  return plan;
}

/** Of a stray acknowledgement's handles, those to delete now (nothing live needs them) and those kept. */
export function planStrayCleanup(
  registry: SharedStateRegistry,
  handles: readonly StateHandle[],
  job?: PlanningJob,
): { cleanup: StateHandle[]; kept: KeptLocation[] } {
  const { deleted, kept } = partitionHandles(registry, handles, undefined, new Set(), job);
  return { cleanup: deleted, kept };
}

/** Handles to delete (nothing keeps them) and kept locations with why; `seen` gathers their locations. */
function partitionHandles(
  registry: SharedStateRegistry,
  handles: readonly StateHandle[],
  discarding: number | undefined,
  seen: Set<string>,
  job: PlanningJob | undefined,
  /**
   * The discarded snapshot's own directories: a file in them goes with them, never another job's (a restore
   * from a path holding them, `/data` say, would otherwise keep the files and delete the directory around them).
   */
  ownDirectories: readonly string[] = [],
): { deleted: StateHandle[]; kept: KeptLocation[] } {
  const deleted: StateHandle[] = [];
  const kept: KeptLocation[] = [];
  const parents = new Map<string, number[] | null>();
  for (const handle of handles) {
    const location = normaliseLocation(handle.path);
    if (seen.has(location)) continue;
    seen.add(location);
    const why = whyKept(registry, location, discarding, parents);
    if (why) kept.push({ path: location, ...why });
    else if (
      job !== undefined &&
      !ownDirectories.some((directory) => isWithin(location, directory)) &&
      isOtherJobsFile(location, job)
    ) {
      kept.push({ path: location, reason: 'OTHER_JOB', snapshots: [] });
    } else deleted.push(handle);
  }
  return { deleted, kept };
}

/**
 * Flink's layout names the job a checkpoint's files belong to: `<checkpointDir>/<jobId>/chk-<n>/…`,
 * `…/<jobId>/shared/…`, `…/<jobId>/taskowned/…` (`AbstractFsCheckpointStorageAccess`:
 * `getCheckpointDirectoryForJob`, `CHECKPOINT_DIR_PREFIX`, `CHECKPOINT_SHARED_STATE_DIR`,
 * `CHECKPOINT_TASK_OWNED_STATE_DIR`), and the changelog state backend's `<dstl.dfs.base-path>/<jobId>/dstl/…`
 * (`StateChangeFsUploader.PATH_SUB_DIR`). The job id there, if the location has one.
 */
export function jobAreaOf(location: string): string | undefined {
  return FLINK_JOB_AREA.exec(location)?.[1];
}

/** The checkpoint area `<checkpointDir>/<jobId>` itself that a location lies in (`jobAreaOf`), else undefined. */
export function jobAreaPathOf(location: string): string | undefined {
  const match = FLINK_JOB_AREA.exec(location);
  return match ? location.slice(0, match.index + 1 + 32) : undefined;
}
const FLINK_JOB_AREA = /\/([0-9a-f]{32})\/(?:chk-\d+|shared|taskowned|dstl)(?:\/|$)/;

/**
 * The places strictly inside `directory` (normalised) that Flink's layout names for a job other than `jobId`,
 * among the files found there: a checkpoint area's `chk-N`, `shared`, `taskowned` or `dstl` under another
 * job's id (the directory may be that area itself, imported before the job was registered), or a savepoint
 * directory named for another id's first six characters. An imported directory held no such place when it
 * was imported (R69, `one-snapshot`): one there now was written since, by another job, and the import's
 * discard must keep it. The import's own name (its `chk-N`, its `savepoint-…`) is never such a place.
 */
export function otherJobsPlacesInside(jobId: string, directory: string, files: Iterable<string>): string[] {
  const places = new Set<string>();
  for (const file of files) {
    const path = normaliseLocation(file);
    if (!path.startsWith(`${directory}/`)) continue;
    const below = path.slice(directory.length);
    // Below the directory first (an area inside it), then the whole path (the directory is an area).
    for (const [offset, text] of [
      [directory.length, below],
      [0, path],
    ] as const) {
      const match = FLINK_JOB_AREA.exec(text);
      if (!match || match[1] === jobId) continue;
      const named = path.slice(0, offset + match.index + match[0].replace(/\/$/, '').length);
      if (named.startsWith(`${directory}/`)) {
        places.add(named);
        break;
      }
    }
    const savepoint = savepointDirectoryOf(below);
    if (savepoint && savepointJobPrefixOf(below) !== jobId.slice(0, 6)) places.add(directory + savepoint);
  }
  return [...places];
}

/** `<checkpointDir>/<jobId>` of a checkpoint's `chk-N` directory (normalised), else undefined. */
export function checkpointAreaOf(location: string): string | undefined {
  return /^(.*\/[0-9a-f]{32})\/chk-\d+\/?$/.exec(location)?.[1];
}

/**
 * A file in another job's checkpoint directory, or in a savepoint directory another job's id names: a job
 * restored from another's checkpoint or (native) savepoint with LEGACY or CLAIM reports the files it
 * inherited, which that job's live snapshots may still need; the registry is per job (decision 0011), so a
 * discard keeps them rather than guess (decision 0031; Flink's `RestoreMode.LEGACY` deletes none of them
 * either). A savepoint directory names only the first six characters of its job's id, so a job whose id
 * shares them is not told apart (its files are then treated as its own, as before).
 */
function isOtherJobsFile(location: string, job: PlanningJob): boolean {
  const owner = jobAreaOf(location);
  if (owner !== undefined) return owner !== job.jobId;
  const { jobId, restoredFrom, earlierRestoredFrom, usersDirectories } = job;
  if (restoredFrom !== undefined && isWithin(location, restoredFrom)) return true;
  if (earlierRestoredFrom?.some((directory) => isWithin(location, directory))) return true;
  if (usersDirectories?.some((directory) => isWithin(location, directory))) return true;
  const savepointOf = savepointJobPrefixOf(location);
  return savepointOf !== undefined && savepointOf !== jobId.slice(0, 6);
}

/** The job a plan deletes for, as `isOtherJobsFile` tells its files from other jobs'. */
export interface PlanningJob {
  jobId: string;
  /**
   * The directory of another job's snapshot the job was last restored from, as the restore named that job
   * (decision 0032): its files are that job's, even where the directory's name does not tell (a savepoint's
   * six characters of the job id, shared with this job's).
   */
  restoredFrom?: string;
  /** The same for the restores from other jobs' snapshots that a later restore superseded (decision 0032). */
  earlierRestoredFrom?: readonly string[];
  /** The directories of every restore from an external path in NO_CLAIM or LEGACY: the user's, kept too. */
  usersDirectories?: readonly string[];
}

/**
 * The job-id prefix of the savepoint directory a location lies in: Flink names one
 * `savepoint-<first 6 characters of the job id>-<12 random hex>`
 * (`AbstractFsCheckpointStorageAccess.initializeLocationForSavepoint`, `FileUtils.getRandomFilename`), and so
 * does snapcat (`savepointPath`).
 */
export function savepointJobPrefixOf(location: string): string | undefined {
  return FLINK_SAVEPOINT_DIRECTORY.exec(location)?.[1];
}
const FLINK_SAVEPOINT_DIRECTORY = /\/savepoint-([0-9a-f]{6})-[0-9a-f]{12}(?:\/|$)/;

/**
 * A normalised location no Flink layout names for any job: neither in a checkpoint area (`jobAreaOf`) nor in a
 * savepoint directory (`savepointJobPrefixOf`). Whose it is, the path cannot say: a client's own layout, which
 * two jobs may share. A job's registry holds its own references only (decision 0011), so the read model
 * indexes the live references to such files across jobs, and a deletion asks it (decision 0046).
 */
export const isLooseLocation = (location: string): boolean =>
  jobAreaOf(location) === undefined && savepointJobPrefixOf(location) === undefined;

/** The loose locations (`isLooseLocation`) a registry references: what the read model indexes for its job. */
export function* looseReferences(registry: SharedStateRegistry): Generator<string> {
  for (const [location] of registry.references.entries()) if (isLooseLocation(location)) yield location;
}

/** The savepoint directory (Flink's naming, `savepointJobPrefixOf`) a normalised location lies in, else undefined. */
export function savepointDirectoryOf(location: string): string | undefined {
  return /^(.*?\/savepoint-[0-9a-f]{6}-[0-9a-f]{12})(?:\/|$)/.exec(location)?.[1];
}

/**
 * Edits a registry in place for one draft: the maps are copied on write (Immutable.js `asMutable`), so
 * the registry it started from is left as it was; `seal()` gives the immutable result.
 */
export class RegistryEditor implements SharedStateRegistry {
  readonly references: CowMapEditor<Reference>;
  readonly directories: CowMapEditor<readonly number[]>;
  readonly deleting: CowMapEditor<DeletionOwner>;
  referencedBytes: number;

  constructor(origin: SharedStateRegistry) {
    this.references = sealed(origin.references).edit();
    this.directories = sealed(origin.directories).edit();
    this.deleting = sealed(origin.deleting).edit();
    this.referencedBytes = origin.referencedBytes;
    // The editor is itself the registry a draft reads while it edits (no copy per edit); it must never
    // be the origin of another draft.
    unsealed.add(this);
  }

  seal(): SharedStateRegistry {
    return {
      references: this.references.seal(),
      directories: this.directories.seal(),
      deleting: this.deleting.seal(),
      referencedBytes: this.referencedBytes,
    };
  }

  reference(snapshotId: number, handles: readonly StateHandle[]): void {
    for (const handle of handles) {
      const location = normaliseLocation(handle.path);
      const current = this.references.get(location);
      if (!current) {
        this.references.set(location, {
          sizeBytes: handle.sizeBytes,
          snapshots: [snapshotId],
        });
        this.referencedBytes += handle.sizeBytes;
      } else if (!current.snapshots.includes(snapshotId)) {
        this.references.set(location, {
          ...current,
          snapshots: withId(current.snapshots, snapshotId),
        });
      }
    }
  }

  ownDirectory(snapshotId: number, directory: string): void {
    const location = normaliseLocation(directory);
    const owners = this.directories.get(location) ?? [];
    if (!owners.includes(snapshotId)) this.directories.set(location, withId(owners, snapshotId));
  }

  /**
   * The snapshot stops being live: it no longer references its handles nor owns its directories, and
   * what its discard deletes is marked as being deleted until the discard completes. `deleting` is
   * normalised already (`deletionIndex`).
   */
  release(
    snapshotId: number,
    handles: readonly StateHandle[],
    directories: readonly string[],
    deleting: readonly string[],
  ): void {
    for (const handle of handles) {
      const location = normaliseLocation(handle.path);
      const current = this.references.get(location);
      if (!current || !current.snapshots.includes(snapshotId)) continue;
      if (current.snapshots.length === 1) {
        this.references.delete(location);
        this.referencedBytes -= current.sizeBytes;
      } else {
        this.references.set(location, {
          sizeBytes: current.sizeBytes,
          snapshots: without(current.snapshots, snapshotId),
        });
      }
    }
    for (const directory of directories) {
      const location = normaliseLocation(directory);
      const owners = this.directories.get(location);
      if (!owners) continue;
      if (owners.length === 1 && owners[0] === snapshotId) this.directories.delete(location);
      else this.directories.set(location, without(owners, snapshotId));
    }
    this.markNormalisedDeleting(snapshotId, deleting);
  }

  /** Locations that a discard or a stray cleanup deletes from now until `deletionDone`. */
  markDeleting(owner: DeletionOwner, locations: readonly string[]): void {
    this.markNormalisedDeleting(owner, locations.map(normaliseLocation));
  }

  private markNormalisedDeleting(owner: DeletionOwner, keys: readonly string[]): void {
    for (const key of keys) this.deleting.setIfAbsent(key, owner);
  }

  /** The deletions are done: those locations are no longer being deleted. */
  deletionDone(owner: DeletionOwner, locations: readonly string[]): void {
    for (const location of locations) {
      const key = normaliseLocation(location);
      if (this.deleting.get(key) === owner) this.deleting.delete(key);
    }
  }
}

/**
 * What a discard is deleting, as the registry keeps it while the discard runs: its directories, and the
 * files outside them (those inside are covered by their directory). Compact on purpose: a checkpoint's
 * private files all lie in its chk-N directory, so an aborted 40,000-task checkpoint costs one entry.
 */
export function deletionIndex(plan: DiscardPlan): string[] {
  const index = new Set<string>();
  for (const directory of plan.locations) index.add(normaliseLocation(directory));
  const directories = [...index];
  for (const handle of plan.stateHandles) {
    const file = normaliseLocation(handle.path);
    let covered = false;
    for (const directory of directories) covered ||= isWithin(file, directory);
    if (!covered) index.add(file);
  }
  return [...index];
}

/**
 * The first place an order to delete (`plan`) would delete that the catalogue has not marked as being
 * deleted (`deleting`, a requested discard's `deletionIndex`), or undefined: the worker carries out only
 * what the store decided, whatever the queue says.
 */
export function unorderedDeletion(
  deleting: readonly string[],
  plan: Pick<DiscardPlan, 'locations' | 'stateHandles'>,
): string | undefined {
  return firstUnmarked(deletionIndex({ ...plan, kept: [] }), deleting);
}

/** The first place of a deletion index that is neither marked nor inside a marked directory, or undefined. */
function firstUnmarked(index: readonly string[], deleting: readonly string[]): string | undefined {
  const marked = new Set(deleting);
  return index.find(
    (place) => !marked.has(place) && !deleting.some((directory) => isWithin(place, directory)),
  );
}

/**
 * The first place where an order to delete (`order`, with the paths its keep list keeps) differs from what the
 * catalogue marked as being deleted (`deleting`), or undefined. Naming more than the marks could delete what
 * the store did not decide; leaving a mark out, or keeping one (the place itself or a directory around it),
 * would record the discard done with those files left behind for good.
 */
export function orderMismatch(
  deleting: readonly string[],
  order: Pick<DiscardPlan, 'locations' | 'stateHandles'> & { keep?: readonly string[] | undefined },
): string | undefined {
  const index = deletionIndex({ ...order, kept: [] });
  const unordered = firstUnmarked(index, deleting);
  if (unordered !== undefined) return unordered;
  const planned = new Set(index);
  const unplanned = deleting.find(
    (mark) => !planned.has(mark) && !index.some((directory) => isWithin(mark, directory)),
  );
  if (unplanned !== undefined) return unplanned;
  const kept = (order.keep ?? []).map(normaliseLocation);
  return deleting.find((mark) => kept.some((k) => mark === k || isWithin(mark, k)));
}

/**
 * The plan of a discard request: as its event recorded it, or, for an event written before the registry
 * (no `kept`: it listed every handle), planned from the registry as it is now.
 */
export function discardPlanOf(
  registry: SharedStateRegistry,
  snapshotId: number,
  request: { locations: string[]; stateHandles: StateHandle[]; kept?: KeptLocation[] | undefined },
  job?: PlanningJob,
): DiscardPlan {
  if (request.kept) {
    return { locations: request.locations, stateHandles: request.stateHandles, kept: request.kept };
  }
  return planDiscard(registry, snapshotId, request.stateHandles, request.locations, job);
}

/** A registry's map as a version (a draft's view is never the origin of another draft: see `isSealed`). */
function sealed<V>(map: ReadonlyCowMap<V>): CowMap<V> {
  if (!(map instanceof CowMap)) throw new Error('a registry still being edited cannot be edited again');
  return map;
}

/**
 * `concat` sizes the list exactly; a spread or a push leaves room to grow, 128 bytes more for a list of one
 * owner, which is what nearly every directory has (12 MB of the heap at 100,000 retained snapshots, #10).
 */
function withId(ids: readonly number[], id: number): number[] {
  const out = ids.concat(id);
  return ids.length > 0 && ids[ids.length - 1]! > id ? out.sort((a, b) => a - b) : out;
}

/**
 * Where a location's shortest ancestor ends: a URI's ancestors stop at its bucket or host
 * (`s3://bucket`), a path's at its first directory (`/data`).
 */
function firstAncestorEnd(location: string): number {
  const scheme = location.indexOf('://');
  if (scheme < 0) return 1;
  const slash = location.indexOf('/', scheme + 3);
  return slash < 0 ? location.length : slash;
}

function normalisePath(path: string): string {
  // The common case (already normal) costs one scan. A file: URI's path is absolute even when written
  // without its slash (`file:a/b`, as `file:a/b/` and `file:a/./b` are).
  if (path.startsWith('/') && !/\/\/|\/\.\.?(\/|$)|\/$/.test(path)) return path;
  const out: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return `/${out.join('/')}`;
}

/**
 * A file: URI the URL parser reads as a plain split on slashes does. Storage opens file: URIs with that
 * parser (`fileURLToPath`), which cuts off a fragment or query, reads a backslash as a slash, drops tabs
 * and newlines, trims spaces at either end, keeps a Windows drive letter through `..`, counts an empty
 * segment (`//`) as one and reads `%2e%2e` as `..` even beside a malformed escape: a URI with any such
 * character (or any escape) is keyed as the parser reads it, so that the registry, the namespace checks and a deletion all mean the same path
 * (`file:///data/b#/../../a` is /data/b, not /data/a).
 */
const PLAIN_FILE_URI = /^file:[A-Za-z0-9._~!$&'()*+,;=@/-]*$/;

function urlPath(location: string): string {
  try {
    return new URL(location).pathname;
  } catch {
    return location.replace(/^file:(\/\/[^/]*)?/, ''); // storage refuses it: the key only has to be stable
  }
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
