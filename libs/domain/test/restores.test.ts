import {
  Event,
  decodeState,
  encodeState,
  fold,
  initialState,
  describeSnapshot,
  restorePlan,
  snapshotView,
  jobSummaryView,
  type ClaimMode,
} from '../src';
import { JOB, Job, T0, RETAIN_ALL } from './harness';

const MINUTE = 60_000;

/** A job with a persisted checkpoint 1 and two later checkpoints (numRetained 2). */
function withPersistedCheckpoint(): Job {
  const job = new Job().register({ numRetained: 2 });
  job.complete();
  job.run({ type: 'PersistSnapshot', snapshotId: 1 });
  return job;
}

/** The id of an accepted trigger. */
function idOf(reply: ReturnType<Job['trigger']>): number {
  if (!reply.accepted) throw new Error(`trigger rejected: ${reply.reason}`);
  return reply.snapshotId;
}

function restore(job: Job, snapshotId: number, claimMode: ClaimMode) {
  return job.run({ type: 'RestoreSnapshot', snapshotId, claimMode, allowNonRestoredState: false });
}

const INHERITED = '/data/imports/nightly/000010.sst';

/** A job of task `a` restored from `/data/imports/nightly` by path; its first checkpoint reports a file of it. */
function restoredFromImports(claimMode: ClaimMode): { job: Job; first: number } {
  const job = new Job().register({ numRetained: 1, tasks: ['a'] });
  job.run({
    type: 'RestoreSnapshot',
    externalPath: '/data/imports/nightly/_metadata',
    claimMode,
    allowNonRestoredState: false,
  });
  return { job, first: checkpointReporting(job, INHERITED).snapshotId };
}

/** A checkpoint whose one task reports one file: its id and the events of the acknowledgement. */
function checkpointReporting(job: Job, path: string) {
  const snapshotId = idOf(job.trigger());
  const { events } = job.run({
    type: 'AcknowledgeTask',
    snapshotId,
    taskId: 'a',
    stateSize: 1,
    stateHandles: [{ path, sizeBytes: 1 }],
  });
  return { snapshotId, events };
}

