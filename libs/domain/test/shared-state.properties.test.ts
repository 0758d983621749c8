import fc from 'fast-check';
import {
  CommandRejected,
  decodeState,
  encodeState,
  fold,
  initialState,
  isTerminal,
  isLooseLocation,
  isWithin,
  looseFilesChangedBy,
  looseReferences,
  normaliseLocation,
  rebuildRegistry,
  referencesChangedBy,
  type JobState,
  type Event,
  type StateHandle,
} from '../src';
import { JOB, Job } from './harness';
import { propertyRuns, reachFloor } from './property-runs';

// Random lifecycles of an incremental job (Flink's layout: shared/ beside chk-N), with acknowledgements
// that draw shared and private handles from a small pool so that snapshots share files.
const TASKS = ['a', 'b'];
const TASKS_COUNT = 2;
const base = `/data/chk/${JOB}`;

const handleChoice = fc.record({
  shared: fc.subarray([0, 1, 2, 3, 4, 5], { maxLength: 3 }),
  /** Private files in the snapshot's own directory, or (rarely) in the one before it. */
  own: fc.subarray([0, 1], { maxLength: 2 }),
  previous: fc.boolean(),
  /** Shared files of a client's own layout, which no Flink layout names (`isLooseLocation`). */
  loose: fc.subarray([0, 1], { maxLength: 1 }),
  /** Whether the ack marks shared files (Flink does), or leaves the layout to tell. */
  marked: fc.boolean(),
});

const step = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('trigger' as const), savepoint: fc.boolean() }) },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('complete' as const),
      handles: fc.array(handleChoice, { minLength: TASKS_COUNT, maxLength: TASKS_COUNT }),
    }),
  },
  {
    weight: 30,
    arbitrary: fc.record({
      op: fc.constant('ack' as const),
      back: fc.nat(2),
      task: fc.constantFrom(...TASKS),
      handles: handleChoice,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('stray' as const), back: fc.nat(4), handles: handleChoice }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('decline' as const), back: fc.nat(2) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('persist' as const), back: fc.nat(5) }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('discard' as const), back: fc.nat(6), force: fc.boolean() }),
  },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('discarded' as const), back: fc.nat(8) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('strayDeleted' as const), back: fc.nat(3) }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3000 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('retain' as const), n: fc.integer({ min: 1, max: 3 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('status' as const),
      status: fc.constantFrom('SUSPENDED', 'RUNNING', 'RUNNING', 'FAILED', 'CANCELED'),
    }),
  },
);
type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

/**
 * An oracle that knows nothing of the registry: which snapshot acknowledged which location (from the
 * events), which snapshots are live, what each deletion named. It checks every deletion as it is decided.
 */
class Oracle {
  private readonly acked = new Map<number, Set<string>>();
  private readonly directories = new Map<number, string[]>();
  private readonly released = new Set<number>();
  /** Every location acknowledged (by a snapshot or a stray ack) -> how often a deletion covered it. */
  readonly deletions = new Map<string, number>();
  /** Acknowledged and not deleted since: what a directory delete really removes. */
  private readonly existing = new Set<string>();
  violations: string[] = [];
  deletionsSeen = 0;

  private liveOthers(except?: number): { locations: Set<string>; directories: string[] } {
    const locations = new Set<string>();
    const directories: string[] = [];
    for (const [id, set] of this.acked) {
      if (id !== except && !this.released.has(id)) for (const l of set) locations.add(l);
    }
    for (const [id, dirs] of this.directories) {
      if (id !== except && !this.released.has(id)) directories.push(...dirs);
    }
    return { locations, directories };
  }

  private isLive(location: string, live: { locations: Set<string>; directories: string[] }): boolean {
    return live.locations.has(location) || live.directories.some((d) => isWithin(location, d));
  }

