import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { catchUpSubscription } from './catch-up';
import { retriedAppend } from './memory';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer';
import {
  START,
  checkExpected,
  type AppendResult,
  type EventFilter,
  type EventHandler,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
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

interface QueuedAppend {
  streamId: string;
  events: NewEvent[];
  expected: ExpectedRevision;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

type AppendOutcome = { ok: AppendResult } | { error: unknown };

/**
 * The embedded event store: one SQLite file in WAL mode with synchronous=FULL, so an append has been
 * fsynced when its promise resolves (a 2xx means durable). Several processes may share the file; live
 * subscriptions in another process see new events within the poll interval.
 */
export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly appended = new EventEmitter().setMaxListeners(0);
  private readonly statements;
  private readonly readAllStatements = new Map<string, Database.Statement<unknown[], Row>>();
  /** Built once: better-sqlite3 wraps a function in a transaction on each `transaction()` call. */
  private readonly transactions;
  private queued: QueuedAppend[] = [];
  /** Started with the first append: a process that only reads never writes to the log. */
  private checkpointer: Checkpointer | undefined;
  /** Each stream's max count as last read or set here (0: none), so an append does not look it up again. */
  private readonly maxCounts = new Map<string, number>();

  constructor(
    private readonly file: string,
    private readonly options: { pollMs?: number } = {},
  ) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
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
    this.statements = {
      current: this.db.prepare<[string], { revision: number | null }>(
        'SELECT MAX(revision) AS revision FROM events WHERE stream_id = ?',
      ),
      byId: this.db.prepare<[string], Row>('SELECT * FROM events WHERE event_id = ?'),
      insert: this.db.prepare(
        'INSERT INTO events (stream_id, revision, event_id, type, data, metadata, created) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      forwards: this.db.prepare<[string, number, number], Row>(
        'SELECT * FROM events WHERE stream_id = ? AND revision >= ? ORDER BY revision ASC LIMIT ?',
      ),
      backwards: this.db.prepare<[string, number, number], Row>(
        'SELECT * FROM events WHERE stream_id = ? AND revision <= ? ORDER BY revision DESC LIMIT ?',
      ),
      maxCount: this.db.prepare<[string], { max_count: number }>(
        'SELECT max_count FROM stream_max_counts WHERE stream_id = ?',
      ),
      setMaxCount: this.db.prepare(
        'INSERT INTO stream_max_counts (stream_id, max_count) VALUES (?, ?) ' +
          'ON CONFLICT (stream_id) DO UPDATE SET max_count = excluded.max_count',
      ),
      trim: this.db.prepare<[string, number]>('DELETE FROM events WHERE stream_id = ? AND revision <= ?'),
    };
    // A nested transaction is a savepoint: a failure rolls back that append only.
    const appendOne = this.db.transaction(
      (streamId: string, events: NewEvent[], expected: ExpectedRevision): AppendResult =>
        this.appendOne(streamId, events, expected),
    );
    this.transactions = {
      batch: this.db.transaction((batch: QueuedAppend[], outcomes: AppendOutcome[]) => {
        for (const a of batch) {
          try {
            outcomes.push({ ok: appendOne(a.streamId, a.events, a.expected) });
          } catch (error) {
            outcomes.push({ error });
          }
        }
      }),
    };
  }

  /**
   * The durability settings of this store's own connection, as SQLite reports them: a 2xx means fsynced
   * only with the log in WAL mode and `synchronous=FULL` (NORMAL survives a crash of the process, not of
   * the machine).
   */
  durability(): { journalMode: string; synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA' } {
    const journalMode = this.db.pragma('journal_mode', { simple: true }) as string;
    const level = this.db.pragma('synchronous', { simple: true }) as number;
    return { journalMode, synchronous: (['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const)[level]! };
  }

  /**
   * Appends that arrive in the same turn of the event loop, to any streams, are written in one
   * transaction: one fsync for all of them (group commit across jobs). Each append runs in its own
   * savepoint, so one that fails (wrong expected revision) writes nothing and fails alone.
   */
  append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.queued.push({ streamId, events, expected, resolve, reject });
      if (this.queued.length === 1) setImmediate(() => this.flush());
      this.checkpointer ??= this.startCheckpointer();
    });
  }

  private flush(): void {
    const batch = this.queued;
    this.queued = [];
    const outcomes: AppendOutcome[] = [];
    try {
      this.transactions.batch.immediate(batch, outcomes);
    } catch (error) {
      batch.forEach((a) => a.reject(error)); // the commit itself failed: nothing of the batch is stored
      return;
    }
    this.appended.emit('appended');
    batch.forEach((a, i) => {
      const outcome = outcomes[i]!;
      if ('ok' in outcome) a.resolve(outcome.ok);
      else a.reject(outcome.error);
    });
  }

  private appendOne(streamId: string, events: NewEvent[], expected: ExpectedRevision): AppendResult {
    const retried = retriedAppend(streamId, events, (id) => {
      const row = this.statements.byId.get(id);
      return row && toRecorded(row);
    });
    if (retried) return retried;
    const current = BigInt(this.statements.current.get(streamId)?.revision ?? -1);
    checkExpected(streamId, expected, current);
    const created = Date.now();
    let revision = current;
    let position = 0n;
    for (const event of events) {
      revision += 1n;
      const info = this.statements.insert.run(
        streamId,
        revision,
        event.id,
        event.type,
        JSON.stringify(event.data),
        JSON.stringify(event.metadata ?? {}),
        created,
      );
      position = BigInt(info.lastInsertRowid);
    }
    this.trim(streamId, revision);
    return { nextExpectedRevision: revision, position: { commit: position, prepare: position } };
  }

  /**
   * Keeps the newest `maxCount` events of the stream and deletes the rest at once: the embedded store's
   * scavenge, which frees the space (an aggregate snapshot can be megabytes). $all loses them too, as
   * EventStoreDB's does after a scavenge; snapcat's consumers read no stream that is capped.
   */
  async setStreamMaxCount(streamId: string, maxCount: number): Promise<void> {
    this.statements.setMaxCount.run(streamId, maxCount);
    this.maxCounts.set(streamId, maxCount);
    const last = this.statements.current.get(streamId)?.revision;
    if (last != null) this.trim(streamId, BigInt(last));
  }

  private trim(streamId: string, last: bigint): void {
    let kept = this.maxCounts.get(streamId);
    if (kept === undefined) {
      kept = this.statements.maxCount.get(streamId)?.max_count ?? 0;
      this.maxCounts.set(streamId, kept);
    }
    if (kept > 0 && last >= BigInt(kept)) this.statements.trim.run(streamId, Number(last) - kept);
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
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

  subscribeToAll(
    options: LogSubscribeOptions,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): LogSubscription {
    return catchUpSubscription(
      (o) => this.readAll(o),
      this.appended,
      options,
      handler,
      onError,
      this.options.pollMs ?? 200,
    );
  }

  /**
   * This connection writes; a thread of its own checkpoints (sqlite-checkpointer.ts), so that no commit
   * also pays for copying the log into the file. Should that thread fail, this connection checkpoints
   * again, as SQLite does by default, rather than let the log grow.
   */
  private startCheckpointer(): Checkpointer | undefined {
    if (this.file === ':memory:') return undefined;
    this.db.pragma('wal_autocheckpoint = 0');
    return startCheckpointer(this.file, CHECKPOINT_EVERY_MS, () => {
      if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
    });
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
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
