/** What the cache may drop: an entry with no work queued or in flight. */
export interface Evictable {
  readonly idle: boolean;
}

/**
 * Cached aggregates by id, at most `capacity` of them while idle ones remain: a least-recently-used map
 * whose eviction passes over busy entries (a writer with commands queued or in flight is never dropped;
 * the cache then holds more than its capacity until they are done). The Map's insertion order is the LRU
 * order: using an entry moves it to the end.
 */
export class AggregateCache<Entry extends Evictable> {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly capacity: number,
    private readonly create: (id: string) => Entry,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The entry of `id`, created when absent (dropping idle ones, oldest first), now the most recently used. */
  use(id: string): Entry {
    let entry = this.entries.get(id);
    if (entry) {
      this.entries.delete(id); // re-inserted below, at the end
    } else {
      entry = this.create(id);
      this.evictIdle();
    }
    this.entries.set(id, entry);
    return entry;
  }

  /** The entry of `id` if cached, without changing the LRU order. */
  peek(id: string): Entry | undefined {
    return this.entries.get(id);
  }

  private evictIdle(): void {
    for (const [id, entry] of this.entries) {
      if (this.entries.size < this.capacity) return;
      if (entry.idle) this.entries.delete(id);
    }
  }
}
