import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { FINISHED_SNAPSHOTS_KEPT, initialState, type Command, type CommandOf } from '@snapcat/domain';
import { CommandBus } from '@snapcat/application';
import {
  SqliteEventStore,
  START,
  comparePositions,
  formatPosition,
  storeIdentity,
  type EventStore,
} from '@snapcat/event-store';
import { storeNamespace } from '@snapcat/runtime';
import { Projector, ReadModel, ReadModelKeys, rebuildReadModel, verifyReadModel } from '../src';
import { REPO_ROOT, runCli, testPrefix } from '../../../test/support/service';
import { deleteKeys } from '../../../test/support/redis';

const JOB = '7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e';

const WRITES = new Set([
  'set',
  'hset',
  'hdel',
  'del',
  'sadd',
  'srem',
  'zadd',
  'zrem',
  'mset',
  'hmset',
  'rpush',
  'lpush',
]);

/**
 * The real Redis client, but every write (a command that changes data, or the EXEC of a MULTI) is counted,
 * and the `crashAt`-th throws before it reaches Redis: a process dying between two of its writes.
 */
function crashingRedis(redis: IORedis, fault: { writes: number; crashAt: number }): IORedis {
  const hit = () => {
    fault.writes += 1;
    if (fault.writes === fault.crashAt) throw new Error(`crash before write ${fault.crashAt}`);
  };
  return new Proxy(redis, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (property === 'multi' || property === 'pipeline') {
        return (...args: unknown[]) => {
          const tx = method.apply(target, args) as { exec: (...a: unknown[]) => Promise<unknown> };
          const exec = tx.exec.bind(tx);
          tx.exec = async (...a: unknown[]) => {
            hit();
            return exec(...a);
          };
          return tx;
        };
      }
      if (WRITES.has(String(property))) {
        return async (...args: unknown[]) => {
          // The lag metric is written on a timer, not per batch: not a write of the read model.
          if (!String(args[0]).endsWith(':rm:lag')) hit();
          return method.apply(target, args);
        };
      }
      return method.bind(target);
    },
  });
}
const quiet = { info: () => {}, error: () => {} };

/** A scripted lifecycle through the real command bus: checkpoints, a savepoint, persist, discards, cancel. */
async function lifecycle(
  bus: CommandBus,
  jobId = JOB,
  afterEachCommand: () => Promise<void> = async () => {},
): Promise<void> {
  const run = async (c: Omit<Command, 'jobId'>) => {
    await bus.execute({ ...c, jobId } as Command);
    await afterEachCommand();
  };
  await run({
    type: 'ConfigureJob',
    name: 'p',
    tasks: ['a', 'b'],
    checkpointing: {
      numRetained: 2,
      timeoutMs: 60_000,
      maxConcurrent: 5,
      minPauseMs: 0,
      tolerableFailures: 0,
      retention: 'RETAIN_ON_CANCELLATION',
    },
    storage: { checkpointDir: '/data/c', savepointDir: '/data/s' },
  } as Omit<CommandOf<'ConfigureJob'>, 'jobId'>);
  for (let i = 1; i <= 6; i += 1) {
    await run({
      type: 'TriggerSnapshot',
      kind: i === 4 ? 'SAVEPOINT' : 'CHECKPOINT',
      triggerId: `t${i}`,
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    } as never);
    for (const taskId of ['a', 'b']) {
      await run({
        type: 'AcknowledgeTask',
        snapshotId: i,
        taskId,
        stateSize: 10,
        stateHandles: [{ path: `/data/c/${i}/${taskId}`, sizeBytes: 10 }],
      } as never);
    }
  }
  await run({ type: 'PersistSnapshot', snapshotId: 5 } as never);
  await run({ type: 'RecordDiscardCompleted', snapshotId: 1, bytesReclaimed: 20 } as never);
  await run({ type: 'ChangeJobStatus', status: 'CANCELED' } as never);
}

