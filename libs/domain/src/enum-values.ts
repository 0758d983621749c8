/**
 * The values of the enums a reader lists, without zod: schemas.ts builds its enums from them, and the web
 * console (a browser bundle that must not carry zod) offers them as filters.
 */

/**
 * Every status of Flink's `JobStatus` (org.apache.flink.api.common): a connector mirrors what Flink reports.
 * Only RUNNING lets snapshots be triggered; FINISHED, CANCELED and FAILED are globally terminal.
 */
export const JOB_STATUSES = [
  'CREATED',
  'INITIALIZING',
  'RUNNING',
  'FAILING',
  'CANCELLING',
  'RESTARTING',
  'SUSPENDED',
  'RECONCILING',
  'FAILED',
  'CANCELED',
  'FINISHED',
] as const;
export const SNAPSHOT_KINDS = ['CHECKPOINT', 'SAVEPOINT'] as const;
export const SNAPSHOT_STATUSES = ['PENDING', 'COMPLETED', 'FAILED', 'DISCARDING', 'DISCARDED'] as const;

/** The external path Flink reports for a checkpoint its storage cannot address (`JobManagerCheckpointStorage`). */
export const NOT_EXTERNALLY_ADDRESSABLE = '<checkpoint-not-externally-addressable>';
