import type { Redis } from 'ioredis';
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

/** Keys that snapcat wrote before stores had ids, directly under the prefix: state of an unknown store. */
const legacyKeys = (prefix: string) => [
  `${prefix}:rm:current`,
  `${prefix}:pm:position`,
  `${prefix}:wh:position`,
  `${prefix}:jobs`,
];

/** Leases a running process of a store renews every second: projector, process manager, webhook dispatcher. */
const LIVE_LEASES = ['rm:lease', 'pm:lease', 'wh:lease'];

/** Whether some process of the store is running: it holds one of the leases in its namespace. */
async function storeIsRunning(redis: Redis, prefix: string, storeId: string): Promise<boolean> {
  const ns = storeNamespace(prefix, storeId);
  return (await redis.exists(...LIVE_LEASES.map((lease) => `${ns}:${lease}`))) > 0;
}

/** Deletes everything snapcat keeps in Redis for a store (its namespace); the number of keys deleted. */
export async function forgetStoreState(redis: Redis, prefix: string, storeId: string): Promise<number> {
  let deleted = 0;
  for await (const keys of scanKeys(redis, `${storeNamespace(prefix, storeId)}:*`)) {
    deleted += await redis.unlink(...keys);
  }
  await redis.hdel(namespaceKeys(prefix).stores, storeId);
  return deleted;
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
  log: { warn: LogFn },
): Promise<void> {
  const keys = namespaceKeys(prefix);
  const previous = await redis.get(keys.owner);
  const foreign =
    previous !== null && previous !== storeId
      ? `the state of event store ${previous}`
      : previous === null && (await redis.exists(...legacyKeys(prefix))) > 0
        ? 'the state of an event store from before stores had ids'
        : undefined;
  if (foreign) {
    const message =
      `Redis prefix '${prefix}' holds ${foreign}, not of this event store ${storeId} ` +
      '(a fresh or different store beside an old Redis, or a second deployment on the same Redis and prefix)';
    if (policy === 'refuse') {
      throw new ForeignStateError(`${message}; refusing to start (SNAPCAT_ON_FOREIGN_READ_MODEL=refuse)`);
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