describe('restores and claim modes (R62; CheckpointCoordinator.restoreSavepoint, RecoveryClaimMode)', () => {
  it.each([
    ['CLAIM', 'DISCARDING'],
    ['NO_CLAIM', 'COMPLETED'],
    ['LEGACY', 'COMPLETED'],
  ] as const)(
    'R62 restored from a persisted checkpoint in %s, then four checkpoints with numRetained 2: it is %s',
    (claimMode, status) => {
      const job = withPersistedCheckpoint();
      const { reply } = restore(job, 1, claimMode);
      expect(reply).toEqual({
        snapshotId: 1,
        restorePath: job.snapshot(1).externalPath,
        claimMode,
        aborted: [],
        nextSnapshotId: 2,
      });
      for (let i = 0; i < 4; i += 1) job.complete();
      expect(job.snapshot(1).status).toBe(status);
      if (status === 'DISCARDING') {
        // Flink's restoreSavepoint gives a claimed snapshot the job's checkpoint properties: subsumed.
        expect(job.snapshot(1).discard!.cause).toBe('SUBSUMED');
        expect(job.snapshot(1).properties.discardSubsumed).toBe(true);
      } else {
        expect(job.snapshot(1).properties).toMatchObject({ discardSubsumed: false, discardFinished: false });
      }
      expect(snapshotView(job.snapshot(1)).claimMode).toBe(claimMode);
      expect(jobSummaryView(job.state)).toMatchObject({
        counts: { restored: 1 },
        latestRestore: { snapshotId: 1, claimMode, allowNonRestoredState: false },
      });
    },
  );

  it('R62 a savepoint restored in CLAIM mode is subsumed like a checkpoint; in NO_CLAIM it is not', () => {
    for (const [claimMode, subsumed] of [
      ['CLAIM', true],
      ['NO_CLAIM', false],
    ] as const) {
      const job = new Job().register({ numRetained: 1 });
      const savepoint = job.complete('SAVEPOINT');
      restore(job, savepoint, claimMode);
      job.complete();
      job.complete();
      expect(job.snapshot(savepoint).status).toBe(subsumed ? 'DISCARDING' : 'COMPLETED');
    }
  });

  it('R31, R62 a savepoint completing after a CLAIM restore subsumes nothing: the claimed snapshot is what a failover restores from until a checkpoint completes', () => {
    const job = new Job().register({ numRetained: 1 });
    job.complete();
    const savepoint = job.complete('SAVEPOINT');
    job.complete(); // the run that is given up: its checkpoint 3 subsumed checkpoint 1
    restore(job, savepoint, 'CLAIM');
    const later = job.complete('SAVEPOINT');
    expect(job.snapshot(later).status).toBe('COMPLETED');
    expect(job.snapshot(savepoint).status).toBe('COMPLETED');
    expect(job.snapshot(savepoint).subsumedBy).toBeUndefined();
    expect(restorePlan(job.state, 'FAILOVER', job.now)).toMatchObject({ snapshotId: savepoint });
    const checkpoint = job.complete();
    expect(job.snapshot(savepoint).status).toBe('DISCARDING');
    expect(job.snapshot(savepoint).subsumedBy).toBe(checkpoint);
  });

  it.each(['NO_CLAIM', 'LEGACY'] as const)(
    'R62 a restore in %s by the path of one of the job’s own snapshots is a restore of that snapshot: it leaves the job’s hands',
    (claimMode) => {
      const job = new Job().register({ numRetained: 1 });
      const checkpoint = job.complete();
      const path = `${job.snapshot(checkpoint).externalPath}/_metadata`;
      // A checkpoint id that is not the snapshot's: the path held another checkpoint then, an external path.
      const other = job.run({
        type: 'RestoreSnapshot',
        externalPath: path,
        checkpointId: 7,
        claimMode,
        allowNonRestoredState: false,
      });
      expect(other.reply).toMatchObject({ snapshotId: null, restorePath: path });
      const { reply, events } = job.run({
        type: 'RestoreSnapshot',
        externalPath: path,
        checkpointId: checkpoint,
        claimMode,
        allowNonRestoredState: false,
      });
      // Recorded as given (the `_metadata` path), its snapshot named.
      expect(reply).toMatchObject({ snapshotId: checkpoint, claimMode, restorePath: path });
      expect(events.find((e) => e.type === 'SnapshotRestored')).not.toHaveProperty('checkpointId');
      for (let i = 0; i < 3; i += 1) job.complete();
      expect(job.snapshot(checkpoint)).toMatchObject({ status: 'COMPLETED', claimMode });
      expect(job.snapshot(checkpoint).properties.discardSubsumed).toBe(false);
    },
  );

  it('R34, R64 what a failover restores from is kept while the job restarts too (RESTARTING restores from it)', () => {
    const job = new Job().register({ numRetained: 2 });
    const savepoint = job.complete('SAVEPOINT');
    job.complete();
    job.complete();
    restore(job, savepoint, 'NO_CLAIM');
    job.run({ type: 'ChangeJobStatus', status: 'RESTARTING' });
    expect(job.reject({ type: 'RequestDiscard', snapshotId: savepoint, force: false })).toMatchObject({
      code: 'CONFLICT',
      rule: 'failover-base',
      message: expect.stringContaining('failover of the job (RESTARTING)'),
    });
  });

  it('R34, R64 what a failover of a running job restores from is not discarded without force: the restored snapshot until a checkpoint completes, else the newest checkpoint', () => {
    const job = new Job().register({ numRetained: 2 });
    const savepoint = job.complete('SAVEPOINT');
    job.complete();
    job.complete(); // the given-up run's newest checkpoint: the highest id
    restore(job, savepoint, 'NO_CLAIM');
    expect(job.reject({ type: 'RequestDiscard', snapshotId: savepoint, force: false })).toMatchObject({
      code: 'CONFLICT',
      rule: 'failover-base',
      message: expect.stringContaining('(no checkpoint completed since it was restored)'),
    });
    const checkpoint = job.complete();
    const later = job.complete('SAVEPOINT');
    expect(later).toBeGreaterThan(checkpoint);
    // Savepoints do not enter Flink's store: the newest checkpoint is the failover's, not the later savepoint.
    expect(job.reject({ type: 'RequestDiscard', snapshotId: checkpoint, force: false })).toMatchObject({
      rule: 'failover-base',
      message: expect.stringContaining(
        '(its newest completed checkpoint: a failover restores from no savepoint)',
      ),
    });
    expect(job.run({ type: 'RequestDiscard', snapshotId: savepoint, force: false }).reply).toMatchObject({
      snapshotStatus: 'DISCARDING',
    });
    expect(job.run({ type: 'RequestDiscard', snapshotId: checkpoint, force: true }).reply).toMatchObject({
      snapshotStatus: 'DISCARDING',
    });
  });

  it.each([
    ['LEGACY', false],
    ['NO_CLAIM', false],
    ['CLAIM', true],
  ] as const)(
    'R62 restored from an external path in %s, a file of it a checkpoint reported is deleted with that checkpoint: %s',
    (claimMode, deleted) => {
      const { job, first } = restoredFromImports(claimMode);
      const { events } = checkpointReporting(job, `/data/chk/${JOB}/shared/own.sst`);
      const discard = events.find((e) => e.type === 'SnapshotDiscardRequested');
      expect(discard).toMatchObject({ snapshotId: first, cause: 'SUBSUMED' });
      const paths = (discard as { stateHandles: { path: string }[] }).stateHandles.map((h) => h.path);
      expect(paths.includes(INHERITED)).toBe(deleted);
    },
  );

  it('R62 a file of an external path restored in LEGACY stays kept after a later restore (a failover to the job’s own checkpoint)', () => {
    const { job, first } = restoredFromImports('LEGACY');
    restore(job, first, 'CLAIM'); // the job fails over to its own checkpoint
    const { events } = checkpointReporting(job, `/data/chk/${JOB}/shared/own.sst`);
    const discard = events.find((e) => e.type === 'SnapshotDiscardRequested') as {
      snapshotId: number;
      stateHandles: { path: string }[];
      kept: { path: string; reason: string }[];
    };
    expect(discard.snapshotId).toBe(first);
    expect(discard.stateHandles.map((h) => h.path)).not.toContain(INHERITED);
    expect(discard.kept).toContainEqual(expect.objectContaining({ path: INHERITED, reason: 'OTHER_JOB' }));
  });

  it('R62 restored in LEGACY from a path that holds the job’s own snapshots (/data), a discarded snapshot’s files in its own directory go with it', () => {
    const job = new Job().register({ numRetained: 1, tasks: ['a'] });
    job.run({
      type: 'RestoreSnapshot',
      externalPath: '/data/_metadata',
      claimMode: 'LEGACY',
      allowNonRestoredState: false,
    });
    const savepoint = idOf(job.trigger('SAVEPOINT'));
    const directory = job.snapshot(savepoint).externalPath;
    expect(directory.startsWith('/data/')).toBe(true);
    job.run({
      type: 'AcknowledgeTask',
      snapshotId: savepoint,
      taskId: 'a',
      stateSize: 1,
      stateHandles: [{ path: `${directory}/op-1`, sizeBytes: 1 }],
    });
    job.complete(); // a checkpoint after it: the savepoint is not the latest, nor what a failover restores
    const { events } = job.run({ type: 'RequestDiscard', snapshotId: savepoint, force: false });
    const discard = events.find((e) => e.type === 'SnapshotDiscardRequested') as {
      locations: string[];
      stateHandles: { path: string }[];
      kept: { path: string }[];
    };
    expect(discard.locations).toEqual([directory]);
    expect(discard.kept.map((k) => k.path)).not.toContain(`${directory}/op-1`);
  });

  it('R62 the job terminating discards a CLAIMed snapshot as its retention says, never a NO_CLAIMed one', () => {
    for (const [claimMode, status] of [
      ['CLAIM', 'DISCARDING'],
      ['NO_CLAIM', 'COMPLETED'],
      ['LEGACY', 'COMPLETED'],
    ] as const) {
      const job = new Job().register({ numRetained: 3 });
      const savepoint = job.complete('SAVEPOINT');
      restore(job, savepoint, claimMode);
      job.run({ type: 'ChangeJobStatus', status: 'FINISHED' });
      expect(job.snapshot(savepoint).status).toBe(status);
    }
  });

  it('R62 persisting a claimed checkpoint takes it back from the job: it is no longer subsumed', () => {
    const job = new Job().register({ numRetained: 1 });
    job.complete();
    job.complete();
    restore(job, 2, 'CLAIM');
    expect(job.snapshot(2).claimMode).toBe('CLAIM');
    job.run({ type: 'PersistSnapshot', snapshotId: 2 });
    expect(job.snapshot(2).claimMode).toBeNull();
    job.complete();
    job.complete();
    expect(job.snapshot(2).status).toBe('COMPLETED');
  });

  it.each(['NO_CLAIM', 'LEGACY'] as const)(
    'R62 persisting a checkpoint restored in %s mode keeps its claim mode: only a claimed one is taken back',
    (claimMode) => {
      const job = new Job().register({ numRetained: 1 });
      job.complete();
      job.complete();
      restore(job, 2, claimMode);
      job.run({ type: 'PersistSnapshot', snapshotId: 2 });
      expect(job.snapshot(2)).toMatchObject({ persisted: true, claimMode });
      expect(snapshotView(job.snapshot(2)).claimMode).toBe(claimMode);
    },
  );

  it('R62 the id counter continues above the restored id (CheckpointCoordinator.restoreSavepoint: checkpointIdCounter.setCount)', () => {
    const job = new Job().register({ numRetained: 3 });
    const { reply } = job.run({
      type: 'RestoreSnapshot',
      externalPath: 's3://other-bucket/savepoints/savepoint-abcdef-0123456789ab',
      checkpointId: 500,
      claimMode: 'NO_CLAIM',
      allowNonRestoredState: true,
    });
    expect(reply).toMatchObject({ snapshotId: null, nextSnapshotId: 501 });
    expect(job.trigger()).toMatchObject({ accepted: true, snapshotId: 501 });
    expect(jobSummaryView(job.state).latestRestore).toMatchObject({
      snapshotId: null,
      checkpointId: 500,
      restorePath: 's3://other-bucket/savepoints/savepoint-abcdef-0123456789ab',
      allowNonRestoredState: true,
    });
    // An own, older snapshot leaves the counter where it is.
    job.complete();
    job.complete();
    expect(restore(job, 502, 'CLAIM').reply.nextSnapshotId).toBe(504);
  });

  it('R62 a restore aborts the previous run’s pending snapshots with CHECKPOINT_COORDINATOR_SUSPEND, not counted', () => {
    const job = new Job().register({ tolerableFailures: 0 });
    const done = job.complete();
    const pending = idOf(job.trigger());
    const savepoint = idOf(job.trigger('SAVEPOINT'));
    const { events, reply } = restore(job, done, 'CLAIM');
    expect(reply.aborted).toEqual([pending, savepoint]);
    expect(
      events.filter((e) => e.type === 'SnapshotFailed').map((e) => e.type === 'SnapshotFailed' && e.reason),
    ).toEqual(['CHECKPOINT_COORDINATOR_SUSPEND', 'CHECKPOINT_COORDINATOR_SUSPEND']);
    expect(job.types(events)).not.toContain('TolerableFailuresExceeded');
    expect(job.state.consecutiveFailures).toBe(0);
    expect(job.types(events).at(-1)).toBe('SnapshotRestored');
  });

  it('R62 refuses what Flink could not restore from, writing nothing', () => {
    const job = new Job().register();
    const done = job.complete();
    const pending = idOf(job.trigger());
    const before = job.log.length;
    const base = {
      type: 'RestoreSnapshot' as const,
      claimMode: 'CLAIM' as const,
      allowNonRestoredState: false,
    };
    expect(job.reject({ ...base })).toMatchObject({ code: 'INVALID', field: 'snapshotId' });
    expect(job.reject({ ...base, snapshotId: done, externalPath: '/data/x' })).toMatchObject({
      code: 'INVALID',
      rule: 'snapshot-or-external-path',
    });
    expect(job.reject({ ...base, snapshotId: done, checkpointId: 9 })).toMatchObject({
      code: 'INVALID',
      field: 'checkpointId',
    });
    expect(job.reject({ ...base, snapshotId: pending })).toMatchObject({
      code: 'CONFLICT',
      field: 'snapshotId',
    });
    expect(job.reject({ ...base, snapshotId: 99 })).toMatchObject({ code: 'NOT_FOUND' });
    job.run({ type: 'RequestDiscard', snapshotId: done, force: true });
    expect(job.reject({ ...base, snapshotId: done })).toMatchObject({ code: 'CONFLICT' });
    const ended = new Job().register();
    const last = ended.complete('SAVEPOINT');
    ended.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(ended.reject({ ...base, snapshotId: last })).toMatchObject({
      code: 'CONFLICT',
      rule: 'terminal-status',
    });
    // Only the forced discard wrote: it, and (R72) the checkpoint pending on it failed and cleaned up.
    expect(job.log.slice(before).map((e) => e.type)).toEqual([
      'SnapshotDiscardRequested',
      'SnapshotFailed',
      'SnapshotDiscardRequested',
    ]);
  });

  it('R62 each refusal names its field and rule, and says why word for word', () => {
    const job = new Job().register();
    const done = job.complete();
    const pending = idOf(job.trigger());
    const base = {
      type: 'RestoreSnapshot' as const,
      claimMode: 'CLAIM' as const,
      allowNonRestoredState: false,
    };
    const either = {
      code: 'INVALID',
      field: 'snapshotId',
      rule: 'snapshot-or-external-path',
      message: 'give exactly one of snapshotId (one of the job’s snapshots) or externalPath',
    };
    expect(job.reject({ ...base })).toMatchObject(either);
    expect(job.reject({ ...base, snapshotId: done, externalPath: '/data/x' })).toMatchObject(either);
    expect(job.reject({ ...base, snapshotId: done, checkpointId: 9 })).toMatchObject({
      code: 'INVALID',
      field: 'checkpointId',
      rule: 'external-path-only',
      message: 'checkpointId is the id of an external path’s snapshot; a snapshot of the job has its own',
    });
    expect(job.reject({ ...base, snapshotId: pending })).toMatchObject({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'status-completed',
      message: `cannot restore from snapshot ${pending}: it is PENDING, not COMPLETED`,
    });
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(job.reject({ ...base, snapshotId: done })).toMatchObject({
      code: 'CONFLICT',
      field: 'jobId',
      rule: 'terminal-status',
      message: 'job is CANCELED, a terminal status: Flink runs a restored job as a new job',
    });
  });

  it('R62 a restore’s event names only what the command gave: no snapshotId from an external path, no checkpointId from a snapshot', () => {
    const job = new Job().register();
    const done = job.complete();
    const fromSnapshot = restore(job, done, 'NO_CLAIM').events.at(-1)!;
    expect(fromSnapshot).toMatchObject({ type: 'SnapshotRestored', snapshotId: done });
    expect('checkpointId' in fromSnapshot).toBe(false);
    const fromPath = job
      .run({
        type: 'RestoreSnapshot',
        externalPath: '/data/sp/elsewhere',
        claimMode: 'NO_CLAIM',
        allowNonRestoredState: false,
      })
      .events.at(-1)!;
    expect(fromPath).toMatchObject({ type: 'SnapshotRestored', restorePath: '/data/sp/elsewhere' });
    expect('snapshotId' in fromPath).toBe(false);
    expect('checkpointId' in fromPath).toBe(false);
  });

  it('R62 restores replay to the same state and survive the aggregate codec', () => {
    const job = withPersistedCheckpoint();
    restore(job, 1, 'CLAIM');
    job.complete();
    job.run({
      type: 'RestoreSnapshot',
      externalPath: '/data/sp/elsewhere',
      checkpointId: 40,
      claimMode: 'LEGACY',
      allowNonRestoredState: false,
    });
    const replayed = fold(initialState(JOB), job.log);
    expect(replayed).toEqual(job.state);
    expect(decodeState(JSON.parse(JSON.stringify(encodeState(job.state))))).toEqual(job.state);
  });
});

