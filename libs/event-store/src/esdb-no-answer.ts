/**
 * A node that sent nothing for `ms`: it stopped answering, or the network drops its packets. The client has
 * no deadline of its own where it matters most: on a reconnection it asks the node's features without one,
 * and every call waits behind that (a TCP proxy dropping the packets held reads and appends for minutes).
 */
export class NoAnswerError extends Error {
  constructor(readonly ms: number) {
    super(`no answer from EventStoreDB within ${ms} ms`);
    this.name = 'NoAnswerError';
  }
}

/** `call`'s outcome, or NoAnswerError once `ms` pass first (the call is left to settle unheard). */
export function answeredWithin<T>(call: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(ms)), ms);
  });
  call.catch(() => undefined);
  return Promise.race([call, silence]).finally(() => clearTimeout(timer));
}

/** What tells a read's watchdog that the node spoke without an item (a filtered read's checkpoints). */
export class Hearing {
  heardAt = Date.now();
  heard(): void {
    this.heardAt = Date.now();
  }
}

/**
 * The items of a streaming read, or NoAnswerError once the node has said nothing for `ms` while the read
 * waits for its next item (the caller's own time between items does not count): a watchdog then gives up on
 * the wait at once and cancels the read (`cancel`, not awaited: a cancel can itself wait on the connection).
 * One timer a read, not one an item (a replay reads millions).
 */
export async function* itemsWithin<T>(
  read: AsyncIterable<T>,
  ms: number,
  cancel: () => Promise<unknown>,
  hearing = new Hearing(),
): AsyncGenerator<T> {
  const items = read[Symbol.asyncIterator]();
  let waiting = false;
  let giveUp: (error: NoAnswerError) => void = () => undefined;
  const watchdog = setInterval(
    () => {
      if (!waiting || Date.now() - hearing.heardAt < ms) return;
      clearInterval(watchdog);
      giveUp(new NoAnswerError(ms));
      void cancel().catch(() => undefined);
    },
    Math.max(10, Math.floor(ms / 4)),
  );
  let finished = false; // the read ended, or the node went silent: nothing left to return
  try {
    for (;;) {
      hearing.heard();
      waiting = true;
      // A promise of its own per wait: racing one long-lived promise would keep a handler per item on it.
      const next = await new Promise<IteratorResult<T>>((resolve, reject) => {
        giveUp = reject;
        items.next().then(resolve, reject);
      });
      waiting = false;
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } catch (error) {
    if (error instanceof NoAnswerError) finished = true;
    throw error;
  } finally {
    clearInterval(watchdog);
    if (!finished) await items.return?.(); // the caller broke off, or threw
  }
}