  /** A deletion: files named, directories deleted less what they keep. */
  private deleted(
    who: string,
    except: number | undefined,
    files: StateHandle[],
    dirs: string[],
    kept: string[],
  ): void {
    this.deletionsSeen += 1;
    const live = this.liveOthers(except);
    const covered = new Set<string>();
    for (const file of files) {
      const location = normaliseLocation(file.path);
      if (this.isLive(location, live)) this.violations.push(`${who} names live ${location}`);
      covered.add(location);
    }
    for (const dir of dirs.map(normaliseLocation)) {
      for (const location of [...live.locations, ...live.directories]) {
        if (isWithin(location, dir) && !kept.some((k) => isWithin(location, k))) {
          this.violations.push(`${who} deletes ${dir} with live ${location} in it`);
        }
      }
      for (const location of this.existing) {
        if (isWithin(location, dir) && !kept.some((k) => isWithin(location, k))) covered.add(location);
      }
    }
    for (const location of covered) {
      if (this.deletions.has(location)) this.deletions.set(location, this.deletions.get(location)! + 1);
      this.existing.delete(location);
    }
  }

  private acknowledged(handles: StateHandle[]): Set<string> {
    const locations = new Set(handles.map((h) => normaliseLocation(h.path)));
    for (const location of locations) {
      if (!this.deletions.has(location)) this.deletions.set(location, 0);
      this.existing.add(location);
    }
    return locations;
  }

  observe(event: Event): void {
    switch (event.type) {
      case 'SnapshotTriggered':
        this.directories.set(event.snapshotId, [normaliseLocation(event.externalPath)]);
        return;
      case 'SnapshotPersisted':
        this.directories.get(event.snapshotId)!.push(normaliseLocation(event.savepointPath));
        return;
      case 'TaskAcknowledged': {
        const set = this.acked.get(event.snapshotId) ?? new Set<string>();
        for (const location of this.acknowledged(event.stateHandles)) set.add(location);
        this.acked.set(event.snapshotId, set);
        return;
      }
      case 'StrayAcknowledgementReceived': {
        // A late acknowledgement's file in a directory a discard is deleting is named again on purpose
        // (whyKept: the directory's deletion may have passed it): a second deletion, not a count of two.
        const renamed = event.cleanup!.filter((h) => this.inDiscardedDirectory(normaliseLocation(h.path)));
        const counts = renamed.map((h) => [h.path, this.deletions.get(normaliseLocation(h.path))] as const);
        this.acknowledged(event.stateHandles);
        this.deleted(`stray ack ${event.snapshotId}`, undefined, event.cleanup!, [], []);
        for (const [path, count] of counts) {
          if (count !== undefined && count > 0) this.deletions.set(normaliseLocation(path), count);
        }
        return;
      }
      case 'SnapshotDiscardRequested':
        this.deleted(
          `discard of ${event.snapshotId}`,
          event.snapshotId,
          event.stateHandles,
          event.locations,
          event.kept!.map((k) => normaliseLocation(k.path)),
        );
        this.released.add(event.snapshotId);
        return;
      default:
        return;
    }
  }

  /** Whether the location lies in the directory of a snapshot whose discard was requested. */
  private inDiscardedDirectory(location: string): boolean {
    return [...this.released].some((id) =>
      (this.directories.get(id) ?? []).some((d) => isWithin(location, d)),
    );
  }

  /** Locations already deleted: Flink never writes a file under a name it used before. */
  retired(location: string): boolean {
    return (this.deletions.get(location) ?? 0) > 0;
  }
}

type HandleChoice = typeof handleChoice extends fc.Arbitrary<infer C> ? C : never;

/** A task's handles: private files are the task's own (Flink names them per subtask), never reused once deleted. */
function handlesFor(snapshotId: number, task: string, handles: HandleChoice, oracle: Oracle): StateHandle[] {
  const out: StateHandle[] = handles.shared.map((i) => ({
    path: `${base}/shared/s${i}`,
    sizeBytes: 100 + i,
    ...(handles.marked ? { shared: true } : {}),
  }));
  for (const i of handles.loose) out.push({ path: `/data/client/shared/l${i}`, sizeBytes: 50 + i });
  for (const i of handles.own)
    out.push({ path: `${base}/chk-${snapshotId}/${task}-p${i}`, sizeBytes: 10 + i });
  if (handles.previous && snapshotId > 1) {
    out.push({ path: `${base}/chk-${snapshotId - 1}/${task}-merged`, sizeBytes: 7 });
  }
  return out.filter((h) => !oracle.retired(normaliseLocation(h.path)));
}

