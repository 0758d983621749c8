import { AggregateCache } from '../src';

class Slot {
  idle = true;
  constructor(readonly id: string) {}
}

describe('aggregate cache', () => {
  it('creates an entry once and answers the same one after', () => {
    const created: string[] = [];
    const cache = new AggregateCache(10, (id) => (created.push(id), new Slot(id)));
    const a = cache.use('a');
    expect(cache.use('a')).toBe(a);
    expect(created).toEqual(['a']);
    expect(cache.peek('a')).toBe(a);
    expect(cache.peek('b')).toBeUndefined();
  });

  it('drops the least recently used idle entries beyond its capacity', () => {
    const cache = new AggregateCache(3, (id) => new Slot(id));
    const a = cache.use('a');
    cache.use('b');
    cache.use('c');
    cache.use('a'); // now the most recent: b is the oldest
    cache.peek('b'); // a peek does not count as a use
    cache.use('d');
    expect(cache.size).toBe(3);
    expect(cache.peek('b')).toBeUndefined();
    expect(cache.peek('a')).toBe(a);
    cache.use('e'); // c is the oldest now
    expect(cache.peek('c')).toBeUndefined();
    expect(['a', 'd', 'e'].map((id) => cache.peek(id)?.id)).toEqual(['a', 'd', 'e']);
  });

  it('never drops a busy entry: it passes over it, and grows when every entry is busy', () => {
    const cache = new AggregateCache(2, (id) => new Slot(id));
    const a = cache.use('a');
    a.idle = false;
    cache.use('b');
    cache.use('c'); // a is the oldest but busy: b goes
    expect(cache.peek('a')).toBe(a);
    expect(cache.peek('b')).toBeUndefined();
    cache.peek('c')!.idle = false;
    cache.use('d');
    expect(cache.size).toBe(3);
    expect(['a', 'c', 'd'].every((id) => cache.peek(id))).toBe(true);
    // Once idle again, they go as new ones come.
    a.idle = true;
    cache.use('e');
    expect(cache.peek('a')).toBeUndefined();
  });
});
