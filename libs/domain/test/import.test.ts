import { decodeState, encodeState, fold, importTriggerId, restorePlan, snapshotObligations } from '../src';
import { JOB, Job, T0, RETAIN_ALL } from './harness';

const SAVEPOINT = '/data/old/savepoint-012345-abcdefabcdef';
const RETAINED = `/data/old-chk/${JOB}/chk-42`;

function importOf(
  job: Job,
  externalPath: string,
  kind: 'SAVEPOINT' | 'CHECKPOINT' = 'SAVEPOINT',
  stateSize = 500,
) {
  return job.run({ type: 'ImportSnapshot', externalPath, kind, stateSize });
}

describe('import (R69, R70)', () => {
  it('R70 a directory that holds a file a stray cleanup or a discard is deleting is not imported (CONFLICT being-deleted) until that is done', () => {
    const job = new Job().register({ tasks: ['a'] });
    const stray = job.run({
      type: 'AcknowledgeTask',
      snapshotId: 99, // no such snapshot: its files are garbage, cleaned up
      taskId: 'a',
      stateSize: 1,
      stateHandles: [{ path: '/data/imports/nightly/000010.sst', sizeBytes: 1 }],
    });
    const [cleanupId] = [...job.state.strayCleanups.keys()];
    expect(cleanupId).toBeDefined();
    expect(stray.events.map((e) => e.type)).toEqual(['StrayAcknowledgementReceived']);
    expect(() => importOf(job, '/data/imports/nightly')).toThrow(
      expect.objectContaining({ code: 'CONFLICT', field: 'externalPath', rule: 'being-deleted' }),
    );
    expect(() => importOf(job, '/data/imports/nightly/000010.sst')).toThrow(
      expect.objectContaining({ rule: 'being-deleted' }),
    );
    expect(job.state.snapshots.size).toBe(0);
    job.run({ type: 'RecordStrayCleanupCompleted', cleanupId: cleanupId!, bytesReclaimed: 1 });
    expect(importOf(job, '/data/imports/nightly').reply).toMatchObject({ status: 'COMPLETED' });
  });

  it('a restore from an imported retained checkpoint continues above Flink’s id of it (its chk-N), by id or by path', () => {
    for (const how of ['id', 'path', 'path and checkpointId'] as const) {
      const job = new Job().register({ tasks: ['a'] });
      const { reply } = importOf(job, RETAINED, 'CHECKPOINT'); // chk-42, snapshot 1
      const restore =
        how === 'id'
          ? { snapshotId: reply.snapshotId }
          : { externalPath: `${RETAINED}/_metadata`, ...(how === 'path' ? {} : { checkpointId: 42 }) };
      const restored = job.run({
        type: 'RestoreSnapshot',
        claimMode: 'NO_CLAIM',
        allowNonRestoredState: false,
        ...restore,
      });
      // The job's own snapshot, as if named by its id (R62), and Flink writes chk-43 next.
      expect([how, restored.reply]).toEqual([
        how,
        expect.objectContaining({ snapshotId: reply.snapshotId, nextSnapshotId: 43 }),
      ]);
      expect(restored.events.at(-1)).toMatchObject({
        type: 'SnapshotRestored',
        snapshotId: 1,
        checkpointId: 42,
      });
      expect(job.state.restores.latest).toMatchObject({ checkpointId: 42 });
      expect(job.trigger()).toMatchObject({ snapshotId: 43 });
    }
    // A savepoint has no such number: its snapshot id, as before.
    const job = new Job().register({ tasks: ['a'] });
    const { reply } = importOf(job, SAVEPOINT);
    const restored = job.run({
      type: 'RestoreSnapshot',
      snapshotId: reply.snapshotId,
      claimMode: 'NO_CLAIM',
      allowNonRestoredState: false,
    });
    expect(restored.events.at(-1)).not.toHaveProperty('checkpointId');
    expect(restored.reply).toMatchObject({ nextSnapshotId: reply.snapshotId + 1 });
  });

  it('R69 an imported savepoint gets the next id and completes at once, its path its restorePath', () => {
    const job = new Job().register();
    const first = job.complete();
    const { events, reply } = importOf(job, SAVEPOINT);
    expect(reply).toEqual({ snapshotId: first + 1, status: 'COMPLETED', duplicate: false });
    expect(job.types(events)).toEqual(['SnapshotTriggered', 'SnapshotCompleted']);
    expect(events[0]).toMatchObject({
      imported: true,
      triggerType: 'MANUAL',
      triggerId: importTriggerId(SAVEPOINT),
      externalPath: SAVEPOINT,
    });
    const snapshot = job.snapshot(reply.snapshotId);
    expect(snapshot).toMatchObject({
      status: 'COMPLETED',
      imported: true,
      kind: 'SAVEPOINT',
      stateSize: 500,
      externalPath: SAVEPOINT,
      formatType: 'CANONICAL',
    });
    expect(snapshot.triggerId).toMatch(/^import-[0-9a-f]{16}$/);
    expect(job.state.nextSnapshotId).toBe(reply.snapshotId + 1);
    expect(job.state.sharedState.directories.get(SAVEPOINT)).toEqual([reply.snapshotId]);
  });

  it('R69 importing the same path again, however written, answers the same snapshot and writes nothing', () => {
    const job = new Job().register();
    const { reply } = importOf(job, SAVEPOINT);
    const again = importOf(job, `file://${SAVEPOINT}/`);
    expect(again.events).toEqual([]);
    expect(again.reply).toEqual({ snapshotId: reply.snapshotId, status: 'COMPLETED', duplicate: true });
    const other = job.reject({ type: 'ImportSnapshot', externalPath: SAVEPOINT, kind: 'CHECKPOINT' });
    expect(other).toMatchObject({
      code: 'CONFLICT',
      field: 'kind',
      rule: 'import-kind',
      message: `${SAVEPOINT} was imported as savepoint ${reply.snapshotId}`,
    });
  });

  it('R69 a path that is, lies in or holds another live snapshot’s directory is refused', () => {
    const job = new Job().register();
    const id = job.complete();
    const own = job.snapshot(id).externalPath;
    expect(own).toBe(`/data/chk/${JOB}/chk-${id}`);
    expect(job.reject({ type: 'ImportSnapshot', externalPath: own, kind: 'CHECKPOINT' })).toMatchObject({
      code: 'CONFLICT',
      field: 'externalPath',
      rule: 'already-catalogued',
      message: `${own} is the directory of snapshot ${id}`,
    });
    expect(
      job.reject({ type: 'ImportSnapshot', externalPath: `${own}/sub`, kind: 'CHECKPOINT' }),
    ).toMatchObject({
      code: 'CONFLICT',
      field: 'externalPath',
      rule: 'overlaps-catalogued',
      message: `${own}/sub lies inside ${own}, the directory of snapshot ${id}`,
    });
    expect(
      job.reject({ type: 'ImportSnapshot', externalPath: `/data/chk/${JOB}`, kind: 'CHECKPOINT' }),
    ).toMatchObject({
      code: 'CONFLICT',
      field: 'externalPath',
      rule: 'overlaps-catalogued',
      message: `/data/chk/${JOB} holds ${own}, the directory of snapshot ${id}: its discard would delete it`,
    });
    // A sibling is not inside: chk-1 and chk-10 are different directories.
    expect(importOf(job, `${own}0`, 'CHECKPOINT').reply.duplicate).toBe(false);
  });

  it('R69, R58 an import’s trigger expects no task; an imported savepoint is FULL, a checkpoint’s type unknown', () => {
    const job = new Job().register();
    const triggered = (externalPath: string, kind: 'SAVEPOINT' | 'CHECKPOINT', snapshotId: number) => ({
      type: 'SnapshotTriggered',
      jobId: JOB,
      occurredAt: new Date(T0).toISOString(),
      snapshotId,
      kind,
      triggerType: 'MANUAL',
      triggerId: importTriggerId(externalPath),
      properties: { forced: kind === 'SAVEPOINT', ...RETAIN_ALL },
      formatType: 'CANONICAL',
      ...(kind === 'SAVEPOINT' ? { checkpointType: 'FULL' } : {}),
      tasks: [],
      deadline: new Date(T0).toISOString(),
      externalPath,
      imported: true,
    });
    expect(importOf(job, SAVEPOINT).events[0]).toEqual(triggered(SAVEPOINT, 'SAVEPOINT', 1));
    expect(importOf(job, RETAINED, 'CHECKPOINT').events[0]).toEqual(triggered(RETAINED, 'CHECKPOINT', 2));
    expect(job.snapshot(1)).toMatchObject({ expectedTasks: [], requestedCheckpointType: 'FULL' });
    expect(job.snapshot(2)).toMatchObject({ expectedTasks: [], requestedCheckpointType: null });
  });

  it('R69 a terminal job may import; its discard deletes the directory whole', () => {
    const job = new Job().register();
    job.run({ type: 'ChangeJobStatus', status: 'FINISHED' });
    const { reply } = importOf(job, SAVEPOINT);
    const { events } = job.run({ type: 'RequestDiscard', snapshotId: reply.snapshotId, force: false });
    expect(events).toEqual([
      expect.objectContaining({ type: 'SnapshotDiscardRequested', locations: [SAVEPOINT], kept: [] }),
    ]);
    expect(job.state.sharedState.directories.get(SAVEPOINT)).toBeUndefined();
  });

  it('R69 a managed job’s imported savepoint is disposed of through Flink (its path named); an imported retained checkpoint is not (its shared files)', () => {
    const job = new Job();
    job.run({
      type: 'ConfigureJob',
      name: 'managed',
      tasks: [],
      source: { type: 'flink', cluster: 'prod' },
      checkpointing: {
        numRetained: 1,
        timeoutMs: 60_000,
        maxConcurrent: 1,
        minPauseMs: 0,
        tolerableFailures: 0,
        retention: 'NEVER_RETAIN_AFTER_TERMINATION',
        persistOnFailure: true,
      },
      storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
    });
    const sp = importOf(job, SAVEPOINT).reply.snapshotId;
    const chk = importOf(job, RETAINED, 'CHECKPOINT').reply.snapshotId;
    const savepoint = job.run({ type: 'RequestDiscard', snapshotId: sp, force: false });
    expect(savepoint.events).toEqual([
      expect.objectContaining({ type: 'SnapshotDiscardRequested', locations: [SAVEPOINT] }),
    ]);
    expect(job.snapshot(sp).status).toBe('DISCARDING');
    expect(snapshotObligations(job.snapshot(sp), true)).toContainEqual({
      kind: 'dispose',
      snapshotId: sp,
      path: SAVEPOINT,
    });
    // A retained checkpoint is not: Flink's disposal would delete its shared/ files, which the run's later
    // checkpoints reference. Removed from the catalogue, its files left where they are, as Flink's own.
    const checkpoint = job.run({ type: 'RequestDiscard', snapshotId: chk, force: false });
    expect(checkpoint.events).toEqual([
      expect.objectContaining({ type: 'SnapshotDiscardRequested', locations: [], stateHandles: [] }),
      expect.objectContaining({ type: 'SnapshotDiscarded', bytesReclaimed: 0 }),
    ]);
    expect(snapshotObligations(job.snapshot(chk), true)).toEqual([]);
    // One whose discard was requested before (Flink was to dispose of it, its path named): still owed to the
    // connector, which now ends it without Flink; not left DISCARDING for good.
    const older = importOf(job, `${RETAINED}/../chk-43`, 'CHECKPOINT').reply.snapshotId;
    job.state = fold(job.state, [
      {
        type: 'SnapshotDiscardRequested',
        jobId: JOB,
        occurredAt: new Date(T0).toISOString(),
        snapshotId: older,
        cause: 'USER',
        locations: [job.snapshot(older).externalPath],
        stateHandles: [],
        kept: [],
      },
    ]);
    expect(snapshotObligations(job.snapshot(older), true)).toEqual([
      { kind: 'dispose', snapshotId: older, path: job.snapshot(older).externalPath },
    ]);
  });

  it('R70 an imported retained checkpoint is the user’s: never subsumed, kept when the job terminates', () => {
    const job = new Job().register({ numRetained: 1 });
    const { reply } = importOf(job, RETAINED, 'CHECKPOINT');
    expect(job.snapshot(reply.snapshotId).properties).toEqual({
      forced: false,
      discardSubsumed: false,
      discardFinished: false,
      discardCancelled: false,
      discardFailed: false,
      discardSuspended: false,
    });
    job.complete();
    job.complete();
    job.complete();
    expect(job.snapshot(reply.snapshotId).status).toBe('COMPLETED');
    expect(job.snapshot(reply.snapshotId).subsumedBy).toBeUndefined();
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(job.snapshot(reply.snapshotId).status).toBe('COMPLETED');
  });

  it('R70 an import is no completion of the run: pending checkpoints go on, failures stay counted', () => {
    const job = new Job().register({ tolerableFailures: 5 });
    const failed = job.trigger();
    if (!failed.accepted) throw new Error('rejected');
    job.run({
      type: 'DeclineTask',
      snapshotId: failed.snapshotId,
      taskId: 'a',
      failureReason: 'IO_EXCEPTION',
    });
    const pending = job.trigger();
    if (!pending.accepted) throw new Error('rejected');
    const lastCompletedAt = job.state.lastCompletedAt;
    job.now = T0 + 1000;
    const { events } = importOf(job, RETAINED, 'CHECKPOINT');
    expect(job.types(events)).toEqual(['SnapshotTriggered', 'SnapshotCompleted']);
    expect(job.snapshot(pending.snapshotId).status).toBe('PENDING');
    expect(job.state.consecutiveFailures).toBe(1);
    expect(job.state.lastCompletedAt).toBe(lastCompletedAt);
  });

  it('R70 an import is never the latest completed snapshot: discarded without force, no restore plan picks it', () => {
    const job = new Job().register();
    const checkpoint = job.complete();
    const { reply } = importOf(job, SAVEPOINT);
    expect(restorePlan(job.state, 'LATEST_STATE', job.now)).toMatchObject({
      ok: true,
      snapshotId: checkpoint,
    });
    expect(restorePlan(job.state, 'LATEST_SAVEPOINT', job.now)).toMatchObject({
      ok: false,
      refusal: 'NO_CANDIDATE',
    });
    expect(job.run({ type: 'RequestDiscard', snapshotId: reply.snapshotId, force: false }).reply).toEqual({
      snapshotStatus: 'DISCARDING',
      changed: true,
    });
    expect(job.reject({ type: 'RequestDiscard', snapshotId: checkpoint, force: false })).toMatchObject({
      rule: 'latest-completed-retained',
    });
  });

  it('R70 a job restores from an import when asked by its id, without a claim the plan says NO_CLAIM', () => {
    const job = new Job().register();
    const { reply } = importOf(job, SAVEPOINT);
    job.run({
      type: 'RestoreSnapshot',
      snapshotId: reply.snapshotId,
      claimMode: 'NO_CLAIM',
      allowNonRestoredState: false,
    });
    expect(restorePlan(job.state, 'LATEST_STATE', job.now)).toMatchObject({
      ok: true,
      snapshotId: reply.snapshotId,
      claimMode: 'NO_CLAIM',
      restorePath: SAVEPOINT,
    });
  });

  it('R69 an aggregate snapshot keeps the import (codec)', () => {
    const job = new Job().register();
    importOf(job, SAVEPOINT);
    const decoded = decodeState(JSON.parse(JSON.stringify(encodeState(job.state))))!;
    expect(decoded.snapshots.get(1)).toEqual(job.state.snapshots.get(1));
    expect(decoded.sharedState.directories.get(SAVEPOINT)).toEqual([1]);
    expect(importOf(job.continuedWith(decoded), SAVEPOINT).reply.duplicate).toBe(true);
  });
});
