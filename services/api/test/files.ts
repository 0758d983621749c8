import { join } from 'node:path';

/**
 * The files the API reads at run time, where the sources have them. The service's entry point locates them
 * for itself (services/server/src/files.ts); the tests of the API pass these.
 */
export const SCHEMA_FILE = join(__dirname, '..', '..', '..', 'schema', 'catalog.graphql');
export const CONSOLE_DIR = join(__dirname, '..', '..', 'console', 'dist');
