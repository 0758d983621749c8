/**
 * Benchmark #16: managed jobs mirrored from one simulated Flink cluster (issue 19, decision 0019). The
 * Flink test server runs in this process; snapcat runs as two processes on one SQLite store, the API
 * (`SNAPCAT_ROLE=api`, where the jobs are registered) and the workers (`npm run start:workers`, which
 * poll Flink), so that the workers' resident memory is their own.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@snapcat/event-store';
import { FlinkTestServer } from '../../test/flink/server';
import { startService, testPrefix, type RunningService } from '../../test/support/service';
import { deleteKeys } from '../../test/support/redis';
import { percentile } from './stats';

export interface MirrorOptions {
  jobs: number;
  /** Flink's checkpoint interval of every job. */
  checkpointMs: number;
  /** SNAPCAT_FLINK_POLL, in ms. */
  pollMs: number;
  /** The steady window measured, after every job was mirrored once and one more poll interval. */
  windowMs: number;
}

export interface MirrorFigures {
  jobs: number;
  /**
   * Requests snapcat sent to Flink per second over the window, and what the design promises: one per job per
   * poll (its checkpoint history) and one per cluster (every job's status, GET /jobs/overview).
   */
  sentPerSecond: number;
  idealPerSecond: number;
  /** The most requests in any 1-second bucket of the window, and in any 100 ms bucket (as a rate per second). */
  maxPerSecond: number;
  max100msPerSecond: number;
  /** Polls (checkpoint-history requests) per job in the window: the fewest and the most of any job. */
  pollsPerJob: { min: number; max: number; expected: number };
  /**
   * Within one mirror, from its checkpoint-history request to its job-details request (what the workers did
   * between the two: the answer parsed, RecordFlinkCheckpoints decided and appended), ms: p50 and p99.
   */
  mirrorStep: { p50: number; p99: number };
  /** Time between a job's consecutive polls in the window, ms: the shortest, median and longest. */
  pollGap: { min: number; p50: number; max: number };
  /** Answers from Flink that were not 2xx, and requests of other operations than the two of a mirror. */
  non2xx: number;
  otherRequests: number;
  /** Checkpoints Flink completed in the window, and how many snapcat recorded as completed. */
  completedInFlink: number;
  recorded: number;
  /** From Flink's completion (its latest acknowledgement) to snapcat's SnapshotCompleted event, ms. */
  lagP50: number;
  lagP99: number;
  lagMax: number;
  /** Resident memory of the workers process: before any job was registered, at its peak, at the end. */
  rssBefore: number;
  rssPeak: number;
  /** At the window's start (every job mirrored once) and its end: what a minute of mirroring adds. */
  rssStart: number;
  rssEnd: number;
  /** CPU seconds per second over the window: the workers process, and this process (the Flink server). */
  workersCpu: number;
  flinkCpu: number;
  load: number;
  violations: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function residentBytes(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
}

/** CPU seconds a process has used (user + system), from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function http(url: string, method: string, path: string, body: unknown) {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
}

/** One run: a fresh Flink test server, store and pair of processes. */
export async function benchFlinkMirror(dir: string, o: MirrorOptions): Promise<MirrorFigures> {
  const runDir = join(dir, `mirror-${randomBytes(3).toString('hex')}`);
  const root = join(runDir, 'root');
  const flink = new FlinkTestServer();
  await flink.start();
  const prefix = testPrefix('bench-flink');
  const env = {
    SNAPCAT_EVENT_STORE: `sqlite:${join(runDir, 'events.db')}`,
    SNAPCAT_STORAGE_ROOTS: root,
    SNAPCAT_QUEUE_PREFIX: prefix,
    SNAPCAT_FLINK_POLL: `PT${o.pollMs / 1000}S`,
    SNAPCAT_SECRET_KEY: 'b'.repeat(64),
  };
  const services: RunningService[] = [];
  try {
    const api = await startService({ ...env, SNAPCAT_ROLE: 'api', SNAPCAT_PROJECTOR: 'off' }, undefined, [], {
      compiled: true,
    });
    services.push(api);
    const workers = await startService(env, 'services/workers/src/main.ts', [], { compiled: true });
    services.push(workers);
    const pid = workers.child.pid!;
    await http(api.url, 'PUT', '/clusters/bench', { restUrl: flink.url });
    // The workers at rest with the cluster registered and no job: the baseline of their memory.
    const before: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      await sleep(1000);
      before.push(residentBytes(pid));
    }
    // Flink job ids are random (JobID()); each job's checkpoint timer starts at its own moment, spread over
    // one interval, as in a cluster whose jobs were submitted at different times.
    const ids = Array.from({ length: o.jobs }, () => randomBytes(16).toString('hex'));
    const storage = { checkpointDir: join(root, 'checkpoints'), savepointDir: join(root, 'savepoints') };
    for (const jobId of ids) {
      flink.addJob(jobId, { checkpointDir: storage.checkpointDir, checkpointIntervalMs: o.checkpointMs });
      await sleep(o.checkpointMs / o.jobs);
    }
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(
        ids
          .slice(i, i + 20)
          .map((jobId) =>
            http(api.url, 'PUT', `/jobs/${jobId}`, { source: { type: 'flink', cluster: 'bench' }, storage }),
          ),
      );
    }
    // Every job mirrored once (its checkpoint history asked for), then one more poll.
    const registered = Date.now();
    for (;;) {
      const seen = new Set(
        flink.requests.filter((r) => r.operationId === 'getCheckpointingStatistics').map((r) => r.jobId),
      );
      if (seen.size >= ids.length) break;
      if (Date.now() - registered > 120_000)
        throw new Error(`only ${seen.size} of ${ids.length} jobs mirrored within 120 s of registering`);
      await sleep(250);
    }
    await sleep(o.pollMs);
    const from = Date.now();
    const to = from + o.windowMs;
    const cpuFrom = cpuSeconds(pid);
    const ownCpuFrom = process.cpuUsage();
    const samples: number[] = [];
    // Flink's history keeps a job's last 10 checkpoints: the completions are collected as the window goes.
    const completions = new Map<string, number>();
    const collect = () => {
      for (const jobId of ids) {
        for (const c of flink.job(jobId).history) {
          if (c.status !== 'COMPLETED' || c.checkpointType !== 'CHECKPOINT') continue;
          if (c.latestAckTimestamp >= from && c.latestAckTimestamp < to)
            completions.set(`${jobId}/${c.id}`, c.latestAckTimestamp);
        }
      }
    };
    while (Date.now() < to) {
      await sleep(1000);
      samples.push(residentBytes(pid));
      collect();
    }
    const workersCpu = (cpuSeconds(pid) - cpuFrom) / (o.windowMs / 1000);
    const own = process.cpuUsage(ownCpuFrom);
    const flinkCpu = (own.user + own.system) / 1e6 / (o.windowMs / 1000);
    const load = loadavg()[0]!;
    const rssPeak = residentBytes(pid, 'VmHWM');
    collect();
    // The mirror's time to record the window's last checkpoints: one more poll, and some.
    await sleep(o.pollMs + 2000);
    for (const s of services.splice(0)) await s.stop('SIGTERM');

