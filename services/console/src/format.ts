// Formatting for people: byte counts, durations, instants relative to now. Pure (no DOM, no clock: `now` is
// an argument), unit-tested in test/format.test.ts.

export const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1234567 → "1.2 MiB" (binary units; three significant digits at most); null → "—". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  if (value < 1024) return `${sign}${Math.round(value)} B`;
  let unit = -1;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // 1023.95 KiB would print as "1024.0 KiB": carry it to the next unit.
  if (value >= 999.95 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value < 100 ? 1 : 0;
  return `${sign}${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** 850 → "850 ms", 1500 → "1.5 s", 125000 → "2 min 5 s", 7260000 → "2 h 1 min"; null → "—". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${Math.round(abs)} ms`;
  if (abs < 60_000) return `${sign}${(abs / 1000).toFixed(abs < 10_000 ? 1 : 0)} s`;
  const seconds = Math.round(abs / 1000);
  if (seconds < 3600) {
    const s = seconds % 60;
    return `${sign}${Math.floor(seconds / 60)} min${s ? ` ${s} s` : ''}`;
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 48 * 60) {
    const m = minutes % 60;
    return `${sign}${Math.floor(minutes / 60)} h${m ? ` ${m} min` : ''}`;
  }
  return `${sign}${Math.round(minutes / 1440)} d`;
}

/** Milliseconds since the epoch of an ISO string (or null when absent or not a date). */
export function toMillis(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const at = Date.parse(iso);
  return Number.isNaN(at) ? null : at;
}

/** How long before `now` (negative: after) `iso` is, in ms; null when absent. */
export function ageOf(iso: string | null | undefined, now: number): number | null {
  const at = toMillis(iso);
  return at === null ? null : now - at;
}

/** An instant relative to now: "just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago", "in 4 min". */
export function formatRelative(iso: string | null | undefined, now: number): string {
  const age = ageOf(iso, now);
  if (age === null) return '—';
  const abs = Math.abs(age);
  if (abs < 5000) return age >= 0 ? 'just now' : 'in a moment';
  let text: string;
  if (abs < 60_000) text = `${Math.floor(abs / 1000)} s`;
  else if (abs < 3_600_000) text = `${Math.floor(abs / 60_000)} min`;
  else if (abs < 86_400_000) text = `${Math.floor(abs / 3_600_000)} h`;
  else text = `${Math.floor(abs / 86_400_000)} d`;
  return age >= 0 ? `${text} ago` : `in ${text}`;
}

/** Whether a checkpoint completed at `iso` is older than `minutes` (a missing one is not stale here). */
export function isStale(iso: string | null | undefined, minutes: number, now: number): boolean {
  const age = ageOf(iso, now);
  return age !== null && Number.isFinite(minutes) && minutes >= 0 && age > minutes * 60_000;
}

const ISO_DURATION =
  /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i;

/** An ISO-8601 duration (PT10M, P1D, PT1H30M) in milliseconds; null when it is not one (or has Y/M parts). */
export function parseIsoDuration(text: string): number | null {
  const match = ISO_DURATION.exec(text.trim());
  if (!match || text.trim().toUpperCase() === 'P' || /T$/i.test(text.trim())) return null;
  const [weeks, days, hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0));
  return (
    ((((weeks ?? 0) * 7 + (days ?? 0)) * 24 + (hours ?? 0)) * 60 + (minutes ?? 0)) * 60_000 +
    (seconds ?? 0) * 1000
  );
}

/** "PT10M" → "10 min", "PT1H30M" → "1 h 30 min"; what it cannot read, as given. */
export function formatIsoDuration(text: string): string {
  const ms = parseIsoDuration(text);
  return ms === null ? text : formatDuration(ms);
}

/** A savepoint schedule in words: "every 10 min", "cron 0 * * * * (Europe/Paris)". */
export function describeSchedule(schedule: {
  every?: string | null;
  cron?: string | null;
  tz?: string | null;
}) {
  if (schedule.every) return `every ${formatIsoDuration(schedule.every)}`;
  if (schedule.cron) return `cron ${schedule.cron} (${schedule.tz || 'UTC'})`;
  return '—';
}

/** "3 / 1 / 0" style counts never need more; a plural for the odd sentence. */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
