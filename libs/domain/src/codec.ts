import { AckLog } from './ack-log';
import { LayeredMap } from './layered-map';
import { internProperties } from './properties';
import type { StateHandle } from './schemas';
import {
  rebuildRegistry,
  retainedTaskHandles,
  snapshotRecord,
  type JobState,
  type SnapshotState,
} from './state';

/**
 * Bump when `evolve` changes what a state means: stored aggregate snapshots of another version are ignored
 * (the job's stream is replayed once, and a new aggregate written). 18: finished snapshots leave the state
 * (decision 0035); a state of 17 still holds every one, which a replay would not. 19: their Flink ids leave
 * `flinkCheckpoints` with them, below `flinkCheckpointFloor`. 20: `flinkRestoreSources`, the uncatalogued runs
 * a managed job was restored from (a state of 19 lacks those it was restored from before). 21: its own
 * catalogued savepoints Flink restored it from are among them (`inUseByManagedRun`). 22: a NO_CLAIM or LEGACY
 * external path stays the user's (`planningJobOf`). 23: `usersRestoreDirectories`, every such path the job restored from. 24: `discardAwaits`, a subsumed checkpoint whose discard waits for the checkpoints pending then (R73).
 */
export const STATE_CODEC_VERSION = 24;

interface EncodedSnapshot extends Omit<SnapshotState, 'acks' | 'expectedTasks'> {
  acks: [string, StateHandle[]][];
  /** Omitted when the snapshot expects the job's own task list (written once, not once per snapshot). */
  expectedTasks?: string[];
}

/** The shared-state registry is not encoded: it is rebuilt from the snapshots (`rebuildRegistry`). */
export interface EncodedJobState extends Omit<
  JobState,
  | 'snapshots'
  | 'triggers'
  | 'pending'
  | 'sharedState'
  | 'strayCleanups'
  | 'flinkCheckpoints'
  | 'countedFailures'
> {
  codecVersion: number;
  countedFailures: number[];
  snapshots: EncodedSnapshot[];
  triggers: [string, number][];
  pending: number[];
  strayCleanups: [number, string[]][];
  flinkCheckpoints: [number, number][];
}

/** A JSON-safe copy of a state, for aggregate snapshots (cold starts without replaying the whole stream). */
export function encodeState(state: JobState): EncodedJobState {
  const { sharedState: _derived, ...rest } = state;
  return {
    ...rest,
    codecVersion: STATE_CODEC_VERSION,
    snapshots: [...state.snapshots.values()].map(({ expectedTasks, ...s }) => ({
      ...s,
      ...(expectedTasks === state.tasks ? {} : { expectedTasks }),
      acks: s.acks.entries(s.acknowledged),
    })),
    triggers: [...state.triggers],
    pending: [...state.pending],
    strayCleanups: [...state.strayCleanups],
    countedFailures: [...state.countedFailures],
    flinkCheckpoints: [...state.flinkCheckpoints],
  };
}

/** The state an encoding holds, or null when it was written by another codec version. */
export function decodeState(encoded: EncodedJobState): JobState | null {
  if (encoded.codecVersion !== STATE_CODEC_VERSION) return null;
  const { codecVersion: _version, ...rest } = encoded;
  const snapshots = LayeredMap.of(
    encoded.snapshots.map((snapshot) => [
      snapshot.snapshotId,
      snapshotRecord({
        ...snapshot,
        // Shared with the job's task list again, as `evolve` does (memory of jobs with many snapshots).
        expectedTasks: snapshot.expectedTasks ?? encoded.tasks,
        properties: internProperties(snapshot.properties),
        ...(snapshot.taskHandles ? { taskHandles: retainedTaskHandles(snapshot.taskHandles) } : {}),
        acks:
          snapshot.status === 'PENDING' || snapshot.acks.length > 0 ? AckLog.of(snapshot.acks) : AckLog.EMPTY,
      }),
    ]),
  );
  const strayCleanups = new Map(encoded.strayCleanups);
  return {
    ...rest,
    snapshots,
    strayCleanups,
    sharedState: rebuildRegistry(snapshots.values(), strayCleanups),
    triggers: LayeredMap.of(encoded.triggers),
    pending: new Set(encoded.pending),
    countedFailures: new Set(encoded.countedFailures),
    flinkCheckpoints: LayeredMap.of(encoded.flinkCheckpoints),
  };
}
