import { LocationRefusedError, isRootClaimFile, type SnapshotStorage } from '@snapcat/storage';
import {
  FLINK_METADATA_FILE as METADATA_FILE,
  jobAreaOf,
  normaliseLocation,
  savepointJobPrefixOf,
} from '@snapcat/domain';
import { Problem } from './problem';

/**
 * What the file system answers for a path no snapshot can lie at: below a regular file, a name too long, a
 * loop of links, or one snapcat may not enter. The client's path, not the service's fault: a 400.
 */
const UNUSABLE_PATH = new Set(['ENOTDIR', 'ENAMETOOLONG', 'ELOOP', 'EACCES']);

/** Refuses a directory outside the storage roots: nothing outside them may ever be written or deleted. */
export async function requireWithinRoots(
  storage: SnapshotStorage,
  location: string | undefined,
  field: string,
  why?: string,
): Promise<void> {
  if (location === undefined) return;
  if (await asUsablePath(field, storage.isWithinRoots(location))) return;
  throw outsideRoots(field, why);
}

/** A storage answer about a client's path; the file system refusing the path is a 400 naming the field. */
function asUsablePath<T>(field: string, answer: Promise<T>): Promise<T> {
  return answer.catch((error: NodeJS.ErrnoException) => {
    if (!UNUSABLE_PATH.has(error.code ?? '')) throw error;
    const message = `names a path the file system refuses (${error.code})`;
    throw new Problem(400, 'invalid-request', 'Invalid request', `${field}: ${message}`, [
      { field, rule: 'usable-path', message },
    ]);
  });
}

/** Why a path spelled inside the roots is refused when its real path is not that spelling. */
export const THROUGH_A_LINK =
  'must lie inside the configured storage roots by its real path too: it passes through a symbolic link ' +
  'below a root (or is one), so it names the place the link points to, whose own snapshots name it ' +
  'differently; name that place';

/**
 * Every state handle of the acknowledgements as the storage holds it now (`whyNotStateFile`): a file named
 * through a symbolic link below a root (a directory on the way, or the file itself) lies where the link
 * points, whose snapshots name it otherwise, so nothing would keep it for this one, and the deletion refuses
 * such a path, so this snapshot's discard would fail for good (decision 0042); a directory is no state file,
 * and the orphan sweep would take what lies in it for orphans. 400 naming the handle's field. Each distinct
 * path once, in parallel; acknowledgements without handles (the hot path) ask nothing. The first refused in
 * order is reported.
 */
export async function requireStateFiles(
  storage: SnapshotStorage,
  acks: readonly { stateHandles: readonly { path: string }[] }[],
  field: (ack: number, handle: number) => string,
): Promise<void> {
  const checks = new Map<string, Promise<void>>();
  for (const [a, { stateHandles }] of acks.entries()) {
    for (const [h, { path }] of stateHandles.entries()) {
      if (checks.has(path)) continue;
      checks.set(
        path,
        asUsablePath(field(a, h), storage.whyNotStateFile(path)).then((refused) => {
          if (!refused) return;
          const message = refused.rule === 'within-storage-roots' ? THROUGH_A_LINK : refused.message;
          throw new Problem(400, 'invalid-request', 'Invalid request', `${field(a, h)}: ${message}`, [
            { field: field(a, h), rule: refused.rule, message },
          ]);
        }),
      );
    }
  }
  if (checks.size === 0) return;
  for (const outcome of await Promise.allSettled(checks.values())) {
    if (outcome.status === 'rejected') throw outcome.reason;
  }
}

export const outsideRoots = (field: string, why = 'must lie inside the configured storage roots') =>
  new Problem(400, 'invalid-request', 'Invalid request', `${field}: ${why}`, [
    { field, rule: 'within-storage-roots', message: why },
  ]);

/**
 * What the storage refuses below a place already checked (a file in it that is a symbolic link, say) is the
 * client's path too: a 400 naming the field, with the storage's reason.
 */
export async function asClientPath<T>(field: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof LocationRefusedError) throw outsideRoots(field, error.message);
    throw error;
  }
}

/**
 * R69: the bytes of a snapshot directory that exists, listed through the storage port (local files or S3): a
 * 400 naming the field when nothing lies there (`exists`), when Flink's `_metadata` does not (`has-metadata`:
 * `flink run -s` could not restore from it), or when it holds more than one snapshot (`one-snapshot`: another
 * `_metadata` below its own, a checkpoint area `<jobId>/chk-N|shared|taskowned` or a savepoint directory
 * inside it). The discard of an import deletes its directory whole: of a directory holding other snapshots,
 * theirs too, other jobs' included (a walkthrough imported a checkpoint directory's parent).
 */
export async function requireSnapshotDirectory(
  storage: SnapshotStorage,
  location: string,
  field: string,
): Promise<number> {
  const directory = location.replace(/\/+$/, '');
  // Compared as normalised: the storage lists `s3a://` and `s3p://` places as `s3://` (one spelling).
  const base = normaliseLocation(directory);
  let [bytes, metadata] = [0, 0];
  const listing = asClientPath(field, async () => {
    for await (const file of storage.listFiles(directory)) {
      const below = normaliseLocation(file.path).slice(base.length); // `/_metadata`, `/op/x`, '' (itself)
      if (below === `/${METADATA_FILE}`) metadata = file.size;
      else if (
        below.endsWith(`/${METADATA_FILE}`) ||
        jobAreaOf(below) ||
        savepointJobPrefixOf(below) ||
        isRootClaimFile(below) // a catalogue's storage root inside it (decision 0044)
      ) {
        throw notOneSnapshot(field, directory + below);
      }
      bytes += file.size;
    }
  });
  await listing.catch((error: NodeJS.ErrnoException) => {
    if (!UNUSABLE_PATH.has(error.code ?? '')) throw error;
  });
  // A `_metadata` file is never empty (Flink writes a magic number first): 0 bytes means there is none.
  if (metadata > 0) return bytes;
  const [rule, message] =
    bytes === 0
      ? ['exists', 'nothing lies there: give the directory of an existing savepoint or retained checkpoint']
      : ['has-metadata', `holds no ${METADATA_FILE}: not a savepoint or retained checkpoint directory`];
  throw new Problem(400, 'invalid-request', 'Invalid request', `${field}: ${message}`, [
    { field, rule, message },
  ]);
}

function notOneSnapshot(field: string, found: string): Problem {
  const message =
    `holds another snapshot, checkpoint area or catalogue's storage root (${found}): give one snapshot's own directory, as its ` +
    'discard deletes the directory whole';
  return new Problem(400, 'invalid-request', 'Invalid request', `${field}: ${message}`, [
    { field, rule: 'one-snapshot', message },
  ]);
}
