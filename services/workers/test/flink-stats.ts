import type { FlinkCheckpoint } from '@snapcat/flink';

/** A completed savepoint as Flink's CheckpointStatistics reports it, changed by `over`. */
export const flinkStats = (over: Partial<FlinkCheckpoint> = {}): FlinkCheckpoint => ({
  id: 7,
  status: 'COMPLETED',
  isSavepoint: true,
  savepointFormat: null,
  checkpointType: 'SAVEPOINT',
  triggerTimestamp: 1_000,
  latestAckTimestamp: 1_100,
  stateSize: 10,
  checkpointedSize: 10,
  externalPath: 'file:/data/sp/savepoint-012345-00000000000a',
  externallyAddressable: true,
  discarded: false,
  numSubtasks: 1,
  numAcknowledgedSubtasks: 1,
  failureTimestamp: null,
  failureMessage: null,
  ...over,
});
