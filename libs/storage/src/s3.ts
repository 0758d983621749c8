import type * as S3Sdk from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { normaliseLocation } from '@snapcat/domain';
import {
  LocationRefusedError,
  MANIFEST_FILE_NAME,
  ROOT_CLAIM_FILE,
  STORAGE_ROOT_REFUSED,
  claimRoot,
  isRootClaimFile,
  parseRootClaim,
  type DeletionRequest,
  type RootClaim,
  type SnapshotStorage,
  type StateFileRefusal,
  type StoredFile,
} from './port';

/** `s3://`, and Flink's `s3a://` and `s3p://` for the same store. */
export const S3_SCHEME = /^s3[ap]?:\/\//i;

/**
 * The AWS SDK, required when S3 is first used rather than when this module loads: ~1 MB of JavaScript that
 * every start without an s3:// root would parse for nothing (BENCHMARKS.md #17).
 */
let loadedSdk: typeof S3Sdk | undefined;
export function s3Sdk(): typeof S3Sdk {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- on first use, as said above
  return (loadedSdk ??= require('@aws-sdk/client-s3') as typeof S3Sdk);
}

export interface S3Location {
  bucket: string;
  /** The object key (or key prefix of a directory), without a trailing slash. */
  key: string;
}

interface S3Object extends S3Location {
  size: number;
}

export interface S3StorageOptions {
  /** DeleteObjects and HeadObject requests in flight at once per bucket. */
  concurrency?: number;
  /** Attempts of a batch (or of its failed keys) before the deletion fails (and is retried by the worker). */
  attempts?: number;
  /** First backoff after SlowDown, 5xx or a per-key error; doubles each attempt. */
  backoffMs?: number;
}

const BATCH = 1000; // DeleteObjects takes at most 1,000 keys
/**
 * Keys sought in one directory from this many on are read from its listing, for at most one page per this
 * many: at worst a few more requests than a HEAD each (a few files in a large `shared/`), at best a thousandth.
 */
const LISTED_KEYS_PER_PAGE = 16;

/** S3 lists keys in the byte order of their UTF-8 (not JavaScript's UTF-16 order). */
const inListingOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * Parses an S3 location, refusing anything that could name a key outside the prefix it appears to be
 * under: `.` and `..` segments, empty segments, backslashes, control characters, and percent-encoded
 * dots, slashes and backslashes (S3 keys are literal, but a client or proxy may decode them).
 */
export function parseS3Location(location: string): S3Location {
  const match = /^s3[ap]?:\/\/([^/]*)(?:\/(.*))?$/i.exec(location);
  if (!match) throw new LocationRefusedError(location, 'not an s3:// location');
  const bucket = match[1]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new LocationRefusedError(location, 'not a valid bucket name');
  }
  const key = (match[2] ?? '').replace(/\/+$/, '');
  if (/[\u0000-\u001f\\]/.test(key)) {
    throw new LocationRefusedError(location, 'contains a control character or a backslash');
  }
  if (/%(2e|2f|5c)/i.test(key)) {
    throw new LocationRefusedError(location, 'contains a percent-encoded dot, slash or backslash');
  }
  if (key !== '' && key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new LocationRefusedError(location, 'contains an empty, . or .. segment');
  }
  return { bucket, key };
}

const url = (o: S3Location) => `s3://${o.bucket}/${o.key}`;
/** Where a directory's claim lies (`ROOT_CLAIM_FILE` directly in it; a bucket's at its top). */
const claimObject = (directory: S3Location): S3Location => ({
  bucket: directory.bucket,
  key: directory.key === '' ? ROOT_CLAIM_FILE : `${directory.key}/${ROOT_CLAIM_FILE}`,
});

/**
 * Snapshot storage on S3 and S3-compatible stores (MinIO, Ceph, GCS's interoperability API), through the
 * AWS SDK, confined to `s3://bucket/prefix` roots exactly as local storage is to its directories. A
 * directory is every object under its key prefix; deletions go in DeleteObjects batches of 1,000 with
 * bounded concurrency, retry per-key errors and back off on SlowDown and 5xx answers.
 */
export class S3SnapshotStorage implements SnapshotStorage {
  private readonly roots: S3Location[];
  private readonly concurrency: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  /** Buckets whose store answered DeleteObjects NotImplemented (GCS's XML API): deleted one key at a time. */
  private readonly oneByOne = new Set<string>();

