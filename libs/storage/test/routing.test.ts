import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LocalSnapshotStorage,
  LocationRefusedError,
  RoutingSnapshotStorage,
  S3SnapshotStorage,
  openSnapshotStorage,
  type DeletionRequest,
  type SnapshotStorage,
  type StoredFile,
} from '../src';
import { collect } from '../../../test/support/async';

/** A storage that records what it is asked and answers fixed numbers. */
class Recording implements SnapshotStorage {
  readonly requests: [string, unknown][] = [];
  constructor(
    private readonly bytes: number,
    private readonly files: StoredFile[] = [],
  ) {}
  async measure(request: DeletionRequest) {
    this.requests.push(['measure', request]);
    return this.bytes;
  }
  async remove(request: DeletionRequest) {
    this.requests.push(['remove', request]);
    return this.bytes * 10;
  }
  async writeManifest(directory: string) {
    this.requests.push(['writeManifest', directory]);
    return `${directory}/snapcat-manifest.json`;
  }
  async isWithinRoots(location: string) {
    this.requests.push(['isWithinRoots', location]);
    return true;
  }
  async whyNotStateFile(location: string) {
    this.requests.push(['whyNotStateFile', location]);
    return undefined;
  }
  spelledWithinRoots(location: string) {
    this.requests.push(['spelledWithinRoots', location]);
    return true;
  }
  async holdsFiles(location: string) {
    this.requests.push(['holdsFiles', location]);
    return this.bytes > 0;
  }
  async *listFiles() {
    yield* this.files;
  }
  async claimRoots(catalogue: string) {
    this.requests.push(['claimRoots', catalogue]);
    return [{ root: `root-of-${this.bytes}`, catalogue, claimedAt: '2026-01-01T00:00:00.000Z' }];
  }
  async claimIn(directory: string) {
    this.requests.push(['claimIn', directory]);
    return undefined;
  }
}

describe('RoutingSnapshotStorage', () => {
  it('needs at least one storage', () => {
    expect(() => new RoutingSnapshotStorage(undefined, undefined)).toThrow(
      'at least one storage root is required',
    );
  });

  it('splits a request by scheme, each part keeping the kept locations, and adds up the bytes', async () => {
    const local = new Recording(1);
    const s3 = new Recording(2);
    const routing = new RoutingSnapshotStorage(local, s3);
    const request = {
      locations: ['/data/chk-1', 's3://b/chk-1', 'file:///data/chk-2', 'S3A://b/chk-2'],
      stateHandles: [
        { path: '/data/shared/x', sizeBytes: 1 },
        { path: 's3p://b/shared/y', sizeBytes: 2 },
      ],
      keep: ['/data/keep', 's3://b/keep'],
    };
    expect(await routing.measure(request)).toBe(3);
    expect(await routing.remove(request)).toBe(30);
    const localPart = {
      locations: ['/data/chk-1', 'file:///data/chk-2'],
      stateHandles: [{ path: '/data/shared/x', sizeBytes: 1 }],
      keep: request.keep,
    };
    const s3Part = {
      locations: ['s3://b/chk-1', 'S3A://b/chk-2'],
      stateHandles: [{ path: 's3p://b/shared/y', sizeBytes: 2 }],
      keep: request.keep,
    };
    expect(local.requests).toEqual([
      ['measure', localPart],
      ['remove', localPart],
    ]);
    expect(s3.requests).toEqual([
      ['measure', s3Part],
      ['remove', s3Part],
    ]);
  });

  it('asks only the storages a request names; a request without keep gives parts that keep nothing', async () => {
    const local = new Recording(1);
    const s3 = new Recording(2);
    const routing = new RoutingSnapshotStorage(local, s3);
    expect(await routing.measure({ locations: [], stateHandles: [{ path: 's3://b/x', sizeBytes: 1 }] })).toBe(
      2,
    );
    expect(local.requests).toEqual([]);
    expect(s3.requests).toEqual([
      ['measure', { locations: [], stateHandles: [{ path: 's3://b/x', sizeBytes: 1 }], keep: [] }],
    ]);
    expect(await routing.measure({ locations: [], stateHandles: [] })).toBe(0);
  });

  it('routes manifests and root checks by scheme; a scheme without storage is refused, or not within', async () => {
    const local = new Recording(1);
    const onlyLocal = new RoutingSnapshotStorage(local, undefined);
    expect(await onlyLocal.writeManifest('/data/sp', {})).toBe('/data/sp/snapcat-manifest.json');
    const refusedS3 = await (async () => onlyLocal.writeManifest('s3://b/sp', {}))().catch((e) => e);
    expect(refusedS3).toBeInstanceOf(LocationRefusedError);
    expect(refusedS3.message).toBe('refused "s3://b/sp": no s3:// storage root is configured');
    expect(await onlyLocal.isWithinRoots('s3://b/x')).toBe(false);
    expect(await onlyLocal.isWithinRoots('/data/x')).toBe(true);
    const s3 = new Recording(2);
    const onlyS3 = new RoutingSnapshotStorage(undefined, s3);
    expect(await onlyS3.writeManifest('s3a://b/sp', {})).toBe('s3a://b/sp/snapcat-manifest.json');
    const refusedLocal = await onlyS3.remove({ locations: ['/data/x'], stateHandles: [] }).catch((e) => e);
    expect(refusedLocal.message).toBe('refused "/data/x": no local storage root is configured');
    expect(await onlyS3.isWithinRoots('/data/x')).toBe(false);
    expect(await onlyS3.isWithinRoots('s3://b/x')).toBe(true);
    expect(s3.requests).toEqual([
      ['writeManifest', 's3a://b/sp'],
      ['isWithinRoots', 's3://b/x'],
    ]);
  });

  it('lists the files of both storages, local first', async () => {
    const a = { path: '/data/a', size: 1, mtimeMs: 1 };
    const b = { path: 's3://b/b', size: 2, mtimeMs: 2 };
    expect(
      await collect(new RoutingSnapshotStorage(new Recording(0, [a]), new Recording(0, [b])).listFiles()),
    ).toEqual([a, b]);
    expect(await collect(new RoutingSnapshotStorage(undefined, new Recording(0, [b])).listFiles())).toEqual([
      b,
    ]);
    expect(await collect(new RoutingSnapshotStorage(new Recording(0, [a]), undefined).listFiles())).toEqual([
      a,
    ]);
  });

  it("claims the roots of both storages for the catalogue, and answers every root's claim", async () => {
    const claims = await new RoutingSnapshotStorage(new Recording(1), new Recording(2)).claimRoots('c1');
    expect(claims.map((c) => [c.root, c.catalogue])).toEqual([
      ['root-of-1', 'c1'],
      ['root-of-2', 'c1'],
    ]);
  });
});

