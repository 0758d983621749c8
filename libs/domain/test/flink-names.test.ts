import {
  checkpointPath,
  decodeState,
  encodeState,
  fold,
  initialState,
  periodicTriggerId,
  restorePath,
  savepointPath,
  snapshotView,
  type Event,
} from '../src';
import { JOB, Job, T0 } from './harness';

/**
 * Issue 16, items 12 and 13: snapshots are named as Flink names them, and every view says which path Flink
 * restores from. Flink sources read: AbstractFsCheckpointStorageAccess (initializeLocationForSavepoint,
 * getCheckpointDirectoryForJob, createCheckpointDirectory, resolveCheckpointPointer, METADATA_FILE_NAME),
 * FsCheckpointStorageAccess.initializeLocationForCheckpoint, FsCheckpointStorageLocation (metadataFilePath),
 * Checkpoints.storeCheckpointMetadata, FileUtils.getRandomFilename, TriggerId / AbstractID.toString.
 */
const SAVEPOINT_DIR = new RegExp(`^/data/sp/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`);
const FLINK_TRIGGER_ID = /^[0-9a-f]{32}$/;

describe('R14 directories as Flink names them (AbstractFsCheckpointStorageAccess)', () => {
  it('R14 a checkpoint in <checkpointDir>/<jobId>/chk-<id> (getCheckpointDirectoryForJob, createCheckpointDirectory)', () => {
    const job = new Job().register();
    job.trigger('CHECKPOINT');
    expect(job.snapshot(1).externalPath).toBe(`/data/chk/${JOB}/chk-1`);
    expect(checkpointPath('s3://bucket/chk/', JOB, 42)).toBe(`s3://bucket/chk/${JOB}/chk-42`);
  });

  it('R14 a savepoint in <savepointDir>/savepoint-<first 6 of the jobId>-<12 hex> (initializeLocationForSavepoint, FileUtils.getRandomFilename)', () => {
    const job = new Job().register();
    job.trigger('SAVEPOINT');
    expect(job.snapshot(1).externalPath).toMatch(SAVEPOINT_DIR);
    // Straight in the savepoint directory, as Flink's `new Path(savepointBasePath, getRandomFilename(prefix))`:
    // no job directory in between.
    expect(job.snapshot(1).externalPath.split('/')).toHaveLength(4);
  });

  it('R14 the 12 hex are not random: the same snapshot gives the same path, on replay too', () => {
    const job = new Job().register();
    job.trigger('SAVEPOINT');
    const replayed = fold(initialState(JOB), job.log);
    expect(replayed.snapshots.get(1)!.externalPath).toBe(job.snapshot(1).externalPath);
    expect(savepointPath('/sp', JOB, '1/t-1')).toBe(savepointPath('/sp/', JOB, '1/t-1'));
    // Pinned: FNV-1a 64 of "<jobId>\n<snapshot id>/<triggerId>", its first 12 hex digits.
    expect(savepointPath('/sp', JOB, '1/t-1')).toBe('/sp/savepoint-012345-fa696998e8db');
  });

  it('R14 a triggered savepoint’s 12 hex are those of its id and triggerId, manual or periodic', () => {
    const job = new Job().register();
    job.trigger('SAVEPOINT'); // snapshot 1, triggerId t-1
    expect(job.snapshot(1).externalPath).toBe(savepointPath('/data/sp', JOB, '1/t-1'));
    expect(job.snapshot(1).externalPath).toBe('/data/sp/savepoint-012345-fa696998e8db');
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT2S' } });
    const fired = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 }).reply;
    const triggerId = periodicTriggerId(JOB, { every: 'PT2S' }, T0 + 2000);
    expect(fired).toEqual({ fired: true, snapshotId: 2, triggerId });
    expect(job.snapshot(2).externalPath).toBe(savepointPath('/data/sp', JOB, `2/${triggerId}`));
    expect(job.snapshot(2).externalPath).not.toBe(savepointPath('/data/sp', JOB, ''));
  });

  it('R14 a persisted checkpoint’s savepoint directory is named after the checkpoint’s id and triggerId', () => {
    const job = new Job().register();
    job.complete(); // checkpoint 1, trigger t-1
    const { reply } = job.run({ type: 'PersistSnapshot', snapshotId: 1 });
    expect(reply.savepointPath).toBe(savepointPath('/data/sp', JOB, '1/t-1'));
    expect(job.snapshot(1).persistedPath).toBe(savepointPath('/data/sp', JOB, '1/t-1'));
  });

  it('R14 savepoints of one job differ by id and triggerId; jobs sharing the first 6 characters do not collide', () => {
    const other = `${JOB.slice(0, 6)}ffffffffffffffffffffffffff`;
    const paths = [
      savepointPath('/sp', JOB, '1/t'),
      savepointPath('/sp', JOB, '2/t'),
      savepointPath('/sp', JOB, '1/u'),
      savepointPath('/sp', other, '1/t'),
    ];
    expect(new Set(paths).size).toBe(4);
    for (const path of paths) expect(path).toMatch(/^\/sp\/savepoint-012345-[0-9a-f]{12}$/);
  });

  it('R14 a savepoint given a target directory, and a periodic one, are named the same way', () => {
    const job = new Job().register();
    job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId: 's',
      triggerType: 'MANUAL',
      formatType: 'NATIVE',
      targetDirectory: 's3://bucket/releases/',
    });
    expect(job.snapshot(1).externalPath).toMatch(/^s3:\/\/bucket\/releases\/savepoint-012345-[0-9a-f]{12}$/);
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT2S' } });
    job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 });
    expect(job.snapshot(2).externalPath).toMatch(SAVEPOINT_DIR);
  });
});

