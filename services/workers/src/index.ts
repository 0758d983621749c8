// The workers' package: startWorkers (start.ts) and what the API, the CLI and the tests use of them.
export { ProcessManager } from './process-manager';
export { ScheduleIndex } from './schedule-index';
export { fireDueSavepoints } from './processors';
export type { OrphanReport } from './orphans';
export { FlinkEnqueuer, checkpointReport, flinkTriggerId, type FlinkApi, type FlinkApis } from './flink';
export { startWorkers, type WorkerDeps, type RunningWorkers } from './start';
export { runWorkersOnly } from './run';
