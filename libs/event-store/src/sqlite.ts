import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { catchUpSubscription } from './catch-up';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer';
import { PAGE_CACHE_KIB, cacheSizePragma } from './sqlite-page-cache';
import { SqliteWriter, appendOp } from './sqlite-writer';
import {
  START,
  StoreFullError,
  STORE_FULL_CODES,
  type StoreFullCode,
  StoreUnavailableError,
  type AppendResult,
  type EventFilter,
  type EventHandler,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type LogSubscribeOptions,
  type LogSubscription,
} from './port';

interface Row {
  position: number;
  stream_id: string;
  revision: number;
  event_id: string;
  type: string;
  data: string;
  metadata: string;
  created: number;
}

/** How often the log is checkpointed: often enough that each copy is small. */
const CHECKPOINT_EVERY_MS = 100;

/**
 * How long the writer and checkpointer threads outlive the last commit (between this and twice this). Each
 * holds ~6 MB (an isolate and a connection) and the checkpointer wakes ten times a second: a store at rest
 * holds neither. The next write starts them again (a few milliseconds, once).
 */
const THREADS_IDLE_MS = 30_000;

/**
 * The embedded event store: one SQLite file in WAL mode with synchronous=FULL, so an append has been
 * fsynced when its promise resolves (a 2xx means durable). Appends are committed by a thread of their own
 * (sqlite-writer.ts), off the event loop; reads use this connection, on the main thread, and see every
 * append whose promise has resolved. Several processes may share the file; live subscriptions in another
 * process see new events within the poll interval.
 */
