import type {
  AppendResult,
  EventHandler,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
} from './port';

export interface EventStoreCounters {
  appends: number;
  eventsAppended: number;
  appendFailures: number;
  streamReads: number;
  eventsRead: number;
}

/** Wraps any adapter and counts what is asked of it, for /metrics and for tests that assert on I/O. */
export class InstrumentedEventStore implements EventStore {
  readonly counters: EventStoreCounters = {
    appends: 0,
    eventsAppended: 0,
    appendFailures: 0,
    streamReads: 0,
    eventsRead: 0,
  };

  constructor(private readonly inner: EventStore) {}

  get maxAppendBytes(): number | undefined {
    return this.inner.maxAppendBytes;
  }

  async append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.counters.appends += 1;
    try {
      const result = await this.inner.append(streamId, events, expected);
      this.counters.eventsAppended += events.length;
      return result;
    } catch (error) {
      this.counters.appendFailures += 1;
      throw error;
    }
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    const events = await this.inner.readStream(streamId, options);
    this.counters.streamReads += 1;
    this.counters.eventsRead += events.length;
    return events;
  }

  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
    return this.inner.readAll(options);
  }

  subscribeToAll(
    options: SubscribeOptions,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): Subscription {
    return this.inner.subscribeToAll(options, handler, onError);
  }

  async setStreamMaxCount(streamId: string, maxCount: number): Promise<void> {
    await this.inner.setStreamMaxCount?.(streamId, maxCount);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
