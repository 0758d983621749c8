import { SCHEMA_VERSION_KEY, readDomainEvent, snapshotIdOf, type Event } from '@snapcat/domain';
import { formatPosition, type EventStore, type Position, type RecordedEvent } from '@snapcat/event-store';

export const JOB_STREAM_PREFIX = 'snapcat-job-';
export const jobStream = (jobId: string): string => `${JOB_STREAM_PREFIX}${jobId}`;
/** The job a job stream is of (its name without JOB_STREAM_PREFIX); a tombstone names only its stream. */
export const jobIdOfStream = (streamId: string): string => streamId.slice(JOB_STREAM_PREFIX.length);
/**
 * Where the newest job event lies (undefined for a log without one): what a reader of the read model waits
 * for to see what was appended a moment ago. Looked for among the log's newest `within` events first, as
 * EventStoreDB filters a backwards read on the client and would page through whatever other streams (other
 * applications, on a shared server) wrote since; only past them, by a filtered read. (Answering undefined
 * there let a deletion's lookup skip the wait, and miss what was recorded a moment before: decision 0047.)
 */
export async function recentJobEventPosition(
  store: Pick<EventStore, 'readAll'>,
  within = 64,
): Promise<Position | undefined> {
  const newest = await store.readAll({ direction: 'backwards', maxCount: within });
  const found = newest.find((event) => event.streamId.startsWith(JOB_STREAM_PREFIX))?.position;
  if (found || newest.length < within) return found;
  const filter = { streamNamePrefixes: [JOB_STREAM_PREFIX] };
  return (await store.readAll({ direction: 'backwards', maxCount: 1, filter }))[0]?.position;
}
/** Aggregate snapshots live beside the job stream; consumers of snapshot events filter on JOB_STREAM_PREFIX. */
export const aggregateStream = (jobId: string): string => `snapcat-aggregate-${jobId}`;

/** The domain event a recorded event carries, upcast to its current schema version (decision 0023). */
export const domainEvent = (recorded: RecordedEvent): Event => readDomainEvent(recorded);

/**
 * A recorded job event as every reader shows it: REST's `GET /jobs/{jobId}/events`, GraphQL's `history` and
 * the CLI's `audit export` (one shape, so their positions and fields cannot drift apart).
 */
export function recordedEventView(recorded: RecordedEvent) {
  const event = domainEvent(recorded);
  // The data shown is upcast to today's schema: the version it was stored at would not describe it.
  const { [SCHEMA_VERSION_KEY]: _stored, ...metadata } = recorded.metadata;
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
    metadata,
  };
}
export type RecordedEventView = ReturnType<typeof recordedEventView>;
