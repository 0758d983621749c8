import type { Redis } from 'ioredis';
import {
  BurstyRateLimiter,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { RateLimiter } from './access';

/**
 * SNAPCAT_RATE_LIMIT requests per second per caller (rate-limiter-flexible), plus a burst allowance of as
 * many again per 10 s. On the service's Redis, so that replicas share one budget per caller; while Redis does
 * not answer, each process counts on its own (an in-memory insurance limiter) rather than refuse or wait.
 * Without Redis, in memory. `perSecond` 0: no limiter.
 */
export function createRateLimiter(
  perSecond: number,
  redis?: { client: Redis; keyPrefix: string },
): RateLimiter | undefined {
  if (perSecond <= 0) return undefined;
  const make = (name: string, points: number, duration: number): RateLimiterAbstract => {
    const memory = new RateLimiterMemory({ keyPrefix: name, points, duration });
    if (!redis) return memory;
    return new RateLimiterRedis({
      storeClient: redis.client,
      keyPrefix: `${redis.keyPrefix}:${name}`,
      points,
      duration,
      rejectIfRedisNotReady: true,
      insuranceLimiter: memory,
    });
  };
  const limiter = new BurstyRateLimiter(make('rate', perSecond, 1), make('burst', perSecond, 10));
  return {
    consume: async (key) => {
      try {
        await limiter.consume(key);
        return { allowed: true };
      } catch (error) {
        if (error instanceof RateLimiterRes) return { allowed: false, retryAfterMs: error.msBeforeNext };
        throw error;
      }
    },
  };
}
