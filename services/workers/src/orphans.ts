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
import type { LogFn } from '@snapcat/runtime';
import { ROOT_CLAIM_FILE, type RootClaim, type SnapshotStorage, type StoredFile } from '@snapcat/storage';
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
  /** This catalogue's id (its event store's): orphans are deleted only under the roots it claimed. */
  catalogue: () => Promise<string>;
}

export interface OrphanReport {
  /** When the sweep began: the report shows the files and the live snapshots as of then, or later. */
  generatedAt: string;
  graceMs: number;
  deleted: boolean;
  /** The orphans, the first ORPHANS_LISTED of them; `fileCount` and `totalBytes` count them all. */
  files: { path: string; size: number; modifiedAt: string }[];
  fileCount: number;
  totalBytes: number;
  /**
   * Who may delete orphans under each root (decision 0044), when the sweep deletes; orphans under another
   * catalogue's root, or older than this catalogue's claim, are reported and not deleted (`notDeleted`).
   */
  claims?: (RootClaim & { ours: boolean })[];
  notDeleted?: number;
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
 * not whole (Redis lost it and the process manager is listing them again): nothing is deleted then.
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
  const deletable = await deletableUnder(deps, report);
  let batch: StoredFile[] = [];
  let checked: { live: LiveState; kept: (location: string) => boolean } | undefined;
  const deleteBatch = async () => {
    const files = batch;
    batch = [];
    if (!report.deleted || files.length === 0) return;
    const current = await liveNow();
    if (!current) {
      report.deleted = false;
      deps.log.warn('orphans not deleted: the list of jobs is being rebuilt (Redis lost it)', {
        files: files.length,
      });
      return;
    }
    // An index of every job's live files is as large as the registries: built again only when a job moved.
    if (checked?.live !== current) checked = { live: current, kept: keptBy(current) };
    const keptNow = checked.kept;
    const orphans = files.filter((f) => !keptNow(normaliseLocation(f.path)));
    const claimed = orphans.filter(deletable);
    report.notDeleted = (report.notDeleted ?? 0) + orphans.length - claimed.length;
    if (claimed.length === 0) return;
    await storage.remove({
      locations: [],
      stateHandles: claimed.map((f) => ({ path: f.path, sizeBytes: f.size })),
    });
  };
  // Live is what the discards keep (`whyKept`, through `keptByAnyOf`): one rule for both, so the report never
  // lists what a discard would keep, nor anything a discard in progress is deleting.
  await deps.urgent?.idle();
  const kept = keptBy(live);
  for await (const file of storage.listFiles()) {
    await deps.urgent?.idle();
    if (file.mtimeMs >= cutoff || file.path.endsWith(CLAIM_SUFFIX) || kept(normaliseLocation(file.path)))
      continue;
    report.fileCount += 1;
    report.totalBytes += file.size;
    if (report.files.length < ORPHANS_LISTED) {
      report.files.push({
        path: file.path,
        size: file.size,
        modifiedAt: new Date(file.mtimeMs).toISOString(),
      });
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

const CLAIM_SUFFIX = `/${ROOT_CLAIM_FILE}`;
/** Roots already said to be another catalogue's, by this process: said once, not every sweep. */
const saidForeign = new Set<string>();

/**
 * Which orphans this catalogue may delete (decision 0044): those under a root it claimed, written since its
 * claim (older ones are no leftovers of its jobs: another catalogue's, or from before it existed). The claims
 * go into the report. None when the claims cannot be read: a sweep that cannot tell whose root it is deletes
 * nothing there.
 */
async function deletableUnder(
  deps: OrphanReportDeps,
  report: OrphanReport,
): Promise<(file: StoredFile) => boolean> {
  let catalogue: string;
  let claims: RootClaim[];
  try {
    catalogue = await deps.catalogue();
    claims = await deps.storage.claimRoots(catalogue);
  } catch (error) {
    deps.log.warn("orphans not deleted: the storage roots' claims cannot be read", { error: String(error) });
    return () => false;
  }
  report.claims = claims.map((claim) => ({ ...claim, ours: claim.catalogue === catalogue }));
  for (const claim of claims) {
    if (claim.catalogue === catalogue || saidForeign.has(claim.root)) continue;
    saidForeign.add(claim.root);
    deps.log.warn(
      `orphans under ${claim.root} are reported, never deleted: its ${ROOT_CLAIM_FILE} gives it to the catalogue ` +
        `of event store ${claim.catalogue}, not to this one (${catalogue}); give each catalogue roots of its own, ` +
        'or delete that file once the other catalogue is gone for good',
      { root: claim.root, claimedBy: claim.catalogue, since: claim.claimedAt },
    );
  }
  // Longest root first: a root inside another root is the nearer one's.
  const ours = claims
    .filter((claim) => claim.catalogue === catalogue)
    .map((claim) => ({ under: `${claim.root.replace(/\/+$/, '')}/`, since: Date.parse(claim.claimedAt) }))
    .sort((a, b) => b.under.length - a.under.length);
  const foreign = claims
    .filter((claim) => claim.catalogue !== catalogue)
    .map((claim) => `${claim.root.replace(/\/+$/, '')}/`);
  return (file) => {
    const own = ours.find((claim) => file.path.startsWith(claim.under));
    if (!own || own.since > file.mtimeMs) return false;
    return !foreign.some((under) => under.length > own.under.length && file.path.startsWith(under));
  };
}
