import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { CommandBus } from '@snapcat/application';
import { MemoryEventStore, formatPosition } from '@snapcat/event-store';
import { Enqueuer } from '../src/enqueue';
import { FlinkEnqueuer } from '../src/flink';
import { ProcessManager } from '../src/process-manager';
import { openQueues } from '@snapcat/runtime';
import { ScheduleIndex } from '../src/schedule-index';
import { UrgentWork } from '../src/urgent-work';
import { configureJob } from './jobs';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { eventually } from '../../../test/support/wait';

/** A process manager on a memory store, real Redis and BullMQ; `close` stops it and deletes its keys. */
function managerOnMemory(name: string, urgent?: UrgentWork) {
  const prefix = testPrefix(name);
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const connection = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const queues = openQueues(connection, prefix);
  const store = new MemoryEventStore();
  const bus = new CommandBus(store);
  const quiet = () => {};
  const processManager = new ProcessManager({
    store,
    bus,
    redis,
    enqueue: new Enqueuer(queues, redis, `${prefix}:jobs`, new ScheduleIndex(redis, prefix), {
      discardAttempts: 1,
      discardBackoffMs: 1000,
      retentionSweepMs: 60_000,
      now: () => Date.now(),
    }),
    flink: new FlinkEnqueuer(queues.flink, redis, prefix, 5000),
    keyPrefix: prefix,
    log: { info: quiet, warn: quiet, error: quiet },
    ...(urgent ? { urgent } : {}),
  });
  return {
    prefix,
    redis,
    store,
    bus,
    processManager,
    async close() {
      await processManager.stop();
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await deleteKeys(prefix);
      redis.disconnect();
      connection.disconnect();
    },
  };
}

// The process manager on a memory store, real Redis and BullMQ: its subscription's checkpoints move the
// position it saves past other streams' events, as a handled event's does.
describe('process manager: subscription checkpoints', () => {
  it('saves a checkpoint past other streams’ events as its position, after the job events before it', async () => {
    const { prefix, redis, store, bus, processManager, close } = managerOnMemory('pm-checkpoints');
    try {
      processManager.start();
      await eventually(() => processManager.active, 10_000, 'the process manager active');
      await bus.execute(configureJob('c0ffee00c0ffee00c0ffee00c0ffee00'));
      await eventually(() => processManager.stats.eventsHandled > 0, 10_000, 'the job event handled');
      const others = Array.from({ length: 50 }, () => ({ id: randomUUID(), type: 'Other', data: {} }));
      const { position } = await store.append(`other-${randomUUID()}`, others, 'no_stream');
      await eventually(
        async () => (await redis.get(`${prefix}:pm:position`)) === formatPosition(position),
        10_000,
        'the position at the checkpoint',
      );
      expect(await redis.sismember(`${prefix}:jobs`, 'c0ffee00c0ffee00c0ffee00c0ffee00')).toBe(1);
    } finally {
      await close();
    }
  });
});

describe('process manager: periodic savepoints firing come first', () => {
  it('handles no event while urgent work runs in its process, and every event once it has finished', async () => {
    const urgent = new UrgentWork();
    const { redis, bus, processManager, prefix, close } = managerOnMemory('pm-urgent', urgent);
    let fired!: () => void;
    try {
      processManager.start();
      await eventually(() => processManager.active, 10_000, 'the process manager active');
      const firing = urgent.run(() => new Promise<void>((resolve) => (fired = resolve)));
      await bus.execute(configureJob('c0ffee01c0ffee01c0ffee01c0ffee01'));
      await new Promise((r) => setTimeout(r, 300)); // the memory store delivers within a few ms
      expect(processManager.stats.eventsHandled).toBe(0);
      fired();
      await firing;
      await eventually(() => processManager.stats.eventsHandled > 0, 10_000, 'the job event handled');
      expect(await redis.sismember(`${prefix}:jobs`, 'c0ffee01c0ffee01c0ffee01c0ffee01')).toBe(1);
    } finally {
      fired?.();
      await close();
    }
  });
});
