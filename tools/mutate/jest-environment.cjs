// The test environment of `npm run mutate`: node's, plus two things for Stryker's jest runner.
// - The bail that Stryker asks of its test runners and that its jest runner cannot give (jest has no
//   programmatic bail): once a test failed against the mutant under test, the tests left in that run are
//   skipped. The mutant is killed either way; its other covering tests no longer run for nothing.
// - In the initial run, an index of which test file holds which test (TEST_INDEX, in the sandbox), so that
//   jest-sequencer.cjs runs only the files that hold a test covering the mutant: each file costs a fresh
//   module registry (zod and the whole library loaded again) even when none of its tests runs.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { TestEnvironment } = require('jest-environment-node');

const TEST_INDEX = '.stryker-test-index.json';

/** Shared by the test files of one in-band run (this module is loaded once per process). */
let killed;
/** file -> test ids, filled in the initial run. */
const index = {};

/** The id jest matches a test name pattern against: its describe blocks' names and its own. */
function testId(test) {
  const names = [];
  for (let block = test; block && block.parent; block = block.parent) names.unshift(block.name);
  return names.join(' ');
}

class MutationEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.indexFile = join(config.projectConfig.rootDir, TEST_INDEX);
    this.testPath = context.testPath;
  }

  handleTestEvent(event) {
    const mutant = process.env.__STRYKER_ACTIVE_MUTANT__;
    if (mutant === undefined) {
      if (event.name === 'test_start') (index[this.testPath] ??= []).push(testId(event.test));
      return;
    }
    if (event.name === 'test_done' && event.test.errors.length > 0) killed = mutant;
    else if (event.name === 'test_start' && killed === mutant) event.test.mode = 'skip';
  }

  async teardown() {
    if (process.env.__STRYKER_ACTIVE_MUTANT__ === undefined && index[this.testPath]) {
      writeFileSync(this.indexFile, JSON.stringify(index));
    }
    await super.teardown();
  }
}

MutationEnvironment.TEST_INDEX = TEST_INDEX;
module.exports = MutationEnvironment;