  constructor(
    roots: string[],
    private readonly client: S3Client,
    options: S3StorageOptions = {},
  ) {
    if (roots.length === 0) throw new Error('at least one s3:// storage root is required');
    this.roots = roots.map(parseS3Location);
    this.concurrency = options.concurrency ?? 8;
    this.attempts = options.attempts ?? 5;
    this.backoffMs = options.backoffMs ?? 200;
  }

  /**
   * A bucket with versioning enabled (or suspended, with versions kept from before) keeps every object
   * snapcat deletes as a noncurrent version behind a delete marker: the bytes a discard reports reclaimed
   * are still stored (and billed) until a lifecycle rule expires noncurrent versions. Said, not refused: the
   * catalogue is right either way. A bucket whose versioning may not be read (s3:GetBucketVersioning, in the
   * README's policy) is said too: it may be versioned.
   */
  async deletionCaveats(): Promise<string[]> {
    const caveats: string[] = [];
    for (const bucket of new Set(this.roots.map((root) => root.bucket))) {
      const status = await this.client
        .send(new (s3Sdk().GetBucketVersioningCommand)({ Bucket: bucket }))
        .then((answer) => answer.Status)
        .catch((error: Error) => error);
      if (status instanceof Error) {
        caveats.push(
          `the versioning of bucket ${bucket} could not be read (${status.name}: allow s3:GetBucketVersioning): ` +
            'if it is versioned, what snapcat deletes stays stored as noncurrent versions and the bytes reclaimed ' +
            'snapcat reports are freed only when a lifecycle rule expires them',
        );
        continue;
      }
      if (status !== 'Enabled' && status !== 'Suspended') continue;
      caveats.push(
        `bucket ${bucket} has versioning ${status.toLowerCase()}: what snapcat deletes stays stored as noncurrent ` +
          'versions (behind delete markers) until a lifecycle rule expires them (NoncurrentVersionExpiration); ' +
          'the bytes reclaimed snapcat reports are freed only then',
      );
    }
    return caveats;
  }

  /**
   * A state handle's place: inside a root, and not a root itself (the object whose key is the root's, which
   * `remove` refuses: its snapshot's discard would fail for good, a walkthrough found).
   */
  spelledWithinRoots(location: string): boolean {
    const at = this.confinedOrUndefined(location);
    return at !== undefined && !this.roots.some((root) => root.bucket === at.bucket && root.key === at.key);
  }

  /** A key is a file or nothing (no links, no directories in a bucket): the spelling answers. */
  async whyNotStateFile(location: string): Promise<StateFileRefusal | undefined> {
    if (this.spelledWithinRoots(location)) return undefined;
    return { rule: 'within-storage-roots', message: 'must lie inside the configured storage roots' };
  }

  /** Keys are confined by their spelling alone (no links in a bucket); a root itself is a place too. */
  async isWithinRoots(location: string): Promise<boolean> {
    return this.confinedOrUndefined(location) !== undefined;
  }

  private confinedOrUndefined(location: string): S3Location | undefined {
    try {
      return this.confine(location);
    } catch (error) {
      if (error instanceof LocationRefusedError) return undefined;
      throw error;
    }
  }

  async measure(request: DeletionRequest): Promise<number> {
    return sum(await this.objectsOf(request));
  }

  async holdsFiles(location: string): Promise<boolean> {
    const at = this.confine(location);
    if (at.key === '') return !(await this.list(at.bucket, '').next()).done; // a whole bucket
    // Below it first, listed as `key/` (a listing of `chk-1` alone pages through every `chk-1…` neighbour
    // before it can say no), then the object at the key itself: one page each at most (the listing is lazy).
    if (!(await this.list(at.bucket, `${at.key}/`).next()).done) return true;
    return (await this.listedObject(at)) !== undefined;
  }

