import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Renews our lease, or takes it when nobody holds it; 1 when we hold it afterwards. */
const ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Sets KEYS[2] to ARGV[2] while KEYS[1] names us; 1 when set. */
const SET_WHILE_HELD = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2]) return 1 end return 0`;

/** A write refused because this process no longer holds the lease it was made under. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

/**
 * A lease in Redis that one process of the cluster holds at a time, for the consumers of the log that
 * must be single (the process manager upserts schedulers; the webhook dispatcher enqueues deliveries).
 * The holder renews it well within `ttlMs`; when it dies, another process takes over after `ttlMs`.
 */
export class RedisLease {
  /** What the lease key holds while this process has the lease. */
  readonly holder = randomUUID();

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly ttlMs = 5000,
  ) {}

  /** Takes or renews the lease; true when this process holds it. */
  async acquire(): Promise<boolean> {
    return (await this.redis.eval(ACQUIRE, 1, this.key, this.holder, this.ttlMs)) === 1;
  }

  /**
   * Sets `key` (in the lease's hash slot) to `value` only while this process holds the lease, in one step:
   * a holder deposed meanwhile (paused past the TTL) cannot overwrite what its successor wrote.
   */
  async setWhileHeld(key: string, value: string): Promise<boolean> {
    return (await this.redis.eval(SET_WHILE_HELD, 2, this.key, key, this.holder, value)) === 1;
  }

  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.holder).catch(() => undefined);
  }
}
