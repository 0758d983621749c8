// The ticks of a chart's byte axis. uPlot's own step a power of ten (2000, 4000 B), labelled in binary units
// ("2.0 KiB", "3.9 KiB") its ticks read as rounded; stepping by a power of two, every tick is a whole number of
// bytes, KiB, MiB..., or an exact half or quarter of one. Pure; unit-tested in test/axis.test.ts.
import { BYTE_UNITS } from './format';

const UNITS = ['B', ...BYTE_UNITS];

/**
 * Ticks from `min` to `max` (both included when they fall on a step), at most `most` steps apart over the
 * range: multiples of the smallest power of two (1 B at least) that makes no more steps than that.
 */
export function byteTicks(min: number, max: number, most: number): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) return [];
  let step = 1;
  while ((max - min) / step > Math.max(1, most)) step *= 2;
  const ticks: number[] = [];
  for (let tick = Math.ceil(min / step) * step; tick <= max; tick += step) ticks.push(tick);
  return ticks;
}

/** A byte tick for people, exactly: in the largest unit it holds one of, "0 B", "512 B", "8 KiB", "1.25 MiB". */
export function formatByteTick(bytes: number): string {
  let unit = 0;
  while (unit < UNITS.length - 1 && Math.abs(bytes) >= 1024 ** (unit + 1)) unit += 1;
  // Up to three decimals: a tick that is not an exact power-of-two step (none of byteTicks') rounds there.
  return `${Number((bytes / 1024 ** unit).toFixed(3))} ${UNITS[unit]}`;
}
