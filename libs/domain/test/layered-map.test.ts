import fc from 'fast-check';
import { LayeredMap } from '../src';
import { propertyRuns } from './property-runs';

/** What a version must read as: the plain `Map` a private copy would have been. */
function expectSame(actual: LayeredMap<number, string>, model: Map<number, string>): void {
  expect(actual.size).toBe(model.size);
  expect([...actual]).toEqual([...model]);
  expect([...actual.keys()]).toEqual([...model.keys()]);
  expect([...actual.values()]).toEqual([...model.values()]);
  for (const key of [-1, ...model.keys()]) {
    expect(actual.get(key)).toBe(model.get(key));
    expect(actual.has(key)).toBe(model.has(key));
  }
}

describe('LayeredMap: versions of a growing map share it, each reading as its own copy', () => {
  test('property: after edits branching off any version, every version reads as its own Map would', () => {
    const edit = fc.record({
      from: fc.nat(),
      // Sets of new keys (a job's next snapshot) and of existing ones, and deletes (null), in runs long
      // enough to merge.
      sets: fc.array(fc.tuple(fc.nat({ max: 400 }), fc.option(fc.string({ maxLength: 3 }), { freq: 4 })), {
        maxLength: 60,
      }),
    });
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 30 }), (edits) => {
        const versions: [LayeredMap<number, string>, Map<number, string>][] = [[LayeredMap.of(), new Map()]];
        for (const { from, sets } of edits) {
          const [base, baseModel] = versions[from % versions.length]!;
          const next = LayeredMap.editOf(base);
          const model = new Map(baseModel);
          for (const [key, value] of sets) {
            if (value === null) expect(next.delete(key)).toBe(model.delete(key));
            else {
              next.set(key, value);
              model.set(key, value);
            }
          }
          versions.push([next, model]);
        }
        for (const [version, model] of versions) expectSame(version, model);
      }),
      propertyRuns(),
    );
  });

  test('a plain Map given as the base is not changed by edits', () => {
    const plain = new Map([[1, 'a']]);
    const edited = LayeredMap.editOf(plain);
    for (let key = 0; key < 200; key += 1) edited.set(key, `v${key}`);
    expect([...plain]).toEqual([[1, 'a']]);
    expect(edited.get(1)).toBe('v1');
    expect(edited.size).toBe(200);
  });

  test('a long history is merged into shared bases: an edit copies a small layer, not every entry', () => {
    let version = LayeredMap.of<number, number>();
    for (let id = 1; id <= 10_000; id += 1) {
      version = LayeredMap.editOf(version);
      version.set(id, id);
    }
    // What the next edit copies: at most 32 + sqrt(10,000) entries, not 10,000.
    expect(version.layerSize).toBeLessThanOrEqual(132);
    expect(Object.keys(version)).toEqual([]); // private fields: nothing enumerable to compare or leak
    expect(version.size).toBe(10_000);
    expect([...version.keys()].slice(-3)).toEqual([9_998, 9_999, 10_000]);
  });

  test('maps with the same entries in different layers are equal to toEqual', () => {
    const merged = LayeredMap.of([
      [1, 'a'],
      [2, 'b'],
    ]);
    const layered = LayeredMap.editOf(LayeredMap.of([[1, 'a']]));
    layered.set(2, 'b');
    expect(layered).toEqual(merged);
    layered.set(2, 'c');
    expect(layered).not.toEqual(merged);
  });
});
