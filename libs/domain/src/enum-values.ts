/**
 * The values of the enums a reader lists, and the shape of a job id, without zod: schemas.ts builds its enums
 * and JobId from them, and the web console (a browser bundle that must not carry zod) offers them as filters
 * and checks the job id of its address.
 */

/** A Flink JobID: 32 lowercase hex characters. */
export const JOB_ID_PATTERN = /^[0-9a-f]{32}$/;

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
