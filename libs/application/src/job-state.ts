import { fold, initialState, type JobState, type OnCompacted } from '@snapcat/domain';
import { foldStream, type EventStore } from '@snapcat/event-store';
import { readAggregateSnapshot } from './aggregate-snapshots';
import { domainEvent, jobStream } from './streams';

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
  onCompacted?: OnCompacted,
): Promise<{ state: JobState; revision: bigint }> {
  return fromStore(store, jobId, until, until.revision !== undefined && until.at === undefined, onCompacted);
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
  onCompacted?: OnCompacted,
): Promise<{ state: JobState; revision: bigint }> {
  const snapshot = fromSnapshot ? await readAggregateSnapshot(store, jobId, until.revision) : undefined;
  const at = until.at;
  return foldStream(store, jobStream(jobId), {
    initialState: snapshot?.state ?? initialState(jobId),
    from: (snapshot?.revision ?? -1n) + 1n,
    evolve: (state, events) => fold(state, events.map(domainEvent), onCompacted),
    ...(until.revision !== undefined ? { until: until.revision } : {}),
    ...(at !== undefined ? { takeWhile: (e) => Date.parse(domainEvent(e).occurredAt) <= at } : {}),
  });
}
