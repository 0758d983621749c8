import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { CommandBus } from '@snapcat/application';
import { SqliteEventStore } from '@snapcat/event-store';
import { ReadModel, ReadModelKeys, verifyReadModel } from '@snapcat/read-model';
import { newJobId } from './support/ids';
import { namespaceOf } from './support/namespace';
import { deleteKeys } from './support/redis';
import { startService, testPrefix, type RunningService } from './support/service';
import { until } from './support/wait';

/** Registers a job and completes `count` checkpoints of it, through the command bus. */
async function checkpoints(bus: CommandBus, jobId: string, count: number) {
  await bus.execute({
    type: 'ConfigureJob',
    jobId,
    name: 'f',
    tasks: ['t'],
    checkpointing: {
      numRetained: 2,
      timeoutMs: 60_000,
      maxConcurrent: 1,
      minPauseMs: 0,
      tolerableFailures: 0,
      retention: 'RETAIN_ON_CANCELLATION',
    },
    storage: { checkpointDir: '/data/c', savepointDir: '/data/s' },
  } as never);
  for (let id = 1; id <= count; id += 1) {
    await bus.execute({
      type: 'TriggerSnapshot',
      jobId,
      kind: 'CHECKPOINT',
      triggerId: `c${id}`,
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
    } as never);
    await bus.execute({
      type: 'AcknowledgeTask',
      jobId,
      snapshotId: id,
      taskId: 't',
      stateSize: 1,
      stateHandles: [],
    } as never);
  }
}

describe('two projector processes: one active, the standby takes over when it is SIGKILLed', () => {
  let dir: string;
  let store: SqliteEventStore;
  let redis: IORedis;
  let subscriber: IORedis;
  const running: RunningService[] = [];
  const prefix = testPrefix('failover');
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-failover-'));
    redis = new IORedis('redis://127.0.0.1:6379');
    subscriber = new IORedis('redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop('SIGKILL')));
    redis.disconnect();
    subscriber.disconnect();
    await store?.close();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('no event lost, none published twice, the read model equal to a fold of the log', async () => {
    const connection = `sqlite:${join(dir, 'events.db')}`;
    const env = { SNAPCAT_EVENT_STORE: connection, SNAPCAT_QUEUE_PREFIX: prefix };
    for (let i = 0; i < 2; i += 1) running.push(await startService(env, 'services/projector/src/main.ts'));
    store = new SqliteEventStore(join(dir, 'events.db'));
    const namespace = await namespaceOf(connection, prefix);
    const readModel = new ReadModel(redis, namespace);
    const keys = new ReadModelKeys(namespace);
    // What GraphQL subscribers hear: every applied event, published by whichever projector applied it.
    const published: string[] = [];
    subscriber.on('pmessage', (_pattern: string, _channel: string, text: string) => {
      const message = JSON.parse(text) as { jobId: string; revision: string };
      published.push(`${message.jobId}@${message.revision}`);
    });
    await subscriber.psubscribe(`${keys.channel}*`); // yoga's Redis event target: one channel per job
    const caughtUp = async () => {
      const [last] = await store.readAll({
        direction: 'backwards',
        maxCount: 1,
        filter: { streamNamePrefixes: ['snapcat-job-'] },
      });
      return readModel.waitFor(last!.position, 20_000);
    };
    const activeOnes = () => running.filter((s) => s.logs.some((l) => l.includes('projector active')));

    const bus = new CommandBus(store);
    await checkpoints(bus, newJobId(), 30);
    expect(await caughtUp()).toBe(true);
    expect(activeOnes()).toHaveLength(1);
    const [active] = activeOnes();
    const standby = running.find((s) => s !== active)!;

    // Killed while events keep coming: the standby takes over within the lease (5 s) from the stored position.
    const writing = checkpoints(bus, newJobId(), 60);
    await new Promise((r) => setTimeout(r, 100));
    await active!.stop('SIGKILL');
    const killedAt = Date.now();
    await writing;
    await until(
      async () => (standby.logs.some((l) => l.includes('projector active')) ? true : undefined),
      10_000,
      'the standby taking over',
    );
    expect(Date.now() - killedAt).toBeLessThan(8000);
    expect(await caughtUp()).toBe(true);
    expect(await verifyReadModel(store, redis, namespace)).toEqual([]);
    const events = await store.readAll({ filter: { streamNamePrefixes: ['snapcat-job-'] } });
    // Published at most once each; none is missing except those of the last batch the killed one wrote
    // but had not announced yet (a notification channel, not the record: the read model is complete).
    expect(new Set(published).size).toBe(published.length);
    expect(published.length).toBeGreaterThan(events.length - 100);
  }, 60_000);
});
