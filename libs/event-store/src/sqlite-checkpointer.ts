import { Worker } from 'node:worker_threads';
import { PAGE_CACHE_KIB, cacheSizePragma } from './sqlite-page-cache';

/**
 * Copies the SQLite write-ahead log into the database file from a thread of its own. SQLite's automatic
 * checkpoint runs inside whichever commit crosses the WAL's threshold, on the committing thread: measured
 * here, ~8 ms of the event loop every ~130 ms at 2,000 acknowledgements a second, on top of the commit's
 * own fsync. A PASSIVE checkpoint from another connection takes no write lock, so commits go on meanwhile.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma(workerData.cacheSize);
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ failed: String(error && error.message ? error.message : error) });
  }
}, workerData.everyMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Stops the thread after its current checkpoint. */
  stop(): Promise<void>;
}

/** Starts the thread; `onFailure` hears why it stopped checkpointing (the caller should checkpoint itself). */
export function startCheckpointer(
  file: string,
  everyMs: number,
  onFailure: (reason: string) => void,
): Checkpointer {
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: {
      driver: require.resolve('better-sqlite3'),
      file,
      everyMs,
      cacheSize: cacheSizePragma(PAGE_CACHE_KIB.checkpointer),
    },
    execArgv: [],
  });
  worker.unref(); // never what keeps a process alive
  let failed = false;
  const fail = (reason: string) => {
    if (failed) return;
    failed = true;
    onFailure(reason);
  };
  worker.on('message', (message: { failed: string }) => fail(message.failed));
  worker.on('error', (error) => fail(error.message));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      worker.ref(); // until it exits: a process with nothing else to do must not exit in the middle of stop
      worker.postMessage('stop');
      await exited;
    },
  };
}
