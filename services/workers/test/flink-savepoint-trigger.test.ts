import { Queue, type Worker } from 'bullmq';
import IORedis from 'ioredis';
import { CommandBus } from '@snapcat/application';
import { Command } from '@snapcat/domain';
import { MemoryEventStore } from '@snapcat/event-store';
import { FlinkError, type FlinkCheckpoint, type FlinkCheckpoints } from '@snapcat/flink';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { flinkJobIds, flinkTriggerId, startFlinkWorker, type FlinkApi } from '../src/flink';
import { flinkStats } from './flink-stats';

/**
 * The savepoint job of the Flink connector (R67) against Flink answers given one by one: the real worker, a
 * real BullMQ on the local Redis, a command bus over the in-memory store. What a JobManager failover and a
 * lost answer do to a trigger, which the Flink test server (test/flink-connector.test.ts) cannot time.
 */
const JOB = 'ab'.repeat(16);
const CLUSTER = 'c1';

/** An error as the Flink client throws it; `mayHaveBeenTaken` as its retries saw them (absent: not known). */
const flinkError = (kind: FlinkError['kind'], status?: number, mayHaveBeenTaken?: boolean) =>
  new FlinkError(kind, `answered ${kind} ${status ?? ''}`, {
    cluster: CLUSTER,
    method: 'POST',
    path: `/jobs/${JOB}/savepoints`,
    attempts: 4,
    ...(status ? { status } : {}),
    ...(mayHaveBeenTaken === undefined ? {} : { mayHaveBeenTaken }),
  });

/** A completed savepoint as Flink's checkpoint history reports it. */
const savepointEntry = (id: number, externalPath: string, triggerTimestamp: number): FlinkCheckpoint =>
  flinkStats({ id, externalPath, triggerTimestamp, latestAckTimestamp: triggerTimestamp + 100 });

/** Flink's answers for the job's checkpoint history: the savepoints it took, newest first. */
const historyOf = (savepoints: FlinkCheckpoint[]): FlinkCheckpoints => ({
  counts: { restored: 0, total: savepoints.length, inProgress: 0, completed: savepoints.length, failed: 0 },
  history: [...savepoints],
  unreadable: 0,
  latest: { completed: null, savepoint: savepoints[0] ?? null, failed: null, restored: null },
});

