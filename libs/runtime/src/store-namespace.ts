import type { Redis } from 'ioredis';
import {
  START,
  comparePositions,
  formatPosition,
  parsePosition,
  type EventStore,
  type Position,
} from '@snapcat/event-store';
import { JOB_STREAM_PREFIX } from '@snapcat/application';
import type { LogFn } from './log';
import { scanKeys } from './redis';

/**
 * What to do when the Redis prefix holds the state of another event store (a fresh store beside an old
 * Redis, or a second deployment on the same Redis and prefix): build this store's state afresh beside it,
 * or refuse to start.
 */
export type ForeignStatePolicy = 'rebuild' | 'refuse';

/**
 * Every Redis key snapcat keeps for a store (read model, consumer positions and leases, queues, schedules)
 * lives under `<prefix>:{<storeId>}`, so a position can only ever be read back against the log it came from.
 * The braces are a Redis Cluster hash tag: all of a store's keys share one slot, so the transactions and
 * scripts that span several of them (projector batches, BullMQ, the schedule index) work on a cluster.
 */
export const storeNamespace = (prefix: string, storeId: string): string => `${prefix}:{${storeId}}`;

export const namespaceKeys = (prefix: string) => ({
  /** The id of the store that last started on this prefix. */
  owner: `${prefix}:store`,
  /** storeId -> when it last started on this prefix: the namespaces an operator may want to forget. */
  stores: `${prefix}:stores`,
});

/**
 * What the claim reads of the store's log: where it ends, and, for the timeline mark (`markTimeline`), which
 * event follows a position.
 */
export interface StoreLogView {
  logEnd(): Promise<Position | undefined>;
  /** The id of the first event after `position`, if any. */
  eventIdAfter?(position: Position): Promise<string | undefined>;
  /** The log's newest event's id and the position of the event before it (START when it is the first). */
  newestMark?(): Promise<TimelineMark | undefined>;
}

/** The newest event a process of the store saw, by what precedes it: `id` follows `after` in the log. */
export interface TimelineMark {
  after: Position;
  id: string;
}

/**
 * The store's log as the claim reads it (a few events at most per read); none for a store that cannot say
 * where its log ends (`logEnd`: past every position a consumer may have saved, not only its last event's).
 */
export function storeLogView(
  store: Pick<EventStore, 'readAll' | 'logEnd' | 'lastPosition'>,
): StoreLogView | undefined {
  const logEnd = store.logEnd?.bind(store);
  if (!logEnd) return undefined;
  // Job events only: those are never capped (an aggregate snapshot stream is, and its events leave the log;
  // they can also be megabytes, which a read every heartbeat would parse for nothing).
  const filter = { streamNamePrefixes: [JOB_STREAM_PREFIX] };
  let marked: { at: string; mark: TimelineMark | undefined } | undefined;
  return {
    logEnd,
    eventIdAfter: async (position) => (await store.readAll({ after: position, maxCount: 1, filter }))[0]?.id,
    newestMark: async () => {
      // Read again only when the log moved since the last mark.
      const end = await store.lastPosition();
      const at = end ? formatPosition(end) : 'empty';
      if (marked?.at !== at) {
        const [newest, before] = await store.readAll({ direction: 'backwards', maxCount: 2, filter });
        marked = { at, mark: newest && { after: before?.position ?? START, id: newest.id } };
      }
      return marked.mark;
    },
  };
}

/** Where a store's namespace keeps its timeline mark. */
const timelineKey = (namespace: string) => `${namespace}:timeline`;

/**
 * Records the newest event this process sees in the log, so that a later start can tell whether Redis's state
 * is of this log or of another timeline of the same store (a restored backup that wrote events of its own:
 * positions alone cannot tell, a walkthrough's read model showed a job only the backup had).
 */
export async function markTimeline(redis: Redis, namespace: string, view: StoreLogView): Promise<void> {
  const mark = await view.newestMark?.();
  if (mark)
    await redis.set(
      timelineKey(namespace),
      JSON.stringify({ after: formatPosition(mark.after), id: mark.id }),
    );
}

/**
 * Whether the timeline mark in Redis names an event this log does not have where the mark says: the state is
 * of another timeline. False without a mark, or when the log cannot be asked.
 */
async function markNotInLog(
  redis: Redis,
  namespace: string,
  view: StoreLogView,
): Promise<string | undefined> {
  const text = await redis.get(timelineKey(namespace));
  if (!text || !view.eventIdAfter) return undefined;
  const mark = JSON.parse(text) as { after: string; id: string };
  const found = await view.eventIdAfter(parsePosition(mark.after));
  return found === mark.id ? undefined : `event ${mark.id} after position ${mark.after} is not in the log`;
}

/** Keys that snapcat wrote before stores had ids, directly under the prefix: state of an unknown store. */
const legacyKeys = (prefix: string) => [
  `${prefix}:rm:current`,
  `${prefix}:pm:position`,
  `${prefix}:wh:position`,
  `${prefix}:jobs`,
];

