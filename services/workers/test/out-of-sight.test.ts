import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlinkCheckpointReport } from '@snapcat/domain';
import { LocalSnapshotStorage } from '@snapcat/storage';
import { JOB, Job, T0 } from '../../../libs/domain/test/harness';
import { idsWentBack, outOfSight } from '../src/flink';

// Decision 0019: which mirrored checkpoints the connector tells the catalogue Flink deleted out of its
// history's sight, on a real local storage (the adapter's own listing, not a stand-in).
let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'snapcat-out-of-sight-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const deletedOutOfSight = async (...args: Parameters<typeof outOfSight>) =>
  (await outOfSight(...args)).deleted;
const directoryOf = (id: number) => join(root, JOB, `chk-${id}`);
const report = (id: number): FlinkCheckpointReport => ({
  id,
  status: 'COMPLETED',
  isSavepoint: false,
  checkpointType: 'INCREMENTAL',
  triggerTimestamp: T0 + id,
  stateSize: 1,
  checkpointedSize: 1,
  externalPath: directoryOf(id),
  discarded: false,
  failureMessage: null,
});
/** Flink's files of each checkpoint: `_metadata` in its `chk-N`. */
const written = (...ids: number[]) => {
  for (const id of ids) {
    mkdirSync(directoryOf(id), { recursive: true });
    writeFileSync(join(directoryOf(id), '_metadata'), 'x');
  }
};
/** A managed job whose mirror recorded these checkpoints completed (none reported discarded). */
const mirrored = (...ids: number[]) => {
  const job = new Job().registerManaged();
  job.run({ type: 'RecordFlinkCheckpoints', checkpoints: ids.map(report) });
  return job.state;
};

describe('checkpoints Flink deleted after they left its history (decision 0019)', () => {
  const storage = () => new LocalSnapshotStorage([root]);

  it('at a completion not recorded yet, a completed checkpoint older than the history with no file left is gone; retained ones are not', async () => {
    const state = mirrored(1, 2, 3, 10);
    // Flink retains 2 and 3 (and its history's); it deleted 1, whose place chk-10 shares a prefix with.
    written(2, 3, 10, 11);
    expect(await deletedOutOfSight(state, [report(10), report(11)], { storage: storage() })).toEqual([1]);
  });

  it('only checkpoints beside Flink’s newest are looked for: a path recorded elsewhere (one the mirror made up for a checkpoint reported without one) proves nothing', async () => {
    const job = new Job().registerManaged();
    const elsewhere = { ...report(4), externalPath: join(root, 'catalogue-dir', JOB, 'chk-4') };
    job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [report(1), elsewhere, report(10)] });
    written(10, 11);
    expect(await deletedOutOfSight(job.state, [report(10), report(11)], { storage: storage() })).toEqual([1]);
  });

  it('nothing is looked for without a completion not recorded yet, nor without storage', async () => {
    const state = mirrored(1, 2, 10);
    written(2, 10);
    expect(await deletedOutOfSight(state, [report(10)], { storage: storage() })).toEqual([]);
    written(11);
    expect(await deletedOutOfSight(state, [report(10), report(11)], {})).toEqual([]);
  });

  it('a storage that does not show Flink’s newest checkpoint (another volume, a server writing no files, outside the roots) proves nothing', async () => {
    const state = mirrored(1, 2, 10);
    written(10); // not 11, the newest: snapcat does not see where Flink writes
    expect(await deletedOutOfSight(state, [report(10), report(11)], { storage: storage() })).toEqual([]);
    written(11);
    const elsewhere = new LocalSnapshotStorage([join(root, 'elsewhere')]);
    expect(await deletedOutOfSight(state, [report(10), report(11)], { storage: elsewhere })).toEqual([]);
    expect(await deletedOutOfSight(state, [report(10), report(11)], { storage: storage() })).toEqual([1, 2]);
  });

  it('a history all recorded (completed, or discarded since) looks nothing up, poll after poll', async () => {
    const job = new Job().registerManaged();
    const discarded = { ...report(9), discarded: true };
    job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [report(1), report(9), report(10)] });
    job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [discarded, report(10)] });
    written(10); // 1 is gone, and would be found if anything were looked up
    const local = storage();
    const lookups: string[] = [];
    const counting = {
      isWithinRoots: (path: string) => local.isWithinRoots(path),
      holdsFiles: (path: string) => (lookups.push(path), local.holdsFiles(path)),
    };
    expect(await deletedOutOfSight(job.state, [discarded, report(10)], { storage: counting })).toEqual([]);
    expect(lookups).toEqual([]);
    // A completion not recorded yet: now 1 is looked for, and found gone.
    written(11);
    const withNew = [discarded, report(10), report(11)];
    expect(await deletedOutOfSight(job.state, withNew, { storage: counting })).toEqual([1]);
  });

  it('checkpoints more than 100 ids below Flink’s newest are not looked for', async () => {
    const state = mirrored(1, 150, 200);
    written(200, 201);
    expect(await deletedOutOfSight(state, [report(200), report(201)], { storage: storage() })).toEqual([150]);
  });
});