describe('R36, R39, R57 a persisted checkpoint restores from its own chk-<id>', () => {
  it('R36 persisting names a savepoint directory for the manifest, and answers the chk-<id> to restore from', () => {
    const job = new Job().register();
    const id = job.complete();
    const first = job.run({ type: 'PersistSnapshot', snapshotId: id });
    expect(first.reply).toEqual({
      savepointPath: job.snapshot(id).persistedPath,
      restorePath: `/data/chk/${JOB}/chk-${id}`,
      changed: true,
    });
    expect(first.reply.savepointPath).toMatch(SAVEPOINT_DIR);
    expect(job.run({ type: 'PersistSnapshot', snapshotId: id })).toEqual({
      events: [],
      reply: { ...first.reply, changed: false },
    });
    const target = job.complete();
    const elsewhere = job.run({ type: 'PersistSnapshot', snapshotId: target, targetDirectory: '/data/keep' });
    expect(elsewhere.reply.savepointPath).toMatch(/^\/data\/keep\/savepoint-012345-[0-9a-f]{12}$/);
    expect(elsewhere.reply.restorePath).toBe(`/data/chk/${JOB}/chk-${target}`);
  });

  it('R57 restorePath: chk-<id> for a completed checkpoint, persisted or not; the directory of a savepoint', () => {
    const job = new Job().register({ numRetained: 5 });
    const checkpoint = job.complete();
    const persisted = job.complete();
    job.run({ type: 'PersistSnapshot', snapshotId: persisted });
    const savepoint = job.complete('SAVEPOINT');
    expect(snapshotView(job.snapshot(checkpoint)).restorePath).toBe(`/data/chk/${JOB}/chk-${checkpoint}`);
    const view = snapshotView(job.snapshot(persisted));
    expect(view.restorePath).toBe(`/data/chk/${JOB}/chk-${persisted}`);
    expect(view.restorePath).toBe(view.externalPath);
    expect(view.savepointPath).not.toBe(view.restorePath); // snapcat's manifest only, not Flink's _metadata
    expect(snapshotView(job.snapshot(savepoint)).restorePath).toBe(job.snapshot(savepoint).externalPath);
    expect(snapshotView(job.snapshot(savepoint)).restorePath).toMatch(SAVEPOINT_DIR);
  });

  it('R57 no restorePath for a snapshot that is not COMPLETED: pending, failed, discarding, discarded', () => {
    const job = new Job().register({ numRetained: 1 });
    job.trigger();
    const pending = 1;
    expect(snapshotView(job.snapshot(pending)).restorePath).toBeNull();
    job.run({ type: 'DeclineTask', snapshotId: pending, taskId: 'a' });
    expect(job.snapshot(pending).status).toBe('FAILED');
    expect(snapshotView(job.snapshot(pending)).restorePath).toBeNull();
    const old = job.complete();
    job.complete(); // subsumes `old` (numRetained 1)
    expect(job.snapshot(old).status).toBe('DISCARDING');
    expect(snapshotView(job.snapshot(old)).restorePath).toBeNull();
    job.run({ type: 'RecordDiscardCompleted', snapshotId: old, bytesReclaimed: 0 });
    expect(snapshotView(job.snapshot(old)).restorePath).toBeNull();
    expect(restorePath({ status: 'COMPLETED', externalPath: '/x/chk-3' })).toBe('/x/chk-3');
  });
});

/**
 * A log as snapcat wrote it before issue 16: the decisions of today with the names of then (savepoints in
 * `<dir>/<jobId>/savepoint-<id>-<hex>`, periodic triggerIds `periodic-<slot>`, manifests named `_metadata`).
 */
