import type { Redis } from 'ioredis';
import type { DeletionFence } from '@snapcat/application';
import {
  DEFAULT_NAMESPACE,
  placesAround,
  restorePath,
  type JobStatus,
  type SnapshotKind,
  type SnapshotStatus,
  type SnapshotView,
  type TriggerType,
} from '@snapcat/domain';
import { parsePosition, waitForPosition, type Position } from '@snapcat/event-store';
import { execAll } from '@snapcat/runtime';
import {
  INDEXED_AT_START,
  ReadModelKeys,
  directoriesIndexedAt,
  membersBelow,
  membersOf,
  type KeySpace,
} from './keys';
import { JOB_FIRST_PAGE_SCRIPT } from './job-first-page-script';
import { RedisDeletionFence } from './deletion-fence';
import type { StoredJobSummary } from './writes';

export type StoredSnapshot = SnapshotView & { jobId: string };

/**
 * A stored job summary. Summaries written before `persistOnFailure` existed lack it: the job has it on
 * (R38), as its log replays, until the projector rewrites the summary or the read model is rebuilt. Those
 * written before versions (R61) lack them: unknown (null); those written before restores (R62) had none: no
 * latest restore, none counted.
 */
function parseJobSummary(bytes: Buffer): StoredJobSummary {
  const view = JSON.parse(bytes.toString()) as StoredJobSummary;
  if (view.checkpointing && view.checkpointing.persistOnFailure === undefined) {
    view.checkpointing = { ...view.checkpointing, persistOnFailure: true };
  }
  if (view.counts) {
    view.latestRestore ??= null;
    view.counts.restored ??= 0;
    view.counts.compacted ??= 0; // decision 0035: before finished snapshots left the state, none had
    view.source ??= null; // R67: before managed jobs, every job's clients reported its snapshots
    view.warnings ??= [];
    view.flinkRestore ??= null;
  }
  view.jobVersion ??= null;
  view.flinkVersion ??= null;
  return view;
}

/**
 * A stored snapshot view. Views projected before a field existed lack it until `snapcat replay`; each reads
 * as a replay of its events would give it: `restorePath` from its status and directory (R57), the checkpoint
 * type FULL for a savepoint and unknown for a checkpoint, and the checkpointed size as the state size, as
 * no task reported one (R58), the versions that took it unknown (null, R61).
 */
function parseSnapshot(bytes: Buffer): StoredSnapshot {
  const view = JSON.parse(bytes.toString()) as Partial<StoredSnapshot> & Omit<StoredSnapshot, UpgradedFields>;
  // What the projector writes today has every field: as parsed, not copied (a page parses 20 such views).
  if (isCurrent(view)) return view;
  return {
    ...view,
    restorePath: view.restorePath !== undefined ? view.restorePath : restorePath(view),
    checkpointType:
      view.checkpointType !== undefined ? view.checkpointType : view.kind === 'SAVEPOINT' ? 'FULL' : null,
    checkpointedSize: view.checkpointedSize ?? view.stateSize,
    claimMode: view.claimMode ?? null,
    savepointType:
      view.savepointType !== undefined ? view.savepointType : view.kind === 'SAVEPOINT' ? 'SAVEPOINT' : null,
    jobVersion: view.jobVersion ?? null,
    flinkVersion: view.flinkVersion ?? null,
    flinkCheckpointId: view.flinkCheckpointId ?? null,
    standsFor: view.standsFor ?? null,
    heldBy: view.heldBy ?? [], // written before holds were shown: a replay would show them
  };
}
const isCurrent = (view: Partial<StoredSnapshot>): view is StoredSnapshot =>
  view.restorePath !== undefined &&
  view.checkpointType !== undefined &&
  view.checkpointedSize !== undefined &&
  view.checkpointedSize !== null &&
  view.claimMode !== undefined &&
  view.savepointType !== undefined &&
  view.jobVersion !== undefined &&
  view.flinkVersion !== undefined &&
  view.flinkCheckpointId !== undefined &&
  view.standsFor !== undefined &&
  view.heldBy !== undefined;
type UpgradedFields =
  | 'restorePath'
  | 'checkpointType'
  | 'checkpointedSize'
  | 'claimMode'
  | 'savepointType'
  | 'jobVersion'
  | 'flinkVersion'
  | 'flinkCheckpointId'
  | 'standsFor'
  | 'heldBy';