describe('checkpoints the mirror saw in progress that Flink completed after they left its history', () => {
  const storage = () => new LocalSnapshotStorage([root]);

  it('at a completion not recorded yet, a pending one older than the history whose _metadata is there is completed; one without it (aborted, or still being written) is not', async () => {
    // Flink reports no path of a checkpoint in progress: the mirror records it where the job's checkpoints go.
    const job = new Job().registerManaged(3, { checkpointDir: root, savepointDir: join(root, 'sp') });
    const inProgress = (id: number) => ({
      ...report(id),
      status: 'IN_PROGRESS' as const,
      externalPath: null,
    });
    job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [report(1), inProgress(2), inProgress(3)] });
    written(2, 11, 12);
    mkdirSync(directoryOf(3), { recursive: true });
    writeFileSync(join(directoryOf(3), 'task-state'), 'x'); // a task's upload, no _metadata: not completed
    const history = [report(11), report(12)];
    expect(await outOfSight(job.state, history, { storage: storage() })).toEqual({
      deleted: [1],
      completed: [2],
    });
    // Recorded: 2 completes before 11 and 12 do, which abort only 3 (Flink retains 2: no abort of it).
    const { events } = job.run({
      type: 'RecordFlinkCheckpoints',
      checkpoints: history,
      completed: [2],
      deleted: [1],
    });
    const statusOf = (flinkId: number) =>
      job.state.snapshots.get(job.state.flinkCheckpoints.get(flinkId)!)!.status;
    expect([2, 3, 11, 12].map(statusOf)).toEqual(['COMPLETED', 'FAILED', 'COMPLETED', 'COMPLETED']);
    expect(events.filter((e) => e.type === 'SnapshotCompleted')).toHaveLength(3);
    // Without a new completion in the history, nothing is looked up.
    expect(await outOfSight(job.state, history, { storage: storage() })).toEqual({
      deleted: [],
      completed: [],
    });
  });
});

describe('a job run again under the same JobID, its checkpoint ids from 1 (no HA)', () => {
  it('Flink’s newest id below the newest recorded is a rerun; ids that go on, an empty history or a failover’s are not', () => {
    const state = mirrored(5, 6, 7);
    expect(idsWentBack(state, [report(1), report(2)])).toEqual({ reported: 2, recorded: 7 });
    expect(idsWentBack(state, [report(6), report(7)])).toBeUndefined(); // the same run, nothing new
    expect(idsWentBack(state, [report(12)])).toBeUndefined(); // a failover: the new history starts higher
    expect(idsWentBack(state, [])).toBeUndefined();
    expect(idsWentBack(new Job().registerManaged().state, [report(1)])).toBeUndefined();
  });

  it('recorded ids compacted out of the state count too (the floor)', () => {
    const job = new Job().registerManaged();
    for (let id = 1; id <= 400; id += 1) {
      job.run({ type: 'RecordFlinkCheckpoints', checkpoints: [{ ...report(id), discarded: id < 400 }] });
    }
    expect(job.state.flinkCheckpointFloor).toBeGreaterThan(3);
    expect(idsWentBack(job.state, [report(3)])).toEqual({ reported: 3, recorded: 400 });
  });
});
