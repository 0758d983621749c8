import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { FINISHED_SNAPSHOTS_KEPT, snapshotView } from '@snapcat/domain';
import { jobStream } from '@snapcat/application';
import { formatPosition } from '@snapcat/event-store';
import { ReadModel, ReadModelKeys, foldLog, rebuildReadModel, verifyReadModel } from '../src';
import { storedJobViews } from '../src/writes';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { MANUAL, MemoryEventStore, checkpoint, configure, decideAll, job, writeJob } from './jobs';

// foldLog, the rebuild and the audit, on a memory store and the real Redis.
const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const prefixes: string[] = [];
const fresh = (name: string) => {
  const prefix = testPrefix(`rm-audit-${name}`);
  prefixes.push(prefix);
  return prefix;
};
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(prefix);
  redis.disconnect();
});

describe('foldLog', () => {
  it('folds every job stream of the log (nothing else), with each job’s last revision and the position', async () => {
    const store = new MemoryEventStore();
    const a = await writeJob(store, job(1), 2);
    await store.append('snapcat-webhooks', [{ id: randomUUID(), type: 'X', data: {} }], 'any');
    const b = await writeJob(store, job(2), 1);
    const pages: number[] = [];
    const folded = await foldLog(store, undefined, (n) => pages.push(n));
    expect(folded.states).toEqual(
      new Map([
        [job(1), a],
        [job(2), b],
      ]),
    );
    expect(folded.revisions).toEqual(
      new Map([
        [job(1), BigInt(a.version - 1)],
        [job(2), BigInt(b.version - 1)],
      ]),
    );
    const [last] = await store.readAll({ direction: 'backwards', maxCount: 1 });
    expect(folded.position).toEqual(last!.position);
    expect(folded.events).toBe(a.version + b.version);
    expect(pages).toEqual([a.version + b.version]);
  });

  it('stops at `until`, and pages through a long log', async () => {
    const store = new MemoryEventStore();
    for (let n = 1; n <= 120; n += 1) await writeJob(store, job(n), 2); // 120 jobs, 9 events each: 1,080
    const all = await store.readAll({ maxCount: 10_000 });
    expect(all).toHaveLength(1080);
    const pages: number[] = [];
    let reads = 0;
    const counting = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'readAll') reads += 1;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const folded = await foldLog(counting, undefined, (n) => pages.push(n));
    expect(pages).toEqual([1000, 1080]);
    expect(reads).toBe(2); // the second page is short: the end of the log, no read after it
    expect(folded.events).toBe(1080);
    expect(folded.states.size).toBe(120);
    const until = all[500]!.position;
    const cut = await foldLog(store, until);
    expect(cut.events).toBe(501);
    expect(cut.position).toEqual(until);
    expect(cut.states.size).toBe(Math.ceil(501 / 9));
    // An empty log.
    expect(await foldLog(new MemoryEventStore())).toEqual({
      states: new Map(),
      compacted: new Map(),
      revisions: new Map(),
      deleted: new Map(),
      position: { commit: -1n, prepare: -1n },
      events: 0,
    });
  });
});

