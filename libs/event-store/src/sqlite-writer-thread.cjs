'use strict';
// The SQLite store's writer thread: its own connection (WAL, synchronous=FULL), one transaction per batch the
// main thread sends, each append in a savepoint of its own, so that one that fails fails alone. The protocol
// and why this is plain JavaScript (no transform in any way snapcat runs: tsx, jest, the esbuild bundle) are
// in sqlite-writer.ts. The expected-revision and retried-append rules are those of port.ts's
// `checkExpected` and memory.ts's `retriedAppend`, which this thread cannot import; the adapter contract
// suite (test/contract.ts) holds both to the same answers.
const { parentPort, workerData } = require('node:worker_threads');

const settings = new Int32Array(workerData.settings);
let db;
try {
  const Database = require(workerData.driver);
  db = new Database(workerData.file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma(workerData.cacheSize); // sqlite-page-cache.ts
  // A thread of its own checkpoints (sqlite-checkpointer.ts); `checkpoint-itself` turns this back on.
  db.pragma('wal_autocheckpoint = 0');
} finally {
  // What the connection really runs with, for the store's durability(), which waits on it.
  Atomics.store(
    settings,
    1,
    db ? workerData.journalModes.indexOf(db.pragma('journal_mode', { simple: true })) : -1,
  );
  Atomics.store(settings, 2, db ? db.pragma('synchronous', { simple: true }) : -1);
  Atomics.store(settings, 3, db ? db.pragma('cache_size', { simple: true }) : 0);
  Atomics.store(settings, 0, db ? 1 : 2);
  Atomics.notify(settings, 0);
}

const statements = {
  current: db.prepare('SELECT MAX(revision) AS revision FROM events WHERE stream_id = ?'),
  byId: db.prepare('SELECT stream_id, revision, position FROM events WHERE event_id = ?'),
  insert: db.prepare(
    'INSERT INTO events (stream_id, revision, event_id, type, data, metadata, created) VALUES (?, ?, ?, ?, ?, ?, ?)',
  ),
  maxCount: db.prepare('SELECT max_count FROM stream_max_counts WHERE stream_id = ?'),
  setMaxCount: db.prepare(
    'INSERT INTO stream_max_counts (stream_id, max_count) VALUES (?, ?) ' +
      'ON CONFLICT (stream_id) DO UPDATE SET max_count = excluded.max_count',
  ),
  trim: db.prepare('DELETE FROM events WHERE stream_id = ? AND revision <= ?'),
};
/** Each stream's max count as last read or set here (0: none), so an append does not look it up again. */
const maxCounts = new Map();

/** A wrong expected revision, in the fields WrongExpectedVersionError is rebuilt from on the main thread. */
function wrongExpected(streamId, expected, current) {
  const error = new Error(
    `stream ${streamId}: expected revision ${String(expected)}, actual ${String(current)}`,
  );
  return Object.assign(error, {
    name: 'WrongExpectedVersionError',
    streamId,
    expected,
    actual: current >= 0n ? current : 'no_stream',
  });
}

function checkExpected(streamId, expected, current) {
  const exists = current >= 0n;
  const ok =
    expected === 'any' ||
    (expected === 'no_stream' && !exists) ||
    (expected === 'stream_exists' && exists) ||
    (typeof expected === 'bigint' && expected === current);
  if (!ok) throw wrongExpected(streamId, expected, current);
}

/** The original result when these events are already the stream's, in this order (a retried append). */
function retriedAppend(streamId, events) {
  let first;
  let last;
  for (const [i, event] of events.entries()) {
    const row = statements.byId.get(event.id);
    if (!row || row.stream_id !== streamId) return null;
    first ??= row;
    if (row.revision !== first.revision + i) return null;
    last = row;
  }
  if (!last) return null;
  const position = BigInt(last.position);
  return { nextExpectedRevision: BigInt(last.revision), position: { commit: position, prepare: position } };
}

function trim(streamId, last) {
  let kept = maxCounts.get(streamId);
  if (kept === undefined) {
    kept = statements.maxCount.get(streamId)?.max_count ?? 0;
    maxCounts.set(streamId, kept);
  }
  if (kept > 0 && last >= BigInt(kept)) statements.trim.run(streamId, Number(last) - kept);
}

function append({ streamId, events, expected }) {
  const retried = retriedAppend(streamId, events);
  if (retried) return retried;
  const current = BigInt(statements.current.get(streamId)?.revision ?? -1);
  checkExpected(streamId, expected, current);
  const created = Date.now();
  let revision = current;
  let position = 0n;
  for (const event of events) {
    revision += 1n;
    const info = statements.insert.run(
      streamId,
      revision,
      event.id,
      event.type,
      event.data,
      event.metadata,
      created,
    );
    position = BigInt(info.lastInsertRowid);
  }
  trim(streamId, revision);
  return { nextExpectedRevision: revision, position: { commit: position, prepare: position } };
}

function setMaxCount({ streamId, maxCount }) {
  statements.setMaxCount.run(streamId, maxCount);
  maxCounts.set(streamId, maxCount);
  const last = statements.current.get(streamId)?.revision;
  if (last != null) trim(streamId, BigInt(last));
  return null;
}

/** An error as plain fields: structured cloning keeps neither its class nor its own properties. */
function wireError(error) {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const { name, message, code, streamId, expected, actual } = error;
  return { name, message, code, streamId, expected, actual };
}

// A nested transaction is a savepoint: a failure rolls back that operation only.
const inSavepoint = db.transaction((op) => (op.kind === 'append' ? append(op) : setMaxCount(op)));
const batch = db.transaction((ops) =>
  ops.map((op) => {
    try {
      return { ok: inSavepoint(op) };
    } catch (error) {
      // Some errors (a full disk as a large append spills its pages, I/O) roll back the whole transaction:
      // the batch is gone, and the operations after this one would each commit on their own. Fail it whole.
      if (!db.inTransaction) throw error;
      return { error: wireError(error) };
    }
  }),
);

parentPort.on('message', (message) => {
  if (message.kind === 'commit') {
    let outcomes;
    try {
      outcomes = batch.immediate(message.ops);
    } catch (error) {
      // BEGIN or COMMIT itself failed (busy, disk full): nothing of the batch is stored.
      parentPort.postMessage({ kind: 'failed', error: wireError(error) });
      return;
    }
    parentPort.postMessage({ kind: 'committed', outcomes });
  } else if (message.kind === 'checkpoint-itself') {
    db.pragma('wal_autocheckpoint = 1000');
  } else if (message.kind === 'close') {
    db.close();
    parentPort.close();
  }
});
