import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainEvent, jobStream } from '@snapcat/application';
import type { Event } from '@snapcat/domain';
import { openEventStore, readStreamPages, type EventStore } from '@snapcat/event-store';
import { ReadModel, verifyReadModel } from '@snapcat/read-model';
import { connectRedis } from '@snapcat/runtime';
import { newJobId } from './support/ids';
import { namespaceOf } from './support/namespace';
import { startReceiver, type Receiver } from './support/receiver';
import { startRedisCluster } from './support/redis-cluster';
import { deleteKeys } from './support/redis';
import { startService, testPrefix, type RunningService } from './support/service';
import { e2eStore } from './support/stores';
import { until } from './support/wait';

/**
 * Acks over the whole run; SNAPCAT_REPLICA_ACKS sets it for every setup. The scenario (issue 17),
 * 20,000 on the SQLite store and one Redis, runs as it is; the Redis Cluster takes 6,000 with the same kills at
 * 40% and the same checks (20,000 there too took 95-147 s of a suite that must stay under 20 minutes on two
 * cores). On the ESDB protocol test server, a JavaScript gRPC server inside the test's own process, 2,000
 * (20,000 took 600-900 s; 4,000 took 77 s alone and 232 s beside the SQLite run of this file in CI).
 */
const acksFor = (redis: string) =>
  Number(
    process.env.SNAPCAT_REPLICA_ACKS ??
      (process.env.SNAPCAT_E2E_STORE === 'esdb' ? 2_000 : redis === 'one Redis' ? 20_000 : 6_000),
  );
const JOBS = 20;
const TASKS = ['t1', 't2', 't3', 't4', 't5'];

type Redis = { kind: 'one Redis' | 'a 3-master Redis Cluster'; url: string; stop(): Promise<void> };

async function jobEvents(store: EventStore, jobId: string): Promise<Event[]> {
  const events: Event[] = [];
  for await (const page of readStreamPages(store, jobStream(jobId))) events.push(...page.map(domainEvent));
  return events;
}

const redisSetups: [string, () => Promise<Redis>][] = [
  ['one Redis', async () => ({ kind: 'one Redis', url: 'redis://127.0.0.1:6379', stop: async () => {} })],
  [
    'a 3-master Redis Cluster',
    async () => ({ kind: 'a 3-master Redis Cluster', ...(await startRedisCluster(3)) }),
  ],
];

