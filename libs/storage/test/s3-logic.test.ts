import type { S3Client } from '@aws-sdk/client-s3';
import { LocationRefusedError, S3SnapshotStorage, parseS3Location } from '../src';
import { collect } from '../../../test/support/async';

// The S3 adapter's own logic (paging, batching, retries, backoff, confinement, what is kept) against an
// S3 client faked in memory: every request is seen, and any of them can be made to fail. The same
// adapter against a real S3-protocol server: s3.test.ts.

interface Stored {
  size: number;
  modified?: Date;
}
type Command = { constructor: { name: string }; input: Record<string, unknown> };
type Fault = (name: string, input: Record<string, unknown>) => unknown;

class FakeS3 {
  readonly objects = new Map<string, Stored>();
  readonly calls: { name: string; input: Record<string, unknown>; at: number }[] = [];
  /** Keys per ListObjectsV2 page. */
  pageSize = 1000;
  /** Returns an error to throw for a request, or undefined to serve it. */
  fault: Fault = () => undefined;
  /** Keys DeleteObjects reports as errors (once each, unless listed again). */
  readonly failKeys = new Map<string, { Code: string; Message?: string }>();
  inFlight = 0;
  maxInFlight = 0;

  put(location: string, size: number, modified?: Date) {
    const { bucket, key } = parseS3Location(location);
    this.objects.set(`${bucket}/${key}`, { size, ...(modified ? { modified } : {}) });
  }

  has(location: string) {
    const { bucket, key } = parseS3Location(location);
    return this.objects.has(`${bucket}/${key}`);
  }

  count(name: string) {
    return this.calls.filter((c) => c.name === name).length;
  }

  readonly client = { send: (command: Command) => this.send(command) } as unknown as S3Client;

  private async send(command: Command): Promise<unknown> {
    const name = command.constructor.name;
    const input = command.input;
    this.calls.push({ name, input, at: performance.now() });
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setImmediate(r));
      const error = this.fault(name, input);
      if (error) throw error;
      return this.serve(name, input);
    } finally {
      this.inFlight -= 1;
    }
  }

  private serve(name: string, input: Record<string, unknown>): unknown {
    const bucket = input.Bucket as string;
    switch (name) {
      case 'ListObjectsV2Command': {
        const prefix = `${bucket}/${input.Prefix as string}`;
        // With a Delimiter (`/`), the objects directly in the prefix (common prefixes are not needed here).
        const direct = (k: string) => !input.Delimiter || !k.slice(prefix.length).includes('/');
        const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && direct(k)).sort();
        const start = input.ContinuationToken ? Number(input.ContinuationToken) : 0;
        const page = keys.slice(start, start + this.pageSize);
        const truncated = start + this.pageSize < keys.length;
        return {
          Contents: page.map((k) => {
            const o = this.objects.get(k)!;
            return {
              Key: k.slice(bucket.length + 1),
              ...(o.size >= 0 ? { Size: o.size } : {}),
              ...(o.modified ? { LastModified: o.modified } : {}),
            };
          }),
          IsTruncated: truncated,
          ...(truncated ? { NextContinuationToken: String(start + this.pageSize) } : {}),
        };
      }
      case 'HeadObjectCommand': {
        const o = this.objects.get(`${bucket}/${input.Key as string}`);
        if (!o)
          throw Object.assign(new Error('NotFound'), {
            name: 'NotFound',
            $metadata: { httpStatusCode: 404 },
          });
        return o.size >= 0 ? { ContentLength: o.size } : {};
      }
      case 'DeleteObjectsCommand': {
        const { Objects, Quiet } = input.Delete as { Objects: { Key: string }[]; Quiet: boolean };
        expect(Quiet).toBe(true);
        const Errors: { Key: string; Code: string; Message?: string }[] = [];
        for (const { Key } of Objects) {
          const failure = this.failKeys.get(Key);
          if (failure) Errors.push({ Key, ...failure });
          else this.objects.delete(`${bucket}/${Key}`);
        }
        return Errors.length ? { Errors } : {};
      }
      case 'DeleteObjectCommand': {
        this.objects.delete(`${bucket}/${input.Key as string}`);
        return {};
      }
      case 'GetObjectCommand': {
        const o = this.objects.get(`${bucket}/${input.Key as string}`);
        if (!o)
          throw Object.assign(new Error('NoSuchKey'), {
            name: 'NoSuchKey',
            $metadata: { httpStatusCode: 404 },
          });
        return { Body: { transformToString: async () => '' } };
      }
      case 'PutObjectCommand': {
        this.objects.set(`${bucket}/${input.Key as string}`, { size: String(input.Body).length });
        return {};
      }
    }
    throw new Error(`unexpected ${name}`);
  }
}

