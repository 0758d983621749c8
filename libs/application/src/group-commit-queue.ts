import type { Position } from '@snapcat/event-store';

/** A command's outcome as a decider gives it: its reply, or why it was refused; its events either way. */
export type Outcome<Event, Reply> =
  | { ok: true; reply: Reply; events: readonly Event[] }
  | { ok: false; error: unknown; events: readonly Event[] };

/** What a caller gets for an executed command. */
export interface CommandResult<Reply, Event> {
  reply: Reply;
  events: Event[];
  /** Where the last event of its batch landed in $all; undefined when the batch wrote nothing. */
  position?: Position;
}

/** One request: its commands, decided in order, and what the caller said about them. */
export interface Request<Command, Metadata> {
  readonly commands: readonly Command[];
  readonly metadata: Metadata;
}

/** A request waiting in a stream's queue, and how to answer its caller. */
export interface Entry<Command, Metadata> extends Request<Command, Metadata> {
  /** 'load': a read, answered with the state once earlier commands are durable (no commands); 'one': a
   *  command, answered with its result; 'many': commands answered together, or with the first rejection. */
  kind: 'load' | 'one' | 'many';
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Answers a committed batch's callers: a load with the state, a command with its reply or rejection, a
 * request of many commands with all their results or its first rejection (the job's decider refuses such a
 * request whole: `decideBatch`'s `requestSizes`). `outcomes` are in the order of the entries' commands.
 */
export function settle<State, Event, Reply>(
  batch: readonly Entry<unknown, unknown>[],
  state: State,
  outcomes: readonly Outcome<Event, Reply>[],
  position: Position | undefined,
): void {
  let at = 0;
  for (const entry of batch) {
    if (entry.kind === 'load') entry.resolve(state);
    else if (entry.kind === 'one') {
      const outcome = outcomes[at]!;
      if (outcome.ok) entry.resolve({ reply: outcome.reply, events: outcome.events, position });
      else entry.reject(outcome.error);
    } else {
      let rejection: unknown;
      const executed: CommandResult<Reply, Event>[] = [];
      for (let i = at; i < at + entry.commands.length; i += 1) {
        const outcome = outcomes[i]!;
        if (outcome.ok) executed.push({ reply: outcome.reply, events: outcome.events as Event[], position });
        else rejection ??= outcome.error;
      }
      if (rejection === undefined) entry.resolve(executed);
      else entry.reject(rejection);
    }
    at += entry.commands.length;
  }
}

/**
 * One stream's single writer (decision 0002): requests wait in arrival order, and each commit takes those
 * that queued up meanwhile, at most `maxBatch` commands (whole entries, at least one), as one batch (group
 * commit). A batch that fails fails its callers, not the queue: the next batch goes on.
 */
export class GroupCommitQueue<Command, Metadata> {
  private readonly waiting: Entry<Command, Metadata>[] = [];
  private draining = false;

  constructor(
    private readonly commit: (batch: Entry<Command, Metadata>[]) => Promise<void>,
    private readonly maxBatch: number,
    /** A failed batch's error as its callers see it. */
    private readonly failure: (error: unknown) => unknown = (error) => error,
  ) {}

  /** Nothing waiting and no commit running: the stream's writer may be dropped. */
  get idle(): boolean {
    return !this.draining && this.waiting.length === 0;
  }

  push(
    kind: Entry<Command, Metadata>['kind'],
    commands: readonly Command[],
    metadata: Metadata,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ kind, commands, metadata, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        // Start on the next turn of the event loop, so that every request read from the sockets in this
        // turn joins the batch: group commit even when the store's append is synchronous (SQLite).
        setImmediate(() => void this.drain());
      }
    });
  }

  /**
   * The first half of the entries, then the rest, each committed on what the one before wrote: a batch
   * whose events are more than the store takes at once. An entry's events stay in one append here; an entry
   * alone over the limit is split by commitInParts, or fails alone when it is one command.
   */
  async commitInHalves(batch: Entry<Command, Metadata>[]): Promise<void> {
    const half = Math.ceil(batch.length / 2);
    for (const part of [batch.slice(0, half), batch.slice(half)]) {
      await this.commit(part).catch((error: unknown) => this.fail(part, error));
    }
  }

  /**
   * One request of many commands whose events are more than the store takes at once: the first half of its
   * commands, then the rest on what the first wrote, answered together as one entry (its results in order,
   * or its first rejection, as settle answers). A failed commit throws: the caller's batch fails with it.
   */
  async commitInParts(entry: Entry<Command, Metadata>): Promise<void> {
    const half = Math.ceil(entry.commands.length / 2);
    const results: unknown[] = [];
    let rejection: { error: unknown } | undefined;
    for (const commands of [entry.commands.slice(0, half), entry.commands.slice(half)]) {
      const part: Entry<Command, Metadata> = {
        kind: 'many',
        commands,
        metadata: entry.metadata,
        resolve: (executed) => results.push(...(executed as unknown[])),
        reject: (error) => (rejection ??= { error }),
      };
      await this.commit([part]); // a failure rejects the whole entry (drain), and the rest is not written
    }
    if (rejection) entry.reject(rejection.error);
    else entry.resolve(results);
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.nextBatch();
        await this.commit(batch).catch((error: unknown) => this.fail(batch, error));
      }
    } finally {
      this.draining = false;
    }
  }

  /** The first waiting entries holding at most `maxBatch` commands (at least one entry). */
  private nextBatch(): Entry<Command, Metadata>[] {
    let entries = 0;
    let commands = 0;
    while (entries < this.waiting.length) {
      commands += this.waiting[entries]!.commands.length;
      if (entries > 0 && commands > this.maxBatch) break;
      entries += 1;
    }
    return this.waiting.splice(0, entries);
  }

  private fail(batch: readonly Entry<Command, Metadata>[], error: unknown): void {
    const failure = this.failure(error);
    for (const entry of batch) entry.reject(failure);
  }
}
