export * from './port';
export { LocalSnapshotStorage } from './local';
export { S3SnapshotStorage, parseS3Location, S3_SCHEME, type S3StorageOptions } from './s3';
export { RoutingSnapshotStorage } from './routing';
export { openSnapshotStorage } from './open';
