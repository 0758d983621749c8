/**
 * The load generator, in its own process so it never shares a CPU budget with the code under test in the
 * same event loop. Started once per benchmark run: reads JSON jobs from stdin, one per line, runs each
 * with autocannon in turn and prints one JSON result line per job.
 */
import { createInterface } from 'node:readline';
import autocannon, { type Request } from 'autocannon';

export interface LoadJob {
  url: string;
  path: string;
  method?: 'POST' | 'GET';
  durationSec: number;
  connections: number;
  /** Request bodies are generated: acks over jobs x tasks, or a fixed body. */
  body: { kind: 'acks'; paths: string[]; batch: number } | { kind: 'fixed'; json: unknown };
  /** Requests per second for the whole run (latency at a fixed rate); omitted: as fast as possible. */
  rate?: number;
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
  const nextBody = bodies(job);
  return new Promise((resolve, reject) =>
    autocannon(
      {
        url: job.url,
        connections: job.connections,
        duration: job.durationSec,
        ...(job.rate ? { overallRate: job.rate } : {}),
        requests: [
          {
            method: job.method ?? 'POST',
            headers: { 'content-type': 'application/json' },
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