describe('the first checkpoint after a NO_CLAIM restore (R63; RecoveryClaimMode.NO_CLAIM)', () => {
  it('R63 is FULL, even when INCREMENTAL is asked for, until a checkpoint completes', () => {
    const job = new Job().register({ numRetained: 3 });
    const savepoint = job.complete('SAVEPOINT');
    restore(job, savepoint, 'NO_CLAIM');
    job.run({
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: 'x1',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
      checkpointType: 'INCREMENTAL',
    });
    expect(job.snapshot(2).requestedCheckpointType).toBe('FULL');
    // A savepoint completing does not pay the debt; the failed checkpoint neither.
    job.complete('SAVEPOINT');
    job.run({ type: 'DeclineTask', snapshotId: 2, taskId: 'a' });
    const full = job.complete();
    expect(job.snapshot(full).requestedCheckpointType).toBe('FULL');
    const next = job.complete();
    expect(job.snapshot(next).requestedCheckpointType).toBe('INCREMENTAL');
  });

  it.each(['CLAIM', 'LEGACY'] as const)(
    'R63 a %s restore does not make the next checkpoint FULL',
    (claimMode) => {
      const job = new Job().register({ numRetained: 3 });
      const savepoint = job.complete('SAVEPOINT');
      restore(job, savepoint, claimMode);
      expect(job.snapshot(job.complete()).requestedCheckpointType).toBe('INCREMENTAL');
    },
  );
});