function apply(job: Job, oracle: Oracle, s: Step): void {
  const recent = (back: number) => Math.max(1, job.state.nextSnapshotId - 1 - back);
  const before = job.log.length;
  try {
    switch (s.op) {
      case 'trigger':
        job.trigger(s.savepoint ? 'SAVEPOINT' : 'CHECKPOINT');
        break;
      case 'complete': {
        const reply = job.trigger('CHECKPOINT');
        if (!reply.accepted) break;
        TASKS.forEach((taskId, i) =>
          job.run({
            type: 'AcknowledgeTask',
            snapshotId: reply.snapshotId,
            taskId,
            stateSize: 1,
            stateHandles: handlesFor(reply.snapshotId, taskId, s.handles[i]!, oracle),
          }),
        );
        break;
      }
      case 'ack': {
        const id = recent(s.back);
        job.run({
          type: 'AcknowledgeTask',
          snapshotId: id,
          taskId: s.task,
          stateSize: 1,
          stateHandles: handlesFor(id, s.task, s.handles, oracle),
        });
        break;
      }
      case 'stray': {
        const id = job.state.nextSnapshotId + s.back; // never triggered
        job.run({
          type: 'AcknowledgeTask',
          snapshotId: id,
          taskId: 'a',
          stateSize: 1,
          stateHandles: handlesFor(recent(s.back), 'a', s.handles, oracle),
        });
        break;
      }
      case 'decline':
        job.run({ type: 'DeclineTask', snapshotId: recent(s.back), taskId: 'a' });
        break;
      case 'persist':
        job.run({ type: 'PersistSnapshot', snapshotId: recent(s.back) });
        break;
      case 'discard':
        job.run({ type: 'RequestDiscard', snapshotId: recent(s.back), force: s.force });
        break;
      case 'discarded':
        job.run({ type: 'RecordDiscardCompleted', snapshotId: recent(s.back), bytesReclaimed: 1 });
        break;
      case 'strayDeleted':
        job.run({
          type: 'RecordStrayCleanupCompleted',
          cleanupId: Math.max(1, job.state.nextCleanupId - 1 - s.back),
          bytesReclaimed: 1,
        });
        break;
      case 'tick':
        job.now += s.ms;
        job.run({ type: 'ExpireOverdue' });
        break;
      case 'retain':
        job.run({
          type: 'ConfigureJob',
          name: 'job',
          tasks: TASKS,
          checkpointing: { ...job.state.checkpointing, numRetained: s.n },
          storage: job.state.storage,
        });
        break;
      case 'status':
        job.run({ type: 'ChangeJobStatus', status: s.status });
        break;
    }
  } catch (e) {
    if (!(e instanceof CommandRejected)) throw e;
  }
  for (const event of job.log.slice(before)) oracle.observe(event);
}

/** Discards every snapshot and completes every discard: the end of the job's life. */
function discardEverything(job: Job, oracle: Oracle): void {
  const before = job.log.length;
  if (!isTerminal(job.state.status)) job.run({ type: 'ChangeJobStatus', status: 'CANCELED' });
  for (const snapshot of [...job.state.snapshots.values()]) {
    if (snapshot.status === 'COMPLETED') {
      job.run({ type: 'RequestDiscard', snapshotId: snapshot.snapshotId, force: true });
    }
  }
  for (const snapshot of [...job.state.snapshots.values()]) {
    if (snapshot.discard && snapshot.discard.state !== 'DONE') {
      job.run({ type: 'RecordDiscardCompleted', snapshotId: snapshot.snapshotId, bytesReclaimed: 1 });
    }
  }
  for (const cleanupId of [...job.state.strayCleanups.keys()]) {
    job.run({ type: 'RecordStrayCleanupCompleted', cleanupId, bytesReclaimed: 1 });
  }
  for (const event of job.log.slice(before)) oracle.observe(event);
}