describe('rebuildReadModel and verifyReadModel', () => {
  it('rebuilds every job’s views into version 1, switches `current`, and the audit finds nothing', async () => {
    const store = new MemoryEventStore();
    const states = [await writeJob(store, job(1), 3), await writeJob(store, job(2), 0)];
    const prefix = fresh('rebuild');
    const before = process.hrtime.bigint();
    const result = await rebuildReadModel(store, redis, prefix);
    const wall = Number(process.hrtime.bigint() - before) / 1e9;
    expect(result).toMatchObject({ version: 1, jobs: 2, events: states[0]!.version + states[1]!.version });
    expect(result.seconds).toBeGreaterThan(0);
    expect(result.seconds).toBeLessThanOrEqual(wall); // seconds, measured inside the call
    expect(result.eventsPerSecond).toBeCloseTo(result.events / result.seconds);
    const keys = new ReadModelKeys(prefix);
    const space = keys.space(1);
    expect(await redis.get(keys.current)).toBe('1');
    const [last] = await store.readAll({ direction: 'backwards', maxCount: 1 });
    expect(await redis.get(space.position)).toBe(formatPosition(last!.position));
    expect(await redis.hgetall(space.applied)).toEqual({
      [job(1)]: String(states[0]!.version - 1),
      [job(2)]: String(states[1]!.version - 1),
    });
    const readModel = new ReadModel(redis, prefix);
    for (const state of states) {
      const { summary, tasks } = storedJobViews(state);
      expect(await readModel.job(state.jobId)).toEqual(JSON.parse(JSON.stringify(summary)));
      expect(await readModel.tasks(state.jobId)).toEqual(tasks);
    }
    const snapshot = states[0]!.snapshots.get(2)!;
    expect(await readModel.snapshot(job(1), 2)).toEqual(
      JSON.parse(JSON.stringify({ jobId: job(1), ...snapshotView(snapshot) })),
    );
    expect(await redis.zrange(space.snapshots(job(1)), 0, -1, 'WITHSCORES')).toEqual([
      '1',
      '1',
      '2',
      '2',
      '3',
      '3',
    ]);
    expect(await redis.zrange(space.jobs, 0, -1)).toEqual([job(1), job(2)]);
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
  });

  it('rebuilds the last view of every snapshot compacted out of its job (decision 0035); the audit checks them', async () => {
    const store = new MemoryEventStore();
    // numRetained 5: each completion past the fifth subsumes one, whose discard the worker then records.
    const commands: Record<string, unknown>[] = [configure()];
    for (let id = 1; id <= 130; id += 1) {
      commands.push(...checkpoint(id));
      if (id > 5) commands.push({ type: 'RecordDiscardCompleted', snapshotId: id - 5, bytesReclaimed: 1 });
    }
    const state = await decideAll(store, job(1), commands);
    expect(state.counts.compacted).toBe(125 - FINISHED_SNAPSHOTS_KEPT);
    expect(state.snapshots.has(1)).toBe(false);
    const prefix = fresh('compacted');
    await rebuildReadModel(store, redis, prefix);
    const readModel = new ReadModel(redis, prefix);
    expect(await readModel.snapshot(job(1), 1)).toMatchObject({
      snapshotId: 1,
      status: 'DISCARDED',
      discard: { state: 'DONE' },
    });
    const space = new ReadModelKeys(prefix).space(1);
    expect(await redis.zcard(space.snapshots(job(1)))).toBe(130);
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    // A compacted snapshot's view that drifted is named.
    await redis.set(space.snapshot(job(1), 1), JSON.stringify({ jobId: job(1), snapshotId: 1 }));
    expect((await verifyReadModel(store, redis, prefix)).map((d) => d.key)).toEqual([
      space.snapshot(job(1), 1),
    ]);
  });

  it('the audit names each view that differs from the log', async () => {
    const store = new MemoryEventStore();
    const state = await writeJob(store, job(1), 2);
    const prefix = fresh('differences');
    await rebuildReadModel(store, redis, prefix);
    const space = new ReadModelKeys(prefix).space(1);
    const summary = JSON.parse((await redis.get(space.job(job(1))))!);
    await redis.set(space.job(job(1)), JSON.stringify({ ...summary, name: 'tampered' }));
    await redis.set(space.jobTasks(job(1)), JSON.stringify(['a']));
    await redis.del(space.snapshot(job(1), 1));
    await redis.set(space.snapshot(job(1), 7), '{"x":1}');
    await redis.zadd(space.snapshots(job(1)), 7, '7');
    // A job the log does not know.
    await redis.zadd(space.jobs, 0, job(9));
    await redis.set(space.job(job(9)), '{"jobId":"ghost"}');
    const differences = await verifyReadModel(store, redis, prefix);
    const { summary: expected, tasks } = storedJobViews(state);
    expect(differences).toEqual(
      [
        { key: space.job(job(1)), expected, actual: { ...summary, name: 'tampered' } },
        { key: space.jobTasks(job(1)), expected: tasks, actual: ['a'] },
        {
          key: space.snapshot(job(1), 1),
          expected: { jobId: job(1), ...snapshotView(state.snapshots.get(1)!) },
          actual: null,
        },
        { key: space.snapshot(job(1), 7), expected: null, actual: 'present' },
        { key: space.job(job(9)), expected: null, actual: 'present' },
      ].map((d) => JSON.parse(JSON.stringify(d))),
    );
  });

  it('the audit checks the indexes the lists and pages read: a job left out of the job index, a snapshot ranked out of order (a review)', async () => {
    const store = new MemoryEventStore();
    await writeJob(store, job(1), 3);
    await writeJob(store, job(2), 0);
    const prefix = fresh('indexes');
    await rebuildReadModel(store, redis, prefix);
    const space = new ReadModelKeys(prefix).space(1);
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    await redis.zrem(space.jobs, job(2)); // gone from GET /jobs and GraphQL `jobs`
    await redis.zadd(space.snapshots(job(1)), 999, '2'); // job(1)'s first page starts with snapshot 2
    expect((await verifyReadModel(store, redis, prefix)).map((d) => [d.key, d.expected, d.actual])).toEqual([
      [`${space.snapshots(job(1))} 2`, 2, 999],
      [`${space.jobs} ${job(2)}`, 'indexed', null],
    ]);
  });

  it('a job listed but never applied, with no view, is no difference; one with a view is', async () => {
    const store = new MemoryEventStore();
    await writeJob(store, job(1), 0);
    const prefix = fresh('listed');
    await rebuildReadModel(store, redis, prefix);
    const space = new ReadModelKeys(prefix).space(1);
    await redis.zadd(space.jobs, 0, job(5));
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
  });

  it('audits each job at the revision the read model applied, not at the log’s end', async () => {
    const store = new MemoryEventStore();
    const prefix = fresh('applied');
    const first = await writeJob(store, job(1), 1);
    await rebuildReadModel(store, redis, prefix);
    const space = new ReadModelKeys(prefix).space(1);
    // The log moves on; the read model applied job 1 to a later revision (as a live projector would),
    // while its position (where the audit folds to) stays behind.
    const later = await writeJob(store, job(2), 0);
    expect(later.version).toBe(1);
    const moved = await decideAll(
      store,
      job(1),
      [{ type: 'TriggerSnapshot', kind: 'SAVEPOINT', triggerId: 'late', ...MANUAL }],
      first,
    );
    const tx = redis.multi();
    const { summary, tasks } = storedJobViews(moved);
    tx.set(space.job(job(1)), JSON.stringify(summary));
    tx.set(space.jobTasks(job(1)), JSON.stringify(tasks));
    for (const s of moved.snapshots.values()) {
      tx.set(space.snapshot(job(1), s.snapshotId), JSON.stringify({ jobId: job(1), ...snapshotView(s) }));
      tx.zadd(space.snapshots(job(1)), s.snapshotId, String(s.snapshotId));
    }
    tx.hset(space.applied, job(1), String(moved.version - 1));
    await tx.exec();
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    // Applied for a job the log has no stream of: compared with no job at all.
    await redis.hset(space.applied, job(7), '3');
    await redis.zadd(space.jobs, 0, job(7));
    await redis.set(space.job(job(7)), '{}');
    expect((await verifyReadModel(store, redis, prefix)).map((d) => [d.key, d.expected, d.actual])).toEqual([
      [space.job(job(7)), null, 'present'],
    ]);
  });

  it('gives up on a job whose applied revision keeps changing while it is read (after 20 tries)', async () => {
    const store = new MemoryEventStore();
    await writeJob(store, job(1), 0);
    const prefix = fresh('changing');
    await rebuildReadModel(store, redis, prefix);
    let n = 0;
    let hgets = 0;
    const changing = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === 'hget') {
          return async () => {
            hgets += 1;
            return String((n += 1));
          };
        }
        const value = Reflect.get(target, property, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    await expect(verifyReadModel(store, changing as IORedis, prefix)).rejects.toThrow(
      `job ${job(1)} kept changing while the audit read it (20 tries)`,
    );
    expect(hgets).toBe(42);
  });

  it('an audit of a missing read model says so; of an empty one, compares the log with nothing', async () => {
    const store = new MemoryEventStore();
    const state = await writeJob(store, job(1), 0);
    const prefix = fresh('empty');
    const space = new ReadModelKeys(prefix).space(1);
    const [last] = await store.readAll({ direction: 'backwards', maxCount: 1 });
    // No rebuild: no `current`, no position. The audit said "read model matches the log" (exit 0) when run
    // against another Redis database than the service's (a walkthrough): the missing read model is a difference.
    expect(await verifyReadModel(store, redis, prefix)).toEqual([
      { key: space.position, expected: formatPosition(last!.position), actual: null },
    ]);
    // A log without job events needs no read model.
    expect(await verifyReadModel(new MemoryEventStore(), redis, fresh('empty-log'))).toEqual([]);
    // With the position set, the job in the log and nothing in Redis: its views are missing.
    await redis.set(space.position, formatPosition(last!.position));
    const { summary, tasks } = storedJobViews(state);
    expect(await verifyReadModel(store, redis, prefix)).toEqual(
      JSON.parse(
        JSON.stringify([
          { key: `${space.jobs} ${job(1)}`, expected: 'indexed', actual: null },
          { key: space.job(job(1)), expected: summary, actual: null },
          { key: space.jobTasks(job(1)), expected: tasks, actual: null },
        ]),
      ),
    );
  });

  // Last: it waits out the grace period before the old space is deleted (2.5 s).
  it('a second rebuild fills version 2, switches over, then deletes version 1', async () => {
    const store = new MemoryEventStore();
    await writeJob(store, job(1), 1);
    const prefix = fresh('second');
    await rebuildReadModel(store, redis, prefix);
    const keys = new ReadModelKeys(prefix);
    await redis.set(`${keys.space(2).ns}:stale`, 'left by an interrupted rebuild');
    await writeJob(store, job(2), 0);
    const started = Date.now();
    const second = await rebuildReadModel(store, redis, prefix);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2400);
    expect(second).toMatchObject({ version: 2, jobs: 2 });
    expect(await redis.get(keys.current)).toBe('2');
    expect(await redis.exists(`${keys.space(2).ns}:stale`)).toBe(0);
    expect(await redis.keys(`${keys.space(1).ns}:*`)).toEqual([]);
    expect(await redis.get(keys.space(2).job(job(2)))).not.toBeNull();
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
  });
});

