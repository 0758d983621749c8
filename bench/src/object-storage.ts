/**
 * Benchmark #12: deleting a snapshot directory of N objects on an S3-protocol server on this machine
 * (s3rver, through the AWS SDK), beside deleting the same number of local files: objects per second. And the
 * same N objects named one by one as state handles (an orphan sweep's deletion), beside the directory's.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { LocalSnapshotStorage, S3SnapshotStorage } from '@snapcat/storage';
import { S3TestServer } from '../../test/s3/server';

export interface DeletionFigures {
  objects: number;
  s3PerSecond: number;
  localPerSecond: number;
  /** The same objects deleted as N state handles of one directory. */
  s3HandlesPerSecond: number;
}

export async function benchObjectDeletion(objects: number): Promise<DeletionFigures> {
  const server = new S3TestServer();
  await server.start(['bench']);
  const client = server.client();
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-bench-files-'));
  try {
    const s3 = new S3SnapshotStorage(['s3://bench/root'], client);
    const keys = Array.from({ length: objects }, (_, i) => `root/chk-1/part-${i}`);
    const putAll = async () => {
      for (let i = 0; i < keys.length; i += 100) {
        await Promise.all(
          keys
            .slice(i, i + 100)
            .map((Key) =>
              client.send(new PutObjectCommand({ Bucket: 'bench', Key, Body: Buffer.alloc(64) })),
            ),
        );
      }
    };
    await putAll();
    let started = process.hrtime.bigint();
    await s3.remove({ locations: ['s3://bench/root/chk-1'], stateHandles: [] });
    const s3Seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await putAll();
    const stateHandles = keys.map((key) => ({ path: `s3://bench/${key}`, sizeBytes: 64 }));
    started = process.hrtime.bigint();
    await s3.remove({ locations: [], stateHandles });
    const handlesSeconds = Number(process.hrtime.bigint() - started) / 1e9;

    const root = join(dir, 'root');
    mkdirSync(join(root, 'chk-1'), { recursive: true });
    for (let i = 0; i < objects; i += 1) writeFileSync(join(root, 'chk-1', `part-${i}`), Buffer.alloc(64));
    const local = new LocalSnapshotStorage([root]);
    started = process.hrtime.bigint();
    await local.remove({ locations: [join(root, 'chk-1')], stateHandles: [] });
    const localSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      objects,
      s3PerSecond: objects / s3Seconds,
      localPerSecond: objects / localSeconds,
      s3HandlesPerSecond: objects / handlesSeconds,
    };
  } finally {
    client.destroy();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
