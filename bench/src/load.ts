/**
 * The load generator, in its own process so it never shares a CPU budget with the code under test in the
 * same event loop. Started once per benchmark run: reads JSON jobs from stdin, one per line, runs each in
 * turn and prints one JSON result line per job.
 *
 * Throughput (no rate) is autocannon's closed loop. Latency at a fixed rate is an open loop of our own
 * (decision 0010): autocannon's rate limit lets each connection send back to back until its share of the
 * second is spent, then idle, and corrects for coordinated omission with an expected interval of 1 ms
 * whatever the rate, so one 12 ms answer counts as 12 samples. Here requests leave on an even schedule
 * and each latency is measured from the moment the request was due, so a stall of the service counts
 * against every request it delayed (what wrk2 does).
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import autocannon, { type Request } from 'autocannon';
import { quantile } from './stats';

export interface LoadJob {
  url: string;
  /** Throughput only: the load is spread over these (replicas of one service), connections shared out. */
  urls?: string[];
  /** With urls and acks: each replica gets its own share of the paths (jobs), as a router by job would. */
  partition?: boolean;
  path: string;
  method?: 'POST' | 'GET';
  durationSec: number;
  connections: number;
  /** Request bodies are generated: acks over jobs x tasks, or a fixed body. */
  body: { kind: 'acks'; paths: string[]; batch: number } | { kind: 'fixed'; json: unknown };
  /** Requests per second for the whole run (latency at a fixed rate); omitted: as fast as possible. */
  rate?: number;
  /** Sent with every request (an Authorization header, say). */
  headers?: Record<string, string>;
}

export interface LoadResult {
  requests: number;
  rps: number;
  non2xx: number;
  errors: number;
  p50: number;
  p99: number;
}

/** Bodies of one job: acks go round the paths, each round to the next tasks, so every ack is new. */
function bodies(job: LoadJob): () => { path: string; body: string } {
  let counter = 0;
  return () => {
    if (job.body.kind === 'fixed') return { path: job.path, body: JSON.stringify(job.body.json) };
    const { paths, batch } = job.body;
    const i = counter++;
    const path = paths[i % paths.length]!;
    const round = Math.floor(i / paths.length);
    const acks = Array.from({ length: batch }, (_, k) => ({
      taskId: `t${round * batch + k}`,
      stateSize: 1024,
    }));
    return { path, body: JSON.stringify(batch === 1 ? acks[0] : acks) };
  };
}

function run(job: LoadJob): Promise<LoadResult> {
  if (job.rate) return openLoop(job, job.rate);
  if (!job.urls) return closedLoop(job, job.url, job.connections, bodies(job));
  return spread(job, job.urls);
}

/**
 * One closed loop per replica at the same time, drawing from one body sequence (every ack stays new), or
 * with `partition`, each from its own share of the paths.
 */
async function spread(job: LoadJob, urls: string[]): Promise<LoadResult> {
  const shared = bodies(job);
  const { body } = job;
  const nextBody = (k: number) =>
    job.partition && body.kind === 'acks'
      ? bodies({ ...job, body: { ...body, paths: body.paths.filter((_, i) => i % urls.length === k) } })
      : shared;
  const share = Math.max(1, Math.floor(job.connections / urls.length));
  const results = await Promise.all(urls.map((url, k) => closedLoop(job, url, share, nextBody(k))));
  const sum = (pick: (r: LoadResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  return {
    requests: sum((r) => r.requests),
    rps: sum((r) => r.rps),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    p50: Math.max(...results.map((r) => r.p50)),
    p99: Math.max(...results.map((r) => r.p99)),
  };
}

function closedLoop(
  job: LoadJob,
  url: string,
  connections: number,
  nextBody: () => { path: string; body: string },
): Promise<LoadResult> {
  return new Promise((resolve, reject) =>
    autocannon(
      {
        url,
        connections,
        duration: job.durationSec,
        ...(job.rate ? { overallRate: job.rate } : {}),
        requests: [
          {
            method: job.method ?? 'POST',
            headers: { 'content-type': 'application/json', ...job.headers },
            setupRequest: (request: Request): Request => ({
              ...request,
              ...(job.method === 'GET' ? {} : nextBody()),
            }),
          },
        ],
      },
      (error, result) =>
        error
          ? reject(error)
          : resolve({
              requests: result.requests.total,
              rps: result.requests.average,
              non2xx: result.non2xx,
              errors: result.errors,
              p50: result.latency.p50,
              p99: result.latency.p99,
            }),
    ),
  );
}

/** `rate` requests a second on an even schedule over at most `connections` kept-alive connections. */
function openLoop(job: LoadJob, rate: number): Promise<LoadResult> {
  const nextBody = bodies(job);
  const target = new URL(job.url);
  const agent = new Agent({ keepAlive: true, maxSockets: job.connections });
  const total = Math.round(rate * job.durationSec);
  const interval = 1000 / rate;
  const latencies: number[] = [];
  let sent = 0;
  let settled = 0;
  let non2xx = 0;
  let errors = 0;
  const started = performance.now();
  return new Promise((resolve) => {
    const finish = () => {
      agent.destroy();
      latencies.sort((a, b) => a - b);
      const at = (q: number) => quantile(latencies, q) ?? 0;
      resolve({
        requests: latencies.length,
        rps: latencies.length / ((performance.now() - started) / 1000),
        non2xx,
        errors,
        p50: at(0.5),
        p99: at(0.99),
      });
    };
    const settle = () => {
      settled += 1;
      if (settled === total) finish();
    };
    const send = (due: number) => {
      const { path, body } = job.method === 'GET' ? { path: job.path, body: undefined } : nextBody();
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path,
          method: job.method ?? 'POST',
          headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...job.headers },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) {
              latencies.push(performance.now() - due);
            } else {
              non2xx += 1;
            }
            settle();
          });
        },
      );
      req.on('error', () => {
        errors += 1;
        settle();
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && started + sent * interval <= now) {
        send(started + sent * interval);
        sent += 1;
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
}

async function main() {
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const result = await run(JSON.parse(line) as LoadJob);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`load generator failed: ${String(error)}\n`);
  process.exit(1);
});
