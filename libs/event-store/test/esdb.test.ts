import { EsdbEventStore } from '../src';
import { EsdbTestServer } from '../../../test/esdb/test-server';
import { eventStoreContract } from './contract';

// The real @eventstore/db-client over gRPC, against the protocol test server in test/esdb, secure as a
// production node is (TLS with a private CA, the `admin` user's credentials, KurrentDB's access control):
// once the way it appends against a real server (ServerFeatures advertises BatchAppend), once over plain
// Append (a server without ServerFeatures). Each run checks afterwards that its appends took the path it
// names.
for (const path of ['batchAppend', 'append'] as const) {
  eventStoreContract(`EventStoreDB (protocol test server, TLS and credentials, ${path})`, async () => {
    const server = new EsdbTestServer(undefined, { serverFeatures: path === 'batchAppend', secure: true });
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
        const wrong = path === 'batchAppend' ? 'append' : 'batchAppend';
        expect(server.calls[wrong]).toBe(0);
        expect(server.calls[path]).toBeGreaterThan(0);
        expect(server.denied).toEqual([]); // admin may do all the port needs, $all included
        expect(server.refusedLogins).toBe(0);
      },
    };
  });
}
