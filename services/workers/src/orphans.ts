import type { Redis } from 'ioredis';
import { normaliseLocation, whyKept, type SharedStateRegistry } from '@snapcat/domain';
import type { LogFn } from '@snapcat/runtime';
import type { SnapshotStorage } from '@snapcat/storage';

export interface OrphanReportDeps {
  storage: SnapshotStorage;
  redis: Redis;
  orphanReportKey: string;
  orphanGraceMs: number;
  deleteOrphans: boolean;
  log: { info: LogFn };
}

export interface OrphanReport {
  /** When the sweep began: the report shows the files and the live snapshots as of then, or later. */
  generatedAt: string;
  graceMs: number;
  deleted: boolean;
  files: { path: string; size: number; modifiedAt: string }[];
  totalBytes: number;
}

/**
 * Files under the storage roots that no live snapshot references (its directory, its savepoint location
 * or one of its state handles), that no discard is deleting, and that are older than the grace period
 * (a checkpoint in progress writes files before any acknowledgement names them). Deleted only when configured.
 * `registries`: every job's, read (by the sweep) after `startedAt`.
 */
export async function writeOrphanReport(
  deps: OrphanReportDeps,
  registries: readonly SharedStateRegistry[],
  startedAt: number,
): Promise<number> {
  const { storage, redis } = deps;
  const cutoff = startedAt - deps.orphanGraceMs;
  // Live is what the discards keep (`whyKept`): one rule for both, so the report never lists what a
  // discard would keep, nor anything a discard in progress is deleting.
  const orphans = (await storage.listFiles()).filter((f) => {
    if (f.mtimeMs >= cutoff) return false;
    const location = normaliseLocation(f.path);
    return registries.every((registry) => whyKept(registry, location) === null);
  });
  if (deps.deleteOrphans && orphans.length > 0) {
    await storage.remove({
      locations: [],
      stateHandles: orphans.map((f) => ({ path: f.path, sizeBytes: f.size })),
    });
  }
  const report: OrphanReport = {
    generatedAt: new Date(startedAt).toISOString(),
    graceMs: deps.orphanGraceMs,
    deleted: deps.deleteOrphans,
    files: orphans.map((f) => ({
      path: f.path,
      size: f.size,
      modifiedAt: new Date(f.mtimeMs).toISOString(),
    })),
    totalBytes: orphans.reduce((sum, f) => sum + f.size, 0),
  };
  await redis.set(deps.orphanReportKey, JSON.stringify(report));
  if (orphans.length) deps.log.info('orphan report', { files: orphans.length, bytes: report.totalBytes });
  return orphans.length;
}
