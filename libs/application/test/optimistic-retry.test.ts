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
  it('pauses after a lost append for a random share of 2^attempt ms (64 ms at most), and not when nothing was lost', async () => {
    const asked: number[] = [];
    let draw = 0;
    const retry = new OptimisticRetry({
      attempts: 100,
      pause: async (ms) => void asked.push(ms),
      random: () => [0.5, 0.999, 0][draw++ % 3]!,
    });
    const conflict = new WrongExpectedVersionError('s', 0n, 1n);
    await retry.beforeNext('s', 50); // nothing lost: no pause
    expect(asked).toEqual([]);
    for (const attempt of [0, 3, 6, 50]) await retry.beforeNext('s', attempt, conflict);
    expect(asked).toEqual([0.5 * 1, 0.999 * 8, 0 * 64, 0.5 * 64]);
  });

  it('takes its pauses on a timer by default', async () => {
    const retry = new OptimisticRetry({ attempts: 100, random: () => 0.99 });
    const started = performance.now();
    await retry.beforeNext('s', 6, new WrongExpectedVersionError('s', 0n, 1n));
    expect(performance.now() - started).toBeGreaterThanOrEqual(60); // 0.99 x 64 ms, a lower bound only
  });

  it('makes at least one attempt', () => {
    expect(() => new OptimisticRetry({ attempts: 0 })).toThrow(RangeError);
  });
});