describe('the next checkpoint after the newest completed one is discarded', () => {
  it('R72 is FULL: the tasks would build an incremental one on the files the discard (a forced one) deletes', () => {
    const job = new Job().register({ numRetained: 3 });
    job.complete();
    const newest = job.complete();
    job.run({ type: 'RequestDiscard', snapshotId: newest, force: true });
    const full = job.complete();
    expect(job.snapshot(full).requestedCheckpointType).toBe('FULL');
    expect(job.snapshot(job.complete()).requestedCheckpointType).toBe('INCREMENTAL');
    // The newest checkpoint behind a newer savepoint (what a failover restores from: force too) owes one as well.
    const checkpoint = job.complete();
    job.complete('SAVEPOINT');
    job.run({ type: 'RequestDiscard', snapshotId: checkpoint, force: true });
    expect(job.snapshot(job.complete()).requestedCheckpointType).toBe('FULL');
  });

  it('an older checkpoint discarded, or one of a job that is not running, owes nothing', () => {
    const job = new Job().register({ numRetained: 3 });
    const older = job.complete();
    job.complete();
    job.run({ type: 'RequestDiscard', snapshotId: older, force: false });
    expect(job.snapshot(job.complete()).requestedCheckpointType).toBe('INCREMENTAL');
  });
});

