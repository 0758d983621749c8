export * from './port';
export { LocalSnapshotStorage } from './local';
