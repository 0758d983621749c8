import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { LocalSnapshotStorage } from './local';
import type { SnapshotStorage } from './port';
import { RoutingSnapshotStorage } from './routing';
import { S3_SCHEME, S3SnapshotStorage, s3Sdk } from './s3';

export interface S3Settings {
  /**
   * Path-style requests (`http://host/bucket/key`), which MinIO, Ceph and most local servers need. Unset:
   * path style exactly when a custom endpoint is configured (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`), as
   * virtual-hosted requests to such an endpoint need a DNS name per bucket.
   */
  forcePathStyle?: boolean;
  /** DeleteObjects and HeadObject requests in flight at once per bucket. */
  concurrency: number;
  /** How long one request may go unanswered before it fails (and is retried); 30 s unless a test says less. */
  requestTimeoutMs?: number;
}

/**
 * The storage for the configured roots: local directories, s3:// prefixes, or both. The S3 client takes
 * its endpoint (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`), region and credentials from the standard
 * AWS environment and config chain; nothing of them is stored in the log.
 */
export function openSnapshotStorage(roots: string[], s3: S3Settings): SnapshotStorage {
  const local = roots.filter((root) => !S3_SCHEME.test(root));
  const remote = roots.filter((root) => S3_SCHEME.test(root));
  const client = remote.length > 0 ? s3Client(s3) : undefined;
  return new RoutingSnapshotStorage(
    local.length > 0 ? new LocalSnapshotStorage(local) : undefined,
    client ? new S3SnapshotStorage(remote, client, { concurrency: s3.concurrency }) : undefined,
  );
}

/**
 * The S3 client, made to work with S3-compatible stores as well as AWS. Since 3.729 the SDK sends CRC32 checksums
 * by default, which several stores refuse (Cloudflare R2, Backblaze B2, older MinIO and Ceph): checksums are
 * computed only where an operation requires one, and DeleteObjects, which does, carries Content-MD5 instead, as
 * AWS documents for such stores (aws-sdk-js-v3 supplemental-docs/MD5_FALLBACK.md) and as AWS itself accepts.
 * A request that gets no answer fails after `requestTimeoutMs` (the SDK's default is to wait for ever).
 */
function s3Client(settings: S3Settings): S3Client {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL;
  const client = new (s3Sdk().S3Client)({
    forcePathStyle: settings.forcePathStyle ?? Boolean(endpoint),
    // The SDK needs a region even for stores that have none (MinIO, Ceph).
    region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
    // A bucket in another region than the configured one is followed there rather than failing every call.
    followRegionRedirects: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: 5_000,
      requestTimeout: settings.requestTimeoutMs ?? 30_000,
      throwOnRequestTimeout: true,
    },
  });
  // After the SDK's own checksum middleware (step build, normal priority), before signing (finalizeRequest).
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if (
        context.commandName === 'DeleteObjectsCommand' &&
        request.headers &&
        typeof request.body === 'string'
      ) {
        for (const name of Object.keys(request.headers)) {
          if (/^x-amz-(sdk-)?checksum-/i.test(name)) delete request.headers[name];
        }
        request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', priority: 'low', name: 'snapcatDeleteObjectsContentMd5' },
  );
  return client;
}
