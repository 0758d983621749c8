import fc from 'fast-check';
import {
  fold,
  initialState,
  obligationKey,
  obligations,
  obligationsOfEvent,
  asksWhetherManaged,
  retentionDue,
  discardUnfinished,
  disposedByFlink,
  snapshotObligations,
  takenInFlink,
  type DiscardState,
  type Event,
  type JobState,
} from '../src';
import { JOB, Job, MANAGED_SOURCE, T0 } from './harness';
import { history, runHistory } from './histories';
import { propertyRuns } from './property-runs';

const keys = (state: JobState) => obligations(state).map(obligationKey).sort();

const managed = (): Job => new Job().registerManaged();

describe('obligations(state): what the workers owe a job', () => {
  it('a job not registered owes nothing; a registered one its retention sweep', () => {
    expect(obligations(new Job().state)).toEqual([]);
    expect(obligations(new Job().register().state)).toEqual([{ kind: 'retention' }]);
  });

  it('a pending snapshot owes its timeout at its deadline, until it ends', () => {
    const job = new Job().register({ tasks: ['a'], timeoutMs: 5000 });
    const { snapshotId } = job.trigger() as { snapshotId: number };
    expect(obligations(job.state)).toContainEqual({ kind: 'timeout', snapshotId, deadline: T0 + 5000 });
    job.ack(snapshotId, 'a');
    expect(keys(job.state)).toEqual(['retention']);
  });

  it('a persisted snapshot owes its manifest until it is written or the snapshot discarded', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 3 });
    const first = job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: first });
    expect(keys(job.state)).toEqual([`manifest:${first}`, 'retention']);
    const path = `${job.snapshot(first).persistedPath}/snapcat-manifest.json`;
    job.run({ type: 'RecordManifestWritten', snapshotId: first, path });
    expect(keys(job.state)).toEqual(['retention']);

    const second = job.complete();
    job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: second });
    job.run({ type: 'RequestDiscard', snapshotId: second, force: false });
    // Being discarded, it owes its deletion, no manifest (the worker would skip it).
    expect(keys(job.state)).toEqual([`discard:${second}`, 'retention']);
  });

  it('a discard is owed while requested or failed retryably; not once done or refused', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 5 });
    const [a, b, c] = [job.complete(), job.complete(), job.complete()];
    job.complete();
    for (const id of [a, b, c]) job.run({ type: 'RequestDiscard', snapshotId: id, force: false });
    job.run({ type: 'RecordDiscardFailed', snapshotId: a, error: 'io', retryable: true });
    job.run({ type: 'RecordDiscardFailed', snapshotId: b, error: 'outside the roots', retryable: false });
    job.run({ type: 'RecordDiscardCompleted', snapshotId: c, bytesReclaimed: 1 });
    expect(keys(job.state)).toEqual([`discard:${a}`, 'retention']);
  });

  it('a schedule is owed while set', () => {
    const job = new Job().register();
    const schedule = { every: 'PT1M' };
    job.run({ type: 'SetSavepointSchedule', schedule });
    expect(obligations(job.state)).toContainEqual({ kind: 'schedule', schedule });
    job.run({ type: 'RemoveSavepointSchedule' });
    expect(keys(job.state)).toEqual(['retention']);
  });

  it('a stray acknowledgement’s cleanup is owed until recorded done', () => {
    const job = new Job().register({ tasks: ['a'] });
    job.ack(99, 'a');
    const [cleanupId] = [...job.state.strayCleanups.keys()];
    expect(keys(job.state)).toEqual(['retention', `stray:${cleanupId}`]);
    job.run({ type: 'RecordStrayCleanupCompleted', cleanupId: cleanupId!, bytesReclaimed: 10 });
    expect(keys(job.state)).toEqual(['retention']);
  });

  it('R67 a managed job owes its mirror while running, its savepoints to Flink, and disposals, not deletions', () => {
    const job = managed();
    const reply = job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 't-1',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    }).reply as { snapshotId: number };
    const id = reply.snapshotId;
    expect(keys(job.state)).toEqual([`flinkSavepoint:${id}`, 'mirror', 'retention', `timeout:${id}`]);
    const location = '/data/sp/done-1';
    job.run({ type: 'RecordFlinkSavepoint', snapshotId: id, outcome: { status: 'COMPLETED', location } });
    job.run({ type: 'RequestDiscard', snapshotId: id, force: true });
    expect(obligations(job.state)).toContainEqual({ kind: 'dispose', snapshotId: id, path: location });
    expect(keys(job.state)).toEqual([`dispose:${id}`, 'mirror', 'retention']);
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    expect(keys(job.state)).not.toContain('mirror');
  });
});