  async remove(request: DeletionRequest): Promise<number> {
    // A root without a key is a whole bucket: its listing would name nothing (and report success). A state
    // handle naming a root is the object whose key is the root's own (`s3://b/root`, not under `root/`):
    // outside every root's key space, so never deleted (a review deleted it through a handle).
    for (const location of [...request.locations, ...request.stateHandles.map((h) => h.path)]) {
      const at = this.confine(location);
      if (this.roots.some((root) => root.bucket === at.bucket && root.key === at.key)) {
        throw new LocationRefusedError(location, STORAGE_ROOT_REFUSED);
      }
    }
    const objects = await this.objectsOf(request);
    // A listed key the adapter would refuse as a location (a `.` or `..` segment, an empty one, a percent-encoded
    // dot or slash) is refused before anything is deleted: a store without DeleteObjects gets one DeleteObject
    // per key, in its URL, where a store may resolve `..` (s3rver does: a review deleted another root's object
    // through a listed `imp/../../team-b/live`). The discard then fails for good; `force` ends it.
    for (const o of objects) parseS3Location(url(o));
    const byBucket = new Map<string, S3Object[]>();
    for (const o of objects) {
      const list = byBucket.get(o.bucket);
      if (list) list.push(o);
      else byBucket.set(o.bucket, [o]);
    }
    let bytes = 0;
    for (const [bucket, list] of byBucket) {
      const batches: S3Object[][] = [];
      for (let i = 0; i < list.length; i += BATCH) batches.push(list.slice(i, i + BATCH));
      const deleted = await inParallel(batches, this.concurrency, (batch) => this.deleteBatch(bucket, batch));
      bytes += deleted.reduce((total, n) => total + n, 0);
    }
    // The directories listed again, and each state handle deleted looked up by its key: a store may answer
    // DeleteObjects without deleting (S3's quiet answer to a success is empty, so the answer cannot tell), and
    // an object may have arrived since the listing. What is left fails the deletion (its discard is retried),
    // so that the catalog says DISCARDED only when nothing of it is left.
    const inDirectories = await this.objectsOf({ ...request, stateHandles: [] });
    const directories = request.locations.map((l) => this.confine(l));
    const handles = objects.filter((o) => !directories.some((d) => isUnder(o, d)));
    const handlesLeft = await this.objectsAt(handles, (h) => this.listedObject(h));
    const left = [...inDirectories, ...handlesLeft.values()];
    if (left.length > 0) {
      throw new Error(
        `${left.length} objects are still there after their deletion (the first: ${url(left[0]!)}): tried again later`,
      );
    }
    return bytes;
  }

  async writeManifest(directory: string, manifest: unknown): Promise<string> {
    const dir = this.confine(directory);
    const target = { bucket: dir.bucket, key: `${dir.key}/${MANIFEST_FILE_NAME}` };
    // A PUT is atomic: a reader sees the whole manifest or none.
    await this.client.send(
      new (s3Sdk().PutObjectCommand)({
        Bucket: target.bucket,
        Key: target.key,
        Body: `${JSON.stringify(manifest, null, 2)}\n`,
        ContentType: 'application/json',
      }),
    );
    return url(target);
  }

  async claimRoots(catalogue: string, { evenIfNotEmpty = false } = {}): Promise<RootClaim[]> {
    return Promise.all(
      this.roots.map((root) =>
        claimRoot(
          {
            root: url(root).replace(/\/$/, ''),
            where: url(claimObject(root)),
            read: () => this.claimIn(url(root)),
            holdsOtherThanClaims: () => this.holdsOtherThanClaims(root),
            createIfAbsent: (text) => this.putIfAbsent(claimObject(root), text),
          },
          catalogue,
          evenIfNotEmpty,
        ),
      ),
    );
  }

  async claimIn(directory: string): Promise<RootClaim | undefined> {
    const at = claimObject(this.confine(directory));
    let answer;
    try {
      answer = await this.withBackoff(() =>
        this.client.send(new (s3Sdk().GetObjectCommand)({ Bucket: at.bucket, Key: at.key })),
      );
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      // Under the README's policy (ListBucket on the roots' prefixes only) S3 answers a GET of a key that is not
      // there with 403: a listing of the key tells (a review: every sweep failed on the claim it could not read).
      if (statusOf(error) === 403 && (await this.listedObject(at)) === undefined) return undefined;
      throw error;
    }
    const text = (await answer.Body?.transformToString('utf8')) ?? '';
    // The store's own clock, as the listed objects' times are.
    const modified = answer.LastModified?.getTime() ?? Date.now();
    return parseRootClaim(directory.replace(/\/+$/, ''), text, modified, url(at));
  }

  /** Whether the root holds an object that is not a claim (one page of its listing at most, lazily). */
  private async holdsOtherThanClaims(root: S3Location): Promise<boolean> {
    for await (const o of this.list(root.bucket, root.key === '' ? '' : `${root.key}/`)) {
      if (!o.key.endsWith('/') && !isRootClaimFile(o.key)) return true;
    }
    return false;
  }

