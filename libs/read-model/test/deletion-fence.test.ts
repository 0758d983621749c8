import fc from 'fast-check';
import IORedis from 'ioredis';
import { RedisDeletionFence } from '../src';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';

/**
 * Decision 0047 on a real Redis: a deletion's marks and an acknowledgement's reservations of loose files, each
 * written and checked against the other's in one step, so whichever comes second sees the first.
 */
describe('the deletion fence (decision 0047, real Redis)', () => {
  const prefix = testPrefix('fence');
  // Two connections, as an API process and a workers process have.
  const api = new IORedis('redis://127.0.0.1:6379');
  const workers = new IORedis('redis://127.0.0.1:6379');
  const acknowledgements = new RedisDeletionFence(api, prefix);
  const deletions = new RedisDeletionFence(workers, prefix);
  afterAll(async () => {
    await deleteKeys(prefix);
    api.disconnect();
    workers.disconnect();
  });

  it('an acknowledgement sees another job’s deletion of the file, or of a directory it lies in, until it is released', async () => {
    const deleting = await deletions.deleting('job-a', ['/data/c/shared/f'], ['/data/imports/x']);
    const acked = await acknowledgements.acknowledging('job-b', [
      '/data/c/shared/f',
      '/data/imports/x/deep/sst-1',
      '/data/imports/xy/sst-2', // beside the directory, not in it
      '/data/c/shared/g',
    ]);
    expect(acked.conflicts).toEqual(
      new Map([
        ['/data/c/shared/f', '/data/c/shared/f'],
        ['/data/imports/x/deep/sst-1', '/data/imports/x'],
      ]),
    );
    await acked.release();
    // The deleting job's own acknowledgements are its registry's to refuse (the `deleting` of decision 0011).
    const own = await acknowledgements.acknowledging('job-a', ['/data/c/shared/f']);
    expect(own.conflicts.size).toBe(0);
    await own.release();

    await deleting.release();
    const after = await acknowledgements.acknowledging('job-b', [
      '/data/c/shared/f',
      '/data/imports/x/deep/sst-1',
    ]);
    expect(after.conflicts.size).toBe(0);
    await after.release();
  });

  it('a deletion sees another job’s acknowledgement in flight, of the file or of one inside a directory it deletes', async () => {
    const acked = await acknowledgements.acknowledging('job-b', [
      '/data/c/shared/f',
      '/data/imports/x/sst-1',
    ]);
    const deleting = await deletions.deleting(
      'job-a',
      ['/data/c/shared/f', '/data/c/shared/g'],
      ['/data/imports'],
    );
    expect(deleting.conflicts).toEqual(
      new Map([
        ['/data/c/shared/f', '/data/c/shared/f'],
        ['/data/imports/x/sst-1', '/data/imports/x/sst-1'],
      ]),
    );
    await deleting.release();
    await acked.release();
    const later = await deletions.deleting('job-a', ['/data/c/shared/f'], ['/data/imports']);
    expect(later.conflicts.size).toBe(0);
    await later.release();
  });

  it('a holder renews what it holds while it holds it; what a dead process left lapses', async () => {
    const short = new RedisDeletionFence(workers, prefix, 300);
    const deleting = await short.deleting('job-a', ['/data/long/f'], []);
    await new Promise((r) => setTimeout(r, 900)); // three lifetimes: renewed meanwhile
    const during = await acknowledgements.acknowledging('job-b', ['/data/long/f']);
    expect(during.conflicts.size).toBe(1);
    await during.release();
    await deleting.release();

    // A process that died mid-deletion: its mark, written as the fence writes it, is never renewed.
    await workers.zadd(`${prefix}:fence:deleting`, Date.now() + 200, '/data/dead/f\u0000job-a\u0000gone');
    const soon = await acknowledgements.acknowledging('job-b', ['/data/dead/f']);
    expect(soon.conflicts.size).toBe(1);
    await soon.release();
    await new Promise((r) => setTimeout(r, 300));
    const lapsed = await acknowledgements.acknowledging('job-b', ['/data/dead/f']);
    expect(lapsed.conflicts.size).toBe(0);
    await lapsed.release();
  });

  // Paths in a small tree, so that files and directories often lie in each other.
  const segment = fc.constantFrom('a', 'b', 'ab', 'b0');
  const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/r/${parts.join('/')}`);
  const within = (file: string, place: string) => file === place || file.startsWith(`${place}/`);

  it('property: whichever of a deletion and an acknowledgement comes second sees exactly the files the two share', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(path, { maxLength: 4 }),
        fc.uniqueArray(path, { maxLength: 3 }),
        fc.uniqueArray(path, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (files, directories, acknowledged, deletionFirst) => {
          // A place marked covers what lies below it, file or directory (a file has nothing below it).
          const shared = acknowledged.filter((file) =>
            [...files, ...directories].some((d) => within(file, d)),
          );
          const first = deletionFirst
            ? await deletions.deleting('job-a', files, directories)
            : await acknowledgements.acknowledging('job-b', acknowledged);
          const second = deletionFirst
            ? await acknowledgements.acknowledging('job-b', acknowledged)
            : await deletions.deleting('job-a', files, directories);
          await first.release();
          await second.release();
          expect(first.conflicts.size).toBe(0);
          expect([...second.conflicts.keys()].sort()).toEqual(shared.sort());
          for (const [file, place] of second.conflicts) expect(within(file, place)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('sent at the same moment from two connections, at least one of the two sees the other', async () => {
    for (let round = 0; round < 100; round++) {
      const file = `/data/race/${round}`;
      const [deleting, acked] = await Promise.all([
        deletions.deleting('job-a', [], ['/data/race']),
        acknowledgements.acknowledging('job-b', [file]),
      ]);
      expect(deleting.conflicts.size + acked.conflicts.size).toBeGreaterThan(0);
      await Promise.all([deleting.release(), acked.release()]);
    }
  });
});