describe('restore plans (R64)', () => {
  const plan = (job: Job, strategy: 'FAILOVER' | 'LATEST_STATE' | 'LATEST_SAVEPOINT', maxAgeMs?: number) =>
    restorePlan(job.state, strategy, job.now, maxAgeMs);

  it('R64 FAILOVER picks the newest completed checkpoint, never a newer savepoint (CheckpointCoordinator.completePendingCheckpoint: savepoints do not enter the store)', () => {
    const job = new Job().register({ numRetained: 3 });
    const checkpoint = job.complete();
    const savepoint = job.complete('SAVEPOINT');
    expect(plan(job, 'FAILOVER')).toMatchObject({ ok: true, snapshotId: checkpoint, claimMode: 'CLAIM' });
    expect(plan(job, 'LATEST_STATE')).toMatchObject({
      ok: true,
      snapshotId: savepoint,
      claimMode: 'NO_CLAIM',
    });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({
      ok: true,
      snapshotId: savepoint,
      claimMode: 'NO_CLAIM',
    });
    expect(plan(job, 'FAILOVER')).toMatchObject({ restorePath: job.snapshot(checkpoint).externalPath });
    // A persisted checkpoint is still a checkpoint in Flink's store, and now the user's: NO_CLAIM.
    job.run({ type: 'PersistSnapshot', snapshotId: checkpoint });
    expect(plan(job, 'FAILOVER')).toMatchObject({ snapshotId: checkpoint, claimMode: 'NO_CLAIM' });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({ snapshotId: savepoint });
  });

  it('R64 after a restore only the new run counts; with no checkpoint since, FAILOVER is the restored snapshot (restoreSavepoint adds it to the store)', () => {
    const job = new Job().register({ numRetained: 5 });
    const old = job.complete('SAVEPOINT');
    const abandoned = job.complete();
    job.complete('SAVEPOINT');
    restore(job, old, 'NO_CLAIM');
    for (const strategy of ['FAILOVER', 'LATEST_STATE', 'LATEST_SAVEPOINT'] as const) {
      expect(plan(job, strategy)).toMatchObject({ ok: true, snapshotId: old, claimMode: 'NO_CLAIM' });
    }
    expect(plan(job, 'FAILOVER').reason).toContain('restored from');
    const since = job.complete();
    expect(since).toBeGreaterThan(abandoned);
    expect(plan(job, 'FAILOVER')).toMatchObject({ snapshotId: since, claimMode: 'CLAIM' });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({ snapshotId: old });
  });

  it('R64 refuses with a reason: nothing to restore from, or a candidate older than maxAge', () => {
    const job = new Job().register();
    expect(plan(job, 'FAILOVER')).toMatchObject({ ok: false, refusal: 'NO_CANDIDATE' });
    const checkpoint = job.complete();
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({ ok: false, refusal: 'NO_CANDIDATE' });
    job.now = T0 + 10 * MINUTE;
    expect(plan(job, 'FAILOVER', 5 * MINUTE)).toMatchObject({
      ok: false,
      refusal: 'TOO_OLD',
      snapshotId: checkpoint,
    });
    expect(plan(job, 'FAILOVER', 5 * MINUTE).ok || plan(job, 'FAILOVER', 5 * MINUTE).reason).toMatch(
      /older than maxAge/,
    );
    expect(plan(job, 'FAILOVER', 20 * MINUTE)).toMatchObject({ ok: true, snapshotId: checkpoint });
  });

  it('R64 an external path the job restored from is the plan until a snapshot completes; with maxAge its age is unknown', () => {
    const job = new Job().register();
    job.run({
      type: 'RestoreSnapshot',
      externalPath: '/data/sp/savepoint-012345-abcdefabcdef',
      claimMode: 'LEGACY',
      allowNonRestoredState: false,
    });
    expect(plan(job, 'FAILOVER')).toMatchObject({
      ok: true,
      snapshotId: null,
      restorePath: '/data/sp/savepoint-012345-abcdefabcdef',
      claimMode: 'NO_CLAIM',
    });
    expect(plan(job, 'FAILOVER', MINUTE)).toMatchObject({ ok: false, refusal: 'AGE_UNKNOWN' });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({ ok: false, refusal: 'NO_CANDIDATE' });
  });

  it('R64 every plan and refusal says why in words, naming the run that counts after a restore', () => {
    const job = new Job().register({ numRetained: 5 });
    expect(plan(job, 'FAILOVER')).toMatchObject({
      reason:
        'the job has no completed snapshot (checkpoint, or snapshot the job restored from) to restore from',
    });
    expect(plan(job, 'LATEST_STATE')).toMatchObject({
      reason: 'the job has no completed snapshot to restore from',
    });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({
      reason: 'the job has no completed savepoint to restore from',
    });
    const checkpoint = job.complete();
    const savepoint = job.complete('SAVEPOINT');
    expect(plan(job, 'FAILOVER')).toMatchObject({
      reason: `the newest completed checkpoint, as a failover restores: snapshot ${checkpoint} (checkpoint)`,
    });
    expect(plan(job, 'LATEST_STATE')).toMatchObject({
      reason: `the newest completed snapshot: snapshot ${savepoint} (${describeSnapshot(job.snapshot(savepoint))})`,
    });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({
      reason: `the newest completed savepoint: snapshot ${savepoint} (${describeSnapshot(job.snapshot(savepoint))})`,
    });
    // Ages in whole seconds; a candidate exactly maxAge old is still young enough.
    job.now = job.snapshot(checkpoint).completedAt! + 600_000;
    expect(plan(job, 'FAILOVER', 300_000)).toMatchObject({
      ok: false,
      reason: `the newest completed checkpoint, as a failover restores, snapshot ${checkpoint}, completed 600 s ago: older than maxAge (300 s)`,
    });
    expect(plan(job, 'FAILOVER', 600_000)).toMatchObject({ ok: true, snapshotId: checkpoint });
    expect(plan(job, 'FAILOVER', 599_999)).toMatchObject({ ok: false, refusal: 'TOO_OLD' });

    // After a restore from the checkpoint: only the run since counts, and every reason says so.
    restore(job, checkpoint, 'NO_CLAIM');
    const note = `; only the run since the restore from snapshot ${checkpoint} counts`;
    expect(plan(job, 'FAILOVER')).toMatchObject({
      snapshotId: checkpoint,
      reason: `the snapshot the job restored from (no checkpoint completed since): snapshot ${checkpoint} (checkpoint)${note}`,
    });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({
      ok: false,
      reason: `the job has no completed savepoint to restore from${note}`,
    });
  });

  it('R64 a restored snapshot that is gone since is no candidate, and nothing else takes its place', () => {
    const job = new Job().register({ numRetained: 5 });
    const checkpoint = job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: checkpoint });
    restore(job, checkpoint, 'NO_CLAIM');
    job.run({ type: 'RequestDiscard', snapshotId: checkpoint, force: true });
    expect(job.snapshot(checkpoint).status).not.toBe('COMPLETED');
    for (const strategy of ['FAILOVER', 'LATEST_STATE', 'LATEST_SAVEPOINT'] as const) {
      expect(plan(job, strategy)).toMatchObject({ ok: false, refusal: 'NO_CANDIDATE', snapshotId: null });
    }
  });

  it('R64 an external path restored in CLAIM mode is planned in CLAIM mode, and named in the reasons', () => {
    const job = new Job().register();
    const path = '/data/sp/savepoint-012345-abcdefabcdef';
    job.run({
      type: 'RestoreSnapshot',
      externalPath: path,
      claimMode: 'CLAIM',
      allowNonRestoredState: false,
    });
    expect(plan(job, 'LATEST_STATE')).toMatchObject({
      ok: true,
      snapshotId: null,
      restorePath: path,
      claimMode: 'CLAIM',
      reason: 'the external path the job last restored from (nothing completed since)',
    });
    expect(plan(job, 'LATEST_STATE', 60_000)).toMatchObject({
      ok: false,
      refusal: 'AGE_UNKNOWN',
      reason: `the external path the job last restored from (nothing completed since): ${path}, whose age snapcat does not know`,
    });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({
      reason: `the job has no completed savepoint to restore from; only the run since the restore from ${path} counts`,
    });
  });

  it('R64, R61 a plan says when another job or Flink version took the chosen snapshot', () => {
    const job = new Job().register();
    job.run({
      type: 'ConfigureJob',
      name: 'job',
      tasks: ['a', 'b'],
      jobVersion: '1.4.0',
      flinkVersion: '1.18.1',
      checkpointing: job.state.checkpointing,
      storage: job.state.storage,
    });
    const savepoint = job.complete('SAVEPOINT');
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({ snapshotId: savepoint, versionWarning: null });
    job.run({
      type: 'ConfigureJob',
      name: 'job',
      tasks: ['a', 'b'],
      jobVersion: '1.5.0',
      checkpointing: job.state.checkpointing,
      storage: job.state.storage,
    });
    expect(plan(job, 'LATEST_SAVEPOINT')).toMatchObject({
      ok: true,
      versionWarning: 'taken by job version 1.4.0; the job is now 1.5.0',
    });
  });
});

