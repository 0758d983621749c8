import { CronExpressionParser } from 'cron-parser';
import { durationMs, type SavepointSchedule } from '@snapcat/domain';

/** Checks a cron expression (5 or 6 fields, seconds first when 6) and its time zone; returns the problem or null. */
export function cronProblem(cron: string, tz?: string): string | null {
  if (tz !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
    } catch {
      return `unknown time zone ${tz}`;
    }
  }
  try {
    CronExpressionParser.parse(cron, tz ? { tz } : {});
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * When the schedule fires next after `now`, the way BullMQ plans it: `every` slots are aligned to
 * multiples of the interval since the epoch; cron slots follow the expression in its time zone.
 */
export function nextFireTime(schedule: SavepointSchedule, now: number): number {
  if (schedule.every) {
    const every = durationMs(schedule.every);
    return Math.floor(now / every) * every + every;
  }
  const expression = CronExpressionParser.parse(schedule.cron!, {
    currentDate: new Date(now),
    ...(schedule.tz ? { tz: schedule.tz } : {}),
  });
  return expression.next().getTime();
}

/** The latest instant a Date holds (ECMAScript: 8.64e15 ms after the epoch). */
const LATEST_DATE_MS = 8.64e15;

/** How far apart an `every` schedule's slots may be: a century, beyond any savepoint policy. */
export const MAX_EVERY_DAYS = 36_525;

/**
 * When the schedule fires next after `now` (ISO-8601), or null if it never does: a cron expression no date
 * matches (`0 0 0 31 2,4 *`), or a slot beyond what a Date holds (an interval recorded before requests were
 * held to MAX_EVERY_DAYS).
 */
export function nextFireAt(schedule: SavepointSchedule, now: number): string | null {
  let next: number;
  try {
    next = nextFireTime(schedule, now);
  } catch {
    return null;
  }
  return Number.isFinite(next) && next <= LATEST_DATE_MS ? new Date(next).toISOString() : null;
}

/** What is wrong with a schedule a request sets, naming its field and the rule; null when nothing is. */
export function scheduleProblem(
  schedule: SavepointSchedule,
  now: number,
): { field: 'every' | 'cron' | 'tz'; rule: string; message: string } | null {
  if (schedule.every !== undefined) {
    if (durationMs(schedule.every) <= MAX_EVERY_DAYS * 86_400_000) return null;
    return { field: 'every', rule: 'at-most-a-century', message: `must be at most P${MAX_EVERY_DAYS}D` };
  }
  if (schedule.cron === undefined) return null;
  const problem = cronProblem(schedule.cron, schedule.tz);
  if (problem?.startsWith('unknown time zone'))
    return { field: 'tz', rule: 'iana-time-zone', message: problem };
  if (problem) return { field: 'cron', rule: 'cron-expression', message: problem };
  if (nextFireAt(schedule, now) !== null) return null;
  return { field: 'cron', rule: 'fires', message: 'never fires: no date matches the expression' };
}

/** The newest slot of the schedule at or before `now`. */
export function previousFireTime(schedule: SavepointSchedule, now: number): number {
  if (schedule.every) {
    const every = durationMs(schedule.every);
    return Math.floor(now / every) * every;
  }
  const expression = CronExpressionParser.parse(schedule.cron!, {
    currentDate: new Date(now + 1),
    ...(schedule.tz ? { tz: schedule.tz } : {}),
  });
  return expression.prev().getTime();
}
