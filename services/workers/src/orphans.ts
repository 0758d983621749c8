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
import type { SnapshotStorage, StoredFile } from '@snapcat/storage';
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
    if (orphans.length === 0) return;
    await storage.remove({
      locations: [],
      stateHandles: orphans.map((f) => ({ path: f.path, sizeBytes: f.size })),
    });
  };
  // Live is what the discards keep (`whyKept`, through `keptByAnyOf`): one rule for both, so the report never
  // lists what a discard would keep, nor anything a discard in progress is deleting.
  await deps.urgent?.idle();
  const kept = keptBy(live);
  for await (const file of storage.listFiles()) {
    await deps.urgent?.idle();
    if (file.mtimeMs >= cutoff || kept(normaliseLocation(file.path))) continue;
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
