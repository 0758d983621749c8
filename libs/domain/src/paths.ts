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
 * seed naming the savepoint within its job (its id and triggerId, or the checkpoint a persist keeps), and
 * `entropy` the command bus draws at random for each decision: a client chooses the job id and the triggerId,
 * and without it could compute a triggerId whose path is another job's existing savepoint directory, which
 * the discard of its own (failed) savepoint would then delete. The path is recorded in the event, so a replay
 * never computes it again.
 */
export function savepointPath(savepointDir: string, jobId: string, seed: string, entropy = ''): string {
  const hash = fnv1a(`${jobId}\n${seed}${entropy === '' ? '' : `\n${entropy}`}`, 64).slice(0, 12);
  const dir = trimSlash(savepointDir);
  return `${dir}${dir.endsWith('/') ? '' : '/'}savepoint-${jobId.slice(0, 6)}-${hash}`;
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
export function restorePath(snapshot: {
  status: SnapshotStatus;
  externalPath: string;
  externallyAddressable?: boolean;
}): string | null {
  return snapshot.status === 'COMPLETED' && snapshot.externallyAddressable !== false
    ? snapshot.externalPath
    : null;
}

function trimSlash(dir: string): string {
  return dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
}

/**
 * FNV-1a's parameters: the offset basis as 16-bit limbs, least significant first, and the prime as
 * 2^shift + small (0x100000001b3 = 2^40 + 0x1b3; the 128-bit prime is 2^88 + 0x13b).
 */
const FNV = {
  64: { offset: limbsOf('cbf29ce484222325'), shift: 40, small: 0x1b3 },
  128: { offset: limbsOf('6c62272e07bb014262b821756295c58d'), shift: 88, small: 0x13b },
} as const;
const utf8 = new TextEncoder();

function limbsOf(hex: string): readonly number[] {
  const limbs: number[] = [];
  for (let end = hex.length; end > 0; end -= 4) limbs.push(parseInt(hex.slice(end - 4, end), 16));
  return limbs;
}

/**
 * FNV-1a over the UTF-8 bytes of the text, as bits/4 lowercase hex digits: deterministic, no randomness.
 * In 16-bit limbs rather than BigInt: a periodic slot hashes twice per firing, and a BigInt per byte made
 * the hashing about 7 % of the firing's CPU (bench #9's profile). The multiplication by the prime is a shift and a small
 * product, each limb's partial sums staying well inside a double's exact integers.
 */
export function fnv1a(text: string, bits: 64 | 128): string {
  const { offset, shift, small } = FNV[bits];
  const n = bits / 16;
  const whole = shift >>> 4; // limbs of the shift
  const part = shift & 15; // and bits within a limb
  let hash = Uint32Array.from(offset);
  let next = new Uint32Array(n);
  const bytes = utf8.encode(text);
  for (let b = 0; b < bytes.length; b += 1) {
    hash[0] = hash[0]! ^ bytes[b]!;
    let carry = 0;
    for (let i = 0; i < n; i += 1) {
      // limb i of hash * small + (hash << shift): the shifted bits come from limbs i - whole and below
      const j = i - whole;
      const shifted = j < 0 ? 0 : ((hash[j]! << part) | (j > 0 ? hash[j - 1]! >>> (16 - part) : 0)) & 0xffff;
      const v = hash[i]! * small + shifted + carry;
      next[i] = v & 0xffff;
      carry = v >>> 16;
    }
    [hash, next] = [next, hash];
  }
  let hex = '';
  for (let i = n - 1; i >= 0; i -= 1) hex += hash[i]!.toString(16).padStart(4, '0');
  return hex;
}
