import type { Redis } from 'ioredis';
import { fold, type Event, type JobState } from '@snapcat/domain';
import { JOB_STREAM_PREFIX, domainEvent } from '@snapcat/application';
import {
  START,
  formatPosition,
  parsePosition,
  type EventStore,
  type RecordedEvent,
  type Subscription,
} from '@snapcat/event-store';
import { ReadModelKeys, type KeySpace } from './keys';
import { stateAt } from './history';
import { writeViews } from './writes';

export interface SnapshotEventMessage {
  jobId: string;
  type: string;
  snapshotId: number | null;
  revision: string;
  position: string;
  occurredAt: string;
  data: Event;
}

export interface ProjectorDeps {
  store: EventStore;
  redis: Redis;
  prefix: string;
  /** Told of every applied event, after it is visible (feeds GraphQL subscriptions). */
  publish?: (message: SnapshotEventMessage) => void;
  log: { info: (m: string, f?: object) => void; error: (m: string, f?: object) => void };
  cacheSize?: number;
}

/**
 * Keeps the Redis read model in step with the log. Each event is applied in one MULTI with the position
 * and the job's applied revision, so a crash never applies an event twice nor skips one, and a redelivered
 * event is recognised by its revision. The views are computed with the domain's own fold, from the job's
 * state at the event's revision (cached; reloaded after a gap or a restart).
 */
export class Projector {
  private readonly keys: ReadModelKeys;
  private version = 0;
  private subscription: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly cache = new Map<string, { state: JobState; revision: bigint }>();
  private readonly lags: number[] = [];
  private lagFlush: NodeJS.Timeout | undefined;
  readonly stats = { applied: 0, duplicates: 0, reloads: 0 };

  constructor(private readonly deps: ProjectorDeps) {
    this.keys = new ReadModelKeys(deps.prefix);
  }

  async start(): Promise<void> {
    await this.deps.redis.setnx(this.keys.current, '1');
    await this.follow();
    // A rebuild switches `current`: follow the new key space from its own position.
    this.timer = setInterval(() => void this.follow().catch(() => undefined), 1000);
    this.lagFlush = setInterval(() => void this.flushLag().catch(() => undefined), 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.lagFlush);
    await this.subscription?.close();
    this.subscription = undefined;
  }

  /** Milliseconds from append to visible: the last and the 99th percentile of the last 1,000 events. */
  lag(): { last: number | null; p99: number | null; samples: number } {
    if (this.lags.length === 0) return { last: null, p99: null, samples: 0 };
    const sorted = [...this.lags].sort((a, b) => a - b);
    return {
      last: this.lags[this.lags.length - 1]!,
      p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!,
      samples: sorted.length,
    };
  }

  private async follow(): Promise<void> {
    const version = Number((await this.deps.redis.get(this.keys.current)) ?? '1');
    if (version === this.version && this.subscription) return;
    await this.subscription?.close();
    this.cache.clear();
    this.version = version;
    const space = this.keys.space(version);
    const stored = await this.deps.redis.get(space.position);
    this.subscription = this.deps.store.subscribeToAll(
      { from: stored ? parsePosition(stored) : START, filter: { streamNamePrefixes: [JOB_STREAM_PREFIX] } },
      (event) => this.apply(space, event),
      (error) => {
        this.deps.log.error('projector stopped; resubscribing', { error: String(error) });
        this.subscription = undefined;
      },
    );
  }

  private async apply(space: KeySpace, recorded: RecordedEvent): Promise<void> {
    const event = domainEvent(recorded);
    const { redis } = this.deps;
    const applied = await redis.hget(space.applied, event.jobId);
    if (applied !== null && BigInt(applied) >= recorded.revision) {
      this.stats.duplicates += 1;
      await redis.set(space.position, formatPosition(recorded.position));
      return;
    }
    let cached = this.cache.get(event.jobId);
    if (!cached || cached.revision !== recorded.revision - 1n) {
      cached = await stateAt(this.deps.store, event.jobId, { revision: recorded.revision - 1n });
      this.stats.reloads += 1;
    }
    const state = fold(cached.state, [event]);
    const tx = redis.multi();
    writeViews(tx, space, state, event);
    tx.hset(space.applied, event.jobId, recorded.revision.toString());
    tx.set(space.position, formatPosition(recorded.position));
    await tx.exec();
    this.remember(event.jobId, state, recorded.revision);
    this.stats.applied += 1;
    this.lags.push(Date.now() - recorded.created.getTime());
    if (this.lags.length > 1000) this.lags.shift();
    this.deps.publish?.({
      jobId: event.jobId,
      type: event.type,
      snapshotId: 'snapshotId' in event ? event.snapshotId : null,
      revision: recorded.revision.toString(),
      position: formatPosition(recorded.position),
      occurredAt: event.occurredAt,
      data: event,
    });
  }

  private remember(jobId: string, state: JobState, revision: bigint): void {
    this.cache.delete(jobId);
    this.cache.set(jobId, { state, revision });
    if (this.cache.size > (this.deps.cacheSize ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
  }

  private async flushLag(): Promise<void> {
    if (this.lags.length)
      await this.deps.redis.set(this.keys.lag, JSON.stringify({ ...this.lag(), at: Date.now() }));
  }
}
