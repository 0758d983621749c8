import type { EventStore } from '@snapcat/event-store';

/**
 * Progress of a long read on stderr (stdout stays the command's answer): one line a second while it runs,
 * `<label>: <events> events, <rate> events/s, <percent>% done`, and one when it ends.
 */
export class Progress {
  private readonly started = Date.now();
  private printed = this.started;
  private events = 0;
  private done = 0;

  /** `total`: how far the read goes, in the unit of `update`'s `done` (a log position, a revision). */
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly everyMs = 1000,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
  ) {}

  /** How far the read is along `$all`: the commit position against the log's last one. */
  static async overLog(store: EventStore, label: string): Promise<Progress> {
    const last = await store.lastPosition();
    return new Progress(label, Number(last?.commit ?? 0n));
  }

  update(events: number, done: number): void {
    this.events = events;
    this.done = done;
    if (Date.now() - this.printed >= this.everyMs) this.print();
  }

  finish(): void {
    this.done = this.total;
    this.print();
  }

  private print(): void {
    this.printed = Date.now();
    const seconds = Math.max((this.printed - this.started) / 1000, 0.001);
    const percent = this.total > 0 ? Math.min(100, (100 * this.done) / this.total) : 100;
    this.write(
      `${this.label}: ${this.events} events, ${Math.round(this.events / seconds)} events/s, ${percent.toFixed(0)}% done\n`,
    );
  }
}