describe('the Flink connector’s savepoint trigger (R67)', () => {
  const prefix = testPrefix('flink-trigger');
  let redis: IORedis;
  let queue: Queue;
  let worker: Worker | undefined;
  let bus: CommandBus;
  let warnings: Record<string, unknown>[];

  beforeEach(() => {
    warnings = [];
    redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    queue = new Queue('flink', { connection: { url: 'redis://127.0.0.1:6379' }, prefix });
    bus = new CommandBus(new MemoryEventStore());
  });
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
    await queue.close();
    redis.disconnect();
    await deleteKeys(prefix);
  });

  /** A managed job whose savepoints go to `savepointDir`, one savepoint pending, its job queued as given. */
  async function pendingSavepoint(
    api: Partial<FlinkApi>,
    savepointDir: string,
    queuedAgoMs = 0,
    terminate?: { drain: boolean },
  ) {
    worker = startFlinkWorker({ url: 'redis://127.0.0.1:6379' }, prefix, {
      bus,
      apis: async () =>
        ({ checkpointConfig: () => Promise.reject(flinkError('not-found', 404)), ...api }) as FlinkApi,
      serves: async () => true,
      pollMs: 1000,
      redis,
      keyPrefix: prefix,
      statusPollMs: 100,
      queue,
      log: {
        info: () => undefined,
        warn: (message, fields) => void warnings.push({ message, ...fields }),
        error: () => undefined,
      },
    });
    await bus.execute(
      Command.parse({
        type: 'ConfigureJob',
        jobId: JOB,
        name: 'j',
        tasks: [],
        source: { type: 'flink', cluster: CLUSTER },
        checkpointing: {},
        storage: { checkpointDir: '/data/chk', savepointDir },
      }),
    );
    if (terminate) {
      await bus.execute(Command.parse({ type: 'ChangeJobStatus', jobId: JOB, status: 'RUNNING' }));
    }
    await bus.execute(
      Command.parse({
        type: 'TriggerSnapshot',
        jobId: JOB,
        kind: 'SAVEPOINT',
        triggerId: 't-1',
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
        ...(terminate ? { terminate } : {}),
      }),
    );
    const snapshotId = [...(await bus.load(JOB)).pending].at(-1)!;
    await queue.add(
      'savepoint',
      { jobId: JOB, snapshotId },
      {
        jobId: flinkJobIds.savepoint(JOB, snapshotId),
        attempts: 50,
        backoff: { type: 'fixed', delay: 200 },
        timestamp: Date.now() - queuedAgoMs,
      },
    );
    return snapshotId;
  }

  async function settled(snapshotId: number) {
    for (let waited = 0; waited < 20_000; waited += 100) {
      const snapshot = (await bus.load(JOB)).snapshots.get(snapshotId)!;
      if (snapshot.status !== 'PENDING') return snapshot;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`savepoint ${snapshotId} still pending`);
  }

  it('a 404 is tried again for 15 s from the first one, not from when the job was queued: a JobManager that took over after a long outage gets its time', async () => {
    let notFound = 0;
    const snapshotId = await pendingSavepoint(
      {
        triggerSavepoint: async (_job, request) => {
          // The JobManager that took over has not recovered the job yet: 404 twice, then it takes it.
          if (notFound < 2) {
            notFound += 1;
            throw flinkError('not-found', 404);
          }
          return { triggerId: request.triggerId };
        },
        savepointStatus: async () => ({
          status: 'COMPLETED',
          location: 'file:/data/sp/savepoint-ababab-0123456789ab',
        }),
        checkpoints: async () => historyOf([]),
      },
      '/data/sp',
      60_000, // queued a minute ago: the cluster was unreachable meanwhile
    );
    const snapshot = await settled(snapshotId);
    expect({ status: snapshot.status, notFound }).toEqual({ status: 'COMPLETED', notFound: 2 });
  });

  it('a savepoint whose trigger’s answer was lost is found in Flink’s history after Flink forgot the operation, not taken twice', async () => {
    const taken: FlinkCheckpoint[] = [];
    let triggers = 0;
    let forgotten = false;
    const snapshotId = await pendingSavepoint(
      {
        triggerSavepoint: async (_job, request) => {
          triggers += 1;
          if (triggers === 1) {
            // Flink takes the savepoint; its answer is lost (the client's timeouts and retries ran out).
            taken.unshift(savepointEntry(5, 'file:/data/sp/savepoint-ababab-0123456789ab', Date.now()));
            await new Promise((resolve) => setTimeout(resolve, 1_500));
            throw flinkError('timeout', undefined, true);
          }
          // Sent again with the same trigger id, Flink answers with the operation it started; once that is
          // forgotten (below), a trigger takes a second savepoint.
          if (forgotten)
            taken.unshift(savepointEntry(6, 'file:/data/sp/savepoint-ababab-ba9876543210', Date.now()));
          return { triggerId: request.triggerId };
        },
        savepointStatus: async () => {
          if (!forgotten) {
            forgotten = true; // a JobManager failover: the operation is no longer known
            throw flinkError('not-found', 404);
          }
          return { status: 'COMPLETED', location: taken[0]!.externalPath! };
        },
        checkpoints: async () => historyOf(taken),
      },
      '/data/sp',
    );
    const snapshot = await settled(snapshotId);
    expect({ status: snapshot.status, path: snapshot.externalPath, savepointsInFlink: taken.length }).toEqual(
      {
        status: 'COMPLETED',
        path: 'file:///data/sp/savepoint-ababab-0123456789ab',
        savepointsInFlink: 1,
      },
    );
  });

  it('a savepoint started by a trigger whose answer was lost is found, not one someone else took after the trigger sent again was answered', async () => {
    const taken: FlinkCheckpoint[] = [];
    let triggers = 0;
    let statusAsked = 0;
    const ours = 'file:/data/sp/savepoint-ababab-0123456789ab';
    const snapshotId = await pendingSavepoint(
      {
        triggerSavepoint: async (_job, request) => {
          triggers += 1;
          if (triggers === 1) {
            taken.unshift(savepointEntry(5, ours, Date.now())); // started; the answer is lost
            await new Promise((resolve) => setTimeout(resolve, 1_200));
            throw flinkError('timeout', undefined, true);
          }
          return { triggerId: request.triggerId }; // the same trigger id: the operation already started
        },
        savepointStatus: async () => {
          statusAsked += 1;
          if (statusAsked === 1) {
            // Someone else takes one into the same directory, then a failover forgets the operation.
            taken.unshift(savepointEntry(6, 'file:/data/sp/savepoint-ababab-ffffffffffff', Date.now()));
            throw flinkError('not-found', 404);
          }
          return { status: 'COMPLETED', location: ours };
        },
        checkpoints: async () => historyOf(taken),
      },
      '/data/sp',
    );
    const snapshot = await settled(snapshotId);
    expect({ status: snapshot.status, path: snapshot.externalPath, triggers }).toEqual({
      status: 'COMPLETED',
      path: 'file:///data/sp/savepoint-ababab-0123456789ab',
      triggers: 2,
    });
  });

  it.each(['COMPLETED', 'FAILED'] as const)(
    'a savepoint someone else took (%s) while the first attempts failed is not taken for this one once Flink forgot the operation',
    async (theirs) => {
      const taken: FlinkCheckpoint[] = [];
      const started = Date.now();
      let statusAsked = 0;
      const ours = 'file:/data/sp/savepoint-ababab-111111111111';
      const snapshotId = await pendingSavepoint(
        {
          triggerSavepoint: async (_job, request) => {
            if (taken.length === 0) {
              // The Kubernetes operator (or `flink savepoint`) takes one into the same directory meanwhile.
              const other = savepointEntry(3, 'file:/data/sp/savepoint-ababab-000000000000', Date.now());
              taken.unshift(theirs === 'FAILED' ? { ...other, status: 'FAILED', externalPath: null } : other);
            }
            // Answered 503 for a while: Flink started nothing for these attempts.
            if (Date.now() - started < 1_500) throw flinkError('server', 503, false);
            if (taken.length === 1) taken.unshift(savepointEntry(4, ours, Date.now()));
            return { triggerId: request.triggerId };
          },
          savepointStatus: async () => {
            statusAsked += 1;
            if (statusAsked === 1) throw flinkError('not-found', 404); // forgotten in a failover
            return { status: 'COMPLETED', location: ours };
          },
          checkpoints: async () => historyOf(taken),
        },
        '/data/sp',
      );
      const snapshot = await settled(snapshotId);
      expect({ status: snapshot.status, path: snapshot.externalPath }).toEqual({
        status: 'COMPLETED',
        path: 'file:///data/sp/savepoint-ababab-111111111111',
      });
    },
  );

  it.each([
    ['FINISHED', 'FINISHED', undefined],
    ['RUNNING', 'RUNNING', 'job abababababababababababababababab is RUNNING, not FINISHED: it did not stop'],
  ] as const)(
    'a stop whose operation Flink forgot, its savepoint completed in the history and the job %s, is recorded with the job %s',
    async (flinkStatus, catalogued, stopFailure) => {
      const path = 'file:/data/sp/savepoint-ababab-0123456789ab';
      const taken: FlinkCheckpoint[] = [];
      let stops = 0;
      const snapshotId = await pendingSavepoint(
        {
          stopWithSavepoint: async (_job, request) => {
            stops += 1;
            taken.unshift(savepointEntry(5, path, Date.now()));
            return { triggerId: request.triggerId };
          },
          // A JobManager failover: the operation, and whether the job's tasks finished, are forgotten.
          savepointStatus: async () => Promise.reject(flinkError('not-found', 404)),
          checkpoints: async () => historyOf(taken),
          job: async () => ({ jobId: JOB, name: 'j', state: flinkStatus }),
        },
        '/data/sp',
        0,
        { drain: false },
      );
      const snapshot = await settled(snapshotId);
      const job = await bus.load(JOB);
      expect({
        status: snapshot.status,
        path: snapshot.externalPath,
        job: job.status,
        stops,
        failure: snapshot.failureMessage,
      }).toEqual({
        status: 'COMPLETED',
        path: 'file:///data/sp/savepoint-ababab-0123456789ab',
        job: catalogued,
        stops: 1,
        failure: undefined,
      });
      const told = warnings.filter(
        (w) => w.message === 'flink took the savepoint of a stop, but the job failed while stopping',
      );
      expect(told).toEqual(
        stopFailure ? [expect.objectContaining({ error: expect.stringContaining(stopFailure) })] : [],
      );
    },
  );

  it.each(['hdfs:///flink/sp', 'hdfs://namenode:8020/flink/sp'])(
    'a savepoint to %s, its operation forgotten, is found where Flink qualified its path with the namenode’s authority, not taken twice',
    async (savepointDir) => {
      const taken: FlinkCheckpoint[] = [];
      let triggers = 0;
      const snapshotId = await pendingSavepoint(
        {
          triggerSavepoint: async (_job, request) => {
            triggers += 1;
            // Flink names the directory qualified (`path.makeQualified(fs)`), whatever the target said.
            const path = `hdfs://namenode:8020/flink/sp/savepoint-ababab-${String(triggers).repeat(12)}`;
            taken.unshift(savepointEntry(6 + triggers, path, Date.now()));
            return { triggerId: request.triggerId };
          },
          savepointStatus: async () => {
            if (triggers === 1) throw flinkError('not-found', 404); // forgotten in a failover
            return { status: 'COMPLETED', location: taken[0]!.externalPath! };
          },
          checkpoints: async () => historyOf(taken),
        },
        savepointDir,
      );
      const snapshot = await settled(snapshotId);
      expect({ status: snapshot.status, path: snapshot.externalPath, triggers }).toEqual({
        status: 'COMPLETED',
        path: 'hdfs://namenode:8020/flink/sp/savepoint-ababab-111111111111',
        triggers: 1,
      });
    },
  );
});

describe('Flink trigger ids (TriggerId: 32 hex)', () => {
  it('the same for a snapshot each time; another for another snapshot under a trigger id used again; a periodic one as it is', () => {
    const manual = { snapshotId: 7, triggerId: 'deploy-42', triggerType: 'MANUAL' as const };
    const first = flinkTriggerId(manual);
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    expect(flinkTriggerId(manual)).toBe(first);
    // Used again once the catalogue forgot it (compaction): Flink must not answer the earlier operation.
    expect(flinkTriggerId({ ...manual, snapshotId: 112 })).not.toBe(first);
    const hex = 'ab'.repeat(16);
    expect(flinkTriggerId({ snapshotId: 7, triggerId: hex, triggerType: 'PERIODIC' })).toBe(hex);
    // A client's own id of that form is hashed all the same: it may come again.
    expect(flinkTriggerId({ ...manual, triggerId: hex })).not.toBe(hex);
  });
});
