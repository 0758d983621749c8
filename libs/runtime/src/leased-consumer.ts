import type { Redis } from 'ioredis';
import {
  StoreAccessDeniedError,
  comparePositions,
  formatPosition,
  parsePosition,
  type Position,
  type LogSubscription,
} from '@snapcat/event-store';
import { UnreadableEventError } from '@snapcat/domain';
import { LeaseLostError, RedisLease } from './lease';
import type { LogFn } from './log';

export interface LeasedConsumerOptions {
  redis: Redis;
  /** The consumer's keys: `<keyPrefix>:lease`, `<keyPrefix>:position`, `<keyPrefix>:epoch`. */
  keyPrefix: string;
  /** For the logs: "process manager", "webhook dispatcher". */
  name: string;
  log: { info: LogFn; warn: LogFn; error: LogFn };
  leaseMs?: number;
  tickMs?: number;
  /** How long the consumer stands by after the store refused snapcat's credentials (default 30 s). */
  accessRetryMs?: number;
}

/** How long a consumer of the log stands by after the store refused snapcat's credentials. */
export const ACCESS_RETRY_MS = 30_000;

/**
 * Why a log consumer does not consume. Two causes retrying every tick would not change:
 * - the store refuses snapcat's credentials (StoreAccessDeniedError: reading `$all` needs the `$admins` role):
 *   each refusal is said in an error line naming the permission, and the next attempt waits `retryMs`;
 * - the log holds an event a newer snapcat wrote (UnreadableEventError, decision 0037): this process can never
 *   read past it, so the consumer stands down for good, said once, and its lease is left to an upgraded one.
 * The projector and every LeasedLogConsumer keep theirs in one.
 */
export class ConsumerBlocks {
  private refusal: StoreAccessDeniedError | undefined;
  private outdated: UnreadableEventError | undefined;
  private until = 0;
  /** How many times the store refused the consumer's credentials (each followed by a wait). */
  count = 0;

  constructor(private readonly retryMs = ACCESS_RETRY_MS) {}

  /** Why the consumer does not consume: the last refusal, until it consumes again; or an unreadable event. */
  get blocked(): StoreAccessDeniedError | UnreadableEventError | undefined {
    return this.refusal ?? this.outdated;
  }

  /** True while the consumer waits before its next attempt; for good once it stood down. */
  get waiting(): boolean {
    return this.outdated !== undefined || Date.now() < this.until;
  }

  /** The consumer subscribed a tick ago and was not refused since. */
  clear(): void {
    this.refusal = undefined;
  }

  /** Whether the error is one of the two causes (else the consumer logs it and resubscribes). */
  static blocks(error: unknown): error is StoreAccessDeniedError | UnreadableEventError {
    return (
      error instanceof StoreAccessDeniedError ||
      (error instanceof UnreadableEventError && error.writtenByNewer)
    );
  }

  /**
   * Records either cause and says it: a refusal as `<refused>: …` (each time), an unreadable event as
   * `<name> stands down: …` (once).
   */
  note(
    error: StoreAccessDeniedError | UnreadableEventError,
    name: string,
    refused: string,
    log: LogFn,
  ): void {
    if (error instanceof UnreadableEventError) this.standDown(error, name, log);
    else this.record(error, refused, log);
  }

  /** Records a refusal and says it: `<what>: <the refusal>; it stands by and tries again in N s`. */
  private record(error: StoreAccessDeniedError, what: string, log: LogFn): void {
    this.count += 1;
    this.refusal = error;
    this.until = Date.now() + this.retryMs;
    log(`${what}: ${error.message}; it stands by and tries again in ${this.retryMs / 1000} s`, {
      permission: error.permission,
      refusals: this.count,
    });
  }

  /** Records an event this snapcat cannot read, and says so once: `<name> stands down: …`. */
  private standDown(error: UnreadableEventError, name: string, log: LogFn): void {
    if (this.outdated === undefined) {
      log(
        `${name} stands down: ${error.message}; a newer snapcat wrote the log, so this process gives up ` +
          'its lease for an upgraded one to take, and consumes nothing until it is upgraded',
        { eventType: error.eventType, schemaVersion: error.schemaVersion },
      );
    }
    this.outdated = error;
  }
}

/**
 * Whether the position Redis answers is behind the one this process saved there before asking (gone counts
 * as behind): Redis lost writes it had acknowledged (a failover to a replica that lagged, a restart without
 * its last second of appends).
 */
export function positionBehind(stored: string | null, saved: Position | undefined): boolean {
  if (saved === undefined) return false;
  return stored === null || comparePositions(parsePosition(stored), saved) < 0;
}

/** What the consumer's Redis connection emits once it was made again (standalone or Sentinel; a cluster). */
const RECONNECTION_EVENTS = ['ready', '+node', '-node'] as const;

