import { randomUUID } from 'node:crypto';
import { jobStream, recentJobEventPosition } from '../src';
import { embeddedStores } from './stores';

const event = (type: string) => ({ id: randomUUID(), type, data: {}, metadata: {} });

describe.each(embeddedStores)('the newest job event’s position ($name)', ({ open }) => {
  it('is found past the newest events when other streams wrote more since: a deletion waits for it (decision 0047)', async () => {
    const { store, close } = open();
    try {
      expect(await recentJobEventPosition(store)).toBeUndefined(); // an empty log
      await store.append('other-app', [event('Noise')], 'no_stream');
      expect(await recentJobEventPosition(store)).toBeUndefined(); // no job event at all
      const { position } = await store.append(
        jobStream('j'.repeat(32)),
        [event('JobRegistered')],
        'no_stream',
      );
      expect(await recentJobEventPosition(store)).toEqual(position);
      // Another application sharing the server writes past the look-back.
      await store.append(
        'other-app',
        Array.from({ length: 70 }, () => event('Noise')),
        'any',
      );
      expect(await recentJobEventPosition(store, 64)).toEqual(position);
    } finally {
      await close();
    }
  });
});
