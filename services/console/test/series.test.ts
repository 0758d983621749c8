import { type CheckpointSample, durationSeries, mergeNewest, sizeSeries, timeRange } from '../src/series';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const completed = (id: number, triggered: number, took: number, size: number, shared: number | null = null) =>
  ({
    id,
    status: 'COMPLETED',
    triggeredAt: at(triggered),
    completedAt: at(triggered + took),
    failedAt: null,
    stateSize: size,
    sharedStateSize: shared,
  }) satisfies CheckpointSample;
const failed = (id: number, triggered: number, after: number): CheckpointSample => ({
  id,
  status: 'FAILED',
  triggeredAt: at(triggered),
  completedAt: null,
  failedAt: at(triggered + after),
  stateSize: 0,
  sharedStateSize: null,
});
const pending = (id: number, triggered: number): CheckpointSample => ({
  id,
  status: 'PENDING',
  triggeredAt: at(triggered),
  completedAt: null,
  failedAt: null,
  stateSize: 0,
  sharedStateSize: null,
});

// Newest first, as the API answers: 5 pending, 4 failed, 3 completed, 2 completed then subsumed, 1 completed.
const SNAPSHOTS: CheckpointSample[] = [
  pending(5, 50_000),
  failed(4, 40_000, 700),
  completed(3, 30_000, 300, 3000, 2000),
  { ...completed(2, 20_000, 200, 2000, 1500), status: 'DISCARDED' },
  { ...completed(1, 10_000, 100, 1000), status: 'DISCARDING' },
];

describe('sizeSeries', () => {
  it('plots every checkpoint that completed (subsumed ones too), oldest first, x in seconds', () => {
    const s = sizeSeries(SNAPSHOTS);
    expect(s.points).toBe(3);
    expect(s.x).toEqual([(T0 + 10_100) / 1000, (T0 + 20_200) / 1000, (T0 + 30_300) / 1000]);
    expect(s.full).toEqual([1000, 2000, 3000]);
    expect(s.shared).toEqual([null, 1500, 2000]);
    expect(s.latest).toBe(3000);
  });

  it('counts a snapshot once when pages overlap', () => {
    expect(sizeSeries([...SNAPSHOTS, SNAPSHOTS[2]!]).points).toBe(3);
  });

  it('is empty without completed checkpoints', () => {
    expect(sizeSeries([pending(1, 0), failed(2, 0, 10)])).toEqual({
      x: [],
      full: [],
      shared: [],
      uploaded: [],
      points: 0,
      latest: null,
    });
  });
});

describe('durationSeries', () => {
  it('gives each completed checkpoint its duration, and marks the failed at their failure time', () => {
    const d = durationSeries(SNAPSHOTS);
    expect(d.points).toBe(3);
    expect(d.failures).toBe(1);
    expect(d.x).toEqual([T0 + 10_100, T0 + 20_200, T0 + 30_300, T0 + 40_700].map((ms) => ms / 1000));
    expect(d.duration).toEqual([100, 200, 300, null]);
    expect(d.failed).toEqual([null, null, null, 700]);
    expect(d.latest).toBe(300);
  });

  it('keeps a failure and a completion that fall on the same millisecond, on one x', () => {
    const d = durationSeries([completed(2, 1000, 500, 1), failed(1, 0, 1500)]);
    expect(d.x).toEqual([(T0 + 1500) / 1000]);
    expect(d.duration).toEqual([500]);
    expect(d.failed).toEqual([1500]);
    expect([d.points, d.failures]).toEqual([1, 1]);
  });

  it('skips what it cannot place in time', () => {
    const broken = { ...completed(1, 0, 10, 1), triggeredAt: 'not a date' };
    expect(durationSeries([broken]).points).toBe(0);
  });
});

describe('mergeNewest', () => {
  const ids = (list: { id: number }[] | null) => list?.map((s) => s.id) ?? null;
  const held = [10, 9, 8, 7, 6].map((id) => ({ id, v: 'old' }));

  it('puts the newest page over what was held, the page winning', () => {
    const page = [12, 11, 10, 9].map((id) => ({ id, v: 'new' }));
    const merged = mergeNewest(held, page, false, 100);
    expect(ids(merged)).toEqual([12, 11, 10, 9, 8, 7, 6]);
    expect(merged!.find((s) => s.id === 10)!.v).toBe('new');
  });

  it('keeps at most `cap`, the newest', () => {
    expect(
      ids(
        mergeNewest(
          held,
          [11, 10].map((id) => ({ id, v: 'new' })),
          false,
          3,
        ),
      ),
    ).toEqual([11, 10, 9]);
  });

  it('gives up (null) when the page does not reach back to what was held', () => {
    expect(
      mergeNewest(
        held,
        [13, 12, 11].map((id) => ({ id, v: 'new' })),
        false,
        100,
      ),
    ).toBeNull();
  });

  it('a complete page is everything there is', () => {
    expect(
      ids(
        mergeNewest(
          held,
          [13, 12, 11].map((id) => ({ id, v: 'new' })),
          true,
          100,
        ),
      ),
    ).toEqual([13, 12, 11, 10, 9, 8, 7, 6]);
    expect(ids(mergeNewest([], [{ id: 1, v: 'new' }], true, 100))).toEqual([1]);
    expect(mergeNewest([], [{ id: 1, v: 'new' }], false, 100)).toBeNull();
  });

  it('drops a held one the page skipped (it no longer matches)', () => {
    expect(
      ids(
        mergeNewest(
          held,
          [11, 10, 8].map((id) => ({ id, v: 'new' })),
          false,
          100,
        ),
      ),
    ).toEqual([11, 10, 8, 7, 6]);
  });
});

describe('timeRange', () => {
  it("is uPlot's range, or an hour either side of a single instant", () => {
    expect(timeRange([100, 300, 5000], 100, 5000)).toEqual([100, 5000]);
    expect(timeRange([100, 300, 5000], 300, 400)).toEqual([300, 400]); // zoomed in
    expect(timeRange([], 1_800_000_000, 1_800_000_000)).toEqual([1_799_996_400, 1_800_003_600]);
  });

  it('one instant: an hour either side, whatever range uPlot widened it to (1,000 days for a time axis)', () => {
    const at = 1_800_000_000;
    expect(timeRange([at], at, at + 86_400_000)).toEqual([at - 3600, at + 3600]);
    expect(timeRange([at, at], at, at + 86_400_000)).toEqual([at - 3600, at + 3600]);
  });
});
