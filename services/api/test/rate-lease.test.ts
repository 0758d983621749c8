import fc from 'fast-check';
import IORedis from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { deleteKeys } from '../../../test/support/redis';
import type { RateLimiter } from '../src/access';
import { createRateLimiter, leasing, type PointsLimiter } from '../src/rate-limit';

/*
 * Issue 22: each process serves a busy caller's requests from leases of its shared per-second budget
 * (decision 0028). What must hold: no window lets a caller more than its limit through the leases, a lease is
 * never used past the window it was taken in, and a caller near its limit is still counted exactly.
 */

/**
 * Redis's fixed window as rate-limiter-flexible's script keeps it (the key appears with the first points and
 * expires `windowMs` later; refused points are counted too), on a clock the test moves.
 */
class FixedWindow implements PointsLimiter {
  windowStart = -Infinity;
  consumed = 0;
  calls = 0;
  /** Points granted per window, by window start. */
  readonly granted = new Map<number, number>();
  constructor(
    readonly limit: number,
    readonly clock: { now: number },
    readonly windowMs = 1000,
  ) {}
  async consume(_key: string, points: number) {
    this.calls += 1;
    if (this.clock.now >= this.windowStart + this.windowMs) {
      this.windowStart = this.clock.now;
      this.consumed = 0;
    }
    this.consumed += points;
    const res = new RateLimiterRes(
      Math.max(0, this.limit - this.consumed),
      this.windowStart + this.windowMs - this.clock.now,
      this.consumed,
    );
    if (this.consumed > this.limit) throw res;
    this.granted.set(this.windowStart, (this.granted.get(this.windowStart) ?? 0) + points);
    return res;
  }
  windowOf(t: number): number {
    return this.windowStart <= t && t < this.windowStart + this.windowMs ? this.windowStart : NaN;
  }
}

/** The limiter without leases, as the test sees it: counts its calls and allows them all. */
function countingExact() {
  const exact = { calls: 0 } as RateLimiter & { calls: number };
  exact.consume = async () => {
    exact.calls += 1;
    return { allowed: true };
  };
  return exact;
}

describe('leases of a caller’s rate limit', () => {
  it('never serves more leased requests in a window than the points the window granted, nor past its end', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 20 }),
        fc.integer({ min: 2, max: 60 }),
        fc.array(
          fc.record({
            replica: fc.integer({ min: 0, max: 2 }),
            advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 700 })),
            together: fc.integer({ min: 1, max: 8 }),
          }),
          { maxLength: 80 },
        ),
        async (size, limit, steps) => {
          const clock = { now: 0 };
          const shared = new FixedWindow(limit, clock);
          const exact = countingExact();
          const replicas = [0, 1, 2].map(() => leasing(shared, exact, size, () => clock.now));
          // Requests served from a lease, by the window they were served in.
          const leased = new Map<number, number>();
          for (const { replica, advanceMs, together } of steps) {
            clock.now += advanceMs;
            const before = exact.calls;
            const verdicts = await Promise.all(
              Array.from({ length: together }, () => replicas[replica]!.consume('caller')),
            );
            expect(verdicts.every((v) => v.allowed)).toBe(true);
            const fromLeases = together - (exact.calls - before);
            if (fromLeases === 0) continue;
            const window = shared.windowOf(clock.now);
            expect(window).not.toBeNaN(); // a lease is only ever used inside the window it came from
            leased.set(window, (leased.get(window) ?? 0) + fromLeases);
          }
          for (const [window, served] of leased) {
            expect(served).toBeLessThanOrEqual(shared.granted.get(window)!);
            expect(served).toBeLessThanOrEqual(limit);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('takes one lease for concurrent requests at a time, as many as they need, and serves the rest of it without asking', async () => {
    const clock = { now: 0 };
    const shared = new FixedWindow(1000, clock);
    const exact = countingExact();
    const limiter = leasing(shared, exact, 10, () => clock.now);
    await Promise.all(Array.from({ length: 10 }, () => limiter.consume('caller')));
    expect([shared.calls, exact.calls]).toEqual([1, 0]);
    await Promise.all(Array.from({ length: 25 }, () => limiter.consume('caller')));
    expect([shared.calls, exact.calls, shared.consumed]).toEqual([4, 0, 40]);
    // Another caller has a lease of its own.
    await limiter.consume('other');
    expect(shared.calls).toBe(5);
  });

  it('near the limit, counts each request exactly until the window ends, then leases again', async () => {
    const clock = { now: 0 };
    const shared = new FixedWindow(25, clock);
    const exact = countingExact();
    const limiter = leasing(shared, exact, 10, () => clock.now);
    for (let i = 0; i < 20; i++) await limiter.consume('caller'); // two leases: 20 of 25 points
    expect([shared.calls, exact.calls]).toEqual([2, 0]);
    for (let i = 0; i < 5; i++) await limiter.consume('caller');
    // The third lease is refused (5 points left): one refused lease, then each request exactly.
    expect([shared.calls, exact.calls]).toEqual([3, 5]);
    clock.now = 999;
    await limiter.consume('caller');
    expect([shared.calls, exact.calls]).toEqual([3, 6]);
    clock.now = 1000; // a new window
    await limiter.consume('caller');
    expect([shared.calls, exact.calls]).toEqual([4, 6]);
  });

  it('a lease taken late in a window ends with it', async () => {
    const clock = { now: 0 };
    const shared = new FixedWindow(1000, clock);
    const exact = countingExact();
    const limiter = leasing(shared, exact, 10, () => clock.now);
    await limiter.consume('caller'); // the window runs from 0 to 1000
    clock.now = 999;
    await limiter.consume('caller');
    expect(shared.calls).toBe(1);
    clock.now = 1000;
    await limiter.consume('caller');
    expect(shared.calls).toBe(2);
  });

  it('a failure to take a lease reaches every request waiting for it', async () => {
    const exact = countingExact();
    const down: PointsLimiter = { consume: async () => Promise.reject(new Error('connection lost')) };
    const limiter = leasing(down, exact, 10);
    const verdicts = await Promise.allSettled([limiter.consume('caller'), limiter.consume('caller')]);
    expect(verdicts.map((v) => v.status)).toEqual(['rejected', 'rejected']);
    expect(exact.calls).toBe(0);
  });
});

describe('leases on Redis', () => {
  const prefix = `snapcat-test-lease-${process.pid}-${Date.now().toString(36)}`;
  let redis: IORedis;
  beforeAll(async () => {
    redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    await redis.ping(); // ready: until then the limiter counts in memory (its insurance)
  });
  afterAll(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('a limit of 1,000 a second leases 10 points at a time, per process; below 200 there are no leases', async () => {
    const make = (perSecond: number, name: string) =>
      createRateLimiter(perSecond, { client: redis, keyPrefix: `${prefix}:${name}` })!;
    const [a, b] = [make(1000, 'big'), make(1000, 'big')];
    const counted = async (name: string) => Number(await redis.get(`${prefix}:${name}:rate:caller`));
    for (let i = 0; i < 25; i++) expect((await a.consume('caller')).allowed).toBe(true);
    expect(await counted('big')).toBe(30);
    expect((await b.consume('caller')).allowed).toBe(true);
    expect(await counted('big')).toBe(40);
    const small = make(199, 'small');
    for (let i = 0; i < 3; i++) await small.consume('caller');
    expect(await counted('small')).toBe(3);
  });
});