    const inWindow = flink.requests.filter((r) => r.time >= from && r.time < to);
    const mirrorOps = new Set(['getCheckpointingStatistics', 'getJobsOverview']);
    const buckets = new Map<number, number>();
    const fine = new Map<number, number>();
    const polls = new Map<string, number>(ids.map((id) => [id, 0]));
    const lastPoll = new Map<string, number>();
    const gaps: number[] = [];
    const steps: number[] = [];
    const askedHistory = new Map<string, number>();
    for (const r of inWindow) {
      const s = Math.floor((r.time - from) / 1000);
      buckets.set(s, (buckets.get(s) ?? 0) + 1);
      const f = Math.floor((r.time - from) / 100);
      fine.set(f, (fine.get(f) ?? 0) + 1);
      if (r.operationId === 'getCheckpointingStatistics' && r.jobId) {
        polls.set(r.jobId, (polls.get(r.jobId) ?? 0) + 1);
        const last = lastPoll.get(r.jobId);
        if (last !== undefined) gaps.push(r.time - last);
        lastPoll.set(r.jobId, r.time);
        askedHistory.set(r.jobId, r.time);
      }
      // A mirror's step: its history request to the next request of the same job (a savepoint, a config).
      if (r.operationId !== 'getCheckpointingStatistics' && r.jobId && askedHistory.has(r.jobId)) {
        steps.push(r.time - askedHistory.get(r.jobId)!);
        askedHistory.delete(r.jobId);
      }
    }
    const pollCounts = [...polls.values()];

