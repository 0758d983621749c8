/** @type {import('jest').Config} */
const swc = [
  '@swc/jest',
  { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
];
const common = {
  testEnvironment: 'node',
  // openapi-backend (the Flink test server's validator) requires @apidevtools/json-schema-ref-parser, which
  // is ESM only: jest (on Node 20) compiles that one package to CommonJS.
  transform: { '^.+\\.ts$': swc, '/@apidevtools/json-schema-ref-parser/.+\\.js$': swc },
  transformIgnorePatterns: ['/node_modules/(?!@apidevtools/json-schema-ref-parser/)'],
  setupFilesAfterEnv: ['<rootDir>/test/support/equality.ts'],
  // Stryker's sandbox copies the workspace: never load or run it as part of the suite.
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/.stryker-tmp'],
};

module.exports = {
  testTimeout: 60000,
  maxWorkers: 2,
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
