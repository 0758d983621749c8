import IORedis, { type Redis } from 'ioredis';

/**
 * A Redis connection as BullMQ workers need it (no per-request retry limit, so blocking calls survive).
 * `autoPipelining`: commands issued in the same turn of the event loop go out in one write (for readers
 * that serve many concurrent requests; not for BullMQ's blocking connections).
 */
export function connectRedis(url: string, { autoPipelining = false } = {}): Redis {
  return new IORedis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: false,
    enableAutoPipelining: autoPipelining,
  });
}
