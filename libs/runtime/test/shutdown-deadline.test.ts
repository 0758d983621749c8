import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * stopOnSignalOrStoreFailure's deadlines hold even when a step waits on a promise that never settles and
 * nothing else keeps node's event loop alive (a stream whose connection is gone: the HTTP server and Redis
 * already closed). Node ends a process whose loop is empty, at once and with exit code 0: the store was
 * then never closed and nothing said why. Run in a child process: it exits.
 */
function stopWith(steps: { drain: string; close: string }) {
  const script = [
    "const { stopOnSignalOrStoreFailure } = require('./libs/runtime/src/boot');",
    "const { createLogger } = require('./libs/runtime/src/log');",
    "const log = createLogger('info');",
    'const service = setInterval(() => {}, 1000); // what the drain closes',
    'const never = () => new Promise(() => {});',
    'stopOnSignalOrStoreFailure(log, {}, 4000, {',
    `  drain: async () => { clearInterval(service); ${steps.drain} },`,
    `  close: async () => { ${steps.close} log.info('store closed'); },`,
    '});',
    "setTimeout(() => process.kill(process.pid, 'SIGTERM'), 50);",
  ].join('\n');
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: join(__dirname, '..', '..', '..'),
    encoding: 'utf8',
    timeout: 20_000,
  });
  const lines = run.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: string; msg: string });
  return { run, lines, ms: Date.now() - started };
}

describe('a shutdown whose step never ends', () => {
  it('a drain that never settles is abandoned after the drain time: the store closed, "stopped", exit 0', () => {
    const { run, lines, ms } = stopWith({ drain: 'await never();', close: '' });
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe('');
    expect(lines.map((l) => l.msg)).toEqual([
      'stopping',
      'shutdown: stopped waiting for Redis and clients',
      'store closed',
      'stopped',
    ]);
    expect(run.status).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(2000); // the drain's time: the grace (4 s) less 2 s
  }, 30_000);

  it('a store close that never settles ends at the grace with exit code 1, said in the log', () => {
    const { run, lines } = stopWith({ drain: '', close: 'await never();' });
    expect(run.signal).toBeNull();
    expect(lines.map((l) => l.msg)).toEqual([
      'stopping',
      'shutdown: SNAPCAT_SHUTDOWN_GRACE ran out before the store was closed; exiting 1',
    ]);
    expect(lines[1]!.level).toBe('error');
    expect(run.status).toBe(1);
  }, 30_000);
});
