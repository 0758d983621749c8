import type { StateHandle } from './schemas';

export interface TaskAck {
  stateSize: number;
  stateHandles: StateHandle[];
  at: number;
}

/**
 * The acknowledgements of a pending snapshot, shared by the successive versions of a job's state: a
 * version sees the first `count` of them (its snapshot's `acknowledged`), and appending the next one never
 * changes what an older version sees. So a copy-on-write draft shares the log instead of copying it,
 * which made every acknowledgement cost O(tasks) (O(tasks²) per snapshot of a job with many subtasks).
 * A draft that is thrown away (its append failed) may leave entries behind; the next version to reach
 * their sequence numbers overwrites them, and `has` checks that an entry is the one at its number.
 */
export class AckLog {
  private readonly bySeq: { taskId: string; ack: TaskAck }[] = [];
  private readonly seqOf = new Map<string, number>();

  static of(entries: readonly [string, TaskAck][]): AckLog {
    const log = new AckLog();
    entries.forEach(([taskId, ack], seq) => log.append(seq, taskId, ack));
    return log;
  }

  /** Whether `taskId` is among the first `count` acknowledgements. */
  has(count: number, taskId: string): boolean {
    const seq = this.seqOf.get(taskId);
    return seq !== undefined && seq < count && this.bySeq[seq]?.taskId === taskId;
  }

  /** Records acknowledgement number `seq`: the version that has `seq` acknowledgements appends its next. */
  append(seq: number, taskId: string, ack: TaskAck): void {
    this.bySeq[seq] = { taskId, ack };
    this.seqOf.set(taskId, seq);
  }

  /** The first `count` acknowledgements, in the order they came. */
  entries(count: number): [string, TaskAck][] {
    return this.bySeq.slice(0, count).map(({ taskId, ack }) => [taskId, ack]);
  }

  /** Shown as its entries (for tests and logs); a version's own are `entries(acknowledged)`. */
  toJSON(): [string, TaskAck][] {
    return this.entries(this.bySeq.length);
  }
}
