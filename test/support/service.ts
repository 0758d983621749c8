import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { deleteKeys } from './redis';

export const REPO_ROOT = join(__dirname, '..', '..');

export interface RunningService {
  url: string;
  port: number;
  child: ChildProcess;
  logs: string[];
  /** Sends the signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A Redis key prefix of its own for each test, so parallel suites never share queues or leases. */
export const testPrefix = (name: string) => `snapcat-test-${name}-${process.pid}-${Date.now().toString(36)}`;

/**
 * The environment `npm start` gives the service (package.json's `${NODE_ENV:-production}` and
 * `${MALLOC_ARENA_MAX:-2}`): the environment's values, else production mode and two malloc arenas.
 */
export const npmStartEnv = (): Record<string, string> => ({
  NODE_ENV: process.env.NODE_ENV || 'production',
  MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX || '2',
});

/**
 * Starts snapcat as a child process, as `npm start` does (API and workers), and waits until it is up.
 * `entry` picks `services/workers/src/main.ts` for a workers-only process; `nodeFlags` go to its node.
 * The entry's compiled build, run as `npm start` runs it (jest's globalSetup, test/support/build-once.js, made
 * it current), or with `compiled: false` from the sources through tsx.
 */
export async function startService(
  env: Record<string, string>,
  entry = 'services/server/src/main.ts',
  nodeFlags: string[] = [],
  { compiled = true }: { compiled?: boolean } = {},
): Promise<RunningService> {
  // A prefix this helper made up is its to clean when the service stops; a given one is the caller's.
  const ownPrefix = env.SNAPCAT_QUEUE_PREFIX === undefined ? testPrefix('svc') : undefined;
  // e.g. SNAPCAT_CHILD_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile a benchmark's services
  // (node refuses --cpu-prof in NODE_OPTIONS).
  const flags = [...nodeFlags, ...(process.env.SNAPCAT_CHILD_NODE_FLAGS?.split(' ').filter(Boolean) ?? [])];
  // The compiled build is where `npm start` looks for it: SNAPCAT_DIST_DIR, else dist/.
  const dist = env.SNAPCAT_DIST_DIR ?? process.env.SNAPCAT_DIST_DIR ?? 'dist';
  const run = compiled
    ? ['--enable-source-maps', join(dist, entry.replace(/\.ts$/, '.js'))]
    : ['--import', 'tsx', entry];
  const child = spawn(process.execPath, [...flags, ...run], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      ...(compiled ? npmStartEnv() : {}),
      SNAPCAT_PORT: '0',
      SNAPCAT_HOST: '127.0.0.1',
      ...(ownPrefix ? { SNAPCAT_QUEUE_PREFIX: ownPrefix } : {}),
      // Never the checkout's ./data/snapshots: a test's store would claim it (decision 0044), and `npm start`
      // on ./data/snapcat.db would then be refused.
      SNAPCAT_STORAGE_ROOTS: mkdtempSync(join(tmpdir(), 'snapcat-roots-')),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { logs, exited, port } = await untilListening(child);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    logs,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      if (ownPrefix && !env.SNAPCAT_REDIS_URL) await deleteKeys(ownPrefix);
      return code;
    },
  };
}

/**
 * How a start that should be refused ended: the error's message (exit code, stderr and the log), or
 * 'it started' for one that came up, stopped at once so that the caller's expectation fails rather than hangs.
 */
export function startOutcome(starting: Promise<RunningService>): Promise<string> {
  return starting.then(
    async (service) => {
      await service.stop('SIGKILL');
      return 'it started';
    },
    (error: Error) => error.message,
  );
}

/**
 * Collects a service's log lines (stdout) and stderr, and resolves once it logs `listening` with its port (0 for
 * a process without HTTP). A process that misses the start is killed, so that it neither outlives the test nor
 * keeps jest waiting.
 */
export async function untilListening(
  child: ChildProcess,
  ms = 30_000,
  kill: () => void = () => child.kill('SIGKILL'),
) {
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`service did not start in ${ms / 1000} s:\n${logs.join('')}`));
    }, ms);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code}:\n${logs.join('')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line);
      try {
        const logged = JSON.parse(line) as { msg?: string; port?: number; role?: string };
        if (logged.msg === 'listening' && (logged.port || logged.role)) {
          clearTimeout(timer);
          resolve(logged.port ?? 0);
        }
      } catch {
        // not a log line
      }
    });
  });
  return { logs, exited, port };
}

