import type { Redis } from 'ioredis';
import {
  flinkOwnedAreas,
  importedCheckpointAreas,
  keptByAnyOf,
  normaliseLocation,
  pendingSnapshotAreas,
  restoreSourcesKept,
  type JobState,
  type SharedStateRegistry,
} from '@snapcat/domain';
import type { DeletionFence } from '@snapcat/application';
import type { LogFn } from '@snapcat/runtime';
import {
  ROOT_CLAIM_FILE,
  isRootClaimFile,
  type RootClaim,
  type SnapshotStorage,
  type StoredFile,
} from '@snapcat/storage';
import type { UrgentWork } from './urgent-work';

export interface OrphanReportDeps {
  storage: SnapshotStorage;
  redis: Redis;
  orphanReportKey: string;
  orphanGraceMs: number;
  deleteOrphans: boolean;
  log: { info: LogFn; warn: LogFn };
  /** Waited for between files: the report is housekeeping. */
  urgent?: UrgentWork;
  /**
   * This catalogue's id (its event store's): orphans are deleted only under the roots it claimed. Undefined
   * for a store in memory, which claims none and deletes no orphan.
   */
  catalogue: () => Promise<string | undefined>;
  /**
   * Decision 0047's fence: each batch is marked before its check against the jobs, so an import or an
   * acknowledgement naming its files is refused meanwhile, and one being recorded keeps its files.
   */
  fence: Pick<DeletionFence, 'deleting'>;
}

/** The fence's job id for the orphan sweep's marks: no job's (a job id is 32 hex digits). */
export const ORPHAN_SWEEP = 'orphan-sweep';

export interface OrphanReport {
  /** When the sweep began: the report shows the files and the live snapshots as of then, or later. */
  generatedAt: string;
  graceMs: number;
  deleted: boolean;
  /**
   * The orphans, the first ORPHANS_LISTED of them; `fileCount` and `totalBytes` count them all. `deleted`
   * (when the sweep deletes): whether this one was (not: kept since the listing, or not this catalogue's).
   */
  files: ListedOrphan[];
  fileCount: number;
  totalBytes: number;
  /**
   * Who may delete orphans under each root (decision 0044), when the sweep deletes; orphans under another
   * catalogue's root, or older than this catalogue's claim, are reported and not deleted (`notDeleted`).
   */
  claims?: (RootClaim & { ours: boolean })[];
  notDeleted?: number;
  /** Why the roots' claims could not be read or written: then nothing is deleted (`deleted` is false). */
  claimsUnreadable?: string;
}

interface ListedOrphan {
  path: string;
  size: number;
  modifiedAt: string;
  deleted?: boolean;
}

/** What the sweep keeps, gathered from every job's state (`addLive`). */
export interface LiveState {
  registries: SharedStateRegistry[];
  /**
   * Directories kept whole: Flink's areas of managed jobs (`flinkOwnedAreas`), restore sources, where pending
   * snapshots write (`pendingSnapshotAreas`).
   */
  areas: string[];
  /**
   * Managed jobs: a file laid out under one of their ids is kept wherever the path before it, since
   * Flink's entropy injection (`EntropyInjector`) puts random characters into the paths of a checkpoint's
   * data files, though not into `_metadata`'s, the path the mirror records.
   */
  jobs: Set<string>;
}

export const noLiveState = (): LiveState => ({ registries: [], areas: [], jobs: new Set() });

export function addLive(live: LiveState, state: JobState): void {
  live.registries.push(state.sharedState);
  live.areas.push(
    ...flinkOwnedAreas(state),
    ...restoreSourcesKept(state),
    ...pendingSnapshotAreas(state),
    ...importedCheckpointAreas(state),
  );
  if (state.source) live.jobs.add(state.jobId);
}

const keptBy = (live: LiveState) => keptByAnyOf(live.registries, live.areas, live.jobs);

/** Orphans listed in a report at most: a bucket full of others' files must not make one of gigabytes. */
export const ORPHANS_LISTED = 10_000;
/** Orphans deleted in one storage call, as the listing goes (it is never held whole). */
const DELETION_BATCH = 1_000;

/**
 * Files under the storage roots that no live snapshot references (its directory, its savepoint location
 * or one of its state handles), that no discard is deleting, and that are older than the grace period
 * (a checkpoint in progress writes files before any acknowledgement names them), and that lie outside the
 * areas Flink owns for managed jobs. Deleted only when configured. `live`: every job's state, read (by the
 * sweep) after `startedAt`. The listing is streamed: memory holds the report's files and one batch of
 * deletions, not the storage's listing.
 *
 * Each batch is checked against `liveNow()` just before it is deleted, since a listing can run for minutes:
 * a job registered, a directory imported or a restore since the sweep began may have made an old file live
 * (the report lists the orphans as of `startedAt`). `liveNow` answers undefined while the list of jobs is
 * not whole (Redis lost it and the process manager is listing them again, or it has not read the log as far
 * as its newest job event): nothing is deleted then.
 */