/** The earlier of a position and one that may be unknown. */
function earlier(a: Position, b: Position | undefined): Position {
  return b !== undefined && comparePositions(b, a) < 0 ? b : a;
}

/**
 * A consumer of the log of which one process in the cluster is active at a time (a lease in Redis),
 * keeping its position in Redis. Every tick it renews the lease and checks the epoch key, which only
 * `recover` writes: when the epoch is gone, Redis lost what the consumer had done (a wipe), so it
 * recovers from the log and subscribes again. Subclasses say how to recover and what to do per event.
 *
 * When the store refuses snapcat's credentials (StoreAccessDeniedError: reading `$all` needs the `$admins`
 * role), retrying every tick changes nothing: the consumer says so in an error line naming the permission,
 * gives up its lease (a process whose credentials work may take over) and stands by for `accessRetryMs`
 * before it tries again, reporting itself `blocked` meanwhile. It needs no restart once the permission
 * is granted. When the log holds an event a newer snapcat wrote, it gives up its lease for good (ConsumerBlocks).
 */
export abstract class LeasedLogConsumer {
  protected readonly keys: { position: string; epoch: string };
  private readonly lease: RedisLease;
  private subscription: LogSubscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** Set first thing by `stop()`: work a subclass runs beside the tick ends early once it is. */
  protected stopped = false;
  private saved: Position | undefined;
  private readonly refusals: ConsumerBlocks;
  /** Where the current subscription began (its resume point until a position is saved). */
  private subscribedFrom: Position | undefined;
  /**
   * Set when the Redis connection was made again (a restart, a failover): Redis may have lost the writes made
   * since the position this process had saved then, that position kept, which no position behind tells (a
   * review: a savepoint schedule set between two batched saves was lost for good). `from` is that position:
   * consumption resumes there even if a later one was saved since (a second review: an event handled before
   * the next tick saved past the lost ones). Set whether or not a subscription is open: one that reconnects
   * while the consumer subscribes must not be missed either.
   */
  private reconnection: { from: Position | undefined } | undefined;
  private connectedOnce = false;
  private readonly onReconnected = (event: string) => {
    if (!this.connectedOnce) {
      // A connection's first `ready` (and a cluster's first nodes) is no reconnection.
      this.connectedOnce = event === 'ready';
      return;
    }
    this.reconnection ??= { from: this.saved ?? this.subscribedFrom };
  };

  constructor(protected readonly consumer: LeasedConsumerOptions) {
    this.refusals = new ConsumerBlocks(consumer.accessRetryMs);
    const p = consumer.keyPrefix;
    this.keys = { position: `${p}:position`, epoch: `${p}:epoch` };
    this.lease = new RedisLease(consumer.redis, `${p}:lease`, consumer.leaseMs ?? 5000);
    // A standalone or Sentinel connection is ready again after a reconnection; a cluster adds and drops
    // nodes as a failover promotes a replica.
    this.connectedOnce = consumer.redis.status === 'ready';
    for (const event of RECONNECTION_EVENTS) consumer.redis.on(event, this.listeners[event]);
  }

