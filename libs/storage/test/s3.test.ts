import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { LocationRefusedError, RoutingSnapshotStorage, S3SnapshotStorage, parseS3Location } from '../src';
import { FaultyS3Proxy } from '../../../test/s3/faulty-proxy';
import { S3TestServer } from '../../../test/s3/server';
import { storageContract } from './contract';
import { collect } from '../../../test/support/async';

// A real S3-protocol server (s3rver) on a local port, reached through the real AWS SDK client.
const server = new S3TestServer();
let client: S3Client;
let run = 0;
beforeAll(async () => {
  await server.start(['snapcat', 'other-bucket']);
  client = server.client();
});
afterAll(async () => {
  client.destroy();
  await server.stop();
});

const put = async (location: string, bytes: number | string) => {
  const { bucket, key } = parseS3Location(location);
  const body = typeof bytes === 'string' ? bytes : Buffer.alloc(bytes, 1);
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
};
const exists = async (location: string) => {
  const { bucket, key } = parseS3Location(location);
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw error;
  }
};
const read = async (location: string) => {
  const { bucket, key } = parseS3Location(location);
  const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return answer.Body!.transformToString();
};

storageContract(
  's3 (s3rver through @aws-sdk/client-s3)',
  async () => {
    run += 1;
    const root = `s3://snapcat/run-${run}/root`;
    const outside = `s3://snapcat/run-${run}/outside`;
    await put(`${outside}/secret`, 'do not delete');
    const storageWithRoots = (roots: string[]) => new S3SnapshotStorage(roots, client);
    return {
      storage: new S3SnapshotStorage([root], client),
      storageWithRoots,
      root,
      outside,
      put,
      exists,
      read,
    };
  },
  async () => {},
);

describe('s3 snapshot storage', () => {
  const root = 's3://snapcat/tricks/root';
  const storage = () => new S3SnapshotStorage([root], client, { backoffMs: 1 });

  it.each([
    ['another bucket', { locations: ['s3://other-bucket/tricks/root/chk-1'], stateHandles: [] }],
    ['.. in the key', { locations: [`${root}/../outside`], stateHandles: [] }],
    ['a . segment', { locations: [`${root}/./x`], stateHandles: [] }],
    ['an empty segment', { locations: [], stateHandles: [{ path: `${root}//x`, sizeBytes: 1 }] }],
    ['a percent-encoded ..', { locations: [`${root}/%2e%2e/outside`], stateHandles: [] }],
    ['a percent-encoded slash', { locations: [`${root}/..%2Foutside`], stateHandles: [] }],
    ['a backslash', { locations: [`${root}\\..\\outside`], stateHandles: [] }],
    ['a root-like prefix', { locations: ['s3://snapcat/tricks/root-evil'], stateHandles: [] }],
    ['a local path', { locations: ['/etc'], stateHandles: [] }],
  ])('refuses %s and deletes nothing', async (name, request) => {
    // Objects of their own per case: s3rver can answer a read of an object being overwritten with an empty
    // body (seen once in CI), which would look like a deletion.
    const secrets = [
      `s3://snapcat/tricks/outside/secret-${name.replace(/\W+/g, '-')}`,
      `s3://other-bucket/tricks/root/chk-1/secret-${name.replace(/\W+/g, '-')}`,
    ];
    for (const secret of secrets) await put(secret, 'do not delete');
    await expect(storage().remove(request)).rejects.toBeInstanceOf(LocationRefusedError);
    for (const secret of secrets) expect(await read(secret)).toBe('do not delete');
  });

  it("refuses to delete a storage root itself (a key's or a whole bucket's): the other jobs below it are in no keep list", async () => {
    await put(`${root}/job-a/chk-1/f`, 'aaa');
    await put('s3://snapcat/whole/job-b/chk-1/f', 'bbbb');
    const both = new S3SnapshotStorage([root, 's3://snapcat'], client, { backoffMs: 1 });
    for (const location of [root, `${root}/`, 's3a://snapcat/tricks/root', 's3://snapcat', 's3://snapcat/']) {
      await expect(both.remove({ locations: [location], stateHandles: [] })).rejects.toThrow(
        /is a storage root: a snapshot lies below one, never is one/,
      );
    }
    expect(await read(`${root}/job-a/chk-1/f`)).toBe('aaa');
    expect(await read('s3://snapcat/whole/job-b/chk-1/f')).toBe('bbbb');
  });

  it('refuses a state handle naming a root: the object whose key is the root’s own lies outside its key space', async () => {
    // `tricks/root` as an object is beside `tricks/root/…`, where snapcat's files are; no listing of the root
    // shows it. A review deleted it through a handle.
    await put(root, 'not a snapshot file');
    await expect(
      storage().remove({ locations: [], stateHandles: [{ path: root, sizeBytes: 19 }] }),
    ).rejects.toThrow(/is a storage root/);
    expect(await read(root)).toBe('not a snapshot file');
  });

  it('takes s3a:// and s3p:// locations as the same store', async () => {
    await put(`${root}/alias/a`, 5);
    expect(await storage().remove({ locations: ['s3a://snapcat/tricks/root/alias'], stateHandles: [] })).toBe(
      5,
    );
    expect(await exists(`${root}/alias/a`)).toBe(false);
    expect(await storage().isWithinRoots('s3p://snapcat/tricks/root/x')).toBe(true);
  });

  it('deletes a directory of 5,000 objects in batches, with the exact byte count', async () => {
    const dir = 's3://snapcat/big/root/chk-1';
    let bytes = 0;
    const puts: Promise<void>[] = [];
    for (let i = 0; i < 5000; i += 1) {
      puts.push(put(`${dir}/part-${i}`, 1 + (i % 97)));
      bytes += 1 + (i % 97);
      if (puts.length === 50) await Promise.all(puts.splice(0));
    }
    await Promise.all(puts);
    const big = new S3SnapshotStorage(['s3://snapcat/big/root'], client);
    expect(await big.measure({ locations: [dir], stateHandles: [] })).toBe(bytes);
    expect(await big.remove({ locations: [dir], stateHandles: [] })).toBe(bytes);
    expect(await collect(big.listFiles())).toEqual([]);
  }, 120_000);

  it('routes each location to its storage, and refuses s3:// when no s3 root is configured', async () => {
    await put(`${root}/routed/a`, 3);
    const routed = new RoutingSnapshotStorage(undefined, storage());
    expect(await routed.remove({ locations: [`${root}/routed`], stateHandles: [] })).toBe(3);
    const localOnly = new RoutingSnapshotStorage(storage(), undefined);
    await expect(
      localOnly.remove({ locations: [`${root}/routed`], stateHandles: [] }),
    ).rejects.toBeInstanceOf(LocationRefusedError);
  });
});