describe('read-model projector (real Redis)', () => {
  let dir: string;
  let store: EventStore;
  let redis: IORedis;
  const prefix = testPrefix('projector');
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-projector-'));
    store = new SqliteEventStore(join(dir, 'events.db'), { pollMs: 20 });
    redis = new IORedis('redis://127.0.0.1:6379');
  });
  afterEach(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const caughtUp = async (readModel: ReadModel) => {
    const [last] = await store.readAll({
      direction: 'backwards',
      maxCount: 1,
      filter: { streamNamePrefixes: ['snapcat-job-'] },
    });
    expect(await readModel.waitFor(last!.position, 10_000)).toBe(true);
  };

  it('a crash between one write and the next event, then every event delivered again: equal to a fresh fold', async () => {
    await lifecycle(new CommandBus(store));
    let applied = 0;
    let crashed: unknown;
    const first = new Projector({
      store,
      redis,
      prefix,
      log: { info: () => {}, error: (_m, f) => (crashed = f) },
      publish: () => {
        applied += 1;
        if (applied === 10) throw new Error('crash after the write of event 10, before event 11');
      },
    });
    await first.start();
    for (let i = 0; i < 200 && !crashed; i += 1) await new Promise((r) => setTimeout(r, 10));
    await first.stop();
    expect(crashed).toBeDefined();
    expect((await verifyReadModel(store, redis, prefix)).length).toBe(0); // consistent at its own position

    // Redeliver everything: the stored position goes back to the start, as after a lost checkpoint.
    const space = new ReadModelKeys(prefix).space(1);
    await redis.set(space.position, formatPosition(START));
    // Subscribers hear each event once: what the first projector wrote is not published again.
    const republished: number[] = [];
    const second = new Projector({
      store,
      redis,
      prefix,
      log: quiet,
      publish: (m) => republished.push(Number(m.revision)),
    });
    await second.start();
    await caughtUp(new ReadModel(redis, prefix));
    await second.stop();
    expect(second.stats.duplicates).toBeGreaterThanOrEqual(10);
    const total = (await store.readStream(`snapcat-job-${JOB}`)).length;
    expect(first.stats.applied + republished.length).toBe(total);
    expect(new Set(republished).size).toBe(republished.length);
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    const job = await new ReadModel(redis, prefix).job(JOB);
    expect(job).toMatchObject({ status: 'CANCELED', counts: { completed: 6 } });
  });

  it('a crash at any one Redis write of the projector, then a restart: the same read model as a fold of the log', async () => {
    // The lifecycle is written while the projector runs, and each command is projected before the next is
    // sent: one batch per command, so every attempt makes the same writes in the same order (until it crashes).
    const attempt = async (fault: { writes: number; crashAt: number }) => {
      const scratch = mkdtempSync(join(tmpdir(), 'snapcat-projector-crash-'));
      const events = new SqliteEventStore(join(scratch, 'events.db'), { pollMs: 5 });
      const space = testPrefix('projector-crash');
      let crashed = false;
      try {
        const first = new Projector({
          store: events,
          redis: crashingRedis(redis, fault),
          prefix: space,
          log: { info: () => {}, error: () => (crashed = true) },
        });
        await first.start().catch(() => (crashed = true));
        const readModel = new ReadModel(redis, space);
        const projected = async () => {
          const [latest] = await events.readAll({ direction: 'backwards', maxCount: 1 });
          for (let i = 0; i < 400 && !crashed && !(await readModel.waitFor(latest!.position, 1)); i += 1) {
            await new Promise((r) => setTimeout(r, 5));
          }
        };
        await lifecycle(new CommandBus(events), JOB, projected);
        const [last] = await events.readAll({ direction: 'backwards', maxCount: 1 });
        await first.stop();
        const second = new Projector({ store: events, redis, prefix: space, log: quiet });
        await second.start();
        expect(await readModel.waitFor(last!.position, 10_000)).toBe(true);
        await second.stop();
        return { crashed, differences: await verifyReadModel(events, redis, space) };
      } finally {
        await deleteKeys(space);
        await events.close();
        rmSync(scratch, { recursive: true, force: true });
      }
    };
    const counting = { writes: 0, crashAt: Infinity };
    expect(await attempt(counting)).toEqual({ crashed: false, differences: [] });
    expect(counting.writes).toBeGreaterThan(5);
    for (let crashAt = 1; crashAt <= counting.writes; crashAt += 1) {
      expect({ crashAt, ...(await attempt({ writes: 0, crashAt })) }).toEqual({
        crashAt,
        crashed: true,
        differences: [],
      });
    }
  }, 60_000);

  it('one active projector per prefix; one whose lease was taken writes nothing, and the read model catches up after', async () => {
    const bus = new CommandBus(store);
    await lifecycle(bus);
    const fast = { leaseMs: 600, tickMs: 100, log: quiet, store, prefix };
    const other = new IORedis('redis://127.0.0.1:6379');
    const a = new Projector({ ...fast, redis });
    const b = new Projector({ ...fast, redis: other });
    try {
      await a.start();
      await b.start();
      const readModel = new ReadModel(redis, prefix);
      await caughtUp(readModel);
      expect([a.active, b.active]).toEqual([true, false]);
      expect(b.stats.applied).toBe(0);

      // As if `a` paused past its lease and another process took it: `a` still receives the new events.
      const lease = new ReadModelKeys(prefix).lease;
      await redis.set(lease, 'a-process-that-took-over', 'PX', 60_000);
      const before = await readModel.position();
      const applied = a.stats.applied;
      await lifecycle(bus, '7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f');
      await new Promise((r) => setTimeout(r, 800));
      expect(await readModel.position()).toEqual(before); // fenced: nothing written
      expect(a.stats.applied).toBe(applied);
      expect(await readModel.job('7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f')).toBeNull();
      expect([a.active, b.active]).toEqual([false, false]);

      await redis.del(lease); // the other holder is gone: one of the two takes over from the stored position
      await caughtUp(readModel);
      expect(a.active !== b.active).toBe(true);
      expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    } finally {
      await a.stop();
      await b.stop();
      other.disconnect();
    }
  });

  it('verifyReadModel while the projector keeps writing: no false difference; a planted one is found', async () => {
    const bus = new CommandBus(store);
    await lifecycle(bus); // JOB: finished, nobody writes it during the audits
    const busy = ['7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a', '7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b'];
    const projector = new Projector({ store, redis, prefix, log: quiet });
    await projector.start();
    let writing = true;
    const load = Promise.all(
      busy.map(async (jobId) => {
        for (let round = 0; writing; round += 1)
          await lifecycle(bus, `${jobId.slice(0, 30)}${round.toString(16).padStart(2, '0')}`);
      }),
    );
    try {
      await caughtUp(new ReadModel(redis, prefix));
      const appliedBefore = projector.stats.applied;
      const audits: number[] = [];
      for (let i = 0; i < 5; i += 1) audits.push((await verifyReadModel(store, redis, prefix)).length);
      expect(audits).toEqual([0, 0, 0, 0, 0]);
      // It was writing while the audits read (a count, not a rate: 88 events in one loaded CI run, 100s quiet).
      expect(projector.stats.applied).toBeGreaterThan(appliedBefore);

      const key = new ReadModelKeys(prefix).space(1).snapshot(JOB, 3);
      const view = JSON.parse((await redis.get(key))!);
      await redis.set(key, JSON.stringify({ ...view, stateSize: view.stateSize + 1 }));
      const found = await verifyReadModel(store, redis, prefix);
      expect(found.map((d) => d.key)).toEqual([key]);
    } finally {
      writing = false;
      await load;
      await projector.stop();
    }
  }, 60_000);

  it("sharing the command bus's states (one process): the same read model as a fold of the log", async () => {
    const bus = new CommandBus(store);
    const projector = new Projector({ store, redis, prefix, log: quiet, sharedStates: bus });
    await projector.start();
    await lifecycle(bus); // live, one command at a time: the bus is at each event's revision when it arrives
    await lifecycle(bus, '7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f');
    await caughtUp(new ReadModel(redis, prefix));
    await projector.stop();
    expect(projector.stats.shared).toBeGreaterThan(0);
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    expect(await new ReadModel(redis, prefix).job(JOB)).toMatchObject({
      status: 'CANCELED',
      counts: { completed: 6 },
    });
  });

  it('a snapshot compacted by the event that finished it (decision 0035): its last view is written, shared state or not', async () => {
    const bus = new CommandBus(store);
    const projector = new Projector({ store, redis, prefix, log: quiet, sharedStates: bus });
    await projector.start();
    const run = (c: object) => bus.execute({ ...c, jobId: JOB } as Command);
    const take = async (kind: 'CHECKPOINT' | 'SAVEPOINT', id: number) => {
      await run({
        type: 'TriggerSnapshot',
        kind,
        triggerId: `t${id}`,
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
      });
      await run({ type: 'AcknowledgeTask', snapshotId: id, taskId: 'a', stateSize: 1, stateHandles: [] });
    };
    await run({
      type: 'ConfigureJob',
      name: 'c',
      tasks: ['a'],
      checkpointing: initialState(JOB).checkpointing, // numRetained 1
      storage: { checkpointDir: '/data/c', savepointDir: '/data/s' },
    });
    await take('SAVEPOINT', 1); // kept until discarded: the smallest id of the job
    for (let id = 2; id <= FINISHED_SNAPSHOTS_KEPT + 3; id += 1) {
      await take('CHECKPOINT', id);
      if (id > 2) await run({ type: 'RecordDiscardCompleted', snapshotId: id - 1, bytesReclaimed: 1 });
    }
    await run({ type: 'RequestDiscard', snapshotId: 1, force: false });
    await run({ type: 'RecordDiscardCompleted', snapshotId: 1, bytesReclaimed: 1 });
    expect((await bus.load(JOB)).snapshots.has(1)).toBe(false); // finished with the smallest id: compacted at once
    const readModel = new ReadModel(redis, prefix);
    await caughtUp(readModel);
    await projector.stop();
    expect(await readModel.snapshot(JOB, 1)).toMatchObject({
      status: 'DISCARDED',
      discard: { state: 'DONE' },
    });
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
  });

  it('rebuild into a fresh key space and switch over; the live projector follows the new space', async () => {
    const bus = new CommandBus(store);
    await lifecycle(bus);
    const live = new Projector({ store, redis, prefix, log: quiet });
    await live.start();
    const readModel = new ReadModel(redis, prefix);
    await caughtUp(readModel);
    const result = await rebuildReadModel(store, redis, prefix);
    expect(result).toMatchObject({ version: 2, jobs: 1 });
    expect(result.eventsPerSecond).toBeGreaterThan(0);
    expect(await redis.exists(new ReadModelKeys(prefix).space(1).position)).toBe(0); // old space deleted
    await lifecycle(bus, '7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f');
    await new Promise((r) => setTimeout(r, 1200)); // the projector notices the switch within a second
    await caughtUp(readModel);
    await live.stop();
    expect(await verifyReadModel(store, redis, prefix)).toEqual([]);
    expect(await readModel.job('7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f')).not.toBeNull();
  });

  it('the CLI: audit verify passes, fails with exit 1 naming the key after one is corrupted; export and replay', async () => {
    await lifecycle(new CommandBus(store));
    // The CLI reads the keys of the configured store: under the prefix and the store's id.
    const namespace = storeNamespace(prefix, await storeIdentity(store));
    const projector = new Projector({ store, redis, prefix: namespace, log: quiet });
    await projector.start();
    await caughtUp(new ReadModel(redis, namespace));
    await projector.stop();
    const cli = (...args: string[]) =>
      runCli(args, { SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`, SNAPCAT_QUEUE_PREFIX: prefix });
    const ok = await cli('audit', 'verify');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('read model matches the log');
    // Progress goes to stderr, never into the answer on stdout.
    expect(ok.stderr).toMatch(/^audit verify: \d+ events, \d+ events\/s, 100% done$/m);
    expect(ok.stdout).not.toContain('% done');

    const key = new ReadModelKeys(namespace).space(1).snapshot(JOB, 3);
    const view = JSON.parse((await redis.get(key))!);
    await redis.set(key, JSON.stringify({ ...view, status: 'COMPLETED', stateSize: 1 }));
    const drift = await cli('audit', 'verify');
    expect(drift.status).toBe(1);
    expect(drift.stdout).toContain(`DRIFT ${key}`);

    const exported = await cli('audit', 'export', '--job', JOB);
    expect(exported.status).toBe(0);
    const lines = exported.stdout
      .trim()
      .split('\n')
      .map((l: string) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ revision: 0, type: 'JobRegistered' });
    expect(exported.stderr).toMatch(
      new RegExp(`^audit export: ${lines.length} events, \\d+ events/s, 100% done$`, 'm'),
    );
    expect(lines.map((l: { revision: number }) => l.revision)).toEqual(
      lines.map((_: unknown, i: number) => i),
    );
    const future = await cli('audit', 'export', '--job', JOB, '--from', '2999-01-01T00:00:00Z');
    expect(future.stdout).toBe('');
    expect((await cli('audit', 'export', '--job', 'nope')).status).toBe(2);
    const unknown = await cli('audit', 'export', '--job', 'f'.repeat(32));
    expect(unknown).toMatchObject({ status: 1, stdout: '' });
    expect(unknown.stderr).toContain(`no job ${'f'.repeat(32)} in the event store`);
    const help = await cli('audit', 'export', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('audit export --job <id>');
    expect(help.stdout).not.toContain('redis forget');
    expect((await cli('audit', 'nope')).status).toBe(2);
    // `npx snapcat`, the bin npm links: stdout is the export alone (no npm banner), from any directory.
    const bin = spawnSync(
      join(REPO_ROOT, 'node_modules', '.bin', 'snapcat'),
      ['audit', 'export', '--job', JOB],
      {
        cwd: tmpdir(),
        encoding: 'utf8',
        env: {
          ...process.env,
          SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
          SNAPCAT_QUEUE_PREFIX: prefix,
        },
      },
    );
    expect(bin.status).toBe(0);
    expect(
      bin.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string })[0],
    ).toMatchObject({
      type: 'JobRegistered',
    });

    const replay = await cli('replay');
    expect(replay.status).toBe(0);
    expect(replay.stdout).toMatch(/replayed \d+ events of 1 jobs .* events\/s/);
    expect(replay.stderr).toMatch(/^replay: \d+ events, \d+ events\/s, 100% done$/m);
    expect((await cli('audit', 'verify')).status).toBe(0); // the rebuild repaired the corrupted key
    const position = await new ReadModel(redis, namespace).position();
    expect(position && comparePositions(position, START)).toBe(1);
    // Twelve CLI processes, each loading its TypeScript through tsx: 25 s on a quiet machine, over 60 s on a
    // loaded one (it timed out in a mutation run's dry run and came close in CI).
  }, 180_000);
});
