import fc from 'fast-check';
import {
  CowMap,
  EMPTY_REGISTRY,
  RegistryEditor,
  deletingSnapshot,
  discardPlanOf,
  isWithin,
  jobAreaOf,
  keptByAnyOf,
  savepointJobPrefixOf,
  savepointDirectoryOf,
  normaliseLocation,
  directoriesNotNamedFor,
  planDiscard,
  planStrayCleanup,
  strayCleanupOwner,
  whyKept,
  type SharedStateRegistry,
} from '../src';

// The shared-state registry's parts one at a time: location keys, containment, what keeps a location,
// who deletes it; and the copy-on-write map under it.

/** A registry built by edits on the empty one. */
function registry(edit: (r: RegistryEditor) => void): SharedStateRegistry {
  const editor = new RegistryEditor(EMPTY_REGISTRY);
  edit(editor);
  return editor.seal();
}
const handle = (path: string, sizeBytes = 1) => ({ path, sizeBytes });

describe('normaliseLocation', () => {
  it.each([
    ['/data/chk/a', '/data/chk/a'],
    ['/data//chk/./a/', '/data/chk/a'],
    ['/data/chk/../sp/x', '/data/sp/x'],
    ['/data/chk/..', '/data'],
    ['/data/chk/.', '/data/chk'],
    ['/data/..x/y', '/data/..x/y'],
    ['/data/.x', '/data/.x'],
    ['file:///data/a%20b/c', '/data/a b/c'],
    ['file://host/data/x', '/data/x'],
    ['file:/data/x', '/data/x'],
    ['file:///data/%zz/x', '/data/%zz/x'],
    ['s3://bucket/a/', 's3://bucket/a'],
    ['s3a://bucket/a//', 's3://bucket/a'],
    ['S3P://bucket/a', 's3://bucket/a'],
    ['gs://bucket/a/', 'gs://bucket/a'],
    ['hdfs://nn:8020/x', 'hdfs://nn:8020/x'],
    ['relative/path/', 'relative/path/'],
    ['x-s3a://b/c', 'x-s3a://b/c'],
    ['data/s3a://b/c', 'data/s3a://b/c'],
    ['file:relative/x', '/relative/x'],
    ['file:relative/x/', '/relative/x'],
  ])('R43 %s -> %s', (location, key) => {
    expect(normaliseLocation(location)).toBe(key);
  });
});

describe('isWithin', () => {
  it.each([
    ['/data/chk', '/data/chk', true],
    ['/data/chk/a', '/data/chk', true],
    ['/data/chk-2/a', '/data/chk', false],
    ['/data/chkx', '/data/chk', false],
    ['/data/chk/a', '/data/chk/', true],
    ['/data', '/data/chk', false],
    ['s3://b/x/y', 's3://b/x', true],
    ['s3://b/xy', 's3://b/x', false],
  ])('%s within %s: %s', (location, directory, expected) => {
    expect(isWithin(location, directory)).toBe(expected);
  });
});