// On the EventStoreDB adapter (the e2e-esdb project), the scenario runs once, on the cluster: the suite's
// time stays within budget, and the store and the Redis that differ most from the defaults meet there.
describe.each(process.env.SNAPCAT_E2E_STORE === 'esdb' ? redisSetups.slice(1) : redisSetups)(
  '3 API and 2 worker processes on one store and %s',
  (name, openRedis) => {
    const ACKS = acksFor(name);
    let dir: string;
    let store: Awaited<ReturnType<typeof e2eStore>>;
    let redis: Redis;
    let receiver: Receiver | undefined;
    const running: RunningService[] = [];
    const prefix = testPrefix('replicas');
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'snapcat-replicas-'));
      store = await e2eStore(dir);
      redis = await openRedis();
    });
    afterAll(async () => {
      await Promise.all(running.map((s) => s.stop('SIGKILL')));
      await receiver?.close();
      // What beforeAll opened: it may have failed part way (`as` admits what the types do not).
      const opened = { redis: redis as Redis | undefined, store: store as typeof store | undefined };
      if (opened.redis?.kind === 'one Redis') await deleteKeys(prefix);
      await opened.redis?.stop();
      await opened.store?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it(`${ACKS} acks over all APIs, a worker and the active projector SIGKILLed mid-run: nothing lost, nothing twice`, async () => {
      const env = (role: string) => ({
        SNAPCAT_EVENT_STORE: store.connection,
        SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
        SNAPCAT_REDIS_URL: redis.url,
        SNAPCAT_QUEUE_PREFIX: prefix,
        SNAPCAT_ROLE: role,
        SNAPCAT_RETENTION_SWEEP: 'PT1S',
        SNAPCAT_SECRET_KEY: 'test-secret-key-of-at-least-32-characters',
        SNAPCAT_WEBHOOK_ALLOW_PRIVATE: 'true',
      });
      const apis = await Promise.all([0, 1, 2].map(() => startService(env('api'))));
      const workers = await Promise.all([0, 1].map(() => startService(env('workers'))));
      running.push(...apis, ...workers);
      const alive = new Set(apis);

      /** Sends to the APIs in turn, skipping dead ones; a request that fails in transit goes to the next. */
      let turn = 0;
      const send = async (method: string, path: string, body?: unknown) => {
        for (let attempt = 0; attempt < 20; attempt += 1) {
          const targets = [...alive];
          const api = targets[turn++ % targets.length]!;
          try {
            const res = await fetch(`${api.url}/api/v1${path}`, {
              method,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(body ?? {}),
            });
            const text = await res.text();
            if (res.status === 503) continue;
            return { status: res.status, body: text ? JSON.parse(text) : undefined };
          } catch {
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        throw new Error(`${method} ${path}: no API answered`);
      };

      const jobs = Array.from({ length: JOBS }, () => newJobId());
      const scheduled = [newJobId(), newJobId()];
      for (const jobId of [...jobs, ...scheduled]) {
        const res = await send('PUT', `/jobs/${jobId}`, { tasks: TASKS, checkpointing: { numRetained: 2 } });
        expect(res.status).toBe(201);
      }
      for (const jobId of scheduled) {
        expect((await send('PUT', `/jobs/${jobId}/savepoint-schedule`, { every: 'PT1S' })).status).toBe(200);
      }
      // Webhooks for the scheduled jobs' events: the dispatcher (leased) and the delivery workers on every
      // workers process, through the kill.
      receiver = await startReceiver();
      const subscribed = await send('POST', '/webhooks', { url: receiver.url, jobIds: scheduled });
      expect(subscribed.status).toBe(201);
      receiver.secrets.push(subscribed.body.secret);
      // What the subscribed jobs' streams held when it was created: only later events are owed to it.
      const reader = openEventStore(store.connection);
      const owedFrom = new Map<string, number>();
      for (const jobId of scheduled) owedFrom.set(jobId, (await jobEvents(reader, jobId)).length);
      await reader.close();

      const acked: string[] = [];
      let sent = 0;
      const checkpointsPerJob = Math.ceil(ACKS / (JOBS * TASKS.length));
      const load = jobs.map(async (jobId) => {
        for (let i = 0; i < checkpointsPerJob; i += 1) {
          // With a triggerId, as a client that retries must: a trigger applied by an API that died before
          // answering is found again, not triggered twice.
          const triggered = await send('POST', `/jobs/${jobId}/snapshots`, {
            kind: 'CHECKPOINT',
            triggerId: `c${i}`,
          });
          expect(triggered.status).toBe(202);
          const id = triggered.body.snapshotId as number;
          await Promise.all(
            TASKS.map(async (taskId) => {
              const res = await send('POST', `/jobs/${jobId}/snapshots/${id}/acks`, {
                taskId,
                stateSize: 10,
              });
              sent += 1;
              if (res.status >= 200 && res.status < 300) acked.push(`${jobId}/${id}/${taskId}`);
            }),
          );
        }
      });
      // Mid-run: SIGKILL a worker and the API process whose projector is the active one.
      const killed = (async () => {
        await until(async () => (sent >= ACKS * 0.4 ? true : undefined), 600_000, '40% of the acks');
        const projector = apis.find((api) => api.logs.some((l) => l.includes('projector active')));
        expect(projector).toBeDefined();
        alive.delete(projector!);
        await Promise.all([projector!.stop('SIGKILL'), workers[0]!.stop('SIGKILL')]);
      })();
      await Promise.all([...load, killed]);
      for (const jobId of scheduled) {
        expect((await send('DELETE', `/jobs/${jobId}/savepoint-schedule`)).status).toBe(200);
      }
      expect(acked.length).toBe(checkpointsPerJob * JOBS * TASKS.length);

      const log = openEventStore(store.connection);
      try {
        // Every 2xx ack is in the log.
        const logged = new Set<string>();
        for (const jobId of jobs) {
          for (const e of await jobEvents(log, jobId)) {
            if (e.type === 'TaskAcknowledged') logged.add(`${jobId}/${e.snapshotId}/${e.taskId}`);
          }
        }
        expect(acked.filter((a) => !logged.has(a))).toEqual([]);

        // Every discard requested completes, once (the surviving worker finishes what the killed one held).
        const discards = async () => {
          let requested = 0;
          const done = new Map<string, number>();
          for (const jobId of jobs) {
            for (const e of await jobEvents(log, jobId)) {
              if (e.type === 'SnapshotDiscardRequested') requested += 1;
              if (e.type === 'SnapshotDiscarded') {
                const key = `${jobId}/${e.snapshotId}`;
                done.set(key, (done.get(key) ?? 0) + 1);
              }
            }
          }
          return { requested, done };
        };
        const settled = await until(
          async () => {
            const d = await discards();
            return d.done.size === d.requested ? d : undefined;
          },
          // The one surviving worker works off the backlog the load left (each deletion recorded in the log):
          // a CI run on a loaded machine needed more than 60 s on the EventStoreDB variant.
          180_000,
          'every discard completed',
        );
        expect(settled.requested).toBeGreaterThan(JOBS * (checkpointsPerJob - 3));
        expect([...settled.done.values()].every((n) => n === 1)).toBe(true);

        // Every schedule slot between the first and the last fired exactly once across both workers, or is
        // recorded as skipped: the slots that the worker killed while holding a schedule's claim left unfired
        // are recorded as SLOT_MISSED when the next worker fires the newest one (libs/domain/src/decide.ts).
        for (const jobId of scheduled) {
          const slots = (await jobEvents(log, jobId)).flatMap((e) =>
            (e.type === 'SnapshotTriggered' && e.slot !== undefined) || e.type === 'PeriodicSavepointSkipped'
              ? [e.slot!]
              : [],
          );
          expect(new Set(slots).size).toBe(slots.length);
          const sorted = [...slots].sort((a, b) => a - b);
          for (let i = 1; i < sorted.length; i += 1) expect(sorted[i]! - sorted[i - 1]!).toBe(1000);
          expect(sorted.length).toBeGreaterThan(3);
        }

        // Every event of the subscribed jobs is delivered, signed (at least once: ids may repeat).
        const wanted: string[] = [];
        for (const jobId of scheduled) {
          const recorded = await log.readStream(`snapcat-job-${jobId}`);
          wanted.push(...recorded.slice(owedFrom.get(jobId)).map((r) => r.id));
        }
        expect(wanted.length).toBeGreaterThan(5);
        const delivered = () => new Set(receiver!.accepted().map((m) => m.id));
        await until(
          async () => (wanted.every((id) => delivered().has(id)) ? true : undefined),
          30_000,
          'every webhook delivered',
        );
        expect(receiver!.accepted().every((m) => m.verifiedWith.length === 1)).toBe(true);

        // The read model (projected by the standby that took over) equals a fold of the log.
        const namespace = await namespaceOf(store.connection, prefix);
        const client = connectRedis(redis.url);
        try {
          const [last] = await log.readAll({
            direction: 'backwards',
            maxCount: 1,
            filter: { streamNamePrefixes: ['snapcat-job-'] },
          });
          expect(await new ReadModel(client, namespace).waitFor(last!.position, 30_000)).toBe(true);
          expect(await verifyReadModel(log, client, namespace)).toEqual([]);
        } finally {
          client.disconnect();
        }
      } finally {
        await log.close();
      }
    }, 900_000);
  },
);