/** Whether any of the keys exists: one EXISTS each, as the keys lie in different slots of a cluster (CROSSSLOT). */
async function anyExists(redis: Redis, keys: string[]): Promise<boolean> {
  const found = await Promise.all(keys.map((key) => redis.exists(key)));
  return found.some((count) => count > 0);
}

/** Leases a running process of a store renews every second: projector, process manager, webhook dispatcher. */
const LIVE_LEASES = ['rm:lease', 'pm:lease', 'wh:lease'];

/**
 * Whether some process of the store is running: it holds one of the leases in its namespace (a process that
 * ended without letting go holds it until it expires, 5 s at most).
 */
export async function storeIsRunning(redis: Redis, prefix: string, storeId: string): Promise<boolean> {
  const ns = storeNamespace(prefix, storeId);
  return (await redis.exists(...LIVE_LEASES.map((lease) => `${ns}:${lease}`))) > 0;
}

/**
 * The keys that say how far a consumer got (positions, epochs, the read model's version, origin and
 * completeness): deleted first, so that a drop stopped halfway (a killed process, a Ctrl-C) leaves state its
 * consumers rebuild, never a position above what is gone.
 */
const isProgressMarker = (key: string) => /:(position|epoch|origin|complete|rm:current)$/.test(key);

/**
 * Deletes everything snapcat keeps in Redis for a store (its namespace), its progress markers first; the
 * number of keys deleted. The prefix no longer names the store as its last owner either.
 */
export async function forgetStoreState(redis: Redis, prefix: string, storeId: string): Promise<number> {
  const pattern = `${storeNamespace(prefix, storeId)}:*`;
  let deleted = 0;
  for await (const keys of scanKeys(redis, pattern)) {
    const markers = keys.filter(isProgressMarker);
    if (markers.length > 0) deleted += await redis.unlink(...markers);
  }
  for await (const keys of scanKeys(redis, pattern)) deleted += await redis.unlink(...keys);
  const { stores, owner } = namespaceKeys(prefix);
  await redis.hdel(stores, storeId);
  // Compare and delete in one script: a store that starts meanwhile keeps its claim.
  await redis.eval(
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
    1,
    owner,
    storeId,
  );
  return deleted;
}

/**
 * The saved positions in the store's namespace that lie past the log's end (`logEnd`): Redis holds the
 * state of a later point of this store's log than the store has (a backup restored beside the live Redis,
 * or a copy of the store run on the same prefix: the store's id comes with it, so its namespace). Its
 * consumers would skip the events written from now on up to those positions.
 */
async function positionsPastEnd(
  redis: Redis,
  namespace: string,
  logEnd: () => Promise<Position | undefined>,
) {
  const saved = new Map<string, Position>();
  for await (const keys of scanKeys(redis, `${namespace}:*position`)) {
    const found = keys.filter((key) => key.endsWith(':position'));
    const values = found.length > 0 ? await redis.mget(...found) : [];
    found.forEach((key, i) => {
      const value = values[i];
      if (value) saved.set(key, parsePosition(value));
    });
  }
  if (saved.size === 0) return [];
  // Read after the positions: a process running meanwhile saves only positions of events already in the log.
  const end = await logEnd();
  const past: string[] = [];
  for (const [key, position] of saved) {
    if (position.commit >= 0n && (!end || comparePositions(position, end) > 0)) past.push(key);
  }
  return past;
}

export class ForeignStateError extends Error {
  override name = 'ForeignStateError';
}

/**
 * Records that `storeId` now runs on `prefix`, and says so loudly when the prefix last held another store's
 * state (or pre-identity state of an unknown store). This store's read model, positions and queues start
 * from the beginning of its own log, under its own namespace. The other store's state is dropped when no
 * process of it is running (none holds a lease), and left in place when one is (a second deployment on
 * the same prefix) or when it cannot be attributed (pre-identity keys). With `refuse`, throws
 * ForeignStateError instead, having changed nothing.
 */
