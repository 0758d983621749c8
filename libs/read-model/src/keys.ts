import type { Redis } from 'ioredis';
import { scanKeys } from '@snapcat/runtime';

/**
 * Redis keys of the read model. Everything lives under a version, `<prefix>:rm:v<N>:…`; `<prefix>:rm:current`
 * names the version queries use, so a rebuild fills a fresh key space and switches over in one SET.
 */
export class ReadModelKeys {
  constructor(readonly prefix: string) {}
  get current(): string {
    return `${this.prefix}:rm:current`;
  }
  /** Held by the active projector: one per prefix writes the read model. */
  get lease(): string {
    return `${this.prefix}:rm:lease`;
  }
  get lag(): string {
    return `${this.prefix}:rm:lag`;
  }
  get channel(): string {
    return `${this.prefix}:snapshotEvents`;
  }
  space(version: number) {
    const ns = `${this.prefix}:rm:v${version}`;
    return {
      ns,
      position: `${ns}:position`,
      /**
       * Set by the projector when it starts to follow the space, and by nothing else: missing while it
       * follows, Redis lost the space (a wipe) even where later writes put other keys back.
       */
      origin: `${ns}:origin`,
      /**
       * Set once the space holds the whole log up to some moment: until then (a first start, a rebuild
       * after a wipe) a question about every job, such as which jobs' ids start with six characters, would
       * be answered from a part of them.
       */
      complete: `${ns}:complete`,
      /** jobId -> the last revision of its stream applied */
      applied: `${ns}:applied`,
      /** jobId -> when its stream was hard-deleted (its tombstone's time, ISO-8601): the job is gone. */
      deleted: `${ns}:deleted`,
      /**
       * The completed snapshots' directories Flink's layout does not name for their job
       * (`directoriesNotNamedFor`: imports, another run's adopted checkpoints), each as
       * `<directory>\u0000<jobId>\u0000<snapshotId>` scored alike (so one directory's are a lex range): whose
       * snapshot a restore's path is. A snapshot's entry goes when it stops being completed; the restore reads
       * each candidate job from the store.
       */
      directories: `${ns}:dirs`,
      /**
       * The position (`position`'s text, or `start`) up to which `directories` holds every completed snapshot
       * of the space. Written with `position` in each of this release's batches, so a `position` that differs
       * is one an older release's projector wrote (without index entries) or one from before the index: the
       * owner lookups answer 503 until the next projector of this release indexes the views again.
       */
      directoriesIndexed: `${ns}:dirs-indexed-at`,
      /**
       * The live references to loose files (`isLooseLocation`: no Flink layout names their job), each as
       * `<file>\u0000<jobId>` scored alike (one file's are a lex range, a directory's files too): which other
       * jobs still need a file a deletion would take (decision 0046). A job's entry goes when its registry
       * stops referencing the file.
       */
      files: `${ns}:files`,
      /**
       * As `directoriesIndexed`, for `files`: a space whose `position` differs was written by an older
       * release's projector, or before the index; the deletions wait until the projector indexes it again.
       */
      filesIndexed: `${ns}:files-indexed-at`,
      jobs: `${ns}:jobs`,
      job: (jobId: string) => `${ns}:job:${jobId}`,
      /** Apart from the summary: written only when the tasks change, however often the summary does. */
      jobTasks: (jobId: string) => `${ns}:tasks:${jobId}`,
      snapshots: (jobId: string) => `${ns}:snaps:${jobId}`,
      snapshot: (jobId: string, id: number) => `${ns}:snap:${jobId}:${id}`,
      /** What every snapshot view key of the job starts with (for a script that builds them from ids). */
      snapshotKeyPrefix: (jobId: string) => `${ns}:snap:${jobId}:`,
    };
  }
}
export type KeySpace = ReturnType<ReadModelKeys['space']>;

/** `directoriesIndexed` of a space whose log had no job event yet (no `position`). */
export const INDEXED_AT_START = 'start';

/**
 * What `directoriesIndexed` holds once `directories` is whole at `position` (its text; null before any job
 * event): the position after the index's format. Format 2 keeps snapshots being discarded (decision 0047);
 * a space a release before it indexed (its mark the bare position) lacks those, and is indexed again by the
 * next projector of this release, as one written before the index is.
 */
export const directoriesIndexedAt = (position: string | null): string => `2@${position ?? INDEXED_AT_START}`;

/** A member of `directories`: the directory, then the job and the id of the completed snapshot it is. */
export const directoryMember = (directory: string, jobId: string, snapshotId: number): string =>
  `${directory}\u0000${jobId}\u0000${snapshotId}`;

/** A member of `files`: the loose file, then a job whose live snapshots reference it. */
export const fileMember = (file: string, jobId: string): string => `${file}\u0000${jobId}`;

/** Deletes every key of a version's key space. */
export async function deleteSpace(redis: Redis, ns: string): Promise<void> {
  for await (const found of scanKeys(redis, `${ns}:*`)) await redis.del(...found);
}

/**
 * What the projector publishes for live subscriptions: each applied event on `<channel>:<jobId>` as JSON, the
 * topic and encoding of graphql-yoga's pubsub over `@graphql-yoga/redis-event-target` (`publish(channel,
 * jobId, message)`), which the API subscribes with. Written without them so that a process loads GraphQL only
 * with its endpoint (decision 0041). A message Redis does not take is lost, as one published while no
 * subscriber listens: the read model and `history` hold every event.
 */
export function snapshotEventPublisher(
  redis: Pick<Redis, 'publish'>,
  keys: ReadModelKeys,
): (message: { jobId: string }) => void {
  const channel = keys.channel;
  return (message) => {
    redis.publish(`${channel}:${message.jobId}`, JSON.stringify(message)).catch(() => undefined);
  };
}

/** The lexical range of a sorted set's `<place>\0…` members that name `place` itself (up to `<place>\1`). */
export const membersOf = (place: string): [string, string] => [`[${place}\u0000`, `(${place}\u0001`];

/**
 * The lexical range of the members of every place inside `directory`: `<directory>/…` sorts below
 * `<directory>0` ('/' + 1). `/` itself: every place below it.
 */
export function membersBelow(directory: string): [string, string] {
  const base = directory.replace(/\/+$/, '');
  return [`[${base}/`, `(${base}0`];
}