export interface JobFilter {
  status?: JobStatus;
  /** Only jobs of these namespaces; absent: every namespace. */
  namespaces?: readonly string[];
}

export interface SnapshotFilter {
  kinds?: SnapshotKind[];
  statuses?: SnapshotStatus[];
  persisted?: boolean;
  triggerTypes?: TriggerType[];
  /** Only the snapshots taken by this application version (R61), exactly; unknown ones never match. */
  jobVersion?: string;
  /** Only the snapshots taken by this Flink version (R61), exactly. */
  flinkVersion?: string;
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
  /** The cursor of the last item: pass it as `after` for the next page. */
  endCursor: string | null;
}

/** A job's summary with its newest snapshots, read in one round trip (ReadModel.jobWithNewestSnapshots). */
export interface JobWithNewestSnapshots {
  summary: StoredJobSummary;
  /** As ReadModel.deletedAt. */
  deletedAt: string | null;
  /** Unfiltered, newest first: up to `first` views. */
  newest: StoredSnapshot[];
  /** Whether the job has snapshots older than those (a next page). */
  more: boolean;
  first: number;
}

const SCAN = 200;
const SPACE_TTL_MS = 1000;

/** The script's command, defined on the connection by ReadModel (ioredis runs it by EVALSHA). */
const JOB_FIRST_PAGE = 'snapcatJobFirstPage';
const JOB_FIRST_PAGE_BUFFERS = `${JOB_FIRST_PAGE}Buffer`;
type JobFirstPageReply = [] | [summary: Buffer, deletedAt: Buffer | null, views: Buffer[]];
type JobFirstPageCommand = Record<
  typeof JOB_FIRST_PAGE_BUFFERS,
  (
    ...args: [...keys: string[], jobId: string, viewKeyPrefix: string, want: number]
  ) => Promise<JobFirstPageReply>
>;

/**
 * Reads the read model (the version `current` names). Cursors are opaque base64 strings. Views are read as
 * buffers and decoded where they are parsed: strings ioredis makes while it parses a reply outlive two
 * young-generation collections and are promoted (~16 KB a GraphQL `job` query, a major GC every second under
 * load); the same bytes read as buffers die young (decision 0040).
 */
