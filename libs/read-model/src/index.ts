export * from './keys';
export * from './projector';
export * from './queries';
export * from './deletion-fence';
export * from './audit';
export * from './history';
export type { StoredJobSummary } from './writes';
