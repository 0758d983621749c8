import { MemoryEventStore } from './memory';
import type { EventStore } from './port';
import { SqliteEventStore } from './sqlite';

/** Opens the store a connection string names: `memory:`, `sqlite:<file>`. */
export function openEventStore(connection: string): EventStore {
  if (connection === 'memory:') return new MemoryEventStore();
  if (connection.startsWith('sqlite:')) return new SqliteEventStore(connection.slice('sqlite:'.length));
  throw new Error(`unsupported event store ${connection}: use memory: or sqlite:<file>`);
}
