import IORedis from 'ioredis';
import { CommandBus, domainEvent } from '@snapcat/application';
import { periodicTriggerId, type Command } from '@snapcat/domain';
import { MemoryEventStore } from '@snapcat/event-store';
import { ScheduleIndex, fireDueSavepoints } from '@snapcat/workers';
import { Enqueuer } from '../services/workers/src/enqueue';
import { openQueues } from '@snapcat/runtime';
import { deleteKeys } from './support/redis';
import { testPrefix } from './support/service';
import { newJobId } from './support/ids';
import { sleep } from './support/wait';

const every = { every: 'PT60S' };
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

async function scheduledJob(bus: CommandBus, jobId: string, schedule: { every: string }) {
  await bus.execute({
    type: 'ConfigureJob',
    jobId,
    name: jobId,
    tasks: ['a'],
    checkpointing: {
      numRetained: 1,
      timeoutMs: 60_000,
      maxConcurrent: 1,
      minPauseMs: 0,
      tolerableFailures: 0,
      retention: 'NEVER_RETAIN_AFTER_TERMINATION',
    },
    storage: { checkpointDir: '/c', savepointDir: '/s' },
  } as Command);
  await bus.execute({ type: 'SetSavepointSchedule', jobId, schedule } as Command);
}

describe('savepoint schedule index and tick (real Redis)', () => {
  const prefix = testPrefix('schedules');
  let redis: IORedis;
  let index: ScheduleIndex;
  beforeEach(() => {
    redis = new IORedis('redis://127.0.0.1:6379');
    index = new ScheduleIndex(redis, prefix);
  });
  afterEach(async () => {
    redis.disconnect();
    await deleteKeys(prefix);
  });

  it('a due schedule is claimed by one caller at a time, and again once its claim lapses', async () => {
    const jobs = Array.from({ length: 2000 }, () => newJobId());
    for (const jobId of jobs) await index.set(jobId, every, 1_000);
    await index.set(newJobId(), every, 5_000); // not due yet
    const [a, b] = await Promise.all([index.claimDue(2_000, 100, 1500), index.claimDue(2_000, 100, 1500)]);
    const claimed = [...a!, ...b!].map((d) => d.jobId);
    expect(new Set(claimed).size).toBe(claimed.length); // disjoint
    expect(new Set(claimed)).toEqual(new Set(jobs));
    expect(await index.claimDue(2_050, 100, 5000)).toEqual([]); // still claimed until 2,100
    const again = await index.claimDue(2_200, 100, 5000);
    expect(again).toHaveLength(2000);
    expect(again[0]).toMatchObject({ dueAt: 2_100, lease: 2_300, schedule: every });
  });

  it('setting the same schedule again keeps its slot (a replayed event); a changed one moves it', async () => {
    const jobId = newJobId();
    expect(await index.set(jobId, every, 1_000)).toBe(true);
    expect(await index.set(jobId, every, 61_000)).toBe(false);
    expect(await redis.zscore(index.dueKey, jobId)).toBe('1000');
    expect(await index.set(jobId, { every: 'PT10S' }, 10_000)).toBe(true);
    expect(await redis.zscore(index.dueKey, jobId)).toBe('10000');
  });

  it('a claim advances to the next slot only if nobody set or removed the schedule meanwhile', async () => {
    const [kept, reset, removed] = [newJobId(), newJobId(), newJobId()];
    for (const jobId of [kept, reset, removed]) await index.set(jobId, every, 1_000);
    const due = await index.claimDue(1_000, 30_000, 10);
    await index.set(reset, { every: 'PT10S' }, 10_000); // the process manager saw a new schedule
    await index.remove(removed);
    const advanced = await index.advance(due.map((d) => ({ due: d, nextSlot: 61_000 })));
    expect(advanced).toBe(1);
    expect(await redis.zscore(index.dueKey, kept)).toBe('61000');
    expect(await redis.zscore(index.dueKey, reset)).toBe('10000');
    expect(await redis.zscore(index.dueKey, removed)).toBeNull();
    expect(await index.earliest()).toBe(10_000);
  });

  it('claims of different leases advance in one call each, every one to its own next slot', async () => {
    const [a, b] = [newJobId(), newJobId()];
    await index.set(a, every, 1_000);
    const first = await index.claimDue(1_000, 30_000, 10);
    await index.set(b, every, 1_000);
    const second = await index.claimDue(2_000, 30_000, 10);
    expect(first[0]!.lease).not.toBe(second[0]!.lease);
    const fired = [
      { due: first[0]!, nextSlot: 61_000 },
      { due: second[0]!, nextSlot: 62_000 },
    ];
    expect(await index.advance(fired)).toBe(2);
    expect(await redis.zscore(index.dueKey, a)).toBe('61000');
    expect(await redis.zscore(index.dueKey, b)).toBe('62000');
  });

  it('two ticks side by side fire each of 500 due schedules exactly once, and move them to the next slot', async () => {
    const bus = new CommandBus(new MemoryEventStore());
    const jobs = Array.from({ length: 500 }, () => newJobId());
    // The tick fires the newest slot that has passed by its own clock: an hourly schedule, and a start at least a
    // minute before the hour ends, keep the set-up of 500 jobs (9 s on a loaded CI run) inside one slot.
    const every = { every: 'PT1H' };
    const hour = 3_600_000;
    const leftInHour = hour - (Date.now() % hour);
    if (leftInHour < 60_000) await sleep(leftInHour + 10);
    const slot = Math.floor(Date.now() / hour) * hour; // the hour's slot, already passed
    for (const jobId of jobs) {
      await scheduledJob(bus, jobId, every);
      await index.set(jobId, every, slot);
    }
    const deps = { bus, schedules: index, log: quiet };
    const [one, two] = await Promise.all([
      fireDueSavepoints(deps, Date.now()),
      fireDueSavepoints(deps, Date.now()),
    ]);
    expect(one!.fired + two!.fired).toBe(500);
    expect(one!.failed + two!.failed).toBe(0);
    for (const jobId of jobs) {
      const state = await bus.load(jobId);
      const periodic = [...state.snapshots.values()].filter((s) => s.triggerType === 'PERIODIC');
      // Issue 16 (R48): a Flink TriggerId derived from the job, schedule and slot (`periodic-<slot>` before).
      expect(periodic.map((s) => s.triggerId)).toEqual([periodicTriggerId(jobId, every, slot)]);
      expect(await redis.zscore(index.dueKey, jobId)).toBe(String(slot + hour));
    }
    // A tick that runs again finds nothing due: no slot twice.
    expect(await fireDueSavepoints(deps, Date.now())).toEqual({ fired: 0, failed: 0 });
  });

  it('a batch whose release to Redis fails fails the tick once the batches beside it settle; its slots stay fired, once', async () => {
    const bus = new CommandBus(new MemoryEventStore());
    const hour = 3_600_000;
    const leftInHour = hour - (Date.now() % hour);
    if (leftInHour < 60_000) await sleep(leftInHour + 10);
    const slot = Math.floor(Date.now() / hour) * hour;
    const jobs = Array.from({ length: 600 }, () => newJobId()); // three batches
    for (const jobId of jobs) {
      await scheduledJob(bus, jobId, { every: 'PT1H' });
      await index.set(jobId, { every: 'PT1H' }, slot);
    }
    // Each slot the tick presents, per job: the domain refuses a slot twice, so this is what tells.
    const presented = new Map<string, number>();
    const counting = Object.create(bus) as CommandBus;
    counting.execute = ((command: Command, metadata) => {
      if (command.type === 'FirePeriodicSavepoint')
        presented.set(command.jobId, (presented.get(command.jobId) ?? 0) + 1);
      return bus.execute(command, metadata);
    }) as CommandBus['execute'];
    // The first release fails (Redis went away); the others go through, slowly.
    let failedBatch: string[] | undefined;
    const failing = Object.create(index) as ScheduleIndex;
    failing.advance = async (fired) => {
      if (failedBatch) return sleep(300).then(() => index.advance(fired));
      failedBatch = fired.map((f) => f.due.jobId);
      throw new Error('connection lost while releasing');
    };
    await expect(
      fireDueSavepoints({ bus: counting, schedules: failing, log: quiet }, Date.now()),
    ).rejects.toThrow('connection lost while releasing');
    expect(failedBatch).toHaveLength(250);
    // By the time the tick fails, every other batch it claimed is released, none presented twice.
    for (const jobId of jobs) {
      const score = Number(await redis.zscore(index.dueKey, jobId));
      if (failedBatch!.includes(jobId)) {
        expect(score).toBeGreaterThan(Date.now()); // still claimed until its lease (30 s) lapses
        expect(score).toBeLessThan(slot + hour);
      } else expect(score).toBe(presented.has(jobId) ? slot + hour : slot);
      expect(presented.get(jobId) ?? 0).toBeLessThanOrEqual(1);
    }
    const periodicOf = async (jobId: string) => [...(await bus.load(jobId)).snapshots.values()].length;
    for (const jobId of failedBatch!) expect(await periodicOf(jobId)).toBe(1);
    // Their leases lapse (set back to the slot here), and the next tick fires what is left: no slot twice.
    for (const jobId of failedBatch!) await redis.zadd(index.dueKey, slot, jobId);
    await fireDueSavepoints({ bus: counting, schedules: index, log: quiet }, Date.now());
    for (const jobId of jobs) {
      expect(await periodicOf(jobId)).toBe(1);
      expect(presented.get(jobId)).toBe(failedBatch!.includes(jobId) ? 2 : 1);
      expect(await redis.zscore(index.dueKey, jobId)).toBe(String(slot + hour));
    }
  });

  it('a slot between two ticks is waited for and fired on time', async () => {
    const bus = new CommandBus(new MemoryEventStore());
    const jobId = newJobId();
    await scheduledJob(bus, jobId, { every: 'PT1.5S' });
    const slot = Math.ceil((Date.now() + 300) / 3000) * 3000 + 1500; // on the PT1.5S grid, between ticks
    await index.set(jobId, { every: 'PT1.5S' }, slot);
    await sleep(Math.max(0, slot - 1000 - Date.now())); // the tick before the slot
    const result = await fireDueSavepoints({ bus, schedules: index, log: quiet }, slot - 500 + 1000);
    expect(result.fired).toBe(1);
    expect(Date.now()).toBeGreaterThanOrEqual(slot);
    expect(Date.now() - slot).toBeLessThan(200);
    const state = await bus.load(jobId);
    expect([...state.snapshots.values()].map((s) => s.triggerId)).toEqual([
      periodicTriggerId(jobId, { every: 'PT1.5S' }, slot),
    ]);
  });

  it('a worker killed holding a claim: once it lapses the next fires the newest slot, and those between are SLOT_MISSED', async () => {
    const store = new MemoryEventStore();
    const bus = new CommandBus(store);
    const jobId = newJobId();
    const schedule = { every: 'PT1S' };
    await scheduledJob(bus, jobId, schedule);
    const first = Math.ceil((Date.now() + 1) / 1000) * 1000;
    await index.set(jobId, schedule, first);
    // A few ms past the slot: a timer may fire a millisecond before Date.now() reaches its due time.
    await sleep(first - Date.now() + 5);
    // The worker that claims the slot is killed before it fires anything: its claim lapses 2.5 s later.
    expect(await index.claimDue(Date.now(), 2_500, 10)).toHaveLength(1);
    await sleep(2_600);
    expect(await fireDueSavepoints({ bus, schedules: index, log: quiet }, Date.now())).toEqual({
      fired: 1,
      failed: 0,
    });
    const events = (await store.readStream(`snapcat-job-${jobId}`)).map(domainEvent);
    const slots = events.flatMap((e) =>
      e.type === 'SnapshotTriggered' && e.slot !== undefined
        ? [['fired', e.slot]]
        : e.type === 'PeriodicSavepointSkipped'
          ? [[e.reason, e.slot]]
          : [],
    );
    const newest = slots.at(-1)![1] as number;
    expect(newest).toBeGreaterThanOrEqual(first + 2_000);
    const missed = Array.from({ length: (newest - first) / 1000 }, (_, i) => [
      'SLOT_MISSED',
      first + i * 1000,
    ]);
    expect(slots).toEqual([...missed, ['fired', newest]]);
  });
});

