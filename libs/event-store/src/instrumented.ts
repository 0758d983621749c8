import {
  StoreAccessDeniedError,
  type AppendResult,
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

export interface EventStoreCounters {
  appends: number;
  eventsAppended: number;
  appendFailures: number;
  streamReads: number;
  eventsRead: number;
  /** Operations the store refused for snapcat's credentials (StoreAccessDeniedError). */
  accessDenied: number;
}

export interface InstrumentOptions {
  /** The event's schema version when a newer snapcat wrote it, else undefined (the domain's; decision 0023). */
  newerSchemaVersion?: (event: RecordedEvent) => number | undefined;
}

/** An event of a schema version newer than this process reads: where it is, and its type and version. */
export interface NewerEvent {
  type: string;
  streamId: string;
  schemaVersion: number;
}

/**
 * Wraps any adapter and counts what is asked of it, for /metrics and for tests that assert on I/O. It also
 * remembers the store's refusals of snapcat's credentials (StoreAccessDeniedError) that still hold, whoever
 * met them (a request, the projector, a consumer), so that /readyz can name the missing permission: a
 * refused login until anything succeeds, a refused operation until the same operation succeeds (on `$all`,
 * or on any stream). And it notes the first event it reads that a newer snapcat wrote (`newerEvent`).
 */
export class InstrumentedEventStore implements EventStore {
  readonly counters: EventStoreCounters = {
    appends: 0,
    eventsAppended: 0,
    appendFailures: 0,
    streamReads: 0,
    eventsRead: 0,
    accessDenied: 0,
  };
  private readonly refusals = new Map<string, StoreAccessDeniedError>();
  private newer: NewerEvent | undefined;

  constructor(
    private readonly inner: EventStore,
    private readonly options: InstrumentOptions = {},
  ) {}

  /**
   * The first event this process read that a newer snapcat wrote (`options.newerSchemaVersion`); sticky: the
   * process cannot read the log past it until it is upgraded, so /readyz says so for as long as it runs.
   */
  get newerEvent(): NewerEvent | undefined {
    return this.newer;
  }

  private inspect(event: RecordedEvent): void {
    if (this.newer !== undefined) return;
    const schemaVersion = this.options.newerSchemaVersion?.(event);
    if (schemaVersion !== undefined)
      this.newer = { type: event.type, streamId: event.streamId, schemaVersion };
  }

  private inspectAll(events: readonly RecordedEvent[]): void {
    if (this.newer !== undefined || !this.options.newerSchemaVersion) return;
    for (const event of events) this.inspect(event);
  }

  /** The oldest refusal of snapcat's credentials that still holds; undefined when none does. */
  get accessDenied(): StoreAccessDeniedError | undefined {
    return this.refusals.values().next().value;
  }

  private refused(error: unknown): void {
    if (!(error instanceof StoreAccessDeniedError)) return;
    this.counters.accessDenied += 1;
    const key = refusalKey(error.reason, error.access.operation, error.access.streamId);
    if (!this.refusals.has(key)) this.refusals.set(key, error);
  }

  private succeeded(operation: 'read' | 'write', streamId: string): void {
    if (this.refusals.size === 0) return;
    this.refusals.delete(refusalKey('not-authenticated', operation, streamId));
    this.refusals.delete(refusalKey('access-denied', operation, streamId));
  }

  get maxAppendBytes(): number | undefined {
    return this.inner.maxAppendBytes;
  }

  async append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.counters.appends += 1;
    try {
      const result = await this.inner.append(streamId, events, expected);
      this.counters.eventsAppended += events.length;
      this.succeeded('write', streamId);
      return result;
    } catch (error) {
      this.counters.appendFailures += 1;
      this.refused(error);
      throw error;
    }
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    let events: RecordedEvent[];
    try {
      events = await this.inner.readStream(streamId, options);
    } catch (error) {
      this.refused(error);
      throw error;
    }
    this.counters.streamReads += 1;
    this.counters.eventsRead += events.length;
    this.succeeded('read', streamId);
    this.inspectAll(events);
    return events;
  }

  async readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
    const events = await this.readingAll(() => this.inner.readAll(options));
    this.inspectAll(events);
    return events;
  }

  lastPosition(): Promise<Position | undefined> {
    return this.readingAll(() => this.inner.lastPosition());
  }

  get logEnd(): (() => Promise<Position | undefined>) | undefined {
    const inner = this.inner;
    return inner.logEnd && (() => this.readingAll(() => inner.logEnd!()));
  }

  /** A read of `$all`: its success clears the log's read refusal, its refusal is recorded. */
  private async readingAll<T>(read: () => Promise<T>): Promise<T> {
    try {
      const result = await read();
      this.succeeded('read', '$all');
      return result;
    } catch (error) {
      this.refused(error);
      throw error;
    }
  }

  subscribeToAll(
    options: LogSubscribeOptions,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): LogSubscription {
    let delivered = false;
    return this.inner.subscribeToAll(
      options,
      (event) => {
        if (!delivered) {
          delivered = true;
          this.succeeded('read', '$all');
        }
        this.inspect(event);
        return handler(event);
      },
      (error) => {
        this.refused(error);
        onError?.(error);
      },
    );
  }

  async setStreamMaxCount(streamId: string, maxCount: number): Promise<void> {
    await this.inner.setStreamMaxCount?.(streamId, maxCount);
  }

  onUnrecoverable(listener: (error: Error) => void): void {
    this.inner.onUnrecoverable?.(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** One refusal per kind: the login; reading or writing `$all`; reading or writing streams. */
function refusalKey(reason: StoreAccessDeniedError['reason'], operation: string, streamId: string): string {
  if (reason === 'not-authenticated') return 'login';
  return `${operation} ${streamId === '$all' ? '$all' : 'streams'}`;
}
