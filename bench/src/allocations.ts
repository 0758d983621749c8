/**
 * Allocation per request (#18), from V8's own GC trace rather than a sampling profiler: with `--trace-gc-nvp`
 * every collection prints `allocated=<bytes>`, what the isolate allocated since the collection before. The
 * sum over a load run's collections, over the run's requests, is the bytes each request allocated (to within
 * one young generation, ~16 MB, of a run's 100s of MB). A process's threads are isolates of their own, each
 * with its own lines: the one that allocated most is the main thread, whose collections pause requests.
 */
export const GC_TRACE_FLAGS = ['--trace-gc-nvp'];

const TRACE_LINE = /^\[\d+:(0x[0-9a-f]+)\][^\n]*\ballocated=(\d+)/;
/** A young-generation collection's line: what it moved to the old generation (`promoted=`). */
const PROMOTED = /\bgc=s\b[^\n]*\bpromoted=(\d+)/;

/**
 * Bytes the busiest isolate allocated by the collections logged in `lines[from..]` (a service's stdout), and
 * how many of them its young-generation collections promoted: what outlived two of them, which only a major
 * collection (a pause that grows with the heap) frees again.
 */
export function mainThreadGc(
  lines: readonly string[],
  from: number,
): { allocated: number; promoted: number } {
  const byIsolate = new Map<string, { allocated: number; promoted: number }>();
  for (const line of lines.slice(from)) {
    const match = TRACE_LINE.exec(line);
    if (!match) continue;
    const isolate = byIsolate.get(match[1]!) ?? { allocated: 0, promoted: 0 };
    isolate.allocated += Number(match[2]);
    isolate.promoted += Number(PROMOTED.exec(line)?.[1] ?? 0);
    byIsolate.set(match[1]!, isolate);
  }
  if (byIsolate.size === 0)
    throw new Error('no GC trace lines: was the process started with GC_TRACE_FLAGS?');
  return [...byIsolate.values()].reduce((a, b) => (b.allocated > a.allocated ? b : a));
}
