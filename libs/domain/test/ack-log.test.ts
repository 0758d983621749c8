import fc from 'fast-check';
import { AckLog } from '../src';

const handles = (n: number) => [{ path: `/s/${n}`, sizeBytes: n }];

describe('AckLog: versions share one log, each seeing its own prefix', () => {
  test('property: after drafts branch off older versions, the newest lineage reads as its own copy would', () => {
    const tasks = ['a', 'b', 'c', 'd', 'e'];
    fc.assert(
      fc.property(
        fc.array(fc.record({ from: fc.nat(), task: fc.constantFrom(...tasks) }), { maxLength: 40 }),
        (steps) => {
          const log = new AckLog();
          // Each version: its count in the shared log, and the plain list a private copy would hold.
          const versions: { count: number; own: string[] }[] = [{ count: 0, own: [] }];
          for (const { from, task } of steps) {
            // Drafts start from the newest version or one of its ancestors (what a cache may still hold).
            const newestNow = versions[versions.length - 1]!;
            const live = versions.filter(
              (v) => v.count <= newestNow.count && v.own.every((t, i) => newestNow.own[i] === t),
            );
            const base = live[from % live.length]!;
            if (base.own.includes(task)) continue; // the domain never appends a task twice
            log.append(base.count, task, handles(base.count));
            versions.push({ count: base.count + 1, own: [...base.own, task] });
          }
          // A branch abandons the versions it does not descend from (their drafts failed and are never read
          // again); the newest version and its ancestors must read as their own copies would.
          const newest = versions[versions.length - 1]!;
          const latest = versions.filter(
            (v) => v.count <= newest.count && v.own.every((t, i) => newest.own[i] === t),
          );
          for (const version of latest) {
            for (const task of tasks) expect(log.has(version.count, task)).toBe(version.own.includes(task));
            expect(log.entries(version.count).map(([t]) => t)).toEqual(version.own);
          }
        },
      ),
    );
  });
});