export async function writeOrphanReport(
  deps: OrphanReportDeps,
  live: LiveState,
  startedAt: number,
  liveNow: () => Promise<LiveState | undefined> = async () => live,
): Promise<number> {
  const { storage, redis } = deps;
  const cutoff = startedAt - deps.orphanGraceMs;
  const report: OrphanReport = {
    generatedAt: new Date(startedAt).toISOString(),
    graceMs: deps.orphanGraceMs,
    deleted: deps.deleteOrphans,
    files: [],
    fileCount: 0,
    totalBytes: 0,
  };
  // Claimed whether or not this sweep deletes: a catalogue that only reports still tells a later one the
  // roots are taken.
  const deletable = await claimedOrphans(deps, report);
  let batch: StoredFile[] = [];
  const listed = new Map<string, ListedOrphan>(); // the report's files by path, marked once deleted
  let checked: { live: LiveState; kept: (location: string) => boolean } | undefined;
  const keptIn = (current: LiveState) => {
    // An index of every job's live files is as large as the registries: built again only when a job moved.
    if (checked?.live !== current) checked = { live: current, kept: keptBy(current) };
    return checked.kept;
  };
  const deleteBatch = async () => {
    const files = batch;
    batch = [];
    if (!report.deleted || files.length === 0) return;
    for (const file of await deleteOrphans(deps, files, report, { liveNow, keptIn, deletable })) {
      const entry = listed.get(file.path);
      if (entry) entry.deleted = true;
    }
  };
  // Live is what the discards keep (the registries' references and deletions in progress, as `whyKept` reads
  // them), and the areas no discard would touch: the report never lists what a discard would keep.
  await deps.urgent?.idle();
  const kept = keptBy(live);
  for await (const file of storage.listFiles()) {
    await deps.urgent?.idle();
    if (file.mtimeMs >= cutoff || isRootClaimFile(file.path) || kept(normaliseLocation(file.path))) continue;
    report.fileCount += 1;
    report.totalBytes += file.size;
    if (report.files.length < ORPHANS_LISTED) {
      const modifiedAt = new Date(file.mtimeMs).toISOString();
      const entry = {
        path: file.path,
        size: file.size,
        modifiedAt,
        ...(report.deleted && { deleted: false }),
      };
      report.files.push(entry);
      listed.set(file.path, entry);
    }
    batch.push(file);
    if (batch.length >= DELETION_BATCH) await deleteBatch();
  }
  await deleteBatch();
  await redis.set(deps.orphanReportKey, JSON.stringify(report));
  if (report.fileCount) {
    deps.log.info('orphan report', { files: report.fileCount, bytes: report.totalBytes });
  }
  return report.fileCount;
}

/**
 * Deletes what of a batch of orphans is still no live snapshot's, checked just before (`writeOrphanReport`):
 * answers the files deleted. Marked in the fence before the jobs are read again (decision 0047): what is
 * recorded there from now on is refused; what was recorded before is in the log those reads see; what is
 * being recorded now is kept.
 */
async function deleteOrphans(
  deps: OrphanReportDeps,
  files: StoredFile[],
  report: OrphanReport,
  checks: {
    liveNow: () => Promise<LiveState | undefined>;
    keptIn: (live: LiveState) => (location: string) => boolean;
    deletable: DeletableFilter;
  },
): Promise<StoredFile[]> {
  // Only what this catalogue may delete is marked: a recording under another catalogue's root is never refused.
  const claimable = await checks.deletable(files);
  report.notDeleted = (report.notDeleted ?? 0) + files.length - claimable.length;
  if (claimable.length === 0) return [];
  const fenced = await deps.fence.deleting(
    ORPHAN_SWEEP,
    claimable.map((f) => normaliseLocation(f.path)),
  );
  try {
    const current = await checks.liveNow();
    if (!current) {
      report.deleted = false;
      deps.log.warn(
        'orphans not deleted: the list of jobs is not whole (Redis lost it, or it lags the log)',
        {
          files: files.length,
        },
      );
      return [];
    }
    const keptNow = checks.keptIn(current);
    const claimed = claimable.filter((f) => {
      const place = normaliseLocation(f.path);
      return !keptNow(place) && !fenced.conflicts.has(place);
    });
    if (claimed.length === 0) return [];
    if (!(await fenced.stillHeld())) {
      // A mark lapsed or Redis lost it: a recording may have passed unseen. The next sweep looks again.
      deps.log.warn('orphans not deleted: the deletion fence was lost meanwhile', { files: claimed.length });
      return [];
    }
    await deps.storage.remove({
      locations: [],
      stateHandles: claimed.map((f) => ({ path: f.path, sizeBytes: f.size })),
    });
    return claimed;
  } finally {
    await fenced.release();
  }
}