describe('maintenance schedulers (real Redis)', () => {
  const prefix = testPrefix('maintenance');
  afterEach(() => deleteKeys(prefix));

  it('are the retention sweep and the savepoint tick; schedulers of the per-job design are removed', async () => {
    const connection = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
    const queues = openQueues(connection, prefix);
    try {
      await queues.schedules.upsertJobScheduler(
        `savepoint-${newJobId()}`,
        { every: 60_000 },
        { name: 'old' },
      );
      const enqueue = new Enqueuer(
        queues,
        connection,
        `${prefix}:jobs`,
        new ScheduleIndex(connection, prefix),
        {
          discardAttempts: 1,
          discardBackoffMs: 1,
          retentionSweepMs: 60_000,
          now: () => Date.now(),
        },
      );
      await enqueue.maintenanceSchedulers();
      await enqueue.maintenanceSchedulers(); // as after a second takeover: still one of each
      expect((await queues.schedules.getJobSchedulers(0, -1)).map((s) => [s.key, s.every])).toEqual([
        ['savepoint-tick', 1000],
      ]);
      const tick = (await queues.schedules.getJobSchedulers(0, -1))[0]!;
      expect(tick.next! % 1000).toBe(0); // on whole seconds
      expect((await queues.maintenance.getJobSchedulers(0, -1)).map((s) => s.key)).toEqual([
        'retention-sweep',
      ]);
    } finally {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      connection.disconnect();
    }
  });
});
