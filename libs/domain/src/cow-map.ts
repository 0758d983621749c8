/**
 * A string-keyed map that successive versions of a job's state share: 4,096 small flat arrays ("leaves",
 * `[hash, key, value, hash, key, value, ...]`) under a two-level table of 64 x 64. A new version copies
 * only the table rows and leaves it changes, so a change costs one hash and O(n / 4,096 + 128) element
 * copies (an array `slice`, not a native `Map` copy: 3.4 us for 29 entries), and a lookup one hash and a
 * scan of a leaf comparing hashes.
 *
 * Measured against Immutable.js's `Map` (bench #11, a 40,000-subtask job, 240,000 referenced files):
 * Immutable re-hashed each long path on every lookup and made each change allocate a path of 32-wide
 * nodes; a completion that subsumed a checkpoint took 2.9 s and the registry 426 bytes per file.
 */
const BITS = 6;
const FAN = 1 << BITS;
const LEAVES = FAN * FAN;

/** Triples: the key's hash (so a scan compares integers first), the key, the value. */
type Leaf = unknown[];
type Row = (Leaf | undefined)[];
type Table = (Row | undefined)[];

/** FNV-1a over the key: its low 12 bits pick the leaf, the whole is compared first within it. */
function hashOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i += 1) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash;
}

function leafIn(table: Table, hash: number): Leaf | undefined {
  const number = hash & (LEAVES - 1);
  return table[number >>> BITS]?.[number & (FAN - 1)];
}

/** The index of the key's triple in the leaf, or -1. */
function indexIn(leaf: Leaf | undefined, hash: number, key: string): number {
  if (!leaf) return -1;
  for (let i = 0; i < leaf.length; i += 3) if (leaf[i] === hash && leaf[i + 1] === key) return i;
  return -1;
}

/** What readers of either a version or a version being edited need. */
export interface ReadonlyCowMap<V> {
  readonly size: number;
  get(key: string): V | undefined;
  has(key: string): boolean;
  entries(): Generator<[string, V]>;
}

export class CowMap<V> implements ReadonlyCowMap<V> {
  static empty<V>(): CowMap<V> {
    return new CowMap<V>(new Array<Row | undefined>(FAN), 0);
  }

  /** Never changed once built: an editor copies what it changes. */
  constructor(
    private readonly table: Table,
    readonly size: number,
  ) {}

  get(key: string): V | undefined {
    return lookup<V>(this.table, key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  *entries(): Generator<[string, V]> {
    yield* entriesOf<V>(this.table);
  }

  /** Entries sorted by key: a plain value to compare (tests) or show. */
  toJSON(): [string, V][] {
    return [...this.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  edit(): CowMapEditor<V> {
    return new CowMapEditor(this.table, this.size);
  }
}

function lookup<V>(table: Table, key: string): V | undefined {
  const hash = hashOf(key);
  const leaf = leafIn(table, hash);
  const i = indexIn(leaf, hash, key);
  return i < 0 ? undefined : (leaf![i + 2] as V);
}

function* entriesOf<V>(table: Table): Generator<[string, V]> {
  for (const row of table) {
    if (!row) continue;
    for (const leaf of row) {
      if (leaf) for (let i = 0; i < leaf.length; i += 3) yield [leaf[i + 1] as string, leaf[i + 2] as V];
    }
  }
}

/** Changes a map without touching the version it started from; `seal()` gives the new version. */
export class CowMapEditor<V> implements ReadonlyCowMap<V> {
  private table: Table;
  private tableCopied = false;
  // Made on the first write: a draft opens an editor on each of its registry's maps and most drafts change
  // one at most (two Sets an editor were a tenth of what firing a periodic savepoint allocated, bench #9).
  private copiedRows: Set<number> | undefined;
  private copiedLeaves: Set<number> | undefined;

  constructor(
    table: Table,
    private count: number,
  ) {
    this.table = table;
  }

  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    return lookup<V>(this.table, key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  set(key: string, value: V): void {
    const hash = hashOf(key);
    const leaf = this.writableLeaf(hash);
    const i = indexIn(leaf, hash, key);
    if (i >= 0) leaf[i + 2] = value;
    else {
      leaf.push(hash, key, value);
      this.count += 1;
    }
  }

  /** Sets the key only when it has no value yet; whether it did. One hash and one scan. */
  setIfAbsent(key: string, value: V): boolean {
    const hash = hashOf(key);
    if (indexIn(leafIn(this.table, hash), hash, key) >= 0) return false;
    this.writableLeaf(hash).push(hash, key, value);
    this.count += 1;
    return true;
  }

  delete(key: string): void {
    const hash = hashOf(key);
    const i = indexIn(leafIn(this.table, hash), hash, key);
    if (i < 0) return;
    // A copied leaf keeps its triples in order: the index found in the version is the copy's.
    const leaf = this.writableLeaf(hash);
    // The last triple takes the deleted one's place: order within a leaf means nothing.
    const last = leaf.length - 3;
    for (let k = 0; k < 3; k += 1) leaf[i + k] = leaf[last + k];
    leaf.length = last;
    this.count -= 1;
  }

  *entries(): Generator<[string, V]> {
    yield* entriesOf<V>(this.table);
  }

  /**
   * The edited version; the editor must not be used afterwards. The leaves it copied are copied once more,
   * to their exact size: a leaf that was pushed to keeps room for ~16 more elements, which the version would
   * hold for as long as it lives (~100 bytes a leaf: 4 MB of the heap at 100,000 retained snapshots, #10).
   */
  seal(): CowMap<V> {
    for (const number of this.copiedLeaves ?? []) {
      const row = this.table[number >>> BITS]!;
      const leaf = row[number & (FAN - 1)]!;
      row[number & (FAN - 1)] = leaf.length > 0 ? leaf.slice() : undefined;
    }
    return new CowMap(this.table, this.count);
  }

  private writableLeaf(hash: number): Leaf {
    const number = hash & (LEAVES - 1);
    const rowIndex = number >>> BITS;
    const leafIndex = number & (FAN - 1);
    if (!this.tableCopied) {
      this.table = this.table.slice();
      this.tableCopied = true;
    }
    const copiedRows = (this.copiedRows ??= new Set());
    const copiedLeaves = (this.copiedLeaves ??= new Set());
    let row = this.table[rowIndex];
    if (!copiedRows.has(rowIndex)) {
      row = row ? row.slice() : new Array<Leaf | undefined>(FAN);
      this.table[rowIndex] = row;
      copiedRows.add(rowIndex);
    }
    let leaf = row![leafIndex];
    if (!copiedLeaves.has(number)) {
      leaf = leaf ? leaf.slice() : [];
      row![leafIndex] = leaf;
      copiedLeaves.add(number);
    }
    return leaf!;
  }
}