function writtenBeforeIssue16(events: Event[]): Event[] {
  const oldSavepointDir = (dir: string, id: number) => `${dir}/${JOB}/savepoint-${id}-0a1b2c3d4e5f`;
  return events.map((event) => {
    if (event.type === 'SnapshotTriggered' && event.kind === 'SAVEPOINT') {
      return {
        ...event,
        externalPath: oldSavepointDir('/data/sp', event.snapshotId),
        ...(event.slot !== undefined ? { triggerId: `periodic-${event.slot}` } : {}),
      };
    }
    if (event.type === 'SnapshotPersisted') {
      return { ...event, savepointPath: oldSavepointDir('/data/sp', event.snapshotId) };
    }
    if (event.type === 'SnapshotManifestWritten') {
      return { ...event, path: `${oldSavepointDir('/data/sp', event.snapshotId)}/_metadata` };
    }
    return event;
  });
}

describe('R14, R39, R48 a log written before Flink names replays to the same catalog', () => {
  const oldLog = () => {
    const job = new Job().register({ numRetained: 3 });
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT2S' } });
    const checkpoint = job.complete();
    const manifest = `/data/sp/${JOB}/savepoint-${checkpoint}-0a1b2c3d4e5f/_metadata`;
    job.run({ type: 'PersistSnapshot', snapshotId: checkpoint });
    job.run({ type: 'RecordManifestWritten', snapshotId: checkpoint, path: manifest });
    job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 });
    for (const task of job.state.tasks) job.ack(2, task);
    return { events: writtenBeforeIssue16(job.log), checkpoint, manifest };
  };

  it('R14, R39 recorded paths stay as written: the old savepoint directories, the _metadata manifest', () => {
    const { events, checkpoint, manifest } = oldLog();
    const state = fold(initialState(JOB), events);
    const persisted = snapshotView(state.snapshots.get(checkpoint)!);
    expect(persisted).toMatchObject({
      externalPath: `/data/chk/${JOB}/chk-${checkpoint}`,
      restorePath: `/data/chk/${JOB}/chk-${checkpoint}`,
      savepointPath: `/data/sp/${JOB}/savepoint-${checkpoint}-0a1b2c3d4e5f`,
      manifestPath: manifest,
    });
    const periodic = snapshotView(state.snapshots.get(2)!);
    expect(periodic).toMatchObject({
      triggerId: `periodic-${T0 + 2000}`,
      externalPath: `/data/sp/${JOB}/savepoint-2-0a1b2c3d4e5f`,
      restorePath: `/data/sp/${JOB}/savepoint-2-0a1b2c3d4e5f`,
    });
    // The same catalog from an aggregate snapshot of it.
    const decoded = decodeState(JSON.parse(JSON.stringify(encodeState(state))));
    expect(decoded && [...decoded.snapshots.values()].map(snapshotView)).toEqual(
      [...state.snapshots.values()].map(snapshotView),
    );
  });

  it('R39, R42 discarding a checkpoint persisted before deletes its old directory whole, the _metadata manifest with it', () => {
    const { events, checkpoint, manifest } = oldLog();
    const job = new Job().continuedWith(fold(initialState(JOB), events));
    const { events: discard } = job.run({ type: 'RequestDiscard', snapshotId: checkpoint, force: true });
    const request = discard.find((e) => e.type === 'SnapshotDiscardRequested')!;
    expect(request).toMatchObject({
      locations: [
        `/data/chk/${JOB}/chk-${checkpoint}`,
        `/data/sp/${JOB}/savepoint-${checkpoint}-0a1b2c3d4e5f`,
      ],
      kept: [],
    });
    const directory = manifest.slice(0, manifest.lastIndexOf('/'));
    expect(request.type === 'SnapshotDiscardRequested' && request.locations).toContain(directory);
  });

  it('R48 a slot fired before the upgrade (triggerId periodic-<slot>) does not fire again after it; the next one does, with a Flink TriggerId', () => {
    const { events } = oldLog();
    const state = fold(initialState(JOB), events);
    expect(state.lastSlot).toBe(T0 + 2000);
    for (const continued of [state, decodeState(JSON.parse(JSON.stringify(encodeState(state))))!]) {
      const job = new Job().continuedWith(continued);
      for (const slot of [T0 + 2000, T0]) {
        expect(job.run({ type: 'FirePeriodicSavepoint', slot })).toEqual({
          events: [],
          reply: { fired: false, reason: 'SLOT_ALREADY_HANDLED' },
        });
      }
      const next = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 4000 });
      expect(next.reply).toEqual({
        fired: true,
        snapshotId: 3,
        triggerId: periodicTriggerId(JOB, { every: 'PT2S' }, T0 + 4000),
      });
      expect(job.snapshot(3).triggerId).toMatch(FLINK_TRIGGER_ID);
      expect(job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 4000 }).events).toEqual([]);
    }
  });

  it('R48 a slot skipped before the upgrade is not fired after it either', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT2S' } });
    job.run({ type: 'ChangeJobStatus', status: 'SUSPENDED' });
    job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 });
    const continued = new Job().continuedWith(fold(initialState(JOB), writtenBeforeIssue16(job.log)));
    continued.run({ type: 'ChangeJobStatus', status: 'RUNNING' });
    expect(continued.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 }).reply).toEqual({
      fired: false,
      reason: 'SLOT_ALREADY_HANDLED',
    });
  });
});