describe('rebuildReadModel and verifyReadModel: costs and bounds', () => {
  it('a rebuild sends its writes in pipelines of about 5,000 (3 per job and 2 per snapshot)', async () => {
    const store = new MemoryEventStore();
    // 3 + 998 × 5 + 7 = 5,000 queued exactly at the 1,000th job; one more job after it.
    await writeJob(store, job(1), 0);
    for (let n = 2; n <= 999; n += 1) await writeJob(store, job(n), 1);
    await writeJob(store, job(1000), 2);
    await writeJob(store, job(1001), 0);
    const prefix = fresh('pipelines');
    const sizes: number[] = [];
    const counting = new Proxy(redis, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        const method = (value as (...a: unknown[]) => unknown).bind(target);
        if (property !== 'pipeline') return method;
        return () => {
          const pipeline = method() as ReturnType<IORedis['pipeline']>;
          const exec = pipeline.exec.bind(pipeline);
          pipeline.exec = (() => {
            sizes.push(pipeline.length);
            return exec();
          }) as typeof pipeline.exec;
          return pipeline;
        };
      },
    });
    const result = await rebuildReadModel(store, counting as IORedis, prefix);
    expect(result.jobs).toBe(1001);
    // Commands: 4 per job (summary, tasks, listing, applied) and 2 per snapshot (no loose files: nothing for
    // their index); the position, the completeness mark and the two indexes' marks at the end.
    expect(sizes).toEqual([4 + 998 * 6 + 8, 4 + 4]);
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
  }, 60_000);

  it('an audit of a read model at its position folds the log once and reads no job’s stream again', async () => {
    const base = new MemoryEventStore();
    await writeJob(base, job(1), 2);
    await writeJob(base, job(2), 1);
    const prefix = fresh('once');
    await rebuildReadModel(base, redis, prefix);
    let streamReads = 0;
    const store = new Proxy(base, {
      get(target, property, receiver) {
        if (property === 'readStream') streamReads += 1;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    expect(streamReads).toBe(0);
  });

  it('a job only Redis lists is a difference, wherever it sorts', async () => {
    const store = new MemoryEventStore();
    for (let n = 1; n <= 3; n += 1) await writeJob(store, job(n), 0);
    const prefix = fresh('ghost-last');
    await rebuildReadModel(store, redis, prefix);
    const space = new ReadModelKeys(prefix).space(1);
    await redis.zadd(space.jobs, 0, job(9)); // fourth in the listing
    await redis.set(space.job(job(9)), '{}');
    expect((await verifyReadModel(store, redis, prefix)).map((d) => [d.key, d.expected, d.actual])).toEqual([
      [space.job(job(9)), null, 'present'],
    ]);
  });

  it('a job applied past the position is audited at its applied revision, not at its stream’s end; revision 0 included', async () => {
    const store = new MemoryEventStore();
    const prefix = fresh('applied-middle');
    const first = await writeJob(store, job(1), 1);
    await rebuildReadModel(store, redis, prefix);
    const space = new ReadModelKeys(prefix).space(1);
    const write = async (state: typeof first) => {
      const tx = redis.multi();
      const { summary, tasks } = storedJobViews(state);
      tx.set(space.job(state.jobId), JSON.stringify(summary));
      tx.set(space.jobTasks(state.jobId), JSON.stringify(tasks));
      tx.zadd(space.jobs, 0, state.jobId);
      for (const s of state.snapshots.values()) {
        tx.set(
          space.snapshot(state.jobId, s.snapshotId),
          JSON.stringify({ jobId: state.jobId, ...snapshotView(s) }),
        );
        tx.zadd(space.snapshots(state.jobId), s.snapshotId, String(s.snapshotId));
      }
      tx.hset(space.applied, state.jobId, String(state.version - 1));
      await tx.exec();
    };
    // The projector applied job 1 one event past the position, and a new job 2 at its revision 0;
    // the log already holds more of job 1, which the read model has not applied yet.
    const trigger = (id: string) => [
      { type: 'TriggerSnapshot', kind: 'SAVEPOINT', triggerId: id, ...MANUAL },
    ];
    const applied = await decideAll(store, job(1), trigger('applied'), first);
    const registered = await writeJob(store, job(2), 0);
    await decideAll(store, job(1), trigger('not-yet'), applied);
    await write(applied);
    await write(registered);
    expect(registered.version - 1).toBe(0);
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
  });
});

describe('verifyReadModel: hard-deleted jobs', () => {
  it('foldLog and the rebuild keep when a job’s stream was hard-deleted; the audit names a deletion time missing, different or extra', async () => {
    const store = new MemoryEventStore();
    const deleted = await writeJob(store, job(1), 1);
    const kept = await writeJob(store, job(2), 0);
    const tombstone = await store.tombstone(jobStream(job(1)));
    const at = tombstone.created.toISOString();
    const folded = await foldLog(store);
    expect(folded.deleted).toEqual(new Map([[job(1), at]]));
    // Its events stay in the log: the job is folded as they say, the tombstone is no event of it.
    expect(folded.states).toEqual(
      new Map([
        [job(1), deleted],
        [job(2), kept],
      ]),
    );
    expect(folded.events).toBe(deleted.version + kept.version + 1);
    const prefix = fresh('tombstone');
    await rebuildReadModel(store, redis, prefix);
    const space = new ReadModelKeys(prefix).space(1);
    expect(await redis.hgetall(space.deleted)).toEqual({ [job(1)]: at });
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);

    await redis.hset(space.deleted, job(1), '2026-01-01T00:00:00.000Z', job(2), at);
    expect(await verifyReadModel(store, redis, prefix)).toEqual([
      { key: `${space.deleted} ${job(1)}`, expected: at, actual: '2026-01-01T00:00:00.000Z' },
      { key: `${space.deleted} ${job(2)}`, expected: null, actual: at },
    ]);
    await redis.hdel(space.deleted, job(1), job(2));
    expect(await verifyReadModel(store, redis, prefix)).toEqual([
      { key: `${space.deleted} ${job(1)}`, expected: at, actual: null },
    ]);
  });

  /** A read model rebuilt with job 1 after one checkpoint, then its views written one event later. */
  async function appliedPastThePosition(store: MemoryEventStore, prefix: string) {
    const first = await writeJob(store, job(1), 1);
    await rebuildReadModel(store, redis, prefix);
    const space = new ReadModelKeys(prefix).space(1);
    const moved = await decideAll(
      store,
      job(1),
      [{ type: 'TriggerSnapshot', kind: 'SAVEPOINT', triggerId: 'late', ...MANUAL }],
      first,
    );
    const { summary, tasks } = storedJobViews(moved);
    const tx = redis.multi();
    tx.set(space.job(job(1)), JSON.stringify(summary));
    tx.set(space.jobTasks(job(1)), JSON.stringify(tasks));
    for (const s of moved.snapshots.values()) {
      tx.set(space.snapshot(job(1), s.snapshotId), JSON.stringify({ jobId: job(1), ...snapshotView(s) }));
      tx.zadd(space.snapshots(job(1)), s.snapshotId, String(s.snapshotId));
    }
    tx.hset(space.applied, job(1), String(moved.version - 1));
    await tx.exec();
    return { first, moved, space };
  }

  it('a job applied past the position whose stream was hard-deleted since is compared as the log folded it', async () => {
    const store = new MemoryEventStore();
    const prefix = fresh('deleted-since');
    const { first, moved, space } = await appliedPastThePosition(store, prefix);
    await store.tombstone(jobStream(job(1)));
    // Its state at the applied revision is gone with the stream: the views are compared with the fold up to
    // the position (one event behind them), and the tombstone, past the position, is not audited yet.
    const expected = storedJobViews(first).summary;
    const actual = storedJobViews(moved).summary;
    expect(await verifyReadModel(store, redis, prefix)).toEqual([
      {
        key: space.job(job(1)),
        expected: JSON.parse(JSON.stringify(expected)),
        actual: JSON.parse(JSON.stringify(actual)),
      },
      ...[...moved.snapshots.keys()]
        .filter((id) => !first.snapshots.has(id))
        .map((id) => ({ key: space.snapshot(job(1), id), expected: null, actual: 'present' })),
    ]);
  });

  it('an audit whose read of a job’s stream fails otherwise fails with that error', async () => {
    const base = new MemoryEventStore();
    const prefix = fresh('stream-fails');
    await appliedPastThePosition(base, prefix);
    const store = new Proxy(base, {
      get(target, property, receiver) {
        if (property === 'readStream') {
          return async (streamId: string, options?: Parameters<MemoryEventStore['readStream']>[1]) => {
            if (streamId === jobStream(job(1))) throw new Error(`store unavailable reading ${streamId}`);
            return target.readStream(streamId, options);
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    await expect(verifyReadModel(store, redis, prefix)).rejects.toThrow(
      `store unavailable reading ${jobStream(job(1))}`,
    );
  });
});
