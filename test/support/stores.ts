import { join } from 'node:path';
import { EsdbTestServer } from '../esdb/test-server';

export type E2eStoreKind = 'sqlite' | 'memory' | 'esdb';

/**
 * The event store the end-to-end suites run on, picked by SNAPCAT_E2E_STORE (sqlite by default). For
 * esdb the protocol test server runs in the test process, so it outlives the service it serves; it is
 * secure as a production node is: TLS with a private CA (`tlsCAFile`), the `admin` user's credentials,
 * KurrentDB's access control.
 */
export async function e2eStore(dir: string) {
  const kind = (process.env.SNAPCAT_E2E_STORE ?? 'sqlite') as E2eStoreKind;
  if (kind === 'esdb') {
    const server = new EsdbTestServer(undefined, { secure: true });
    await server.start();
    return { kind, durable: true, connection: server.connectionString, server, close: () => server.stop() };
  }
  if (kind === 'memory') return { kind, durable: false, connection: 'memory:', close: async () => {} };
  if (kind === 'sqlite') {
    return { kind, durable: true, connection: `sqlite:${join(dir, 'events.db')}`, close: async () => {} };
  }
  throw new Error(`SNAPCAT_E2E_STORE must be sqlite, memory or esdb, not ${String(kind)}`);
}
