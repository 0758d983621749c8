import IORedis, { type Redis } from 'ioredis';

/** A Redis connection as BullMQ workers need it (no per-request retry limit, so blocking calls survive). */
export function connectRedis(url: string): Redis {
  return new IORedis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
}
