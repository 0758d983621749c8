import type { Redis } from 'ioredis';
import {
  BurstyRateLimiter,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { RateLimiter } from './access';

/** A lease is a hundredth of the per-second limit, at most (docs/decisions/0028). */
const LEASE_FRACTION = 100;
const MAX_LEASE = 100;
/** Past this many callers with a lease, expired leases are dropped when a new one is taken, once a second. */
const LEASES_KEPT = 10_000;

/**
 * SNAPCAT_RATE_LIMIT requests per second per caller (rate-limiter-flexible), plus a burst allowance of as
 * many again per 10 s. On the service's Redis, so that replicas share one budget per caller; while Redis does
 * not answer, each process counts on its own (an in-memory insurance limiter) rather than refuse or wait.
 * Without Redis, in memory. `perSecond` 0: no limiter. On Redis, with a limit of 200 a second or more, each
 * process takes a caller's points in leases (`leasing`) rather than one round trip per request.
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
  const rate = make('rate', perSecond, 1);
  const limiter = new BurstyRateLimiter(rate, make('burst', perSecond, 10));
  const exact: RateLimiter = {
    consume: async (key) => {
      try {
        await limiter.consume(key);
        return ALLOWED;
      } catch (error) {
        if (error instanceof RateLimiterRes) return { allowed: false, retryAfterMs: error.msBeforeNext };
        throw error;
      }
    },
  };
  const lease = Math.min(MAX_LEASE, Math.floor(perSecond / LEASE_FRACTION));
  return redis && lease >= 2 ? leasing(rate, exact, lease) : exact;
}

const ALLOWED = { allowed: true } as const;

/** What a lease is taken from: the shared per-second limit (rate-limiter-flexible's `consume`). */
export interface PointsLimiter {
  /** Resolves when the points were granted, rejects with a RateLimiterRes when they were not. */
  consume(key: string, points: number): Promise<Pick<RateLimiterRes, 'msBeforeNext'>>;
}

interface Lease {
  left: number;
  /** When the window the points were taken in ends, by this process's clock, at the latest. */
  until: number;
  /** The window had fewer points left than a lease: until it ends, each request is counted exactly. */
  refused: boolean;
}

/**
 * Serves a caller's requests from leases of `size` points taken at once from the shared per-second limit,
 * so that a busy caller costs one Redis round trip per `size` requests instead of one each. A lease lasts
 * until the window it was taken in ends, never longer, so leased requests are counted in the window they
 * are served in and no caller gets more than its limit. Requests that find no lease wait for the one being
 * taken (one round trip per caller at a time), and for the next if others drained it first. When the
 * window has fewer than `size` points left the lease is refused (Redis counts the refused points too), and
 * until that window ends every request goes to `exact`, the limiter without leases (the burst allowance,
 * then 429). The cost: a caller near its limit may reach its burst allowance up to `size` requests early
 * each second, once per process (decision 0028).
 */
export function leasing(
  rate: PointsLimiter,
  exact: RateLimiter,
  size: number,
  now: () => number = Date.now,
): RateLimiter {
  const leases = new Map<string, Lease>();
  const taking = new Map<string, Promise<void>>();
  let sweptAt = -Infinity; // a lease lasts a second at most: sweeping more often than that finds little
  const take = (key: string): boolean => {
    const lease = leases.get(key);
    if (!lease || lease.refused || lease.left === 0 || now() >= lease.until) return false;
    lease.left -= 1;
    return true;
  };
  const refill = async (key: string): Promise<void> => {
    const sent = now(); // the window's end is at least as far from here as Redis says when it answers
    let lease: Lease;
    try {
      const granted = await rate.consume(key, size);
      lease = { left: size, until: sent + granted.msBeforeNext, refused: false };
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      lease = { left: 0, until: sent + error.msBeforeNext, refused: true };
    }
    if (leases.size >= LEASES_KEPT && sent - sweptAt >= 1000) {
      sweptAt = sent;
      for (const [k, l] of leases) if (l.until <= sent) leases.delete(k);
    }
    leases.set(key, lease);
  };
  return {
    consume: async (key) => {
      for (;;) {
        if (take(key)) return ALLOWED;
        const lease = leases.get(key);
        if (lease?.refused && now() < lease.until) return exact.consume(key);
        let pending = taking.get(key);
        if (!pending) {
          pending = refill(key).finally(() => taking.delete(key));
          taking.set(key, pending);
        }
        await pending; // then take from it, or from the next one if others drained it first
      }
    },
  };
}
