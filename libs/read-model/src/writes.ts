import type { ChainableCommander } from 'ioredis';
import {
  jobSummaryView,
  snapshotView,
  directoriesNotNamedFor,
  looseReferences,
  type JobState,
  type JobSummaryView,
  type SnapshotState,
} from '@snapcat/domain';
import { directoryMember, fileMember, type KeySpace } from './keys';

/** A job's summary as the read model stores it: without the task list, which has a key of its own. */
export type StoredJobSummary = Omit<JobSummaryView, 'tasks'>;

/** The job's summary and task list, as stored (a job of 1,000s of subtasks would rewrite them on every event). */
export function storedJobViews(state: JobState): { summary: StoredJobSummary; tasks: string[] } {
  const { tasks, ...summary } = jobSummaryView(state);
  return { summary, tasks };
}

/**
 * Queues the writes of a job's views: its summary, its task list when `tasksChanged`, and the snapshots
 * named, from the state or, for those the fold compacted out of it (decision 0035), from their last record.
 * Used by the projector (per batch) and the rebuild (everything).
 */
export function writeJobViews(
  tx: ChainableCommander,
  space: KeySpace,
  state: JobState,
  snapshotIds: Iterable<number>,
  tasksChanged: boolean,
  compacted?: ReadonlyMap<number, SnapshotState>,
): void {
  const jobId = state.jobId;
  const { summary, tasks } = storedJobViews(state);
  tx.set(space.job(jobId), JSON.stringify(summary));
  if (tasksChanged) {
    tx.set(space.jobTasks(jobId), JSON.stringify(tasks));
    tx.zadd(space.jobs, 0, jobId);
  }
  for (const snapshotId of snapshotIds) {
    const snapshot = state.snapshots.get(snapshotId) ?? compacted?.get(snapshotId);
    if (!snapshot) continue;
    tx.set(space.snapshot(jobId, snapshotId), JSON.stringify({ jobId, ...snapshotView(snapshot) }));
    tx.zadd(space.snapshots(jobId), snapshotId, String(snapshotId));
    // Completed, or being discarded (its files still there, going: decision 0047): indexed; finished
    // otherwise (discarded, failed): no longer anyone's, and left out, so the index follows the snapshots
    // whose files are there rather than every one ever taken in such a directory.
    if (snapshot.status !== 'PENDING') {
      const paths = [snapshot.externalPath, snapshot.persistedPath];
      indexDirectories(tx, space, { jobId, snapshotId }, paths, isIndexedStatus(snapshot.status));
    }
  }
}

/**
 * Whether a snapshot of this status has its directories in the index: completed, or being discarded (a
 * discard under way, or one that failed: its files may still be there, and its job's to delete).
 */
export const isIndexedStatus = (status: string | undefined): boolean =>
  status === 'COMPLETED' || status === 'DISCARDING';

/**
 * Queues the index entries (`directories`) of a snapshot's paths Flink's layout does not name for its job: added while it is
 * completed or being discarded (`indexed`), removed once it is neither.
 */
export function indexDirectories(
  tx: ChainableCommander,
  space: KeySpace,
  { jobId, snapshotId }: { jobId: string; snapshotId: number },
  paths: Iterable<string | null | undefined>,
  indexed = true,
): void {
  const members = directoriesNotNamedFor(jobId, paths).map((directory) =>
    directoryMember(directory, jobId, snapshotId),
  );
  if (members.length === 0) return;
  if (indexed) tx.zadd(space.directories, ...members.flatMap((member) => [0, member]));
  else tx.zrem(space.directories, ...members);
}

/**
 * Queues the index entries (`files`) of the job's loose files: each of `files` (normalised loose locations)
 * added while the job's registry references it, removed once it does not; every one the registry references
 * when `files` is absent (a rebuild, the backfill).
 */
export function indexLooseFiles(
  tx: ChainableCommander,
  space: KeySpace,
  { jobId, sharedState }: Pick<JobState, 'jobId' | 'sharedState'>,
  files?: Iterable<string>,
): void {
  const added: string[] = [];
  const removed: string[] = [];
  for (const file of files ?? looseReferences(sharedState)) {
    (sharedState.references.has(file) ? added : removed).push(fileMember(file, jobId));
  }
  if (added.length > 0) tx.zadd(space.files, ...added.flatMap((member) => [0, member]));
  if (removed.length > 0) tx.zrem(space.files, ...removed);
}
