/**
 * The event store port: the small surface snapcat needs from EventStoreDB, so that an embedded store
 * and an in-memory one can stand in for it. Revisions are 0-based bigints, as in EventStoreDB.
 */
export type ExpectedRevision = 'any' | 'no_stream' | 'stream_exists' | bigint;

/** A position in the global log ($all). Checkpoint on `commit`; compare with comparePositions. */
export interface Position {
  commit: bigint;
  prepare: bigint;
}

export const START: Position = { commit: -1n, prepare: -1n };

export interface NewEvent {
  /** A UUID chosen before the append, so that a retried append is recognised and not written twice. */
  id: string;
  type: string;
  data: unknown;
  metadata?: Record<string, unknown>;
}

/**
 * The type of a hard-deleted stream's tombstone (EventStoreDB's `$streamDeleted`, written by a tombstone
 * outside snapcat, e.g. an operator's client): see `isTombstone`.
 */
export const STREAM_DELETED = '$streamDeleted';

/**
 * Whether a recorded event from $all is a stream's tombstone: the stream was hard-deleted, and nothing of it
 * can be read or written again (StreamDeletedError). Its data is null; it is no event of snapcat's.
 */
export const isTombstone = (event: Pick<RecordedEvent, 'type'>): boolean => event.type === STREAM_DELETED;

export interface RecordedEvent {
  id: string;
  type: string;
  streamId: string;
  revision: bigint;
  position: Position;
  data: unknown;
  metadata: Record<string, unknown>;
  created: Date;
}

export interface AppendResult {
  /** The revision of the last event now in the stream. */
  nextExpectedRevision: bigint;
  position: Position;
}

export interface EventFilter {
  streamNamePrefixes?: string[];
  eventTypes?: string[];
}

export interface ReadStreamOptions {
  direction?: 'forwards' | 'backwards';
  /** Inclusive. Defaults to the start (forwards) or the end (backwards). */
  fromRevision?: bigint;
  maxCount?: number;
}

export interface ReadAllOptions {
  direction?: 'forwards' | 'backwards';
  /** Exclusive: the events after it (forwards) or before it (backwards). Defaults to the start or end. */
  after?: Position;
  maxCount?: number;
  filter?: EventFilter;
}

export interface LogSubscribeOptions {
  /** Deliver the events after this position; START for the whole log. */
  from: Position;
  filter?: EventFilter;
  /**
   * A filtered subscription's progress past events the filter skips: called with a position once the
   * handler has returned for every matching event before it, and before any event after it is delivered
   * (awaited like the handler, in the same order; if it throws, the subscription stops and onError is
   * called). Every call is after the last event delivered and after the previous call. Subscribing again
   * from it misses nothing: a consumer may save it as it saves an event's position, so that a restart does
   * not scan again what the filter skipped. It need not be an event's position (EventStoreDB's are often
   * between two events). Stores give it for subscriptions with a filter, as often as they see fit.
   */
  onCheckpoint?: (position: Position) => void | Promise<void>;
  /**
   * Called once, when the handler has returned for every matching event of the log as it was when the
   * subscription started (EventStoreDB's CaughtUp; a catch-up store's first short read): the subscription is
   * live from then on. Awaited like the handler. A consumer may need it where checkpoints lag the log's end
   * (EventStoreDB reports one only every so many events scanned).
   */
  onCaughtUp?: () => void | Promise<void>;
}

/** A subscription to the log ($all); a webhook's subscription is libs/domain's `Subscription`. */
export interface LogSubscription {
  close(): Promise<void>;
}

export type EventHandler = (event: RecordedEvent) => void | Promise<void>;

