// Test files as `npm run mutate` runs them. For a mutant (Stryker names the covering tests in jest's test
// name pattern), only the files that hold one of them, by the index jest-environment.cjs wrote in the
// initial run; and the cheap files first, so that with the environment's bail a mutant is killed before
// the expensive files (the fast-check properties, the S3-protocol server, the projector's crash tests) run.
const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;
const { TEST_INDEX } = require('./jest-environment.cjs');

const EXPENSIVE = /properties\.test\.ts$|s3\.test\.ts$|projector\.test\.ts$/;

class MutationSequencer extends Sequencer {
  constructor(options) {
    super(options);
    this.pattern = options.globalConfig.testNamePattern;
    this.indexFile = join(options.globalConfig.rootDir, TEST_INDEX);
  }

  sort(tests) {
    const cost = (test) => (EXPENSIVE.test(test.path) ? 1 : 0);
    return this.covering(tests).sort((a, b) => cost(a) - cost(b) || a.path.localeCompare(b.path));
  }

  /** The files with a test the pattern names (a file the index does not know is kept). */
  covering(tests) {
    if (process.env.__STRYKER_ACTIVE_MUTANT__ === undefined || !this.pattern || !existsSync(this.indexFile)) {
      return [...tests];
    }
    const index = JSON.parse(readFileSync(this.indexFile, 'utf8'));
    const pattern = new RegExp(this.pattern, 'i');
    return tests.filter((test) => !index[test.path] || index[test.path].some((id) => pattern.test(id)));
  }
}

module.exports = MutationSequencer;