export interface NpmService extends RunningService {
  /** npm's pid, which is also the process group of everything it started. */
  group: number;
  /** SIGKILL to whatever of the group is left (after a failed test). */
  killGroup(): void;
}

/**
 * `npm <args>` (`['start']`, `['run', 'dev']`) in the repository, as an operator or a supervisor runs it, in a
 * process group of its own (see `processGroup`); resolves once the service logs `listening`. `stop` signals
 * npm alone, which passes the signal on, and resolves to npm's exit code. Loopback, port 0, Redis at
 * 127.0.0.1:6379: `env` adds the event store, the key prefix and the rest.
 */
export async function startNpm(
  args: string[],
  env: Record<string, string>,
  ms = 60_000,
): Promise<NpmService> {
  const child = spawn('npm', args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      SNAPCAT_PORT: '0',
      SNAPCAT_HOST: '127.0.0.1',
      SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the whole group is gone
    }
  };
  const { logs, exited, port } = await untilListening(child, ms, killGroup);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    logs,
    group: child.pid!,
    killGroup,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * A directory of the test's own for the compiled build (SNAPCAT_DIST_DIR), so that no test rebuilds or runs the
 * repository's dist/ under another one. Inside the repository, where the bundles' npm packages resolve; named
 * `dist` inside a dot-directory, so that git, ESLint and Prettier ignore it. `remove` deletes both.
 */
export function ownDistDir(): { dist: string; remove(): void } {
  const parent = mkdtempSync(join(REPO_ROOT, '.test-build-'));
  return { dist: join(parent, 'dist'), remove: () => rmSync(parent, { recursive: true, force: true }) };
}

/** The live processes of a process group, and their resident memory (from /proc: Linux). */
export function processGroup(group: number): { pid: number; command: string; rssBytes: number }[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so split after its last ')'.
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(pgrp) !== group) return [];
        // A zombie (Z) or dying (X) process has exited and holds no memory or port: only its parent has not reaped
        // it yet (an exited build step, say). It is not a process left running, so it is not counted.
        if (state === 'Z' || state === 'X') return [];
        const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
        const command = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
        return [{ pid: Number(name), command, rssBytes: rss ? Number(rss[1]) * 1024 : 0 }];
      } catch {
        return []; // gone meanwhile
      }
    });
}

/** A small JSON client for the REST API (with a bearer token when given). */
export function client(baseUrl: string, token?: string) {
  const auth: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}/api/v1${path}`, {
      method,
      headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    get: (path: string) => call('GET', path),
    put: (path: string, body: unknown) => call('PUT', path, body),
    post: (path: string, body: unknown = {}) => call('POST', path, body),
    patch: (path: string, body: unknown) => call('PATCH', path, body),
    delete: (path: string) => call('DELETE', path),
  };
}

/**
 * Runs the operator CLI (`npm run snapcat -- …`) as a child process. Asynchronous on purpose: a protocol
 * test server living in this process must keep answering while the CLI talks to it.
 */
export function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli/src/main.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * Decision 0042: each path, named alone by an acknowledgement of a new job's pending checkpoint, is refused
 * (400 `within-storage-roots` naming the handle) and records nothing.
 */
export async function expectAcksRefusedOutsideRoots(
  api: ReturnType<typeof client>,
  jobId: string,
  paths: readonly string[],
): Promise<void> {
  expect((await api.put(`/jobs/${jobId}`, { tasks: ['a'] })).status).toBe(201);
  expect((await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(202);
  for (const path of paths) {
    const ack = await api.post(`/jobs/${jobId}/snapshots/1/acks`, {
      taskId: 'a',
      stateHandles: [{ path, sizeBytes: 7 }],
    });
    expect([path, ack.status, ack.body.errors?.[0]]).toEqual([
      path,
      400,
      expect.objectContaining({ field: 'body.stateHandles[0].path', rule: 'within-storage-roots' }),
    ]);
  }
  const shown = await api.get(`/jobs/${jobId}/snapshots/1`);
  expect(shown.body).toMatchObject({ status: 'PENDING', acknowledgedTasks: 0 });
}
