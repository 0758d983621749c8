import { MemoryEventStore, namedEventId, newEventId } from '../src';

describe('newEventId', () => {
  it('is a UUID of version 7 whose order is the order the ids were made in, within a millisecond too', () => {
    // Made far faster than one a millisecond: uuid's v7 keeps them ordered with its counter.
    const ids = Array.from({ length: 20_000 }, () => newEventId());
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('starts with the time it was made (ms), so ids made later sort after those of an earlier process', () => {
    const before = Date.now();
    const id = newEventId();
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now());
  });
});

describe('namedEventId', () => {
  it('gives one UUID (version 5) a name, another for another name; the store takes its second append as a retry', async () => {
    const id = namedEventId('webhook-delivery-failed:d-1:1');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(namedEventId('webhook-delivery-failed:d-1:1')).toBe(id);
    expect(namedEventId('webhook-delivery-failed:d-1:2')).not.toBe(id);
    const store = new MemoryEventStore();
    const event = { id, type: 'WebhookDeliveryFailed', data: { n: 1 } };
    await store.append('s', [event], 'any');
    await store.append('s', [{ ...event, data: { n: 2 } }], 'any');
    expect((await store.readStream('s')).map((e) => e.data)).toEqual([{ n: 1 }]);
  });
});
