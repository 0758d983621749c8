/**
 * #17: the start of `npm start` (issue 22): from spawning it to the first 200 of `/readyz`, and the resident
 * memory of its whole process group (npm and the service: `/proc/<pid>/status` VmRSS, summed) `idleMs` after
 * that. Beside it in every round, in turn: `npm run dev` (the sources through tsx, what `npm start` ran before
 * the compiled build), and a bare express server answering `/readyz`, started with `node -e` (a floor). Each
 * start is fresh: a new SQLite store in a directory of its own, Redis at 127.0.0.1:6379 under a key prefix of
 * its own (deleted afterwards), port 0, the defaults otherwise.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteKeys } from '../../test/support/redis';
import { REPO_ROOT, processGroup, startNpm, testPrefix, untilListening } from '../../test/support/service';

export type StartKind = 'compiled' | 'tsx' | 'floor';

export interface StartFigures {
  /** From the spawn to the first 200 of /readyz. */
  readyMs: number;
  /** Resident bytes of the whole process group, and of the service's own process, after the idle wait. */
  groupRss: number;
  serviceRss: number;
  /**
   * The same at rest, `restMs` after ready (when asked): V8 gives back its young generation after ~20-30 s
   * without work, and the SQLite store its writer threads after 30-60 s without a write.
   */
  rest?: { groupRss: number; serviceRss: number };
}

const FLOOR = `const app = require('express')();
app.get('/readyz', (req, res) => res.send('ready'));
const server = app.listen(0, '127.0.0.1', () =>
  console.log(JSON.stringify({ msg: 'listening', port: server.address().port })));`;

/** Starts one kind, in a process group of its own; `stop` ends it (SIGTERM) and resolves to its exit code. */
async function launch(kind: StartKind, dir: string, prefix: string) {
  if (kind !== 'floor') {
    return startNpm(kind === 'compiled' ? ['start'] : ['run', 'dev'], {
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
    });
  }
  const child = spawn(process.execPath, ['-e', FLOOR], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const { exited, port } = await untilListening(child);
  return {
    url: `http://127.0.0.1:${port}`,
    group: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** One fresh start of `kind`, measured, then stopped; its store and Redis keys deleted. */
export async function measureStart(kind: StartKind, idleMs: number, restMs?: number): Promise<StartFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-bench-start-'));
  const prefix = testPrefix(`start-${kind}`);
  const started = performance.now();
  const service = await launch(kind, dir, prefix);
  try {
    while ((await fetch(`${service.url}/readyz`).then((r) => r.status)) !== 200) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const readyMs = performance.now() - started;
    const resident = () => {
      const group = processGroup(service.group);
      const own = group.find((p) => !p.command.startsWith('npm'));
      return { groupRss: group.reduce((sum, p) => sum + p.rssBytes, 0), serviceRss: own?.rssBytes ?? NaN };
    };
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const idle = resident();
    if (restMs === undefined) return { readyMs, ...idle };
    await new Promise((resolve) => setTimeout(resolve, restMs - idleMs));
    return { readyMs, ...idle, rest: resident() };
  } finally {
    const code = await service.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
    if (code !== 0 && kind !== 'floor') throw new Error(`${kind} start exited ${code}`);
  }
}

/**
 * `rounds` rounds of the three kinds, interleaved (each round in another order), after one unmeasured start
 * of each (the page cache, tsx's cache). dist/ is current: `npm run bench` builds it before any benchmark.
 */
export async function benchStartup(rounds: number, idleMs: number, restMs?: number) {
  const kinds: StartKind[] = ['tsx', 'compiled', 'floor'];
  for (const kind of kinds) await measureStart(kind, 0);
  const figures: Record<StartKind, StartFigures[]> = { tsx: [], compiled: [], floor: [] };
  for (let round = 0; round < rounds; round += 1) {
    for (let k = 0; k < kinds.length; k += 1) {
      const kind = kinds[(round + k) % kinds.length]!;
      // At rest: the compiled build only (what `npm start` runs), so that the run stays short.
      const figure = await measureStart(kind, idleMs, kind === 'compiled' ? restMs : undefined);
      figures[kind].push(figure);
      const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;
      const rest = figure.rest
        ? `; at rest group ${mb(figure.rest.groupRss)} (node ${mb(figure.rest.serviceRss)})`
        : '';
      process.stderr.write(
        `start ${round + 1} ${kind}: ready ${Math.round(figure.readyMs)} ms, group ${mb(figure.groupRss)} (node ${mb(figure.serviceRss)})${rest}\n`,
      );
    }
  }
  return figures;
}
