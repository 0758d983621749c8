import type { Event } from '@snapcat/domain';
import type { RecordedEvent } from '@snapcat/event-store';

export const JOB_STREAM_PREFIX = 'snapcat-job-';
export const jobStream = (jobId: string): string => `${JOB_STREAM_PREFIX}${jobId}`;
/** Aggregate snapshots live beside the job stream; consumers of snapshot events filter on JOB_STREAM_PREFIX. */
export const aggregateStream = (jobId: string): string => `snapcat-aggregate-${jobId}`;

/** The domain event a recorded event carries. Events are validated when decided, not again on every read. */
export const domainEvent = (recorded: RecordedEvent): Event => recorded.data as Event;
