import {
  Event,
  checkpointTypeOf,
  decodeState,
  encodeState,
  fold,
  initialState,
  snapshotView,
  type EventOf,
} from '../src';
import { JOB, Job } from './harness';

const handle = (snapshotId: number, taskId: string, sizeBytes = 10) => ({
  path: `/data/chk/${JOB}/chk-${snapshotId}/${taskId}`,
  sizeBytes,
});

function triggered(job: Job, kind: 'CHECKPOINT' | 'SAVEPOINT', checkpointType?: 'FULL' | 'INCREMENTAL') {
  const { events, reply } = job.run({
    type: 'TriggerSnapshot',
    kind,
    triggerId: `${kind}-${checkpointType ?? 'none'}-${job.state.nextSnapshotId}`,
    triggerType: 'MANUAL',
    formatType: 'CANONICAL',
    ...(checkpointType ? { checkpointType } : {}),
  });
  if (!reply.accepted) throw new Error(`rejected: ${reply.reason}`);
  return { id: reply.snapshotId, event: events[0] as EventOf<'SnapshotTriggered'> };
}

function ack(
  job: Job,
  snapshotId: number,
  taskId: string,
  extra: { checkpointType?: 'FULL' | 'INCREMENTAL'; checkpointedSize?: number } = {},
) {
  return job.run({
    type: 'AcknowledgeTask',
    snapshotId,
    taskId,
    stateSize: 100,
    stateHandles: [handle(snapshotId, taskId)],
    ...extra,
  });
}

