/** @type {import('jest').Config} */
const swc = [
  '@swc/jest',
  { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
];
/**
 * openapi-backend (the validator of the Flink test server and the Flink-compatible API's tests) requires @apidevtools/json-schema-ref-parser,
 * an ES module, which jest's CommonJS runtime cannot load before Node 24.9: swc compiles it to CommonJS.
 */
const ESM_PACKAGES = ['@apidevtools/json-schema-ref-parser'];
const swcJs = [
  '@swc/jest',
  { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
];
const common = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': swc,
    [`/node_modules/(${ESM_PACKAGES.join('|')})/.+\\.js$`]: swcJs,
  },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_PACKAGES.join('|')})/)`],
  setupFilesAfterEnv: ['<rootDir>/test/support/equality.ts'],
  // Stryker's sandbox copies the workspace: never load or run it as part of the suite.
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/.stryker-tmp'],
};

module.exports = {
  testTimeout: 60000,
  maxWorkers: 2,
  globalSetup: '<rootDir>/test/support/build-once.js',
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  projects: [
    {
      ...common,
      displayName: 'all',
      testMatch: [
        '<rootDir>/libs/*/test/**/*.test.ts',
        '<rootDir>/services/*/test/**/*.test.ts',
        '<rootDir>/test/**/*.test.ts',
      ],
    },
    {
      // The end-to-end suites once more, on the EventStoreDB adapter (against the protocol test server).
      ...common,
      displayName: 'e2e-esdb',
      testMatch: ['<rootDir>/test/**/*.e2e.test.ts'],
      setupFiles: ['<rootDir>/test/support/esdb-env.js'],
    },
  ],
};
