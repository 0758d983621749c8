import { durationMs } from './duration';
import type { SavepointSchedule, SnapshotStatus } from './schemas';

/**
 * Storage layout (docs/domain.md R14), as Flink's file-system checkpoint storage names it: a checkpoint in
 * `<checkpointDir>/<jobId>/chk-<id>` (`AbstractFsCheckpointStorageAccess.getCheckpointDirectoryForJob`,
 * `createCheckpointDirectory`, used by `FsCheckpointStorageAccess.initializeLocationForCheckpoint`).
 */
export function checkpointPath(checkpointDir: string, jobId: string, snapshotId: number): string {
  return `${trimSlash(checkpointDir)}/${jobId}/chk-${snapshotId}`;
}

/**
 * A savepoint directory as Flink names it (R14): `<savepointDir>/savepoint-<first 6 of the jobId>-<12 hex>`
 * (`AbstractFsCheckpointStorageAccess.initializeLocationForSavepoint`: prefix `"savepoint-" +
 * jobId.toString().substring(0, 6) + '-'`, then `FileUtils.getRandomFilename`, 12 random hex characters).
 * The domain is pure, so snapcat's 12 characters are not random: they are the FNV-1a hash of the jobId and a
 * seed naming the savepoint within its job (its id and triggerId, or the checkpoint a persist keeps), and a
 * replay gives the same path. Paths already recorded stay as they were written (they are in the events).
 */
export function savepointPath(savepointDir: string, jobId: string, seed: string): string {
  const entropy = fnv1a(`${jobId}\n${seed}`, 64).slice(0, 12);
  const dir = trimSlash(savepointDir);
  return `${dir}${dir.endsWith('/') ? '' : '/'}savepoint-${jobId.slice(0, 6)}-${entropy}`;
}

/**
 * The triggerId of a schedule's slot (R48), in the format of Flink's `TriggerId` (an `AbstractID`: 16 bytes,
 * `toString` as 32 lowercase hex), so that a connector can hand it to Flink's savepoint trigger. Flink draws
 * the bytes at random; here they are the 128-bit FNV-1a hash of the job, the schedule's timing and the slot,
 * so every worker that presents the slot names the same trigger. Slots fired before these ids (triggerId
 * `periodic-<slot>`) are not fired again: what dedupes a slot is the job's `lastSlot`, not its triggerId.
 */
export function periodicTriggerId(
  jobId: string,
  schedule: Pick<SavepointSchedule, 'every' | 'cron' | 'tz'>,
  slot: number,
): string {
  const timing =
    schedule.every !== undefined
      ? `every ${durationMs(schedule.every)}`
      : `cron ${schedule.cron ?? ''} ${schedule.tz ?? ''}`;
  return fnv1a(`snapcat periodic savepoint\n${jobId}\n${timing}\n${slot}`, 128);
}

/**
 * The path to restore from (R57): what to pass to `flink run -s` or `execution.savepoint.path`. A completed
 * checkpoint, persisted or not, restores from its own `chk-<id>` directory, where Flink wrote its `_metadata`
 * (`FsCheckpointStorageLocation`, `Checkpoints.storeCheckpointMetadata`); a completed savepoint from its
 * directory. Anything not COMPLETED (pending, failed, being or been discarded) has none.
 */
export function restorePath(snapshot: { status: SnapshotStatus; externalPath: string }): string | null {
  return snapshot.status === 'COMPLETED' ? snapshot.externalPath : null;
}

function trimSlash(dir: string): string {
  return dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
}

const FNV = {
  64: { offset: 0xcbf29ce484222325n, prime: 0x100000001b3n },
  128: { offset: 0x6c62272e07bb014262b821756295c58dn, prime: 0x0000000001000000000000000000013bn },
} as const;
const utf8 = new TextEncoder();

/** FNV-1a over the UTF-8 bytes of the text, as bits/4 lowercase hex digits: deterministic, no randomness. */
export function fnv1a(text: string, bits: 64 | 128): string {
  const { offset, prime } = FNV[bits];
  const mask = (1n << BigInt(bits)) - 1n;
  let hash: bigint = offset;
  for (const byte of utf8.encode(text)) {
    hash ^= BigInt(byte);
    hash = (hash * prime) & mask;
  }
  return hash.toString(16).padStart(bits / 4, '0');
}
