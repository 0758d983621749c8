import {
  completedSnapshotAt,
  discardingSnapshotAt,
  jobAreaOf,
  pendingSnapshotAt,
  restoredDirectory,
  savepointJobPrefixOf,
  type JobState,
  type SnapshotState,
} from '@snapcat/domain';
import type { CommandBus } from './command-bus';

/**
 * The catalogued jobs a path may be a snapshot of, found by what the path says (the API's read model, the
 * workers' known jobs). Each throws rather than answer nothing when it cannot tell (Redis unreachable, the
 * read model catching up): an owner missed is a hold not placed.
 */
export interface CataloguedJobIds {
  /** The ids starting with a prefix: a savepoint's directory names six characters of its job's id. */
  startingWith(prefix: string): Promise<readonly string[]>;
  /**
   * The jobs with a completed snapshot in each of the directories that has one, among directories Flink's
   * layout does not name for that job (`directoriesNotNamedFor`: an import's, another run's adopted
   * checkpoint); absent, such a directory's owner is not looked up.
   */
  withSnapshotsIn?(directories: readonly string[]): Promise<ReadonlyMap<string, readonly string[]>>;
  /**
   * The same directories a deletion of `locations` (normalised) touches: a location, a directory it lies in,
   * or one inside it, each with its jobs; `asOfNow`: as of the newest job event when asked (the read model
   * catches up first), else as the read model holds them.
   */
  withSnapshotsTouching?(
    locations: readonly string[],
    options?: { asOfNow: boolean },
  ): Promise<ReadonlyMap<string, readonly string[]>>;
  /**
   * The jobs whose live snapshots reference each of `files` (normalised loose locations: no Flink layout
   * names their job), or a loose file inside each of `directories`: the files referenced, each with its jobs
   * (decision 0046). As of the newest job event when asked: an acknowledgement recorded a moment ago counts.
   */
  referencingFiles?(
    files: readonly string[],
    directories: readonly string[],
  ): Promise<ReadonlyMap<string, readonly string[]>>;
}

/** The read model cannot tell whose snapshots lie somewhere yet: catching up, not indexed, no projector. */
export class OwnersUnknownError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OwnersUnknownError';
  }
}

/** A completed (or pending) snapshot of another catalogued job, and that job. */
export interface OwnedSnapshot {
  owner: JobState;
  snapshot: SnapshotState;
}

/**
 * Decision 0032: the other catalogued jobs whose completed or pending snapshot a path (a directory or its
 * `_metadata`) is, or whose snapshot being discarded it lies in (decision 0047); not `jobId`'s. In a checkpoint directory the path names its job (`<checkpointDir>/<otherJobId>/chk-<n>`).
 * A savepoint's (`savepoint-<6 characters of the job id>-<12 hex>`, Flink's
 * AbstractFsCheckpointStorageAccess.initializeLocationForSavepoint) names six: every job whose id starts with
 * them is read, since ids chosen by people (PIPELINE_FIXED_JOB_ID) often share them, and the match is the
 * snapshot's directory. A directory whose named job does not have it (another run's checkpoint adopted by an
 * import), or that names no job (an imported snapshot's), is looked up in the index of such directories.
 * Without `catalogued` only checkpoint directories are looked up. Usually none or one.
 */
export async function otherJobsSnapshotsAt(
  bus: Pick<CommandBus, 'loadUnlessDeleted'>,
  catalogued: CataloguedJobIds | undefined,
  jobId: string,
  externalPath: string,
): Promise<OwnedSnapshot[]> {
  const directory = restoredDirectory(externalPath);
  const found: OwnedSnapshot[] = [];
  let named = false;
  const read = async (candidates: readonly string[]) => {
    for (const candidate of candidates) {
      const owner = await bus.loadUnlessDeleted(candidate);
      if (!owner) continue;
      // A pending one is its job's too: its tasks write there, and it will be that job's to delete; so is one
      // being discarded (its files are going). Only a completed one settles whose the directory is: an import
      // there (another run's adopted checkpoint) is still looked up, and holds what a restore from it uses.
      const completed = completedSnapshotAt(owner, externalPath);
      const snapshot =
        completed ?? pendingSnapshotAt(owner, externalPath) ?? discardingSnapshotAt(owner, externalPath);
      if (!snapshot) continue;
      if (completed) named = true;
      if (candidate !== jobId) found.push({ owner, snapshot });
    }
  };
  await read(await namedCandidatesFor(directory, catalogued));
  // The job the layout names has it (the commonest): nobody else may (an import of it is refused).
  if (!named && catalogued?.withSnapshotsIn) {
    await read((await catalogued.withSnapshotsIn([directory])).get(directory) ?? []);
  }
  return found;
}

/** The jobs whose snapshot a (normalised) directory is by what its Flink naming says. */
async function namedCandidatesFor(
  directory: string,
  catalogued: CataloguedJobIds | undefined,
): Promise<readonly string[]> {
  const inArea = jobAreaOf(directory);
  if (inArea !== undefined) return [inArea];
  const prefix = savepointJobPrefixOf(directory);
  if (prefix !== undefined) return catalogued ? catalogued.startingWith(prefix) : [];
  return [];
}
