import { Queue, type ConnectionOptions } from 'bullmq';
import type { StateHandle } from '@snapcat/domain';

/**
 * The workers' BullMQ queues and Redis keys: what the workers consume and what an API process reads of them
 * (queue depths for /metrics, the orphan report), so that neither service imports the other.
 */

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

export function openQueues(connection: ConnectionOptions, prefix: string) {
  const make = <T>(name: string) => {
    const queue = new Queue<T>(name, { connection, prefix });
    // Without a listener BullMQ writes each connection error to the console as a multi-line stack (a
    // thousand non-JSON lines a minute while Redis is down); the connection's health is said once, by
    // the process's RedisHealth, and a command on the queue still fails to its caller.
    queue.on('error', () => undefined);
    return queue;
  };
  return {
    timeouts: make<TimeoutJob>(QUEUES.timeouts),
    storage: make<DiscardJob | StrayJob | ManifestJob>(QUEUES.storage),
    schedules: make<Record<string, never>>(QUEUES.schedules),
    maintenance: make<Record<string, never>>(QUEUES.maintenance),
    flink: make<Record<string, unknown>>(QUEUES.flink),
  };
}
export type Queues = ReturnType<typeof openQueues>;

/** The workers' own Redis keys in a store's namespace (openStoreNamespace). */
export const workerKeys = (prefix: string) => ({
  knownJobs: `${prefix}:jobs`,
  /**
   * The process manager's epoch (its LeasedConsumer key `<prefix>:pm:epoch`): written once it has listed
   * every job of the store into `knownJobs` since Redis last lost its state, so the list is whole while it
   * exists.
   */
  knownJobsWhole: `${prefix}:pm:epoch`,
  /** How far the process manager has read the log (its LeasedConsumer position): every job up to it is known. */
  knownJobsRead: `${prefix}:pm:position`,
  orphanReport: `${prefix}:orphan-report`,
});
export type WorkerKeys = ReturnType<typeof workerKeys>;
