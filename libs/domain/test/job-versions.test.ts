import fc from 'fast-check';
import {
  Command,
  Event,
  VersionLabel,
  decodeState,
  encodeState,
  fold,
  initialState,
  jobSummaryView,
  snapshotView,
  versionDifference,
  type EventOf,
  type JobState,
  type SnapshotState,
} from '../src';
import { JOB, Job } from './harness';
import { propertyRuns } from './property-runs';

type Versions = { jobVersion?: string; flinkVersion?: string };

/** Configures the job as `register()` did, with the versions given (none: they are left out). */
function configure(job: Job, versions: Versions = {}) {
  return job.run({
    type: 'ConfigureJob',
    name: 'job',
    tasks: job.state.registered ? job.state.tasks : ['a', 'b'],
    checkpointing: {
      numRetained: 10,
      timeoutMs: 60_000,
      maxConcurrent: 1_000, // no trigger of the property below is refused
      minPauseMs: 0,
      tolerableFailures: 0,
      retention: 'NEVER_RETAIN_AFTER_TERMINATION',
      persistOnFailure: true,
    },
    storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
    ...versions,
  });
}

let triggers = 0;
function trigger(job: Job, kind: 'CHECKPOINT' | 'SAVEPOINT', versions: Versions = {}) {
  triggers += 1;
  const { events, reply } = job.run({
    type: 'TriggerSnapshot',
    kind,
    triggerId: `v-${triggers}`,
    triggerType: 'MANUAL',
    formatType: 'CANONICAL',
    ...versions,
  });
  if (!reply.accepted) throw new Error(`rejected: ${reply.reason}`);
  return { id: reply.snapshotId, event: events[0] as EventOf<'SnapshotTriggered'> };
}

const roundTrip = (state: JobState): JobState => decodeState(JSON.parse(JSON.stringify(encodeState(state))))!;

