import { openEventStore, storeIdentity } from '@snapcat/event-store';
import { storeNamespace } from '@snapcat/runtime';

/** Where a service on `connection` keeps its Redis keys: the prefix and the store's id (decision 0012). */
export async function namespaceOf(connection: string, prefix: string): Promise<string> {
  const store = openEventStore(connection);
  try {
    return storeNamespace(prefix, await storeIdentity(store));
  } finally {
    await store.close();
  }
}
