import {
  completedSnapshotAt,
  jobAreaOf,
  restoredDirectory,
  savepointJobPrefixOf,
  type JobState,
  type SnapshotState,
} from '@snapcat/domain';
import type { CommandBus } from './command-bus';

/** The catalogued job ids starting with a prefix (the API's read model, the workers' set of known jobs). */
export type JobIdsStartingWith = (prefix: string) => Promise<readonly string[]>;

/** A completed snapshot of another catalogued job, and that job. */
export interface OwnedSnapshot {
  owner: JobState;
  snapshot: SnapshotState;
}

/**
 * Decision 0032: the other catalogued jobs whose completed snapshot a path (a directory or its `_metadata`)
 * is; not `jobId`'s. In a checkpoint directory the path names its job (`<checkpointDir>/<otherJobId>/chk-<n>`).
 * A savepoint's (`savepoint-<6 characters of the job id>-<12 hex>`, Flink's
 * AbstractFsCheckpointStorageAccess.initializeLocationForSavepoint) names six: every job whose id starts with
 * them is read, since ids chosen by people (PIPELINE_FIXED_JOB_ID) often share them, and the match is the
 * snapshot's directory. Without `startingWith` savepoints are not looked up. Usually none or one.
 */
export async function otherJobsSnapshotsAt(
  bus: Pick<CommandBus, 'loadUnlessDeleted'>,
  startingWith: JobIdsStartingWith | undefined,
  jobId: string,
  externalPath: string,
): Promise<OwnedSnapshot[]> {
  const directory = restoredDirectory(externalPath);
  const inArea = jobAreaOf(directory);
  const prefix = inArea === undefined ? savepointJobPrefixOf(directory) : undefined;
  const candidates =
    inArea !== undefined ? [inArea] : prefix !== undefined && startingWith ? await startingWith(prefix) : [];
  const found: OwnedSnapshot[] = [];
  for (const candidate of candidates) {
    if (candidate === jobId) continue;
    const owner = await bus.loadUnlessDeleted(candidate);
    const snapshot = owner && completedSnapshotAt(owner, externalPath);
    if (snapshot) found.push({ owner, snapshot });
  }
  return found;
}
