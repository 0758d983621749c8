import fc from 'fast-check';
import {
  formerHoldsToRelease,
  importedCheckpointAreas,
  keptByAnyOf,
  mirroredRestoreFrom,
  normaliseLocation,
  pendingSnapshotAreas,
  restoreHoldToRelease,
  restoreSourcesKept,
  snapshotView,
} from '../src';
import { JOB, Job } from './harness';

// Decision 0032: a snapshot another job restored from is held; nothing of this job discards it until the
// holder lets go.

const HOLDER = 'f'.repeat(32);
const OTHER_HOLDER = 'e'.repeat(32);

const hold = (job: Job, snapshotId: number, holderJobId = HOLDER, holderRestore = 1) =>
  job.run({ type: 'HoldSnapshot', snapshotId, holderJobId, holderRestore });
const release = (job: Job, holderJobId = HOLDER, snapshotId?: number) =>
  job.run({ type: 'ReleaseSnapshotHolds', holderJobId, ...(snapshotId !== undefined ? { snapshotId } : {}) });

/** A checkpoint of the job whose every task reports one file in `directory` (inherited through a restore). */
/** A completed checkpoint of the managed job as Flink's history reports it, in its own directory. */
const flinkReport = (job: Job, id: number, checkpointType: 'FULL' | 'INCREMENTAL' = 'INCREMENTAL') => ({
  id,
  status: 'COMPLETED' as const,
  isSavepoint: false,
  checkpointType,
  triggerTimestamp: job.now,
  stateSize: 10,
  checkpointedSize: 1,
  externalPath: `/data/chk/${JOB}/chk-${id}`,
  discarded: false,
  failureMessage: null,
});

/** Flink's `latest.restored` for the managed job, as the mirror reports it (R68). */
const restoredInFlink = (
  job: Job,
  restored: { id: number; isSavepoint: boolean; externalPath: string | null; fromJobId?: string },
  restoreTimestamp = job.now,
) =>
  job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [], restored: { ...restored, restoreTimestamp } });

function completeReferencing(job: Job, directory: string): number {
  const triggered = job.trigger();
  if (!triggered.accepted) throw new Error('rejected');
  for (const taskId of job.state.tasks) {
    job.run({
      type: 'AcknowledgeTask',
      snapshotId: triggered.snapshotId,
      taskId,
      stateSize: 1,
      stateHandles: [{ path: `${directory}/sst-${taskId}`, sizeBytes: 1 }],
    });
  }
  return triggered.snapshotId;
}

