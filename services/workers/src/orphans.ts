import { stateHandlesOf } from '@snapcat/domain';
import type { ProcessorDeps } from './processors';

export interface OrphanReport {
  generatedAt: string;
  graceMs: number;
  deleted: boolean;
  files: { path: string; size: number; modifiedAt: string }[];
  totalBytes: number;
}

/**
 * Files under the storage roots that no live snapshot references (its directory, its savepoint location
 * or one of its state handles) and that are older than the grace period. Deleted only when configured.
 */
export async function writeOrphanReport(deps: ProcessorDeps, jobIds: string[]): Promise<number> {
  const { bus, storage, redis } = deps;
  const liveDirs: string[] = [];
  const liveFiles = new Set<string>();
  for (const jobId of jobIds) {
    const state = await bus.load(jobId);
    for (const s of state.snapshots.values()) {
      if (s.status === 'DISCARDED' || (s.status === 'FAILED' && s.discard?.state === 'DONE')) continue;
      for (const location of [s.externalPath, s.persistedPath]) {
        if (location) liveDirs.push(safePath(storage, location));
      }
      for (const h of stateHandlesOf(s)) liveFiles.add(safePath(storage, h.path));
    }
  }
  const cutoff = Date.now() - deps.orphanGraceMs;
  const orphans = (await storage.listFiles()).filter(
    (f) =>
      f.mtimeMs < cutoff &&
      !liveFiles.has(f.path) &&
      !liveDirs.some((dir) => dir !== '' && (f.path === dir || f.path.startsWith(`${dir}/`))),
  );
  if (deps.deleteOrphans && orphans.length > 0) {
    await storage.remove({
      locations: [],
      stateHandles: orphans.map((f) => ({ path: f.path, sizeBytes: f.size })),
    });
  }
  const report: OrphanReport = {
    generatedAt: new Date().toISOString(),
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

function safePath(storage: ProcessorDeps['storage'], location: string): string {
  try {
    return storage.toPath(location);
  } catch {
    return '';
  }
}
