import {
  EMPTY_REGISTRY,
  RegistryEditor,
  decodeState,
  discardPlanOf,
  encodeState,
  fold,
  initialState,
  jobSummaryView,
  normaliseLocation,
  orderMismatch,
  otherJobsPlacesInside,
  planDiscard,
  snapshotView,
  unorderedDeletion,
  whyKept,
  type Event,
  type EventOf,
  type StateHandle,
} from '../src';
import { JOB, Job } from './harness';

// Flink's layout for incremental RocksDB checkpoints: shared files beside the chk-N directories
// (`FsCheckpointStorageAccess`: <checkpointDir>/<jobId>/shared, chk-<id>, taskowned).
const base = `/data/chk/${JOB}`;
const shared = (name: string, sizeBytes = 100): StateHandle => ({
  path: `${base}/shared/${name}`,
  sizeBytes,
  shared: true,
});
const own = (id: number, name: string, sizeBytes = 10): StateHandle => ({
  path: `${base}/chk-${id}/${name}`,
  sizeBytes,
});

/** Triggers a checkpoint that must be accepted; its id. */
function pending(job: Job): number {
  const reply = job.trigger('CHECKPOINT');
  if (!reply.accepted) throw new Error(reply.reason);
  return reply.snapshotId;
}

function ackWith(job: Job, snapshotId: number, taskId: string, stateHandles: StateHandle[]) {
  return job.run({ type: 'AcknowledgeTask', snapshotId, taskId, stateSize: 1, stateHandles });
}

/** Triggers a checkpoint and acknowledges it with the handles given (one task). */
function checkpoint(job: Job, stateHandles: StateHandle[]) {
  const reply = job.trigger('CHECKPOINT');
  if (!reply.accepted) throw new Error(reply.reason);
  return { id: reply.snapshotId, events: ackWith(job, reply.snapshotId, 'a', stateHandles).events };
}

const discardOf = (events: Event[], snapshotId: number) =>
  events.find(
    (e): e is EventOf<'SnapshotDiscardRequested'> =>
      e.type === 'SnapshotDiscardRequested' && e.snapshotId === snapshotId,
  )!;

const paths = (handles: StateHandle[]) => handles.map((h) => h.path).sort();

