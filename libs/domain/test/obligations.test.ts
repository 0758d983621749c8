import fc from 'fast-check';
import {
  fold,
  initialState,
  obligationKey,
  obligations,
  obligationsOfEvent,
  asksWhetherManaged,
  retentionDue,
  type Event,
  type JobState,
} from '../src';
import { JOB, Job, T0 } from './harness';
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
