import fc from 'fast-check';
import {
  FINISHED_SNAPSHOTS_KEPT,
  decodeState,
  encodeState,
  failureReasonOf,
  fold,
  initialState,
  flinkCheckpoint,
  flinkCheckpointingStatistics,
  jobSummaryView,
  restorePlan,
  savepointPath,
  snapshotView,
  type FlinkCheckpointReport,
} from '../src';
import { JOB, Job, MANAGED_SOURCE as SOURCE, T0 } from './harness';
import { propertyRuns } from './property-runs';

const managed = (numRetained = 1): Job => new Job().registerManaged(numRetained);

const report = (id: number, over: Partial<FlinkCheckpointReport> = {}): FlinkCheckpointReport => ({
  id,
  status: 'COMPLETED',
  isSavepoint: false,
  checkpointType: 'INCREMENTAL',
  triggerTimestamp: T0 + id,
  stateSize: 100 * id,
  checkpointedSize: 10 * id,
  externalPath: `/data/chk/${JOB}/chk-${id}`,
  discarded: false,
  failureMessage: null,
  ...over,
});

const mirror = (job: Job, checkpoints: FlinkCheckpointReport[]) =>
  job.run({ type: 'RecordFlinkCheckpoints', checkpoints });

/**
 * A JobManager failover: the new history holds only checkpoint `id + 1`, and reports that the job restored from
 * checkpoint `id` at `restoredAt`.
 */
const failoverRestoringFrom = (job: Job, id: number, restoredAt: number) =>
  job.run({
    type: 'RecordFlinkCheckpoints',
    checkpoints: [report(id + 1)],
    restored: {
      id,
      restoreTimestamp: restoredAt,
      isSavepoint: false,
      externalPath: `/data/chk/${JOB}/chk-${id}`,
    },
  });

/**
 * Checkpoint `id` seen in progress (`id - 1` completed before it), then failed by the catalogue's own expiry
 * `afterMs` later, with no word from Flink meanwhile: the failed snapshot's id.
 */
function expiredByTheCatalogue(job: Job, id: number, afterMs: number): number {
  mirror(job, [
    report(id - 1),
    report(id, { status: 'IN_PROGRESS', externalPath: null, triggerTimestamp: job.now }),
  ]);
  const given = job.state.flinkCheckpoints.get(id)!;
  job.now += afterMs;
  job.run({ type: 'ExpireOverdue' });
  return given;
}

/** A managed job (3 retained) whose Flink expires a checkpoint after `timeoutMs`, as the connector read it. */
function managedTimedOutByFlinkAfter(timeoutMs: number): Job {
  const job = managed(3);
  job.run({
    type: 'RecordFlinkCheckpointConfig',
    externalized: true,
    deleteOnCancellation: false,
    timeoutMs,
  });
  return job;
}

