import type { Redis } from 'ioredis';
import { isDeepStrictEqual } from 'node:util';
import {
  Draft,
  initialState,
  snapshotView,
  directoriesNotNamedFor,
  looseReferences,
  wasCompacted,
  type JobState,
  type SnapshotState,
} from '@snapcat/domain';
import { JOB_STREAM_PREFIX, domainEvent, jobIdOfStream } from '@snapcat/application';
import { execAll } from '@snapcat/runtime';
import {
  START,
  StreamDeletedError,
  comparePositions,
  isTombstone,
  formatPosition,
  parsePosition,
  readAllPages,
  type EventStore,
  type Position,
} from '@snapcat/event-store';
import {
  ReadModelKeys,
  deleteSpace,
  directoriesIndexedAt,
  directoryMember,
  fileMember,
  type KeySpace,
} from './keys';
import { stateAt } from './history';
import { indexLooseFiles, isIndexedStatus, storedJobViews, writeJobViews } from './writes';

const OLD_SPACE_GRACE_MS = 2500;

/**
 * Folds `$all` (job streams) from the start, up to `until` if given: every job's state, as the log says,
 * and when the jobs whose streams were hard-deleted were (their events stay in `$all` until a scavenge).
 */
export async function foldLog(
  store: EventStore,
  until?: Position,
  onPage?: (events: number, position: Position) => void,
): Promise<{
  states: Map<string, JobState>;
  /** Each job's snapshots the fold compacted out of its state (decision 0035), as they were last. */
  compacted: Map<string, Map<number, SnapshotState>>;
  revisions: Map<string, bigint>;
  deleted: Map<string, string>;
  position: Position;
  events: number;
}> {
  // One draft per job for the whole fold, sealed at the end: each copy-on-write leaf and container is
  // copied once, not once per page (a page's fold used to copy the leaves it touched: bench #7).
  const drafts = new Map<string, Draft>();
  const compacted = new Map<string, Map<number, SnapshotState>>();
  const revisions = new Map<string, bigint>();
  const deleted = new Map<string, string>();
  let after: Position = START;
  let events = 0;
  const pages = readAllPages(store, { filter: { streamNamePrefixes: [JOB_STREAM_PREFIX] } });
  for await (const read of pages) {
    const page = until ? read.filter((e) => comparePositions(e.position, until) <= 0) : read;
    if (page.length === 0) break;
    for (const recorded of page) {
      if (isTombstone(recorded)) {
        deleted.set(jobIdOfStream(recorded.streamId), recorded.created.toISOString());
        continue;
      }
      const event = domainEvent(recorded);
      let draft = drafts.get(event.jobId);
      if (!draft) {
        const dropped = new Map<number, SnapshotState>();
        compacted.set(event.jobId, dropped);
        draft = new Draft(initialState(event.jobId), (snapshot) =>
          dropped.set(snapshot.snapshotId, snapshot),
        );
        drafts.set(event.jobId, draft);
      }
      draft.apply(event);
      revisions.set(event.jobId, recorded.revision);
    }
    events += page.length;
    after = page[page.length - 1]!.position;
    onPage?.(events, after);
    if (page.length < read.length) break; // the rest is past `until`
  }
  const states = new Map<string, JobState>();
  for (const [jobId, draft] of drafts) states.set(jobId, draft.seal());
  return { states, compacted, revisions, deleted, position: after, events };
}

/**
 * Rebuilds the read model from the log into a fresh key space, then switches `current` to it (projectors
 * follow within a second) and deletes the old one, `oldSpaceGraceMs` later (0 where no reader runs).
 * Returns what it did and how fast.
 */
