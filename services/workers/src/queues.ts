import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { DiscardPlan, StateHandle } from '@snapcat/domain';

/** One queue per concern, so a slow storage cleanup never delays a checkpoint timeout. */
export const QUEUES = {
  timeouts: 'timeouts',
  storage: 'storage',
  schedules: 'schedules',
  maintenance: 'maintenance',
  /** The Flink connector's mirrors, savepoints and disposals (issue 19), apart from snapcat's own storage. */
  flink: 'flink',
} as const;

export interface TimeoutJob {
  jobId: string;
  snapshotId: number;
}
export interface DiscardJob {
  jobId: string;
  snapshotId: number;
  locations: string[];
  stateHandles: StateHandle[];
  /** Locations live snapshots still need, never deleted (absent in jobs enqueued before decision 0011). */
  keep?: string[];
  /** Measured before the first deletion, so a retry after a crash reports the full amount. */
  bytes?: number;
}
export interface StrayJob {
  jobId: string;
  /** The handles to delete: the stray acknowledgement's cleanup. */
  stateHandles: StateHandle[];
  /** Recorded as done when deleted (absent for stray acknowledgements before decision 0011). */
  cleanupId?: number;
  /** Measured before the first deletion, so a retry after a crash reports the full amount. */
  bytes?: number;
}
export interface ManifestJob {
  jobId: string;
  snapshotId: number;
}
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

export function openQueues(connection: ConnectionOptions, prefix: string) {
  const make = <T>(name: string) => new Queue<T>(name, { connection, prefix });
  return {
    timeouts: make<TimeoutJob>(QUEUES.timeouts),
    storage: make<DiscardJob | StrayJob | ManifestJob>(QUEUES.storage),
    schedules: make<Record<string, never>>(QUEUES.schedules),
    maintenance: make<Record<string, never>>(QUEUES.maintenance),
    flink: make<Record<string, unknown>>(QUEUES.flink),
  };
}
export type Queues = ReturnType<typeof openQueues>;