describe('managed jobs (R67, R68): Flink takes the snapshots, snapcat records them', () => {
  it('R67 a job with a Flink source needs no tasks; one without a source does', () => {
    const job = managed();
    expect(job.state.source).toEqual(SOURCE);
    expect(job.state.tasks).toEqual([]);
    const native = new Job();
    expect(
      native.reject({
        type: 'ConfigureJob',
        name: 'x',
        tasks: [],
        checkpointing: job.state.checkpointing,
        storage: job.state.storage,
      }),
    ).toMatchObject({
      code: 'INVALID',
      field: 'tasks',
      rule: 'min-length',
      message:
        'name the tasks that acknowledge snapshots; only a job managed through Flink (source) has none (R67)',
    });
  });

  it('R67 a managed job reconfigured without naming its source keeps it, and its event says so', () => {
    const job = managed();
    const { events, reply } = job.run({
      type: 'ConfigureJob',
      name: 'renamed',
      tasks: [],
      checkpointing: job.state.checkpointing,
      storage: job.state.storage,
    });
    expect(reply).toEqual({ created: false, changed: true });
    expect(events).toEqual([
      {
        type: 'JobReconfigured',
        jobId: JOB,
        occurredAt: new Date(T0).toISOString(),
        name: 'renamed',
        tasks: [],
        checkpointing: job.state.checkpointing,
        storage: job.state.storage,
        source: SOURCE,
      },
    ]);
    expect(job.state.source).toEqual(SOURCE);
  });

  it('R66 a stop whose job failed while stopping keeps its savepoint, and the job is not finished (it fails over)', () => {
    const job = managed();
    const stopWithSavepoint = (on: Job, triggerId: string) =>
      on.run({
        type: 'TriggerSnapshot',
        kind: 'SAVEPOINT',
        triggerId,
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
        terminate: { drain: false },
      }).reply;
    const stop = stopWithSavepoint(job, 'stop-1');
    if (!stop.accepted) throw new Error('rejected');
    const location = `/data/sp/savepoint-012345-abcdefabcdef`;
    const stopFailure = `StopWithSavepointStoppingException: A savepoint has been created at: ${location}, …`;
    const { events } = job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: stop.snapshotId,
      outcome: { status: 'COMPLETED', location, stopFailure },
    });
    expect(job.snapshot(stop.snapshotId)).toMatchObject({ status: 'COMPLETED', externalPath: location });
    expect(events.map((e) => e.type)).not.toContain('JobStatusChanged');
    expect(job.state.status).toBe('RUNNING');
    // A stop that ends as Flink's stops do finishes the job.
    const again = stopWithSavepoint(job, 'stop-2');
    if (!again.accepted) throw new Error('rejected');
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: again.snapshotId,
      outcome: { status: 'COMPLETED', location: `/data/sp/savepoint-012345-bcdefabcdefa` },
    });
    expect(job.state.status).toBe('FINISHED');
  });

  it('R65 a stop of a managed job aborts none of its mirrored checkpoints: Flink aborts those still pending, and the mirror records what it did', () => {
    const job = managed();
    mirror(job, [report(3, { status: 'IN_PROGRESS', externalPath: null })]);
    const pending = job.state.flinkCheckpoints.get(3)!;
    expect(job.snapshot(pending).status).toBe('PENDING');
    const stop = job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 'stop-1',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
      terminate: { drain: false },
    });
    expect(stop.events.map((e) => e.type)).toEqual(['SnapshotTriggered']);
    // Flink had completed it before the stop reached it.
    mirror(job, [report(3)]);
    expect(job.snapshot(pending)).toMatchObject({ status: 'COMPLETED', flinkCheckpointId: 3 });
  });

  it('R67 a savepoint is completed where Flink wrote it, or failed with Flink’s cause (not counted)', () => {
    const job = managed();
    const first = job.trigger('SAVEPOINT');
    if (!first.accepted) throw new Error('rejected');
    const location = `/data/sp/savepoint-012345-abcdefabcdef`;
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: first.snapshotId,
      outcome: { status: 'COMPLETED', location },
    });
    expect(job.snapshot(first.snapshotId)).toMatchObject({ status: 'COMPLETED', externalPath: location });
    // Again: nothing changes.
    expect(
      job.run({
        type: 'RecordFlinkSavepoint',
        snapshotId: first.snapshotId,
        outcome: { status: 'COMPLETED', location },
      }).events,
    ).toEqual([]);
    const second = job.trigger('SAVEPOINT');
    if (!second.accepted) throw new Error('rejected');
    const cause =
      'org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint expired before completing.';
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: second.snapshotId,
      outcome: { status: 'FAILED', cause },
    });
    expect(job.snapshot(second.snapshotId)).toMatchObject({
      status: 'FAILED',
      failureReason: 'CHECKPOINT_EXPIRED',
      failureMessage: cause,
    });
    expect(job.state.consecutiveFailures).toBe(0);
    // The registry follows the savepoint to where Flink wrote it.
    expect(fold(initialState(JOB), job.log)).toEqual(job.state);
    expect(decodeState(JSON.parse(JSON.stringify(encodeState(job.state))))).toEqual(job.state);
  });

  it('R67 checkpoints are Flink’s: snapcat triggers none, subsumes none, and deletes none itself when the job ends', () => {
    const job = managed(1);
    expect(
      job.reject({
        type: 'TriggerSnapshot',
        kind: 'CHECKPOINT',
        triggerId: 'c',
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
      }),
    ).toMatchObject({
      code: 'CONFLICT',
      rule: 'managed-job-checkpoints',
    });
    mirror(job, [report(1), report(2), report(3)]);
    expect([...job.state.completed]).toHaveLength(3);
    // Flink's retention not read (yet): what Flink deletes at the end is not guessed (below: it is recorded
    // as Flink's deletion once the retention is known).
    const { events } = job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(events.map((e) => e.type)).toEqual(['JobStatusChanged']);
  });

  // DefaultCompletedCheckpointStore.shutdown discards each retained checkpoint whose properties say so for the
  // job's end (CompletedCheckpoint.shouldBeDiscardedOnShutdown); the mirror stops when the job ends, so the
  // catalogue records it at the end, as deleted by Flink (nothing for snapcat to delete).
  it.each([
    [false, false, 'CANCELED', [1, 2, 3]],
    [false, false, 'FINISHED', [1, 2, 3]],
    [true, false, 'CANCELED', []],
    [true, false, 'FINISHED', [1, 2, 3]],
    [true, true, 'CANCELED', [1, 2, 3]],
    [true, true, 'FAILED', []],
  ] as const)(
    'R67 externalized %s, deleteOnCancellation %s: ending %s, Flink deletes the mirrored checkpoints %j, recorded so',
    (externalized, deleteOnCancellation, status, deleted) => {
      const job = managed(3);
      job.run({ type: 'RecordFlinkCheckpointConfig', externalized, deleteOnCancellation });
      mirror(job, [report(1), report(2), report(3)]);
      const ids = [1, 2, 3].map((flinkId) => job.state.flinkCheckpoints.get(flinkId)!);
      const { events } = job.run({ type: 'ChangeJobStatus', status });
      const discards = events.filter((e) => e.type === 'SnapshotDiscardRequested');
      expect(discards.map((e) => e.snapshotId)).toEqual(deleted.map((flinkId) => ids[flinkId - 1]));
      for (const discard of discards) {
        expect(discard).toMatchObject({ cause: `JOB_${status}`, locations: [], stateHandles: [] });
      }
      for (const flinkId of deleted) {
        expect(job.snapshot(ids[flinkId - 1]!)).toMatchObject({
          status: 'DISCARDED',
          discard: { state: 'DONE', reason: 'deleted by Flink' },
        });
      }
    },
  );

  const stamp = { jobId: JOB, occurredAt: new Date(T0).toISOString() };

  /** A managed job with a completed savepoint of snapcat's, restored from in `claimMode`. */
  function restoredFromSavepoint(claimMode: 'CLAIM' | 'NO_CLAIM' | 'LEGACY') {
    const job = managed();
    const savepoint = job.trigger('SAVEPOINT');
    if (!savepoint.accepted) throw new Error('rejected');
    const location = '/data/sp/savepoint-012345-abcdefabcdef';
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: savepoint.snapshotId,
      outcome: { status: 'COMPLETED', location },
    });
    job.run({
      type: 'RestoreSnapshot',
      snapshotId: savepoint.snapshotId,
      claimMode,
      allowNonRestoredState: false,
    });
    return { job, id: savepoint.snapshotId, location };
  }

  // Flink's CheckpointCoordinator.restoreSavepoint puts a claimed snapshot in the job's checkpoint store with the
  // job's checkpoint properties; the store deletes it on shutdown as they say
  // (DefaultCompletedCheckpointStore.shutdown → CompletedCheckpoint.shouldBeDiscardedOnShutdown).
  it.each([
    // Flink's retention unknown: the catalogue's (NEVER_RETAIN_AFTER_TERMINATION for `managed()`).
    [null, 'CANCELED', true],
    [null, 'FAILED', true],
    // Not externalized: NEVER_RETAIN_AFTER_TERMINATION.
    [{ externalized: false, deleteOnCancellation: true }, 'FAILED', true],
    // DELETE_ON_CANCELLATION: RETAIN_ON_FAILURE.
    [{ externalized: true, deleteOnCancellation: true }, 'CANCELED', true],
    [{ externalized: true, deleteOnCancellation: true }, 'FAILED', false],
    [{ externalized: true, deleteOnCancellation: true }, 'FINISHED', true],
    // RETAIN_ON_CANCELLATION.
    [{ externalized: true, deleteOnCancellation: false }, 'CANCELED', false],
    [{ externalized: true, deleteOnCancellation: false }, 'FAILED', false],
    [{ externalized: true, deleteOnCancellation: false }, 'FINISHED', true],
  ] as const)(
    'R62 R67 a savepoint a managed job claimed is Flink’s: with Flink’s retention %j, when the job is %s Flink deletes it: %s; snapcat deletes nothing of it',
    (retention, status, deleted) => {
      const { job, id } = restoredFromSavepoint('CLAIM');
      if (retention) job.run({ type: 'RecordFlinkCheckpointConfig', ...retention });
      const { events } = job.run({ type: 'ChangeJobStatus', status });
      if (deleted) {
        expect(events.filter((e) => e.type !== 'JobStatusChanged')).toEqual([
          {
            ...stamp,
            type: 'SnapshotDiscardRequested',
            snapshotId: id,
            cause: `JOB_${status}`,
            reason: 'deleted by Flink',
            locations: [],
            stateHandles: [],
            kept: [],
          },
          { ...stamp, type: 'SnapshotDiscarded', snapshotId: id, bytesReclaimed: 0 },
        ]);
        expect(job.snapshot(id)).toMatchObject({ status: 'DISCARDED' });
      } else {
        expect(events.map((e) => e.type)).toEqual(['JobStatusChanged']);
        expect(job.snapshot(id)).toMatchObject({ status: 'COMPLETED' });
      }
      expect(fold(initialState(JOB), job.log)).toEqual(job.state);
    },
  );

  it.each(['NO_CLAIM', 'LEGACY'] as const)(
    'R62 R67 a savepoint a managed job restored from in %s mode stays the user’s: kept when the job is canceled, disposed of through Flink on request',
    (claimMode) => {
      const { job, id, location } = restoredFromSavepoint(claimMode);
      expect(job.run({ type: 'ChangeJobStatus', status: 'CANCELED' }).events.map((e) => e.type)).toEqual([
        'JobStatusChanged',
      ]);
      expect(job.snapshot(id).status).toBe('COMPLETED');
      const { events } = job.run({ type: 'RequestDiscard', snapshotId: id, force: false });
      expect(events).toEqual([
        expect.objectContaining({ type: 'SnapshotDiscardRequested', locations: [location] }),
      ]);
      expect(job.snapshot(id).status).toBe('DISCARDING');
    },
  );

  it('R62 R67 a user’s discard of a savepoint the running managed job claimed deletes nothing: the job’s later incremental checkpoints may use its files', () => {
    const { job, id } = restoredFromSavepoint('CLAIM');
    mirror(job, [report(2)]);
    const { events } = job.run({ type: 'RequestDiscard', snapshotId: id, force: false, reason: 'cleanup' });
    expect(events).toEqual([
      {
        ...stamp,
        type: 'SnapshotDiscardRequested',
        snapshotId: id,
        cause: 'USER',
        reason: 'cleanup',
        locations: [],
        stateHandles: [],
        kept: [],
      },
      { ...stamp, type: 'SnapshotDiscarded', snapshotId: id, bytesReclaimed: 0 },
    ]);
    expect(job.snapshot(id).status).toBe('DISCARDED');
  });

  it('R68 the mirror records each Flink checkpoint once: in progress, then completed or failed, then discarded', () => {
    const job = managed(3);
    const first = mirror(job, [report(7, { status: 'IN_PROGRESS', externalPath: null })]);
    expect(first.reply).toEqual({ recorded: 1, completed: 0, failed: 0, discarded: 0 });
    const id = job.state.flinkCheckpoints.get(7)!;
    expect(job.snapshot(id)).toMatchObject({
      status: 'PENDING',
      flinkCheckpointId: 7,
      externalPath: `/data/chk/${JOB}/chk-7`,
    });
    const again = mirror(job, [
      report(7),
      report(8, {
        status: 'FAILED',
        externalPath: null,
        failureMessage: 'Checkpoint was declined (tasks not ready)',
      }),
    ]);
    expect(again.reply).toEqual({ recorded: 1, completed: 1, failed: 1, discarded: 0 });
    expect(job.snapshot(id)).toMatchObject({
      status: 'COMPLETED',
      stateSize: 700,
      checkpointedSize: 70,
      requestedCheckpointType: 'INCREMENTAL',
    });
    expect(job.snapshot(job.state.flinkCheckpoints.get(8)!)).toMatchObject({ status: 'FAILED' });
    expect(mirror(job, [report(7), report(8, { status: 'FAILED', externalPath: null })]).events).toEqual([]);
    const gone = mirror(job, [report(7, { discarded: true })]);
    expect(gone.reply.discarded).toBe(1);
    expect(job.snapshot(id)).toMatchObject({
      status: 'DISCARDED',
      discard: { cause: 'SUBSUMED', bytesReclaimed: 0 },
    });
    expect(gone.events.find((e) => e.type === 'SnapshotDiscardRequested')).toMatchObject({
      locations: [],
      stateHandles: [],
    });
  });

  it('decision 0019 a completed checkpoint the connector found deleted out of the history’s sight is discarded by Flink; one the history reports, a savepoint, or an unknown id is not', () => {
    const job = managed(3);
    mirror(job, [report(4), report(5), report(6)]);
    const savepoint = mirror(job, [report(7, { isSavepoint: true, externalPath: '/data/sp/savepoint-1' })]);
    expect(savepoint.reply.recorded).toBe(1);
    const idOf = (flinkId: number) => job.state.flinkCheckpoints.get(flinkId)!;
    const gone = job.run({
      type: 'RecordFlinkCheckpoints',
      checkpoints: [report(6)],
      deleted: [4, 6, 7, 99],
    });
    expect(gone.reply).toMatchObject({ discarded: 1 });
    expect(job.snapshot(idOf(4))).toMatchObject({
      status: 'DISCARDED',
      discard: { cause: 'SUBSUMED', bytesReclaimed: 0 },
    });
    expect(gone.events.find((e) => e.type === 'SnapshotDiscardRequested')).toMatchObject({
      snapshotId: idOf(4),
      locations: [],
      stateHandles: [],
    });
    // Reported by the history (it says itself whether Flink deleted it), and a savepoint: left as they are.
    expect(job.snapshot(idOf(6)).status).toBe('COMPLETED');
    expect(job.snapshot(idOf(7)).status).toBe('COMPLETED');
    expect(job.snapshot(idOf(5)).status).toBe('COMPLETED');
    // Told again: nothing more happens.
    expect(job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [], deleted: [4] }).events).toEqual([]);
  });

  it('decision 0035 a compacted checkpoint’s Flink id leaves the record below a floor; an id at or below it is never recorded again', () => {
    const job = managed(1);
    const total = FINISHED_SNAPSHOTS_KEPT + 150;
    // Flink's history as each poll gives it: the previous checkpoint deleted (subsumed), the new one completed.
    for (let id = 1; id <= total; id += 1) {
      mirror(job, [...(id > 1 ? [report(id - 1, { discarded: true })] : []), report(id)]);
    }
    const { state } = job;
    expect(state.counts.compacted).toBe(total - 1 - FINISHED_SNAPSHOTS_KEPT);
    // One entry per snapshot still in the state, not one per checkpoint ever mirrored.
    expect(state.flinkCheckpoints.size).toBe(state.snapshots.size);
    expect(state.flinkCheckpoints.size).toBe(FINISHED_SNAPSHOTS_KEPT + 1);
    expect(state.flinkCheckpointFloor).toBe(total - 1 - FINISHED_SNAPSHOTS_KEPT);
    // Reported again (a history older than the record), compacted ones stay compacted; kept ones are the same.
    const floor = state.flinkCheckpointFloor;
    expect(
      mirror(job, [report(1), report(floor, { discarded: true }), report(floor + 1, { discarded: true })])
        .events,
    ).toEqual([]);
    // A new id is recorded as before.
    expect(mirror(job, [report(total + 1)]).reply).toMatchObject({ recorded: 1, completed: 1 });
    // An aggregate decodes to the same record, and the fold from the log gives it too.
    expect(decodeState(JSON.parse(JSON.stringify(encodeState(job.state))))).toEqual(job.state);
    expect(fold(initialState(JOB), job.log)).toEqual(job.state);
  });

  it('R68 a checkpoint completed where Flink began it leaves the registry as it was: an import overlapping it names the same directory before and after', () => {
    const job = managed(3);
    // chk-1 and chk-6533 fall in one leaf of the registry's directory map (CowMap), which lists a leaf's
    // entries in the order they were added: what an overlapping import names first.
    mirror(job, [report(1, { status: 'IN_PROGRESS', externalPath: null })]);
    mirror(job, [report(6533, { status: 'IN_PROGRESS', externalPath: null })]);
    const overlapping = () =>
      job.reject({ type: 'ImportSnapshot', externalPath: `/data/chk/${JOB}`, kind: 'CHECKPOINT' });
    const directories = () => [...job.state.sharedState.directories.entries()];
    const message = `/data/chk/${JOB} holds /data/chk/${JOB}/chk-1, the directory of snapshot 1: its discard would delete it`;
    expect(overlapping()).toMatchObject({ rule: 'overlaps-catalogued', message });
    const before = directories();
    mirror(job, [report(1)]);
    expect(job.snapshot(1)).toMatchObject({ status: 'COMPLETED', externalPath: `/data/chk/${JOB}/chk-1` });
    expect(overlapping()).toMatchObject({ rule: 'overlaps-catalogued', message });
    expect(directories()).toEqual(before);
  });

  it('R68 a checkpoint Flink completes as not externally addressable has no restore path: no plan picks it, no restore names it', () => {
    const job = managed(3);
    mirror(job, [
      report(1),
      // A server that leaves the path out says nothing of it: the layout's path, addressable.
      report(2, { externalPath: null }),
      report(3, { externalPath: null, externallyAddressable: false }),
    ]);
    expect(snapshotView(job.snapshot(2))).toMatchObject({ restorePath: `/data/chk/${JOB}/chk-2` });
    expect(job.snapshot(3)).toMatchObject({ status: 'COMPLETED', externallyAddressable: false });
    expect(snapshotView(job.snapshot(3))).toMatchObject({ restorePath: null });
    // The newest completed checkpoint is passed over.
    const plan = restorePlan(job.state, 'LATEST_STATE', T0);
    expect(plan).toMatchObject({ ok: true, snapshotId: 2, restorePath: `/data/chk/${JOB}/chk-2` });
    const refused = job.reject({
      type: 'RestoreSnapshot',
      snapshotId: 3,
      claimMode: 'NO_CLAIM',
      allowNonRestoredState: false,
    });
    expect(refused).toMatchObject({ code: 'CONFLICT', rule: 'externally-addressable' });
    expect(flinkCheckpoint(job.snapshot(3))).toMatchObject({
      external_path: '<checkpoint-not-externally-addressable>',
    });
    // It survives an aggregate snapshot.
    expect(decodeState(JSON.parse(JSON.stringify(encodeState(job.state))))!.snapshots.get(3)).toMatchObject({
      externallyAddressable: false,
    });
  });

  it('R68 a savepoint snapcat took is not recorded twice; one taken in Flink by someone else is, once completed', () => {
    const job = managed(3);
    const ours = job.trigger('SAVEPOINT');
    if (!ours.accepted) throw new Error('rejected');
    const location = '/data/sp/savepoint-012345-000000000001';
    // While ours is pending, a completed savepoint cannot be told apart: nothing is recorded yet.
    expect(
      mirror(job, [report(3, { isSavepoint: true, externalPath: location, checkpointType: 'FULL' })]).events,
    ).toEqual([]);
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: ours.snapshotId,
      outcome: { status: 'COMPLETED', location },
    });
    const theirs = '/data/sp/savepoint-012345-000000000002';
    const { reply } = mirror(job, [
      report(3, { isSavepoint: true, externalPath: location, checkpointType: 'FULL' }),
      report(4, { isSavepoint: true, externalPath: theirs, checkpointType: 'FULL' }),
      report(5, { isSavepoint: true, status: 'IN_PROGRESS', externalPath: null, checkpointType: 'FULL' }),
    ]);
    expect(reply).toEqual({ recorded: 1, completed: 1, failed: 0, discarded: 0 });
    const recorded = job.snapshot(job.state.flinkCheckpoints.get(4)!);
    expect(recorded).toMatchObject({ kind: 'SAVEPOINT', status: 'COMPLETED', externalPath: theirs });
  });

  it('R68 a mirrored checkpoint is catalogued NATIVE: Flink takes checkpoints in the state backend’s own format (CheckpointProperties.forCheckpoint)', () => {
    const job = managed(3);
    mirror(job, [report(4), report(5, { checkpointType: 'FULL' }), report(6, { status: 'IN_PROGRESS' })]);
    for (const id of [4, 5, 6]) {
      expect(job.snapshot(job.state.flinkCheckpoints.get(id)!)).toMatchObject({
        kind: 'CHECKPOINT',
        formatType: 'NATIVE',
      });
    }
  });

  it('R68 a savepoint taken in Flink is catalogued in the format Flink reports (NATIVE is not portable), CANONICAL when it reports none', () => {
    const job = managed(3);
    mirror(job, [
      report(7, {
        isSavepoint: true,
        externalPath: '/data/sp/savepoint-012345-00000000000a',
        checkpointType: 'FULL',
        savepointFormat: 'NATIVE',
      }),
      report(8, {
        isSavepoint: true,
        externalPath: '/data/sp/savepoint-012345-00000000000b',
        checkpointType: 'FULL',
      }),
    ]);
    expect(job.snapshot(job.state.flinkCheckpoints.get(7)!).formatType).toBe('NATIVE');
    expect(job.snapshot(job.state.flinkCheckpoints.get(8)!).formatType).toBe('CANONICAL');
  });

  it('R68 a savepoint that failed in Flink is catalogued once: Flink’s history entry of it (no path) is not mirrored', () => {
    const job = managed(3);
    const ours = job.trigger('SAVEPOINT');
    if (!ours.accepted) throw new Error('rejected');
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: ours.snapshotId,
      outcome: { status: 'FAILED', cause: 'Checkpoint expired before completing.' },
    });
    const failed = report(6, {
      isSavepoint: true,
      status: 'FAILED',
      externalPath: null,
      checkpointType: 'FULL',
      failureMessage: 'Checkpoint expired before completing.',
    });
    expect(mirror(job, [failed]).events).toEqual([]);
    const savepoints = [...job.state.snapshots.values()].filter((s) => s.kind === 'SAVEPOINT');
    expect(savepoints.map((s) => [s.snapshotId, s.status])).toEqual([[ours.snapshotId, 'FAILED']]);
  });

  it('R67 persisting a managed job’s checkpoint takes a NATIVE savepoint standing for it (once), not a manifest', () => {
    const job = managed(3);
    mirror(job, [report(4)]);
    const checkpoint = job.state.flinkCheckpoints.get(4)!;
    const { reply, events } = job.run({ type: 'PersistSnapshot', snapshotId: checkpoint });
    expect(events.map((e) => e.type)).toEqual(['SnapshotTriggered']);
    expect(reply).toMatchObject({ changed: true, savepointSnapshotId: checkpoint + 1 });
    expect(job.snapshot(checkpoint + 1)).toMatchObject({
      kind: 'SAVEPOINT',
      status: 'PENDING',
      formatType: 'NATIVE',
      standsFor: checkpoint,
    });
    expect(job.snapshot(checkpoint).persisted).toBe(false);
    expect(job.run({ type: 'PersistSnapshot', snapshotId: checkpoint })).toMatchObject({
      events: [],
      reply: { changed: false, savepointSnapshotId: checkpoint + 1 },
    });
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    mirror(job, [report(5)]);
    expect(
      job.reject({ type: 'PersistSnapshot', snapshotId: job.state.flinkCheckpoints.get(5)! }),
    ).toMatchObject({
      code: 'CONFLICT',
      rule: 'managed-persist-running',
    });
  });

  it('R67 once the savepoint standing for a checkpoint failed, persisting it again takes another (the next attempt’s trigger id)', () => {
    const job = managed(3);
    mirror(job, [report(4)]);
    const checkpoint = job.state.flinkCheckpoints.get(4)!;
    const first = job.run({ type: 'PersistSnapshot', snapshotId: checkpoint }).reply;
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: first.savepointSnapshotId!,
      outcome: { status: 'FAILED', cause: 'Not all required tasks are currently running.' },
    });
    expect(job.snapshot(first.savepointSnapshotId!).status).toBe('FAILED');
    const again = job.run({ type: 'PersistSnapshot', snapshotId: checkpoint, targetDirectory: '/keep' });
    expect(again.events.map((e) => e.type)).toEqual(['SnapshotTriggered']);
    expect(again.reply).toMatchObject({ changed: true, savepointSnapshotId: first.savepointSnapshotId! + 1 });
    expect(job.snapshot(again.reply.savepointSnapshotId!)).toMatchObject({
      status: 'PENDING',
      triggerId: `persist-${checkpoint}-2`,
      standsFor: checkpoint,
      externalPath: savepointPath(
        '/keep',
        JOB,
        `${again.reply.savepointSnapshotId!}/persist-${checkpoint}-2`,
      ),
    });
    // While that one is pending it stands for the checkpoint: asked again, nothing new.
    expect(job.run({ type: 'PersistSnapshot', snapshotId: checkpoint })).toMatchObject({
      events: [],
      reply: { changed: false, savepointSnapshotId: again.reply.savepointSnapshotId },
    });
  });

  it('R67 a managed job whose Flink deletes its checkpoints on failure says so, once recorded', () => {
    const job = managed();
    expect(jobSummaryView(job.state).warnings).toEqual([]);
    job.run({ type: 'RecordFlinkCheckpointConfig', externalized: false, deleteOnCancellation: true });
    // Word for word: it names Flink's option and the values that keep checkpoints.
    expect(jobSummaryView(job.state).warnings).toEqual([
      'Flink deletes this job’s checkpoints when it fails or is cancelled (externalized checkpoints are off): ' +
        'only savepoints survive it; set execution.checkpointing.externalized-checkpoint-retention to ' +
        'RETAIN_ON_CANCELLATION or DELETE_ON_CANCELLATION, or take savepoints often',
    ]);
    expect(
      job.run({ type: 'RecordFlinkCheckpointConfig', externalized: false, deleteOnCancellation: true })
        .events,
    ).toEqual([]);
    job.run({ type: 'RecordFlinkCheckpointConfig', externalized: true, deleteOnCancellation: false });
    expect(jobSummaryView(job.state).warnings).toEqual([]);
    expect(
      new Job()
        .register()
        .reject({ type: 'RecordFlinkCheckpointConfig', externalized: true, deleteOnCancellation: true }),
    ).toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('R67 Flink’s checkpoint retention is recorded when either of its settings changes, only for a managed job', () => {
    const job = managed();
    const record = (externalized: boolean, deleteOnCancellation: boolean) =>
      job.run({ type: 'RecordFlinkCheckpointConfig', externalized, deleteOnCancellation });
    const retention = (externalized: boolean, deleteOnCancellation: boolean) => ({
      type: 'FlinkCheckpointRetentionRecorded',
      jobId: JOB,
      occurredAt: new Date(T0).toISOString(),
      externalized,
      deleteOnCancellation,
    });
    expect(record(true, false)).toEqual({ events: [retention(true, false)], reply: { changed: true } });
    expect(record(true, false)).toEqual({ events: [], reply: { changed: false } });
    // The same externalization, deleted on cancellation now: a change.
    expect(record(true, true)).toEqual({ events: [retention(true, true)], reply: { changed: true } });
    expect(job.state.flinkRetention).toEqual({ externalized: true, deleteOnCancellation: true });
    expect(record(false, true)).toEqual({ events: [retention(false, true)], reply: { changed: true } });
    expect(
      new Job()
        .register()
        .reject({ type: 'RecordFlinkCheckpointConfig', externalized: true, deleteOnCancellation: true }),
    ).toMatchObject({
      code: 'CONFLICT',
      field: 'jobId',
      rule: 'managed-job',
      message: `job ${JOB} is not managed through Flink`,
    });
  });

  it('R68 what Flink reports the job restored from is recorded once per restore, with the catalogued snapshot', () => {
    const job = managed(3);
    mirror(job, [report(1), report(2)]);
    const restored = {
      id: 2,
      restoreTimestamp: T0 + 5000,
      isSavepoint: false,
      externalPath: `/data/chk/${JOB}/chk-2`,
    };
    const first = job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [], restored });
    expect(first.events.map((e) => e.type)).toEqual(['FlinkRestoreRecorded']);
    expect(jobSummaryView(job.state).flinkRestore).toMatchObject({
      flinkCheckpointId: 2,
      snapshotId: job.state.flinkCheckpoints.get(2),
      isSavepoint: false,
    });
    expect(job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [], restored }).events).toEqual([]);
    const later = job.run({
      type: 'RecordFlinkCheckpoints',
      checkpoints: [],
      restored: { ...restored, restoreTimestamp: T0 + 9000 },
    });
    expect(later.events.map((e) => e.type)).toEqual(['FlinkRestoreRecorded']);
    // Flink's shape of it (decision 0017): the restore Flink reported, as Flink's own API shows it.
    const { statistics } = flinkCheckpointingStatistics(job.state);
    expect(statistics.latest.restored).toEqual({
      id: job.state.flinkCheckpoints.get(2),
      restore_timestamp: T0 + 9000,
      is_savepoint: false,
      external_path: `/data/chk/${JOB}/chk-2`,
    });
    expect(statistics.counts.restored).toBe(1);
  });

  it('R68 a restore from a checkpoint the mirror holds as pending completes it (Flink restores completed ones only): the next completion does not abort it', () => {
    const job = managed(3);
    mirror(job, [report(1), report(2, { status: 'IN_PROGRESS', externalPath: null })]);
    const pendingId = job.state.flinkCheckpoints.get(2)!;
    expect(job.state.snapshots.get(pendingId)!.status).toBe('PENDING');
    const { events } = failoverRestoringFrom(job, 2, T0 + 5000);
    expect(events.map((e) => e.type)).toEqual([
      'SnapshotCompleted',
      'FlinkRestoreRecorded',
      'SnapshotTriggered',
      'SnapshotCompleted',
    ]);
    const two = job.state.snapshots.get(pendingId)!;
    expect(two.status).toBe('COMPLETED');
    expect(two.externalPath).toBe(`/data/chk/${JOB}/chk-2`);
    expect(jobSummaryView(job.state).flinkRestore).toMatchObject({
      flinkCheckpointId: 2,
      snapshotId: pendingId,
    });
    expect(job.state.snapshots.get(job.state.flinkCheckpoints.get(3)!)!.status).toBe('COMPLETED');
  });

  it('R68 Flink’s failure messages name their reason', () => {
    expect(failureReasonOf('Checkpoint expired before completing.')).toBe('CHECKPOINT_EXPIRED');
    expect(failureReasonOf('... CheckpointFailureReason IO_EXCEPTION ...')).toBe('IO_EXCEPTION');
    expect(failureReasonOf('something else')).toBe('CHECKPOINT_DECLINED');
  });

  it('R68 property: any sequence of overlapping history windows records each Flink checkpoint exactly once, in its final state', () => {
    const runs = propertyRuns();
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ ids: fc.integer({ min: 1, max: 12 }), fail: fc.boolean(), done: fc.boolean() }),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        (windows) => {
          const job = managed(100);
          const final = new Map<number, 'COMPLETED' | 'FAILED'>();
          let next = 1;
          for (const w of windows) {
            // A window of Flink's history: the newest `ids` checkpoints, the newest one maybe still in progress.
            const newest = next + w.ids;
            const reports: FlinkCheckpointReport[] = [];
            for (let id = Math.max(1, newest - 10); id <= newest; id += 1) {
              const pending = id === newest && !w.done;
              const failed =
                !pending &&
                (final.get(id) ?? (w.fail && id === newest ? 'FAILED' : 'COMPLETED')) === 'FAILED';
              if (!pending) final.set(id, failed ? 'FAILED' : 'COMPLETED');
              reports.push(
                report(id, {
                  status: pending ? 'IN_PROGRESS' : failed ? 'FAILED' : 'COMPLETED',
                  externalPath: pending || failed ? null : `/data/chk/${JOB}/chk-${id}`,
                }),
              );
            }
            next = newest;
            mirror(job, reports);
          }
          const triggered = job.log
            .filter((e) => e.type === 'SnapshotTriggered')
            .map((e) => e.type === 'SnapshotTriggered' && e.flinkCheckpointId);
          expect(new Set(triggered).size).toBe(triggered.length);
          for (const [flinkId, status] of final) {
            expect(job.snapshot(job.state.flinkCheckpoints.get(flinkId)!).status).toBe(status);
          }
        },
      ),
      runs,
    );
  });
});

