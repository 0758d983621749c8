import { Command, CommandRejected, decideBatch, initialState, type CommandOf } from '../src';
import { JOB, Job, T0 } from './harness';

// What each command answers, and how each rejection reads (code, field, rule, message): what the REST
// API turns into its responses and problems.

const rejection = (job: Job, input: Record<string, unknown>) => {
  const e = job.reject(input as never);
  return { code: e.code, field: e.field, rule: e.rule, message: e.message, name: e.name };
};

describe('rejections', () => {
  it('R3 a command on a job never configured: NOT_FOUND on jobId', () => {
    expect(rejection(new Job(), { type: 'ChangeJobStatus', status: 'FINISHED' })).toEqual({
      code: 'NOT_FOUND',
      field: 'jobId',
      rule: 'job-exists',
      message: `job ${JOB} is not registered`,
      name: 'CommandRejected',
    });
    expect(new Job().reject({ type: 'ChangeJobStatus', status: 'FINISHED' })).toBeInstanceOf(Error);
  });

  it('R3 a snapshot that does not exist: NOT_FOUND on snapshotId', () => {
    const job = new Job().register();
    for (const input of [
      { type: 'PersistSnapshot', snapshotId: 9 },
      { type: 'DeclineTask', snapshotId: 9, taskId: 'a' },
      { type: 'RequestDiscard', snapshotId: 9, force: false },
      { type: 'RecordDiscardCompleted', snapshotId: 9, bytesReclaimed: 0 },
      { type: 'RecordManifestWritten', snapshotId: 9, path: '/data/sp/x/snapcat-manifest.json' },
    ]) {
      expect(rejection(job, input as never)).toMatchObject({
        code: 'NOT_FOUND',
        field: 'snapshotId',
        rule: 'snapshot-exists',
        message: 'snapshot 9 does not exist',
      });
    }
  });

  it('R25, R37 a snapshot in the wrong status: CONFLICT naming the action, the status and the allowed ones', () => {
    const job = new Job().register();
    const pending = job.trigger();
    if (!pending.accepted) throw new Error('rejected');
    expect(rejection(job, { type: 'PersistSnapshot', snapshotId: pending.snapshotId })).toEqual({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'status-completed',
      message: `cannot persist snapshot ${pending.snapshotId}: it is PENDING, not COMPLETED`,
      name: 'CommandRejected',
    });
    expect(
      rejection(job, { type: 'RequestDiscard', snapshotId: pending.snapshotId, force: false }),
    ).toMatchObject({
      rule: 'status-completed',
      message: `cannot discard snapshot ${pending.snapshotId}: it is PENDING, not COMPLETED`,
    });
    const done = job.complete();
    expect(rejection(job, { type: 'DeclineTask', snapshotId: done, taskId: 'a' })).toMatchObject({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'status-pending',
      message: `cannot decline snapshot ${done}: it is COMPLETED, not PENDING`,
    });
  });

  it('R25 declining for a task that is not the snapshot’s: CONFLICT on taskId', () => {
    const job = new Job().register();
    const reply = job.trigger();
    if (!reply.accepted) throw new Error('rejected');
    expect(
      rejection(job, { type: 'DeclineTask', snapshotId: reply.snapshotId, taskId: 'zzz' }),
    ).toMatchObject({
      code: 'CONFLICT',
      field: 'taskId',
      rule: 'expected-task',
      message: `task zzz is not part of snapshot ${reply.snapshotId}`,
    });
  });

  it('R13 a trigger id reused for another kind: CONFLICT on triggerId; for the same kind: the same snapshot', () => {
    const job = new Job().register();
    const first = job.run({
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: 'once',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    }).reply;
    expect(first).toEqual({
      accepted: true,
      snapshotId: 1,
      triggerId: 'once',
      status: 'PENDING',
      duplicate: false,
    });
    const again = job.run({
      type: 'TriggerSnapshot',
      kind: 'CHECKPOINT',
      triggerId: 'once',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    });
    expect(again.events).toEqual([]);
    expect(again.reply).toEqual({
      accepted: true,
      snapshotId: 1,
      triggerId: 'once',
      status: 'PENDING',
      duplicate: true,
    });
    expect(
      rejection(job, {
        type: 'TriggerSnapshot',
        kind: 'SAVEPOINT',
        triggerId: 'once',
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
      }),
    ).toMatchObject({
      code: 'CONFLICT',
      field: 'triggerId',
      rule: 'trigger-id-unique',
      message: 'triggerId once was already used for CHECKPOINT 1',
    });
  });

  it('R45 a status change of a terminated job: CONFLICT on status', () => {
    const job = new Job().register();
    job.run({ type: 'ChangeJobStatus', status: 'FINISHED' });
    expect(rejection(job, { type: 'ChangeJobStatus', status: 'RUNNING' })).toEqual({
      code: 'CONFLICT',
      field: 'status',
      rule: 'terminal-status',
      message: 'job is FINISHED, a terminal status',
      name: 'CommandRejected',
    });
  });

  it('R41 discarding the latest completed snapshot of a running job needs force', () => {
    const job = new Job().register();
    const id = job.complete();
    expect(rejection(job, { type: 'RequestDiscard', snapshotId: id, force: false })).toEqual({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'latest-completed-retained',
      message: `snapshot ${id} is the latest completed snapshot of a job that has not terminated (RUNNING); set force to discard it`,
      name: 'CommandRejected',
    });
    expect(job.run({ type: 'RequestDiscard', snapshotId: id, force: true }).reply).toEqual({
      snapshotStatus: 'DISCARDING',
      changed: true,
    });
  });

  it('R41 the latest completed snapshot of a job that has terminated is discarded without force', () => {
    const job = new Job().register({ retention: 'RETAIN_ON_CANCELLATION' });
    const id = job.complete();
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(job.run({ type: 'RequestDiscard', snapshotId: id, force: false }).reply).toEqual({
      snapshotStatus: 'DISCARDING',
      changed: true,
    });
  });

  it('R40 a discard the storage refused for good is ended by a forced discard (nothing reclaimed); one a retry may mend is not', () => {
    const job = new Job().register();
    const [refused, retried] = [job.complete(), job.complete()];
    job.complete(); // the latest, so the others are discarded without force
    for (const id of [refused, retried]) job.run({ type: 'RequestDiscard', snapshotId: id, force: false });
    job.run({
      type: 'RecordDiscardFailed',
      snapshotId: refused,
      error: 'outside the roots',
      retryable: false,
    });
    job.run({ type: 'RecordDiscardFailed', snapshotId: retried, error: 'io', retryable: true });
    // Without force, as before: nothing changes.
    expect(job.run({ type: 'RequestDiscard', snapshotId: refused, force: false })).toEqual({
      events: [],
      reply: { snapshotStatus: 'DISCARDING', changed: false },
    });
    const forced = job.run({ type: 'RequestDiscard', snapshotId: refused, force: true });
    expect(forced.reply).toEqual({ snapshotStatus: 'DISCARDED', changed: true });
    expect(forced.events).toEqual([
      expect.objectContaining({ type: 'SnapshotDiscarded', snapshotId: refused, bytesReclaimed: 0 }),
    ]);
    expect(job.snapshot(refused).discard).toMatchObject({ state: 'DONE', bytesReclaimed: 0 });
    // A failure a retry may mend is the workers' to retry: force does not end it.
    expect(job.run({ type: 'RequestDiscard', snapshotId: retried, force: true }).reply).toEqual({
      snapshotStatus: 'DISCARDING',
      changed: false,
    });
  });

  it('R40 discard results: none requested, or recorded as done already', () => {
    const job = new Job().register();
    const id = job.complete();
    expect(
      rejection(job, { type: 'RecordDiscardFailed', snapshotId: id, error: 'x', retryable: true }),
    ).toEqual({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'discard-requested',
      message: `snapshot ${id} has no discard requested`,
      name: 'CommandRejected',
    });
    expect(
      rejection(job, { type: 'RecordDiscardCompleted', snapshotId: id, bytesReclaimed: 1 }),
    ).toMatchObject({
      rule: 'discard-requested',
    });
    job.run({ type: 'RequestDiscard', snapshotId: id, force: true });
    expect(
      job.run({ type: 'RecordDiscardFailed', snapshotId: id, error: 'x', retryable: true }).reply,
    ).toEqual({
      snapshotStatus: 'DISCARDING',
    });
    expect(job.run({ type: 'RecordDiscardCompleted', snapshotId: id, bytesReclaimed: 1 }).reply).toEqual({
      snapshotStatus: 'DISCARDED',
      changed: true,
    });
    const again = job.run({ type: 'RecordDiscardCompleted', snapshotId: id, bytesReclaimed: 1 });
    expect(again).toEqual({ events: [], reply: { snapshotStatus: 'DISCARDED', changed: false } });
    expect(
      rejection(job, { type: 'RecordDiscardFailed', snapshotId: id, error: 'x', retryable: true }),
    ).toEqual({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'discard-pending',
      message: 'the discard already succeeded',
      name: 'CommandRejected',
    });
  });

  it('R39 a manifest of a snapshot that is not persisted: CONFLICT; the same path again changes nothing', () => {
    const job = new Job().register();
    const id = job.complete();
    expect(rejection(job, { type: 'RecordManifestWritten', snapshotId: id, path: '/data/sp/m' })).toEqual({
      code: 'CONFLICT',
      field: 'snapshotId',
      rule: 'persisted',
      message: `snapshot ${id} is not persisted`,
      name: 'CommandRejected',
    });
    job.run({ type: 'PersistSnapshot', snapshotId: id });
    const first = job.run({ type: 'RecordManifestWritten', snapshotId: id, path: '/data/sp/m' });
    expect(first.reply).toEqual({ changed: true });
    expect(first.events).toEqual([
      expect.objectContaining({ type: 'SnapshotManifestWritten', path: '/data/sp/m' }),
    ]);
    expect(job.run({ type: 'RecordManifestWritten', snapshotId: id, path: '/data/sp/m' })).toEqual({
      events: [],
      reply: { changed: false },
    });
    expect(job.run({ type: 'RecordManifestWritten', snapshotId: id, path: '/data/sp/n' }).reply).toEqual({
      changed: true,
    });
  });
});