export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly appended = new EventEmitter().setMaxListeners(0);
  private readonly unrecoverable: ((error: Error) => void)[] = [];
  private corruptionSaid = false;
  private readonly statements;
  private readonly readAllStatements = new Map<string, Database.Statement<unknown[], Row>>();
  /** Started with the first write and stopped when idle: a process that only reads starts no thread. */
  private writer: SqliteWriter | undefined;
  private checkpointer: Checkpointer | undefined;
  private idleCheck: NodeJS.Timeout | undefined;
  /** Threads being stopped for idleness: close waits for them. */
  private retiring: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly identityCheck: NodeJS.Timeout;

  constructor(
    private readonly file: string,
    private readonly options: { pollMs?: number; threadsIdleMs?: number } = {},
  ) {
    // The writer thread's connection would be a database of its own.
    if (file === ':memory:') throw new Error('the SQLite event store needs a file: use memory: for none');
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma(cacheSizePragma(PAGE_CACHE_KIB.reader));
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        stream_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        event_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        metadata TEXT NOT NULL,
        created INTEGER NOT NULL,
        UNIQUE (stream_id, revision)
      );
      CREATE TABLE IF NOT EXISTS stream_max_counts (
        stream_id TEXT PRIMARY KEY,
        max_count INTEGER NOT NULL
      );
    `);
    this.identityCheck = this.watchFileIdentity();
    this.statements = {
      forwards: this.db.prepare<[string, number, number], Row>(
        'SELECT * FROM events WHERE stream_id = ? AND revision >= ? ORDER BY revision ASC LIMIT ?',
      ),
      backwards: this.db.prepare<[string, number, number], Row>(
        'SELECT * FROM events WHERE stream_id = ? AND revision <= ? ORDER BY revision DESC LIMIT ?',
      ),
      lastPosition: this.db.prepare<[], { position: number }>(
        'SELECT position FROM events ORDER BY position DESC LIMIT 1',
      ),
    };
  }

  /**
   * The durability settings of the connection that writes (the writer thread's), as SQLite reports them:
   * a 2xx means fsynced only with the log in WAL mode and `synchronous=FULL` (NORMAL survives a crash of
   * the process, not of the machine).
   */
  durability(): { journalMode: string; synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA' } {
    return this.writerThread().durability();
  }

  /** The reader's and the writer thread's page caches in KiB, as SQLite reports them (sqlite-page-cache.ts). */
  pageCacheKiB(): { reader: number; writer: number } {
    // Set in KiB, so SQLite reports them negative (a positive cache_size counts pages).
    return {
      reader: -(this.db.pragma('cache_size', { simple: true }) as number),
      writer: -this.writerThread().cacheSize(),
    };
  }

  /**
   * The writer thread (started by the first write): its counters, and the thread itself. A thread that
   * stops fails every later call to this store with StoreUnavailableError (HTTP 503, /readyz not ready).
   */
  writerThread(): SqliteWriter {
    if (this.closed) throw new StoreUnavailableError('the SQLite event store is closed');
    if (!this.writer) {
      const writer = new SqliteWriter(
        this.file,
        () => this.appended.emit('appended'),
        (failure) => this.unrecoverable.forEach((listener) => listener(failure)),
      );
      this.writer = writer;
      this.checkpointer = this.startCheckpointer(writer);
      this.stopThreadsWhenIdle(writer);
    }
    return this.writer;
  }

  /** A writer thread that stopped without being closed: this store fails every call until the process ends. */
  onUnrecoverable(listener: (error: Error) => void): void {
    this.unrecoverable.push(listener);
  }

  /**
   * The file this process opened must stay the store's: one deleted or replaced under it (a restore copied
   * over it, `rm` and a new start) keeps taking this process's writes in a file no other process sees, and
   * its workers act on that state (a walkthrough's deleted the new store's live checkpoint). Checked every
   * few seconds; a change is unrecoverable, so the process stops (exit 1) rather than run on it.
   */
  private watchFileIdentity(everyMs = 2000): NodeJS.Timeout {
    const identity = (): string | undefined => {
      try {
        const stat = statSync(this.file);
        // With its birth time: a file made anew at the path may get the deleted one's inode number.
        return `${stat.dev}:${stat.ino}:${stat.birthtimeMs}`;
      } catch {
        return undefined; // gone
      }
    };
    const opened = identity();
    const check = setInterval(() => {
      const now = identity();
      if (this.closed || now === opened) return;
      clearInterval(check);
      const failure = new Error(
        `the SQLite store file ${this.file} was ${now === undefined ? 'deleted' : 'replaced'} while this process ` +
          'had it open: its writes would go to a file no other process reads',
      );
      this.unrecoverable.forEach((listener) => listener(failure));
    }, everyMs);
    check.unref();
    return check;
  }

  /**
   * Stops the threads once a whole period has passed without a commit and nothing is queued. A thread that
   * failed is kept: its failure is what every later call must see. A write during the stop starts new ones
   * (the old connection, with nothing left to write, only closes).
   */
  private stopThreadsWhenIdle(writer: SqliteWriter): void {
    let commits = -1;
    const check = setInterval(() => {
      if (writer.failure || !writer.idle || writer.stats.commits !== commits) {
        commits = writer.stats.commits;
        return;
      }
      clearInterval(check);
      const checkpointer = this.checkpointer;
      this.writer = this.checkpointer = this.idleCheck = undefined;
      // Neither rejects (a thread that exits is stopped either way); allSettled so that nothing is unhandled.
      this.retiring = Promise.allSettled([this.retiring, writer.close(), checkpointer?.stop()]).then(
        () => undefined,
      );
    }, this.options.threadsIdleMs ?? THREADS_IDLE_MS);
    check.unref();
    this.idleCheck = check;
  }

  /**
   * Appends that arrive in the same turn of the event loop, or while the writer thread commits, to any
   * streams, are written in one transaction: one fsync for all of them (group commit across jobs). Each
   * append runs in its own savepoint, so one that fails (wrong expected revision) writes nothing and fails
   * alone.
   */
  async append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    try {
      return (await this.writerThread().submit(appendOp(streamId, events, expected)))!;
    } catch (error) {
      throw this.writeFailure(error);
    }
  }

  /** A write's error as callers should see it: a disk refusing to grow the files named as such (a 503). */
  private writeFailure(error: unknown): unknown {
    const code = (error as { code?: unknown } | null)?.code;
    if (STORE_FULL_CODES.includes(code as StoreFullCode)) {
      return new StoreFullError(this.file, code as StoreFullCode, { cause: error });
    }
    return this.unlessCorrupt(error);
  }

  /**
   * A file SQLite finds malformed (SQLITE_CORRUPT, SQLITE_NOTADB) is unrecoverable: a walkthrough copied a
   * backup over the open file, and the process went on answering commands with 2xx into a store whose reads
   * failed. Said once to the listeners (the process stops), and thrown as it came.
   */
  private unlessCorrupt(error: unknown): unknown {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && /^SQLITE_(CORRUPT|NOTADB)/.test(code) && !this.corruptionSaid) {
      this.corruptionSaid = true;
      const failure = new Error(
        `the SQLite store file ${this.file} is corrupt (${code}: ${(error as Error).message}): restore it from a ` +
          'backup taken with the process stopped, or with `sqlite3 .backup`',
      );
      this.unrecoverable.forEach((listener) => listener(failure));
    }
    return error;
  }

  /**
   * Keeps the newest `maxCount` events of the stream and deletes the rest at once: the embedded store's
   * scavenge, which frees the space (an aggregate snapshot can be megabytes). $all loses them too, as
   * EventStoreDB's does after a scavenge; snapcat's consumers read no stream that is capped.
   */
  async setStreamMaxCount(streamId: string, maxCount: number): Promise<void> {
    try {
      await this.writerThread().submit({ kind: 'maxCount', streamId, maxCount });
    } catch (error) {
      throw this.writeFailure(error);
    }
  }

  /** Reads fail too once the writer thread is gone: the store is unavailable, not quietly read-only. */
  private checkWriter(): void {
    // A request that reads while the process closes the store (the last of a drain): a 503, not SQLite's own
    // "the database connection is not open".
    if (this.closed) throw new StoreUnavailableError('the SQLite event store is closed');
    if (this.writer?.failure) throw this.writer.failure;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    try {
      return this.readStreamNow(streamId, options);
    } catch (error) {
      throw this.unlessCorrupt(error);
    }
  }

  private readStreamNow(streamId: string, options: ReadStreamOptions): RecordedEvent[] {
    this.checkWriter();
    const max = options.maxCount ?? -1;
    const rows =
      options.direction === 'backwards'
        ? this.statements.backwards.all(
            streamId,
            Number(options.fromRevision ?? BigInt(Number.MAX_SAFE_INTEGER)),
            max,
          )
        : this.statements.forwards.all(streamId, Number(options.fromRevision ?? 0n), max);
    return rows.map(toRecorded);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    try {
      return this.readAllNow(options);
    } catch (error) {
      throw this.unlessCorrupt(error);
    }
  }

  private readAllNow(options: ReadAllOptions): RecordedEvent[] {
    this.checkWriter();
    const backwards = options.direction === 'backwards';
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (options.after) {
      where.push(backwards ? 'position < ?' : 'position > ?');
      params.push(Number(options.after.commit));
    } else if (!backwards) {
      where.push('position > ?');
      params.push(Number(START.commit));
    }
    addFilter(options.filter, where, params);
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY position ${backwards ? 'DESC' : 'ASC'} LIMIT ?`;
    params.push(options.maxCount ?? -1);
    let statement = this.readAllStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare<unknown[], Row>(sql);
      this.readAllStatements.set(sql, statement);
    }
    return statement.all(...params).map(toRecorded);
  }

  logEnd(): Promise<Position | undefined> {
    return this.lastPosition(); // it records nothing but events
  }

  async lastPosition(): Promise<Position | undefined> {
    this.checkWriter();
    let row;
    try {
      row = this.statements.lastPosition.get();
    } catch (error) {
      throw this.unlessCorrupt(error);
    }
    if (!row) return undefined;
    const position = BigInt(row.position);
    return { commit: position, prepare: position };
  }

  subscribeToAll(
    options: LogSubscribeOptions,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): LogSubscription {
    return catchUpSubscription(this, this.appended, options, handler, onError, this.options.pollMs ?? 200);
  }

  /**
   * The writer thread's connection does not checkpoint; a thread of its own does (sqlite-checkpointer.ts),
   * so that no commit also pays for copying the log into the file. Should that thread fail, the writer
   * checkpoints again, as SQLite does by default, rather than let the log grow.
   */
  private startCheckpointer(writer: SqliteWriter): Checkpointer {
    // Its own writer's: a checkpointer failing as it stops at rest must not turn the next writer's off.
    return startCheckpointer(this.file, CHECKPOINT_EVERY_MS, () => writer.checkpointItself());
  }

  /** Writes what is queued, stops the threads, then closes this connection (the last: it removes the log). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.idleCheck);
    clearInterval(this.identityCheck);
    await this.writer?.close();
    await this.checkpointer?.stop();
    await this.retiring;
    if (this.db.open) this.db.close();
  }
}

function addFilter(filter: EventFilter | undefined, where: string[], params: (string | number)[]): void {
  if (filter?.streamNamePrefixes) {
    where.push(`(${filter.streamNamePrefixes.map(() => 'substr(stream_id, 1, ?) = ?').join(' OR ') || '0'})`);
    for (const prefix of filter.streamNamePrefixes) params.push(prefix.length, prefix);
  }
  if (filter?.eventTypes) {
    where.push(`type IN (${filter.eventTypes.map(() => '?').join(', ') || 'NULL'})`);
    params.push(...filter.eventTypes);
  }
}

function toRecorded(row: Row): RecordedEvent {
  const position = BigInt(row.position);
  return {
    id: row.event_id,
    type: row.type,
    streamId: row.stream_id,
    revision: BigInt(row.revision),
    position: { commit: position, prepare: position },
    data: JSON.parse(row.data),
    metadata: JSON.parse(row.metadata),
    created: new Date(row.created),
  };
}
