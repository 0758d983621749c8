export * from './port';
export * from './pages';
export { namedEventId, newEventId } from './event-id';
export { MemoryEventStore } from './memory';
export { SqliteEventStore } from './sqlite';
export { openEventStore } from './open';
export {
  InstrumentedEventStore,
  type EventStoreCounters,
  type InstrumentOptions,
  type NewerEvent,
} from './instrumented';
export { EsdbEventStore } from './esdb';
export { storeIdentity, STORE_ID, STORE_IDENTITY_STREAM } from './identity';
export {
  ConnectionStringError,
  EVENT_STORE_SCHEME,
  connectionUser,
  isEventStoreConnection,
  parseEventStoreConnection,
  redactConnection,
  toClientConnectionString,
  type EventStoreConnection,
  type NodePreference,
} from './connection';