export class ReadModel {
  private readonly keys: ReadModelKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new ReadModelKeys(prefix);
    if (!(JOB_FIRST_PAGE in redis)) {
      redis.defineCommand(JOB_FIRST_PAGE, { numberOfKeys: 3, lua: JOB_FIRST_PAGE_SCRIPT });
    }
  }

  private cachedSpace: { at: number; space: Promise<KeySpace> } | undefined;
  private fence: RedisDeletionFence | undefined;

  /** Decision 0047's marks and reservations of loose files, on this connection, in the same namespace. */
  deletionFence(): DeletionFence {
    return (this.fence ??= new RedisDeletionFence(this.redis, this.keys.prefix));
  }

  /**
   * The key space `current` names, looked up at most once a second: it changes only when a rebuild
   * switches over, and the rebuild keeps the old space readable for longer than that.
   */
  private space(): Promise<KeySpace> {
    const now = Date.now();
    if (!this.cachedSpace || now - this.cachedSpace.at > SPACE_TTL_MS) {
      const space = this.redis.get(this.keys.current).then((v) => this.keys.space(Number(v ?? '1')));
      this.cachedSpace = { at: now, space };
      space.catch(() => (this.cachedSpace = undefined));
    }
    return this.cachedSpace.space;
  }

  private completeSeenAt = 0;

  /**
   * Whether the read model can answer queries whole: `complete` once its projector wrote the log as it was
   * when it began on this key space; `rebuilding` while it catches up (a first start on a long log, a rebuild
   * after Redis lost the read model); `absent` when no projector has begun on it (none runs, or one is
   * starting). A complete answer is trusted for a second, as the key space is.
   */
  async readiness(): Promise<'complete' | 'rebuilding' | 'absent'> {
    if (Date.now() - this.completeSeenAt <= SPACE_TTL_MS) return 'complete';
    const space = await this.space();
    const [origin, complete] = await execAll(
      this.redis.pipeline().exists(space.origin).exists(space.complete),
    );
    if (complete) {
      this.completeSeenAt = Date.now();
      return 'complete';
    }
    return origin ? 'rebuilding' : 'absent';
  }

  async position(): Promise<Position | null> {
    const text = await this.redis.get((await this.space()).position);
    return text ? parsePosition(text) : null;
  }

  /** Resolves once the read model has applied the event at `position` (read your own writes). */
  waitFor(position: Position, timeoutMs = 5000): Promise<boolean> {
    return waitForPosition(() => this.position(), position, { timeoutMs, pollMs: 5 });
  }

  async job(jobId: string): Promise<StoredJobSummary | null> {
    const bytes = await this.redis.getBuffer((await this.space()).job(jobId));
    return bytes ? parseJobSummary(bytes) : null;
  }

  /**
   * The job's summary, deletion time and newest `first` snapshots (unfiltered) in one round trip, all from
   * one key space at one instant: what a GraphQL `job` query with its first page asks. Null: no such job.
   */
  async jobWithNewestSnapshots(jobId: string, first: number): Promise<JobWithNewestSnapshots | null> {
    const space = await this.space();
    const command = (this.redis as unknown as JobFirstPageCommand)[JOB_FIRST_PAGE_BUFFERS];
    const reply = await command.call(
      this.redis,
      space.job(jobId),
      space.deleted,
      space.snapshots(jobId),
      jobId,
      space.snapshotKeyPrefix(jobId),
      first + 1,
    );
    if (reply.length === 0) return null;
    const [summary, deletedAt, views] = reply;
    // The script reads one view more than asked, to tell whether a next page exists: that one stays unparsed.
    const newest = views.slice(0, first).map(parseSnapshot);
    return {
      summary: parseJobSummary(summary),
      deletedAt: deletedAt && deletedAt.toString(),
      newest,
      more: views.length > first,
      first,
    };
  }

  /** When the job's stream was hard-deleted from the event store (ISO-8601); null while it was not. */
  async deletedAt(jobId: string): Promise<string | null> {
    return this.redis.hget((await this.space()).deleted, jobId);
  }

  /** The job's tasks (kept apart from its summary). */
  async tasks(jobId: string): Promise<string[]> {
    const bytes = await this.redis.getBuffer((await this.space()).jobTasks(jobId));
    return bytes ? (JSON.parse(bytes.toString()) as string[]) : [];
  }

  /**
   * The ids of the jobs the read model holds whose id starts with `prefix` (hard-deleted ones too: the caller
   * reads each from the store); undefined while the read model does not hold the whole log yet (a first
   * start, a projection again after a wipe), when the answer could leave some out. A savepoint's directory
   * names six characters of its job's id.
   */
  async jobIdsStartingWith(prefix: string): Promise<string[] | undefined> {
    const space = await this.space();
    // Scored alike, the index orders by bytes: every id with the prefix sorts below prefix + U+00FF.
    const [complete, ids] = (await execAll(
      this.redis.pipeline().exists(space.complete).zrangebylex(space.jobs, `[${prefix}`, `(${prefix}\u00ff`),
    )) as [number, string[]];
    return complete ? ids : undefined;
  }

  /**
   * The ids of the jobs with a completed snapshot in `directory` (normalised, one Flink's layout does not
   * name for its job: `directoriesNotNamedFor`): the caller reads each from the store. Undefined while the
   * read model does not hold the whole log yet, or has not indexed its directories (a space written before
   * the index, until the projector's backfill), when the answer could leave the owner out.
   */
  async jobIdsWithSnapshotIn(directory: string): Promise<string[] | undefined> {
    const found = await this.jobIdsWithSnapshotsIn([directory]);
    return found && (found.get(directory) ?? []);
  }

  /** `jobIdsWithSnapshotIn` for several directories in one round trip: those with a snapshot, each its jobs. */
  async jobIdsWithSnapshotsIn(directories: readonly string[]): Promise<Map<string, string[]> | undefined> {
    return this.indexedDirectories(directories.map(membersOf));
  }

  /**
   * The indexed snapshot directories (`jobIdsWithSnapshotsIn`) a deletion of `locations` (normalised) would
   * touch: a location itself, a directory it lies in, or one inside it; each with its jobs. Undefined when
   * the answer could leave one out, as there.
   */
  async jobIdsWithSnapshotsTouching(
    locations: readonly string[],
  ): Promise<Map<string, string[]> | undefined> {
    const around = new Set<string>();
    for (const location of locations) for (const place of placesAround(location)) around.add(place);
    const ranges = [...around].map(membersOf);
    for (const location of new Set(locations)) ranges.push(membersBelow(location));
    return this.indexedDirectories(ranges);
  }

  /** The directory index's members in each lexical range (`indexedMembers`), each directory with its jobs. */
  private async indexedDirectories(
    ranges: readonly (readonly [string, string])[],
  ): Promise<Map<string, string[]> | undefined> {
    const found = await this.indexedMembers('directories', ranges);
    return found && new Map([...found.places].map(([directory, ids]) => [directory, [...ids]]));
  }

  /**
   * The jobs whose live snapshots reference each of `files` (normalised loose locations, `isLooseLocation`),
   * or a loose file inside each of `directories` (normalised): those referenced, each with its jobs, less
   * hard-deleted ones. Undefined when the answer could leave one out: the log not projected to its end, or
   * the index not written at the read model's position (a space written before it, until the backfill).
   */
  async jobIdsReferencingFiles(
    files: readonly string[],
    directories: readonly string[],
  ): Promise<Map<string, string[]> | undefined> {
    const ranges = [...files.map(membersOf), ...directories.map(membersBelow)];
    const found = await this.indexedMembers('files', ranges);
    if (!found || found.places.size === 0) return found && new Map();
    const ids = [...new Set([...found.places.values()].flatMap((jobIds) => [...jobIds]))];
    const deletedAt = await this.redis.hmget(found.space.deleted, ...ids);
    const deleted = new Set(ids.filter((_, i) => deletedAt[i] !== null));
    const jobs = new Map<string, string[]>();
    for (const [file, jobIds] of found.places) {
      const live = [...jobIds].filter((jobId) => !deleted.has(jobId));
      if (live.length > 0) jobs.set(file, live);
    }
    return jobs;
  }

  /**
   * An index's members (`directories`: `<directory>\0<jobId>\0<snapshotId>`; `files`: `<file>\0<jobId>`) in
   * each lexical range, in one round trip with the checks that it is whole (the log projected to its end, the
   * index written at the read model's position): each place found with its jobs, once each. Undefined when it
   * is not whole.
   */
  private async indexedMembers(
    index: 'directories' | 'files',
    ranges: readonly (readonly [string, string])[],
  ): Promise<{ space: KeySpace; places: Map<string, Set<string>> } | undefined> {
    const space = await this.space();
    const marker = index === 'directories' ? space.directoriesIndexed : space.filesIndexed;
    const reads = this.redis.pipeline().exists(space.complete).get(space.position).get(marker);
    for (const [min, max] of ranges) reads.zrangebylex(space[index], min, max);
    const [complete, position, indexedAt, ...found] = await execAll(reads);
    const whole =
      index === 'directories'
        ? directoriesIndexedAt(position as string | null)
        : ((position as string | null) ?? INDEXED_AT_START);
    if (!complete || indexedAt !== whole) return undefined;
    const places = new Map<string, Set<string>>();
    for (const members of found as string[][]) {
      for (const member of members) {
        const [place, jobId] = member.split('\u0000') as [string, string];
        places.set(place, (places.get(place) ?? new Set<string>()).add(jobId));
      }
    }
    return { space, places };
  }

  /** Jobs by id, a page at a time, of the given status and namespaces (all when absent). */
  async jobs(filter: JobFilter, first: number, after?: string): Promise<Page<StoredJobSummary>> {
    const { status, namespaces } = filter;
    const space = await this.space();
    const items: StoredJobSummary[] = [];
    let from = after ? `(${decodeCursor(after, 'job')}` : '-';
    for (;;) {
      const ids = await this.redis.zrangebylex(space.jobs, from, '+', 'LIMIT', 0, SCAN);
      if (ids.length === 0) break;
      const views = await this.redis.mgetBuffer(ids.map((id) => space.job(id)));
      for (const bytes of views) {
        if (!bytes) continue;
        const view = parseJobSummary(bytes);
        if (status && view.status !== status) continue;
        // Summaries written before namespaces existed have none: those jobs are in `default`.
        if (namespaces && !namespaces.includes(view.namespace ?? DEFAULT_NAMESPACE)) continue;
        items.push(view);
        if (items.length > first) break;
      }
      if (items.length > first || ids.length < SCAN) break;
      from = `(${ids[ids.length - 1]}`;
    }
    return page(items, first, (j) => encodeCursor('job', j.jobId));
  }

  async snapshot(jobId: string, snapshotId: number): Promise<StoredSnapshot | null> {
    const bytes = await this.redis.getBuffer((await this.space()).snapshot(jobId, snapshotId));
    return bytes ? parseSnapshot(bytes) : null;
  }

  /** A job's snapshots, newest first, filtered, a page at a time. */
  async snapshots(
    jobId: string,
    filter: SnapshotFilter,
    first: number,
    after?: string,
  ): Promise<Page<StoredSnapshot>> {
    const space = await this.space();
    const items: StoredSnapshot[] = [];
    let max = after ? `(${decodeCursor(after, 'snapshot')}` : '+inf';
    // Unfiltered, a page needs first + 1 ids (one more says whether a next page exists); filtered, scan on.
    const unfiltered = Object.values(filter).every((v) => v === undefined || v === null);
    const scan = unfiltered ? first + 1 : SCAN;
    for (;;) {
      const ids = await this.redis.zrevrangebyscore(space.snapshots(jobId), max, '-inf', 'LIMIT', 0, scan);
      if (ids.length === 0) break;
      const views = await this.redis.mgetBuffer(ids.map((id) => space.snapshot(jobId, Number(id))));
      for (const bytes of views) {
        if (!bytes) continue;
        const view = parseSnapshot(bytes);
        if (!matchesSnapshotFilter(view, filter)) continue;
        items.push(view);
        if (items.length > first) break;
      }
      if (items.length > first || ids.length < scan) break;
      max = `(${ids[ids.length - 1]}`;
    }
    return page(items, first, snapshotCursor);
  }

  async lag(): Promise<{ last: number | null; p99: number | null; at?: number } | null> {
    const text = await this.redis.get(this.keys.lag);
    return text ? JSON.parse(text) : null;
  }
}

