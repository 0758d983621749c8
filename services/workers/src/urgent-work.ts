/**
 * Work due at an instant (a tick firing periodic savepoints: each slot is on a whole second) shares a worker
 * process's event loop with work that can wait a second: the retention sweep, its orphan report, and the
 * process manager's enqueueing (the timeouts the firing itself calls for). Those wait between their steps
 * while urgent work runs. With 10,000 jobs, a sweep that started on the same second as a slot took 39 % of
 * the main thread during the firing, and the process manager's reads for the new savepoints another 7 %
 * (bench #9, bench/NOTES.md).
 */
export class UrgentWork {
  private running = 0;
  private waiting: (() => void)[] = [];

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.running += 1;
    try {
      return await work();
    } finally {
      this.running -= 1;
      if (this.running === 0) for (const resume of this.waiting.splice(0)) resume();
    }
  }

  /** Undefined (nothing to wait for) unless urgent work runs; else resolves once none does. */
  idle(): Promise<void> | undefined {
    if (this.running === 0) return undefined;
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}
