/**
 * An insertion-ordered map that successive versions of a job's state share, for the containers that grow
 * with the job's whole history (its snapshots, its trigger ids, Flink's checkpoint ids). A version is a
 * frozen base `Map`, shared with the versions before it, under a small layer of its own changes; a new
 * version copies only the layer. When the layer passes about the square root of the base's size, it is
 * merged into a new base, so a change costs O(sqrt n) copies amortised instead of the O(n) of copying the
 * whole `Map` (measured before: 4.4-6.9 ms a command for a job with 10,000 snapshots, 81 % of it in
 * `new Map(map)`).
 *
 * Iteration keeps a `Map`'s order: keys of the base in its order, each with its latest value, then keys
 * added since, in the order they were added (a key deleted and set again counts as added, as in a `Map`).
 */
export class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  // Private fields (#), not TypeScript's `private`: they are not enumerable, so two maps with the same
  // entries in different layers compare equal (jest's `toEqual` compares own enumerable properties).
  /** Never changed once a layer sits on it: shared by versions. */
  #base: ReadonlyMap<K, V>;
  /** Changed values of keys of the base. */
  #changed: Map<K, V>;
  /** Keys the base lacks (or that were deleted from it and set again), in the order they were added. */
  #added: Map<K, V>;
  /** Keys of the base deleted. */
  #deleted: Set<K>;

  private constructor(base: ReadonlyMap<K, V>, changed: Map<K, V>, added: Map<K, V>, deleted: Set<K>) {
    this.#base = base;
    this.#changed = changed;
    this.#added = added;
    this.#deleted = deleted;
  }

  /** A map of these entries, in their order. */
  static of<K, V>(entries: Iterable<readonly [K, V]> = []): LayeredMap<K, V> {
    return new LayeredMap(new Map(entries), new Map(), new Map(), new Set());
  }

  /**
   * A new version to change, sharing what it can with `map`, which stays as it is. A plain map becomes the
   * base as it is: states are never changed in place, so nothing changes it afterwards.
   */
  static editOf<K, V>(map: ReadonlyMap<K, V>): LayeredMap<K, V> {
    if (map instanceof LayeredMap) {
      const layered = map as LayeredMap<K, V>;
      return new LayeredMap(
        layered.#base,
        new Map(layered.#changed),
        new Map(layered.#added),
        new Set(layered.#deleted),
      );
    }
    return new LayeredMap(map, new Map(), new Map(), new Set());
  }

  /** The entries of this version's own layer: what the next edit copies. */
  get layerSize(): number {
    return this.#changed.size + this.#added.size + this.#deleted.size;
  }

  get size(): number {
    return this.#base.size - this.#deleted.size + this.#added.size;
  }

  get(key: K): V | undefined {
    const added = this.#added.get(key);
    if (added !== undefined || this.#deleted.has(key)) return added;
    return this.#changed.get(key) ?? this.#base.get(key);
  }

  has(key: K): boolean {
    return this.#added.has(key) || (this.#base.has(key) && !this.#deleted.has(key));
  }

  /** For the version's editor only (a draft), before the state is sealed: versions before it are untouched. */
  set(key: K, value: V): this {
    if (this.#base.has(key) && !this.#deleted.has(key)) this.#changed.set(key, value);
    else this.#added.set(key, value);
    this.mergeIfLarge();
    return this;
  }

  /** For the version's editor only, like `set`. */
  delete(key: K): boolean {
    if (this.#added.delete(key)) return true;
    if (!this.#base.has(key) || this.#deleted.has(key)) return false;
    this.#changed.delete(key);
    this.#deleted.add(key);
    this.mergeIfLarge();
    return true;
  }

  *entries(): MapIterator<[K, V]> {
    const changed = this.#changed;
    const deleted = this.#deleted;
    if (changed.size === 0 && deleted.size === 0) yield* this.#base.entries();
    else for (const [key, value] of this.#base) if (!deleted.has(key)) yield [key, changed.get(key) ?? value];
    yield* this.#added.entries();
  }

  *keys(): MapIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  get [Symbol.toStringTag](): string {
    return 'LayeredMap';
  }

  /** A new base with the layer in it; the old base stays as the versions before this one see it. */
  private mergeIfLarge(): void {
    if (this.layerSize <= 32 + Math.sqrt(this.#base.size)) return;
    const base = new Map(this.#base);
    for (const key of this.#deleted) base.delete(key);
    for (const [key, value] of this.#changed) base.set(key, value);
    for (const [key, value] of this.#added) base.set(key, value);
    this.#base = base;
    this.#changed = new Map();
    this.#added = new Map();
    this.#deleted = new Set();
  }
}
