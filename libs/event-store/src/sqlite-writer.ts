import Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { PAGE_CACHE_KIB, cacheSizePragma } from './sqlite-page-cache';
import {
  StoreUnavailableError,
  WrongExpectedVersionError,
  type AppendResult,
  type ExpectedRevision,
  type NewEvent,
} from './port';

/**
 * The SQLite store's writer thread, main side (decision 0002, issue 22). Commits and their fsyncs run in a
 * worker thread with a connection of its own (sqlite-writer-thread.cjs), so the event loop goes on serving
 * while one is written. The main thread hands over a batch; what arrives meanwhile is the next batch, sent
 * when the thread answers: one transaction, one fsync, per batch. A promise resolves once the thread's
 * COMMIT has returned: the events are durable, and visible to the main thread's connection (WAL: its next
 * read transaction sees them).
 *
 * The thread's body is a plain CommonJS file, located by `require.resolve` beside this module: every way
 * snapcat runs loads it untransformed (tsx, jest, whose transform worker threads do not get, and the
 * esbuild bundle, beside which tools/build/build.mjs copies it), and eslint and prettier check it.
 *
 * The protocol. To the thread: `commit` (a batch of operations), `checkpoint-itself` (the checkpointer
 * thread failed: SQLite's automatic checkpoints again), `close`. From it: `committed` (each operation's
 * result or error, in order) or `failed` (BEGIN or COMMIT failed: none was stored). Errors come as plain
 * fields (WireError) and are rebuilt here as the classes the store throws.
 */
export type WriteOp =
  | {
      kind: 'append';
      streamId: string;
      expected: ExpectedRevision;
      /** data and metadata as JSON, encoded here: strings are cheap to copy to the thread. */
      events: { id: string; type: string; data: string; metadata: string }[];
    }
  | { kind: 'maxCount'; streamId: string; maxCount: number };

type ToThread = { kind: 'commit'; ops: WriteOp[] } | { kind: 'checkpoint-itself' } | { kind: 'close' };

interface WireError {
  name: string;
  message: string;
  code?: string;
  streamId?: string;
  expected?: ExpectedRevision;
  actual?: bigint | 'no_stream';
}

type FromThread =
  | { kind: 'committed'; outcomes: ({ ok: AppendResult | null } | { error: WireError })[] }
  | { kind: 'failed'; error: WireError };

interface Pending {
  op: WriteOp;
  resolve(result: AppendResult | null): void;
  reject(error: unknown): void;
}

/** The journal modes SQLite names, by index: the thread reports its own through shared memory. */
const JOURNAL_MODES = ['delete', 'truncate', 'persist', 'memory', 'wal', 'off'] as const;
const SYNCHRONOUS = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;

export const appendOp = (streamId: string, events: NewEvent[], expected: ExpectedRevision): WriteOp => ({
  kind: 'append',
  streamId,
  expected,
  events: events.map((e) => ({
    id: e.id,
    type: e.type,
    data: JSON.stringify(e.data),
    metadata: JSON.stringify(e.metadata ?? {}),
  })),
});

export class SqliteWriter {
  /** Batches committed and operations in them (fewer commits than appends: grouped). */
  readonly stats = { commits: 0, operations: 0 };
  /** Set once the thread is gone without being closed: every write (and the store's reads) fails with it. */
  failure: StoreUnavailableError | undefined;
  private readonly worker: Worker;
  /** [0] 0 opening, 1 open, 2 failed to open; [1] journal mode index; [2] synchronous level; [3] cache_size. */
  private readonly settings = new Int32Array(new SharedArrayBuffer(16));
  private queued: Pending[] = [];
  private inFlight: Pending[] | undefined;
  private scheduled = false;
  private closing = false;
  private readonly exited: Promise<void>;
  private drained: (() => void) | undefined;