describe('shared state (Flink SharedStateRegistry): a discard deletes only what no live snapshot references', () => {
  it('R42 the issue scenario: subsumption, persist, user discard and a stray ack never delete a live file', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    const c1 = checkpoint(job, [shared('s1'), own(1, 'p1')]);
    const c2 = checkpoint(job, [shared('s1'), shared('s2'), own(2, 'p2')]);

    // chk 2 subsumes chk 1: its private file goes, the shared file chk 2 needs stays.
    const d1 = discardOf(c2.events, c1.id);
    expect(d1.cause).toBe('SUBSUMED');
    expect(paths(d1.stateHandles)).toEqual([`${base}/chk-1/p1`]);
    expect(d1.locations).toEqual([`${base}/chk-1`]);
    expect(d1.kept).toEqual([{ path: `${base}/shared/s1`, reason: 'REFERENCED', snapshots: [2] }]);

    job.run({ type: 'PersistSnapshot', snapshotId: c2.id });
    const c3 = checkpoint(job, [shared('s2'), own(3, 'p3')]);
    expect(c3.events.some((e) => e.type === 'SnapshotDiscardRequested')).toBe(false); // chk 2 is persisted
    const c4 = checkpoint(job, [shared('s2'), shared('s4'), own(4, 'p4')]);
    const d3 = discardOf(c4.events, c3.id);
    expect(paths(d3.stateHandles)).toEqual([`${base}/chk-3/p3`]);
    expect(d3.kept).toEqual([{ path: `${base}/shared/s2`, reason: 'REFERENCED', snapshots: [2, 4] }]);

    // The user discards the persisted chk 2: s1 was its alone, s2 is chk 4's too.
    const d2 = discardOf(job.run({ type: 'RequestDiscard', snapshotId: c2.id, force: false }).events, c2.id);
    expect(paths(d2.stateHandles)).toEqual([`${base}/chk-2/p2`, `${base}/shared/s1`]);
    expect(d2.kept).toEqual([{ path: `${base}/shared/s2`, reason: 'REFERENCED', snapshots: [4] }]);

    // A stray acknowledgement carrying s2 (and garbage of its own): only the garbage is cleaned up.
    const stray = ackWith(job, 99, 'a', [shared('s2'), own(99, 'junk')]).events[0]!;
    expect(stray).toMatchObject({
      type: 'StrayAcknowledgementReceived',
      result: 'UNKNOWN',
      cleanup: [own(99, 'junk')],
      kept: [{ path: `${base}/shared/s2`, reason: 'REFERENCED', snapshots: [4] }],
    });
    expect([...job.state.sharedState.references.entries()].map(([path]) => path).sort()).toEqual([
      `${base}/chk-4/p4`,
      `${base}/shared/s2`,
      `${base}/shared/s4`,
    ]);
  });

  it('R26 an aborted snapshot deletes its partial state but not the shared files the latest checkpoint needs', () => {
    const job = new Job().register({ tasks: ['a', 'b'], numRetained: 1 });
    const first = pending(job);
    ackWith(job, first, 'a', [shared('s1')]);
    ackWith(job, first, 'b', [own(first, 'p')]);
    const second = pending(job);
    ackWith(job, second, 'a', [shared('s1'), shared('s9')]);
    const declined = job.run({ type: 'DeclineTask', snapshotId: second, taskId: 'b' }).events;
    const discard = discardOf(declined, second);
    expect(discard.cause).toBe('ABORTED');
    expect(paths(discard.stateHandles)).toEqual([`${base}/shared/s9`]);
    expect(discard.kept).toEqual([{ path: `${base}/shared/s1`, reason: 'REFERENCED', snapshots: [first] }]);
  });

  it('an incremental chain of 5,000 shared files: the subsumed checkpoint’s discard lists 100 of those that stay and counts the rest; the completion stays small', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    const files = Array.from({ length: 5000 }, (_, i) => shared(`sst-${String(i).padStart(6, '0')}`));
    const c1 = checkpoint(job, [...files, own(1, 'MANIFEST')]);
    // chk 2 drops one file (compacted away) and adds one: 4,999 shared files stay live.
    const c2 = checkpoint(job, [...files.slice(1), shared('sst-new'), own(2, 'MANIFEST')]);
    const discard = discardOf(c2.events, c1.id);
    expect(paths(discard.stateHandles)).toEqual([`${base}/chk-1/MANIFEST`, files[0]!.path]);
    expect(discard).toMatchObject({ locations: [`${base}/chk-1`], keptUnlisted: 4899 });
    expect(discard.kept).toHaveLength(100);
    expect(discard.kept![0]).toEqual({ path: files[1]!.path, reason: 'REFERENCED', snapshots: [2] });
    // What the completion appends beside the acknowledgement itself (which carries the task's 5,000
    // handles) does not grow with the shared files: listing each kept one made it ~0.5 MB more.
    const rest = c2.events.filter((e) => e.type !== 'TaskAcknowledged');
    expect(JSON.stringify(rest).length).toBeLessThan(20_000);
    expect(job.state.sharedState.references.size).toBe(5001);
  });

  it('a discard that keeps exactly 100 shared files elsewhere lists them all and counts none', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    const files = Array.from({ length: 101 }, (_, i) => shared(`sst-${String(i).padStart(6, '0')}`));
    const c1 = checkpoint(job, [...files, own(1, 'MANIFEST')]);
    const c2 = checkpoint(job, [...files.slice(1), own(2, 'MANIFEST')]);
    const discard = discardOf(c2.events, c1.id);
    expect(discard.kept).toHaveLength(100);
    expect('keptUnlisted' in discard).toBe(false);
  });

  it('what a discard keeps inside any of its directories is always listed: only what it keeps elsewhere is counted beyond 100', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 2 });
    const files = Array.from({ length: 101 }, (_, i) => shared(`sst-${String(i).padStart(6, '0')}`));
    const inside = own(1, 'reused');
    const c1 = checkpoint(job, [...files, inside, own(1, 'MANIFEST')]);
    job.run({ type: 'PersistSnapshot', snapshotId: c1.id }); // its directories: chk-1 and the savepoint's
    checkpoint(job, [...files, inside, own(2, 'MANIFEST')]);
    const discard = discardOf(
      job.run({ type: 'RequestDiscard', snapshotId: c1.id, force: false }).events,
      c1.id,
    );
    expect(discard.locations).toHaveLength(2);
    expect(discard.keptUnlisted).toBe(1);
    expect(discard.kept).toHaveLength(101);
    expect(discard.kept).toContainEqual(expect.objectContaining({ path: inside.path }));
  });

  it('a stray acknowledgement of 500 shared files a live checkpoint references lists 100 of them as kept and counts the rest', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    const files = Array.from({ length: 500 }, (_, i) => shared(`sst-${String(i).padStart(6, '0')}`));
    checkpoint(job, files);
    const stray = ackWith(job, 99, 'a', [...files, own(99, 'junk')]).events[0]!;
    expect(stray).toMatchObject({ type: 'StrayAcknowledgementReceived', cleanup: [own(99, 'junk')] });
    expect(stray).toMatchObject({ keptUnlisted: 400 });
    expect((stray as EventOf<'StrayAcknowledgementReceived'>).kept).toHaveLength(100);
  });

  it('R20 a stray acknowledgement of a late task after the timeout keeps what the completed checkpoint shares', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 2 });
    checkpoint(job, [shared('s1')]);
    const late = pending(job);
    job.now += 120_000;
    job.run({ type: 'ExpireOverdue' });
    const stray = ackWith(job, late, 'a', [shared('s1'), shared('s5')]);
    expect(stray.reply.result).toBe('DISCARDED');
    expect(stray.events[0]).toMatchObject({ cleanup: [shared('s5')], kept: [{ path: `${base}/shared/s1` }] });
  });

  it('R43 locations are compared normalised: file:// URIs, escapes, doubled slashes and s3a/s3p schemes', () => {
    expect(normaliseLocation(`file://${base}/shared/s1`)).toBe(`${base}/shared/s1`);
    expect(normaliseLocation(`file:///data//chk/./x/../s%20p/`)).toBe('/data/chk/s p');
    expect(normaliseLocation('s3a://bucket/chk/shared/x')).toBe('s3://bucket/chk/shared/x');
    expect(normaliseLocation('s3p://bucket/chk/')).toBe('s3://bucket/chk');
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    checkpoint(job, [{ path: `file://${base}/shared/s1`, sizeBytes: 5 }]);
    const c2 = checkpoint(job, [{ path: `${base}//shared/./s1`, sizeBytes: 5 }]);
    expect(discardOf(c2.events, 1).stateHandles).toEqual([]);
    expect(discardOf(c2.events, 1).kept).toEqual([
      { path: `${base}/shared/s1`, reason: 'REFERENCED', snapshots: [2] },
    ]);
  });

  it('R42 a directory delete keeps live locations inside it; a directory inside a live one is not deleted whole', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    checkpoint(job, [own(1, 'p1')]);
    // chk 2 reports a file in chk 1's directory (as a claimed restore or file merging can).
    const c2 = checkpoint(job, [own(1, 'merged'), own(2, 'p2')]);
    const d1 = discardOf(c2.events, 1);
    expect(d1.locations).toEqual([`${base}/chk-1`]);
    expect(d1.kept).toEqual([{ path: `${base}/chk-1/merged`, reason: 'REFERENCED', snapshots: [2] }]);

    const registry = new RegistryEditor(EMPTY_REGISTRY);
    registry.ownDirectory(1, '/sp/job');
    registry.ownDirectory(2, '/sp/job/inner');
    const sealed = registry.seal();
    expect(planDiscard(sealed, 2, [], ['/sp/job/inner'])).toEqual({
      locations: [],
      stateHandles: [],
      kept: [{ path: '/sp/job/inner', reason: 'LIVE_DIRECTORY', snapshots: [1] }],
    });
    expect(planDiscard(sealed, 1, [], ['/sp/job'])).toEqual({
      locations: ['/sp/job'],
      stateHandles: [],
      kept: [{ path: '/sp/job/inner', reason: 'LIVE_DIRECTORY', snapshots: [2] }],
    });
  });

  it('R21 an acknowledgement naming state a discard is deleting fails its snapshot and is cleaned up as stray', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1, tolerableFailures: 5 });
    checkpoint(job, [shared('s1'), own(1, 'p1')]);
    checkpoint(job, [own(2, 'p2')]); // s1 is chk 1's alone: deleting while the discard runs
    expect(whyKept(job.state.sharedState, `${base}/shared/s1`)).toEqual({
      reason: 'BEING_DELETED',
      snapshots: [1],
    });
    const third = pending(job);
    const { events, reply } = ackWith(job, third, 'a', [shared('s1'), shared('s7'), own(third, 'p3')]);
    expect(reply.result).toBe('DISCARDED');
    expect(events.map((e) => e.type)).toEqual([
      'SnapshotFailed',
      'SnapshotDiscardRequested',
      'StrayAcknowledgementReceived',
    ]);
    expect(events[0]).toMatchObject({
      reason: 'CHECKPOINT_DECLINED',
      message: expect.stringContaining('s1'),
    });
    // s1 is deleted once, by chk 1's discard; the stray cleans up its other files (chk 3's directory
    // delete was planned before p3 was reported, so the stray names it).
    expect(events[2]).toMatchObject({
      cleanup: [shared('s7'), own(third, 'p3')],
      kept: [{ path: `${base}/shared/s1`, reason: 'BEING_DELETED', snapshots: [1] }],
    });
    job.run({ type: 'RecordDiscardCompleted', snapshotId: 1, bytesReclaimed: 110 });
    expect(whyKept(job.state.sharedState, `${base}/shared/s1`)).toBeNull();
  });

  it('a worker carries out only the deletion the store decided: an order naming anything else is told apart', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    const c1 = checkpoint(job, [shared('s1'), shared('s0'), own(1, 'p1')]);
    const c2 = checkpoint(job, [shared('s1'), own(2, 'p2')]);
    const plan = discardOf(c2.events, c1.id);
    const deleting = job.state.snapshots.get(c1.id)!.discard!.deleting!;
    expect(unorderedDeletion(deleting, plan)).toBeUndefined();
    // A file inside a directory being deleted is part of that deletion, however it is spelled.
    const inside = { path: `file://${base}/chk-1/more`, sizeBytes: 1 };
    expect(unorderedDeletion(deleting, { ...plan, stateHandles: [inside] })).toBeUndefined();
    // What chk 2 still references, chk 2's directory, another job's file: not this discard's to delete.
    expect(unorderedDeletion(deleting, { ...plan, stateHandles: [shared('s1')] })).toBe(`${base}/shared/s1`);
    expect(unorderedDeletion(deleting, { locations: [`${base}/chk-2`], stateHandles: [] })).toBe(
      `${base}/chk-2`,
    );
    expect(unorderedDeletion(deleting, { locations: [base], stateHandles: [] })).toBe(base);
    expect(unorderedDeletion([], plan)).toBe(`${base}/chk-1`);
  });

  it('an order that leaves out or keeps what the store marked differs from it as well (nothing would be left)', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    const c1 = checkpoint(job, [shared('s0'), own(1, 'p1')]);
    const c2 = checkpoint(job, [own(2, 'p2')]);
    const plan = discardOf(c2.events, c1.id);
    const deleting = job.state.snapshots.get(c1.id)!.discard!.deleting!;
    expect(deleting).toEqual(expect.arrayContaining([`${base}/chk-1`, `${base}/shared/s0`]));
    expect(orderMismatch(deleting, { ...plan, keep: [] })).toBeUndefined();
    // Naming more, as unorderedDeletion finds.
    expect(orderMismatch(deleting, { ...plan, stateHandles: [...plan.stateHandles, own(2, 'p2')] })).toBe(
      `${base}/chk-2/p2`,
    );
    // Leaving a mark out: the shared file would be recorded deleted and stay.
    const withoutShared = plan.stateHandles.filter((h) => !h.path.includes('/shared/'));
    expect(orderMismatch(deleting, { ...plan, stateHandles: withoutShared })).toBe(`${base}/shared/s0`);
    // Covered by a directory the order deletes: not left out.
    const marks = [`${base}/chk-1`, `${base}/chk-1/p1`];
    expect(orderMismatch(marks, { locations: [`${base}/chk-1`], stateHandles: [] })).toBeUndefined();
    // Keeping a mark, or a directory around it.
    expect(orderMismatch(deleting, { ...plan, keep: [`${base}/shared/s0`] })).toBe(`${base}/shared/s0`);
    expect(orderMismatch(deleting, { ...plan, keep: [`file://${base}/shared`] })).toBe(`${base}/shared/s0`);
    expect(orderMismatch(deleting, { ...plan, keep: [`${base}/shared/s9`] })).toBeUndefined();
  });

  it('views: shared and private sizes per snapshot, distinct referenced bytes per job', () => {
    const job = new Job().register({ tasks: ['a', 'b'], numRetained: 2 });
    const first = pending(job);
    ackWith(job, first, 'a', [shared('s1', 100), own(first, 'p', 10)]);
    ackWith(job, first, 'b', [{ path: `${base}/shared/unmarked`, sizeBytes: 7 }]);
    const second = pending(job);
    ackWith(job, second, 'a', [shared('s1', 100), own(second, 'p', 20)]);
    ackWith(job, second, 'b', []);
    expect(snapshotView(job.snapshot(first))).toMatchObject({ sharedStateSize: 107, privateStateSize: 10 });
    expect(snapshotView(job.snapshot(second))).toMatchObject({ sharedStateSize: 100, privateStateSize: 20 });
    // s1 once, unmarked 7, two private files.
    expect(jobSummaryView(job.state)).toMatchObject({ referencedStateSize: 137, referencedFiles: 4 });
  });

  it('R44 events written before the registry (no kept) are planned again by the fold, so a replay keeps live files', () => {
    const job = new Job().register({ tasks: ['a'], numRetained: 1 });
    checkpoint(job, [shared('s1'), own(1, 'p1')]);
    checkpoint(job, [shared('s1'), own(2, 'p2')]);
    // The old decider listed every handle and had no `kept`.
    const legacy = job.log.map((e) => {
      if (e.type !== 'SnapshotDiscardRequested') return e;
      const { kept: _kept, ...rest } = e;
      return { ...rest, stateHandles: [shared('s1'), own(1, 'p1')] };
    });
    const replayed = fold(initialState(JOB), legacy);
    expect(replayed.sharedState).toEqual(job.state.sharedState);
    expect(replayed.snapshots.get(1)!.discard!.deleting).toEqual([`${base}/chk-1`]);
    // ... and the workers plan a legacy request from the registry as it is now: s1 stays (chk 2 has it).
    const request = legacy.find((e) => e.type === 'SnapshotDiscardRequested')!;
    const plan = discardPlanOf(replayed.sharedState, 1, request as EventOf<'SnapshotDiscardRequested'>);
    expect(plan).toEqual({
      locations: [`${base}/chk-1`],
      stateHandles: [own(1, 'p1')],
      kept: [{ path: `${base}/shared/s1`, reason: 'REFERENCED', snapshots: [2] }],
    });
  });

  it('R44 an aggregate snapshot restores the registry the fold built (rebuilt from the snapshots)', () => {
    const job = new Job().register({ tasks: ['a', 'b'], numRetained: 1 });
    const first = pending(job);
    ackWith(job, first, 'a', [shared('s1')]);
    ackWith(job, first, 'b', [own(first, 'p')]);
    const second = pending(job);
    ackWith(job, second, 'a', [shared('s1'), shared('s2')]); // pending, with acks
    const restored = decodeState(JSON.parse(JSON.stringify(encodeState(job.state))))!;
    expect(restored.sharedState).toEqual(job.state.sharedState);
    expect(restored.sharedState.referencedBytes).toBe(210);
  });
});