describe('whyKept and deletingSnapshot', () => {
  it('R42 a location referenced by other live snapshots is kept as REFERENCED, with them in order', () => {
    const r = registry((e) => {
      e.reference(3, [handle('/data/shared/f')]);
      e.reference(1, [handle('/data/shared/f')]);
      e.reference(2, [handle('/data/shared/f')]);
    });
    expect(r.references.get('/data/shared/f')!.snapshots).toEqual([1, 2, 3]);
    expect(whyKept(r, '/data/shared/f', 2)).toEqual({ reason: 'REFERENCED', snapshots: [1, 3] });
    expect(whyKept(r, '/data/shared/f')).toEqual({ reason: 'REFERENCED', snapshots: [1, 2, 3] });
    const only = registry((e) => e.reference(4, [handle('/data/shared/g')]));
    expect(whyKept(only, '/data/shared/g', 4)).toBeNull();
  });

  it('R42 a location in a live snapshot’s directory is kept as LIVE_DIRECTORY, up to the first directory', () => {
    const r = registry((e) => {
      e.ownDirectory(5, '/data/chk/job/chk-5/');
      e.ownDirectory(6, 's3a://bucket/chk/job/chk-6');
    });
    expect(whyKept(r, '/data/chk/job/chk-5/sub/f')).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [5] });
    expect(whyKept(r, '/data/chk/job/chk-5')).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [5] });
    expect(whyKept(r, '/data/chk/job/chk-5/f', 5)).toBeNull();
    expect(whyKept(r, '/data/chk/job/chk-50/f')).toBeNull();
    expect(whyKept(r, '/data/chk/job')).toBeNull();
    expect(whyKept(r, 's3://bucket/chk/job/chk-6/x')).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [6] });
    expect(whyKept(r, 's3://bucket/other')).toBeNull();
    expect(whyKept(r, 's3://bucket')).toBeNull();
    expect(whyKept(r, 'relative')).toBeNull();
    // Owners of a directory and of one above it: the nearest owners other than the discarded one.
    const nested = registry((e) => {
      e.ownDirectory(1, '/data/sp/a');
      e.ownDirectory(2, '/data/sp/a/b');
    });
    expect(whyKept(nested, '/data/sp/a/b/f', 2)).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [1] });
    // Answers per directory are cached for one plan, the "none" answer too.
    const cache = new Map<string, number[] | null>();
    expect(whyKept(nested, '/data/other/x/f1', undefined, cache)).toBeNull();
    expect(cache.get('/data/other/x')).toBeNull();
    expect(whyKept(nested, '/data/other/x/f2', undefined, cache)).toBeNull();
    expect(whyKept(nested, '/data/sp/a/f1', undefined, cache)).toEqual({
      reason: 'LIVE_DIRECTORY',
      snapshots: [1],
    });
    expect(cache.get('/data/sp/a')).toEqual([1]);
    expect(whyKept(nested, '/data/sp/a/f2', undefined, cache)).toEqual({
      reason: 'LIVE_DIRECTORY',
      snapshots: [1],
    });
  });

  it('a live directory at the top (a short name, or a whole bucket) keeps what lies in it', () => {
    const r = registry((e) => {
      e.ownDirectory(2, '/d');
      e.ownDirectory(3, 's3://bucket');
      e.ownDirectory(5, 'r');
      e.markDeleting(4, ['/e']);
    });
    expect(whyKept(r, 'r/f')).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [5] });
    expect(whyKept(r, '/d/f')).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [2] });
    expect(whyKept(r, 's3://bucket/a/f')).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [3] });
    expect(whyKept(r, 's3://bucket/f')).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [3] });
    expect(deletingSnapshot(r, '/e/f')).toBe(4);
  });

  it('a URI’s ancestors stop at its bucket or host: nothing above it (its scheme) is a directory it lies in', () => {
    const above = ['s3:', 's3:/', 's3://', ':', ':/'];
    const r = registry((e) => {
      for (const location of above) e.ownDirectory(2, location);
      e.markDeleting(3, above);
    });
    for (const location of ['s3://bucket', 's3://bucket/f', 's3://bucket/a/f', '://host/f']) {
      expect(whyKept(r, location)).toBeNull();
      expect(deletingSnapshot(r, location)).toBeUndefined();
    }
  });

  it('a location being deleted by someone else is kept as BEING_DELETED: a discard, or a stray cleanup', () => {
    const r = registry((e) => {
      e.markDeleting(7, ['/data/chk/job/chk-7']);
      e.markDeleting(strayCleanupOwner(3), ['/data/stray/f']);
    });
    expect(strayCleanupOwner(3)).toBe(-3);
    expect(whyKept(r, '/data/chk/job/chk-7')).toEqual({ reason: 'BEING_DELETED', snapshots: [7] });
    expect(whyKept(r, '/data/chk/job/chk-7', 7)).toBeNull();
    expect(whyKept(r, '/data/stray/f')).toEqual({ reason: 'BEING_DELETED', snapshots: [], cleanupId: 3 });
    // Only the very location: what lies inside was kept by that discard or came later.
    expect(whyKept(r, '/data/chk/job/chk-7/f')).toBeNull();
    expect(deletingSnapshot(r, '/data/chk/job/chk-7/f')).toBe(7);
    expect(deletingSnapshot(r, '/data/chk/job/chk-7')).toBe(7);
    expect(deletingSnapshot(r, '/data/stray/f')).toBe(-3);
    expect(deletingSnapshot(r, '/data/chk/job/chk-70/f')).toBeUndefined();
    expect(deletingSnapshot(r, '/data/chk/job')).toBeUndefined();
    expect(deletingSnapshot(EMPTY_REGISTRY, '/data/chk/job/chk-7/f')).toBeUndefined();
  });

  it('deletingSnapshot looks at every ancestor down to the first directory, and at URI ancestors to the bucket', () => {
    const r = registry((e) => {
      e.markDeleting(1, ['/data']);
      e.markDeleting(2, ['s3://bucket/chk']);
      e.markDeleting(3, ['s3://other']);
    });
    expect(deletingSnapshot(r, '/data/a/b/c')).toBe(1);
    expect(deletingSnapshot(r, '/dat/a')).toBeUndefined();
    expect(deletingSnapshot(r, 's3://bucket/chk/x/y')).toBe(2);
    expect(deletingSnapshot(r, 's3://bucket/chkx/y')).toBeUndefined();
    expect(deletingSnapshot(r, 's3://other/any/thing')).toBe(3);
    expect(deletingSnapshot(r, 's3://other')).toBe(3);
    expect(deletingSnapshot(r, 's3://bucket')).toBeUndefined();
    const root = registry((e) => e.markDeleting(4, ['/']));
    expect(root.deleting.get('/')).toBe(4);
    expect(deletingSnapshot(root, '/x')).toBeUndefined();
  });

  it('marks a location deleting once (the first owner keeps it) and unmarks only for that owner', () => {
    const editor = new RegistryEditor(EMPTY_REGISTRY);
    editor.markDeleting(1, ['/data/x/']);
    editor.markDeleting(2, ['/data/x']);
    expect(editor.deleting.get('/data/x')).toBe(1);
    editor.deletionDone(2, ['/data/x']);
    expect(editor.deleting.get('/data/x')).toBe(1);
    editor.deletionDone(1, ['/data/x/']);
    expect(editor.deleting.has('/data/x')).toBe(false);
  });
});

