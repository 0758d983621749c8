import type { JobState } from '@snapcat/domain';
import type { EventStore } from '@snapcat/event-store';
import {
  AGGREGATE_STREAM_MAX_COUNT,
  AggregateSnapshotTooLargeError,
  readAggregateSnapshot,
  writeAggregateSnapshot,
} from './aggregate-snapshots';
import { aggregateStream } from './streams';

/** Where one cached aggregate's snapshots stand. */
export interface SnapshotMarks {
  /** The revision of the last snapshot written, tried or loaded: the next one is due an interval later. */
  revision: bigint;
  writing: boolean;
  /** True once the side stream's max count was set (once per cached aggregate, off the command path). */
  capped: boolean;
  /** Entries the last snapshot written held. */
  weight: number;
}

export const noSnapshotYet = (): SnapshotMarks => ({
  revision: -1n,
  writing: false,
  capped: false,
  weight: 0,
});

/** A cached aggregate as a snapshot policy sees it after a commit. */
export interface Snapshotted<State> {
  readonly id: string;
  readonly state: State;
  readonly revision: bigint;
  readonly snapshot: SnapshotMarks;
}

/** How a handler's cached aggregates are snapshotted: where a cold one starts, and when one is written. */
export interface Snapshotting<State> {
  /** The newest snapshot of the aggregate, for a cold writer to start from instead of the first event. */
  load(id: string): Promise<{ state: State; revision: bigint } | undefined>;
  /** After each commit: writes a snapshot when one is due, off the command path (never fails a command). */
  committed(aggregate: Snapshotted<State>): void;
  /** Waits for snapshot writes in flight to settle. */
  flush(): Promise<void>;
}

export interface AggregateSnapshotStats {
  aggregateSnapshotsWritten: number;
  aggregateSnapshotsLoaded: number;
  /** Aggregate snapshots over the store's append limit, written in several parts. */
  aggregateSnapshotsChunked: number;
  /** Aggregate snapshots not written: more than the store takes in MAX_AGGREGATE_SNAPSHOT_PARTS appends. */
  aggregateSnapshotsSkipped: number;
  /** Aggregate snapshots whose write failed otherwise (the store refused or was unreachable). */
  aggregateSnapshotsFailed: number;
}

export const newAggregateSnapshotStats = (): AggregateSnapshotStats => ({
  aggregateSnapshotsWritten: 0,
  aggregateSnapshotsLoaded: 0,
  aggregateSnapshotsChunked: 0,
  aggregateSnapshotsSkipped: 0,
  aggregateSnapshotsFailed: 0,
});

/**
 * Entries a job's snapshot holds: its task list (written once), snapshots, pending acknowledgements, retained
 * handles, and what discards in progress are deleting (the shared-state registry is rebuilt from these).
 */
export function aggregateWeight(state: JobState): number {
  let weight = state.tasks.length + state.snapshots.size;
  for (const snapshot of state.snapshots.values()) {
    weight +=
      (snapshot.status === 'PENDING' ? snapshot.acknowledged : 0) +
      (snapshot.taskHandles?.length ?? 0) +
      (snapshot.discard?.deleting?.length ?? 0);
  }
  return weight;
}

/**
 * Events between two snapshots of a job (decision 0003). A large aggregate (many retained savepoints, each
 * with its acknowledgements) is costly to encode and to store, so its snapshots are spaced out in
 * proportion: encoding stays a small, constant cost per event, the side stream grows no faster than the
 * job's own, and a cold start replays no more events than the snapshot it starts from holds entries. Before
 * its first snapshot a writer knows only the task list's size (the rest needs a scan), which is the bulk
 * for a job of many subtasks.
 */
export const snapshotInterval = (every: number, marks: SnapshotMarks, state: JobState): number =>
  Math.max(every, marks.weight, state.tasks.length);

export interface AggregateSnapshotPolicyOptions {
  /** At least this many new events between two snapshots of a job (cold starts read at most that many). */
  every: number;
  /** Told of failures of snapshot writes, which never fail a command. */
  onBackgroundError: (error: unknown) => void;
}

/** Job aggregates snapshotted to their side stream (`snapcat-aggregate-<jobId>`, decision 0003). */
export class AggregateSnapshotPolicy implements Snapshotting<JobState> {
  /** One snapshot written at a time per handler (see `committed`). */
  private writing = false;
  private readonly background = new Set<Promise<void>>();

  constructor(
    private readonly store: EventStore,
    private readonly options: AggregateSnapshotPolicyOptions,
    readonly stats: AggregateSnapshotStats = newAggregateSnapshotStats(),
  ) {}

  async load(jobId: string): Promise<{ state: JobState; revision: bigint } | undefined> {
    const snapshot = await readAggregateSnapshot(this.store, jobId);
    if (snapshot) this.stats.aggregateSnapshotsLoaded += 1;
    return snapshot;
  }

  committed(job: Snapshotted<JobState>): void {
    const marks = job.snapshot;
    const interval = snapshotInterval(this.options.every, marks, job.state);
    if (marks.writing || job.revision - marks.revision < BigInt(interval)) return;
    // When many jobs fall due together (equal load, a restart), their snapshots go out one per commit
    // instead of stalling one commit for all of them.
    if (this.writing) return;
    this.writing = true;
    marks.writing = true;
    const weight = aggregateWeight(job.state);
    marks.weight = weight;
    const revision = job.revision;
    const write = writeAggregateSnapshot(this.store, job.id, revision, job.state, weight)
      .then((parts) => this.written(job.id, marks, parts))
      .catch((error: unknown) => {
        if (error instanceof AggregateSnapshotTooLargeError) this.stats.aggregateSnapshotsSkipped += 1;
        else this.stats.aggregateSnapshotsFailed += 1;
        this.options.onBackgroundError(error);
      })
      .finally(() => {
        // Written or not, the next try is an interval later: a snapshot that cannot be written is not
        // encoded and tried again after every command (a cold start meanwhile reads further back).
        marks.revision = revision;
        marks.writing = false;
        this.writing = false;
        this.background.delete(write);
      });
    this.background.add(write);
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  private async written(jobId: string, marks: SnapshotMarks, parts: number): Promise<void> {
    this.stats.aggregateSnapshotsWritten += 1;
    if (parts > 1) this.stats.aggregateSnapshotsChunked += 1;
    // Older snapshots serve no cold start: the side stream keeps a few (its max count), not every one.
    if (!marks.capped)
      await this.store.setStreamMaxCount?.(aggregateStream(jobId), AGGREGATE_STREAM_MAX_COUNT);
    marks.capped = true;
  }
}