describe('job versions (docs/domain.md R61)', () => {
  it('R61 a registration records the versions it names; the job and its summary show them, null where none was given', () => {
    const job = new Job();
    const { events } = configure(job, { jobVersion: 'orders-1.4.0.jar', flinkVersion: '1.19.1' });
    expect(events[0]).toMatchObject({
      type: 'JobRegistered',
      jobVersion: 'orders-1.4.0.jar',
      flinkVersion: '1.19.1',
    });
    expect(jobSummaryView(job.state)).toMatchObject({
      jobVersion: 'orders-1.4.0.jar',
      flinkVersion: '1.19.1',
    });

    const bare = new Job().register();
    expect(bare.log[0]).not.toHaveProperty('jobVersion');
    expect(bare.log[0]).not.toHaveProperty('flinkVersion');
    expect(jobSummaryView(bare.state)).toMatchObject({ jobVersion: null, flinkVersion: null });
  });

  it('R61 a configuration that leaves a version out keeps it and writes nothing; a new version alone is a JobReconfigured carrying the versions the job then has', () => {
    const job = new Job();
    configure(job, { jobVersion: '1.4.0', flinkVersion: '1.18.1' });

    const same = configure(job);
    expect(same.events).toEqual([]);
    expect(same.reply).toEqual({ created: false, changed: false });
    expect(job.state).toMatchObject({ jobVersion: '1.4.0', flinkVersion: '1.18.1' });

    const repeated = configure(job, { jobVersion: '1.4.0' });
    expect(repeated.events).toEqual([]);

    const upgraded = configure(job, { jobVersion: '1.5.0' });
    expect(upgraded.reply).toEqual({ created: false, changed: true });
    expect(upgraded.events).toHaveLength(1);
    expect(upgraded.events[0]).toMatchObject({
      type: 'JobReconfigured',
      jobVersion: '1.5.0',
      flinkVersion: '1.18.1',
    });
    expect(job.state).toMatchObject({ jobVersion: '1.5.0', flinkVersion: '1.18.1' });

    const flink = configure(job, { flinkVersion: '1.19.1' });
    expect(flink.events[0]).toMatchObject({ jobVersion: '1.5.0', flinkVersion: '1.19.1' });
    expect(jobSummaryView(job.state)).toMatchObject({ jobVersion: '1.5.0', flinkVersion: '1.19.1' });

    // Another change of configuration carries the versions along, unchanged.
    const other = job.run({
      type: 'ConfigureJob',
      name: 'renamed',
      tasks: ['a', 'b'],
      checkpointing: job.state.checkpointing,
      storage: job.state.storage,
    });
    expect(other.events[0]).toMatchObject({
      type: 'JobReconfigured',
      name: 'renamed',
      jobVersion: '1.5.0',
      flinkVersion: '1.19.1',
    });
  });

  it('R61 every snapshot records the versions it was taken by: the trigger’s where given, else the job’s current ones at the trigger', () => {
    const job = new Job();
    const none = (configure(job), trigger(job, 'CHECKPOINT'));
    expect(none.event).not.toHaveProperty('jobVersion');
    expect(snapshotView(job.snapshot(none.id))).toMatchObject({ jobVersion: null, flinkVersion: null });

    configure(job, { jobVersion: '1.4.0', flinkVersion: '1.18.1' });
    const current = trigger(job, 'CHECKPOINT');
    expect(current.event).toMatchObject({ jobVersion: '1.4.0', flinkVersion: '1.18.1' });

    const named = trigger(job, 'SAVEPOINT', { jobVersion: '1.5.0-rc1' });
    expect(named.event).toMatchObject({ jobVersion: '1.5.0-rc1', flinkVersion: '1.18.1' });
    expect(snapshotView(job.snapshot(named.id))).toMatchObject({
      jobVersion: '1.5.0-rc1',
      flinkVersion: '1.18.1',
    });
    // A trigger's version is the snapshot's, not the job's.
    expect(job.state.jobVersion).toBe('1.4.0');

    // An upgrade leaves the snapshots taken before it as they were.
    configure(job, { jobVersion: '1.5.0', flinkVersion: '1.19.1' });
    expect(snapshotView(job.snapshot(current.id))).toMatchObject({
      jobVersion: '1.4.0',
      flinkVersion: '1.18.1',
    });
    const after = trigger(job, 'CHECKPOINT');
    expect(snapshotView(job.snapshot(after.id))).toMatchObject({
      jobVersion: '1.5.0',
      flinkVersion: '1.19.1',
    });
  });

  it('R61 a periodic savepoint takes the job’s current versions', () => {
    const job = new Job();
    configure(job, { jobVersion: 'registry.example/orders:2026.01', flinkVersion: '2.0.0' });
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT1M' } });
    job.now += 60_000;
    const { events, reply } = job.run({ type: 'FirePeriodicSavepoint', slot: job.now });
    expect(reply).toMatchObject({ fired: true });
    const fired = events.find((e) => e.type === 'SnapshotTriggered')!;
    expect(fired).toMatchObject({
      triggerType: 'PERIODIC',
      jobVersion: 'registry.example/orders:2026.01',
      flinkVersion: '2.0.0',
    });
  });

  it('R61 repeating a trigger id answers the snapshot it triggered with its recorded versions, whatever the repeat names', () => {
    const job = new Job();
    configure(job, { jobVersion: '1.4.0' });
    const first = job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 'release',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    });
    const again = job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 'release',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
      jobVersion: '9.9.9',
    });
    expect(again.events).toEqual([]);
    expect(again.reply).toMatchObject({ duplicate: true, snapshotId: 1 });
    expect(first.reply).toMatchObject({ snapshotId: 1 });
    expect(job.snapshot(1).jobVersion).toBe('1.4.0');
  });

  it.each([
    ['empty', ''],
    ['257 characters', 'v'.repeat(257)],
    ['a newline', '1.4.0\nrm -rf'],
    ['a tab', '1.4\t0'],
    ['DEL', '1.4.0\u007f'],
    ['a C1 control', '1.4.0\u0085'],
  ])('R61 a version is refused when %s, in a registration and a trigger', (_, bad) => {
    expect(VersionLabel.safeParse(bad).success).toBe(false);
    const configure = Command.safeParse({
      type: 'ConfigureJob',
      jobId: JOB,
      name: 'job',
      tasks: ['a'],
      checkpointing: {},
      storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
      jobVersion: bad,
    });
    expect(configure.success).toBe(false);
    expect(configure.error!.issues[0]!.path).toEqual(['jobVersion']);
    const triggerCommand = Command.safeParse({
      type: 'TriggerSnapshot',
      jobId: JOB,
      kind: 'CHECKPOINT',
      triggerId: 't',
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
      flinkVersion: bad,
    });
    expect(triggerCommand.success).toBe(false);
    expect(triggerCommand.error!.issues[0]!.path).toEqual(['flinkVersion']);
  });

  it('R61 a version is free text: 256 characters, spaces, slashes, colons and any script are accepted', () => {
    for (const good of [
      '1.4.0',
      'v'.repeat(256),
      'orders 1.4 (hotfix)',
      'registry/orders:1.4@sha256:ab',
      '版本 2',
    ]) {
      expect(VersionLabel.safeParse(good).success).toBe(true);
    }
  });

  it('R61 a log written before versions replays to the same catalog, its jobs and snapshots unknown (null)', () => {
    const at = '2026-01-01T00:00:00.000Z';
    const base = { jobId: JOB, occurredAt: at };
    const config = {
      numRetained: 3,
      timeoutMs: 60_000,
      maxConcurrent: 5,
      minPauseMs: 0,
      tolerableFailures: 0,
      retention: 'NEVER_RETAIN_AFTER_TERMINATION',
      persistOnFailure: true,
    };
    const storage = { checkpointDir: '/data/chk', savepointDir: '/data/sp' };
    const path = `/data/chk/${JOB}/chk-1`;
    const old = [
      {
        type: 'JobRegistered',
        ...base,
        name: 'old',
        tasks: ['a'],
        status: 'RUNNING',
        checkpointing: config,
        storage,
      },
      { type: 'JobReconfigured', ...base, name: 'older', tasks: ['a'], checkpointing: config, storage },
      {
        type: 'SnapshotTriggered',
        ...base,
        snapshotId: 1,
        kind: 'CHECKPOINT',
        triggerType: 'MANUAL',
        triggerId: 'old-1',
        properties: {
          forced: false,
          discardSubsumed: true,
          discardFinished: true,
          discardCancelled: true,
          discardFailed: true,
          discardSuspended: true,
        },
        formatType: 'CANONICAL',
        checkpointType: 'INCREMENTAL',
        tasks: ['a'],
        deadline: '2026-01-01T00:01:00.000Z',
        externalPath: path,
      },
      { type: 'TaskAcknowledged', ...base, snapshotId: 1, taskId: 'a', stateSize: 5, stateHandles: [] },
      {
        type: 'SnapshotCompleted',
        ...base,
        snapshotId: 1,
        kind: 'CHECKPOINT',
        stateSize: 5,
        externalPath: path,
      },
    ].map((e) => Event.parse(e));
    const state = fold(initialState(JOB), old);
    expect(jobSummaryView(state)).toMatchObject({ name: 'older', jobVersion: null, flinkVersion: null });
    expect(snapshotView(state.snapshots.get(1)!)).toMatchObject({
      status: 'COMPLETED',
      jobVersion: null,
      flinkVersion: null,
    });
    // Nothing to say about a snapshot whose version is unknown, even once the job has one.
    const upgraded = new Job().continuedWith(state);
    configure(upgraded, { jobVersion: '2.0.0', flinkVersion: '1.20.0' });
    expect(versionDifference(upgraded.snapshot(1), upgraded.state)).toBeNull();
    // The same catalog through the aggregate codec.
    const decoded = roundTrip(state);
    expect(jobSummaryView(decoded)).toEqual(jobSummaryView(state));
    expect(snapshotView(decoded.snapshots.get(1)!)).toEqual(snapshotView(state.snapshots.get(1)!));
  });

  it('R61 the aggregate codec keeps the job’s and the snapshots’ versions, and a decoded state decides as the replayed one', () => {
    const job = new Job();
    configure(job, { jobVersion: '1.4.0', flinkVersion: '1.18.1' });
    const { id } = trigger(job, 'CHECKPOINT', { flinkVersion: '1.18.2' });
    const decoded = roundTrip(job.state);
    expect(decoded).toMatchObject({ jobVersion: '1.4.0', flinkVersion: '1.18.1' });
    expect(decoded.snapshots.get(id)).toMatchObject({ jobVersion: '1.4.0', flinkVersion: '1.18.2' });
    const continued = job.continuedWith(decoded);
    expect(configure(continued).events).toEqual([]);
    const next = trigger(continued, 'SAVEPOINT');
    expect(continued.snapshot(next.id)).toMatchObject({ jobVersion: '1.4.0', flinkVersion: '1.18.1' });
  });

  it('R61 property: whatever the order of upgrades and triggers, each snapshot has the trigger’s versions or the job’s at the trigger, replays and decodes to the same views', () => {
    const version = fc.option(fc.constantFrom('1.0', '1.1', '2.0'), { nil: undefined });
    const stepArb = fc.oneof(
      fc.record({ op: fc.constant('configure' as const), jobVersion: version, flinkVersion: version }),
      fc.record({
        op: fc.constant('trigger' as const),
        kind: fc.constantFrom('CHECKPOINT' as const, 'SAVEPOINT' as const),
        jobVersion: version,
        flinkVersion: version,
      }),
    );
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 30 }), (steps) => {
        const job = new Job();
        configure(job);
        const expected = new Map<number, { jobVersion: string | null; flinkVersion: string | null }>();
        for (const step of steps) {
          const { op, jobVersion, flinkVersion } = step;
          const versions = {
            ...(jobVersion !== undefined ? { jobVersion } : {}),
            ...(flinkVersion !== undefined ? { flinkVersion } : {}),
          };
          if (op === 'configure') {
            const before = { jobVersion: job.state.jobVersion, flinkVersion: job.state.flinkVersion };
            const { events } = configure(job, versions);
            const after = {
              jobVersion: jobVersion ?? before.jobVersion,
              flinkVersion: flinkVersion ?? before.flinkVersion,
            };
            expect({ jobVersion: job.state.jobVersion, flinkVersion: job.state.flinkVersion }).toEqual(after);
            expect(events.length).toBe(
              after.jobVersion === before.jobVersion && after.flinkVersion === before.flinkVersion ? 0 : 1,
            );
          } else {
            const { id } = trigger(job, step.kind, versions);
            expected.set(id, {
              jobVersion: jobVersion ?? job.state.jobVersion,
              flinkVersion: flinkVersion ?? job.state.flinkVersion,
            });
          }
        }
        for (const [id, versions] of expected) expect(job.snapshot(id)).toMatchObject(versions);
        const replayed = fold(initialState(JOB), job.log);
        const views = (s: JobState) => [...s.snapshots.values()].map(snapshotView);
        expect(views(replayed)).toEqual(views(job.state));
        expect(jobSummaryView(replayed)).toEqual(jobSummaryView(job.state));
        expect(views(roundTrip(job.state))).toEqual(views(job.state));
      }),
      propertyRuns(),
    );
  });
});

