import { mirrorOffset } from '../src/flink';

/*
 * Each managed job's mirror polls at an offset of its own within the poll interval, so that the requests
 * to a cluster are spread evenly (benchmark #16). Flink's fixed job ids (a 32-bit hash, then zeros) share
 * their first digits: the offset must come from the whole id.
 */
describe('the mirror offset of a managed job', () => {
  const pollMs = 5_000;

  it('is within the poll interval, and the same for the same job', () => {
    const jobId = 'a3f0c1d2e4b5968778695a4b3c2d1e0f';
    const offset = mirrorOffset(jobId, pollMs);
    expect(offset).toBeGreaterThanOrEqual(0);
    expect(offset).toBeLessThan(pollMs);
    expect(mirrorOffset(jobId, pollMs)).toBe(offset);
  });

  it('spreads ids that share their first 16 digits over the interval', () => {
    const ids = Array.from(
      { length: 1_000 },
      (_, i) => `00000000${(i * 7919).toString(16).padStart(8, '0')}${'0'.repeat(16)}`,
    );
    const perSecond = new Array<number>(pollMs / 1000).fill(0);
    for (const id of ids) perSecond[Math.floor(mirrorOffset(id, pollMs) / 1000)]! += 1;
    // 200 a second on average; a prefix-derived offset would put all 1,000 on one instant.
    for (const n of perSecond) expect(n).toBeGreaterThan(150);
    expect(new Set(ids.map((id) => mirrorOffset(id, pollMs))).size).toBeGreaterThan(800);
  });
});
