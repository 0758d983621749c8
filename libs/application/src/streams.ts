import { snapshotIdOf, type Event } from '@snapcat/domain';
import { formatPosition, type RecordedEvent } from '@snapcat/event-store';

export const JOB_STREAM_PREFIX = 'snapcat-job-';
export const jobStream = (jobId: string): string => `${JOB_STREAM_PREFIX}${jobId}`;
/** The job a job stream is of (its name without JOB_STREAM_PREFIX); a tombstone names only its stream. */
export const jobIdOfStream = (streamId: string): string => streamId.slice(JOB_STREAM_PREFIX.length);
/** Aggregate snapshots live beside the job stream; consumers of snapshot events filter on JOB_STREAM_PREFIX. */
export const aggregateStream = (jobId: string): string => `snapcat-aggregate-${jobId}`;

/** The domain event a recorded event carries. Events are validated when decided, not again on every read. */
export const domainEvent = (recorded: RecordedEvent): Event => recorded.data as Event;

/**
 * A recorded job event as every reader shows it: REST's `GET /jobs/{jobId}/events`, GraphQL's `history` and
 * the CLI's `audit export` (one shape, so their positions and fields cannot drift apart).
 */
export function recordedEventView(recorded: RecordedEvent) {
  const event = domainEvent(recorded);
  return {
    revision: Number(recorded.revision),
    /** `commit:prepare` in $all, as every position snapcat shows or takes. */
    position: formatPosition(recorded.position),
    eventId: recorded.id,
    type: recorded.type,
    occurredAt: event.occurredAt,
    recordedAt: recorded.created.toISOString(),
    snapshotId: snapshotIdOf(event),
    data: event,
    metadata: recorded.metadata,
  };
}
export type RecordedEventView = ReturnType<typeof recordedEventView>;