describe('openSnapshotStorage', () => {
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'snapcat-open-storage-'));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  const parts = (storage: SnapshotStorage) => {
    expect(storage).toBeInstanceOf(RoutingSnapshotStorage);
    return storage as unknown as { local?: SnapshotStorage; s3?: SnapshotStorage };
  };

  it('local roots only: a local storage over them, no S3 client', async () => {
    const root = join(base, 'a');
    const storage = openSnapshotStorage([root, join(base, 'b')], { forcePathStyle: false, concurrency: 4 });
    const { local, s3 } = parts(storage);
    expect(local).toBeInstanceOf(LocalSnapshotStorage);
    expect(s3).toBeUndefined();
    expect(await storage.isWithinRoots(join(base, 'b', 'x'))).toBe(true);
    expect(await storage.isWithinRoots(join(base, 'c'))).toBe(false);
    mkdirSync(join(root, 'chk'), { recursive: true });
    writeFileSync(join(root, 'chk', 'f'), 'xyz');
    expect(await storage.measure({ locations: [join(root, 'chk')], stateHandles: [] })).toBe(3);
  });

  it('s3 roots: an S3 storage with the settings, the region from the environment (us-east-1 without one)', async () => {
    const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION };
    try {
      delete process.env.AWS_REGION;
      delete process.env.AWS_DEFAULT_REGION;
      const both = openSnapshotStorage([join(base, 'a'), 's3://bucket/prefix'], {
        forcePathStyle: true,
        concurrency: 3,
      });
      const { local, s3 } = parts(both);
      expect(local).toBeInstanceOf(LocalSnapshotStorage);
      expect(s3).toBeInstanceOf(S3SnapshotStorage);
      const inner = s3 as unknown as {
        concurrency: number;
        roots: unknown[];
        client: { config: { region: () => Promise<string>; forcePathStyle?: boolean } };
      };
      expect(inner.concurrency).toBe(3);
      expect(inner.roots).toEqual([{ bucket: 'bucket', key: 'prefix' }]);
      expect(await inner.client.config.region()).toBe('us-east-1');
      expect(inner.client.config.forcePathStyle).toBe(true);
      expect(await both.isWithinRoots('s3://bucket/prefix/x')).toBe(true);
      expect(await both.isWithinRoots('s3://bucket/other')).toBe(false);

      process.env.AWS_DEFAULT_REGION = 'eu-west-3';
      const regional = parts(
        openSnapshotStorage(['s3a://bucket'], { forcePathStyle: false, concurrency: 1 }),
      );
      expect(regional.local).toBeUndefined();
      const client = (regional.s3 as unknown as typeof inner).client;
      expect(await client.config.region()).toBe('eu-west-3');
      expect(client.config.forcePathStyle).toBe(false);
      process.env.AWS_REGION = 'ap-south-1';
      const preferred = parts(
        openSnapshotStorage(['s3://bucket'], { forcePathStyle: false, concurrency: 1 }),
      );
      expect(await (preferred.s3 as unknown as typeof inner).client.config.region()).toBe('ap-south-1');
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
