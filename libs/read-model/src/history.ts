import { fold, initialState, type JobState } from '@snapcat/domain';
import { domainEvent, jobStream, readAggregateSnapshot } from '@snapcat/application';
import type { EventStore } from '@snapcat/event-store';

const PAGE = 1000;

/**
 * The job's state after the event at `revision` (inclusive), or after every event that occurred at or
 * before `at`. Starts from the newest aggregate snapshot at or below the revision when one exists.
 */
export async function stateAt(
  store: EventStore,
  jobId: string,
  until: { revision?: bigint; at?: number } = {},
): Promise<{ state: JobState; revision: bigint }> {
  let state = initialState(jobId);
  let revision = -1n;
  if (until.revision !== undefined && until.at === undefined) {
    const snapshot = await readAggregateSnapshot(store, jobId, until.revision);
    if (snapshot) ({ state, revision } = snapshot);
  }
  for (;;) {
    if (until.revision !== undefined && revision >= until.revision) break;
    const page = await store.readStream(jobStream(jobId), { fromRevision: revision + 1n, maxCount: PAGE });
    let events = page;
    if (until.revision !== undefined) events = events.filter((e) => e.revision <= until.revision!);
    if (until.at !== undefined) {
      const cut = events.findIndex((e) => Date.parse(domainEvent(e).occurredAt) > until.at!);
      if (cut >= 0) {
        state = fold(state, events.slice(0, cut).map(domainEvent));
        return { state, revision: cut > 0 ? events[cut - 1]!.revision : revision };
      }
    }
    if (events.length === 0) break;
    state = fold(state, events.map(domainEvent));
    revision = events[events.length - 1]!.revision;
    if (page.length < PAGE) break;
  }
  return { state, revision };
}
