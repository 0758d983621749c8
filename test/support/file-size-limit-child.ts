/**
 * Run by test/store-disk-full.test.ts as a process of its own (`node --import tsx`): puts a file-size limit on
 * itself (RLIMIT_FSIZE, `prlimit`), fills an SQLite store at argv[2] past it, asks the API's problem
 * responder, lifts the limit, appends again, and prints what it saw as JSON (FileSizeLimitRun).
 */
import { execFileSync } from 'node:child_process';
import request from 'supertest';
import { SqliteEventStore, type StoreFullError } from '@snapcat/event-store';
import { appendRoute, appendUntilRefused, type FileSizeLimitRun } from './full-disk';

async function main(file: string, limitBytes: string): Promise<FileSizeLimitRun> {
  const prlimit = (...args: string[]) =>
    execFileSync('prlimit', ['--pid', String(process.pid), '--fsize', ...args], { encoding: 'utf8' }).trim();
  const original = prlimit('--raw', '--noheadings', '--output=SOFT');
  // Node ignores SIGXFSZ (the write fails with EFBIG); a listener keeps any library's handler from raising it.
  process.on('SIGXFSZ', () => undefined);
  const store = new SqliteEventStore(file);
  try {
    prlimit(`--fsize=${limitBytes}:`);
    const { appended, refusals } = await appendUntilRefused(store);
    const reason = (refusals[0] as PromiseRejectedResult | undefined)?.reason as StoreFullError | undefined;
    const stored = (await store.readAll({ maxCount: 100_000 })).length;
    // Larger than the limit: a checkpoint since the refusal may have reset the WAL, where a smaller one fits.
    const { app, logged } = appendRoute(store, 2 * Number(limitBytes));
    const refused = await request(app).post('/append');
    prlimit(`--fsize=${original}:`);
    const lifted = await request(app).post('/append');
    return {
      appended,
      refusal: {
        name: reason?.name ?? 'none',
        sqliteCode: reason?.sqliteCode,
        message: reason?.message ?? '',
      },
      stored,
      api: { status: refused.status, retryAfter: refused.headers['retry-after'], body: refused.body, logged },
      afterLift: { status: lifted.status, stored: (await store.readAll({ maxCount: 100_000 })).length },
    };
  } finally {
    await store.close();
  }
}

void main(process.argv[2]!, process.argv[3]!).then((run) => process.stdout.write(JSON.stringify(run)));
