import { isEventStoreConnection } from './connection';
import { EsdbEventStore } from './esdb';
import { MemoryEventStore } from './memory';
import type { EventStore } from './port';
import { SqliteEventStore } from './sqlite';

/**
 * Opens the store a connection string names: `memory:`, `sqlite:<file>`, or EventStoreDB/KurrentDB by
 * `esdb://`, `esdb+discover://`, `kurrentdb://` or `kurrentdb+discover://` (connection.ts; the scheme is mapped
 * for the installed client, which takes esdb only).
 */
export function openEventStore(connection: string): EventStore {
  if (connection === 'memory:') return new MemoryEventStore();
  if (connection.startsWith('sqlite:')) return new SqliteEventStore(connection.slice('sqlite:'.length));
  if (isEventStoreConnection(connection)) return new EsdbEventStore(connection);
  throw new Error(
    'unsupported event store: use memory:, sqlite:<file>, esdb://host:2113 (esdb+discover://, kurrentdb://)',
  );
}
