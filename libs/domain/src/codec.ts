import { AckLog, type TaskAck } from './ack-log';
import { sameList, type JobState, type SnapshotState } from './state';

/** Bump when `evolve` changes what a state means: stored aggregate snapshots of another version are ignored. */
export const STATE_CODEC_VERSION = 2;

interface EncodedSnapshot extends Omit<SnapshotState, 'acks'> {
  acks: [string, TaskAck][];
}

export interface EncodedJobState extends Omit<JobState, 'snapshots' | 'triggers' | 'pending'> {
  codecVersion: number;
  snapshots: EncodedSnapshot[];
  triggers: [string, number][];
  pending: number[];
}

/** A JSON-safe copy of a state, for aggregate snapshots (cold starts without replaying the whole stream). */
export function encodeState(state: JobState): EncodedJobState {
  return {
    ...state,
    codecVersion: STATE_CODEC_VERSION,
    snapshots: [...state.snapshots.values()].map((s) => ({ ...s, acks: s.acks.entries(s.acknowledged) })),
    triggers: [...state.triggers],
    pending: [...state.pending],
  };
}

/** The state an encoding holds, or null when it was written by another codec version. */
export function decodeState(encoded: EncodedJobState): JobState | null {
  if (encoded.codecVersion !== STATE_CODEC_VERSION) return null;
  const { codecVersion: _version, ...rest } = encoded;
  return {
    ...rest,
    snapshots: new Map(
      encoded.snapshots.map((s) => [
        s.snapshotId,
        {
          ...s,
          // Shared with the job's task list again, as `evolve` does (memory of jobs with many snapshots).
          expectedTasks: sameList(s.expectedTasks, encoded.tasks) ? encoded.tasks : s.expectedTasks,
          acks: AckLog.of(s.acks),
        },
      ]),
    ),
    triggers: new Map(encoded.triggers),
    pending: new Set(encoded.pending),
  };
}
