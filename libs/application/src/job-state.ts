import { fold, initialState, type JobState } from '@snapcat/domain';
import type { EventStore } from '@snapcat/event-store';
import { readAggregateSnapshot } from './aggregate-snapshots';
import { domainEvent, jobStream } from './streams';

const PAGE = 1000;

interface Until {
  revision?: bigint;
  at?: number;
}

/**
 * The job's state after the event at `revision` (inclusive), or after every event that occurred at or
 * before `at`. Starts from the newest aggregate snapshot at or below the revision when one exists.
 */
export function stateAt(
  store: EventStore,
  jobId: string,
  until: Until = {},
): Promise<{ state: JobState; revision: bigint }> {
  return fromStore(store, jobId, until, until.revision !== undefined && until.at === undefined);
}

/**
 * The job's current state read from the store, not through the command bus: a sweep over every job would
 * churn the bus's cache. Starts from the newest aggregate snapshot.
 */
export async function readJobState(store: EventStore, jobId: string): Promise<JobState> {
  return (await fromStore(store, jobId, {}, true)).state;
}

async function fromStore(
  store: EventStore,
  jobId: string,
  until: Until,
  fromSnapshot: boolean,
): Promise<{ state: JobState; revision: bigint }> {
  let state = initialState(jobId);
  let revision = -1n;
  if (fromSnapshot) {
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
