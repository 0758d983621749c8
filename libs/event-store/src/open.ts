import { EsdbEventStore } from './esdb';
import { MemoryEventStore } from './memory';
import type { EventStore } from './port';
import { SqliteEventStore } from './sqlite';

/** Opens the store a connection string names: `memory:`, `sqlite:<file>`, `esdb://...`. */
export function openEventStore(connection: string): EventStore {
  if (connection === 'memory:') return new MemoryEventStore();
  if (connection.startsWith('sqlite:')) return new SqliteEventStore(connection.slice('sqlite:'.length));
  if (/^esdb(\+discover)?:\/\//.test(connection)) return new EsdbEventStore(connection);
  throw new Error('unsupported event store: use memory:, sqlite:<file> or esdb://host:2113?tls=false');
}