export interface EventStore {
  /**
   * The most one append may carry, counted as EventStoreDB counts it (each event's data and metadata bytes
   * plus twice its type's length), when the store has such a limit (EventStoreDB's MaxAppendSize).
   */
  readonly maxAppendBytes?: number;
  /** Throws StreamDeletedError when the stream was hard-deleted. */
  append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /**
   * The stream's events; a stream that does not exist (or was soft-deleted) reads as empty, one that was
   * hard-deleted throws StreamDeletedError. Events beyond the stream's max count are not returned.
   */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /**
   * The global log. System streams and system events (named `$…`: metadata, links, a server's own) are
   * left out, except a hard-deleted stream's tombstone (`isTombstone`), which stands where it was written.
   * Events appended while it reads may be in the answer or not; what it gives is the log's events in
   * order, with none missing between them.
   */
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /**
   * Where the log ends: the position of the newest event `readAll` gives, undefined while it is empty. Asked
   * by readers that need only the position (subscriptions on every poll, readiness, metrics): the newest
   * event is often an aggregate snapshot, megabytes that reading it would fetch and parse each time.
   */
  lastPosition(): Promise<Position | undefined>;
  /**
   * The position of the log's newest record, undefined while it is empty: no position a consumer saved (an
   * event's, or a subscription's checkpoint) lies past it, unless the log was rewound since (a backup
   * restored, a copy of the store run beside the original). Only a store whose saved positions are its
   * records' own has it: EventStoreDB's subscriptions report checkpoints just past the last record
   * (its post-position), which no read gives, so it has none (decision 0012).
   */
  logEnd?(): Promise<Position | undefined>;
  /**
   * Catch-up subscription to $all: the stored events after `from`, then live ones, in order, as readAll
   * gives them (tombstones included). The handler is awaited before the next event; if it throws, the
   * subscription stops and onError is called.
   */
  subscribeToAll(
    options: LogSubscribeOptions,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): LogSubscription;
  /**
   * Keeps only the newest `maxCount` events of the stream readable (EventStoreDB's `$maxCount`, set in the
   * stream's metadata; older ones go at its next scavenge), for streams of which only the last matter.
   * Idempotent. A store without it keeps every event.
   */
  setStreamMaxCount?(streamId: string, maxCount: number): Promise<void>;
  /**
   * Calls the listener once the store has failed in a way only a new process cures (the embedded store's
   * writer thread stopped): every later call fails, so the process should stop and be restarted. A store
   * without such failures never calls it.
   */
  onUnrecoverable?(listener: (error: Error) => void): void;
  close(): Promise<void>;
}

export class WrongExpectedVersionError extends Error {
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    /** The stream's actual revision; 'no_stream' when it does not exist. */
    readonly actual: bigint | 'no_stream',
  ) {
    super(`stream ${streamId}: expected revision ${String(expected)}, actual ${String(actual)}`);
    this.name = 'WrongExpectedVersionError';
  }
}

/** The stream was hard-deleted (a tombstone): it can never be read or written again (HTTP 410). */
export class StreamDeletedError extends Error {
  constructor(readonly streamId: string) {
    super(`stream ${streamId} was deleted from the event store`);
    this.name = 'StreamDeletedError';
  }
}