describe('what Flink wrote for other jobs inside an imported directory since its import (decision 0043)', () => {
  const A = 'a1'.repeat(16);
  const B = 'b2'.repeat(16);
  const R = 'c3'.repeat(16);

  it('keeps another job’s checkpoint places and savepoints strictly inside; never the import’s own name', () => {
    const imported = '/data/imports/x';
    expect(
      otherJobsPlacesInside(A, imported, [
        `${imported}/_metadata`,
        `${imported}/${B}/chk-1/_metadata`,
        `${imported}/${B}/shared/sst-1`,
        `file://${imported}/${B}/taskowned/t`,
        `${imported}/savepoint-b2b2b2-0123456789ab/_metadata`,
        `${imported}/${A}/chk-1/_metadata`, // the importing job's own: its registry's to judge
        `${imported}/savepoint-a1a1a1-0123456789ab/_metadata`,
        `/data/imports/x2/${B}/chk-1/_metadata`, // beside the directory, not in it
      ]),
    ).toEqual([
      `${imported}/${B}/chk-1`,
      `${imported}/${B}/shared`,
      `${imported}/${B}/taskowned`,
      `${imported}/savepoint-b2b2b2-0123456789ab`,
    ]);
  });

  it('an area imported before its job was registered: the job’s chk-N and shared are kept, the import’s files are not', () => {
    const area = `/data/checkpoints/${R}`;
    expect(
      otherJobsPlacesInside(A, area, [`${area}/_metadata`, `${area}/chk-1/p`, `${area}/shared/s`]),
    ).toEqual([`${area}/chk-1`, `${area}/shared`]);
  });

  it('another run’s checkpoint adopted by import is the import’s, files and all', () => {
    const adopted = `/data/checkpoints/${R}/chk-5`;
    expect(otherJobsPlacesInside(A, adopted, [`${adopted}/_metadata`, `${adopted}/op-1`])).toEqual([]);
    const savepoint = '/data/savepoints/savepoint-c3c3c3-0123456789ab';
    expect(otherJobsPlacesInside(A, savepoint, [`${savepoint}/_metadata`])).toEqual([]);
  });
});
