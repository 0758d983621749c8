import type { StateHandle } from './schemas';

const NO_HANDLES: readonly StateHandle[] = Object.freeze([]);

/**
 * The acknowledgements of a pending snapshot, shared by the successive versions of a job's state: a
 * version sees the first `count` of them (its snapshot's `acknowledged`), and appending the next one never
 * changes what an older version sees. So a copy-on-write draft shares the log instead of copying it,
 * which made every acknowledgement cost O(tasks) (O(tasks²) per snapshot of a job with many subtasks).
 * A draft that is thrown away (its append failed) may leave entries behind; the next version to reach
 * their sequence numbers overwrites them, and `has` checks that an entry is the one at its number.
 *
 * Only what decisions use is kept: which task acknowledged and the state handles it reported (a discard
 * deletes them, a manifest lists them). Per-task sizes and times are in the events, for the read model.
 */
export class AckLog {
  /** The log of every snapshot that is no longer pending: it never takes an acknowledgement. */
  static readonly EMPTY = new AckLog();

  // Two parallel arrays rather than an object per acknowledgement: a job of 40,000 subtasks holds tens of
  // thousands of them, and fewer live objects make shorter garbage-collection pauses.
  private readonly taskIds: string[] = [];
  private readonly handles: (readonly StateHandle[])[] = [];
  private readonly seqOf = new Map<string, number>();

  static of(entries: readonly (readonly [string, readonly StateHandle[]])[]): AckLog {
    const log = new AckLog();
    entries.forEach(([taskId, handles], seq) => log.append(seq, taskId, handles));
    return log;
  }

  /** Whether `taskId` is among the first `count` acknowledgements. */
  has(count: number, taskId: string): boolean {
    const seq = this.seqOf.get(taskId);
    return seq !== undefined && seq < count && this.taskIds[seq] === taskId;
  }

  /** Records acknowledgement number `seq`: the version that has `seq` acknowledgements appends its next. */
  append(seq: number, taskId: string, handles: readonly StateHandle[]): void {
    if (this === AckLog.EMPTY) throw new Error('acknowledgement appended to a snapshot that is not pending');
    // Most tasks report no handles; one shared empty list instead of one per acknowledgement.
    this.taskIds[seq] = taskId;
    this.handles[seq] = handles.length === 0 ? NO_HANDLES : handles;
    this.seqOf.set(taskId, seq);
  }

  /** The first `count` acknowledgements, in the order they came: each task with the handles it reported. */
  entries(count: number): [string, StateHandle[]][] {
    return this.taskIds.slice(0, count).map((taskId, seq) => [taskId, this.handles[seq] as StateHandle[]]);
  }

  /** Shown as its entries (for tests and logs); a version's own are `entries(acknowledged)`. */
  toJSON(): [string, StateHandle[]][] {
    return this.entries(this.taskIds.length);
  }
}
