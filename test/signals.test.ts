import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { deleteKeys } from './support/redis';
import { REPO_ROOT, testPrefix } from './support/service';
import { until } from './support/wait';

describe('signals: what a supervisor or `docker stop` sends to `npm start`', () => {
  let dir: string;
  const prefix = testPrefix('signals');
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-signals-'));
  });
  afterAll(async () => {
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGTERM to the npm process stops the service gracefully: stopped logged, port closed, store closed', async () => {
    const npm = spawn('npm', ['start'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        SNAPCAT_PORT: '0',
        SNAPCAT_HOST: '127.0.0.1',
        SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
        SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
        SNAPCAT_QUEUE_PREFIX: prefix,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: whatever it leaves behind can be killed after the test
    });
    const lines: string[] = [];
    createInterface({ input: npm.stdout! }).on('line', (line) => lines.push(line));
    const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
    try {
      await stopsOnSigterm();
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL'); // anything of the group still running (it should be none)
      } catch {
        // the whole group is gone
      }
    }

    async function stopsOnSigterm() {
      const port = await until(
        async () => {
          const listening = lines.find((l) => l.includes('"msg":"listening"'));
          return listening ? (JSON.parse(listening) as { port: number }).port : undefined;
        },
        30_000,
        'the service listening',
      );
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

      npm.kill('SIGTERM');
      await exited;
      await until(
        async () => (lines.some((l) => l.includes('"msg":"stopped"')) ? true : undefined),
        10_000,
        'the service logging stopped',
      );
      // Nothing is left serving: the port refuses connections, and the SQLite store was closed cleanly.
      await until(
        async () =>
          await fetch(`http://127.0.0.1:${port}/healthz`).then(
            () => undefined,
            () => true,
          ),
        5000,
        'the port closed',
      );
      expect(existsSync(join(dir, 'events.db-wal'))).toBe(false);
    }
  }, 60_000);
});
