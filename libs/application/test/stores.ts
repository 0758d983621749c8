import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryEventStore, SqliteEventStore, type EventStore } from '@snapcat/event-store';

/** The real embedded adapters the parts' unit tests run on, each opened fresh and closed after. */
export const embeddedStores: { name: string; open(): { store: EventStore; close(): Promise<void> } }[] = [
  {
    name: 'memory',
    open: () => {
      const store = new MemoryEventStore();
      return { store, close: () => store.close() };
    },
  },
  {
    name: 'sqlite',
    open: () => {
      const dir = mkdtempSync(join(tmpdir(), 'snapcat-parts-'));
      const store = new SqliteEventStore(join(dir, 'e.db'));
      return {
        store,
        close: async () => {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];
