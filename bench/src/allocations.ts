/**
 * Allocation per request (#18), from V8's own GC trace rather than a sampling profiler: with `--trace-gc-nvp`
 * every collection prints `allocated=<bytes>`, what the isolate allocated since the collection before. The
 * sum over a load run's collections, over the run's requests, is the bytes each request allocated (to within
 * one young generation, ~16 MB, of a run's 100s of MB). A process's threads are isolates of their own, each
 * with its own lines: the one that allocated most is the main thread, whose collections pause requests.
 */
export const GC_TRACE_FLAGS = ['--trace-gc-nvp'];

const TRACE_LINE = /^\[\d+:(0x[0-9a-f]+)\][^\n]*\ballocated=(\d+)/;

/** Bytes the busiest isolate allocated by the collections logged in `lines[from..]` (a service's stdout). */
export function mainThreadAllocated(lines: readonly string[], from: number): number {
  const byIsolate = new Map<string, number>();
  for (const line of lines.slice(from)) {
    const match = TRACE_LINE.exec(line);
    if (match) byIsolate.set(match[1]!, (byIsolate.get(match[1]!) ?? 0) + Number(match[2]));
  }
  if (byIsolate.size === 0)
    throw new Error('no GC trace lines: was the process started with GC_TRACE_FLAGS?');
  return Math.max(...byIsolate.values());
}