describe('retentionDue: the sweep sends ApplyRetention only where it would discard', () => {
  it('due once a periodic savepoint outlived the schedule’s maxAge', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 3 });
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1S', retention: { maxAge: 'PT3S' } } });
    job.complete('SAVEPOINT', 'PERIODIC');
    job.complete('SAVEPOINT', 'PERIODIC');
    job.complete('CHECKPOINT'); // the latest completed is kept while running (R34): a checkpoint here
    expect(retentionDue(job.state, job.now)).toBe(false);
    job.now += 5000;
    expect(retentionDue(job.state, job.now)).toBe(true);
    job.run({ type: 'ApplyRetention' });
    expect(retentionDue(job.state, job.now)).toBe(false);
    expect(retentionDue(new Job().state, job.now)).toBe(false); // not registered: rejected, not due
  });
});

describe('obligationsOfEvent: what one event adds (the live path)', () => {
  it('asks whether the job is managed only where the answer matters', () => {
    const job = new Job().register({ tasks: ['a'] });
    job.trigger('CHECKPOINT');
    job.trigger('SAVEPOINT');
    const [checkpoint, savepoint] = job.log.filter((e) => e.type === 'SnapshotTriggered');
    expect(asksWhetherManaged(checkpoint!)).toBe(false);
    expect(asksWhetherManaged(savepoint!)).toBe(true);
    expect(obligationsOfEvent(savepoint!, true).owed.map(obligationKey)).toEqual([
      'timeout:2',
      'flinkSavepoint:2',
    ]);
    expect(obligationsOfEvent(savepoint!, false).owed.map(obligationKey)).toEqual(['timeout:2']);
  });

  it('a removed schedule and a terminal status end what was standing', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1M' } });
    job.run({ type: 'RemoveSavepointSchedule' });
    job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    const ended = job.log.flatMap((e) => obligationsOfEvent(e).ended);
    expect(ended).toEqual(['schedule', 'mirror']);
  });

  it('R67 a managed job Flink had ended when it was registered owes one read of its history, no mirror that lasts', () => {
    for (const status of ['FINISHED', 'CANCELED', 'FAILED'] as const) {
      const registered = managed().log[0]!;
      if (registered.type !== 'JobRegistered') throw new Error('not registered');
      const ended = { ...registered, status };
      expect(obligationsOfEvent(ended).owed.map(obligationKey)).toEqual(['retention', 'lastMirror']);
      expect(keys(fold(initialState(JOB), [ended]))).toEqual(['retention']);
    }
    expect(obligationsOfEvent(managed().log[0]!).owed.map(obligationKey)).toEqual(['retention', 'mirror']);
  });

  it('R67 a managed job’s end owes one more read of its history; a job given a source as Flink reports it ended (one command) gets it, an unmanaged job’s end owes nothing', () => {
    const job = new Job().register();
    const before = job.log.length;
    const { checkpointing, storage } = job.state;
    job.run({
      type: 'ConfigureJob',
      name: 'job',
      tasks: [],
      checkpointing,
      storage,
      source: MANAGED_SOURCE,
      status: 'FINISHED',
    });
    const events = job.log.slice(before);
    expect(events.map((e) => e.type)).toEqual(['JobReconfigured', 'JobStatusChanged']);
    const changes = events.map((e) => obligationsOfEvent(e, asksWhetherManaged(e)));
    expect(changes.flatMap((c) => c.owed.map(obligationKey))).toEqual(['mirror', 'lastMirror']);
    expect(changes.flatMap((c) => c.ended)).toEqual(['mirror']);
    const unmanaged = new Job().register();
    unmanaged.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
    const ended = unmanaged.log.at(-1)!;
    expect(obligationsOfEvent(ended, false)).toEqual({ owed: [], ended: ['mirror'] });
  });

  it('a managed job’s discard is a disposal only where the decider gave it a location', () => {
    const job = managed();
    job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 't',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    });
    job.run({ type: 'RecordFlinkSavepoint', snapshotId: 1, outcome: { status: 'FAILED', cause: 'no' } });
    const requested = job.log.filter((e) => e.type === 'SnapshotDiscardRequested');
    expect(requested).toHaveLength(1);
    expect(obligationsOfEvent(requested[0]!, true)).toEqual({ owed: [], ended: [] });
  });
});

/**
 * Replays a history event by event: what each event adds to `obligations` the live path enqueues for it,
 * and it enqueues nothing the state after it does not owe. So a reconcile after any history owes exactly
 * what the live path accumulated, less what was done since.
 */
function checkLiveAgainstReconcile(log: Event[]): number {
  let state = initialState(JOB);
  const accumulated = new Set<string>();
  let added = 0;
  for (const event of log) {
    const after = fold(state, [event]);
    const before = new Set(keys(state));
    const owedAfter = keys(after);
    const managedJob = asksWhetherManaged(event) && after.source !== null;
    const live = obligationsOfEvent(event, managedJob).owed.map(obligationKey);
    for (const key of owedAfter) if (!before.has(key)) expect(live).toContain(key);
    for (const key of live) expect(owedAfter).toContain(key);
    for (const key of live) accumulated.add(key);
    added += live.length;
    state = after;
  }
  for (const key of keys(state)) expect(accumulated).toContain(key);
  return added;
}

