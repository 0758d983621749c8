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

function positiveInteger(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  }
  return value;
}
