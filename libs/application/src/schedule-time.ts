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