describe('the live path and the reconcile agree (fast-check)', () => {
  it('every obligation an event adds is what the live path enqueues for it, and nothing else', () => {
    let reached = 0;
    fc.assert(
      fc.property(history, (h) => {
        const job = runHistory(h, () => {});
        reached += checkLiveAgainstReconcile(job.log);
      }),
      propertyRuns(),
    );
    expect(reached).toBeGreaterThan(0);
  });
});

describe('the predicates behind the obligations, case by case', () => {
  const discard = (state: DiscardState['state'], retryable?: boolean): DiscardState => ({
    cause: 'SUBSUMED',
    requestedAt: T0,
    state,
    attempts: 1,
    ...(retryable === undefined ? {} : { retryable }),
  });

  it('a discard is unfinished while requested or failed retryably, never once done', () => {
    expect(discardUnfinished(undefined)).toBe(false);
    expect(discardUnfinished(discard('REQUESTED'))).toBe(true);
    expect(discardUnfinished(discard('FAILED', true))).toBe(true);
    expect(discardUnfinished(discard('FAILED', false))).toBe(false);
    expect(discardUnfinished(discard('DONE', true))).toBe(false); // done after a retryable failure
  });

  it('R67 what is taken in Flink, and what Flink disposes of', () => {
    const savepoint = { kind: 'SAVEPOINT' as const, flinkCheckpointId: null, imported: false };
    expect(takenInFlink(savepoint)).toBe(true);
    expect(takenInFlink({ ...savepoint, flinkCheckpointId: 7 })).toBe(false);
    expect(takenInFlink({ ...savepoint, imported: true })).toBe(false);
    expect(takenInFlink({ ...savepoint, kind: 'CHECKPOINT' })).toBe(false);
    expect(disposedByFlink({ kind: 'SAVEPOINT' })).toBe(true);
    // Flink's disposal of a retained checkpoint deletes the shared files later checkpoints reference.
    expect(disposedByFlink({ kind: 'CHECKPOINT' })).toBe(false);
  });

  it('R67 a managed job’s checkpoint being discarded owes nothing: Flink owns it', () => {
    const job = new Job().register({ numRetained: 2 });
    const checkpoint = job.complete();
    const snapshot = { ...job.snapshot(checkpoint), discard: discard('REQUESTED') };
    expect(snapshotObligations(snapshot, false).map(obligationKey)).toEqual([`discard:${checkpoint}`]);
    expect(snapshotObligations(snapshot, true)).toEqual([]);
    const savepoint = { ...snapshot, kind: 'SAVEPOINT' as const };
    expect(snapshotObligations(savepoint, true).map(obligationKey)).toEqual([`dispose:${checkpoint}`]);
  });

  it('R67 a managed job owes no stray cleanup, whatever its state holds', () => {
    const state = { ...managed().state, strayCleanups: new Map([[3, ['/data/chk/x']]]) };
    expect(obligations(state).map(obligationKey)).not.toContain('stray:3');
    expect(obligations({ ...state, source: null }).map(obligationKey)).toContain('stray:3');
  });

  it('a discard request and a stray acknowledgement ask whether the job is managed; other events do not', () => {
    const of = (type: string) => ({ type }) as unknown as Event;
    expect(asksWhetherManaged(of('SnapshotDiscardRequested'))).toBe(true);
    expect(asksWhetherManaged(of('StrayAcknowledgementReceived'))).toBe(true);
    expect(asksWhetherManaged(of('SnapshotCompleted'))).toBe(false);
  });

  it('a savepoint trigger of an old log (no flinkCheckpointId, no imported field) is taken in Flink', () => {
    const job = new Job().register({ tasks: ['a'] });
    job.trigger('SAVEPOINT');
    const event = job.log.find((e) => e.type === 'SnapshotTriggered')! as Record<string, unknown>;
    const { flinkCheckpointId: _id, imported: _imported, ...old } = event;
    expect(asksWhetherManaged(old as unknown as Event)).toBe(true);
  });

  it('a stray acknowledgement: its cleanup when it names one, one planned now for an old event, none of a managed job', () => {
    const stray = (fields: object) =>
      ({ type: 'StrayAcknowledgementReceived', snapshotId: 1, taskId: 'a', ...fields }) as unknown as Event;
    expect(obligationsOfEvent(stray({ cleanupId: 4 })).owed).toEqual([{ kind: 'stray', cleanupId: 4 }]);
    expect(obligationsOfEvent(stray({})).owed).toEqual([{ kind: 'stray' }]);
    expect(obligationsOfEvent(stray({ cleanup: { locations: [] } })).owed).toEqual([]);
    expect(obligationsOfEvent(stray({ cleanupId: 4 }), true).owed).toEqual([]);
  });

  it('retentionDue says no to a refused command, and lets any other error through', () => {
    expect(retentionDue(new Job().state, T0)).toBe(false); // not registered: refused
    // A state the fold cannot make (a schedule with retention over a snapshot map that is missing): a bug, loud.
    const broken = {
      ...new Job().register().state,
      schedule: { every: 'PT1M', retention: { maxCount: 1 } },
      completed: [1],
      snapshots: undefined,
    } as unknown as JobState;
    expect(() => retentionDue(broken, T0)).toThrow(TypeError);
  });
});