const ROOT = 's3://snapcat/root';
const fresh = (options = {}, roots = [ROOT]) => {
  const s3 = new FakeS3();
  return { s3, storage: new S3SnapshotStorage(roots, s3.client, { backoffMs: 1, ...options }) };
};

const refusal = (call: () => unknown): LocationRefusedError => {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(LocationRefusedError);
    return error as LocationRefusedError;
  }
  throw new Error('not refused');
};

describe('parseS3Location', () => {
  it('splits bucket and key; s3a:// and s3p:// (any case) are the same scheme; trailing slashes go', () => {
    expect(parseS3Location('s3://bucket/a/b')).toEqual({ bucket: 'bucket', key: 'a/b' });
    expect(parseS3Location('S3A://bucket/a/b///')).toEqual({ bucket: 'bucket', key: 'a/b' });
    expect(parseS3Location('s3p://bucket')).toEqual({ bucket: 'bucket', key: '' });
    expect(parseS3Location('s3://bucket/')).toEqual({ bucket: 'bucket', key: '' });
    expect(parseS3Location('s3://my.bucket-1/x')).toEqual({ bucket: 'my.bucket-1', key: 'x' });
  });

  it.each([
    ['/local/path', 'not an s3:// location'],
    ['s3x://bucket/a', 'not an s3:// location'],
    ['gs://bucket/a', 'not an s3:// location'],
    ['xs3://bucket/a', 'not an s3:// location'],
    ['s3://ab/a', 'not a valid bucket name'],
    [`s3://${'a'.repeat(64)}/a`, 'not a valid bucket name'],
    ['s3://Bucket/a', 'not a valid bucket name'],
    ['s3://-bucket/a', 'not a valid bucket name'],
    ['s3://bucket-/a', 'not a valid bucket name'],
    ['s3://buc_ket/a', 'not a valid bucket name'],
    ['s3://bucket/a\u0007b', 'contains a control character or a backslash'],
    ['s3://bucket/a\u001fb', 'contains a control character or a backslash'],
    ['s3://bucket/a\\b', 'contains a control character or a backslash'],
    ['s3://bucket/a%2Eb', 'contains a percent-encoded dot, slash or backslash'],
    ['s3://bucket/a%2fb', 'contains a percent-encoded dot, slash or backslash'],
    ['s3://bucket/a%5cb', 'contains a percent-encoded dot, slash or backslash'],
    ['s3://bucket//a', 'contains an empty, . or .. segment'],
    ['s3://bucket/a/./b', 'contains an empty, . or .. segment'],
    ['s3://bucket/../b', 'contains an empty, . or .. segment'],
  ])('refuses %j: %s', (location, reason) => {
    const error = refusal(() => parseS3Location(location));
    expect(error.message).toBe(`refused ${JSON.stringify(location)}: ${reason}`);
    expect(error.location).toBe(location);
    expect(error.name).toBe('LocationRefusedError');
  });

  it('takes the longest bucket name, a 3-character one, dots and percent signs that decode to nothing', () => {
    expect(parseS3Location(`s3://${'a'.repeat(63)}/k`).bucket).toHaveLength(63);
    expect(parseS3Location('s3://abc/k').bucket).toBe('abc');
    expect(parseS3Location('s3://bucket/a.b/..c/%20').key).toBe('a.b/..c/%20');
    expect(parseS3Location('s3://bucket/a~b').key).toBe('a~b');
  });
});

