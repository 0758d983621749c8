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

/**
 * The items of a streaming read, or NoAnswerError once none has come for `ms`: a watchdog then cancels the
 * read (`cancel`), which ends the wait. One timer a read, not one an item (a replay reads millions).
 */
export async function* itemsWithin<T>(
  read: AsyncIterable<T>,
  ms: number,
  cancel: () => Promise<unknown>,
): AsyncGenerator<T> {
  let heardAt = Date.now();
  let silent = false;
  const watchdog = setInterval(
    () => {
      if (Date.now() - heardAt < ms) return;
      silent = true;
      clearInterval(watchdog);
      void cancel().catch(() => undefined);
    },
    Math.max(10, Math.floor(ms / 4)),
  );
  try {
    for await (const item of read) {
      heardAt = Date.now();
      yield item;
      heardAt = Date.now(); // the time the caller took is no silence of the node's
    }
  } catch (error) {
    if (silent) throw new NoAnswerError(ms);
    throw error;
  } finally {
    clearInterval(watchdog);
  }
  if (silent) throw new NoAnswerError(ms);
}