/** Roots already said to be another catalogue's, or unclaimed, by this process: said once, not every sweep. */
const saidOfRoot = new Set<string>();

const IN_MEMORY = 'memory:';

/** The files of a batch this catalogue may delete (decision 0044). */
type DeletableFilter = (files: StoredFile[]) => Promise<StoredFile[]>;

/**
 * Which orphans this catalogue may delete (decision 0044): those under a root it claimed, written since its
 * claim by the storage's clock (older ones are no leftovers of its jobs: another catalogue's, or from before
 * it existed), and in no directory another catalogue claimed inside it (a root of another deployment nested
 * in this one's). The claims go into the report. None when the claims cannot be read or written: a sweep that
 * cannot tell whose root it is deletes nothing.
 */
async function claimedOrphans(deps: OrphanReportDeps, report: OrphanReport): Promise<DeletableFilter> {
  let catalogue: string | undefined;
  let claims: RootClaim[];
  try {
    catalogue = await deps.catalogue();
    if (catalogue === undefined) {
      if (deps.deleteOrphans && !saidOfRoot.has(IN_MEMORY)) {
        saidOfRoot.add(IN_MEMORY);
        deps.log.warn('orphans are reported, never deleted: an event store in memory claims no storage root');
      }
      report.deleted = false;
      return async () => [];
    }
    claims = await deps.storage.claimRoots(catalogue);
  } catch (error) {
    if (deps.deleteOrphans) {
      deps.log.warn("orphans not deleted: the storage roots' claims cannot be read or written", {
        error: String(error),
      });
    }
    report.deleted = false;
    report.claimsUnreadable = error instanceof Error ? error.message : String(error);
    return async () => [];
  }
  report.claims = claims.map((claim) => ({ ...claim, ours: claim.catalogue === catalogue }));
  if (deps.deleteOrphans) for (const claim of claims) sayWhyNotDeleted(deps, claim, catalogue);
  const under = (root: string) => `${root.replace(/\/+$/, '')}/`;
  // Longest root first: a root inside another root is the nearer one's.
  const ours = claims
    .filter((claim) => claim.catalogue === catalogue)
    .map((claim) => ({ under: under(claim.root), since: Date.parse(claim.claimedAt!) }))
    .sort((a, b) => b.under.length - a.under.length);
  const others = claims.filter((claim) => claim.catalogue !== catalogue).map((claim) => under(claim.root));
  // Directories inside a root of ours, by whether another catalogue claimed them (read once a sweep).
  const fencedDirectories = new Map<string, Promise<boolean>>();
  const fenced = (directory: string) => {
    let known = fencedDirectories.get(directory);
    if (!known) {
      known = deps.storage.claimIn(directory).then(
        (claim) => claim !== undefined && claim.catalogue !== catalogue,
        () => true, // a claim that cannot be read is nobody's to ignore
      );
      fencedDirectories.set(directory, known);
    }
    return known;
  };
  return async (files) => {
    const deletable: StoredFile[] = [];
    for (const file of files) {
      const own = ours.find((root) => file.path.startsWith(root.under));
      if (!own || own.since > file.mtimeMs) continue;
      if (others.some((root) => root.length > own.under.length && file.path.startsWith(root))) continue;
      let inFenced = false;
      for (
        let end = file.path.lastIndexOf('/');
        end >= own.under.length;
        end = file.path.lastIndexOf('/', end - 1)
      ) {
        if (await fenced(file.path.slice(0, end))) {
          inFenced = true;
          break;
        }
      }
      if (!inFenced) deletable.push(file);
    }
    return deletable;
  };
}

/** Says once per process why a root's orphans are not deleted: another catalogue's, or nobody's yet. */
function sayWhyNotDeleted(deps: OrphanReportDeps, claim: RootClaim, catalogue: string): void {
  if (claim.catalogue === catalogue || saidOfRoot.has(claim.root)) return;
  saidOfRoot.add(claim.root);
  const message =
    claim.catalogue === null
      ? `orphans under ${claim.root} are reported, never deleted: it holds files and no catalogue has claimed it ` +
        `(${ROOT_CLAIM_FILE}); if no other catalogue uses it, \`npx snapcat storage claim\` gives it to this one ` +
        '(files written before that are never deleted)'
      : `orphans under ${claim.root} are reported, never deleted: its ${ROOT_CLAIM_FILE} gives it to the catalogue ` +
        `of event store ${claim.catalogue}, not to this one (${catalogue}); give each catalogue roots of its own, ` +
        'or delete that file once the other catalogue is gone for good';
  deps.log.warn(message, { root: claim.root, claimedBy: claim.catalogue, since: claim.claimedAt });
}
