/**
 * The load generator, in its own process so it never shares a CPU budget with the code under test in the
 * same event loop. Reads a JSON job from argv, runs autocannon, prints one JSON result line.
 */
import autocannon, { type Request } from 'autocannon';

interface LoadJob {
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

const job = JSON.parse(process.argv[2]!) as LoadJob;
let counter = 0;

function nextBody(): { path: string; body: string } {
  if (job.body.kind === 'fixed') return { path: job.path, body: JSON.stringify(job.body.json) };
  const { paths, batch } = job.body;
  const i = counter++;
  const path = paths[i % paths.length]!;
  const round = Math.floor(i / paths.length);
  const acks = Array.from({ length: batch }, (_, k) => ({
    taskId: `t${round * batch + k}`,
    stateSize: 1024,
  }));
  return {
    path,
    body: JSON.stringify(batch === 1 ? acks[0] : acks),
  };
}

const instance = autocannon(
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
  (error, result) => {
    if (error) {
      process.stderr.write(String(error));
      process.exit(1);
    }
    process.stdout.write(
      `${JSON.stringify({
        requests: result.requests.total,
        rps: result.requests.average,
        non2xx: result.non2xx,
        errors: result.errors,
        p50: result.latency.p50,
        p99: result.latency.p99,
      })}\n`,
    );
  },
);
process.on('SIGINT', () => instance.stop());
