import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '../src';
import { eventStoreContract } from './contract';

eventStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-sqlite-'));
  const file = join(dir, 'events.db');
  // Two connections to one file: the race is decided by SQLite, not by one process's event loop.
  const store = new SqliteEventStore(file, { pollMs: 50 });
  const other = new SqliteEventStore(file, { pollMs: 50 });
  return {
    store,
    other,
    async cleanup() {
      await store.close();
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