describe('holds of snapshots other jobs restored from (decision 0032)', () => {
  it('R71 a held checkpoint is not subsumed; released, it is at the next completion', () => {
    const job = new Job().register({ numRetained: 1 });
    const first = job.complete();
    expect(hold(job, first).reply).toEqual({ changed: true });
    expect(hold(job, first).events).toEqual([]);
    job.complete();
    job.complete();
    expect(job.snapshot(first)).toMatchObject({
      status: 'COMPLETED',
      heldBy: [{ jobId: HOLDER, restore: 1 }],
    });
    expect(job.snapshot(first).subsumedBy).toBeUndefined();
    expect(snapshotView(job.snapshot(first)).heldBy).toEqual([HOLDER]);
    // The job's own checkpoints are subsumed as before, the held one not counted among them.
    expect(job.snapshot(2).status).toBe('DISCARDING');
    const { reply, events } = release(job);
    expect(reply).toEqual({ released: [first], discarded: [] });
    expect(job.types(events)).toEqual(['SnapshotHoldReleased']);
    expect(job.snapshot(first).heldBy).toBeUndefined();
    expect(snapshotView(job.snapshot(first)).heldBy).toEqual([]);
    job.complete();
    expect(job.snapshot(first).status).toBe('DISCARDING');
  });

  it('R71 a user’s discard of a held snapshot is refused, counting the holders (not naming them: decision 0045), unless forced; so is holding what is not COMPLETED', () => {
    const job = new Job().register({ numRetained: 5 });
    const id = job.complete();
    job.complete();
    hold(job, id);
    const refused = job.reject({ type: 'RequestDiscard', snapshotId: id, force: false });
    expect(refused).toMatchObject({ code: 'CONFLICT', rule: 'held-by-restore' });
    expect(refused.message).toContain('held by 1 job restored from it');
    expect(refused.message).not.toContain(HOLDER);
    release(job);
    expect(job.run({ type: 'RequestDiscard', snapshotId: id, force: false }).reply).toMatchObject({
      snapshotStatus: 'DISCARDING',
    });
    // `force` is the operator's way out of a hold that would never end.
    const stuck = job.complete();
    job.complete();
    hold(job, stuck);
    expect(job.run({ type: 'RequestDiscard', snapshotId: stuck, force: true }).reply).toMatchObject({
      snapshotStatus: 'DISCARDING',
    });
    expect(
      job.reject({ type: 'HoldSnapshot', snapshotId: id, holderJobId: HOLDER, holderRestore: 1 }),
    ).toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('R71 holds are kept per restore of the holder: a release through restore n leaves a later restore’s hold, an exact one takes back only its own', () => {
    const job = new Job().register({ numRetained: 1 });
    const id = job.complete();
    hold(job, id, HOLDER, 1);
    expect(hold(job, id, HOLDER, 1).reply).toEqual({ changed: false });
    expect(hold(job, id, HOLDER, 2).reply).toEqual({ changed: true });
    // The process manager decided on the holder's state after its first restore: the second's hold stays.
    const through = job.run({ type: 'ReleaseSnapshotHolds', holderJobId: HOLDER, throughRestore: 1 });
    expect(through.events).toEqual([
      expect.objectContaining({ type: 'SnapshotHoldReleased', holderRestore: 1 }),
    ]);
    expect(job.snapshot(id).heldBy).toEqual([{ jobId: HOLDER, restore: 2 }]);
    job.complete();
    expect(job.snapshot(id).status).toBe('COMPLETED');
    hold(job, id, HOLDER, 3);
    job.run({ type: 'ReleaseSnapshotHolds', holderJobId: HOLDER, snapshotId: id, holderRestore: 3 });
    expect(job.snapshot(id).heldBy).toEqual([{ jobId: HOLDER, restore: 2 }]);
    release(job);
    expect(job.snapshot(id).heldBy).toBeUndefined();
  });

  it('R71 the job’s end keeps a held snapshot its retention discards; the release discards it then', () => {
    const job = new Job().register({ numRetained: 2 });
    const held = job.complete();
    const free = job.complete();
    hold(job, held);
    hold(job, held, OTHER_HOLDER);
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(job.snapshot(free).status).toBe('DISCARDING');
    expect(job.snapshot(held).status).toBe('COMPLETED');
    expect(release(job).reply).toEqual({ released: [held], discarded: [] });
    expect(job.snapshot(held).heldBy).toEqual([{ jobId: OTHER_HOLDER, restore: 1 }]);
    expect(release(job, OTHER_HOLDER, held).reply).toEqual({ released: [held], discarded: [held] });
    expect(job.snapshot(held).discard?.cause).toBe('JOB_CANCELED');
  });

  it('R71 a held periodic savepoint is not discarded by its schedule’s retention', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1H', retention: { maxCount: 1 } } });
    const held = job.complete('SAVEPOINT', 'PERIODIC');
    hold(job, held);
    job.complete('SAVEPOINT', 'PERIODIC');
    job.complete('SAVEPOINT', 'PERIODIC');
    expect(job.snapshot(held).status).toBe('COMPLETED');
    expect(job.snapshot(2).status).toBe('DISCARDING');
  });

  it('R71 property: whatever happens to the job, a held snapshot is never asked to be discarded unless forced', () => {
    const step = fc.constantFrom('complete', 'savepoint', 'discard-oldest', 'cancel', 'release');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.array(step, { maxLength: 12 }), (numRetained, steps) => {
        const job = new Job().register({ numRetained });
        const held = job.complete();
        hold(job, held);
        let released = false;
        for (const s of steps) {
          if (job.state.status === 'CANCELED' && s !== 'release') continue;
          if (s === 'complete') job.complete();
          if (s === 'savepoint') job.complete('SAVEPOINT');
          if (s === 'cancel') job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
          if (s === 'release') {
            release(job);
            released = true;
          }
          if (s === 'discard-oldest') {
            const oldest = job.state.completed[0];
            if (oldest !== undefined) {
              try {
                job.run({ type: 'RequestDiscard', snapshotId: oldest, force: false });
              } catch {
                // refused: held, or the latest of a running job
              }
            }
          }
          if (!released) expect(job.snapshot(held).status).toBe('COMPLETED');
        }
        const requested = job.log.some((e) => e.type === 'SnapshotDiscardRequested' && e.snapshotId === held);
        const releasedAt = job.log.findIndex((e) => e.type === 'SnapshotHoldReleased');
        const requestedAt = job.log.findIndex(
          (e) => e.type === 'SnapshotDiscardRequested' && e.snapshotId === held,
        );
        if (requested) expect(releasedAt).toBeGreaterThanOrEqual(0);
        if (requested) expect(requestedAt).toBeGreaterThan(releasedAt);
      }),
    );
  });

  it('R71 the restored job lets go once it has a snapshot of its own since the restore and uses none of the other job’s files', () => {
    const other = HOLDER;
    const job = new Job().register({ numRetained: 1 });
    job.run({
      type: 'RestoreSnapshot',
      externalPath: `/data/chk/${other}/chk-5`,
      claimMode: 'LEGACY',
      allowNonRestoredState: false,
    });
    expect(restoreHoldToRelease(job.state)).toBeUndefined(); // nothing of its own yet
    const inheriting = completeReferencing(job, `/data/chk/${other}/shared`);
    expect(job.snapshot(inheriting).status).toBe('COMPLETED');
    expect(restoreHoldToRelease(job.state)).toBeUndefined(); // it uses the other job's files
    job.complete(); // compaction: its own files only; the inheriting checkpoint is subsumed
    expect(restoreHoldToRelease(job.state)).toBe(other);
    // A restore from its own checkpoint, or from a path no job's layout names, holds nothing.
    job.run({
      type: 'RestoreSnapshot',
      externalPath: `/data/chk/${JOB}/chk-1`,
      claimMode: 'CLAIM',
      allowNonRestoredState: false,
    });
    expect(restoreHoldToRelease(job.state)).toBeUndefined();
  });

  it.each(['NO_CLAIM', 'LEGACY', 'CLAIM'] as const)(
    'R71 restored in %s mode, the job keeps its hold through savepoints and imports: a failover restores from the restored checkpoint until a checkpoint completes',
    (claimMode) => {
      const other = HOLDER;
      const job = new Job().register({ numRetained: 1 });
      job.run({
        type: 'RestoreSnapshot',
        externalPath: `/data/chk/${other}/chk-5`,
        claimMode,
        allowNonRestoredState: false,
      });
      job.complete('SAVEPOINT');
      job.run({ type: 'ImportSnapshot', externalPath: '/data/imports/chk-9', kind: 'CHECKPOINT' });
      expect(restoreHoldToRelease(job.state)).toBeUndefined();
      expect(restoreSourcesKept(job.state)).toEqual([`/data/chk/${other}`]);
      job.complete();
      expect(restoreHoldToRelease(job.state)).toBe(other);
      // R62: a path restored from in NO_CLAIM or LEGACY stays the user's, kept whole; a CLAIMed one is the job's.
      expect(restoreSourcesKept(job.state)).toEqual(claimMode === 'CLAIM' ? [] : [`/data/chk/${other}`]);
      job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
      expect(restoreSourcesKept(job.state)).toEqual(claimMode === 'CLAIM' ? [] : [`/data/chk/${other}`]);
    },
  );

  it('R71 restored from another job’s savepoint named by fromJobId, the job lets go once none of its live snapshots uses a file of that savepoint', () => {
    const other = HOLDER;
    const savepoint = `s3://bucket/sp/savepoint-${other.slice(0, 6)}-0123456789ab`;
    const job = new Job().register({ numRetained: 1 });
    const restored = job.run({
      type: 'RestoreSnapshot',
      externalPath: savepoint,
      fromJobId: other,
      claimMode: 'LEGACY',
      allowNonRestoredState: false,
    });
    expect(restored.events[restored.events.length - 1]).toMatchObject({ fromJobId: other });
    expect(job.state.restores.latest?.fromJobId).toBe(other);
    completeReferencing(job, savepoint);
    expect(restoreHoldToRelease(job.state)).toBeUndefined(); // it uses the savepoint's files
    job.complete();
    expect(restoreHoldToRelease(job.state)).toBe(other);
    // Without fromJobId, a savepoint's path names no job: nothing to let go of.
    job.run({
      type: 'RestoreSnapshot',
      externalPath: savepoint,
      claimMode: 'LEGACY',
      allowNonRestoredState: false,
    });
    job.complete();
    expect(restoreHoldToRelease(job.state)).toBeUndefined();
    // fromJobId is another job's, and goes with an external path.
    expect(
      job.reject({
        type: 'RestoreSnapshot',
        externalPath: savepoint,
        fromJobId: JOB,
        claimMode: 'LEGACY',
        allowNonRestoredState: false,
      }),
    ).toMatchObject({ code: 'INVALID', rule: 'another-job' });
    expect(
      job.reject({
        type: 'RestoreSnapshot',
        snapshotId: 1,
        fromJobId: other,
        claimMode: 'LEGACY',
        allowNonRestoredState: false,
      }),
    ).toMatchObject({ code: 'INVALID', rule: 'another-job' });
  });

  it.each(['CLAIM', 'LEGACY'] as const)(
    'R71 the files of another job’s savepoint the job was restored from (%s, fromJobId) stay that job’s after a later restore of the job’s own checkpoint, even where the directory shares the job’s six characters',
    (claimMode) => {
      const other = `${JOB.slice(0, 6)}${'a'.repeat(26)}`; // ids people chose: the same first six characters
      const savepoint = `/data/sp/savepoint-${JOB.slice(0, 6)}-aaaaaaaaaaaa`;
      const job = new Job().register({ numRetained: 1 });
      job.run({
        type: 'RestoreSnapshot',
        externalPath: savepoint,
        fromJobId: other,
        claimMode,
        allowNonRestoredState: false,
      });
      const first = completeReferencing(job, savepoint);
      // A failover recorded as a restore of the job's own checkpoint: that run still uses the savepoint's files.
      job.run({
        type: 'RestoreSnapshot',
        snapshotId: first,
        claimMode: 'CLAIM',
        allowNonRestoredState: false,
      });
      completeReferencing(job, savepoint);
      job.complete(); // compacted: the one before is subsumed, and with it the last use of the savepoint's files
      const planned = job.log.flatMap((event) =>
        event.type === 'SnapshotDiscardRequested' ? event.stateHandles.map((handle) => handle.path) : [],
      );
      expect(planned.filter((path) => path.startsWith(`${savepoint}/`))).toEqual([]);
      expect(job.log.filter((event) => event.type === 'SnapshotDiscardRequested')).not.toEqual([]);
    },
  );

  it('R71 a restored job that ended before any checkpoint of its own lets go', () => {
    const job = new Job().register();
    job.run({
      type: 'RestoreSnapshot',
      externalPath: `s3://bucket/chk/${HOLDER}/chk-2`,
      claimMode: 'NO_CLAIM',
      allowNonRestoredState: false,
    });
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(restoreHoldToRelease(job.state)).toBe(HOLDER);
  });

  it.each([
    ['LEGACY', undefined],
    ['CLAIM', undefined],
    ['NO_CLAIM', HOLDER],
  ] as const)(
    'R71 a managed job restored in %s mode: its mirrored checkpoints carry no files, so it lets go after its first only for NO_CLAIM (%s), else when it ends',
    (claimMode, released) => {
      const job = new Job().registerManaged();
      job.run({
        type: 'RestoreSnapshot',
        externalPath: `/data/chk/${HOLDER}/chk-3`,
        claimMode,
        allowNonRestoredState: false,
      });
      job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [flinkReport(job, 4)] });
      expect(restoreHoldToRelease(job.state)).toBe(released);
      job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
      expect(restoreHoldToRelease(job.state)).toBe(HOLDER);
    },
  );

  it('R71 a managed job Flink restored from another job’s savepoint (the connector named the job): held while it runs, let go when it ends, whatever its checkpoints', () => {
    const job = new Job().registerManaged();
    const savepoint = `/data/sp/savepoint-${HOLDER.slice(0, 6)}-0123456789ab`;
    restoredInFlink(job, { id: 3, isSavepoint: true, externalPath: savepoint, fromJobId: HOLDER });
    expect(job.log.find((e) => e.type === 'FlinkRestoreRecorded')).toMatchObject({ fromJobId: HOLDER });
    expect(mirroredRestoreFrom(job.state)).toBe(HOLDER);
    job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [flinkReport(job, 4), flinkReport(job, 5)] });
    expect(restoreHoldToRelease(job.state)).toBeUndefined();
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(restoreHoldToRelease(job.state)).toBe(HOLDER);
  });

  it('R71 a restore Flink reports from the job’s own snapshot names no other job, whatever the connector said', () => {
    const job = new Job().registerManaged();
    job.run({
      type: 'RecordFlinkCheckpoints',
      checkpoints: [flinkReport(job, 7, 'FULL')],
    });
    restoredInFlink(job, { id: 7, isSavepoint: false, externalPath: null, fromJobId: HOLDER }, job.now + 1);
    expect(job.log.find((e) => e.type === 'FlinkRestoreRecorded')).not.toHaveProperty('fromJobId');
    expect(mirroredRestoreFrom(job.state)).toBeUndefined();
  });

  describe('a restore that supersedes one from another job', () => {
    // The job's own area at a checkpoint the catalogue does not hold (chk-5 would be its snapshot 5, restored
    // as such: R62), other jobs' at chk-5.
    const restoreFrom = (job: Job, owner: string, claimMode: 'LEGACY' | 'CLAIM' | 'NO_CLAIM' = 'LEGACY') =>
      job.run({
        type: 'RestoreSnapshot',
        externalPath: `/data/chk/${owner}/chk-${owner === JOB ? 1000 : 5}`,
        claimMode,
        allowNonRestoredState: false,
      });

    it('R71 the earlier owner is let go once no checkpoint of the run restored from it is live and no file of it is referenced', () => {
      const job = new Job().register({ numRetained: 1 });
      restoreFrom(job, HOLDER);
      const inheriting = completeReferencing(job, `/data/chk/${HOLDER}/shared`);
      restoreFrom(job, OTHER_HOLDER);
      expect(job.state.formerRestoreOwners).toEqual([{ jobId: HOLDER, untilSnapshotId: inheriting + 1 }]);
      // The checkpoint of the run from HOLDER is live and references HOLDER's files.
      expect(formerHoldsToRelease(job.state)).toEqual([]);
      expect(restoreHoldToRelease(job.state)).toBeUndefined(); // the current owner: nothing of its own yet
      job.complete(); // subsumes the inheriting checkpoint
      expect(job.snapshot(inheriting).status).toBe('DISCARDING');
      expect(formerHoldsToRelease(job.state)).toEqual([HOLDER]);
      expect(restoreHoldToRelease(job.state)).toBe(OTHER_HOLDER);
    });

    it('R71 restored from its own checkpoint of that run, the job still references the owner’s files after that checkpoint is gone: held until compaction', () => {
      const job = new Job().register({ numRetained: 1 });
      restoreFrom(job, HOLDER);
      const inheriting = completeReferencing(job, `/data/chk/${HOLDER}/shared`);
      job.run({
        type: 'RestoreSnapshot',
        snapshotId: inheriting,
        claimMode: 'CLAIM',
        allowNonRestoredState: false,
      });
      expect(job.state.formerRestoreOwners.map((f) => f.jobId)).toEqual([HOLDER]);
      completeReferencing(job, `/data/chk/${HOLDER}/shared`); // subsumes the one it restored from
      expect(job.snapshot(inheriting).status).toBe('DISCARDING');
      expect(formerHoldsToRelease(job.state)).toEqual([]);
      job.complete(); // compaction
      expect(formerHoldsToRelease(job.state)).toEqual([HOLDER]);
    });

    it('R71 a managed job lets go of an earlier owner only when it ends: its mirrored checkpoints carry no files, and a later run may still use the owner’s', () => {
      const job = new Job().registerManaged();
      restoreFrom(job, HOLDER);
      job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [flinkReport(job, 6)] });
      const mirrored = job.state.completed[job.state.completed.length - 1]!;
      restoreFrom(job, OTHER_HOLDER);
      expect(formerHoldsToRelease(job.state)).toEqual([]);
      job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [flinkReport(job, 7, 'FULL')] });
      job.run({ type: 'RequestDiscard', snapshotId: mirrored, force: false });
      expect(formerHoldsToRelease(job.state)).toEqual([]);
      job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
      expect(formerHoldsToRelease(job.state)).toEqual([HOLDER]);
    });

    it('R71 a managed job Flink restored from another job, then failed over to its own checkpoint, keeps holding while it runs', () => {
      const job = new Job().registerManaged();
      const restored = (id: number, fromJobId?: string) => ({
        id,
        restoreTimestamp: (job.now += 1_000),
        isSavepoint: false,
        externalPath: fromJobId ? `/data/chk/${fromJobId}/chk-${id}` : null,
        ...(fromJobId ? { fromJobId } : {}),
      });
      job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [], restored: restored(3, HOLDER) });
      expect(mirroredRestoreFrom(job.state)).toBe(HOLDER);
      job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [flinkReport(job, 4), flinkReport(job, 5)] });
      // The failover: Flink restores the job from its own checkpoint 5, whose incremental files reach A's.
      job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [], restored: restored(5) });
      expect(job.state.formerRestoreOwners.map((f) => f.jobId)).toEqual([HOLDER]);
      job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [flinkReport(job, 6), flinkReport(job, 7)] });
      for (const id of [...job.state.completed].slice(0, -1)) {
        job.run({ type: 'RequestDiscard', snapshotId: id, force: false });
      }
      expect(formerHoldsToRelease(job.state)).toEqual([]);
      job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
      expect(formerHoldsToRelease(job.state)).toEqual([HOLDER]);
    });

    it('R71 restored from A, then C, then A again: the current hold on A waits for what the first run from A may still use', () => {
      const job = new Job().register({ numRetained: 3 });
      const savepoint = `s3://bucket/imported/sp-${HOLDER.slice(0, 4)}`; // a directory that names no job
      job.run({
        type: 'RestoreSnapshot',
        externalPath: savepoint,
        fromJobId: HOLDER,
        claimMode: 'LEGACY',
        allowNonRestoredState: false,
      });
      const firstRun = completeReferencing(job, savepoint);
      restoreFrom(job, OTHER_HOLDER, 'NO_CLAIM');
      restoreFrom(job, HOLDER, 'NO_CLAIM');
      job.complete(); // the third run's first checkpoint: its own files only
      expect(restoreHoldToRelease(job.state)).toBeUndefined(); // the first run's checkpoint uses the savepoint
      job.run({ type: 'RequestDiscard', snapshotId: firstRun, force: false });
      expect(restoreHoldToRelease(job.state)).toBe(HOLDER);
    });

    it('R71 restored from another job and then from elsewhere before any checkpoint, the first is let go at once; restored from it again, it is the current owner and not a former one', () => {
      const job = new Job().register();
      restoreFrom(job, HOLDER, 'CLAIM');
      restoreFrom(job, OTHER_HOLDER, 'CLAIM');
      expect(formerHoldsToRelease(job.state)).toEqual([HOLDER]);
      restoreFrom(job, HOLDER, 'CLAIM');
      expect(formerHoldsToRelease(job.state)).toEqual([OTHER_HOLDER]);
      expect(job.state.formerRestoreOwners.map((f) => f.jobId)).toEqual([HOLDER, OTHER_HOLDER]);
    });

    it('R71 property: a former owner is never let go while a live snapshot references its files, and always once the job moved on', () => {
      const owners = [HOLDER, OTHER_HOLDER, 'd'.repeat(32)];
      const step = fc.oneof(
        fc.record({ restore: fc.constantFrom(...owners, JOB) }),
        fc.record({ checkpoint: fc.boolean() }),
        // Files of an earlier owner reach later checkpoints through restores of the job's own checkpoints.
        fc.record({ inherit: fc.constantFrom(...owners) }),
      );
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 3 }),
          fc.array(step, { maxLength: 14 }),
          (numRetained, steps) => {
            const job = new Job().register({ numRetained });
            let current: string | undefined;
            for (const s of steps) {
              if ('restore' in s) {
                restoreFrom(job, s.restore);
                current = s.restore === JOB ? undefined : s.restore;
              } else if ('inherit' in s) {
                completeReferencing(job, `/data/chk/${s.inherit}/shared`);
              } else if (s.checkpoint && current !== undefined) {
                completeReferencing(job, `/data/chk/${current}/shared`);
              } else {
                job.complete();
              }
              for (const owner of formerHoldsToRelease(job.state)) {
                const referenced = [...job.state.sharedState.references.entries()].some(([path]) =>
                  path.startsWith(`/data/chk/${owner}/`),
                );
                expect(referenced).toBe(false);
              }
            }
            // Moved on: restored from its own checkpoint, then enough checkpoints of its own to subsume the rest.
            restoreFrom(job, JOB, 'NO_CLAIM');
            for (let i = 0; i <= numRetained; i++) job.complete();
            const formers = job.state.formerRestoreOwners.map((f) => f.jobId);
            expect(new Set(formerHoldsToRelease(job.state))).toEqual(new Set(formers));
            if (current !== undefined) expect(formers).toContain(current);
          },
        ),
      );
    });
  });
});

