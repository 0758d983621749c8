import { Hearing, NoAnswerError, answeredWithin, itemsWithin } from '../src/esdb-no-answer';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A read yielding `count` items `gapMs` apart, which records whether it was cancelled and returned. */
function slowRead(count: number, gapMs: number) {
  const seen = { cancelled: false, returned: false };
  async function* items() {
    try {
      for (let i = 0; i < count; i += 1) {
        await sleep(gapMs);
        yield i;
      }
    } finally {
      seen.returned = true;
    }
  }
  return { read: items(), seen, cancel: async () => void (seen.cancelled = true) };
}

/** A read that never yields, and whose cancel does not end it either (a cancel waiting on the connection). */
function deafRead() {
  const seen = { cancelled: false };
  const read: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<number>>(() => undefined) }),
  };
  return { read, seen, cancel: () => new Promise<void>(() => void (seen.cancelled = true)) };
}

const collect = async <T>(items: AsyncIterable<T>, eachMs = 0) => {
  const out: T[] = [];
  for await (const item of items) {
    out.push(item);
    if (eachMs) await sleep(eachMs);
  }
  return out;
};

describe('itemsWithin: a streaming read bounded by the node’s silence', () => {
  it('passes every item through while they come within the bound', async () => {
    const { read, seen, cancel } = slowRead(5, 20);
    expect(await collect(itemsWithin(read, 200, cancel))).toEqual([0, 1, 2, 3, 4]);
    expect(seen.cancelled).toBe(false);
  });

  it('the caller’s own time between items is no silence of the node’s', async () => {
    const { read, seen, cancel } = slowRead(3, 10);
    expect(await collect(itemsWithin(read, 100, cancel), 300)).toEqual([0, 1, 2]);
    expect(seen.cancelled).toBe(false);
  });

  it('fails with NoAnswerError within the bound, and cancels, even when the cancel never ends the read', async () => {
    const { read, seen, cancel } = deafRead();
    const started = Date.now();
    await expect(collect(itemsWithin(read, 100, cancel))).rejects.toBeInstanceOf(NoAnswerError);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(seen.cancelled).toBe(true);
  });

  it('a word without an item (a checkpoint, heard) keeps the read going', async () => {
    const hearing = new Hearing();
    const { read, cancel } = slowRead(2, 400);
    const speaking = setInterval(() => hearing.heard(), 50);
    try {
      expect(await collect(itemsWithin(read, 150, cancel, hearing))).toEqual([0, 1]);
    } finally {
      clearInterval(speaking);
    }
  });

  it('a caller that breaks off or throws ends the read (return), without a cancel', async () => {
    const broken = slowRead(10, 5);
    for await (const item of itemsWithin(broken.read, 200, broken.cancel)) if (item === 1) break;
    expect(broken.seen).toEqual({ cancelled: false, returned: true });
    const thrown = slowRead(10, 5);
    const failing = (async () => {
      for await (const item of itemsWithin(thrown.read, 200, thrown.cancel))
        if (item === 1) throw new Error('caller');
    })();
    await expect(failing).rejects.toThrow('caller');
    expect(thrown.seen).toEqual({ cancelled: false, returned: true });
  });
});

describe('answeredWithin', () => {
  it('answers the call’s outcome, or NoAnswerError once the bound passes (the late outcome unheard)', async () => {
    await expect(
      answeredWithin(
        sleep(10).then(() => 'ok'),
        200,
      ),
    ).resolves.toBe('ok');
    await expect(answeredWithin(Promise.reject(new Error('refused')), 200)).rejects.toThrow('refused');
    const late = sleep(300).then(() => {
      throw new Error('too late to be heard');
    });
    await expect(answeredWithin(late, 50)).rejects.toBeInstanceOf(NoAnswerError);
    await sleep(300); // the late rejection settles with no unhandled rejection
  });
});