const history = fc.record({
  retention: fc.constantFrom('NEVER_RETAIN_AFTER_TERMINATION', 'RETAIN_ON_FAILURE', 'RETAIN_ON_CANCELLATION'),
  numRetained: fc.integer({ min: 1, max: 3 }),
  steps: fc.array(step, { minLength: 20, maxLength: 100 }),
});

function run(h: typeof history extends fc.Arbitrary<infer H> ? H : never) {
  const job = new Job().register({
    tasks: TASKS,
    retention: h.retention as never,
    numRetained: h.numRetained,
    maxConcurrent: 3,
    timeoutMs: 4000,
    tolerableFailures: 1000,
  });
  const oracle = new Oracle();
  for (const s of h.steps) apply(job, oracle, s);
  return { job, oracle };
}

const runs = propertyRuns();

describe('shared state invariants (fast-check)', () => {
  it('R42 no deletion names a live location; after every discard, each acknowledged location was deleted exactly once', () => {
    let shared = 0;
    fc.assert(
      fc.property(history, (h) => {
        const { job, oracle } = run(h);
        if (
          job.log.some(
            (e) => e.type === 'SnapshotDiscardRequested' && e.kept!.some((k) => k.reason === 'REFERENCED'),
          )
        ) {
          shared += 1;
        }
        discardEverything(job, oracle);
        expect(oracle.violations).toEqual([]);
        const notOnce = [...oracle.deletions].filter(([, count]) => count !== 1);
        expect(notOnce).toEqual([]);
        expect(job.state.sharedState.references.size).toBe(0);
        expect(job.state.sharedState.deleting.size).toBe(0);
        expect(job.state.sharedState.referencedBytes).toBe(0);
      }),
      runs,
    );
    // The case under test is reached, not just possible: discards that kept a file another snapshot shares.
    process.stdout.write(
      `shared-state property: ${shared} of ${runs.numRuns} histories kept a shared file\n`,
    );
    expect(shared).toBeGreaterThan(reachFloor(runs, 1 / 3));
  });

  it('a registry’s references change only at an acknowledgement’s handles and a discarded snapshot’s (what the index of loose files follows, decision 0046)', () => {
    let loose = 0;
    fc.assert(
      fc.property(history, (h) => {
        const { job } = run(h);
        discardEverything(job, new Oracle());
        let state: JobState = initialState(JOB);
        // The read model's index of the job's loose files, kept as the projector keeps it.
        const indexed = new Set<string>();
        for (const event of job.log) {
          const next = fold(state, [event]);
          const before = new Set([...state.sharedState.references.entries()].map(([l]) => l));
          const after = new Set([...next.sharedState.references.entries()].map(([l]) => l));
          const changed = [...before, ...after].filter((l) => before.has(l) !== after.has(l));
          const named = new Set(referencesChangedBy(event, state));
          expect(changed.filter((l) => !named.has(l))).toEqual([]);
          for (const file of looseFilesChangedBy(event, state)) {
            if (next.sharedState.references.has(file)) indexed.add(file);
            else indexed.delete(file);
            loose += 1;
          }
          expect([...indexed].sort()).toEqual([...looseReferences(next.sharedState)].sort());
          state = next;
        }
        expect([...indexed].every(isLooseLocation)).toBe(true);
      }),
      runs,
    );
    expect(loose).toBeGreaterThan(0);
  });

  it('R44 the registry folded event by event equals the one rebuilt from the snapshots and from an aggregate snapshot', () => {
    fc.assert(
      fc.property(history, fc.nat(), (h, cut) => {
        const { job } = run(h);
        const at = cut % (job.log.length + 1);
        const state = fold(initialState(JOB), job.log.slice(0, at));
        expect(rebuildRegistry(state.snapshots.values(), state.strayCleanups)).toEqual(state.sharedState);
        const restored = decodeState(JSON.parse(JSON.stringify(encodeState(state))))!;
        expect(restored.sharedState).toEqual(state.sharedState);
        // ... and folding the rest from the restored state gives the registry of folding from the start.
        expect(fold(restored, job.log.slice(at)).sharedState).toEqual(job.state.sharedState);
      }),
      runs,
    );
  });
});