describe('R48 periodic triggerIds in the format of Flink’s TriggerId (AbstractID: 16 bytes as 32 lowercase hex)', () => {
  it('R48 a fired slot’s triggerId is 32 lowercase hex, derived from the job, the schedule’s timing and the slot', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT2S' } });
    const { reply } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 });
    expect(reply).toEqual({
      fired: true,
      snapshotId: 1,
      triggerId: periodicTriggerId(JOB, { every: 'PT2S' }, T0 + 2000),
    });
    expect(job.snapshot(1).triggerId).toMatch(FLINK_TRIGGER_ID);
    // Pinned: FNV-1a 128 of "snapcat periodic savepoint\n<jobId>\nevery 2000\n<slot>".
    expect(periodicTriggerId(JOB, { every: 'PT2S' }, 2000)).toBe('98662ca6f382a6d72caa2c78963dca36');
  });

  it('R48 the same slot of the same schedule gives the same id (every worker names the same trigger); anything else another', () => {
    const every = periodicTriggerId(JOB, { every: 'PT1M' }, 60_000);
    expect(periodicTriggerId(JOB, { every: 'PT60S' }, 60_000)).toBe(every); // the same timing
    const others = [
      periodicTriggerId(JOB, { every: 'PT1M' }, 120_000),
      periodicTriggerId(JOB, { every: 'PT30S' }, 60_000),
      periodicTriggerId(`${JOB.slice(0, 31)}0`, { every: 'PT1M' }, 60_000),
      periodicTriggerId(JOB, { cron: '0 * * * * *' }, 60_000),
      periodicTriggerId(JOB, { cron: '0 * * * * *', tz: 'Europe/Berlin' }, 60_000),
    ];
    expect(new Set([every, ...others]).size).toBe(6);
    for (const id of [every, ...others]) expect(id).toMatch(FLINK_TRIGGER_ID);
  });

  it('R48, R13 a client trigger that reuses a periodic triggerId is answered as that snapshot, not fired twice', () => {
    const job = new Job().register();
    job.run({ type: 'SetSavepointSchedule', schedule: { every: 'PT2S' } });
    const { reply } = job.run({ type: 'FirePeriodicSavepoint', slot: T0 + 2000 });
    const triggerId = reply.fired ? reply.triggerId : '';
    const again = job.run({
      type: 'TriggerSnapshot',
      kind: 'SAVEPOINT',
      triggerId,
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    });
    expect(again).toEqual({
      events: [],
      reply: { accepted: true, snapshotId: 1, triggerId, status: 'PENDING', duplicate: true },
    });
  });
});

describe('R48 a slot’s trigger id', () => {
  const JOB_ID = '0123456789abcdef0123456789abcdef';

  it('names the schedule’s timing: another cron, another time zone or another interval is another id', () => {
    const ids = [
      periodicTriggerId(JOB_ID, { cron: '0 * * * *', tz: 'Europe/Berlin' }, 7),
      periodicTriggerId(JOB_ID, { cron: '0 * * * *', tz: 'UTC' }, 7),
      periodicTriggerId(JOB_ID, { cron: '0 * * * *' }, 7),
      periodicTriggerId(JOB_ID, { cron: '5 * * * *' }, 7),
      periodicTriggerId(JOB_ID, { every: 'PT1M' }, 7),
      periodicTriggerId(JOB_ID, { every: 'PT1M' }, 8),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(FLINK_TRIGGER_ID);
  });

  it('is the same in every release: workers of two versions during an upgrade hand Flink one trigger per slot', () => {
    // Written once (2026-12-02) from the seed `snapcat periodic savepoint\n<job>\n<timing>\n<slot>`.
    expect(periodicTriggerId(JOB_ID, { cron: '0 * * * *', tz: 'Europe/Berlin' }, 7)).toBe(
      '63d5ec341a4037426a5946ac89bf74e9',
    );
    expect(periodicTriggerId(JOB_ID, { cron: '0 * * * *' }, 7)).toBe('bac6ed4c199ae7a1db6952177edcc66c');
    expect(periodicTriggerId(JOB_ID, { every: 'PT1M' }, 7)).toBe('208ba44d270e93618c402e3f4e6b3e11');
  });
});
