import fc from 'fast-check';
import IORedis from 'ioredis';
import { RedisDeletionFence } from '../src';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { startRedisCluster } from '../../../test/support/redis-cluster';
import { connectRedis, storeNamespace } from '@snapcat/runtime';

/**
 * Decision 0047 on a real Redis: a deletion's marks and the reservations of what an acknowledgement or an
 * import is recording, each written and checked against the other's in one step, so whichever comes second
 * sees the first. Two places meet when one is, or lies in, the other.
 */
describe('the deletion fence (decision 0047, real Redis)', () => {
  const prefix = testPrefix('fence');
  // Two connections, as an API process and a workers process have.
  const api = new IORedis('redis://127.0.0.1:6379');
  const workers = new IORedis('redis://127.0.0.1:6379');
  const recordings = new RedisDeletionFence(api, prefix);
  const deletions = new RedisDeletionFence(workers, prefix);
  afterAll(async () => {
    await deleteKeys(prefix);
    api.disconnect();
    workers.disconnect();
  });

  it('what is recorded meets another job’s deletion of it, of a directory it lies in, or of a file inside it, until released', async () => {
    const deleting = await deletions.deleting('job-a', ['/data/c/shared/f', '/data/imports/x']);
    const recorded = await recordings.recording('job-b', [
      '/data/c/shared/f',
      '/data/imports/x/deep/sst-1', // an acknowledged file in a directory being deleted
      '/data/c', // an import of a directory a deleted file lies in
      '/data/imports/xy/sst-2', // beside the directory, not in it
      '/data/c/shared/g',
    ]);
    expect(recorded.conflicts).toEqual(
      new Map([
        ['/data/c/shared/f', ['/data/c/shared/f']],
        ['/data/imports/x/deep/sst-1', ['/data/imports/x']],
        ['/data/c', ['/data/c/shared/f']],
      ]),
    );
    await recorded.release();
    // The deleting job's own are its registry's to refuse (the `deleting` of decision 0011).
    const own = await recordings.recording('job-a', ['/data/c/shared/f']);
    expect(own.conflicts.size).toBe(0);
    await own.release();

    await deleting.release();
    const after = await recordings.recording('job-b', ['/data/c/shared/f', '/data/imports/x/deep/sst-1']);
    expect(after.conflicts.size).toBe(0);
    await after.release();
  });

  it('a deletion meets another job’s recording under way: a file inside what it deletes, or a directory holding it', async () => {
    const recorded = await recordings.recording('job-b', [
      '/data/c/shared/f',
      '/data/imports/x/sst-1',
      '/data/up',
    ]);
    const deleting = await deletions.deleting('job-a', [
      '/data/c/shared/f',
      '/data/c/shared/g',
      '/data/imports',
      '/data/up/chk-1',
    ]);
    expect(deleting.conflicts).toEqual(
      new Map([
        ['/data/c/shared/f', ['/data/c/shared/f']],
        ['/data/imports', ['/data/imports/x/sst-1']],
        ['/data/up/chk-1', ['/data/up']],
      ]),
    );
    await deleting.release();
    await recorded.release();
    const later = await deletions.deleting('job-a', ['/data/c/shared/f', '/data/imports', '/data/up/chk-1']);
    expect(later.conflicts.size).toBe(0);
    await later.release();
  });

  it('a holder renews what it holds while it holds it; what a dead process left lapses', async () => {
    const short = new RedisDeletionFence(workers, prefix, 300);
    const deleting = await short.deleting('job-a', ['/data/long/f']);
    await new Promise((r) => setTimeout(r, 900)); // three lifetimes: renewed meanwhile
    const during = await recordings.recording('job-b', ['/data/long/f']);
    expect(during.conflicts.size).toBe(1);
    await during.release();
    await deleting.release();

    // A process that died mid-deletion: its mark, written as the fence writes it, is never renewed.
    const [seconds, micros] = await workers.time();
    const member = '/data/dead/f\u0000job-a\u0000gone';
    await workers.zadd(`${prefix}:fence:deleting`, 0, member);
    await workers.zadd(
      `${prefix}:fence:deleting:lapses`,
      Number(seconds) * 1000 + Number(micros) / 1000 + 200,
      member,
    );
    const soon = await recordings.recording('job-b', ['/data/dead/f']);
    expect(soon.conflicts.size).toBe(1);
    await soon.release();
    await new Promise((r) => setTimeout(r, 300));
    const lapsed = await recordings.recording('job-b', ['/data/dead/f']);
    expect(lapsed.conflicts.size).toBe(0);
    await lapsed.release();
  });

  it('many holders at once, each lapsing at its own time: every one is met (a range read over unequal scores missed them)', async () => {
    // Reservations of several acknowledgements in flight, a few milliseconds apart, in no lexical order.
    const places = ['/data/many/zzz', '/data/many/mmm', '/data/many/aaa', '/data/many/x/y', '/data/many/bbb'];
    const recorded: Awaited<ReturnType<typeof recordings.recording>>[] = [];
    for (const [i, place] of places.entries()) {
      recorded.push(await recordings.recording(`job-${i}`, [place]));
      await new Promise((r) => setTimeout(r, 3));
    }
    for (const place of places) {
      const deleting = await deletions.deleting('job-a', [place]);
      expect([...deleting.conflicts]).toEqual([[place, [place]]]);
      await deleting.release();
    }
    const all = await deletions.deleting('job-a', ['/data/many']);
    // Every one of the five it holds, not the last one read.
    expect([...all.conflicts.get('/data/many')!].sort()).toEqual([...places].sort());
    await all.release();
    await Promise.all(recorded.map((r) => r.release()));

    // Marks alike: a directory marked after a file beside it still covers what lies in it.
    const file = await deletions.deleting('job-a', ['/data/q/zzz']);
    await new Promise((r) => setTimeout(r, 3));
    const directory = await deletions.deleting('job-c', ['/data/q/aaa']);
    const acked = await recordings.recording('job-b', ['/data/q/aaa/f', '/data/q/zzz']);
    expect(acked.conflicts).toEqual(
      new Map([
        ['/data/q/aaa/f', ['/data/q/aaa']],
        ['/data/q/zzz', ['/data/q/zzz']],
      ]),
    );
    await Promise.all([file.release(), directory.release(), acked.release()]);
  });

  it('a deletion of 30,000 loose files holds them all (its arguments once overflowed the stack), and lets them go', async () => {
    const files = Array.from({ length: 30_000 }, (_, i) => `/data/big/${i}`);
    const deleting = await deletions.deleting('job-a', files);
    const recorded = await recordings.recording('job-b', ['/data/big/0', '/data/big/29999']);
    expect([...recorded.conflicts.keys()].sort()).toEqual(['/data/big/0', '/data/big/29999']);
    await recorded.release();
    expect(await deleting.stillHeld()).toBe(true);
    await deleting.release();
    expect(await api.zcard(`${prefix}:fence:deleting`)).toBe(0);
  });

  it('a holder learns that what it held was lost, and does not bring it back; it lets go of part of it', async () => {
    const deleting = await deletions.deleting('job-a', ['/data/lost/f', '/data/lost/g']);
    expect(await deleting.stillHeld()).toBe(true);
    await deleting.release(['/data/lost/g']);
    const freed = await recordings.recording('job-b', ['/data/lost/g', '/data/lost/f']);
    expect([...freed.conflicts.keys()]).toEqual(['/data/lost/f']);
    await freed.release();
    // A Redis that restarted empty: the mark is gone, and a recording could pass meanwhile.
    await workers.del(`${prefix}:fence:deleting`, `${prefix}:fence:deleting:lapses`);
    expect(await deleting.stillHeld()).toBe(false);
    const passed = await recordings.recording('job-b', ['/data/lost/f']);
    expect(passed.conflicts.size).toBe(0);
    await passed.release();
    await deleting.release();
  });

  // Paths in a small tree, so that places often lie in each other.
  const segment = fc.constantFrom('a', 'b', 'ab', 'b0');
  const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/r/${parts.join('/')}`);
  const within = (place: string, directory: string) =>
    place === directory || place.startsWith(`${directory}/`);
  const meet = (one: string, other: string) => within(one, other) || within(other, one);

  it('property: whichever of a deletion and a recording comes second meets exactly the places the two share', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(path, { minLength: 1, maxLength: 5 }),
        fc.uniqueArray(path, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (deleted, recorded, deletionFirst) => {
          // The first side's places each by a holder of their own, a moment apart (their lapses differ).
          const firsts = [];
          for (const place of deletionFirst ? deleted : recorded) {
            firsts.push(
              deletionFirst
                ? await deletions.deleting('job-a', [place])
                : await recordings.recording('job-b', [place]),
            );
            await new Promise((r) => setTimeout(r, 1));
          }
          const second = deletionFirst
            ? await recordings.recording('job-b', recorded)
            : await deletions.deleting('job-a', deleted);
          await Promise.all([...firsts, second].map((held) => held.release()));
          const [asked, theirs] = deletionFirst ? [recorded, deleted] : [deleted, recorded];
          for (const first of firsts) expect(first.conflicts.size).toBe(0);
          // Every place asked that meets theirs, with every one of theirs it meets.
          const met = asked
            .map((place) => [place, theirs.filter((other) => meet(place, other)).sort()] as const)
            .filter(([, others]) => others.length > 0);
          const seen = [...second.conflicts].map(([place, others]) => [place, [...others].sort()] as const);
          expect(seen.sort()).toEqual(met.sort());
        },
      ),
      { numRuns: 100 },
    );
  });

  it('sent at the same moment from two connections, at least one of the two sees the other', async () => {
    for (let round = 0; round < 100; round++) {
      const [deleting, recorded] = await Promise.all([
        deletions.deleting('job-a', ['/data/race']),
        recordings.recording('job-b', [`/data/race/${round}`]),
      ]);
      expect(deleting.conflicts.size + recorded.conflicts.size).toBeGreaterThan(0);
      await Promise.all([deleting.release(), recorded.release()]);
    }
  });
});

describe('the deletion fence on a 3-master Redis Cluster the test starts', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let api: ReturnType<typeof connectRedis>;
  let workers: ReturnType<typeof connectRedis>;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    api = connectRedis(cluster.url, { autoPipelining: true, commandTimeoutMs: 2000 });
    workers = connectRedis(cluster.url);
  }, 60_000);
  afterAll(async () => {
    api?.disconnect();
    workers?.disconnect();
    await cluster?.stop();
  });

  it('runs its scripts and transactions in the namespace’s slot: the second still meets the first', async () => {
    // A store's namespace, as storeNamespace makes it: the braces put every key of it in one slot.
    const namespace = storeNamespace('snapcat', 'store-fence');
    const deletions = new RedisDeletionFence(workers, namespace);
    const recordings = new RedisDeletionFence(api, namespace);
    const deleting = await deletions.deleting('job-a', ['/data/c/shared/f', '/data/imports/x']);
    const recorded = await recordings.recording('job-b', ['/data/imports/x/sst', '/data/c/shared/g']);
    expect([...recorded.conflicts]).toEqual([['/data/imports/x/sst', ['/data/imports/x']]]);
    expect(await deleting.stillHeld()).toBe(true);
    await deleting.release(['/data/imports/x']);
    await Promise.all([recorded.release(), deleting.release()]);
    const again = await recordings.recording('job-b', ['/data/imports/x/sst', '/data/c/shared/f']);
    expect(again.conflicts.size).toBe(0);
    await again.release();
  });
});