describe('managed jobs, case by case (R67, R68)', () => {
  const LOCATION = '/data/sp/savepoint-012345-abcdefabcdef';
  const idOf = (reply: ReturnType<Job['trigger']>): number => {
    if (!reply.accepted) throw new Error(`trigger rejected: ${reply.reason}`);
    return reply.snapshotId;
  };

  it('R67 a savepoint a running managed job restored from (Flink reported it) is disposed of by no retention, and a user’s discard is a CONFLICT unless forced, until the job ends', () => {
    const periodicSavepoint = (job: Job, location: string) => {
      const id = idOf(job.trigger('SAVEPOINT', 'PERIODIC'));
      job.run({ type: 'RecordFlinkSavepoint', snapshotId: id, outcome: { status: 'COMPLETED', location } });
      return id;
    };
    const setUp = (restored: boolean) => {
      const job = managed(3);
      job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1M', retention: { maxCount: 1 } } });
      const first = periodicSavepoint(job, LOCATION);
      if (restored) {
        job.run({
          type: 'RecordFlinkCheckpoints',
          checkpoints: [],
          restored: { id: 12, restoreTimestamp: T0 + 1, isSavepoint: true, externalPath: LOCATION },
        });
      }
      job.now += 60_000;
      periodicSavepoint(job, '/data/sp/savepoint-012345-bcdefabcdefa');
      return { job, first };
    };
    // Not restored from: the schedule's retention disposes of it (through Flink).
    const plain = setUp(false);
    expect(plain.job.snapshot(plain.first).status).toBe('DISCARDING');
    const { job, first } = setUp(true);
    expect(job.snapshot(first).status).toBe('COMPLETED');
    expect(job.reject({ type: 'RequestDiscard', snapshotId: first, force: false })).toMatchObject({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'restored-by-running-job',
    });
    // Once the job ended, its user discards it as any savepoint.
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(job.run({ type: 'RequestDiscard', snapshotId: first, force: false }).reply).toMatchObject({
      snapshotStatus: 'DISCARDING',
    });
  });

  it('R68 a checkpoint of a managed job is refused naming kind, the job’s cluster and who takes them', () => {
    expect(
      managed().reject({
        type: 'TriggerSnapshot',
        kind: 'CHECKPOINT',
        triggerId: 'c',
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
      }),
    ).toMatchObject({
      code: 'CONFLICT',
      field: 'kind',
      rule: 'managed-job-checkpoints',
      message: `job ${JOB} is managed through Flink cluster prod-eu: Flink takes its checkpoints and the mirror records them (R68)`,
    });
  });

  it('R67 a savepoint’s outcome answers whether it changed the savepoint: once, then unchanged', () => {
    const job = managed(3);
    const completed = idOf(job.trigger('SAVEPOINT'));
    const done = { type: 'RecordFlinkSavepoint' as const, snapshotId: completed };
    expect(job.run({ ...done, outcome: { status: 'COMPLETED', location: LOCATION } }).reply).toEqual({
      snapshotStatus: 'COMPLETED',
      changed: true,
    });
    expect(job.run({ ...done, outcome: { status: 'COMPLETED', location: LOCATION } }).reply).toEqual({
      snapshotStatus: 'COMPLETED',
      changed: false,
    });
    const failed = idOf(job.trigger('SAVEPOINT'));
    const outcome = { status: 'FAILED' as const, cause: 'Task has failed.' };
    expect(job.run({ type: 'RecordFlinkSavepoint', snapshotId: failed, outcome }).reply).toEqual({
      snapshotStatus: 'FAILED',
      changed: true,
    });
    expect(job.run({ type: 'RecordFlinkSavepoint', snapshotId: failed, outcome }).reply).toEqual({
      snapshotStatus: 'FAILED',
      changed: false,
    });
  });

  it('R67 a savepoint outcome is refused for a checkpoint of a managed job and for a savepoint of a job not managed', () => {
    const job = managed(3);
    mirror(job, [report(4, { status: 'IN_PROGRESS', externalPath: null })]);
    const checkpoint = job.state.flinkCheckpoints.get(4)!;
    const outcome = { status: 'COMPLETED' as const, location: LOCATION };
    expect(job.reject({ type: 'RecordFlinkSavepoint', snapshotId: checkpoint, outcome })).toMatchObject({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'managed-savepoint',
      message: `snapshot ${checkpoint} is not a savepoint of a job managed through Flink`,
    });
    expect(job.snapshot(checkpoint).status).toBe('PENDING');
    const native = new Job().register();
    const savepoint = idOf(native.trigger('SAVEPOINT'));
    expect(native.reject({ type: 'RecordFlinkSavepoint', snapshotId: savepoint, outcome })).toMatchObject({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'managed-savepoint',
      message: `snapshot ${savepoint} is not a savepoint of a job managed through Flink`,
    });
    expect(native.snapshot(savepoint).status).toBe('PENDING');
  });

  it('R68 the checkpoints of a job not managed through Flink are not mirrored: its clients report them', () => {
    const job = new Job().register();
    expect(job.reject({ type: 'RecordFlinkCheckpoints', checkpoints: [report(1)] })).toMatchObject({
      code: 'CONFLICT',
      field: 'jobId',
      rule: 'managed-job',
      message: `job ${JOB} is not managed through Flink: its clients report its snapshots`,
    });
    expect(job.state.snapshots.size).toBe(0);
  });

  it('R68 a mirrored checkpoint is triggered as flink-<id>, with its deadline from the later of now and Flink’s trigger time', () => {
    const job = managed(3);
    job.now = T0 + 10_000;
    // Triggered in Flink before snapcat heard of it: the deadline counts from now.
    mirror(job, [report(7, { status: 'IN_PROGRESS', externalPath: null, triggerTimestamp: T0 + 1000 })]);
    // Triggered after now (clocks differ): from Flink's trigger time.
    mirror(job, [report(8, { status: 'IN_PROGRESS', externalPath: null, triggerTimestamp: T0 + 25_000 })]);
    const [seven, eight] = [7, 8].map((id) => job.snapshot(job.state.flinkCheckpoints.get(id)!));
    // The catalogue's timeout (60 s here) and a minute for the mirror to see Flink's outcome.
    expect(seven).toMatchObject({ triggerId: 'flink-7', deadline: T0 + 10_000 + 60_000 + 60_000 });
    expect(eight).toMatchObject({ triggerId: 'flink-8', deadline: T0 + 25_000 + 60_000 + 60_000 });
    expect(job.state.triggers.get('flink-7')).toBe(seven!.snapshotId);
  });

  it('R68 a mirrored checkpoint is timed as Flink timed it (trigger_timestamp, latest_ack_timestamp), never after the decision nor completed before its trigger', () => {
    const job = managed(5);
    job.now = T0 + 60_000;
    mirror(job, [report(3, { status: 'IN_PROGRESS', triggerTimestamp: T0 + 1_000 })]);
    mirror(job, [report(3, { triggerTimestamp: T0 + 1_000, latestAckTimestamp: T0 + 4_500 })]);
    // Seen completed at once; Flink's clock ahead of the catalogue's; a completion reported before its trigger.
    mirror(job, [
      report(4, { triggerTimestamp: T0 + 10_000, latestAckTimestamp: T0 + 12_000 }),
      report(5, { triggerTimestamp: T0 + 90_000, latestAckTimestamp: T0 + 95_000 }),
      report(6, { triggerTimestamp: T0 + 20_000, latestAckTimestamp: T0 + 19_000 }),
      report(7, { triggerTimestamp: 0 }),
    ]);
    const timed = (flinkId: number) => {
      const { triggeredAt, completedAt } = job.snapshot(job.state.flinkCheckpoints.get(flinkId)!)!;
      return [triggeredAt - T0, completedAt! - T0];
    };
    expect([3, 4, 5, 6, 7].map(timed)).toEqual([
      [1_000, 4_500],
      [10_000, 12_000],
      [60_000, 60_000],
      [20_000, 20_000],
      [60_000, 60_000], // Flink said neither: when the mirror recorded it
    ]);
    const view = snapshotView(job.snapshot(job.state.flinkCheckpoints.get(4)!)!);
    expect([view.triggeredAt, view.completedAt]).toEqual([
      new Date(T0 + 10_000).toISOString(),
      new Date(T0 + 12_000).toISOString(),
    ]);
    // The fold of the log gives the same times (the projector's read model, a replay).
    const replayed = fold(initialState(JOB), job.log);
    expect(replayed.snapshots.get(job.state.flinkCheckpoints.get(3)!)!.completedAt).toBe(T0 + 4_500);
  });

  it('R68 a mirrored checkpoint waits for Flink’s own timeout: one Flink completes after the catalogue’s timeout is recorded COMPLETED', () => {
    const job = managedTimedOutByFlinkAfter(600_000);
    expect(job.state.flinkRetention).toMatchObject({ timeoutMs: 600_000 });
    mirror(job, [report(9, { status: 'IN_PROGRESS', externalPath: null, triggerTimestamp: job.now })]);
    const id = job.state.flinkCheckpoints.get(9)!;
    expect(job.snapshot(id).deadline).toBe(job.now + 600_000 + 60_000);
    job.now += 90_000; // past the catalogue's 60 s, within Flink's 10 minutes
    job.run({ type: 'ExpireOverdue' });
    expect(job.snapshot(id).status).toBe('PENDING');
    mirror(job, [report(9)]);
    expect(job.snapshot(id).status).toBe('COMPLETED');
    // The same configuration again records nothing; a changed timeout does.
    expect(
      job.run({
        type: 'RecordFlinkCheckpointConfig',
        externalized: true,
        deleteOnCancellation: false,
        timeoutMs: 600_000,
      }).events,
    ).toEqual([]);
    expect(
      job.run({ type: 'RecordFlinkCheckpointConfig', externalized: true, deleteOnCancellation: false })
        .events,
    ).toHaveLength(1);
  });

  it('R68 a checkpoint the catalogue expired while Flink was out of reach, and Flink completed, is recorded anew as completed: the failure stays as history, the restore point follows Flink', () => {
    const job = managedTimedOutByFlinkAfter(600_000);
    // The mirror heard nothing for longer than Flink's timeout and a minute.
    const given = expiredByTheCatalogue(job, 9, 600_000 + 60_000 + 1);
    expect(job.snapshot(given)).toMatchObject({ status: 'FAILED', failureReason: 'CHECKPOINT_EXPIRED' });
    // Flink answers again: it completed checkpoint 9 and retains it.
    const { events } = mirror(job, [report(8), report(9)]);
    expect(events.map((e) => e.type)).toEqual(['SnapshotTriggered', 'SnapshotCompleted']);
    const anew = job.state.flinkCheckpoints.get(9)!;
    expect(anew).toBeGreaterThan(given);
    expect(job.snapshot(anew)).toMatchObject({
      status: 'COMPLETED',
      flinkCheckpointId: 9,
      triggerId: 'flink-9',
      externalPath: `/data/chk/${JOB}/chk-9`,
    });
    expect(job.snapshot(given).status).toBe('FAILED');
    expect(restorePlan(job.state, 'LATEST_STATE', job.now)).toMatchObject({ snapshotId: anew });
    // Once: the next poll's same report records nothing; a fold of the log gives the same state.
    expect(mirror(job, [report(8), report(9)]).events).toEqual([]);
    expect(fold(initialState(JOB), job.log)).toEqual(job.state);
  });

  it('R68 a restore Flink reports from a checkpoint the catalogue expired records that checkpoint anew, completed, and names it', () => {
    const job = managed(3);
    const given = expiredByTheCatalogue(job, 2, 24 * 3600_000);
    expect(job.snapshot(given).status).toBe('FAILED');
    // The failover happened while the mirror could not reach Flink, which had completed checkpoint 2.
    const { events } = failoverRestoringFrom(job, 2, job.now);
    expect(events.map((e) => e.type)).toEqual([
      'SnapshotTriggered',
      'SnapshotCompleted',
      'FlinkRestoreRecorded',
      'SnapshotTriggered',
      'SnapshotCompleted',
    ]);
    const anew = job.state.flinkCheckpoints.get(2)!;
    expect(anew).not.toBe(given);
    expect(job.snapshot(anew)).toMatchObject({
      status: 'COMPLETED',
      flinkCheckpointId: 2,
      externalPath: `/data/chk/${JOB}/chk-2`,
    });
    expect(job.snapshot(given).status).toBe('FAILED');
    expect(jobSummaryView(job.state).flinkRestore).toMatchObject({ flinkCheckpointId: 2, snapshotId: anew });
    expect(fold(initialState(JOB), job.log)).toEqual(job.state);
  });

  it('R68 a checkpoint the catalogue expired that Flink completed and has deleted since is not recorded anew', () => {
    const job = managed(3);
    const given = expiredByTheCatalogue(job, 9, 24 * 3600_000);
    expect(mirror(job, [report(9, { discarded: true }), report(10)]).events.map((e) => e.type)).toEqual([
      'SnapshotTriggered',
      'SnapshotCompleted',
    ]);
    expect(job.state.flinkCheckpoints.get(9)).toBe(given);
    expect(job.snapshot(given).status).toBe('FAILED');
  });

  it('R67 a managed job’s savepoints, stops and persists wait for Flink’s own timeout, not the catalogue’s (a review against a real server)', () => {
    const job = managedTimedOutByFlinkAfter(3_600_000);
    mirror(job, [report(4)]);
    const taken = job.trigger('SAVEPOINT');
    if (!taken.accepted) throw new Error('rejected');
    const savepoint = taken.snapshotId;
    const persisted = job.run({ type: 'PersistSnapshot', snapshotId: job.state.flinkCheckpoints.get(4)! })
      .reply.savepointSnapshotId!;
    const flinks = job.now + 3_600_000 + 60_000;
    expect([job.snapshot(savepoint).deadline, job.snapshot(persisted).deadline]).toEqual([flinks, flinks]);
    job.now += 10 * 60_000; // past the catalogue's 60 s, within Flink's hour
    job.run({ type: 'ExpireOverdue' });
    expect([job.snapshot(savepoint).status, job.snapshot(persisted).status]).toEqual(['PENDING', 'PENDING']);
    // A job whose clients report its snapshots keeps the catalogue's timeout.
    const reported = new Job().register();
    const own = reported.trigger('SAVEPOINT');
    if (!own.accepted) throw new Error('rejected');
    expect(reported.snapshot(own.snapshotId).deadline).toBe(
      reported.now + reported.state.checkpointing.timeoutMs,
    );
  });

  it('R68 a checkpoint Flink reports failed without a message fails with the mirror’s own', () => {
    const job = managed(3);
    mirror(job, [report(3, { status: 'FAILED', externalPath: null, failureMessage: null })]);
    expect(job.snapshot(job.state.flinkCheckpoints.get(3)!)).toMatchObject({
      status: 'FAILED',
      failureReason: 'CHECKPOINT_DECLINED',
      failureMessage: 'Flink reported the checkpoint failed',
    });
  });

  it('R68 only a completed checkpoint Flink reports deleted is discarded, with the reason that Flink deleted it', () => {
    const job = managed(3);
    mirror(job, [report(2, { status: 'FAILED', externalPath: null })]);
    const failed = job.state.flinkCheckpoints.get(2)!;
    const failedDiscard = job.snapshot(failed).discard;
    // A failed checkpoint Flink reports deleted: discarded already when it failed, nothing more.
    const again = mirror(job, [report(2, { status: 'FAILED', externalPath: null, discarded: true })]);
    expect(again.reply).toEqual({ recorded: 0, completed: 0, failed: 0, discarded: 0 });
    expect(again.events).toEqual([]);
    expect(job.snapshot(failed).discard).toEqual(failedDiscard);
    // A savepoint someone took in Flink, reported deleted: Flink's history says nothing of its disposal.
    const theirs = '/data/sp/savepoint-012345-000000000002';
    const savepoint = mirror(job, [
      report(4, { isSavepoint: true, externalPath: theirs, checkpointType: 'FULL', discarded: true }),
    ]);
    expect(savepoint.reply).toEqual({ recorded: 1, completed: 1, failed: 0, discarded: 0 });
    expect(job.snapshot(job.state.flinkCheckpoints.get(4)!)).toMatchObject({ status: 'COMPLETED' });
    // A completed checkpoint reported deleted: discarded, Flink named as the reason.
    const gone = mirror(job, [report(5, { discarded: true })]);
    expect(gone.reply).toEqual({ recorded: 1, completed: 1, failed: 0, discarded: 1 });
    expect(gone.events.find((e) => e.type === 'SnapshotDiscardRequested')).toMatchObject({
      cause: 'SUBSUMED',
      reason: 'deleted by Flink',
    });
  });

  it('R68 a pending checkpoint of Flink’s does not hold back the record of a savepoint someone took in Flink', () => {
    const job = managed(3);
    mirror(job, [report(6, { status: 'IN_PROGRESS', externalPath: null })]);
    const theirs = '/data/sp/savepoint-012345-000000000003';
    const { reply } = mirror(job, [
      report(6, { status: 'IN_PROGRESS', externalPath: null }),
      report(7, { isSavepoint: true, externalPath: theirs, checkpointType: 'FULL' }),
    ]);
    expect(reply).toEqual({ recorded: 1, completed: 1, failed: 0, discarded: 0 });
    expect(job.snapshot(job.state.flinkCheckpoints.get(7)!)).toMatchObject({
      kind: 'SAVEPOINT',
      status: 'COMPLETED',
      externalPath: theirs,
    });
  });

  it('R68 a restore Flink reports is recorded with the path it names, even at time 0, and with no snapshot when none is catalogued there', () => {
    const job = managed(3);
    const externalPath = '/data/sp/savepoint-012345-0000000000aa';
    const { events } = job.run({
      type: 'RecordFlinkCheckpoints',
      checkpoints: [],
      restored: { id: 41, restoreTimestamp: 0, isSavepoint: true, externalPath },
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'FlinkRestoreRecorded',
      flinkCheckpointId: 41,
      isSavepoint: true,
      externalPath,
      restoredAt: '1970-01-01T00:00:00.000Z',
    });
    expect('snapshotId' in events[0]!).toBe(false);
    expect(job.state.flinkRestore).toEqual({
      flinkCheckpointId: 41,
      snapshotId: null,
      isSavepoint: true,
      externalPath,
      restoredAt: 0,
    });
  });

  it('R68 a restore from an id Flink never reported is matched to the savepoint catalogued at its path', () => {
    const job = managed(3);
    const savepoint = idOf(job.trigger('SAVEPOINT'));
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: savepoint,
      outcome: { status: 'COMPLETED', location: LOCATION },
    });
    job.run({
      type: 'RecordFlinkCheckpoints',
      checkpoints: [],
      restored: { id: 12, restoreTimestamp: T0 + 1, isSavepoint: true, externalPath: LOCATION },
    });
    expect(job.state.flinkRestore).toMatchObject({ flinkCheckpointId: 12, snapshotId: savepoint });
  });

  it('R68, R70 a restore Flink reports from a retained checkpoint imported into the catalogue names that checkpoint', () => {
    const job = managed(3);
    // A checkpoint of an earlier run, imported (R70), that the job was then started from: the mirror never
    // saw its Flink id, only its location.
    const retained = '/retained/earlier-run/chk-41';
    const imported = job.run({ type: 'ImportSnapshot', externalPath: retained, kind: 'CHECKPOINT' }).reply;
    job.run({
      type: 'RecordFlinkCheckpoints',
      checkpoints: [],
      restored: { id: 41, restoreTimestamp: T0 + 1, isSavepoint: false, externalPath: retained },
    });
    expect(job.state.flinkRestore).toMatchObject({
      flinkCheckpointId: 41,
      snapshotId: imported.snapshotId,
      isSavepoint: false,
    });
  });

  it('R68 only a catalogued savepoint at its location makes a reported savepoint snapcat’s: a checkpoint there does not', () => {
    const job = managed(3);
    mirror(job, [report(1)]);
    const { reply } = mirror(job, [
      report(2, { isSavepoint: true, externalPath: `/data/chk/${JOB}/chk-1`, checkpointType: 'FULL' }),
    ]);
    expect(reply).toEqual({ recorded: 1, completed: 1, failed: 0, discarded: 0 });
    expect(job.snapshot(job.state.flinkCheckpoints.get(2)!)).toMatchObject({ kind: 'SAVEPOINT' });
  });

  it('R67 persisting a checkpoint of a managed job that is not running is refused, naming the checkpoint and the status', () => {
    const job = managed(3);
    mirror(job, [report(5)]);
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    const checkpoint = job.state.flinkCheckpoints.get(5)!;
    expect(job.reject({ type: 'PersistSnapshot', snapshotId: checkpoint })).toMatchObject({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'managed-persist-running',
      message: `persisting checkpoint ${checkpoint} of a managed job takes a savepoint of the job, which is SUSPENDED, not RUNNING`,
    });
  });

  it('R67 the savepoint persisting a managed job’s checkpoint is named after its id and trigger', () => {
    const job = managed(3);
    mirror(job, [report(4)]);
    const checkpoint = job.state.flinkCheckpoints.get(4)!;
    const { reply } = job.run({ type: 'PersistSnapshot', snapshotId: checkpoint, targetDirectory: '/keep' });
    const path = savepointPath('/keep', JOB, `${checkpoint + 1}/persist-${checkpoint}`);
    // Flink names the directory: no path is answered until it reports one (a guess would never exist).
    expect(reply).toEqual({
      savepointPath: null,
      restorePath: null,
      changed: true,
      savepointSnapshotId: checkpoint + 1,
    });
    expect(job.snapshot(checkpoint + 1).externalPath).toBe(path);
    const written = '/keep/savepoint-012345-fedcbafedcba';
    job.run({
      type: 'RecordFlinkSavepoint',
      snapshotId: checkpoint + 1,
      outcome: { status: 'COMPLETED', location: written },
    });
    expect(job.run({ type: 'PersistSnapshot', snapshotId: checkpoint }).reply).toEqual({
      savepointPath: written,
      restorePath: written,
      changed: false,
      savepointSnapshotId: checkpoint + 1,
    });
  });
});

describe('R67 a job becomes managed through Flink only once its own deletions are done', () => {
  const withSource = (job: Job) => ({
    type: 'ConfigureJob' as const,
    name: 'job',
    tasks: [...job.state.tasks],
    checkpointing: job.state.checkpointing,
    storage: job.state.storage,
    source: SOURCE,
  });

  it('a discard still running refuses the source (CONFLICT on `source`); once it is done the job is managed', () => {
    const job = new Job().register();
    const first = job.complete();
    job.complete();
    job.run({ type: 'RequestDiscard', snapshotId: first, force: true });
    expect(job.reject(withSource(job))).toMatchObject({
      code: 'CONFLICT',
      field: 'source',
      rule: 'deletions-open',
    });
    expect(job.state.source).toBeNull();
    job.run({ type: 'RecordDiscardCompleted', snapshotId: first, bytesReclaimed: 1 });
    job.run(withSource(job));
    expect(job.state.source).toEqual(SOURCE);
  });
});
