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

export interface SubscribeOptions {
  /** Deliver the events after this position; START for the whole log. */
  from: Position;
  filter?: EventFilter;
}

export interface Subscription {
  close(): Promise<void>;
}

export type EventHandler = (event: RecordedEvent) => void | Promise<void>;

export interface EventStore {
  /**
   * The most one append may carry, counted as EventStoreDB counts it (each event's data and metadata bytes
   * plus twice its type's length), when the store has such a limit (EventStoreDB's MaxAppendSize).
   */
  readonly maxAppendBytes?: number;
  append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /** The stream's events; a stream that does not exist reads as empty. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /**
   * Catch-up subscription to $all: the stored events after `from`, then live ones, in order. The handler
   * is awaited before the next event; if it throws, the subscription stops and onError is called.
   */
  subscribeToAll(
    options: SubscribeOptions,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): Subscription;
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

/** The store cannot be reached: the caller may retry later (HTTP 503). */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
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
