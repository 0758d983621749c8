// Mutation testing of one library (SNAPCAT_MUTATE_LIB): its sources mutated, its own tests run against
// each mutant. `npm run mutate` (tools/mutate/run.mjs) runs the four libraries in turn; see
// docs/mutation-testing.md.
import { fileURLToPath } from 'node:url';
import { LIBRARIES } from './tools/mutate/libraries.mjs';

const lib = process.env.SNAPCAT_MUTATE_LIB;
if (!lib || !(lib in LIBRARIES)) {
  throw new Error(
    `stryker.config.mjs: set SNAPCAT_MUTATE_LIB to one of ${Object.keys(LIBRARIES).join(', ')}`,
  );
}

/** Files that are not logic: re-exports only. */
const notLogic = { domain: ['index.ts'], storage: ['index.ts'], webhooks: [], 'read-model': ['index.ts'] };

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: [`libs/${lib}/src/**/*.ts`, ...notLogic[lib].map((file) => `!libs/${lib}/src/${file}`)],
  testRunner: 'jest',
  jest: { projectType: 'custom', configFile: 'jest.mutate.config.js', enableFindRelatedTests: true },
  coverageAnalysis: 'perTest',
  // Mutants that only run while a module loads (zod schemas, module-level constants) would each rerun
  // the library's whole test suite: not run (reported as ignored; see docs/mutation-testing.md).
  ignoreStatic: true,
  checkers: ['typescript'],
  // The library's sources only, without @types/jest: checking each mutant against the whole repository
  // (or with its tests) took seconds per mutant.
  tsconfigFile: `tools/mutate/tsconfig.${lib}.json`,
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  checkerNodeArgs: [
    '--require',
    fileURLToPath(new URL('./tools/mutate/checker-preload.cjs', import.meta.url)),
  ],
  concurrency: 2,
  timeoutMS: 5000,
  thresholds: { high: 90, low: LIBRARIES[lib], break: LIBRARIES[lib] },
  incremental: true,
  incrementalFile: `reports/mutation/${lib}.incremental.json`,
  ignorePatterns: ['data', 'coverage', '.nx', 'reports', 'dist', 'docs', 'BENCHMARKS.md'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${lib}.html` },
  jsonReporter: { fileName: `reports/mutation/${lib}.json` },
  clearTextReporter: { allowEmojis: false, logTests: false },
  tempDirName: '.stryker-tmp',
};
