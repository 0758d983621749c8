import { WrongExpectedVersionError } from '@snapcat/event-store';

/** Another writer kept winning the race for the stream; the caller may retry. */
export class ConcurrencyExhaustedError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId}: gave up after repeated concurrent writes by other processes`);
    this.name = 'ConcurrencyExhaustedError';
  }
}

export interface OptimisticRetryOptions {
  /** Decisions tried at most for one batch: the first and the retries. */
  attempts: number;
  /**
   * What the batch fails with once every attempt lost the race, given the last lost append (none when the
   * batch wrote nothing but kept finding new events). Default: ConcurrencyExhaustedError.
   */
  exhausted?: (id: string, conflict: WrongExpectedVersionError | undefined) => unknown;
  /** How a pause is taken (tests observe the pauses asked for instead of timing them). Default: a timer. */
  pause?: (ms: number) => Promise<void>;
  /** A number in [0, 1) that picks the pause. Default: Math.random. */
  random?: () => number;
}

/**
 * Optimistic concurrency across processes: an append expects the revision its decision was made on; when
 * another process appended first (WrongExpectedVersionError), the handler catches up on what it wrote and
 * decides again, a bounded number of times. This part says which failures are lost races, how long to wait
 * before the next attempt, and what the batch fails with when the attempts are spent.
 */
export class OptimisticRetry {
  readonly attempts: number;
  private readonly exhausted: NonNullable<OptimisticRetryOptions['exhausted']>;
  private readonly pause: NonNullable<OptimisticRetryOptions['pause']>;
  private readonly random: NonNullable<OptimisticRetryOptions['random']>;

  constructor(options: OptimisticRetryOptions) {
    if (!(options.attempts >= 1)) throw new RangeError('an optimistic retry makes at least one attempt');
    this.attempts = options.attempts;
    this.exhausted = options.exhausted ?? ((id) => new ConcurrencyExhaustedError(id));
    this.pause = options.pause ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
  }

  /** Whether an append failed because another writer appended first: catch up and decide again. */
  static lostRace(error: unknown): error is WrongExpectedVersionError {
    return error instanceof WrongExpectedVersionError;
  }

  /**
   * Before attempt `attempt + 1` (attempts count from 0): throws what the batch fails with when `attempt` was
   * the last; after a lost append, waits first. Replicas racing for one stream would race again at once: a
   * random pause, growing with the attempts (at most 64 ms), lets one of them through.
   */
  async beforeNext(id: string, attempt: number, conflict?: WrongExpectedVersionError): Promise<void> {
    if (attempt + 1 >= this.attempts) throw this.exhausted(id, conflict);
    if (conflict) await this.pause(this.random() * 2 ** Math.min(attempt, 6));
  }
}