  /**
   * Writes the object unless one is there (S3's conditional `If-None-Match: *`): of two writers the first
   * wins. A store that lacks conditional writes (501) takes a plain PUT: the last of a race wins there.
   */
  private async putIfAbsent(at: S3Location, body: string): Promise<void> {
    const put = (conditional: boolean) =>
      this.client.send(
        new (s3Sdk().PutObjectCommand)({
          Bucket: at.bucket,
          Key: at.key,
          Body: body,
          ContentType: 'application/json',
          ...(conditional ? { IfNoneMatch: '*' } : {}),
        }),
      );
    try {
      await put(true);
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 409) return; // another writer's claim is there: read back
      if (!isNotImplemented(error)) throw error;
      await put(false);
    }
  }

  async *listFiles(under?: string): AsyncGenerator<StoredFile> {
    // A root inside another (or given twice) is listed with it: its objects once, not once per root.
    const outermost = this.roots.filter(
      (root, i) =>
        !this.roots.some(
          (other, j) =>
            j !== i &&
            other.bucket === root.bucket &&
            (root.key === other.key ? j < i : other.key === '' || root.key.startsWith(`${other.key}/`)),
        ),
    );
    for (const root of under === undefined ? outermost : [this.confine(under)]) {
      for await (const o of this.list(root.bucket, root.key === '' ? '' : `${root.key}/`)) {
        // A directory marker (Hadoop's S3A writes `dir/` objects) is no file; a key this adapter would refuse to
        // delete (`a//b`, `..`, a percent-encoded slash) is left out too, so that it cannot fail a whole sweep.
        if (o.key.endsWith('/') || !(await this.isWithinRoots(url(o)))) continue;
        yield { path: url(o), size: o.size, mtimeMs: o.modified };
      }
    }
  }

  /** The location as a bucket and key, if it lies inside a root; refused otherwise. */
  private confine(location: string): S3Location {
    const parsed = parseS3Location(location);
    const inside = this.roots.some(
      (root) =>
        root.bucket === parsed.bucket &&
        (root.key === '' || parsed.key === root.key || parsed.key.startsWith(`${root.key}/`)),
    );
    if (!inside) throw new LocationRefusedError(location, 'outside the configured storage roots');
    return parsed;
  }

  /** Every object the request covers (directories listed, handles looked up), less what it keeps. */
  private async objectsOf(request: DeletionRequest): Promise<S3Object[]> {
    const found = new Map<string, S3Object>();
    const directories = request.locations.map((l) => this.confine(l));
    const handles = request.stateHandles.map((h) => this.confine(h.path));
    for (const dir of directories) {
      for await (const o of this.list(dir.bucket, dir.key)) {
        if (isUnder(o, dir)) found.set(url(o), o);
      }
    }
    const missing = handles.filter((h) => !found.has(url(h)));
    const sized = await this.objectsAt(missing, async (h) => {
      const size = await this.sizeOf(h);
      return size === undefined ? undefined : { ...h, size };
    });
    for (const [at, o] of sized) found.set(at, o);
    const keep = new Set((request.keep ?? []).map(normaliseLocation));
    // A claim file is never deleted: another catalogue's root nested in what is deleted keeps its claim.
    return [...found.values()].filter(
      (o) => !isKept(normaliseLocation(url(o)), keep) && !isRootClaimFile(o.key),
    );
  }

  /**
   * Every object under the prefix, a page at a time. A truncated page without a continuation token (a server
   * answering as ListObjects V1 does) goes on after its last key; a server that hands the same token back, or
   * a truncated page with neither, is an error rather than a listing that silently stops short, since what is
   * listed here is what a discard deletes and counts.
   */
  private async *list(bucket: string, prefix: string) {
    for await (const page of this.pages(bucket, prefix)) yield* page;
  }

  /** The listing's pages; with a `delimiter` (`/`), the objects directly in the prefix only. */
  private async *pages(bucket: string, prefix: string, delimiter?: string) {
    let token: string | undefined;
    let after: string | undefined;
    for (;;) {
      const page = await this.withBackoff(() =>
        this.client.send(
          new (s3Sdk().ListObjectsV2Command)({
            Bucket: bucket,
            Prefix: prefix,
            ...(delimiter ? { Delimiter: delimiter } : {}),
            ...(token ? { ContinuationToken: token } : after ? { StartAfter: after } : {}),
          }),
        ),
      );
      const contents = page.Contents ?? [];
      yield contents.map((o) => ({
        bucket,
        key: o.Key!,
        size: o.Size ?? 0,
        modified: o.LastModified?.getTime() ?? 0,
      }));
      if (!page.IsTruncated) return;
      const last = contents.at(-1)?.Key;
      if (page.NextContinuationToken && page.NextContinuationToken !== token) {
        token = page.NextContinuationToken;
      } else if (!page.NextContinuationToken && last !== undefined && last !== after) {
        [token, after] = [undefined, last];
      } else {
        throw new Error(
          `s3://${bucket}/${prefix}: the store's listing does not advance (a truncated page with no new continuation token or key)`,
        );
      }
    }
  }

  /**
   * The objects at exactly these keys that exist, by location. Many keys of one directory (an orphan sweep's,
   * thousands) are read from a listing of its direct children, 1,000 a request, while that pays: it stops
   * past the last key sought, or after one page per LISTED_KEYS_PER_PAGE keys sought (a few files in a large
   * `shared/`); the keys it did not reach, and keys alone in their directory, are looked up one by one.
   */
  private async objectsAt(
    keys: readonly S3Location[],
    lookUp: (o: S3Location) => Promise<S3Object | undefined>,
  ): Promise<Map<string, S3Object>> {
    const found = new Map<string, S3Object>();
    const byDirectory = new Map<string, S3Location[]>();
    for (const o of keys) {
      const directory = `${o.bucket}/${o.key.slice(0, o.key.lastIndexOf('/') + 1)}`;
      const group = byDirectory.get(directory);
      if (group) group.push(o);
      else byDirectory.set(directory, [o]);
    }
    const oneByOne: S3Location[] = [];
    for (const group of byDirectory.values()) {
      if (group.length < LISTED_KEYS_PER_PAGE) {
        oneByOne.push(...group);
        continue;
      }
      const { bucket, key } = group[0]!;
      const sought = new Set(group.map((o) => o.key));
      const last = [...sought].sort(inListingOrder).at(-1)!;
      let reached = '';
      let budget = Math.ceil(group.length / LISTED_KEYS_PER_PAGE);
      let complete = true; // every key up to `last` listed
      try {
        for await (const page of this.pages(bucket, key.slice(0, key.lastIndexOf('/') + 1), '/')) {
          for (const o of page) if (sought.has(o.key)) found.set(url(o), o);
          reached = page.at(-1)?.key ?? reached;
          if (inListingOrder(reached, last) >= 0) break;
          budget -= 1;
          if (budget === 0) {
            complete = false;
            break;
          }
        }
      } catch {
        // Not listable (a policy without s3:ListBucket there): each key is looked up, as `lookUp` can.
        [complete, reached] = [false, ''];
      }
      oneByOne.push(...group.filter((o) => !complete && inListingOrder(o.key, reached) > 0));
    }
    const looked = await inParallel(oneByOne, this.concurrency, lookUp);
    for (const o of looked) if (o) found.set(url(o), o);
    return found;
  }

  private async sizeOf(o: S3Location): Promise<number | undefined> {
    try {
      const head = await this.withBackoff(() =>
        this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: o.bucket, Key: o.key })),
      );
      return head.ContentLength ?? 0;
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return undefined; // already gone: nothing to reclaim
      // 403: without s3:ListBucket on the key itself S3 answers a HEAD of a key that is gone so, and a bucket
      // policy may refuse HEAD (GetObject) of one that is there. The listing, which the README's policy grants
      // under the roots, tells which, and the size. Not listable either: unknown (counted 0); DeleteObjects,
      // which is idempotent, deletes it if it is there, and says so if deleting is refused too.
      if (status === 403) {
        const listed = await this.listedObject(o).catch(() => ({ size: 0 }));
        return listed?.size;
      }
      throw error;
    }
  }

  /** The object at exactly this key, from a listing of one (the key sorts before every longer one). */
  private async listedObject(o: S3Location): Promise<S3Object | undefined> {
    const page = await this.withBackoff(() =>
      this.client.send(new (s3Sdk().ListObjectsV2Command)({ Bucket: o.bucket, Prefix: o.key, MaxKeys: 1 })),
    );
    const first = page.Contents?.[0];
    if (first?.Key !== o.key) return undefined;
    return { bucket: o.bucket, key: o.key, size: first.Size ?? 0 };
  }

  /** Deletes one batch; keys that failed are retried with backoff. Returns the bytes deleted. */
  private async deleteBatch(bucket: string, batch: S3Object[]): Promise<number> {
    if (this.oneByOne.has(bucket)) return this.deleteEach(bucket, batch);
    let left = batch;
    for (let attempt = 1; ; attempt += 1) {
      let answer;
      try {
        answer = await this.withBackoff(() =>
          this.client.send(
            new (s3Sdk().DeleteObjectsCommand)({
              Bucket: bucket,
              Delete: { Objects: left.map((o) => ({ Key: o.key })), Quiet: true },
            }),
          ),
        );
      } catch (error) {
        if (!isNotImplemented(error)) throw error;
        // A store without multi-object delete (GCS's XML API: "POST ?delete is not implemented"): every
        // deletion of this bucket from now on takes one DeleteObject per key.
        this.oneByOne.add(bucket);
        await this.deleteEach(bucket, left);
        return sum(batch);
      }
      // A missing key counts as deleted (S3 answers so; some stores answer NoSuchKey): deletion is idempotent.
      const errors = (answer.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (errors.length === 0) return sum(batch);
      if (attempt >= this.attempts) {
        const first = errors[0]!;
        throw new Error(
          `could not delete ${errors.length} objects of s3://${bucket}: ${first.Code} ${first.Message ?? ''}`,
        );
      }
      // An error that names no key (some stores) leaves every key of the batch in doubt: all are sent again.
      const failed = new Set(errors.map((e) => e.Key));
      if (!failed.has(undefined)) left = left.filter((o) => failed.has(o.key));
      await sleep(this.backoffMs * 2 ** (attempt - 1));
    }
  }

  /** Deletes each object with DeleteObject (a key already gone counts as deleted). Returns the bytes deleted. */
  private async deleteEach(bucket: string, objects: S3Object[]): Promise<number> {
    await inParallel(objects, this.concurrency, async (o) => {
      try {
        await this.withBackoff(() =>
          this.client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: bucket, Key: o.key })),
        );
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    });
    return sum(objects);
  }

  /** Retries SlowDown, throttling and 5xx answers and lost connections, backing off exponentially. */
  private async withBackoff<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await call();
      } catch (error) {
        if (!isRetryable(error) || attempt >= this.attempts) throw error;
        await sleep(this.backoffMs * 2 ** (attempt - 1));
      }
    }
  }
}

