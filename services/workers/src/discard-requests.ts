import type { EventOf } from '@snapcat/domain';
import { domainEvent, jobStream } from '@snapcat/application';
import { readStreamPages, type EventStore } from '@snapcat/event-store';

/**
 * The newest discard request of each snapshot named, read backwards from the end of the job's stream: what
 * the store asked to delete, which a queue's order is only a copy of.
 */
export async function newestDiscardRequests(
  store: EventStore,
  jobId: string,
  snapshotIds: ReadonlySet<number>,
): Promise<EventOf<'SnapshotDiscardRequested'>[]> {
  const wanted = new Set(snapshotIds);
  const found: EventOf<'SnapshotDiscardRequested'>[] = [];
  if (wanted.size === 0) return found;
  for await (const page of readStreamPages(store, jobStream(jobId), { direction: 'backwards' })) {
    for (const recorded of page) {
      const event = domainEvent(recorded);
      if (event.type === 'SnapshotDiscardRequested' && wanted.delete(event.snapshotId)) found.push(event);
    }
    if (wanted.size === 0) break;
  }
  return found;
}