describe('RegistryEditor', () => {
  it('counts a location’s bytes once, and forgets it when its last referrer is released', () => {
    const editor = new RegistryEditor(EMPTY_REGISTRY);
    editor.reference(1, [handle('/data/f', 10), handle('/data/g', 5)]);
    editor.reference(2, [handle('/data/f/', 99)]);
    editor.reference(2, [handle('/data/f', 99)]); // twice by one snapshot: once
    expect(editor.referencedBytes).toBe(15);
    expect(editor.references.get('/data/f')).toEqual({ sizeBytes: 10, snapshots: [1, 2] });
    editor.release(1, [handle('/data/f'), handle('/data/g'), handle('/data/unknown')], [], []);
    expect(editor.references.get('/data/f')).toEqual({ sizeBytes: 10, snapshots: [2] });
    expect(editor.references.has('/data/g')).toBe(false);
    expect(editor.referencedBytes).toBe(10);
    editor.release(3, [handle('/data/f')], [], []); // not a referrer: nothing changes
    expect(editor.references.get('/data/f')!.snapshots).toEqual([2]);
    editor.release(2, [handle('/data/f')], [], []);
    expect(editor.referencedBytes).toBe(0);
    expect(editor.references.size).toBe(0);
  });

  it('owns directories per snapshot, in id order; releasing one owner leaves the others', () => {
    const editor = new RegistryEditor(EMPTY_REGISTRY);
    editor.ownDirectory(4, '/data/sp/x');
    editor.ownDirectory(2, '/data/sp/x/');
    editor.ownDirectory(4, '/data/sp/x');
    expect(editor.directories.get('/data/sp/x')).toEqual([2, 4]);
    editor.release(4, [], ['/data/sp/x'], []);
    expect(editor.directories.get('/data/sp/x')).toEqual([2]);
    editor.release(9, [], ['/data/sp/x', '/data/none'], []);
    expect(editor.directories.get('/data/sp/x')).toEqual([2]);
    editor.release(2, [], ['/data/sp/x'], ['/data/sp/x']);
    expect(editor.directories.has('/data/sp/x')).toBe(false);
    expect(editor.deleting.get('/data/sp/x')).toBe(2);
  });

  it('releasing the first of a directory’s owners leaves it owned by the others', () => {
    const editor = new RegistryEditor(EMPTY_REGISTRY);
    editor.ownDirectory(2, '/data/sp/x');
    editor.ownDirectory(4, '/data/sp/x');
    editor.release(2, [], ['/data/sp/x'], []);
    expect(editor.directories.get('/data/sp/x')).toEqual([4]);
    expect(whyKept(editor.seal(), '/data/sp/x/f')).toEqual({ reason: 'LIVE_DIRECTORY', snapshots: [4] });
  });

  it('a registry being edited cannot start another edit', () => {
    const editor = new RegistryEditor(EMPTY_REGISTRY);
    expect(() => new RegistryEditor(editor)).toThrow('a registry still being edited cannot be edited again');
    const sealed = editor.seal();
    expect(() => new RegistryEditor(sealed)).not.toThrow();
  });
});

