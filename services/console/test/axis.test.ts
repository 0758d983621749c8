import { byteTicks, formatByteTick } from '../src/axis';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('byteTicks', () => {
  it('steps by the smallest power of two that makes at most `most` steps', () => {
    // 0 to 48.3 KiB (45,000 B and a tenth above): not 10,000 B steps (9.8 KiB, 19.5 KiB...), but 8 KiB ones.
    expect(byteTicks(0, 49_500, 7)).toEqual([0, 8, 16, 24, 32, 40, 48].map((k) => k * KiB));
    expect(byteTicks(0, 49_500, 5)).toEqual([0, 16, 32, 48].map((k) => k * KiB));
    expect(byteTicks(0, 3.3 * MiB, 7)).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3].map((m) => m * MiB));
    expect(byteTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
  });

  it('starts at the first step within the range, and never steps by less than a byte', () => {
    expect(byteTicks(3 * KiB, 9 * KiB, 3)).toEqual([4 * KiB, 6 * KiB, 8 * KiB]);
    expect(byteTicks(3 * KiB, 9 * KiB, 2)).toEqual([4 * KiB, 8 * KiB]);
    expect(byteTicks(0, 1, 10)).toEqual([0, 1]);
    expect(byteTicks(0, 0.5, 10)).toEqual([0]);
  });

  it('every tick of any range is a multiple of a power of two, at most `most` + 1 of them', () => {
    for (const max of [1, 7, 1000, 45_000, 1_500_000, 3e9, 7.7e12]) {
      for (const most of [2, 4, 5, 7, 12]) {
        const ticks = byteTicks(0, max, most);
        expect(ticks.length).toBeLessThanOrEqual(most + 1);
        expect(ticks.length).toBeGreaterThanOrEqual(Math.min(2, Math.floor(max) + 1));
        const step = ticks[1]! - ticks[0]!;
        expect(Math.log2(step) % 1).toBe(0);
        ticks.forEach((tick, i) => expect(tick).toBe(i * step));
      }
    }
  });

  it('has none for a range that is not one', () => {
    expect(byteTicks(5, 1, 5)).toEqual([]);
    expect(byteTicks(0, NaN, 5)).toEqual([]);
    expect(byteTicks(0, Infinity, 5)).toEqual([]);
  });
});

describe('formatByteTick', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [8 * KiB, '8 KiB'],
    [48 * KiB, '48 KiB'],
    [768 * KiB, '768 KiB'],
    [MiB, '1 MiB'],
    [1.25 * MiB, '1.25 MiB'],
    [1.5 * 1024 * MiB, '1.5 GiB'],
    [2 ** 50, '1 PiB'],
    [2 ** 60, '1024 PiB'],
  ])('%p is %p', (bytes, label) => {
    expect(formatByteTick(bytes)).toBe(label);
  });

  it('labels every tick of byteTicks exactly, with at most two decimals', () => {
    for (const max of [1000, 45_000, 1_500_000, 3e9]) {
      for (const tick of byteTicks(0, max, 7))
        expect(formatByteTick(tick)).toMatch(/^\d+(\.\d{1,2})? [KMGT]?i?B$/);
    }
  });
});
