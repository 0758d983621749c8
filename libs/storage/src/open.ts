import { LocalSnapshotStorage } from './local';
import type { SnapshotStorage } from './port';
import { RoutingSnapshotStorage } from './routing';
import { S3_SCHEME, S3SnapshotStorage, s3Sdk } from './s3';

export interface S3Settings {
  /** Path-style requests (`http://host/bucket/key`), which MinIO, Ceph and most local servers need. */
  forcePathStyle: boolean;
  /** DeleteObjects and HeadObject requests in flight at once per bucket. */
  concurrency: number;
}

/**
 * The storage for the configured roots: local directories, s3:// prefixes, or both. The S3 client takes
 * its endpoint (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`), region and credentials from the standard
 * AWS environment and config chain; nothing of them is stored in the log.
 */
export function openSnapshotStorage(roots: string[], s3: S3Settings): SnapshotStorage {
  const local = roots.filter((root) => !S3_SCHEME.test(root));
  const remote = roots.filter((root) => S3_SCHEME.test(root));
  const client =
    remote.length > 0
      ? new (s3Sdk().S3Client)({
          forcePathStyle: s3.forcePathStyle,
          // The SDK needs a region even for stores that have none (MinIO, Ceph).
          region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        })
      : undefined;
  return new RoutingSnapshotStorage(
    local.length > 0 ? new LocalSnapshotStorage(local) : undefined,
    client ? new S3SnapshotStorage(remote, client, { concurrency: s3.concurrency }) : undefined,
  );
}