  private readonly listeners = Object.fromEntries(
    RECONNECTION_EVENTS.map((event) => [event, () => this.onReconnected(event)]),
  ) as Record<(typeof RECONNECTION_EVENTS)[number], () => void>;

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.consumer.tickMs ?? 1000);
  }

  get active(): boolean {
    return this.subscription !== undefined;
  }

  /**
   * Why this consumer does not consume: the store refused snapcat's credentials at its last attempt, and it
   * has not consumed since. Undefined otherwise.
   */
  get blocked(): StoreAccessDeniedError | UnreadableEventError | undefined {
    return this.refusals.blocked;
  }

  /** How many times the store refused this consumer's credentials (each followed by a wait). */
  get accessRefusals(): number {
    return this.refusals.count;
  }

  /** The last position this process saved (for /metrics); undefined before its first. */
  get savedPosition(): Position | undefined {
    return this.saved;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    for (const event of RECONNECTION_EVENTS) this.consumer.redis.off(event, this.listeners[event]);
    while (this.ticking) await new Promise((r) => setTimeout(r, 10));
    await this.subscription?.close();
    this.subscription = undefined;
    await this.lease.release();
  }

  /** Where to consume from when Redis holds no position; writes the position and the epoch. */
  protected abstract recover(): Promise<Position>;

  /** Subscribes from `from` (exclusive); the subscription's errors go to `logSubscriptionFailed`. */
  protected abstract subscribeToLog(from: Position): Promise<LogSubscription>;

  /**
   * Runs on every tick while this process is the active consumer; `epoch` is the epoch key the tick read
   * (a Redis wiped after that read holds none, or another one).
   */
  protected async whileActive(_epoch: string): Promise<void> {}

  protected readonly logSubscriptionFailed = (error: unknown): void => {
    if (ConsumerBlocks.blocks(error)) {
      void this.refused(error);
      return;
    }
    if (error instanceof LeaseLostError) {
      // Another process consumes now; the next tick finds the lease taken and stands by.
      this.consumer.log.warn(`${this.consumer.name} lost its lease; standing by`);
      this.subscription = undefined;
      return;
    }
    this.consumer.log.error(`${this.consumer.name} subscription failed; resubscribing`, {
      error: String(error),
    });
    this.subscription = undefined;
  };

  /**
   * The store refused the credentials (the next attempt later), or the log holds an event this snapcat cannot
   * read (no attempt until an upgrade): said loudly, the lease given up.
   */
  private async refused(error: StoreAccessDeniedError | UnreadableEventError): Promise<void> {
    const { log, name } = this.consumer;
    this.refusals.note(error, name, `${name} cannot consume the log`, log.error);
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.close().catch(() => undefined);
    await this.lease.release();
  }

  /**
   * Saves the position, fenced on the lease: a process that lost it (paused past the TTL while another took
   * over) throws LeaseLostError instead of setting the position back under its successor, which would read
   * that as Redis losing writes and consume again.
   */
  protected async savePosition(position: Position): Promise<void> {
    // Not while a reconnection waits for the next tick: Redis may have lost what came before, and a later
    // position saved now would skip it when the tick reads where to consume again from (a review).
    if (this.reconnection) return;
    if (!(await this.lease.setWhileHeld(this.keys.position, formatPosition(position)))) {
      throw new LeaseLostError(`${this.consumer.name} no longer holds its lease: position not saved`);
    }
    this.saved = position;
  }

  /** Records where consumption resumes after a recovery, and that Redis holds this consumer's state. */
  protected async markRecovered(position: Position, at: Date): Promise<void> {
    await this.savePosition(position);
    await this.consumer.redis.set(this.keys.epoch, at.toISOString());
  }

  /**
   * Why the consumer subscribes again: Redis answered an older position than it acknowledged to this process
   * (a failover to a replica that lagged, a restart without its last second of appends), or its connection was
   * made again. What the lost writes did (queued jobs, deliveries) is lost with them: consumed again.
   */
  private sayWhyAgain(
    stored: string | null,
    saved: Position | undefined,
    reconnection: { from: Position | undefined } | undefined,
  ): void {
    const { log, name } = this.consumer;
    if (positionBehind(stored, saved)) {
      log.error(`${name}: Redis lost writes it had acknowledged; consuming the log again from its position`, {
        saved: formatPosition(saved!),
        redis: stored ?? 'none',
      });
      return;
    }
    log.warn(
      `${name}: its Redis connection was made again, and Redis may have lost the writes made since its ` +
        'last saved position (a restart, a failover): consuming the log again from that position',
      { redis: stored ?? 'none', from: reconnection?.from ? formatPosition(reconnection.from) : 'none' },
    );
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped || this.refusals.waiting) return;
    this.ticking = true;
    const { redis, log, name } = this.consumer;
    let reconnection: { from: Position | undefined } | undefined;
    try {
      if (!(await this.lease.acquire())) {
        if (this.subscription) {
          log.warn(`${name} lost its lease; standing by`);
          await this.subscription.close();
          this.subscription = undefined;
        }
        return;
      }
      // Which process is active is an operator's first question (README: leases taken and lost are logged).
      const taking = this.subscription === undefined;
      // What this process had saved before asking: a save that lands meanwhile cannot look like a loss.
      const saved = this.saved;
      // Taken before Redis is read: a reconnection from here on is seen at the next tick.
      reconnection = this.reconnection;
      this.reconnection = undefined;
      const epoch = await redis.get(this.keys.epoch);
      const stored = epoch ? await redis.get(this.keys.position) : null;
      if (this.subscription && epoch) {
        if (!positionBehind(stored, saved) && !reconnection) {
          this.refusals.clear(); // subscribed a tick ago, and not refused since
          return await this.whileActive(epoch);
        }
        this.sayWhyAgain(stored, saved, reconnection);
      }
      await this.subscription?.close();
      this.subscription = undefined;
      this.saved = undefined;
      // A Redis without the epoch lost everything: recovered (the consumer's reconciliation), whatever else.
      const from = stored ? earlier(parsePosition(stored), reconnection?.from) : await this.recover();
      this.subscribedFrom = from;
      this.subscription = await this.subscribeToLog(from);
      if (taking) log.info(`${name} active: it holds the lease`, { from: stored ?? 'its recovery point' });
    } catch (error) {
      // Not subscribed again: the reconnection is still to be handled.
      if (reconnection) this.reconnection ??= reconnection;
      if (ConsumerBlocks.blocks(error)) await this.refused(error);
      else log.error(`${name} tick failed`, { error: String(error) });
    } finally {
      this.ticking = false;
    }
  }
}
