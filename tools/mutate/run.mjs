// `npm run mutate [-- [--force] [library ...]]`: Stryker on each library in turn (stryker.config.mjs,
// SNAPCAT_MUTATE_LIB), then one table of the scores. Exits non-zero when a library misses its threshold.
// --force retests every mutant (otherwise mutants whose code and tests did not change keep their
// previous result: reports/mutation/<library>.incremental.json). See docs/mutation-testing.md.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIBRARIES, PROPERTY_ENV } from './libraries.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const force = args.includes('--force');
const chosen = args.filter((arg) => arg !== '--force');
for (const lib of chosen) {
  if (!(lib in LIBRARIES)) {
    console.error(`unknown library ${lib}; one of ${Object.keys(LIBRARIES).join(', ')}`);
    process.exit(2);
  }
}
const libs = chosen.length > 0 ? chosen : Object.keys(LIBRARIES);

const rows = [];
const started = Date.now();
for (const lib of libs) {
  const t0 = Date.now();
  const stryker = join(root, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js');
  const run = spawnSync(
    process.execPath,
    [stryker, 'run', 'stryker.config.mjs', ...(force ? ['--force'] : [])],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, ...PROPERTY_ENV, SNAPCAT_MUTATE_LIB: lib },
    },
  );
  rows.push({ lib, seconds: (Date.now() - t0) / 1000, exit: run.status ?? run.signal, ...counts(lib) });
}

console.log(`\nnpm run mutate: ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log('library     mutants  killed timeout survived no-cov  score  floor  time');
let failed = false;
for (const r of rows) {
  const ok = r.exit === 0 && r.score !== undefined && r.score >= LIBRARIES[r.lib];
  failed ||= !ok;
  console.log(
    [
      r.lib.padEnd(10),
      String(r.total ?? '-').padStart(8),
      String(r.killed ?? '-').padStart(7),
      String(r.timeout ?? '-').padStart(7),
      String(r.survived ?? '-').padStart(8),
      String(r.noCoverage ?? '-').padStart(6),
      (r.score === undefined ? '-' : r.score.toFixed(2)).padStart(6),
      String(LIBRARIES[r.lib]).padStart(6),
      `${r.seconds.toFixed(0)} s`.padStart(6),
      ok ? '' : `  FAILED${r.exit === 0 ? '' : ` (stryker exit ${r.exit})`}`,
    ].join(' '),
  );
}
process.exit(failed ? 1 : 0);

/** Counts by status from Stryker's JSON report; the score as Stryker computes it (detected / valid). */
function counts(lib) {
  const file = join(root, 'reports', 'mutation', `${lib}.json`);
  if (!existsSync(file)) return {};
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const by = {};
  for (const { mutants } of Object.values(report.files)) {
    for (const m of mutants) by[m.status] = (by[m.status] ?? 0) + 1;
  }
  const killed = by.Killed ?? 0;
  const timeout = by.Timeout ?? 0;
  const survived = by.Survived ?? 0;
  const noCoverage = by.NoCoverage ?? 0;
  const valid = killed + timeout + survived + noCoverage;
  return {
    total: Object.values(by).reduce((a, b) => a + b, 0),
    killed,
    timeout,
    survived,
    noCoverage,
    score: valid === 0 ? undefined : (100 * (killed + timeout)) / valid,
  };
}