describe('replies', () => {
  it('R6 ConfigureJob: created once; changed when the configuration or the status changes', () => {
    const job = new Job();
    const base = {
      type: 'ConfigureJob' as const,
      name: 'job',
      tasks: ['a', 'b'],
      checkpointing: (
        Command.parse({
          type: 'ConfigureJob',
          jobId: JOB,
          name: 'x',
          tasks: ['a'],
          checkpointing: {},
          storage: { checkpointDir: '/c', savepointDir: '/s' },
        }) as CommandOf<'ConfigureJob'>
      ).checkpointing,
      storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
    };
    expect(job.run(base).reply).toEqual({ created: true, changed: true });
    expect(job.run(base)).toEqual({ events: [], reply: { created: false, changed: false } });
    expect(job.run({ ...base, status: 'RUNNING' })).toEqual({
      events: [],
      reply: { created: false, changed: false },
    });
    const renamed = job.run({ ...base, name: 'renamed' });
    expect(renamed.reply).toEqual({ created: false, changed: true });
    expect(job.types(renamed.events)).toEqual(['JobReconfigured']);
    for (const change of [
      { tasks: ['a'] },
      { checkpointing: { ...base.checkpointing, numRetained: 7 } },
      { storage: { checkpointDir: '/other', savepointDir: '/data/sp' } },
    ]) {
      const changed = job.run({ ...base, name: 'renamed', ...change });
      expect(changed.reply).toEqual({ created: false, changed: true });
      expect(job.types(changed.events)).toEqual(['JobReconfigured']);
      job.run({ ...base, name: 'renamed' });
    }
    const suspended = job.run({ ...base, name: 'renamed', status: 'SUSPENDED' });
    expect(suspended.reply).toEqual({ created: false, changed: true });
    expect(job.types(suspended.events)).toEqual(['JobStatusChanged']);
    // A new job takes the status given, RUNNING without one.
    const other = new Job();
    other.run({ ...base, status: 'SUSPENDED' });
    expect(other.state.status).toBe('SUSPENDED');
  });

  it('R45 ChangeJobStatus: unchanged says so; back to RUNNING writes only the change', () => {
    const job = new Job().register();
    expect(job.run({ type: 'ChangeJobStatus', status: 'RUNNING' })).toEqual({
      events: [],
      reply: { status: 'RUNNING', changed: false },
    });
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    const resumed = job.run({ type: 'ChangeJobStatus', status: 'RUNNING' });
    expect(resumed.reply).toEqual({ status: 'RUNNING', changed: true });
    expect(resumed.events).toEqual([
      expect.objectContaining({ type: 'JobStatusChanged', from: 'SUSPENDED', to: 'RUNNING' }),
    ]);
  });

  it('R30, R47 leaving RUNNING aborts the pending snapshots in id order; SUSPENDED discards nothing completed', () => {
    const job = new Job().register({ maxConcurrent: 5, numRetained: 3 });
    const done = job.complete();
    job.trigger();
    job.trigger();
    job.trigger('SAVEPOINT');
    const suspended = job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    expect(suspended.reply).toEqual({ status: 'SUSPENDED', changed: true });
    const failed = suspended.events.flatMap((e) =>
      e.type === 'SnapshotFailed' ? [[e.snapshotId, e.reason]] : [],
    );
    expect(failed).toEqual([
      [2, 'CHECKPOINT_COORDINATOR_SUSPEND'],
      [3, 'CHECKPOINT_COORDINATOR_SUSPEND'],
      [4, 'CHECKPOINT_COORDINATOR_SUSPEND'],
    ]);
    expect(job.snapshot(done).status).toBe('COMPLETED');
    const discarded = suspended.events.flatMap((e) =>
      e.type === 'SnapshotDiscardRequested' ? [e.snapshotId] : [],
    );
    expect(discarded).toEqual([2, 3, 4]);
    job.run({ type: 'ChangeJobStatus', status: 'RUNNING' });
    job.trigger();
    const canceled = job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(canceled.reply).toEqual({ status: 'CANCELED', changed: true });
    expect(canceled.events.find((e) => e.type === 'SnapshotFailed')).toMatchObject({
      reason: 'CHECKPOINT_COORDINATOR_SHUTDOWN',
    });
  });

  it('R4 expired snapshots: the reply of ExpireOverdue lists them in id order, and any command expires them first', () => {
    const job = new Job().register({ maxConcurrent: 5, timeoutMs: 1000 });
    job.trigger();
    job.now += 500;
    job.trigger();
    job.trigger();
    expect(job.run({ type: 'ExpireOverdue' })).toEqual({ events: [], reply: { expired: [] } });
    job.now += 2000;
    const expired = job.run({ type: 'ExpireOverdue' });
    expect(expired.reply).toEqual({ expired: [1, 2, 3] });
    expect(expired.events.filter((e) => e.type === 'SnapshotFailed').map((e) => e.snapshotId)).toEqual([
      1, 2, 3,
    ]);
    // A deadline exactly now has passed.
    job.trigger();
    job.now += 1000;
    expect(job.run({ type: 'ExpireOverdue' }).reply).toEqual({ expired: [4] });
  });

  it('R5 a batch: each outcome carries its own events; a rejected command only the expirations it triggered', () => {
    const job = new Job().register({ timeoutMs: 1000, tolerableFailures: 5 });
    job.trigger();
    const state = job.state;
    const command = (input: Record<string, unknown>) => Command.parse({ ...input, jobId: JOB });
    const batch = decideBatch(
      state,
      [
        command({ type: 'PersistSnapshot', snapshotId: 1 }),
        command({ type: 'AcknowledgeTask', snapshotId: 1, taskId: 'a', stateSize: 0, stateHandles: [] }),
      ],
      T0 + 5000,
    );
    const [rejected, acked] = batch.outcomes;
    expect(rejected!.ok).toBe(false);
    expect(rejected!.events.map((e) => e.type)).toEqual(['SnapshotFailed', 'SnapshotDiscardRequested']);
    expect(acked).toMatchObject({
      ok: true,
      events: [expect.objectContaining({ type: 'StrayAcknowledgementReceived' })],
    });
    expect(acked!.events).toHaveLength(1);
    expect(batch.events).toHaveLength(3);
    // A batch on a job not registered: every command but ConfigureJob is refused, the configure applies.
    const fresh = decideBatch(
      initialState(JOB),
      [
        command({ type: 'ExpireOverdue' }),
        command({
          type: 'ConfigureJob',
          name: 'n',
          tasks: ['a'],
          checkpointing: {},
          storage: { checkpointDir: '/c', savepointDir: '/s' },
        }),
      ],
      T0,
    );
    expect(fresh.outcomes.map((o) => o.ok)).toEqual([false, true]);
    expect(fresh.outcomes[0]).toMatchObject({ ok: false, events: [] });
    expect((fresh.outcomes[0] as { error: CommandRejected }).error.rule).toBe('job-exists');
  });

  it('R52 savepoint schedules: set when different, removed when there is one', () => {
    const job = new Job().register();
    expect(job.run({ type: 'RemoveSavepointSchedule' })).toEqual({ events: [], reply: { changed: false } });
    const schedule = { every: 'PT1M' };
    const set = job.run({ type: 'SetSavepointSchedule', schedule });
    expect(set.reply).toEqual({ changed: true });
    expect(job.types(set.events)).toEqual(['SavepointScheduleSet']);
    expect(job.run({ type: 'SetSavepointSchedule', schedule })).toEqual({
      events: [],
      reply: { changed: false },
    });
    expect(job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT2M' } }).reply).toEqual({
      changed: true,
    });
    const removed = job.run({ type: 'RemoveSavepointSchedule' });
    expect(removed.reply).toEqual({ changed: true });
    expect(job.types(removed.events)).toEqual(['SavepointScheduleRemoved']);
    expect(job.state.schedule).toBeNull();
  });

  it('R36, R37, R57 persist: a savepoint is its own path, a persisted checkpoint its savepoint path, unchanged', () => {
    const job = new Job().register({ numRetained: 3 });
    const savepoint = job.complete('SAVEPOINT');
    const own = job.snapshot(savepoint).externalPath;
    expect(job.run({ type: 'PersistSnapshot', snapshotId: savepoint })).toEqual({
      events: [],
      reply: { savepointPath: own, restorePath: own, changed: false },
    });
    const checkpoint = job.complete();
    const restorePath = `/data/chk/${JOB}/chk-${checkpoint}`;
    const persisted = job.run({ type: 'PersistSnapshot', snapshotId: checkpoint });
    expect(persisted.reply).toEqual({
      savepointPath: job.snapshot(checkpoint).persistedPath,
      restorePath,
      changed: true,
    });
    // Issue 16: Flink's layout, savepoint-<first 6 of the jobId>-<12 hex> (was <dir>/<jobId>/savepoint-<id>-…).
    expect(persisted.reply.savepointPath).toMatch(
      new RegExp(`^/data/sp/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`),
    );
    expect(job.run({ type: 'PersistSnapshot', snapshotId: checkpoint })).toEqual({
      events: [],
      reply: { savepointPath: persisted.reply.savepointPath, restorePath, changed: false },
    });
    const elsewhere = job.complete();
    expect(
      job.run({ type: 'PersistSnapshot', snapshotId: elsewhere, targetDirectory: '/other/' }).reply
        .savepointPath,
    ).toMatch(new RegExp(`^/other/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`));
  });

  it('R40 discard: twice changes nothing the second time; the reason is kept only when given', () => {
    const job = new Job().register({ numRetained: 3 });
    const a = job.complete();
    const b = job.complete();
    job.complete();
    const first = job.run({
      type: 'RequestDiscard',
      snapshotId: a,
      reason: 'no longer needed',
      force: false,
    });
    expect(first.reply).toEqual({ snapshotStatus: 'DISCARDING', changed: true });
    expect(first.events[0]).toMatchObject({
      type: 'SnapshotDiscardRequested',
      cause: 'USER',
      reason: 'no longer needed',
    });
    expect(job.snapshot(a).discard).toMatchObject({ cause: 'USER', reason: 'no longer needed' });
    expect(job.run({ type: 'RequestDiscard', snapshotId: a, force: false })).toEqual({
      events: [],
      reply: { snapshotStatus: 'DISCARDING', changed: false },
    });
    job.run({ type: 'RecordDiscardCompleted', snapshotId: a, bytesReclaimed: 0 });
    expect(job.run({ type: 'RequestDiscard', snapshotId: a, force: false })).toEqual({
      events: [],
      reply: { snapshotStatus: 'DISCARDED', changed: false },
    });
    const second = job.run({ type: 'RequestDiscard', snapshotId: b, force: false });
    expect(second.events[0]).not.toHaveProperty('reason');
    expect(job.snapshot(b).discard).not.toHaveProperty('reason');
  });

  it('R24 a failure records its task and message only when there are any', () => {
    const job = new Job().register({ maxConcurrent: 5, timeoutMs: 1000, tolerableFailures: 10 });
    const declined = job.trigger();
    const quiet = job.trigger();
    const expiring = job.trigger();
    if (!declined.accepted || !quiet.accepted || !expiring.accepted) throw new Error('rejected');
    const withReason = job.run({
      type: 'DeclineTask',
      snapshotId: declined.snapshotId,
      taskId: 'a',
      reason: 'disk full',
    });
    expect(withReason.events[0]).toMatchObject({ type: 'SnapshotFailed', taskId: 'a', message: 'disk full' });
    expect(job.snapshot(declined.snapshotId)).toMatchObject({ declinedBy: 'a', failureMessage: 'disk full' });
    const noReason = job.run({ type: 'DeclineTask', snapshotId: quiet.snapshotId, taskId: 'b' });
    expect(noReason.events[0]).toMatchObject({ taskId: 'b' });
    expect(noReason.events[0]).not.toHaveProperty('message');
    expect(job.snapshot(quiet.snapshotId).failureMessage).toBeUndefined();
    job.now += 5000;
    const expired = job.run({ type: 'ExpireOverdue' }).events[0]!;
    expect(expired).toMatchObject({ type: 'SnapshotFailed', reason: 'CHECKPOINT_EXPIRED' });
    expect(expired).not.toHaveProperty('taskId');
    expect(expired).not.toHaveProperty('message');
    expect(job.snapshot(expiring.snapshotId).declinedBy).toBeUndefined();
    expect(job.state.counts).toEqual({ completed: 0, failed: 3, discarded: 0, compacted: 0 });
  });

  it('R22 completing a checkpoint fails only the older pending checkpoints (not savepoints, not newer ones)', () => {
    const job = new Job().register({ maxConcurrent: 10, numRetained: 5 });
    const older = job.trigger();
    const savepoint = job.trigger('SAVEPOINT');
    const completing = job.trigger();
    const newer = job.trigger();
    if (!older.accepted || !savepoint.accepted || !completing.accepted || !newer.accepted)
      throw new Error('rejected');
    job.ack(completing.snapshotId, 'a');
    const { events } = job.run({
      type: 'AcknowledgeTask',
      snapshotId: completing.snapshotId,
      taskId: 'b',
      stateSize: 1,
      stateHandles: [],
    });
    expect(events.flatMap((e) => (e.type === 'SnapshotFailed' ? [[e.snapshotId, e.reason]] : []))).toEqual([
      [older.snapshotId, 'CHECKPOINT_SUBSUMED'],
    ]);
    expect(job.snapshot(savepoint.snapshotId).status).toBe('PENDING');
    expect(job.snapshot(newer.snapshotId).status).toBe('PENDING');
  });

  it('R17, R18 acknowledgements answer their result and the snapshot’s status', () => {
    const job = new Job().register();
    const reply = job.trigger();
    if (!reply.accepted) throw new Error('rejected');
    expect(job.ack(reply.snapshotId, 'a')).toEqual({ result: 'SUCCESS', snapshotStatus: 'PENDING' });
    expect(job.ack(reply.snapshotId, 'a')).toEqual({ result: 'DUPLICATE', snapshotStatus: 'PENDING' });
    expect(job.ack(reply.snapshotId, 'b')).toEqual({ result: 'SUCCESS', snapshotStatus: 'COMPLETED' });
    expect(job.ack(reply.snapshotId, 'b')).toEqual({ result: 'DUPLICATE', snapshotStatus: 'COMPLETED' });
    expect(job.ack(reply.snapshotId, 'zz')).toEqual({ result: 'UNKNOWN', snapshotStatus: 'COMPLETED' });
    expect(job.ack(99, 'a')).toEqual({ result: 'UNKNOWN', snapshotStatus: null });
  });

  it('R20 a stray acknowledgement without handles to clean up has no cleanup id; one with handles has the next', () => {
    const job = new Job().register();
    const none = job.run({
      type: 'AcknowledgeTask',
      snapshotId: 42,
      taskId: 'a',
      stateSize: 0,
      stateHandles: [],
    });
    expect(none.events[0]).toMatchObject({
      type: 'StrayAcknowledgementReceived',
      result: 'UNKNOWN',
      cleanup: [],
    });
    expect(none.events[0]).not.toHaveProperty('cleanupId');
    const some = job.run({
      type: 'AcknowledgeTask',
      snapshotId: 43,
      taskId: 'a',
      stateSize: 1,
      stateHandles: [{ path: '/data/chk/stray/x', sizeBytes: 1 }],
    });
    expect(some.events[0]).toMatchObject({
      cleanup: [{ path: '/data/chk/stray/x', sizeBytes: 1 }],
      cleanupId: 1,
    });
    expect(job.run({ type: 'RecordStrayCleanupCompleted', cleanupId: 7, bytesReclaimed: 0 })).toEqual({
      events: [],
      reply: { changed: false },
    });
    const done = job.run({ type: 'RecordStrayCleanupCompleted', cleanupId: 1, bytesReclaimed: 1 });
    expect(done.reply).toEqual({ changed: true });
    expect(done.events).toEqual([
      expect.objectContaining({ type: 'StrayStateDeleted', cleanupId: 1, bytesReclaimed: 1 }),
    ]);
    expect(job.run({ type: 'RecordStrayCleanupCompleted', cleanupId: 1, bytesReclaimed: 1 }).reply).toEqual({
      changed: false,
    });
  });

  it('R21 state a discard or a stray cleanup is deleting fails the acknowledgement that reports it, saying by whom', () => {
    const job = new Job().register({ numRetained: 3 });
    const old = job.complete();
    job.complete();
    job.run({ type: 'RequestDiscard', snapshotId: old, force: false });
    const pending = job.trigger();
    if (!pending.accepted) throw new Error('rejected');
    const byDiscard = job.run({
      type: 'AcknowledgeTask',
      snapshotId: pending.snapshotId,
      taskId: 'a',
      stateSize: 10,
      stateHandles: [{ path: `/data/chk/${JOB}/chk-${old}/a`, sizeBytes: 10 }],
    });
    expect(byDiscard.reply).toEqual({ result: 'DISCARDED', snapshotStatus: 'FAILED' });
    expect(byDiscard.events[0]).toMatchObject({
      type: 'SnapshotFailed',
      reason: 'CHECKPOINT_DECLINED',
      taskId: 'a',
      message: `state handle /data/chk/${JOB}/chk-${old}/a is being deleted by the discard of snapshot ${old}`,
    });
    job.run({
      type: 'AcknowledgeTask',
      snapshotId: 77,
      taskId: 'a',
      stateSize: 1,
      stateHandles: [{ path: '/data/stray/f', sizeBytes: 1 }],
    });
    const next = job.trigger();
    if (!next.accepted) throw new Error('rejected');
    const byCleanup = job.run({
      type: 'AcknowledgeTask',
      snapshotId: next.snapshotId,
      taskId: 'b',
      stateSize: 1,
      stateHandles: [{ path: '/data/stray/f', sizeBytes: 1 }],
    });
    expect(byCleanup.events[0]).toMatchObject({
      message: 'state handle /data/stray/f is being deleted by stray cleanup 2',
    });
  });
});