describe('planDiscard and planStrayCleanup', () => {
  it('R42 deletes the snapshot’s directory, keeping what other live snapshots reference or own inside it', () => {
    const r = registry((e) => {
      e.ownDirectory(1, '/data/chk/job/chk-1');
      e.reference(1, [handle('/data/chk/job/chk-1/own'), handle('/data/chk/job/chk-1/shared-with-2')]);
      e.reference(2, [handle('/data/chk/job/chk-1/shared-with-2')]);
      e.ownDirectory(3, '/data/chk/job/chk-1/sp-of-3');
      e.ownDirectory(1, '/data/chk/job/chk-1/nested-own');
      e.reference(4, [handle('/data/chk/job/chk-10/f')]);
    });
    const plan = planDiscard(
      r,
      1,
      [handle('/data/chk/job/chk-1/own'), handle('/data/chk/job/chk-1/shared-with-2')],
      ['/data/chk/job/chk-1'],
    );
    expect(plan.locations).toEqual(['/data/chk/job/chk-1']);
    expect(plan.stateHandles).toEqual([handle('/data/chk/job/chk-1/own')]);
    expect(plan.kept).toEqual([
      { path: '/data/chk/job/chk-1/shared-with-2', reason: 'REFERENCED', snapshots: [2] },
      { path: '/data/chk/job/chk-1/sp-of-3', reason: 'LIVE_DIRECTORY', snapshots: [3] },
    ]);
  });

  it('a directory another live snapshot owns is kept whole, once, however often it is named', () => {
    const r = registry((e) => {
      e.ownDirectory(1, '/data/sp/x');
      e.ownDirectory(2, '/data/sp/x');
    });
    const plan = planDiscard(r, 1, [handle('/data/sp/x')], ['/data/sp/x', '/data/sp/x/']);
    expect(plan).toEqual({
      locations: [],
      stateHandles: [],
      kept: [{ path: '/data/sp/x', reason: 'LIVE_DIRECTORY', snapshots: [2] }],
    });
  });

  it('what only the discarded snapshot references inside its directory is deleted with it, listed or not', () => {
    const r = registry((e) => {
      e.ownDirectory(1, '/data/chk/job/chk-1');
      e.reference(1, [handle('/data/chk/job/chk-1/own')]);
    });
    expect(planDiscard(r, 1, [], ['/data/chk/job/chk-1'])).toEqual({
      locations: ['/data/chk/job/chk-1'],
      stateHandles: [],
      kept: [],
    });
  });

  it('keeps each live location inside the discarded directories once, when the directories nest', () => {
    const r = registry((e) => {
      e.ownDirectory(1, '/data/sp-1');
      e.ownDirectory(1, '/data/sp-1/inner');
      e.ownDirectory(2, '/data/sp-1/inner/live');
      e.reference(2, [handle('/data/sp-1/inner/f')]);
    });
    const plan = planDiscard(r, 1, [], ['/data/sp-1', '/data/sp-1/inner']);
    expect(plan.locations).toEqual(['/data/sp-1', '/data/sp-1/inner']);
    expect(plan.kept).toEqual([
      { path: '/data/sp-1/inner/f', reason: 'REFERENCED', snapshots: [2] },
      { path: '/data/sp-1/inner/live', reason: 'LIVE_DIRECTORY', snapshots: [2] },
    ]);
  });

  it('a discard request that recorded its plan is executed as recorded, not planned again', () => {
    const now = registry((e) => e.reference(2, [handle('/data/chk/job/chk-1/f')]));
    const recorded = {
      locations: ['/data/chk/job/chk-1'],
      stateHandles: [handle('/data/chk/job/chk-1/f')],
      kept: [],
    };
    expect(discardPlanOf(now, 1, recorded)).toEqual(recorded);
    expect(discardPlanOf(now, 1, { ...recorded, kept: undefined }).kept).toEqual([
      { path: '/data/chk/job/chk-1/f', reason: 'REFERENCED', snapshots: [2] },
    ]);
  });

  it('R20 a stray acknowledgement’s handles: deleted unless something keeps them; each location once', () => {
    const r = registry((e) => e.reference(1, [handle('/data/shared/a')]));
    expect(
      planStrayCleanup(r, [handle('/data/shared/a'), handle('/data/shared/b'), handle('/data/shared//b')]),
    ).toEqual({
      cleanup: [handle('/data/shared/b')],
      kept: [{ path: '/data/shared/a', reason: 'REFERENCED', snapshots: [1] }],
    });
  });
});

/** FNV-1a 32 (the map's hash), to find keys that share a leaf or a whole hash. */
function fnv(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i += 1) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash;
}

