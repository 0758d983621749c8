/**
 * A circuit breaker for one Flink cluster, shared by every client of that cluster. After `failureThreshold`
 * consecutive failures (connection errors, timeouts, 5xx) it OPENs: calls fail fast without a request for
 * `coolDownMs`; then it is HALF_OPEN and lets exactly one probe through: a success CLOSEs it, a failure
 * OPENs it again for another cool-down. Listeners hear 'unreachable' when it opens and 'reachable' when it
 * closes again (snapcat turns them into FlinkClusterUnreachable / FlinkClusterReachable events).
 */
export type CircuitState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';
export type CircuitChange = 'unreachable' | 'reachable';

export interface CircuitOptions {
  failureThreshold?: number;
  coolDownMs?: number;
  now?: () => number;
}

export class Circuit {
  readonly failureThreshold: number;
  readonly coolDownMs: number;
  private readonly now: () => number;
  private failures = 0;
  private openedAt: number | undefined;
  private probing = false;
  private readonly listeners = new Set<(change: CircuitChange) => void>();

  constructor(options: CircuitOptions = {}) {
    this.failureThreshold = options.failureThreshold ?? 5;
    this.coolDownMs = options.coolDownMs ?? 10_000;
    this.now = options.now ?? Date.now;
    if (!(this.failureThreshold >= 1)) throw new RangeError('failureThreshold must be at least 1');
    if (!(this.coolDownMs >= 0)) throw new RangeError('coolDownMs must not be negative');
  }

  get state(): CircuitState {
    if (this.openedAt === undefined) return 'CLOSED';
    return this.now() - this.openedAt >= this.coolDownMs ? 'HALF_OPEN' : 'OPEN';
  }

  /** Whether a request may go out now. In HALF_OPEN only one (the probe) may, until it is reported. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'CLOSED') return true;
    if (state === 'OPEN' || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** The cluster answered (whatever the answer: a 4xx is an answer too). */
  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.openedAt !== undefined) {
      this.openedAt = undefined;
      this.emit('reachable');
    }
  }

  /** The cluster did not answer usefully: a connection error, a timeout or a 5xx. */
  failure(): void {
    this.failures += 1;
    const wasOpen = this.openedAt !== undefined;
    if (this.probing || (!wasOpen && this.failures >= this.failureThreshold)) {
      this.openedAt = this.now();
      this.probing = false;
      if (!wasOpen) this.emit('unreachable');
    }
  }

  /** Subscribes to transitions; returns the unsubscribe function. */
  onChange(listener: (change: CircuitChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: CircuitChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // a listener's failure is its own; the circuit keeps working
      }
    }
  }
}