/** Whether a snapshot passes a filter (the read model's and GraphQL's one definition). */
export function matchesSnapshotFilter(s: StoredSnapshot, f: SnapshotFilter): boolean {
  return (
    (!f.kinds || f.kinds.includes(s.kind)) &&
    (!f.statuses || f.statuses.includes(s.status)) &&
    (f.persisted === undefined || s.persisted === f.persisted) &&
    (!f.triggerTypes || f.triggerTypes.includes(s.triggerType)) &&
    (f.jobVersion === undefined || s.jobVersion === f.jobVersion) &&
    (f.flinkVersion === undefined || s.flinkVersion === f.flinkVersion)
  );
}

/**
 * The page ReadModel.snapshots would give for `first` unfiltered snapshots from the start, out of a job read
 * with its newest ones; undefined when it holds fewer than that page needs.
 */
export function newestSnapshotsPage(
  job: JobWithNewestSnapshots,
  first: number,
): Page<StoredSnapshot> | undefined {
  if (first > job.first) return undefined;
  return pageOf(job.newest.slice(0, first), job.newest.length > first || job.more, snapshotCursor);
}

const snapshotCursor = (s: StoredSnapshot) => encodeCursor('snapshot', String(s.snapshotId));

/** A page of `first` out of `items`, read one past the page (that one says whether a next page exists). */
function page<T>(items: T[], first: number, cursor: (item: T) => string): Page<T> {
  return pageOf(items.slice(0, first), items.length > first, cursor);
}

function pageOf<T>(items: T[], hasNextPage: boolean, cursor: (item: T) => string): Page<T> {
  return { items, hasNextPage, endCursor: items.length ? cursor(items[items.length - 1]!) : null };
}

export const encodeCursor = (kind: string, value: string) =>
  Buffer.from(`${kind}:${value}`).toString('base64url');

export function decodeCursor(cursor: string, kind: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const value = text.slice(kind.length + 1);
  const valid = kind === 'snapshot' ? /^\d{1,15}$/ : /^[0-9a-f]{32}$/;
  if (!text.startsWith(`${kind}:`) || !valid.test(value)) throw new InvalidCursorError(cursor);
  return value;
}

export class InvalidCursorError extends Error {
  constructor(cursor: string) {
    super(`invalid cursor ${JSON.stringify(cursor)}`);
    this.name = 'InvalidCursorError';
  }
}
