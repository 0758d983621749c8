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

const utf8 = new TextEncoder();

/**
 * FNV-1a over the UTF-8 bytes of the text, as bits/4 lowercase hex digits: deterministic, no randomness.
 * In 16-bit limbs held in local variables (small integers V8 keeps unboxed) rather than BigInt: a periodic
 * slot hashes twice per firing, and a BigInt per byte made the hashing about 7 % of the firing's CPU (bench
 * #9's profile); the same limbs in typed arrays were still 6 %, this is about half of that. The prime is
 * 2^shift + small (0x100000001b3 = 2^40 + 0x1b3; the 128-bit prime is 2^88 + 0x13b), so each step is a
 * small product per limb plus the limbs shifted by `shift`, every partial sum below 2^26. ASCII text (every
 * path and id) is read from its char codes, without encoding it first.
 */
export function fnv1a(text: string, bits: 64 | 128): string {
  const bytes = isAscii(text) ? undefined : utf8.encode(text);
  return bits === 64 ? fnv64(text, bytes) : fnv128(text, bytes);
}

function fnv64(text: string, bytes: Uint8Array | undefined): string {
  let [a0, a1, a2, a3] = [0x2325, 0x8422, 0x9ce4, 0xcbf2]; // 0xcbf29ce484222325
  const length = bytes ? bytes.length : text.length;
  for (let b = 0; b < length; b += 1) {
    a0 ^= bytes ? bytes[b]! : text.charCodeAt(b);
    // hash << 40: limb i gains limbs i - 2 and i - 3 shifted by 8
    const v0 = a0 * 0x1b3;
    const v1 = a1 * 0x1b3 + (v0 >>> 16);
    const v2 = a2 * 0x1b3 + (v1 >>> 16) + ((a0 << 8) & 0xffff);
    const v3 = a3 * 0x1b3 + (v2 >>> 16) + (((a1 << 8) | (a0 >>> 8)) & 0xffff);
    a0 = v0 & 0xffff;
    a1 = v1 & 0xffff;
    a2 = v2 & 0xffff;
    a3 = v3 & 0xffff;
  }
  return hex16(a3) + hex16(a2) + hex16(a1) + hex16(a0);
}

function fnv128(text: string, bytes: Uint8Array | undefined): string {
  // 0x6c62272e07bb014262b821756295c58d
  let [a0, a1, a2, a3] = [0xc58d, 0x6295, 0x2175, 0x62b8];
  let [a4, a5, a6, a7] = [0x0142, 0x07bb, 0x272e, 0x6c62];
  const length = bytes ? bytes.length : text.length;
  for (let b = 0; b < length; b += 1) {
    a0 ^= bytes ? bytes[b]! : text.charCodeAt(b);
    // hash << 88: limb i gains limbs i - 5 and i - 6 shifted by 8
    const v0 = a0 * 0x13b;
    const v1 = a1 * 0x13b + (v0 >>> 16);
    const v2 = a2 * 0x13b + (v1 >>> 16);
    const v3 = a3 * 0x13b + (v2 >>> 16);
    const v4 = a4 * 0x13b + (v3 >>> 16);
    const v5 = a5 * 0x13b + (v4 >>> 16) + ((a0 << 8) & 0xffff);
    const v6 = a6 * 0x13b + (v5 >>> 16) + (((a1 << 8) | (a0 >>> 8)) & 0xffff);
    const v7 = a7 * 0x13b + (v6 >>> 16) + (((a2 << 8) | (a1 >>> 8)) & 0xffff);
    a0 = v0 & 0xffff;
    a1 = v1 & 0xffff;
    a2 = v2 & 0xffff;
    a3 = v3 & 0xffff;
    a4 = v4 & 0xffff;
    a5 = v5 & 0xffff;
    a6 = v6 & 0xffff;
    a7 = v7 & 0xffff;
  }
  return hex16(a7) + hex16(a6) + hex16(a5) + hex16(a4) + hex16(a3) + hex16(a2) + hex16(a1) + hex16(a0);
}

/** A byte as two hex digits, by table: formatting the limbs was a third of the hashing's time. */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));
/** A 16-bit limb as 4 hex digits. */
const hex16 = (limb: number) => HEX[limb >>> 8]! + HEX[limb & 0xff]!;

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}
