import { MemoryEventStore } from '../src';
import { eventStoreContract } from './contract';

eventStoreContract('memory', async () => {
  const store = new MemoryEventStore();
  return { store, cleanup: () => store.close() };
});