describe('what the orphan sweep keeps of a restore source outside the catalogue', () => {
  it('a managed job Flink restored from an uncatalogued run keeps that run’s whole area (LEGACY or CLAIM: its shared files), whatever its status', () => {
    const job = new Job().registerManaged();
    expect(restoreSourcesKept(job.state)).toEqual([]);
    restoredInFlink(job, { id: 42, isSavepoint: false, externalPath: `file:///data/chk/${HOLDER}/chk-42/` });
    expect(restoreSourcesKept(job.state)).toEqual([`/data/chk/${HOLDER}`]);
    const kept = keptByAnyOf([], restoreSourcesKept(job.state));
    expect(kept(`/data/chk/${HOLDER}/shared/sst-1`)).toBe(true);
    expect(kept(`/data/chk/${OTHER_HOLDER}/shared/sst-1`)).toBe(false);
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(restoreSourcesKept(job.state)).toEqual([`/data/chk/${HOLDER}`]);
  });

  it('a managed job keeps the uncatalogued run it was restored from after a failover to its own checkpoint (its checkpoints still use that run’s files)', () => {
    const job = new Job().registerManaged();
    restoredInFlink(job, { id: 42, isSavepoint: false, externalPath: `/data/chk/${HOLDER}/chk-42` });
    job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [flinkReport(job, 43)] });
    job.now += 1_000;
    restoredInFlink(job, { id: 43, isSavepoint: false, externalPath: `/data/chk/${JOB}/chk-43` });
    expect(job.state.flinkRestore).toMatchObject({ externalPath: `/data/chk/${JOB}/chk-43` });
    expect(restoreSourcesKept(job.state)).toContain(`/data/chk/${HOLDER}`);
    expect(job.state.flinkRestoreSources).toEqual([`/data/chk/${HOLDER}`]);
  });

  it('a managed job restored from a savepoint keeps the savepoint directory, named by it or by its _metadata', () => {
    const job = new Job().registerManaged();
    const savepoint = `/data/sp/savepoint-${HOLDER.slice(0, 6)}-0123456789ab`;
    restoredInFlink(job, { id: 3, isSavepoint: true, externalPath: `${savepoint}/_metadata` });
    expect(restoreSourcesKept(job.state)).toEqual([savepoint]);
  });

  it.each(['LEGACY', 'NO_CLAIM'] as const)(
    'R62: a job whose clients report its snapshots keeps a path it restored from in %s whole, whatever it did since (it stays the user’s)',
    (claimMode) => {
      const job = new Job().register({ numRetained: 1 });
      job.run({
        type: 'RestoreSnapshot',
        externalPath: `/data/chk/${HOLDER}/chk-5/_metadata`,
        claimMode,
        allowNonRestoredState: false,
      });
      // The run's whole area: its shared files are what a failover before the first checkpoint restores.
      expect(restoreSourcesKept(job.state)).toEqual([`/data/chk/${HOLDER}`]);
      completeReferencing(job, `/data/chk/${HOLDER}/shared`);
      // Its acknowledgements name what it uses of the source; the rest is the user's still (a walkthrough's
      // sweep deleted a LEGACY-restored savepoint's unacknowledged files: it restored nothing after).
      expect(restoreSourcesKept(job.state)).toEqual([`/data/chk/${HOLDER}`]);
      job.run({ type: 'ChangeJobStatus', status: 'FAILED' });
      expect(restoreSourcesKept(job.state)).toEqual([`/data/chk/${HOLDER}`]);
    },
  );

  it('a job whose clients report its snapshots keeps a path it CLAIMed until it completes a checkpoint since, or ends and its retention would not keep a checkpoint', () => {
    const job = new Job().register({ numRetained: 1 });
    job.run({
      type: 'RestoreSnapshot',
      externalPath: `/data/chk/${HOLDER}/chk-5`,
      claimMode: 'CLAIM',
      allowNonRestoredState: false,
    });
    expect(restoreSourcesKept(job.state)).toEqual([`/data/chk/${HOLDER}`]);
    completeReferencing(job, `/data/chk/${HOLDER}/shared`);
    expect(restoreSourcesKept(job.state)).toEqual([]);

    // Ended before any checkpoint, the CLAIMed path is the job's latest checkpoint (Flink gives it the job's
    // checkpoint properties): kept as the job's retention keeps one at that status, and as R38 keeps one.
    const endedAs = (
      status: 'FAILED' | 'CANCELED' | 'FINISHED',
      checkpointing: {
        retention: 'NEVER_RETAIN_AFTER_TERMINATION' | 'RETAIN_ON_CANCELLATION';
        persistOnFailure?: boolean;
      },
    ) => {
      const ended = new Job().register({ numRetained: 1, ...checkpointing });
      ended.run({
        type: 'RestoreSnapshot',
        externalPath: `/data/chk/${HOLDER}/chk-5`,
        claimMode: 'CLAIM',
        allowNonRestoredState: false,
      });
      ended.run({ type: 'ChangeJobStatus', status });
      return restoreSourcesKept(ended.state);
    };
    const kept = [`/data/chk/${HOLDER}`];
    expect(endedAs('CANCELED', { retention: 'RETAIN_ON_CANCELLATION' })).toEqual(kept);
    expect(endedAs('FAILED', { retention: 'NEVER_RETAIN_AFTER_TERMINATION' })).toEqual(kept); // R38
    expect(
      endedAs('FAILED', { retention: 'NEVER_RETAIN_AFTER_TERMINATION', persistOnFailure: false }),
    ).toEqual([]);
    expect(endedAs('CANCELED', { retention: 'NEVER_RETAIN_AFTER_TERMINATION' })).toEqual([]);
    expect(endedAs('FINISHED', { retention: 'RETAIN_ON_CANCELLATION' })).toEqual([]);
  });

  it('R69: a live imported checkpoint keeps its whole checkpoint area from the sweep (its _metadata names shared files no acknowledgement listed); an imported savepoint keeps none', () => {
    const job = new Job().register({ numRetained: 1 });
    expect(importedCheckpointAreas(job.state)).toEqual([]);
    const run = `/data/chk/${HOLDER}`;
    const { reply } = job.run({
      type: 'ImportSnapshot',
      externalPath: `file://${run}/chk-5/`,
      kind: 'CHECKPOINT',
    });
    job.run({
      type: 'ImportSnapshot',
      externalPath: '/data/sp/savepoint-abcdef-0123456789ab',
      kind: 'SAVEPOINT',
    });
    expect(importedCheckpointAreas(job.state)).toEqual([run]);
    const kept = keptByAnyOf([], importedCheckpointAreas(job.state));
    expect(kept(`${run}/shared/sst-1`)).toBe(true);
    expect(kept(`${run}/taskowned/x`)).toBe(true);
    job.run({ type: 'RequestDiscard', snapshotId: reply.snapshotId, force: false });
    expect(importedCheckpointAreas(job.state)).toEqual([]);
  });

  it('a pending snapshot keeps the job’s checkpoint area and its own directory from the sweep until it ends (its tasks upload before they acknowledge)', () => {
    const job = new Job().register({ numRetained: 1 });
    expect(pendingSnapshotAreas(job.state)).toEqual([]);
    const reply = job.trigger('SAVEPOINT');
    if (!reply.accepted) throw new Error(reply.reason);
    const area = `/data/chk/${JOB}`;
    const savepoint = normaliseLocation(job.snapshot(reply.snapshotId).externalPath);
    expect(pendingSnapshotAreas(job.state).sort()).toEqual([area, savepoint].sort());
    const kept = keptByAnyOf([], pendingSnapshotAreas(job.state));
    expect(kept(`${area}/shared/uploaded-not-acknowledged`)).toBe(true);
    expect(kept(`/data/chk/${HOLDER}/shared/x`)).toBe(false);
    job.now += 24 * 3_600_000; // past any timeout
    job.run({ type: 'ExpireOverdue' });
    expect(job.state.pending.size).toBe(0);
    expect(pendingSnapshotAreas(job.state)).toEqual([]);
  });

  it('a managed job keeps every file laid out under its id, wherever the path before it (Flink’s entropy injection)', () => {
    const kept = keptByAnyOf([], [], new Set([JOB]));
    expect(kept(`s3://bucket/x7q2/checkpoints/${JOB}/shared/sst-1`)).toBe(true);
    expect(kept(`s3://bucket/ab12/checkpoints/${JOB}/chk-5/op-state`)).toBe(true);
    expect(kept(`s3://bucket/ab12/checkpoints/${HOLDER}/shared/sst-1`)).toBe(false);
    expect(kept(`s3://bucket/ab12/${JOB}-notes/x`)).toBe(false);
  });

  it('a managed job keeps every savepoint directory Flink names for it (six characters of its id), catalogued or not', () => {
    // One taken in Flink while the mirror could not see it (a CLI's, during an outage): no catalogue entry.
    const kept = keptByAnyOf([], [], new Set([JOB]));
    const own = `savepoint-${JOB.slice(0, 6)}-0123456789ab`;
    expect(kept(`s3://bucket/savepoints/${own}/_metadata`)).toBe(true);
    expect(kept(`/data/savepoints/${own}/op-1/part-0`)).toBe(true);
    expect(kept(`/data/savepoints/savepoint-${HOLDER.slice(0, 6)}-0123456789ab/_metadata`)).toBe(
      JOB.slice(0, 6) === HOLDER.slice(0, 6),
    );
    expect(kept(`/data/savepoints/${own}-copy/_metadata`)).toBe(false);
  });
});
