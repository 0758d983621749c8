// The API's package: an API process (process.ts) for the entry point that composes the roles (services/server).
export { runApi, type ApiProcessOptions, type EmbeddedWorkerDeps, type EmbeddedWorkers } from './process';