describe('s3 snapshot storage under a store that pushes back (fault-injecting proxy)', () => {
  it('backs off on 503 SlowDown and retries the keys a batch could not delete, until every one is gone', async () => {
    const proxy = new FaultyS3Proxy(server.port, {
      // More than the SDK's own three attempts, so snapcat's backoff is what carries the deletion through.
      slowDowns: 4,
      failOnce: new Set(['faults/root/chk-1/part-3', 'faults/root/chk-1/part-7']),
    });
    await proxy.start();
    const proxied = server.client(proxy.endpoint);
    try {
      for (let i = 0; i < 10; i += 1) await put(`s3://snapcat/faults/root/chk-1/part-${i}`, 10);
      const storage = new S3SnapshotStorage(['s3://snapcat/faults/root'], proxied, { backoffMs: 5 });
      expect(await storage.remove({ locations: ['s3://snapcat/faults/root/chk-1'], stateHandles: [] })).toBe(
        100,
      );
      expect(proxy.seen).toMatchObject({ slowDowns: 4, keyErrors: 2 });
      for (let i = 0; i < 10; i += 1)
        expect(await exists(`s3://snapcat/faults/root/chk-1/part-${i}`)).toBe(false);
    } finally {
      proxied.destroy();
      await proxy.stop();
    }
  });

  it('deletes one key at a time on a store without DeleteObjects (GCS’s XML API answers NotImplemented), from the first refusal on', async () => {
    const proxy = new FaultyS3Proxy(server.port, { slowDowns: 0, failOnce: new Set(), noMultiDelete: true });
    await proxy.start();
    const proxied = server.client(proxy.endpoint);
    try {
      for (let i = 0; i < 5; i += 1) await put(`s3://snapcat/gcs/root/chk-1/part-${i}`, 10);
      await put('s3://snapcat/gcs/root/chk-2/part-0', 10);
      const storage = new S3SnapshotStorage(['s3://snapcat/gcs/root'], proxied, { backoffMs: 1 });
      expect(await storage.remove({ locations: ['s3://snapcat/gcs/root/chk-1'], stateHandles: [] })).toBe(50);
      expect(await storage.remove({ locations: ['s3://snapcat/gcs/root/chk-2'], stateHandles: [] })).toBe(10);
      // Refused once (not retried as a 5xx), then never asked again: one DeleteObject per key (the SDK may
      // send one again on a connection the proxy dropped).
      expect(proxy.seen.deleteRequests).toBe(1);
      expect(proxy.seen.singleDeletes).toBeGreaterThanOrEqual(6);
      for (let i = 0; i < 5; i += 1)
        expect(await exists(`s3://snapcat/gcs/root/chk-1/part-${i}`)).toBe(false);
      expect(await exists('s3://snapcat/gcs/root/chk-2/part-0')).toBe(false);
    } finally {
      proxied.destroy();
      await proxy.stop();
    }
  });

  it('gives up after its attempts when a key keeps failing: the deletion fails (and the worker retries it later)', async () => {
    const proxy = new FaultyS3Proxy(server.port, { slowDowns: 0, failOnce: new Set() });
    await proxy.start();
    const proxied = server.client(proxy.endpoint);
    try {
      await put('s3://snapcat/stuck/root/chk-1/a', 10);
      // The key fails in every batch: re-armed before each of the storage's attempts.
      const storage = new S3SnapshotStorage(['s3://snapcat/stuck/root'], proxied, {
        backoffMs: 1,
        attempts: 3,
      });
      const rearm = setInterval(() => proxy.faults.failOnce.add('stuck/root/chk-1/a'), 0);
      proxy.faults.failOnce.add('stuck/root/chk-1/a');
      try {
        await expect(
          storage.remove({ locations: ['s3://snapcat/stuck/root/chk-1'], stateHandles: [] }),
        ).rejects.toThrow(/could not delete 1 objects/);
      } finally {
        clearInterval(rearm);
      }
      expect(await exists('s3://snapcat/stuck/root/chk-1/a')).toBe(true);
    } finally {
      proxied.destroy();
      await proxy.stop();
    }
  });
});