export async function rebuildReadModel(
  store: EventStore,
  redis: Redis,
  prefix: string,
  onPage?: (events: number, position: Position) => void,
  oldSpaceGraceMs = OLD_SPACE_GRACE_MS,
) {
  const keys = new ReadModelKeys(prefix);
  const started = process.hrtime.bigint();
  const oldVersion = Number((await redis.get(keys.current)) ?? '0');
  const version = oldVersion + 1;
  const space = keys.space(version);
  await deleteSpace(redis, space.ns);
  const { states, compacted, revisions, deleted, position, events } = await foldLog(store, undefined, onPage);
  // A pipeline is sent whole by each exec(), and a second exec() resolves with the first's answer: a new
  // one for each chunk of about 5,000 writes, so memory stays bounded and each chunk is written once.
  let writes = redis.pipeline();
  let queued = 0;
  for (const [jobId, state] of states) {
    const dropped = compacted.get(jobId)!;
    writeJobViews(writes, space, state, [...state.snapshots.keys(), ...dropped.keys()], true, dropped);
    if (!deleted.has(jobId)) indexLooseFiles(writes, space, state);
    writes.hset(space.applied, jobId, revisions.get(jobId)!.toString());
    if ((queued += 3 + 2 * (state.snapshots.size + dropped.size)) >= 5000) {
      await execAll(writes);
      writes = redis.pipeline();
      queued = 0;
    }
  }
  for (const [jobId, at] of deleted) writes.hset(space.deleted, jobId, at);
  writes.set(space.position, formatPosition(position));
  writes.set(space.complete, '1');
  writes.set(space.directoriesIndexed, directoriesIndexedAt(formatPosition(position)));
  writes.set(space.filesIndexed, formatPosition(position));
  await execAll(writes);
  await redis.set(keys.current, String(version));
  // Readers and projectors look `current` up once a second: the old space stays until they moved on.
  if (oldVersion > 0) {
    await new Promise((resolve) => setTimeout(resolve, oldSpaceGraceMs));
    await deleteSpace(redis, keys.space(oldVersion).ns);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { version, jobs: states.size, events, seconds, eventsPerSecond: events / seconds };
}

export interface Difference {
  key: string;
  expected: unknown;
  actual: unknown;
}

/**
 * Compares every job and snapshot view in Redis with the log, each job at the revision the read model has
 * applied for it, so a service that keeps writing shows no false difference. The log is folded once up to
 * the read model's position; a job the projector moved past meanwhile is folded again to its revision.
 * A job's keys are read between two reads of its applied revision, which the projector writes in the same
 * transaction as the views: when both agree, what was read is the job as of that revision. An empty list
 * means no drift.
 */
export async function verifyReadModel(
  store: EventStore,
  redis: Redis,
  prefix: string,
  onPage?: (events: number, position: Position) => void,
): Promise<Difference[]> {
  const keys = new ReadModelKeys(prefix);
  const space = keys.space(Number((await redis.get(keys.current)) ?? '1'));
  const positionText = await redis.get(space.position);
  if (!positionText) {
    // No read model under this prefix at all (another Redis or database than the service's, a wiped Redis, a
    // projector that never ran): with job events in the log that is one difference, not "matches the log".
    const folded = await foldLog(store, undefined, onPage);
    return folded.states.size > 0 || folded.deleted.size > 0
      ? [{ key: space.position, expected: formatPosition(folded.position), actual: null }]
      : [];
  }
  const until = parsePosition(positionText);
  const { states, compacted, revisions, deleted } = await foldLog(store, until, onPage);
  const differences = await deletionDifferences(redis, space, deleted);
  const indexed = new Set(await redis.zrange(space.jobs, 0, -1));
  const directories = new Set(await redis.zrange(space.directories, 0, -1));
  const filesIndexed = await looseFilesIndexedByJob(redis, space);
  const jobIds = new Set([...states.keys(), ...indexed]);
  for (const jobId of jobIds) {
    const actual = await jobAsApplied(redis, space, jobId);
    let expected: JobState | null = states.get(jobId) ?? null;
    let dropped = compacted.get(jobId) ?? new Map<number, SnapshotState>();
    if (actual.revision !== null && actual.revision !== revisions.get(jobId)) {
      // Folded again from an aggregate: the snapshots compacted before it are not known, only that they were.
      dropped = new Map();
      const at = await stateAt(store, jobId, { revision: actual.revision }).catch((error: unknown) => {
        if (error instanceof StreamDeletedError) return undefined; // deleted since: as the log folded it
        throw error;
      });
      if (at) expected = at.revision >= 0n ? at.state : null;
    }
    const compare = (key: string, want: unknown, have: unknown) => {
      if (!isDeepStrictEqual(have, want)) differences.push({ key, expected: want, actual: have });
    };
    if (!expected) {
      compare(space.job(jobId), null, actual.summary === null ? null : 'present');
      continue;
    }
    // The lists (REST and GraphQL `jobs`) read the index: a job missing there is missing from every list.
    compare(`${space.jobs} ${jobId}`, 'indexed', indexed.has(jobId) ? 'indexed' : null);
    // A job's pages read its snapshot index, ranked by id: a wrong rank shows a page out of order.
    for (const [id, rank] of actual.ranks) {
      if (rank !== id) compare(`${space.snapshots(jobId)} ${id}`, id, rank);
    }
    const { summary, tasks } = storedJobViews(expected);
    compare(space.job(jobId), summary, actual.summary);
    compare(space.jobTasks(jobId), tasks, actual.tasks);
    for (const snapshot of [...expected.snapshots.values(), ...dropped.values()]) {
      const key = space.snapshot(jobId, snapshot.snapshotId);
      compare(key, { jobId, ...snapshotView(snapshot) }, actual.snapshots.get(snapshot.snapshotId) ?? null);
    }
    differences.push(...directoryDifferences(space, expected, directories));
    // A deletion asks this index before it takes a loose file another job may need. A hard-deleted job's
    // entries are left as they were: the lookups leave such jobs out.
    if (!deleted.has(jobId)) {
      const indexed = filesIndexed.get(jobId) ?? new Set<string>();
      differences.push(...(await looseFileDifferences(redis, space, expected, actual.revision, indexed)));
    }
    for (const id of actual.snapshots.keys()) {
      const known = expected.snapshots.has(id) || dropped.has(id) || wasCompacted(expected, id);
      if (!known) compare(space.snapshot(jobId, id), null, 'present');
    }
  }
  return differences;
}

/** The jobs marked hard-deleted, and when, that differ from the log's tombstones. */
async function deletionDifferences(
  redis: Redis,
  space: KeySpace,
  deleted: ReadonlyMap<string, string>,
): Promise<Difference[]> {
  const differences: Difference[] = [];
  const deletedNow = await redis.hgetall(space.deleted);
  for (const jobId of new Set([...deleted.keys(), ...Object.keys(deletedNow)])) {
    const [want, have] = [deleted.get(jobId) ?? null, deletedNow[jobId] ?? null];
    if (want !== have) differences.push({ key: `${space.deleted} ${jobId}`, expected: want, actual: have });
  }
  return differences;
}

/**
 * The directories of the job's snapshots completed or being discarded missing from the directory index: a
 * restore by path finds the owner of an imported snapshot there, so one missing is a restore recorded without
 * its hold (or, being discarded, not refused).
 */
function directoryDifferences(
  space: KeySpace,
  expected: JobState,
  directories: ReadonlySet<string>,
): Difference[] {
  const differences: Difference[] = [];
  for (const snapshot of expected.snapshots.values()) {
    if (!isIndexedStatus(snapshot.status)) continue;
    const { snapshotId: id, externalPath, persistedPath } = snapshot;
    for (const directory of directoriesNotNamedFor(expected.jobId, [externalPath, persistedPath])) {
      const member = directoryMember(directory, expected.jobId, id);
      if (directories.has(member)) continue;
      differences.push({ key: `${space.directories} ${member}`, expected: 'indexed', actual: null });
    }
  }
  return differences;
}

/** The loose files' index (`files`) as it is now, by job. */
async function looseFilesIndexedByJob(redis: Redis, space: KeySpace): Promise<Map<string, Set<string>>> {
  const byJob = new Map<string, Set<string>>();
  for (const member of await redis.zrange(space.files, 0, -1)) {
    const [file, jobId] = member.split('\u0000') as [string, string];
    byJob.set(jobId, (byJob.get(jobId) ?? new Set<string>()).add(file));
  }
  return byJob;
}

/**
 * The job's entries in the loose files' index that differ from its registry at `revision`: each loose file
 * it references and each indexed for it before (`indexedBefore`), compared while the job stays there.
 */
async function looseFileDifferences(
  redis: Redis,
  space: KeySpace,
  expected: JobState,
  revision: bigint | null,
  indexedBefore: ReadonlySet<string>,
): Promise<Difference[]> {
  const referenced = new Set(looseReferences(expected.sharedState));
  const candidates = [...new Set([...referenced, ...indexedBefore])];
  const indexedNow = await filesAsApplied(redis, space, expected.jobId, revision, candidates);
  if (!indexedNow) return [];
  const differences: Difference[] = [];
  for (const file of candidates) {
    const [want, have] = [referenced.has(file), indexedNow.has(file)];
    if (want === have) continue;
    const key = `${space.files} ${fileMember(file, expected.jobId)}`;
    differences.push({ key, expected: want ? 'indexed' : null, actual: have ? 'indexed' : null });
  }
  return differences;
}

/**
 * Which of `files` the index holds for the job, read while the job stays at `revision` (the one its views
 * were compared at); undefined when the projector moved it on meanwhile (the next audit compares it).
 */
async function filesAsApplied(
  redis: Redis,
  space: KeySpace,
  jobId: string,
  revision: bigint | null,
  files: readonly string[],
): Promise<Set<string> | undefined> {
  if (files.length === 0) return new Set();
  const reads = redis.pipeline().hget(space.applied, jobId);
  for (const file of files) reads.zscore(space.files, fileMember(file, jobId));
  reads.hget(space.applied, jobId);
  const results = (await execAll(reads)) as (string | null)[];
  const [before, after] = [results[0], results[results.length - 1]];
  if (before !== after || before !== (revision === null ? null : revision.toString())) return undefined;
  return new Set(files.filter((_, i) => results[i + 1] !== null));
}

/** A job's views as Redis holds them at one applied revision (null: the job was never applied). */
async function jobAsApplied(redis: Redis, space: KeySpace, jobId: string) {
  const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));
  for (let attempt = 0; ; attempt += 1) {
    const before = await redis.hget(space.applied, jobId);
    const [summary, tasks, ranked] = await Promise.all([
      redis.get(space.job(jobId)),
      redis.get(space.jobTasks(jobId)),
      redis.zrange(space.snapshots(jobId), 0, -1, 'WITHSCORES'),
    ]);
    const ids = ranked.filter((_, i) => i % 2 === 0);
    const ranks = new Map(ids.map((id, i) => [Number(id), Number(ranked[2 * i + 1])]));
    const views = ids.length ? await redis.mget(...ids.map((id) => space.snapshot(jobId, Number(id)))) : [];
    const after = await redis.hget(space.applied, jobId);
    if (before === after) {
      return {
        revision: before === null ? null : BigInt(before),
        summary: parse(summary),
        tasks: parse(tasks),
        snapshots: new Map(ids.map((id, i) => [Number(id), parse(views[i] ?? null)])),
        ranks,
      };
    }
    if (attempt >= 20) throw new Error(`job ${jobId} kept changing while the audit read it (20 tries)`);
  }
}
