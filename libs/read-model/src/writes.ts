import type { ChainableCommander } from 'ioredis';
import { jobSummaryView, snapshotView, type Event, type JobState } from '@snapcat/domain';
import type { KeySpace } from './keys';

/** Queues the writes one event causes: the job's summary, and the snapshot it concerns. */
export function writeViews(tx: ChainableCommander, space: KeySpace, state: JobState, event: Event): void {
  const jobId = state.jobId;
  tx.set(space.job(jobId), JSON.stringify(jobSummaryView(state)));
  if (event.type === 'JobRegistered') tx.zadd(space.jobs, 0, jobId);
  const snapshotId = 'snapshotId' in event ? event.snapshotId : undefined;
  const snapshot = snapshotId === undefined ? undefined : state.snapshots.get(snapshotId);
  if (snapshot) {
    tx.set(space.snapshot(jobId, snapshot.snapshotId), JSON.stringify({ jobId, ...snapshotView(snapshot) }));
    tx.zadd(space.snapshots(jobId), snapshot.snapshotId, String(snapshot.snapshotId));
  }
}
