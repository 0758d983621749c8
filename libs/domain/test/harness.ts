import {
  Command,
  CommandRejected,
  decide,
  fold,
  initialState,
  type Event,
  type JobState,
  type CommandOf,
  type Replies,
  type Retention,
} from '../src';

export const JOB = '0123456789abcdef0123456789abcdef';
export const T0 = Date.parse('2026-01-01T00:00:00.000Z');
/** Every discard flag off: a savepoint's properties, an imported snapshot's, a NO_CLAIMed one's (R62, R69). */
export const RETAIN_ALL = {
  discardSubsumed: false,
  discardFinished: false,
  discardCancelled: false,
  discardFailed: false,
  discardSuspended: false,
} as const;

type Input<T extends Command['type']> = Omit<CommandOf<T>, 'jobId'> & { type: T };

/** Drives the pure aggregate the way the command handler does: decide, then fold the events. */
/** The source of a managed job in these tests (R67). */
export const MANAGED_SOURCE = { type: 'flink' as const, cluster: 'prod-eu' };

export class Job {
  state: JobState = initialState(JOB);
  log: Event[] = [];
  now = T0;

  run<T extends Command['type']>(input: Input<T>): { events: Event[]; reply: Replies[T] } {
    const command = Command.parse({ ...input, jobId: JOB }) as CommandOf<T>;
    const { events, reply } = decide(this.state, command, this.now);
    this.state = fold(this.state, events);
    this.log.push(...events);
    return { events, reply };
  }

  reject<T extends Command['type']>(input: Input<T>): CommandRejected {
    try {
      this.run(input);
    } catch (e) {
      if (e instanceof CommandRejected) return e;
      throw e;
    }
    throw new Error(`expected ${input.type} to be rejected`);
  }

  register(
    options: Partial<{
      tasks: string[];
      numRetained: number;
      retention: Retention;
      maxConcurrent: number;
    }> & {
      minPauseMs?: number;
      tolerableFailures?: number;
      timeoutMs?: number;
      persistOnFailure?: boolean;
    } = {},
  ): this {
    this.run({
      type: 'ConfigureJob',
      name: 'job',
      tasks: options.tasks ?? ['a', 'b'],
      checkpointing: {
        numRetained: options.numRetained ?? 1,
        timeoutMs: options.timeoutMs ?? 60_000,
        maxConcurrent: options.maxConcurrent ?? 10,
        minPauseMs: options.minPauseMs ?? 0,
        tolerableFailures: options.tolerableFailures ?? 0,
        retention: options.retention ?? 'NEVER_RETAIN_AFTER_TERMINATION',
        persistOnFailure: options.persistOnFailure ?? true,
      },
      storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
    });
    return this;
  }

  /** Registers the job as managed through Flink (R67): no tasks, `MANAGED_SOURCE` as its source. */
  registerManaged(numRetained = 1, storage = { checkpointDir: '/data/chk', savepointDir: '/data/sp' }): this {
    this.run({
      type: 'ConfigureJob',
      name: 'managed',
      tasks: [],
      source: MANAGED_SOURCE,
      checkpointing: {
        numRetained,
        timeoutMs: 60_000,
        maxConcurrent: 1,
        minPauseMs: 0,
        tolerableFailures: 5,
        retention: 'NEVER_RETAIN_AFTER_TERMINATION',
        persistOnFailure: true,
      },
      storage,
    });
    return this;
  }

  private triggers = 0;

  /** A job that carries on from where this one is, from the given state (say, an aggregate snapshot's). */
  continuedWith(state: JobState): Job {
    const job = new Job();
    job.state = state;
    job.now = this.now;
    job.triggers = this.triggers;
    return job;
  }
  trigger(kind: 'CHECKPOINT' | 'SAVEPOINT' = 'CHECKPOINT', triggerType: 'MANUAL' | 'PERIODIC' = 'MANUAL') {
    this.triggers += 1;
    return this.run({
      type: 'TriggerSnapshot',
      kind,
      triggerId: `t-${this.triggers}`,
      triggerType,
      formatType: 'CANONICAL',
    }).reply;
  }

  ack(snapshotId: number, taskId: string, stateSize = 10) {
    return this.run({
      type: 'AcknowledgeTask',
      snapshotId,
      taskId,
      stateSize,
      stateHandles: [{ path: `/data/chk/${JOB}/chk-${snapshotId}/${taskId}`, sizeBytes: stateSize }],
    }).reply;
  }

  /** Triggers and fully acknowledges a snapshot; returns its id. */
  complete(
    kind: 'CHECKPOINT' | 'SAVEPOINT' = 'CHECKPOINT',
    triggerType: 'MANUAL' | 'PERIODIC' = 'MANUAL',
  ): number {
    const reply = this.trigger(kind, triggerType);
    if (!reply.accepted) throw new Error(`trigger rejected: ${reply.reason}`);
    for (const task of this.state.tasks) this.ack(reply.snapshotId, task);
    return reply.snapshotId;
  }

  snapshot(id: number) {
    return this.state.snapshots.get(id)!;
  }

  types(events: Event[]): string[] {
    return events.map((e) => e.type);
  }
}
