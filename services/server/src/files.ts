import { join } from 'node:path';

/**
 * The files the API reads at run time, located from this entry point's directory: from the compiled build
 * (dist/services/server/src) the same relative paths reach the copies tools/build/build.mjs makes under dist/.
 */
export const API_FILES = {
  schemaFile: join(__dirname, '..', '..', '..', 'schema', 'catalog.graphql'),
  consoleDir: join(__dirname, '..', '..', 'console', 'dist'),
};
