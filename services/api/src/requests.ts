import { z } from 'zod';
import {
  CheckpointingConfig,
  FormatType,
  JobId,
  JobStatus,
  Location,
  SavepointSchedule,
  SnapshotId,
  SnapshotKind,
  StateHandle,
  TaskId,
  Tasks,
  TriggerIdSchema,
  TriggerType,
} from '@snapcat/domain';
import { validationProblem } from './problem';

/** Request shapes of the REST API, built from the domain's schemas so a rule is written once. */
export function requestSchemas(defaults: { checkpointDir: string; savepointDir: string }) {
  return {
    jobPath: z.strictObject({ jobId: JobId }),
    snapshotPath: z.strictObject({ jobId: JobId, snapshotId: SnapshotId }),
    configureJob: z.strictObject({
      name: z.string().min(1).max(256).optional(),
      tasks: Tasks,
      status: JobStatus.optional(),
      checkpointing: CheckpointingConfig.prefault({}),
      storage: z
        .strictObject({
          checkpointDir: Location.default(defaults.checkpointDir),
          savepointDir: Location.default(defaults.savepointDir),
        })
        .prefault({}),
    }),
    changeStatus: z.strictObject({ status: JobStatus }),
    schedule: SavepointSchedule,
    trigger: z.strictObject({
      kind: SnapshotKind,
      triggerId: TriggerIdSchema.optional(),
      triggerType: TriggerType.default('MANUAL'),
      targetDirectory: Location.optional(),
      formatType: FormatType.default('CANONICAL'),
    }),
    ack: AckBody,
    acks: z.array(AckBody).min(1).max(10_000),
    decline: z.strictObject({ taskId: TaskId, reason: z.string().max(4096).optional() }),
    persist: z.strictObject({ targetDirectory: Location.optional() }),
    discard: z.strictObject({ reason: z.string().max(4096).optional(), force: z.boolean().default(false) }),
    events: z.strictObject({
      from: z.coerce.number().int().min(0).default(0),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
    }),
  };
}

const AckBody = z.strictObject({
  taskId: TaskId,
  stateSize: z.number().int().nonnegative().default(0),
  stateHandles: z.array(StateHandle).max(10_000).default([]),
});

export function parse<T extends z.ZodType>(
  schema: T,
  value: unknown,
  location: 'body' | 'path' | 'query',
): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationProblem(result.error, location, value);
  return result.data;
}