  constructor(
    file: string,
    /** Called after each commit, before its callers hear of it (subscriptions' wake-up). */
    private readonly onCommit: () => void,
    /** Called once if the thread stops without being closed, with the error every later call gets. */
    private readonly onStopped: (failure: StoreUnavailableError) => void = () => {},
  ) {
    this.worker = new Worker(require.resolve('./sqlite-writer-thread.cjs'), {
      workerData: {
        file,
        driver: require.resolve('better-sqlite3'),
        journalModes: JOURNAL_MODES,
        settings: this.settings.buffer,
        cacheSize: cacheSizePragma(PAGE_CACHE_KIB.writer),
      },
      execArgv: [],
    });
    this.worker.unref(); // kept alive only while a batch is in flight (see send)
    this.worker.on('message', (message: FromThread) => this.answered(message));
    this.worker.on('error', (error) => this.stopped(error.message));
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        this.stopped(`exit code ${code}`);
        resolve();
      }),
    );
  }

  /** Queues an operation for the next batch; resolves once its batch is committed (fsynced). */
  submit(op: WriteOp): Promise<AppendResult | null> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      if (this.closing) return reject(new StoreUnavailableError('the SQLite event store is closed'));
      this.queued.push({ op, resolve, reject });
      // Idle: wait for the rest of this turn's appends (group commit); busy: they go when it answers.
      if (!this.inFlight && !this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.send();
        });
      }
    });
  }

  /** Nothing queued, scheduled or being committed. */
  get idle(): boolean {
    return !this.inFlight && !this.scheduled && this.queued.length === 0;
  }

  /** The thread's connection's settings, as SQLite reports them (waits for the thread to open it). */
  durability(): { journalMode: string; synchronous: (typeof SYNCHRONOUS)[number] } {
    Atomics.wait(this.settings, 0, 0, 10_000);
    if (Atomics.load(this.settings, 0) !== 1) {
      throw this.failure ?? new StoreUnavailableError('the SQLite writer thread did not open the database');
    }
    return {
      journalMode: JOURNAL_MODES[this.settings[1]!] ?? 'unknown',
      synchronous: SYNCHRONOUS[this.settings[2]!]!,
    };
  }

  /** The thread's connection's `cache_size`, as SQLite reports it (negative: KiB). */
  cacheSize(): number {
    this.durability(); // waits for the thread to open it, or throws why it did not
    return this.settings[3]!;
  }

  /** Stops the thread at once, as a crash would: what is in flight fails (how tests kill it). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  checkpointItself(): void {
    this.post({ kind: 'checkpoint-itself' });
  }

  /** Writes what is queued and in flight, then closes the thread's connection and waits for it to exit. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.inFlight || this.queued.length > 0) {
      await new Promise<void>((resolve) => (this.drained = resolve));
    }
    // Referenced until it exits: unref'd, a process with nothing else to do would exit in the middle of close
    // (exit code 0, the connection not closed, whatever follows close skipped).
    this.worker.ref();
    this.post({ kind: 'close' });
    await this.exited;
  }

  private post(message: ToThread): void {
    if (!this.failure) this.worker.postMessage(message);
  }

  private send(): void {
    if (this.inFlight || this.queued.length === 0 || this.failure) return;
    this.inFlight = this.queued;
    this.queued = [];
    this.worker.ref(); // a process awaiting a commit must not exit under it
    this.post({ kind: 'commit', ops: this.inFlight.map((p) => p.op) });
  }

  private answered(message: FromThread): void {
    const batch = this.inFlight ?? [];
    this.inFlight = undefined;
    if (message.kind === 'failed') {
      const error = rebuildError(message.error);
      batch.forEach((p) => p.reject(error));
    } else {
      this.stats.commits += 1;
      this.stats.operations += batch.length;
      this.onCommit();
      batch.forEach((p, i) => {
        const outcome = message.outcomes[i]!;
        if ('ok' in outcome) p.resolve(outcome.ok);
        else p.reject(rebuildError(outcome.error));
      });
    }
    this.next();
  }

  /** The next batch if appends queued meanwhile; otherwise idle (and closed, if close() waits). */
  private next(): void {
    if (this.queued.length > 0) return this.send();
    if (!this.closing) this.worker.unref();
    this.drained?.();
  }

  /** The thread is gone. Unless closed, that is an outage the callers must see, not a silent stall. */
  private stopped(reason: string): void {
    if (this.failure || (this.closing && !this.inFlight && this.queued.length === 0)) return;
    this.failure = new StoreUnavailableError(
      `the SQLite event store's writer thread stopped (${reason}): nothing can be written or read until the process restarts`,
    );
    const lost = [...(this.inFlight ?? []), ...this.queued];
    this.inFlight = undefined;
    this.queued = [];
    lost.forEach((p) => p.reject(this.failure));
    this.drained?.();
    this.onStopped(this.failure);
  }
}

/** The error class the store threw before writes moved to the thread: callers (and the API) tell them apart. */
function rebuildError(wire: WireError): Error {
  if (wire.name === 'WrongExpectedVersionError') {
    return new WrongExpectedVersionError(wire.streamId!, wire.expected!, wire.actual!);
  }
  if (wire.name === 'SqliteError') return new Database.SqliteError(wire.message, wire.code!);
  const error = new Error(wire.message);
  error.name = wire.name;
  return error;
}