    // When snapcat recorded each checkpoint: the SnapshotCompleted event's occurredAt (the moment the
    // workers decided it), matched to Flink's id through the SnapshotTriggered event.
    const store = new SqliteEventStore(join(runDir, 'events.db'));
    const flinkIdOf = new Map<string, number>();
    const lags: number[] = [];
    let recorded = 0;
    let after;
    for (;;) {
      const page = await store.readAll({ ...(after ? { after } : {}), maxCount: 5000 });
      for (const e of page) {
        const data = e.data as {
          type: string;
          jobId: string;
          snapshotId?: number;
          flinkCheckpointId?: number;
          occurredAt: string;
        };
        if (data.type === 'SnapshotTriggered' && data.flinkCheckpointId !== undefined)
          flinkIdOf.set(`${data.jobId}/${data.snapshotId}`, data.flinkCheckpointId);
        if (data.type === 'SnapshotCompleted') {
          const key = `${data.jobId}/${flinkIdOf.get(`${data.jobId}/${data.snapshotId}`)}`;
          const completedAt = completions.get(key);
          if (completedAt !== undefined) {
            lags.push(Date.parse(data.occurredAt) - completedAt);
            recorded += 1;
          }
        }
      }
      if (page.length < 5000) break;
      after = page[page.length - 1]!.position;
    }
    await store.close();
    return {
      jobs: o.jobs,
      sentPerSecond: inWindow.filter((r) => mirrorOps.has(r.operationId ?? '')).length / (o.windowMs / 1000),
      idealPerSecond: ((o.jobs + 1) * 1000) / o.pollMs,
      maxPerSecond: Math.max(...buckets.values()),
      max100msPerSecond: Math.max(...fine.values()) * 10,
      pollsPerJob: {
        min: Math.min(...pollCounts),
        max: Math.max(...pollCounts),
        expected: o.windowMs / o.pollMs,
      },
      mirrorStep: { p50: percentile(steps, 0.5), p99: percentile(steps, 0.99) },
      pollGap: { min: percentile(gaps, 0), p50: percentile(gaps, 0.5), max: percentile(gaps, 1) },
      non2xx: inWindow.filter((r) => (r.status ?? 0) >= 300).length,
      otherRequests: inWindow.filter((r) => !mirrorOps.has(r.operationId ?? '')).length,
      completedInFlink: completions.size,
      recorded,
      lagP50: percentile(lags, 0.5),
      lagP99: percentile(lags, 0.99),
      lagMax: percentile(lags, 1),
      rssBefore: percentile(before, 0.5),
      rssPeak,
      rssStart: percentile(samples.slice(0, 5), 0.5),
      rssEnd: percentile(samples.slice(-5), 0.5),
      workersCpu,
      flinkCpu,
      load,
      violations: flink.violations.length,
    };
  } finally {
    for (const s of services) await s.stop('SIGKILL');
    await flink.stop();
    await deleteKeys(prefix);
    rmSync(runDir, { recursive: true, force: true });
  }
}