export async function claimStoreNamespace(
  redis: Redis,
  prefix: string,
  storeId: string,
  policy: ForeignStatePolicy,
  log: { warn: LogFn; error: LogFn },
  /** The store's log: this store's own state is checked against it when given. */
  logView?: StoreLogView,
  /**
   * Whether this process's consumers may have read the namespace already (the claim finishing in the
   * background): then this store's state of a later point is not dropped under them, whatever the policy.
   */
  ownStateInUse: () => boolean = () => false,
): Promise<void> {
  if (logView) await claimOwnTimeline(redis, prefix, storeId, policy, log, logView, ownStateInUse);
  const keys = namespaceKeys(prefix);
  const previous = await redis.get(keys.owner);
  const foreign =
    previous !== null && previous !== storeId
      ? `the state of event store ${previous}`
      : previous === null && (await anyExists(redis, legacyKeys(prefix)))
        ? 'the state of an event store from before stores had ids'
        : undefined;
  if (foreign) {
    const message =
      `Redis prefix '${prefix}' holds ${foreign}, not of this event store ${storeId} ` +
      '(a fresh or different store beside an old Redis, or a second deployment on the same Redis and prefix)';
    if (policy === 'refuse') {
      const remedy = previous ? `; once it is not wanted: npx snapcat redis forget ${previous}` : '';
      throw new ForeignStateError(
        `${message}; refusing to start (SNAPCAT_ON_FOREIGN_READ_MODEL=refuse)${remedy}`,
      );
    }
    let other = 'the other state is left in place';
    if (previous && (await storeIsRunning(redis, prefix, previous))) {
      other +=
        ` (a process of store ${previous} holds a lease: it is running; once it is gone, remove its ` +
        `state with: npx snapcat redis forget ${previous})`;
    } else if (previous) {
      const deleted = await forgetStoreState(redis, prefix, previous);
      other = `store ${previous}'s state was dropped (${deleted} keys; no process of it holds a lease)`;
    }
    log.warn(
      `${message}: this store's read model, positions and queues are built from the start of its log under ` +
        `'${storeNamespace(prefix, storeId)}'; ${other}`,
      { previousStore: previous ?? 'unknown', store: storeId },
    );
  }
  // Two commands, not one transaction: the two keys may live in different slots of a cluster.
  await redis.hset(keys.stores, storeId, new Date().toISOString());
  await redis.set(keys.owner, storeId);
}

/**
 * Records the store on the prefix again when Redis lost that record while the store's processes run (a
 * FLUSHDB, a failover to an empty replica): without it a second store started on the prefix later is told
 * nothing of this one's state (neither `refuse` nor the warning), and `snapcat redis stores` leaves it out.
 * A record of another store is left as it is (that store started since: a second deployment on the prefix).
 */
export async function keepStoreRecorded(
  redis: Redis,
  prefix: string,
  storeId: string,
  log: { warn: LogFn },
): Promise<void> {
  const keys = namespaceKeys(prefix);
  if ((await redis.exists(keys.owner)) > 0) return;
  await redis.hset(keys.stores, storeId, new Date().toISOString());
  if ((await redis.set(keys.owner, storeId, 'NX')) === 'OK') {
    log.warn(
      `Redis lost the record of event store ${storeId} on prefix '${prefix}' (flushed?): recorded again`,
    );
  }
}

/**
 * This store's namespace against its log: where saved positions lie past the log's end, the state is of
 * another timeline of the store and is dropped, loudly (its consumers rebuild from this log: the read model
 * from the start, the process manager from every job's state, webhooks from their durable checkpoint in
 * the store), or, with `refuse`, the start is refused.
 */
async function claimOwnTimeline(
  redis: Redis,
  prefix: string,
  storeId: string,
  policy: ForeignStatePolicy,
  log: { error: LogFn },
  logView: StoreLogView,
  ownStateInUse: () => boolean,
): Promise<void> {
  const namespace = storeNamespace(prefix, storeId);
  const past = await positionsPastEnd(redis, namespace, () => logView.logEnd());
  const elsewhere = past.length === 0 ? await markNotInLog(redis, namespace, logView) : undefined;
  if (past.length === 0 && !elsewhere) return;
  const message = elsewhere
    ? `Redis holds the state of another timeline of event store ${storeId}'s log (${elsewhere}): a copy of ` +
      'the store (a restored backup, say) that wrote events of its own ran on this Redis and prefix since'
    : `Redis holds the state of a later point of event store ${storeId}'s log than the store has ` +
      `(positions past its end: ${past.slice(0, 3).join(', ')}): a backup of the store restored, or a copy ` +
      'of it run on the same Redis and prefix';
  if (ownStateInUse()) {
    // Redis answered only after this process went on: its consumers may hold those positions already, and a
    // drop under them would leave them skipping every event up to there. A restart claims before they start.
    throw new ForeignStateError(
      `${message}; this process started its consumers while Redis did not answer, so it stops here and its ` +
        'restart drops that state and rebuilds from this log',
    );
  }
  if (await storeIsRunning(redis, prefix, storeId)) {
    // A process of the other timeline is running on that state: dropping it under that process would leave two
    // logs feeding one namespace (whichever holds a lease projects and enqueues from its own), whatever the
    // policy says about state nobody uses.
    throw new ForeignStateError(
      `${message}, and a process of it holds a lease on that state (it is running); refusing to start. ` +
        'Stop the other copy (its leases expire within 5 s), or give this one another SNAPCAT_QUEUE_PREFIX',
    );
  }
  if (policy === 'refuse') {
    throw new ForeignStateError(
      `${message}; refusing to start (SNAPCAT_ON_FOREIGN_READ_MODEL=refuse). To drop it and rebuild ` +
        'from this log, start once with SNAPCAT_ON_FOREIGN_READ_MODEL=rebuild',
    );
  }
  const deleted = await forgetStoreState(redis, prefix, storeId);
  log.error(`${message}: that state was dropped (${deleted} keys) and is rebuilt from this log`, {
    store: storeId,
  });
}