/** Whether the object is the directory's key itself or lies below it (a key prefix alone also names `dir-x`). */
function isUnder(o: S3Location, dir: S3Location): boolean {
  return o.bucket === dir.bucket && (o.key === dir.key || o.key.startsWith(`${dir.key}/`));
}

/** Whether the location, or a directory above it (down to its bucket), is kept: O(depth). */
function isKept(location: string, keep: Set<string>): boolean {
  if (keep.size === 0) return false;
  const bucketEnd = location.indexOf('/', 's3://'.length);
  for (let end = location.length; end >= bucketEnd && end > 0; end = location.lastIndexOf('/', end - 1)) {
    if (keep.has(end === location.length ? location : location.slice(0, end))) return true;
  }
  return false;
}

const statusOf = (error: unknown) =>
  (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** The store does not implement the request (GCS's XML API answers DeleteObjects so, 501 or 400). */
function isNotImplemented(error: unknown): boolean {
  const e = error as { name?: string; Code?: string };
  return e.name === 'NotImplemented' || e.Code === 'NotImplemented' || statusOf(error) === 501;
}

function isRetryable(error: unknown): boolean {
  if (isNotImplemented(error)) return false;
  const e = error as { name?: string; Code?: string; code?: string };
  const status = statusOf(error) ?? 0;
  return (
    status >= 500 ||
    status === 429 ||
    e.name === 'SlowDown' ||
    e.Code === 'SlowDown' ||
    e.code === 'ECONNRESET' ||
    e.code === 'ECONNREFUSED' ||
    // No answer within the request timeout (the client's requestHandler), or the socket's own.
    e.name === 'TimeoutError' ||
    e.code === 'ETIMEDOUT'
  );
}

const sum = (objects: { size: number }[]) => objects.reduce((total, o) => total + o.size, 0);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Maps items with at most `limit` calls in flight, keeping their order. The first failure starts no more calls
 * and is thrown once those in flight have settled: a deletion that failed must not go on deleting after its
 * caller released the deletion fence (a review: 4,000 objects were deleted after `remove` had failed).
 */
async function inParallel<T, R>(items: T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        out[i] = await map(items[i]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return out;
}
