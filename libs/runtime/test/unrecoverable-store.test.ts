import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * stopOnSignalOrStoreFailure: a store that fails beyond repair stops the process as a signal would (drain,
 * close), but with exit code 1, so that its supervisor starts a new one. Run in a child process: it exits.
 */
describe('a process whose event store fails beyond repair', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-unrecoverable-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stops on its own when the SQLite writer thread dies: drained, store closed, exit code 1, said in the log', () => {
    const script = [
      "const { InstrumentedEventStore, SqliteEventStore } = require('./libs/event-store/src');",
      "const { stopOnSignalOrStoreFailure } = require('./libs/runtime/src/boot');",
      "const { createLogger } = require('./libs/runtime/src/log');",
      "const log = createLogger('info');",
      `const sqlite = new SqliteEventStore(${JSON.stringify(join(dir, 'events.db'))});`,
      'const store = new InstrumentedEventStore(sqlite); // as openCore wraps it',
      'stopOnSignalOrStoreFailure(log, store, 10000, {',
      "  drain: async () => log.info('drained'),",
      "  close: async () => { await store.close(); log.info('store closed'); },",
      '});',
      'setInterval(() => {}, 1000); // a service: nothing else would ever end it',
      "store.append('s', [{ id: 'e1', type: 'E', data: {} }], 'no_stream')",
      '  .then(() => sqlite.writerThread().terminate());',
    ].join('\n');
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: join(__dirname, '..', '..', '..'),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.signal).toBeNull(); // not killed by the timeout: it stopped by itself
    expect(run.stderr).toBe('');
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: string; msg: string; failure?: string; error?: string });
    expect(lines.map((l) => l.msg)).toEqual([
      'the event store cannot go on: stopping with exit code 1 so that a new process takes over',
      'stopping',
      'drained',
      'store closed',
      'stopped',
    ]);
    expect(lines[0]).toMatchObject({ level: 'error', error: expect.stringMatching(/writer thread stopped/) });
    expect(lines[1]!.failure).toMatch(/writer thread stopped/);
    expect(run.status).toBe(1);
  }, 30_000);
});