describe('logs written before restores and stop-with-savepoint', () => {
  it('R62, R65 replay to the same catalog: nothing restored, no claim, every savepoint a plain SAVEPOINT', () => {
    const base = { jobId: JOB, occurredAt: '2026-01-01T00:00:00.000Z' };
    const path = `/data/sp/${JOB}/savepoint-012345-0123456789ab`;
    const old = [
      {
        type: 'JobRegistered',
        ...base,
        name: 'old',
        tasks: ['a'],
        status: 'RUNNING',
        checkpointing: {
          numRetained: 1,
          timeoutMs: 60_000,
          maxConcurrent: 1,
          minPauseMs: 0,
          tolerableFailures: 0,
          retention: 'NEVER_RETAIN_AFTER_TERMINATION',
        },
        storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
      },
      {
        type: 'SnapshotTriggered',
        ...base,
        snapshotId: 1,
        kind: 'SAVEPOINT',
        triggerType: 'MANUAL',
        triggerId: 'old-1',
        properties: { forced: true, ...RETAIN_ALL },
        formatType: 'CANONICAL',
        tasks: ['a'],
        deadline: '2026-01-01T00:01:00.000Z',
        externalPath: path,
      },
      { type: 'TaskAcknowledged', ...base, snapshotId: 1, taskId: 'a', stateSize: 5, stateHandles: [] },
      {
        type: 'SnapshotCompleted',
        ...base,
        snapshotId: 1,
        kind: 'SAVEPOINT',
        stateSize: 5,
        externalPath: path,
      },
    ].map((e) => Event.parse(e));
    const state = fold(initialState(JOB), old);
    expect(snapshotView(state.snapshots.get(1)!)).toMatchObject({
      status: 'COMPLETED',
      claimMode: null,
      savepointType: 'SAVEPOINT',
    });
    expect(jobSummaryView(state)).toMatchObject({ latestRestore: null, counts: { restored: 0 } });
    expect(restorePlan(state, 'LATEST_SAVEPOINT', Date.parse(base.occurredAt))).toMatchObject({
      ok: true,
      snapshotId: 1,
      claimMode: 'NO_CLAIM',
    });
    expect(restorePlan(state, 'FAILOVER', 0)).toMatchObject({ ok: false, refusal: 'NO_CANDIDATE' });
  });
});
