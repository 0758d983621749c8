// Jest as `npm run mutate` runs it (Stryker's jest runner, one library at a time): the library's own tests
// only (libs/<lib>/test), with the transform and setup of the `all` project. SNAPCAT_MUTATE_LIB names
// the library; tools/mutate.mjs sets it.
const lib = process.env.SNAPCAT_MUTATE_LIB;
if (!lib) throw new Error('jest.mutate.config.js: set SNAPCAT_MUTATE_LIB to the library under mutation');

const all = require('./jest.config.js').projects.find((project) => project.displayName === 'all');

/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  testEnvironment: require.resolve('./tools/mutate/jest-environment.cjs'),
  testSequencer: require.resolve('./tools/mutate/jest-sequencer.cjs'),
  transform: all.transform,
  setupFilesAfterEnv: all.setupFilesAfterEnv,
  modulePathIgnorePatterns: all.modulePathIgnorePatterns,
  testTimeout: 60000,
  testMatch: [`<rootDir>/libs/${lib}/test/**/*.test.ts`],
  // Workspace packages resolve to this copy's sources (in Stryker's sandbox, node_modules/@snapcat/* would
  // lead back to the unmutated checkout, and CowMap's equality tester would see two CowMap classes).
  moduleNameMapper: { '^@snapcat/([a-z-]+)$': '<rootDir>/libs/$1/src' },
};