describe('versionDifference (R61, for the restore plan)', () => {
  const snapshot = (jobVersion: string | null, flinkVersion: string | null) =>
    ({ jobVersion, flinkVersion }) as SnapshotState;
  const job = (jobVersion: string | null, flinkVersion: string | null) =>
    ({ ...initialState(JOB), jobVersion, flinkVersion }) as JobState;

  it('R61 names the job version the snapshot was taken by where the job now has another', () => {
    expect(versionDifference(snapshot('1.4.0', null), job('1.5.0', null))).toBe(
      'taken by job version 1.4.0; the job is now 1.5.0',
    );
    expect(versionDifference(snapshot('1.4.0', '1.18.1'), job('1.5.0', '1.18.1'))).toBe(
      'taken by job version 1.4.0; the job is now 1.5.0',
    );
  });

  it('R61 names the Flink version, and both when both differ', () => {
    expect(versionDifference(snapshot('1.4.0', '1.18.1'), job('1.4.0', '1.19.0'))).toBe(
      'taken by Flink 1.18.1; the job now runs Flink 1.19.0',
    );
    expect(versionDifference(snapshot('1.4.0', '1.18.1'), job('1.5.0', '1.19.0'))).toBe(
      'taken by job version 1.4.0 on Flink 1.18.1; the job is now 1.5.0 on Flink 1.19.0',
    );
  });

  it.each([
    ['equal', snapshot('1.4.0', '1.18.1'), job('1.4.0', '1.18.1')],
    ['unknown on the snapshot', snapshot(null, null), job('1.5.0', '1.19.0')],
    ['unknown on the job', snapshot('1.4.0', '1.18.1'), job(null, null)],
    ['unknown on one side each', snapshot('1.4.0', null), job(null, '1.19.0')],
    ['unknown everywhere', snapshot(null, null), job(null, null)],
  ])('R61 is null when the versions are %s', (_, s, j) => {
    expect(versionDifference(s, j)).toBeNull();
  });

  it('R61 compares exactly: versions that differ only in case or spacing differ', () => {
    expect(versionDifference(snapshot('v1.4.0', null), job('V1.4.0', null))).toBe(
      'taken by job version v1.4.0; the job is now V1.4.0',
    );
  });

  it('R61 on a job driven through the aggregate: the restore point taken before an upgrade differs, one taken after does not', () => {
    const driven = new Job();
    configure(driven, { jobVersion: '1.4.0', flinkVersion: '1.18.1' });
    const before = driven.complete();
    configure(driven, { jobVersion: '1.5.0' });
    expect(versionDifference(driven.snapshot(before), driven.state)).toBe(
      'taken by job version 1.4.0; the job is now 1.5.0',
    );
    const after = driven.complete();
    expect(versionDifference(driven.snapshot(after), driven.state)).toBeNull();
  });
});
