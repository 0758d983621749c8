/**
 * fast-check parameters of the property tests: 300 histories per property from a fresh seed, unless
 * SNAPCAT_PROPERTY_RUNS / SNAPCAT_PROPERTY_SEED say otherwise (`npm run mutate` sets both: every mutant
 * reruns the properties that cover it, and a fixed seed makes the result the same from run to run).
 */
export function propertyRuns(): { numRuns: number; seed?: number } {
  const numRuns = positiveInteger('SNAPCAT_PROPERTY_RUNS') ?? 300;
  const seed = positiveInteger('SNAPCAT_PROPERTY_SEED');
  return seed === undefined ? { numRuns } : { numRuns, seed };
}

/**
 * What a generator-coverage floor ("the case under test is reached in about `share` of the histories")
 * asks of a run: the share itself when the run is statistical (100 histories or more), only "reached at
 * all" in the short seeded runs of `npm run mutate`, where 10 histories make any share a coin toss.
 */
export function reachFloor(runs: { numRuns: number }, share: number): number {
  return runs.numRuns >= 100 ? runs.numRuns * share : 0;
}

function positiveInteger(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  }
  return value;
}
