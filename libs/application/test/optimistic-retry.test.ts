import { randomUUID } from 'node:crypto';
import { StoreUnavailableError, WrongExpectedVersionError, type EventStore } from '@snapcat/event-store';
import { ConcurrencyExhaustedError, OptimisticRetry } from '../src';
import { embeddedStores } from './stores';

/** A lost race as the store reports it: an append expecting a revision another writer moved past. */
async function lostRace(store: EventStore): Promise<unknown> {
  const event = () => [{ id: randomUUID(), type: 'E', data: {} }];
  await store.append('retry-test', event(), 'no_stream');
  return store.append('retry-test', event(), 'no_stream').catch((error: unknown) => error);
}

describe.each(embeddedStores)('optimistic retry on $name', (adapter) => {
  let opened: ReturnType<(typeof adapter)['open']>;
  beforeEach(() => {
    opened = adapter.open();
  });
  afterEach(() => opened.close());

  it('takes the store’s WrongExpectedVersionError for a lost race, and nothing else', async () => {
    const conflict = await lostRace(opened.store);
    expect(conflict).toBeInstanceOf(WrongExpectedVersionError);
    expect(OptimisticRetry.lostRace(conflict)).toBe(true);
    expect(OptimisticRetry.lostRace(new StoreUnavailableError('down'))).toBe(false);
  });

  it('lets `attempts` attempts through, then fails with ConcurrencyExhaustedError by default', async () => {
    const conflict = (await lostRace(opened.store)) as WrongExpectedVersionError;
    const retry = new OptimisticRetry({ attempts: 3 });
    await retry.beforeNext('job-1', 0, conflict);
    await retry.beforeNext('job-1', 1, conflict);
    const exhausted = retry.beforeNext('job-1', 2, conflict);
    await expect(exhausted).rejects.toBeInstanceOf(ConcurrencyExhaustedError);
    await expect(exhausted).rejects.toMatchObject({ jobId: 'job-1' });
  });

  it('fails with what `exhausted` makes of the last lost race', async () => {
    const conflict = (await lostRace(opened.store)) as WrongExpectedVersionError;
    const retry = new OptimisticRetry({ attempts: 1, exhausted: (_id, last) => last });
    await expect(retry.beforeNext('s', 0, conflict)).rejects.toBe(conflict);
  });
});

describe('optimistic retry', () => {
  it('pauses after a lost append at most 2^attempt ms (64 ms at most), and not when nothing was lost', async () => {
    const retry = new OptimisticRetry({ attempts: 100 });
    const conflict = new WrongExpectedVersionError('s', 0n, 1n);
    const took = async (attempt: number, lost?: WrongExpectedVersionError) => {
      const started = performance.now();
      await retry.beforeNext('s', attempt, lost);
      return performance.now() - started;
    };
    for (let i = 0; i < 5; i += 1) expect(await took(0, conflict)).toBeLessThan(20);
    expect(await took(50)).toBeLessThan(20);
    const long = await Promise.all(Array.from({ length: 20 }, () => took(50, conflict)));
    expect(Math.max(...long)).toBeLessThan(64 + 40);
    expect(Math.max(...long)).toBeGreaterThan(10); // 20 random pauses in [0, 64): some are long
  });

  it('makes at least one attempt', () => {
    expect(() => new OptimisticRetry({ attempts: 0 })).toThrow(RangeError);
  });
});
