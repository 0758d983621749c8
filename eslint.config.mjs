// @ts-check
import tseslint from 'typescript-eslint';

const noFocusedOrSkipped = [
  { selector: "CallExpression[callee.property.name='only']", message: 'no focused tests' },
  { selector: "CallExpression[callee.property.name='skip']", message: 'no skipped tests' },
];

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      'data/**',
      '.nx/**',
      'coverage/**',
      '.stryker-tmp/**',
      'reports/**',
      'tmpx*/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', ...noFocusedOrSkipped],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // libs/domain is the functional core: no I/O, no clock, no randomness.
    files: ['libs/domain/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'path', 'crypto', 'http*'], message: 'libs/domain is pure: no I/O' },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'no randomness in the domain' },
        { object: 'Date', property: 'now', message: 'time comes in as an argument' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'time comes in as an argument',
        },
      ],
    },
  },
);
