// The job page's charts from its checkpoints: uPlot's aligned arrays (x in seconds since the epoch, ascending).
// Pure; unit-tested in test/series.test.ts.

export interface CheckpointSample {
  id: number;
  status: string;
  triggeredAt: string;
  completedAt: string | null;
  failedAt: string | null;
  stateSize: number;
  sharedStateSize: number | null;
  /** Bytes uploaded for the checkpoint (Flink's checkpointed_size); absent from older answers. */
  checkpointedSize?: number | null;
}

const ms = (iso: string | null): number | null => {
  if (!iso) return null;
  const at = Date.parse(iso);
  return Number.isNaN(at) ? null : at;
};

/**
 * A checkpoint that completed: it has a completion time, whatever its status now (one later subsumed is
 * DISCARDING or DISCARDED, and still completed when it did).
 */
export const hasCompleted = (s: CheckpointSample) => ms(s.completedAt) !== null;
export const hasFailed = (s: CheckpointSample) => s.status === 'FAILED' && ms(s.failedAt) !== null;

export interface SizeSeries {
  /** Completion times, seconds. */
  x: number[];
  /** The whole state of each checkpoint. */
  full: number[];
  /** Its shared (incremental) part; null where the view does not know it. */
  shared: (number | null)[];
  /** What the checkpoint uploaded (less than the whole state when INCREMENTAL); null where unknown. */
  uploaded: (number | null)[];
  points: number;
  /** The newest completed checkpoint's state size. */
  latest: number | null;
}

/** State size (full and shared) of every completed checkpoint, by completion time. */
export function sizeSeries(snapshots: readonly CheckpointSample[]): SizeSeries {
  const done = unique(snapshots)
    .filter(hasCompleted)
    .map((s) => ({ at: ms(s.completedAt)!, s }))
    .sort((a, b) => a.at - b.at || a.s.id - b.s.id);
  return {
    x: done.map(({ at }) => at / 1000),
    full: done.map(({ s }) => s.stateSize),
    shared: done.map(({ s }) => s.sharedStateSize ?? null),
    uploaded: done.map(({ s }) => s.checkpointedSize ?? null),
    points: done.length,
    latest: done.at(-1)?.s.stateSize ?? null,
  };
}

export interface DurationSeries {
  /** Completion times of the completed, failure times of the failed, merged, seconds. */
  x: number[];
  /** completedAt - triggeredAt (ms) where a checkpoint completed at x, else null. */
  duration: (number | null)[];
  /** failedAt - triggeredAt (ms) where one failed at x, else null. */
  failed: (number | null)[];
  points: number;
  failures: number;
  /** The newest completed checkpoint's duration. */
  latest: number | null;
}

/** How long each completed checkpoint took, by completion time; the failed ones marked at their failure time. */
export function durationSeries(snapshots: readonly CheckpointSample[]): DurationSeries {
  const rows = new Map<number, { duration: number | null; failed: number | null }>();
  const at = (x: number) => {
    let row = rows.get(x);
    if (!row) rows.set(x, (row = { duration: null, failed: null }));
    return row;
  };
  let points = 0;
  let failures = 0;
  let latest: { at: number; duration: number } | null = null;
  for (const s of unique(snapshots)) {
    const triggered = ms(s.triggeredAt);
    if (triggered === null) continue;
    const completed = ms(s.completedAt);
    const failed = s.status === 'FAILED' ? ms(s.failedAt) : null;
    if (completed !== null) {
      const duration = Math.max(0, completed - triggered);
      // Two completing in the same millisecond: one point, the longer duration (rare; never lose a failure).
      const row = at(completed);
      row.duration = row.duration === null ? duration : Math.max(row.duration, duration);
      points += 1;
      if (!latest || completed >= latest.at) latest = { at: completed, duration };
    } else if (failed !== null) {
      const row = at(failed);
      row.failed = Math.max(row.failed ?? 0, failed - triggered);
      failures += 1;
    }
  }
  const xs = [...rows.keys()].sort((a, b) => a - b);
  return {
    x: xs.map((x) => x / 1000),
    duration: xs.map((x) => rows.get(x)!.duration),
    failed: xs.map((x) => rows.get(x)!.failed),
    points,
    failures,
    latest: latest?.duration ?? null,
  };
}

/** One sample per snapshot id (pages fetched while new snapshots arrive may overlap). */
function unique<T extends { id: number }>(snapshots: readonly T[]): T[] {
  const byId = new Map<number, T>();
  for (const s of snapshots) byId.set(s.id, s);
  return [...byId.values()];
}

/**
 * The newest `cap` snapshots after a refetch of the newest page (`page`, newest first) over what was held
 * (`held`, newest first): the page's versions win. Null when the page does not reach back to what was held
 * (more new snapshots than one page holds): then everything must be fetched again.
 */
export function mergeNewest<T extends { id: number }>(
  held: readonly T[],
  page: readonly T[],
  pageComplete: boolean,
  cap: number,
): T[] | null {
  if (held.length === 0 || page.length === 0) return pageComplete ? [...page].slice(0, cap) : null;
  const oldestOfPage = page[page.length - 1]!.id;
  const newestHeld = held[0]!.id;
  if (!pageComplete && oldestOfPage > newestHeld) return null;
  const fresh = new Map(page.map((s) => [s.id, s]));
  const rest = held.filter((s) => !fresh.has(s.id) && s.id < oldestOfPage);
  return [...page, ...rest].sort((a, b) => b.id - a.id).slice(0, cap);
}

/**
 * The time axis's range (seconds) for the x values `xs` (ascending), given uPlot's `min` and `max`: those, unless
 * every x is one instant; then an hour either side of it. uPlot does not hand a range function min === max
 * for one instant: it has already widened it by 1,000 days, so the data says when that is the case.
 */
export function timeRange(
  xs: ArrayLike<number | null | undefined>,
  min: number,
  max: number,
): [number, number] {
  const first = xs.length > 0 ? xs[0] : null;
  const last = xs.length > 0 ? xs[xs.length - 1] : null;
  if (first != null && first === last) return [first - 3600, first + 3600];
  return min === max ? [min - 3600, max + 3600] : [min, max];
}
