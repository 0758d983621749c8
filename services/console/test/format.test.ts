import {
  ageOf,
  describeSchedule,
  formatBytes,
  formatDuration,
  formatIsoDuration,
  formatRelative,
  isStale,
  parseIsoDuration,
  plural,
} from '../src/format';

const NOW = Date.parse('2026-12-01T12:00:00.000Z');
const before = (ms: number) => new Date(NOW - ms).toISOString();

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [1_258_291, '1.2 MiB'],
    [49_101_709, '46.8 MiB'],
    [150 * 1024 * 1024, '150 MiB'],
    [1024 ** 3 - 1, '1.0 GiB'],
    [5 * 1024 ** 4, '5.0 TiB'],
    [-2048, '-2.0 KiB'],
  ])('%d bytes → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('says — for what it does not know', () => {
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(undefined)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [850, '850 ms'],
    [1500, '1.5 s'],
    [42_000, '42 s'],
    [60_000, '1 min'],
    [125_000, '2 min 5 s'],
    [3_600_000, '1 h'],
    [7_260_000, '2 h 1 min'],
    [3 * 86_400_000, '3 d'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('says — for what it does not know', () => {
    expect(formatDuration(null)).toBe('—');
  });
});

describe('formatRelative', () => {
  it.each([
    [1000, 'just now'],
    [42_000, '42 s ago'],
    [3 * 60_000 + 5000, '3 min ago'],
    [5 * 3_600_000, '5 h ago'],
    [2 * 86_400_000 + 1000, '2 d ago'],
    [-4 * 60_000, 'in 4 min'],
    [-2000, 'in a moment'],
  ])('%d ms before now → %s', (ms, text) => {
    expect(formatRelative(before(ms), NOW)).toBe(text);
  });

  it('says — without an instant, or with one it cannot read', () => {
    expect(formatRelative(null, NOW)).toBe('—');
    expect(formatRelative('yesterday', NOW)).toBe('—');
  });
});

describe('staleness', () => {
  it('is the age of the instant against a threshold in minutes', () => {
    expect(ageOf(before(5000), NOW)).toBe(5000);
    expect(isStale(before(11 * 60_000), 10, NOW)).toBe(true);
    expect(isStale(before(9 * 60_000), 10, NOW)).toBe(false);
    expect(isStale(before(1000), 0, NOW)).toBe(true);
  });

  it('never calls a missing checkpoint stale, nor uses a meaningless threshold', () => {
    expect(isStale(null, 10, NOW)).toBe(false);
    expect(isStale(before(60_000), Number.NaN, NOW)).toBe(false);
    expect(isStale(before(60_000), -1, NOW)).toBe(false);
  });
});

describe('ISO-8601 durations', () => {
  it.each([
    ['PT10M', 600_000],
    ['PT1H30M', 5_400_000],
    ['P1D', 86_400_000],
    ['P1W', 7 * 86_400_000],
    ['PT0.5S', 500],
    ['pt15s', 15_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseIsoDuration(text)).toBe(ms);
  });

  it.each(['P', 'PT', '10M', 'P1Y', 'every minute'])('%s is not one it reads', (text) => {
    expect(parseIsoDuration(text)).toBeNull();
  });

  it('reads as words, or as given', () => {
    expect(formatIsoDuration('PT10M')).toBe('10 min');
    expect(formatIsoDuration('P1M')).toBe('P1M');
  });
});

describe('describeSchedule', () => {
  it('says an interval or a cron expression with its zone', () => {
    expect(describeSchedule({ every: 'PT10M' })).toBe('every 10 min');
    expect(describeSchedule({ cron: '0 * * * *', tz: 'Europe/Paris' })).toBe('cron 0 * * * * (Europe/Paris)');
    expect(describeSchedule({ cron: '0 * * * *', tz: null })).toBe('cron 0 * * * * (UTC)');
    expect(describeSchedule({})).toBe('—');
  });
});

it('plural', () => {
  expect(plural(1, 'job')).toBe('1 job');
  expect(plural(3, 'job')).toBe('3 jobs');
  expect(plural(0, 'entry', 'entries')).toBe('0 entries');
});