describe('CowMap', () => {
  it('tells keys with the same 32-bit hash apart (FNV-1a collisions)', () => {
    // Published FNV-1a 32 collisions.
    expect(fnv('costarring')).toBe(fnv('liquid'));
    expect(fnv('declinate')).toBe(fnv('macallums'));
    const editor = CowMap.empty<number>().edit();
    editor.set('costarring', 1);
    editor.set('liquid', 2);
    editor.set('declinate', 3);
    expect(editor.get('liquid')).toBe(2);
    expect(editor.get('costarring')).toBe(1);
    expect(editor.get('macallums')).toBeUndefined();
    expect(editor.size).toBe(3);
    const map = editor.seal();
    expect(map.get('costarring')).toBe(1);
    expect(map.has('liquid')).toBe(true);
    expect(map.has('macallums')).toBe(false);
    const next = map.edit();
    next.delete('costarring');
    expect(next.get('liquid')).toBe(2);
    expect(next.has('costarring')).toBe(false);
    expect(map.get('costarring')).toBe(1); // the version it started from is untouched
  });

  /** Four keys `<prefix><n>` that share one leaf (the hash's low 12 bits), each mapped to `v-<key>`. */
  function fourKeysInOneLeaf(prefix: string) {
    const leafOf = (key: string) => fnv(key) & 4095;
    const keys: string[] = [];
    for (let i = 0; keys.length < 4; i += 1)
      if (leafOf(`${prefix}${i}`) === leafOf(`${prefix}0`)) keys.push(`${prefix}${i}`);
    const editor = CowMap.empty<string>().edit();
    for (const key of keys) editor.set(key, `v-${key}`);
    return { keys, editor };
  }

  it('deletes from a leaf of several keys without disturbing the others; deleting a missing key does nothing', () => {
    const { keys, editor } = fourKeysInOneLeaf('k');
    editor.delete(keys[0]!);
    expect(editor.size).toBe(3);
    for (const key of keys.slice(1)) expect(editor.get(key)).toBe(`v-${key}`);
    editor.delete('not-there');
    editor.delete(keys[0]!);
    expect(editor.size).toBe(3);
    const empty = CowMap.empty<number>().edit();
    empty.delete('nothing');
    expect(empty.size).toBe(0);
    editor.set(keys[1]!, 'changed');
    expect(editor.size).toBe(3);
    expect(editor.get(keys[1]!)).toBe('changed');
    expect(editor.has(keys[2]!)).toBe(true);
    expect(editor.has(keys[0]!)).toBe(false);
  });

  it('deleting from a leaf the version shares deletes that key in the editor’s copy, and leaves the version whole', () => {
    const { keys, editor: start } = fourKeysInOneLeaf('d');
    const version = start.seal();
    const editor = version.edit();
    editor.delete(keys[1]!);
    expect(editor.size).toBe(3);
    expect(editor.has(keys[1]!)).toBe(false);
    for (const key of [keys[0]!, keys[2]!, keys[3]!]) expect(editor.get(key)).toBe(`v-${key}`);
    expect(version.toJSON()).toEqual(keys.map((key) => [key, `v-${key}`]).sort());
  });

  it('setIfAbsent sets a key only when it has no value, says whether it did, and leaves the version it started from', () => {
    const start = CowMap.empty<number>().edit();
    expect(start.setIfAbsent('costarring', 1)).toBe(true);
    const version = start.seal();
    const editor = version.edit();
    expect(editor.setIfAbsent('costarring', 2)).toBe(false);
    expect(editor.setIfAbsent('liquid', 3)).toBe(true); // the same hash as costarring: one leaf
    expect(editor.setIfAbsent('liquid', 4)).toBe(false);
    expect(editor.size).toBe(2);
    expect(editor.seal().toJSON()).toEqual([
      ['costarring', 1],
      ['liquid', 3],
    ]);
    expect(version.toJSON()).toEqual([['costarring', 1]]);
  });

  it('an editor’s changes to several leaves of one row all reach the new version; the version it started from keeps its own', () => {
    // Keys in one row (the hash's bits 6 to 11) but in different leaves (bits 0 to 5).
    const rowOf = (key: string) => (fnv(key) & 4095) >>> 6;
    const leafOf = (key: string) => fnv(key) & 63;
    const keys = ['r0'];
    for (let i = 1; keys.length < 3; i += 1) {
      const key = `r${i}`;
      if (rowOf(key) === rowOf('r0') && !keys.some((other) => leafOf(other) === leafOf(key))) keys.push(key);
    }
    const [a, b, c] = keys as [string, string, string];
    const start = CowMap.empty<string>().edit();
    start.set(a, 'a0');
    start.set(b, 'b0');
    const old = start.seal();
    const editor = old.edit();
    editor.set(a, 'a1');
    editor.set(b, 'b1');
    editor.set(c, 'c1');
    editor.set(a, 'a2');
    editor.delete(b);
    const next = editor.seal();
    expect(next.toJSON()).toEqual([
      [a, 'a2'],
      [c, 'c1'],
    ]);
    expect(old.toJSON()).toEqual([
      [a, 'a0'],
      [b, 'b0'],
    ]);
  });

  it('toJSON lists the entries sorted by key, whatever the insertion order and the leaves', () => {
    const editor = CowMap.empty<number>().edit();
    const keys = Array.from({ length: 300 }, (_, i) => `/data/${(i * 7919) % 1000}`);
    keys.forEach((key, i) => editor.set(key, i));
    const json = editor.seal().toJSON();
    expect(json.map(([key]) => key)).toEqual([...keys].sort());
    expect(json).toHaveLength(300);
    expect(new Map(json).get(keys[5]!)).toBe(5);
  });
  it('every sealed version reads as a Map model of its edits, however later editors set and delete (fast-check)', () => {
    // Few keys over few leaves' worth of hashes: leaves fill, empty (sealed as none) and fill again.
    const key = fc.integer({ min: 0, max: 40 }).map((n) => `/data/chk-${n}`);
    const op = fc.oneof(
      fc.record({ set: key, value: fc.integer() }),
      fc.record({ delete: key }),
      fc.record({ setIfAbsent: key, value: fc.integer() }),
    );
    fc.assert(
      fc.property(fc.array(fc.array(op, { maxLength: 30 }), { minLength: 1, maxLength: 8 }), (rounds) => {
        let version = CowMap.empty<number>();
        let model = new Map<string, number>();
        const versions: [CowMap<number>, Map<string, number>][] = [];
        for (const round of rounds) {
          const editor = version.edit();
          model = new Map(model);
          for (const o of round) {
            if ('delete' in o) {
              editor.delete(o.delete);
              model.delete(o.delete);
            } else if ('setIfAbsent' in o) {
              expect(editor.setIfAbsent(o.setIfAbsent, o.value)).toBe(!model.has(o.setIfAbsent));
              if (!model.has(o.setIfAbsent)) model.set(o.setIfAbsent, o.value);
            } else {
              editor.set(o.set, o.value);
              model.set(o.set, o.value);
            }
          }
          version = editor.seal();
          versions.push([version, model]);
        }
        // Each version still reads as it was sealed: later editors copied what they changed.
        for (const [sealed, expected] of versions) {
          expect(sealed.size).toBe(expected.size);
          expect(sealed.toJSON()).toEqual([...expected].sort(([a], [b]) => (a < b ? -1 : 1)));
          for (const [k, v] of expected) expect(sealed.get(k)).toBe(v);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('files in another job’s checkpoint or savepoint directory (decision 0031)', () => {
  const OWN = 'a'.repeat(32);
  /** The job discarding, as its plans see it without a restore from another job. */
  const PLANNING = { jobId: OWN };
  const OTHER = 'b'.repeat(32);

  it.each([
    [`/data/chk/${OTHER}/shared/sst-1`, OTHER],
    [`s3://bucket/chk/${OTHER}/chk-12/f`, OTHER],
    [`/data/chk/${OTHER}/taskowned/f`, OTHER],
    [`/data/chk/${OTHER}/chk-3`, OTHER],
    // The changelog state backend: <dstl.dfs.base-path>/<jobId>/dstl/<uuid> (StateChangeFsUploader).
    [`s3://b/changelog/${OTHER}/dstl/6f1c-uuid`, OTHER],
    [`/data/changelog/${OTHER}/dstlx/f`, undefined],
    [`/data/chk/${OTHER}/savepoint-x/f`, undefined],
    [`/data/chk/${OTHER}x/shared/f`, undefined],
    ['/data/chk/job/shared/f', undefined],
    [`/data/chk/${OTHER.toUpperCase()}/shared/f`, undefined],
  ])('jobAreaOf(%s) is %s', (location, job) => {
    expect(jobAreaOf(location)).toBe(job);
  });

  it('a discard and a stray cleanup keep them, and say why; the job’s own and unlaid-out files go', () => {
    const inherited = handle(`/data/chk/${OTHER}/shared/sst-1`);
    const own = handle(`/data/chk/${OWN}/shared/sst-2`);
    const elsewhere = handle('/data/restored/sst-3');
    const plan = planDiscard(
      EMPTY_REGISTRY,
      1,
      [inherited, own, elsewhere],
      [`/data/chk/${OWN}/chk-1`],
      PLANNING,
    );
    expect(plan).toEqual({
      locations: [`/data/chk/${OWN}/chk-1`],
      stateHandles: [own, elsewhere],
      kept: [{ path: inherited.path, reason: 'OTHER_JOB', snapshots: [] }],
    });
    expect(planStrayCleanup(EMPTY_REGISTRY, [inherited, own], PLANNING)).toEqual({
      cleanup: [own],
      kept: [{ path: inherited.path, reason: 'OTHER_JOB', snapshots: [] }],
    });
    // Referenced by a live snapshot of the job, the reference is the reason given.
    const r = registry((e) => e.reference(2, [inherited]));
    expect(planDiscard(r, 1, [inherited], [], PLANNING).kept).toEqual([
      { path: inherited.path, reason: 'REFERENCED', snapshots: [2] },
    ]);
  });

  it.each([
    [`/data/sp/savepoint-${OTHER.slice(0, 6)}-0123456789ab/f`, OTHER.slice(0, 6)],
    [`s3://bucket/sp/savepoint-${OTHER.slice(0, 6)}-0123456789ab`, OTHER.slice(0, 6)],
    [`/data/sp/savepoint-${OTHER.slice(0, 6)}-0123456789a/f`, undefined],
    [`/data/sp/savepoint-${OTHER.slice(0, 6)}-0123456789abc/f`, undefined],
    [`/data/sp/my-savepoint-${OTHER.slice(0, 6)}-0123456789ab/f`, undefined],
    ['/data/sp/savepoint-1/f', undefined],
  ])('savepointJobPrefixOf(%s) is %s', (location, prefix) => {
    expect(savepointJobPrefixOf(location)).toBe(prefix);
  });

  it.each([
    [
      `/data/sp/savepoint-${OTHER.slice(0, 6)}-0123456789ab/op/f`,
      `/data/sp/savepoint-${OTHER.slice(0, 6)}-0123456789ab`,
    ],
    [
      `s3://b/savepoint-${OTHER.slice(0, 6)}-0123456789ab`,
      `s3://b/savepoint-${OTHER.slice(0, 6)}-0123456789ab`,
    ],
    [`/a/savepoint-aaaaaa-0123456789ab/savepoint-bbbbbb-0123456789ab/f`, '/a/savepoint-aaaaaa-0123456789ab'],
    [`/data/sp/my-savepoint-${OTHER.slice(0, 6)}-0123456789ab/f`, undefined],
    [`/data/sp/savepoint-${OTHER.slice(0, 6)}-0123456789abc/f`, undefined],
  ])(
    'R72: savepointDirectoryOf(%s) is %s (the directory whose owner an acknowledgement naming it needs a hold of)',
    (location, directory) => {
      expect(savepointDirectoryOf(location)).toBe(directory);
    },
  );

  it('directoriesNotNamedFor: a snapshot’s directories Flink’s layout does not name for its job (imports, another run’s), normalised, once each', () => {
    expect(
      directoriesNotNamedFor(OWN, [
        'file:///data/imports/nightly/',
        '/data/imports/nightly/_metadata/..',
        `/data/c/${OWN}/chk-3`,
        `s3://b/sp/savepoint-${OWN.slice(0, 6)}-0123456789ab`,
        `/data/c/${OTHER}/chk-3`,
        `s3://b/sp/savepoint-${OTHER.slice(0, 6)}-0123456789ab`,
        's3://b/imports/weekly',
        null,
        undefined,
      ]),
    ).toEqual([
      '/data/imports/nightly',
      `/data/c/${OTHER}/chk-3`,
      `s3://b/sp/savepoint-${OTHER.slice(0, 6)}-0123456789ab`,
      's3://b/imports/weekly',
    ]);
  });

  it('files in a savepoint directory another job’s id names are kept too (a restore from its native savepoint); the job’s own savepoint’s go', () => {
    const inherited = handle(`s3://b/sp/savepoint-${OTHER.slice(0, 6)}-0123456789ab/sst-1`);
    const own = handle(`s3://b/sp/savepoint-${OWN.slice(0, 6)}-0123456789ab/sst-2`);
    expect(planDiscard(EMPTY_REGISTRY, 1, [inherited, own], [], PLANNING)).toEqual({
      locations: [],
      stateHandles: [own],
      kept: [{ path: inherited.path, reason: 'OTHER_JOB', snapshots: [] }],
    });
  });

  it('files in the directory of the other job’s snapshot the job was restored from are kept, though its name shares the job’s six characters', () => {
    const sibling = `${OWN.slice(0, 6)}${'d'.repeat(26)}`;
    const restoredFrom = `/data/sp/savepoint-${sibling.slice(0, 6)}-0123456789ab`;
    const inherited = handle(`${restoredFrom}/sst-1`);
    const own = handle(`/data/sp/savepoint-${OWN.slice(0, 6)}-ba9876543210/sst-2`);
    expect(planDiscard(EMPTY_REGISTRY, 1, [inherited, own], [], { jobId: OWN, restoredFrom })).toEqual({
      locations: [],
      stateHandles: [own],
      kept: [{ path: inherited.path, reason: 'OTHER_JOB', snapshots: [] }],
    });
    // Without the restore's directory, six characters cannot tell them apart.
    expect(planDiscard(EMPTY_REGISTRY, 1, [inherited, own], [], PLANNING).stateHandles).toEqual([
      inherited,
      own,
    ]);
  });

  it('property: whatever the handles, no plan deletes a file laid out under another job id', () => {
    const job = fc.constantFrom(OWN, OTHER, 'c'.repeat(32));
    const area = fc
      .tuple(
        fc.constantFrom('/data/chk', 's3://bucket/chk', 'file:///data/chk', 's3a://bucket/chk'),
        job,
        fc.constantFrom('shared', 'taskowned', 'dstl', 'chk-1', 'chk-22', 'savepoint-1', 'other'),
      )
      .map((parts) => parts.join('/'));
    const savepoint = fc
      .tuple(
        fc.constantFrom('/data/sp', 's3://bucket/sp'),
        job,
        fc.constantFrom('0123456789ab', 'fedcba987654'),
      )
      .map(([dir, id, random]) => `${dir}/savepoint-${id.slice(0, 6)}-${random}`);
    const path = fc
      .tuple(fc.oneof(area, savepoint), fc.constantFrom('f', 'sst-1', 'x/y'))
      .map((parts) => parts.join('/'));
    fc.assert(
      fc.property(
        fc.array(path, { maxLength: 20 }),
        fc.array(path, { maxLength: 5 }),
        (files, referenced) => {
          const r = registry((e) =>
            e.reference(
              2,
              referenced.map((p) => handle(p)),
            ),
          );
          const handles = files.map((p) => handle(p));
          const deleted = [
            ...planDiscard(r, 1, handles, [], PLANNING).stateHandles,
            ...planStrayCleanup(r, handles, PLANNING).cleanup,
          ];
          for (const file of deleted) {
            const owner = jobAreaOf(normaliseLocation(file.path));
            expect(owner === undefined || owner === OWN).toBe(true);
            const savepointOf = savepointJobPrefixOf(normaliseLocation(file.path));
            expect(savepointOf === undefined || savepointOf === OWN.slice(0, 6)).toBe(true);
            expect(referenced.map(normaliseLocation)).not.toContain(normaliseLocation(file.path));
          }
          // Nothing is lost: each distinct file is deleted or kept.
          const plan = planDiscard(r, 1, handles, [], PLANNING);
          const distinct = new Set(files.map(normaliseLocation));
          expect(plan.stateHandles.length + plan.kept.length).toBe(distinct.size);
        },
      ),
    );
  });
});

describe('keptByAnyOf (the orphan sweep’s index of every registry’s live locations)', () => {
  it('property: answers as whyKept over every registry does, for any registries and locations', () => {
    const segment = fc.constantFrom('a', 'b', 'chk-1', 'shared', 'x.sst');
    const path = fc
      .tuple(
        fc.constantFrom('/data', 's3://bucket', 's3://bucket/p', 'file:///data'),
        fc.array(segment, { minLength: 0, maxLength: 4 }),
      )
      .map(([root, parts]) => [root, ...parts].join('/'));
    const edit = fc.oneof(
      fc.record({ reference: fc.integer({ min: 1, max: 4 }), paths: fc.array(path, { maxLength: 3 }) }),
      fc.record({ own: fc.integer({ min: 1, max: 4 }), path }),
      fc.record({ release: fc.integer({ min: 1, max: 4 }), paths: fc.array(path, { maxLength: 3 }) }),
      fc.record({
        deleting: fc.integer({ min: -3, max: 4 }).filter((n) => n !== 0),
        paths: fc.array(path, { maxLength: 2 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(edit, { maxLength: 8 }), { maxLength: 4 }),
        fc.array(path, { maxLength: 12 }),
        (jobs, asked) => {
          const registries = jobs.map((edits) =>
            registry((r) => {
              for (const e of edits) {
                if ('reference' in e)
                  r.reference(
                    e.reference,
                    e.paths.map((p) => handle(p)),
                  );
                else if ('own' in e) r.ownDirectory(e.own, e.path);
                else if ('release' in e)
                  r.release(
                    e.release,
                    e.paths.map((p) => handle(p)),
                    e.paths,
                    [],
                  );
                else r.markDeleting(e.deleting, e.paths);
              }
            }),
          );
          const kept = keptByAnyOf(registries);
          for (const location of asked.map(normaliseLocation)) {
            const expected = registries.some((r) => whyKept(r, location) !== null);
            expect([location, kept(location)]).toEqual([location, expected]);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
