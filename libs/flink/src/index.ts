// The Flink REST client (issue 19): one FlinkRestClient per cluster and call site, one Circuit per cluster.
export { Circuit, type CircuitChange, type CircuitOptions, type CircuitState } from './circuit';
export {
  FLINK_JOB_STATUSES,
  FlinkRestClient,
  type FlinkCheckpoint,
  type FlinkCheckpointConfig,
  type FlinkCheckpoints,
  type FlinkClientOptions,
  type FlinkCluster,
  type FlinkDisposalStatus,
  type FlinkJob,
  type FlinkJobStatus,
  type FlinkOperationStatus,
  type FlinkRestoredCheckpoint,
  type SavepointFormatType,
} from './client';
export { FlinkError, type FlinkErrorKind } from './errors';
