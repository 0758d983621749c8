import type { JobsOptions } from 'bullmq';
import type { DiscardPlan } from '@snapcat/domain';
import type { DiscardJob } from '@snapcat/runtime';

// The queues and their jobs' shapes are in @snapcat/runtime (queues.ts): an API process reads them too.

/** The storage worker's orders for one discard: the plan the discard event recorded. */
export function discardJob(jobId: string, snapshotId: number, plan: DiscardPlan): DiscardJob {
  return {
    jobId,
    snapshotId,
    locations: plan.locations,
    stateHandles: plan.stateHandles,
    keep: plan.kept.map((k) => k.path),
  };
}

/** How often the savepoint tick looks for due schedules; slots falling between ticks are waited for. */
export const SAVEPOINT_TICK_MS = 1000;

/** BullMQ job ids: deterministic, so a replayed event enqueues nothing new; never with ':' nor all digits. */
export const jobIds = {
  timeout: (jobId: string, snapshotId: number) => `timeout-${jobId}-${snapshotId}`,
  discard: (jobId: string, snapshotId: number) => `discard-${jobId}-${snapshotId}`,
  stray: (jobId: string, cleanupId: number) => `stray-${jobId}-${cleanupId}`,
  legacyStray: (eventId: string) => `stray-${eventId}`,
  manifest: (jobId: string, snapshotId: number) => `manifest-${jobId}-${snapshotId}`,
  retentionSweep: 'retention-sweep',
  savepointTick: 'savepoint-tick',
};

/** Finished jobs stay a day, so that a replayed event finds its job id taken and enqueues nothing. */
export const KEEP: JobsOptions = {
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};