describe('S3SnapshotStorage (fake S3 client)', () => {
  it('needs a root', () => {
    expect(() => new S3SnapshotStorage([], new FakeS3().client)).toThrow(
      'at least one s3:// storage root is required',
    );
  });

  it('confines to its roots: the root, below it, not beside it, not another bucket; a bucket root takes all', async () => {
    const { storage } = fresh();
    expect(await storage.isWithinRoots(ROOT)).toBe(true);
    expect(await storage.isWithinRoots(`${ROOT}/`)).toBe(true);
    expect(await storage.isWithinRoots(`${ROOT}/a/b`)).toBe(true);
    expect(await storage.isWithinRoots('s3://snapcat/rootx')).toBe(false);
    expect(await storage.isWithinRoots('s3://snapcat/ro')).toBe(false);
    expect(await storage.isWithinRoots('s3://snapcat')).toBe(false);
    expect(await storage.isWithinRoots('s3://other/root/a')).toBe(false);
    expect(await storage.isWithinRoots('/root/a')).toBe(false);
    const whole = fresh({}, ['s3://snapcat']).storage;
    expect(await whole.isWithinRoots('s3://snapcat/anything/at/all')).toBe(true);
    expect(await whole.isWithinRoots('s3://other/x')).toBe(false);
    const two = fresh({}, ['s3://snapcat/a', 's3://other/b']).storage;
    expect(await two.isWithinRoots('s3://other/b/x')).toBe(true);
    expect(await two.isWithinRoots('s3://other/a/x')).toBe(false);
    const refused = await two.measure({ locations: ['s3://snapcat/b/x'], stateHandles: [] }).catch((e) => e);
    expect(refused).toBeInstanceOf(LocationRefusedError);
    expect(refused.message).toBe('refused "s3://snapcat/b/x": outside the configured storage roots');
  });

  it('a directory is its key and what lies below it, not a sibling that shares its prefix', async () => {
    const { s3, storage } = fresh();
    s3.put(`${ROOT}/chk-1/a`, 10);
    s3.put(`${ROOT}/chk-1/sub/b`, 20);
    s3.put(`${ROOT}/chk-10/c`, 400);
    s3.put(`${ROOT}/chk-1`, 3); // an object named like the directory
    expect(await storage.measure({ locations: [`${ROOT}/chk-1`], stateHandles: [] })).toBe(33);
    expect(await storage.remove({ locations: [`${ROOT}/chk-1`], stateHandles: [] })).toBe(33);
    expect([...s3.objects.keys()]).toEqual(['snapcat/root/chk-10/c']);
  });

  it('pages through a long listing with its continuation token', async () => {
    const { s3, storage } = fresh();
    s3.pageSize = 2;
    for (let i = 0; i < 5; i += 1) s3.put(`${ROOT}/chk-1/f${i}`, 1 + i);
    expect(await storage.measure({ locations: [`${ROOT}/chk-1`], stateHandles: [] })).toBe(15);
    const lists = s3.calls.filter((c) => c.name === 'ListObjectsV2Command').map((c) => c.input);
    expect(lists).toEqual([
      { Bucket: 'snapcat', Prefix: 'root/chk-1' },
      { Bucket: 'snapcat', Prefix: 'root/chk-1', ContinuationToken: '2' },
      { Bucket: 'snapcat', Prefix: 'root/chk-1', ContinuationToken: '4' },
    ]);
  });

  it('looks up only the handles no directory covered, and counts a missing one as nothing', async () => {
    const { s3, storage } = fresh();
    s3.put(`${ROOT}/chk-2/own`, 5);
    s3.put(`${ROOT}/shared/x`, 7);
    s3.put(`${ROOT}/shared/no-size`, -1); // an answer without ContentLength
    const request = {
      locations: [`${ROOT}/chk-2`],
      stateHandles: [
        { path: `${ROOT}/chk-2/own`, sizeBytes: 5 },
        { path: `${ROOT}/shared/x`, sizeBytes: 7 },
        { path: `${ROOT}/shared/gone`, sizeBytes: 9 },
        { path: `${ROOT}/shared/no-size`, sizeBytes: 9 },
      ],
    };
    expect(await storage.measure(request)).toBe(12);
    expect(s3.calls.filter((c) => c.name === 'HeadObjectCommand').map((c) => c.input.Key)).toEqual([
      'root/shared/x',
      'root/shared/gone',
      'root/shared/no-size',
    ]);
    expect(await storage.remove(request)).toBe(12);
    expect(s3.has(`${ROOT}/shared/x`)).toBe(false);
    expect(s3.has(`${ROOT}/shared/no-size`)).toBe(false);
  });

  it('keeps what the request keeps: a file, a directory above files, whatever the s3 scheme', async () => {
    const { s3, storage } = fresh();
    for (const f of ['chk-3/a', 'chk-3/kept', 'chk-3/live/x', 'chk-3/live/y', 'chk-3/lively/z', 'chk-3/b']) {
      s3.put(`${ROOT}/${f}`, 1);
    }
    const request = {
      locations: [`${ROOT}/chk-3`],
      stateHandles: [],
      keep: ['s3a://snapcat/root/chk-3/kept', `${ROOT}/chk-3/live/`],
    };
    expect(await storage.measure(request)).toBe(3);
    expect(await storage.remove(request)).toBe(3);
    expect([...s3.objects.keys()].sort()).toEqual([
      'snapcat/root/chk-3/kept',
      'snapcat/root/chk-3/live/x',
      'snapcat/root/chk-3/live/y',
    ]);
    // Keeping the bucket keeps everything in it.
    s3.put(`${ROOT}/chk-4/a`, 1);
    expect(
      await storage.measure({ locations: [`${ROOT}/chk-4`], stateHandles: [], keep: ['s3://snapcat'] }),
    ).toBe(0);
    expect(
      await storage.measure({ locations: [`${ROOT}/chk-4`], stateHandles: [], keep: ['s3://other'] }),
    ).toBe(1);
    // A kept location above every bucket (a scheme, as written) keeps nothing.
    expect(
      await storage.measure({ locations: [`${ROOT}/chk-4`], stateHandles: [], keep: ['s3:', 's3:/'] }),
    ).toBe(1);
  });

  it('deletes in batches of 1,000 keys per bucket, with the exact byte count', async () => {
    const { s3, storage } = fresh({}, ['s3://snapcat/root', 's3://other/root']);
    let bytes = 0;
    for (let i = 0; i < 2500; i += 1) {
      s3.put(`s3://snapcat/root/big/f${String(i).padStart(4, '0')}`, 1 + (i % 7));
      bytes += 1 + (i % 7);
    }
    s3.put('s3://other/root/chk/x', 11);
    const removed = await storage.remove({
      locations: ['s3://snapcat/root/big', 's3://other/root/chk'],
      stateHandles: [],
    });
    expect(removed).toBe(bytes + 11);
    const deletes = s3.calls.filter((c) => c.name === 'DeleteObjectsCommand');
    expect(
      deletes.map((c) => [c.input.Bucket, (c.input.Delete as { Objects: unknown[] }).Objects.length]),
    ).toEqual([
      ['snapcat', 1000],
      ['snapcat', 1000],
      ['snapcat', 500],
      ['other', 1],
    ]);
    expect(s3.objects.size).toBe(0);
  });

  it('keeps at most `concurrency` requests in flight (8 unless configured)', async () => {
    // Each alone in its directory: looked up one by one.
    const handles = Array.from({ length: 30 }, (_, i) => ({ path: `${ROOT}/shared/${i}/h`, sizeBytes: 1 }));
    const byDefault = fresh();
    for (const h of handles) byDefault.s3.put(h.path, 2);
    expect(await byDefault.storage.measure({ locations: [], stateHandles: handles })).toBe(60);
    expect(byDefault.s3.maxInFlight).toBe(8);
    const three = fresh({ concurrency: 3 });
    for (const h of handles) three.s3.put(h.path, 2);
    expect(await three.storage.measure({ locations: [], stateHandles: handles })).toBe(60);
    expect(three.s3.maxInFlight).toBe(3);
    // Fewer items than the limit: one worker per item, and every result in its place.
    const few = fresh();
    few.s3.put(`${ROOT}/shared/0/h`, 2);
    expect(await few.storage.measure({ locations: [], stateHandles: handles.slice(0, 2) })).toBe(2);
  });

  it('reads many handles of one directory (an orphan sweep’s) from its listing, a page per 1,000, not a HEAD and a LIST each', async () => {
    const { s3, storage } = fresh();
    const handles = Array.from({ length: 4050 }, (_, i) => ({ path: `${ROOT}/orphans/f${i}`, sizeBytes: 1 }));
    for (const h of handles.slice(1)) s3.put(h.path, 3); // the first is gone already
    s3.put(`${ROOT}/orphans/sub/kept`, 5); // below it, not one of them
    expect(await storage.remove({ locations: [], stateHandles: handles })).toBe(4049 * 3);
    expect(s3.count('HeadObjectCommand')).toBe(0);
    // 5 pages to size them, 5 DeleteObjects, 1 page to see them gone (the listing is short then).
    expect(s3.count('ListObjectsV2Command')).toBe(6);
    expect([...s3.objects.keys()]).toEqual(['snapcat/root/orphans/sub/kept']);
  });

  it('a few handles in a large directory: the listing stops after its budget, the rest are looked up by key', async () => {
    const { s3, storage } = fresh();
    for (let i = 0; i < 5000; i += 1) s3.put(`${ROOT}/shared/a${String(i).padStart(5, '0')}`, 1);
    const handles = Array.from({ length: 20 }, (_, i) => ({ path: `${ROOT}/shared/z${i}`, sizeBytes: 1 }));
    for (const h of handles) s3.put(h.path, 7);
    expect(await storage.measure({ locations: [], stateHandles: handles })).toBe(140);
    // ceil(20 / 16) = 2 pages listed (none of them reached), then a HEAD each.
    expect(s3.count('ListObjectsV2Command')).toBe(2);
    expect(s3.count('HeadObjectCommand')).toBe(20);
  });

  it('retries the keys a batch could not delete, only those, backing off twice as long each time', async () => {
    const { s3, storage } = fresh({ backoffMs: 30 });
    for (let i = 0; i < 4; i += 1) s3.put(`${ROOT}/chk-5/f${i}`, 10);
    s3.failKeys.set('root/chk-5/f1', { Code: 'InternalError' });
    let deletes = 0;
    s3.fault = (name) => {
      if (name === 'DeleteObjectsCommand' && ++deletes === 3) s3.failKeys.clear();
      return undefined;
    };
    expect(await storage.remove({ locations: [`${ROOT}/chk-5`], stateHandles: [] })).toBe(40);
    const batches = s3.calls.filter((c) => c.name === 'DeleteObjectsCommand');
    expect(
      batches.map((c) => (c.input.Delete as { Objects: { Key: string }[] }).Objects.map((o) => o.Key)),
    ).toEqual([
      ['root/chk-5/f0', 'root/chk-5/f1', 'root/chk-5/f2', 'root/chk-5/f3'],
      ['root/chk-5/f1'],
      ['root/chk-5/f1'],
    ]);
    expect(batches[1]!.at - batches[0]!.at).toBeGreaterThanOrEqual(29);
    expect(batches[2]!.at - batches[1]!.at).toBeGreaterThanOrEqual(59);
    expect(batches[2]!.at - batches[1]!.at).toBeLessThan(500);
  });

  it('a failed deletion sends nothing more once it has failed: no batch starts after the first failure, and remove() answers only when those in flight have ended', async () => {
    const { s3, storage } = fresh({ concurrency: 2 });
    for (let i = 0; i < 5000; i += 1) s3.put(`${ROOT}/imp/f${String(i).padStart(5, '0')}`, 1);
    let batches = 0;
    s3.fault = (name) =>
      name === 'DeleteObjectsCommand' && ++batches === 1
        ? Object.assign(new Error('Access Denied'), {
            name: 'AccessDenied',
            $metadata: { httpStatusCode: 403 },
          })
        : undefined;
    await expect(storage.remove({ locations: [`${ROOT}/imp`], stateHandles: [] })).rejects.toThrow(
      'Access Denied',
    );
    const sentWhenAnswered = s3.count('DeleteObjectsCommand');
    const left = s3.objects.size;
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The first batch refused, the other worker's batch in flight then: two, and nothing after the answer.
    expect({ sent: s3.count('DeleteObjectsCommand'), left: s3.objects.size }).toEqual({ sent: 2, left });
    expect(sentWhenAnswered).toBe(2);
    expect(left).toBe(4000);
  });

  it.each([true, false])(
    'a listed key with a .. segment is refused before anything is deleted (a store without DeleteObjects: %s), as DeleteObject would carry it in its URL, which a store may resolve',
    async (withoutDeleteObjects) => {
      const { s3, storage } = fresh({ concurrency: 2 }, [`${ROOT}/team-a`, `${ROOT}/team-b`]);
      for (let i = 0; i < 2500; i += 1) s3.put(`${ROOT}/team-a/imp/f${String(i).padStart(5, '0')}`, 1);
      s3.objects.set('snapcat/root/team-a/imp/../../team-b/live', { size: 1 }); // listed under imp/, literally
      s3.fault = (name) =>
        withoutDeleteObjects && name === 'DeleteObjectsCommand'
          ? Object.assign(new Error('not implemented'), {
              name: 'NotImplemented',
              $metadata: { httpStatusCode: 501 },
            })
          : undefined;
      const refused = await storage
        .remove({ locations: [`${ROOT}/team-a/imp`], stateHandles: [], keep: [`${ROOT}/team-b/live`] })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(refused).toBeInstanceOf(LocationRefusedError);
      expect(String(refused)).toContain('team-a/imp/../../team-b/live');
      expect(s3.count('DeleteObjectCommand') + s3.count('DeleteObjectsCommand')).toBe(0);
      expect(s3.objects.size).toBe(2501);
    },
  );

  it('a root claim S3 refuses to read (403: no ListBucket on the key) is no claim when a listing of the key finds none, and unreadable when it finds one', async () => {
    const { s3, storage } = fresh();
    const forbidden = () =>
      Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    s3.fault = (name) => (name === 'GetObjectCommand' ? forbidden() : undefined);
    expect(await storage.claimIn(ROOT)).toBeUndefined();
    s3.objects.set('snapcat/root/.snapcat-root.json', { size: 10 });
    await expect(storage.claimIn(ROOT)).rejects.toThrow('Access Denied');
  });

  it('gives up on a key after its attempts (5 unless configured), naming the count and the first error', async () => {
    const { s3, storage } = fresh();
    s3.put(`${ROOT}/chk-6/a`, 1);
    s3.put(`${ROOT}/chk-6/b`, 1);
    s3.failKeys.set('root/chk-6/a', { Code: 'AccessDenied', Message: 'no' });
    s3.failKeys.set('root/chk-6/b', { Code: 'InternalError' });
    await expect(storage.remove({ locations: [`${ROOT}/chk-6`], stateHandles: [] })).rejects.toThrow(
      new Error('could not delete 2 objects of s3://snapcat: AccessDenied no'),
    );
    expect(s3.count('DeleteObjectsCommand')).toBe(5);
    const three = fresh({ attempts: 3 });
    three.s3.put(`${ROOT}/chk-6/b`, 1);
    three.s3.failKeys.set('root/chk-6/b', { Code: 'SlowDown' });
    await expect(three.storage.remove({ locations: [`${ROOT}/chk-6`], stateHandles: [] })).rejects.toThrow(
      new Error('could not delete 1 objects of s3://snapcat: SlowDown '),
    );
    expect(three.s3.count('DeleteObjectsCommand')).toBe(3);
  });

  it.each([
    ['a 5xx', { $metadata: { httpStatusCode: 500 } }],
    ['a 503', { $metadata: { httpStatusCode: 503 } }],
    ['429', { $metadata: { httpStatusCode: 429 } }],
    ['SlowDown by name', { name: 'SlowDown' }],
    ['SlowDown by code', { Code: 'SlowDown' }],
    ['a reset connection', { code: 'ECONNRESET' }],
    ['a refused connection', { code: 'ECONNREFUSED' }],
  ])('retries %s, up to its attempts', async (_name, failure) => {
    const { s3, storage } = fresh({ attempts: 3 });
    s3.put(`${ROOT}/chk-7/a`, 4);
    let failures = 2;
    s3.fault = (name) =>
      name === 'ListObjectsV2Command' && failures-- > 0 ? Object.assign(new Error('x'), failure) : undefined;
    expect(await storage.measure({ locations: [`${ROOT}/chk-7`], stateHandles: [] })).toBe(4);
    expect(s3.count('ListObjectsV2Command')).toBe(3);
    failures = 3;
    s3.calls.length = 0;
    await expect(storage.measure({ locations: [`${ROOT}/chk-7`], stateHandles: [] })).rejects.toThrow('x');
    expect(s3.count('ListObjectsV2Command')).toBe(3);
  });

  it.each([
    ['a 4xx', { $metadata: { httpStatusCode: 400 } }],
    ['a 499', { $metadata: { httpStatusCode: 499 } }],
    ['no status at all', {}],
    ['another code', { code: 'EPIPE', name: 'Other', Code: 'Other' }],
  ])('does not retry %s', async (_name, failure) => {
    const { s3, storage } = fresh();
    s3.fault = () => Object.assign(new Error('denied'), failure);
    await expect(storage.measure({ locations: [`${ROOT}/x`], stateHandles: [] })).rejects.toThrow('denied');
    expect(s3.calls).toHaveLength(1);
    // A HEAD that fails with anything but 404 or 403 (both: gone; s3-compat.test.ts) fails the request too.
    s3.calls.length = 0;
    await expect(
      storage.measure({ locations: [], stateHandles: [{ path: `${ROOT}/h`, sizeBytes: 1 }] }),
    ).rejects.toThrow('denied');
  });

  it('asks the timer for backoffMs, then twice that, before each retry: of a batch and of a request', async () => {
    const delays = (spy: jest.SpyInstance) =>
      spy.mock.calls.map((call) => call[1] as number | undefined).filter((ms) => ms !== undefined && ms > 0);
    const batch = fresh({ backoffMs: 10 });
    for (let i = 0; i < 2; i += 1) batch.s3.put(`${ROOT}/chk-8/f${i}`, 1);
    batch.s3.failKeys.set('root/chk-8/f1', { Code: 'InternalError' });
    let deletes = 0;
    batch.s3.fault = (name) => {
      if (name === 'DeleteObjectsCommand' && ++deletes === 3) batch.s3.failKeys.clear();
      return undefined;
    };
    const timer = jest.spyOn(global, 'setTimeout');
    try {
      await batch.storage.remove({ locations: [`${ROOT}/chk-8`], stateHandles: [] });
      expect(delays(timer)).toEqual([10, 20]);
      timer.mockClear();
      const request = fresh({ backoffMs: 10, attempts: 3 });
      let failures = 2;
      request.s3.fault = () =>
        failures-- > 0 ? Object.assign(new Error('slow'), { name: 'SlowDown' }) : undefined;
      await request.storage.measure({ locations: [`${ROOT}/x`], stateHandles: [] });
      expect(delays(timer)).toEqual([10, 20]);
    } finally {
      timer.mockRestore();
    }
  });

  it('backs off 200 ms before a retry unless configured', async () => {
    const s3 = new FakeS3();
    const storage = new S3SnapshotStorage([ROOT], s3.client, { attempts: 2 });
    let failures = 1;
    s3.fault = () => (failures-- > 0 ? Object.assign(new Error('slow'), { name: 'SlowDown' }) : undefined);
    await storage.measure({ locations: [`${ROOT}/x`], stateHandles: [] });
    const [first, second] = s3.calls;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(195);
  });

  it('writes the manifest as pretty JSON under the directory and answers its location', async () => {
    const { s3, storage } = fresh();
    expect(await storage.writeManifest(`${ROOT}/sp/savepoint-1/`, { snapshotId: 1 })).toBe(
      `${ROOT}/sp/savepoint-1/snapcat-manifest.json`,
    );
    expect(s3.calls.map((c) => [c.name, c.input])).toEqual([
      [
        'PutObjectCommand',
        {
          Bucket: 'snapcat',
          Key: 'root/sp/savepoint-1/snapcat-manifest.json',
          Body: '{\n  "snapshotId": 1\n}\n',
          ContentType: 'application/json',
        },
      ],
    ]);
    await expect(storage.writeManifest('s3://snapcat/elsewhere', {})).rejects.toBeInstanceOf(
      LocationRefusedError,
    );
  });

  it('lists the files of every root, with their sizes and times (0 when the store says nothing)', async () => {
    const { s3, storage } = fresh({}, [ROOT, 's3://other']);
    s3.put(`${ROOT}/a`, 3, new Date(5000));
    s3.put(`${ROOT}x/not-mine`, 3, new Date(5000));
    s3.put('s3://other/deep/b', -1);
    expect(await collect(storage.listFiles())).toEqual([
      { path: `${ROOT}/a`, size: 3, mtimeMs: 5000 },
      { path: 's3://other/deep/b', size: 0, mtimeMs: 0 },
    ]);
    expect(s3.calls.map((c) => c.input.Prefix)).toEqual(['root/', '']);
  });
});