describe('checkpoint types (docs/domain.md R58)', () => {
  it('R58 a checkpoint asked for nothing is INCREMENTAL, as Flink resolves CONFIGURED to CheckpointType.CHECKPOINT (CheckpointCoordinator.triggerCheckpoint(CheckpointType), CheckpointProperties.forCheckpoint); a savepoint is FULL (SavepointType: SharingFilesStrategy.NO_SHARING)', () => {
    const job = new Job().register();
    const checkpoint = triggered(job, 'CHECKPOINT');
    const savepoint = triggered(job, 'SAVEPOINT');
    const full = triggered(job, 'CHECKPOINT', 'FULL');
    expect(checkpoint.event.checkpointType).toBe('INCREMENTAL');
    expect(savepoint.event.checkpointType).toBe('FULL');
    expect(full.event.checkpointType).toBe('FULL');
    expect(snapshotView(job.snapshot(checkpoint.id)).checkpointType).toBe('INCREMENTAL');
    expect(snapshotView(job.snapshot(savepoint.id)).checkpointType).toBe('FULL');
    expect(snapshotView(job.snapshot(full.id)).checkpointType).toBe('FULL');
    // FORMAT stays beside it.
    expect(snapshotView(job.snapshot(savepoint.id)).formatType).toBe('CANONICAL');
  });

  it('R58 a savepoint asked to be INCREMENTAL is INVALID, naming checkpointType, and writes nothing (SavepointType.getSharingFilesStrategy: NO_SHARING)', () => {
    const job = new Job().register();
    const before = job.log.length;
    const rejection = job.reject({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 'sp-incremental',
      triggerType: 'MANUAL',
      formatType: 'NATIVE',
      checkpointType: 'INCREMENTAL',
    });
    expect(rejection.code).toBe('INVALID');
    expect(rejection.field).toBe('checkpointType');
    expect(rejection.rule).toBe('savepoint-is-full');
    expect(rejection.message).toBe(
      'a savepoint is always FULL: it shares no files with other snapshots (R58)',
    );
    expect(job.log.length).toBe(before);
    expect(job.state.nextSnapshotId).toBe(1);
  });

  it('R58 the tasks correct an INCREMENTAL request: FULL while they report FULL (a backend without incremental checkpoints), INCREMENTAL once one reports it, and it stays INCREMENTAL (Flink CheckpointType.CHECKPOINT is "full or incremental")', () => {
    const job = new Job().register({ tasks: ['a', 'b', 'c', 'd'] });
    const { id } = triggered(job, 'CHECKPOINT', 'INCREMENTAL');
    ack(job, id, 'a');
    expect(checkpointTypeOf(job.snapshot(id))).toBe('INCREMENTAL');
    ack(job, id, 'b', { checkpointType: 'FULL' });
    expect(checkpointTypeOf(job.snapshot(id))).toBe('FULL');
    ack(job, id, 'c', { checkpointType: 'INCREMENTAL' });
    expect(checkpointTypeOf(job.snapshot(id))).toBe('INCREMENTAL');
    ack(job, id, 'd', { checkpointType: 'FULL' });
    expect(job.snapshot(id).status).toBe('COMPLETED');
    expect(snapshotView(job.snapshot(id)).checkpointType).toBe('INCREMENTAL');

    const other = triggered(job, 'CHECKPOINT');
    for (const task of ['a', 'b', 'c', 'd']) ack(job, other.id, task, { checkpointType: 'FULL' });
    expect(snapshotView(job.snapshot(other.id)).checkpointType).toBe('FULL');
  });

  it('R58 an INCREMENTAL acknowledgement of a FULL snapshot is a CONFLICT and writes nothing: Flink’s task declines a full snapshot it cannot take (StreamTask.checkForcedFullSnapshotSupport, CheckpointType.FULL_CHECKPOINT)', () => {
    const job = new Job().register();
    const { id } = triggered(job, 'CHECKPOINT', 'FULL');
    const before = job.log.length;
    const rejection = job.reject({
      type: 'AcknowledgeTask',
      snapshotId: id,
      taskId: 'a',
      stateSize: 10,
      stateHandles: [],
      checkpointType: 'INCREMENTAL',
    });
    expect(rejection).toMatchObject({
      code: 'CONFLICT',
      field: 'checkpointType',
      rule: 'full-snapshot-acknowledged-incremental',
      message: `checkpoint ${id} is FULL: a task that cannot take a full snapshot declines it (R58)`,
    });
    expect(job.log.length).toBe(before);
    ack(job, id, 'a', { checkpointType: 'FULL' });
    // A task that names no type: its acknowledgement records none (not even an undefined one).
    const untyped = ack(job, id, 'b').events[0]!;
    expect(untyped.type).toBe('TaskAcknowledged');
    expect('checkpointType' in untyped).toBe(false);
    expect(snapshotView(job.snapshot(id))).toMatchObject({ status: 'COMPLETED', checkpointType: 'FULL' });

    const savepoint = triggered(job, 'SAVEPOINT');
    expect(
      job.reject({
        type: 'AcknowledgeTask',
        snapshotId: savepoint.id,
        taskId: 'a',
        stateSize: 10,
        stateHandles: [],
        checkpointType: 'INCREMENTAL',
      }).message,
    ).toBe(`savepoint ${savepoint.id} is FULL: a task that cannot take a full snapshot declines it (R58)`);
  });

  it('R58 checkpointedSize sums what the tasks uploaded (Flink CheckpointStatistics checkpointed_size), each task’s stateSize where it gave none', () => {
    const job = new Job().register({ tasks: ['a', 'b'] });
    const { id } = triggered(job, 'CHECKPOINT');
    const { events } = ack(job, id, 'a', { checkpointType: 'INCREMENTAL', checkpointedSize: 7 });
    expect(events[0]).toMatchObject({
      type: 'TaskAcknowledged',
      checkpointType: 'INCREMENTAL',
      checkpointedSize: 7,
    });
    ack(job, id, 'b');
    const view = snapshotView(job.snapshot(id));
    expect(view.stateSize).toBe(200);
    expect(view.checkpointedSize).toBe(107);
  });

  it('R58 a log written before checkpoint types replays: its savepoints FULL, its checkpoints unknown (null), their checkpointed size their state size', () => {
    const at = '2026-01-01T00:00:00.000Z';
    const base = { jobId: JOB, occurredAt: at };
    const props = {
      forced: false,
      discardSubsumed: true,
      discardFinished: true,
      discardCancelled: true,
      discardFailed: true,
      discardSuspended: true,
    };
    const old = [
      {
        type: 'JobRegistered',
        ...base,
        name: 'old',
        tasks: ['a'],
        status: 'RUNNING',
        checkpointing: {
          numRetained: 3,
          timeoutMs: 60_000,
          maxConcurrent: 5,
          minPauseMs: 0,
          tolerableFailures: 0,
          retention: 'NEVER_RETAIN_AFTER_TERMINATION',
        },
        storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
      },
      ...[
        { id: 1, kind: 'CHECKPOINT', path: `/data/chk/${JOB}/chk-1` },
        { id: 2, kind: 'SAVEPOINT', path: '/data/sp/savepoint-012345-abcdefabcdef' },
      ].flatMap(({ id, kind, path }) => [
        {
          type: 'SnapshotTriggered',
          ...base,
          snapshotId: id,
          kind,
          triggerType: 'MANUAL',
          triggerId: `old-${id}`,
          properties: kind === 'SAVEPOINT' ? { ...props, forced: true } : props,
          formatType: 'CANONICAL',
          tasks: ['a'],
          deadline: '2026-01-01T00:01:00.000Z',
          externalPath: path,
        },
        {
          type: 'TaskAcknowledged',
          ...base,
          snapshotId: id,
          taskId: 'a',
          stateSize: 42,
          stateHandles: [{ path: `${path}/a`, sizeBytes: 42 }],
        },
        { type: 'SnapshotCompleted', ...base, snapshotId: id, kind, stateSize: 42, externalPath: path },
      ]),
    ].map((e) => Event.parse(e));
    const state = fold(initialState(JOB), old);
    expect(snapshotView(state.snapshots.get(1)!)).toMatchObject({
      checkpointType: null,
      checkpointedSize: 42,
    });
    expect(snapshotView(state.snapshots.get(2)!)).toMatchObject({
      checkpointType: 'FULL',
      checkpointedSize: 42,
    });

    // The aggregate codec keeps them (STATE_CODEC_VERSION 7).
    const decoded = decodeState(JSON.parse(JSON.stringify(encodeState(state))))!;
    expect([...decoded.snapshots.values()].map(snapshotView)).toEqual(
      [...state.snapshots.values()].map(snapshotView),
    );
  });

  it('R58 the codec keeps what was asked for and what the tasks reported', () => {
    const job = new Job().register();
    const { id } = triggered(job, 'CHECKPOINT');
    ack(job, id, 'a', { checkpointType: 'FULL', checkpointedSize: 3 });
    const decoded = decodeState(JSON.parse(JSON.stringify(encodeState(job.state))))!;
    const continued = job.continuedWith(decoded);
    ack(continued, id, 'b', { checkpointType: 'INCREMENTAL', checkpointedSize: 4 });
    expect(snapshotView(continued.snapshot(id))).toMatchObject({
      status: 'COMPLETED',
      checkpointType: 'INCREMENTAL',
      checkpointedSize: 7,
    });
    const replayed = fold(initialState(JOB), [...job.log, ...continued.log]);
    expect(snapshotView(replayed.snapshots.get(id)!)).toEqual(snapshotView(continued.snapshot(id)));
  });
});
