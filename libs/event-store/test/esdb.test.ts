import { EsdbEventStore } from '../src';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import { eventStoreContract } from './contract';

// The real @eventstore/db-client over gRPC, against the protocol test server in test/esdb.
eventStoreContract('EventStoreDB (protocol test server)', async () => {
  const server = new EsdbTestServer();
  await server.start();
  const store = new EsdbEventStore(server.connectionString);
  const other = new EsdbEventStore(server.connectionString);
  return {
    store,
    other,
    async cleanup() {
      await store.close();
      await other.close();
      await server.stop();
    },
  };
});