/** The store cannot be reached: the caller may retry later (HTTP 503). */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * The embedded store's disk refuses to grow its files: full (SQLITE_FULL), or a write past a disk quota or a
 * file-size limit (EDQUOT, EFBIG: SQLite says SQLITE_IOERR_WRITE, as for a failing disk's EIO). Not
 * SQLITE_IOERR_SHMSIZE (a `-shm` that cannot grow): SQLite meets it after the commit frame is in the WAL, so
 * the group may be durable (a second review: recovered after a restart). The append wrote nothing (a group
 * commit fails whole), and the same one succeeds once space is freed or the limit raised, without a restart.
 * Reads go on.
 */
export class StoreFullError extends StoreUnavailableError {
  constructor(
    readonly file: string,
    readonly sqliteCode: StoreFullCode,
    options?: { cause?: unknown },
  ) {
    super(
      (sqliteCode === 'SQLITE_FULL'
        ? `the disk of the SQLite store ${file} is full: nothing was written; free space there (or grow the volume)`
        : `the disk of the SQLite store ${file} refused a write (${sqliteCode}: a disk quota or a file-size ` +
          'limit reached, or the disk failing): nothing was written; free space there or raise the limit (or ' +
          "check the disk's health)") + ', then retry',
      options,
    );
    this.name = 'StoreFullError';
  }
}

/**
 * The store did not say whether an append was written (a commit timeout, a deadline passed), even when it was
 * sent again with the same event ids, which it would have answered as written: the events may be recorded,
 * now or in a moment. A command sent again is decided on what the store then holds (an acknowledgement
 * recorded already is answered as such, a trigger with the same triggerId names its snapshot), but a trigger
 * without its triggerId would be a second one: read before sending it again.
 */
export class AppendOutcomeUnknownError extends StoreUnavailableError {
  constructor(
    readonly streamId: string,
    attempts: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(
      `stream ${streamId}: the event store did not confirm the append (${attempts.length} ` +
        `attempt${attempts.length === 1 ? '' : 's'} with the same event ids: ${attempts.join('; ')}): it may be ` +
        'recorded; read the job before sending it again (a trigger sent again with the same triggerId answers ' +
        'the snapshot it triggered)',
      options,
    );
    this.name = 'AppendOutcomeUnknownError';
  }
}

/** SQLite's codes for a write the disk refused (StoreFullError). */
export const STORE_FULL_CODES = ['SQLITE_FULL', 'SQLITE_IOERR_WRITE'] as const;
export type StoreFullCode = (typeof STORE_FULL_CODES)[number];

/** What snapcat asked of the store when it was refused: reading or writing a stream, or reading `$all`. */
export type StoreAccess = { operation: 'read' | 'write'; streamId: string };

/**
 * The store refuses snapcat's credentials: `not-authenticated`, the login itself (a wrong user name or
 * password); `access-denied`, this operation for this user (EventStoreDB's ACLs or stream policies: reading
 * `$all` needs the `$admins` role by default). It is a StoreUnavailableError (HTTP 503): nothing was done,
 * and the same request succeeds once an operator grants the permission, without restarting snapcat. The
 * message names the permission and the user, never a password.
 */
export class StoreAccessDeniedError extends StoreUnavailableError {
  constructor(
    readonly reason: 'access-denied' | 'not-authenticated',
    readonly access: StoreAccess,
    /** The user snapcat logs in as; undefined: no credentials (the anonymous user). */
    readonly user: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(accessDeniedMessage(reason, access, user), options);
    this.name = 'StoreAccessDeniedError';
  }

  /** Which permission is missing, in a few words (`read on $all`, `write on snapcat-job-…`), for metrics. */
  get permission(): string {
    return this.reason === 'not-authenticated'
      ? 'login'
      : `${this.access.operation} on ${this.access.streamId}`;
  }
}

function accessDeniedMessage(
  reason: StoreAccessDeniedError['reason'],
  { operation, streamId }: StoreAccess,
  user: string | undefined,
): string {
  if (reason === 'not-authenticated') {
    return `event store: the login of user ${user ?? '(none)'} was refused: check the user name and password in SNAPCAT_EVENT_STORE`;
  }
  const who =
    user === undefined ? 'anonymous access (SNAPCAT_EVENT_STORE names no user:password@)' : `user ${user}`;
  if (streamId === '$all' && operation === 'read') {
    return `event store: reading $all needs the $admins role (or a stream policy granting read on $all) for ${who}`;
  }
  const verb = operation === 'read' ? 'reading' : 'writing to';
  return `event store: ${verb} stream ${streamId} needs ${operation} permission on it (an ACL or stream policy) for ${who}`;
}

/**
 * The store refuses an append this large (EventStoreDB's MaxAppendSize): nothing was written, and
 * retrying the same request cannot succeed (HTTP 413).
 */
export class AppendTooLargeError extends Error {
  /** What the refused events weighed, when known (the command bus counts them before the store). */
  readonly bytes?: number;
  /** Which of the request's commands was over the limit on its own (0 for a single command). */
  readonly command?: number;
  /** The field of that command whose events weighed most (`stateHandles`, `tasks`), when it names one. */
  readonly field?: string;

  constructor(
    readonly streamId: string,
    /** The store's limit in bytes, when it says. */
    readonly maxBytes: number | undefined,
    details: { bytes?: number; command?: number; field?: string } = {},
  ) {
    super(
      `stream ${streamId}: the append is larger than the event store accepts at once` +
        (maxBytes === undefined ? '' : ` (${maxBytes} bytes)`) +
        (details.bytes === undefined ? '' : `: ${details.bytes} bytes`) +
        (details.field === undefined ? '' : `, most of it in ${details.field}`),
    );
    this.name = 'AppendTooLargeError';
    Object.assign(this, details);
  }
}

/** A position as text (`commit:prepare`), for keys and answers; parsePosition reads it back. */
export const formatPosition = (p: Position): string => `${p.commit}:${p.prepare}`;

export function parsePosition(text: string): Position {
  const [commit, prepare] = text.split(':');
  return { commit: BigInt(commit!), prepare: BigInt(prepare!) };
}

export function comparePositions(a: Position, b: Position): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

/**
 * Polls a reader's saved position (`readPosition`: a projection's, a process manager's) every `pollMs` until it
 * reaches `target`: true, or false once `timeoutMs` have passed (the caller says what it does then).
 */
export async function waitForPosition(
  readPosition: () => Promise<Position | null>,
  target: Position,
  { timeoutMs, pollMs }: { timeoutMs: number; pollMs: number },
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await readPosition();
    if (current && comparePositions(current, target) >= 0) return true;
    if (Date.now() > deadline) return false; // a look at the deadline itself counts
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export function matchesFilter(event: { streamId: string; type: string }, filter?: EventFilter): boolean {
  if (!filter) return true;
  if (filter.streamNamePrefixes && !filter.streamNamePrefixes.some((p) => event.streamId.startsWith(p))) {
    return false;
  }
  if (filter.eventTypes && !filter.eventTypes.includes(event.type)) return false;
  return true;
}

/** Checks an expected revision against a stream's current revision (-1n when the stream does not exist). */
export function checkExpected(streamId: string, expected: ExpectedRevision, current: bigint): void {
  const exists = current >= 0n;
  const ok =
    expected === 'any' ||
    (expected === 'no_stream' && !exists) ||
    (expected === 'stream_exists' && exists) ||
    (typeof expected === 'bigint' && expected === current);
  if (!ok) throw new WrongExpectedVersionError(streamId, expected, exists ? current : 'no_stream');
}
