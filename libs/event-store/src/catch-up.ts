import { EventEmitter } from 'node:events';
import type {
  EventHandler,
  Position,
  ReadAllOptions,
  RecordedEvent,
  SubscribeOptions,
  Subscription,
} from './port';

const BATCH = 500;

/**
 * A catch-up subscription for stores that can read $all: read after the last delivered position until a
 * read comes back short, then wait for an append signal (or the poll interval, for writers in other
 * processes) and read again. One loop per subscription; the handler is awaited before the next event.
 */
export function catchUpSubscription(
  readAll: (options: ReadAllOptions) => Promise<RecordedEvent[]>,
  appended: EventEmitter,
  options: SubscribeOptions,
  handler: EventHandler,
  onError: ((error: unknown) => void) | undefined,
  pollMs: number,
): Subscription {
  let position: Position = options.from;
  let closed = false;
  let wake: (() => void) | null = null;
  // Set by an append that lands while a read is in flight, so its signal is not lost.
  let dirty = false;
  const signal = () => {
    dirty = true;
    wake?.();
  };
  appended.on('appended', signal);

  const idle = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, pollMs);
      function done() {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = done;
    });

  const loop = (async () => {
    while (!closed) {
      dirty = false;
      const batch = await readAll({
        after: position,
        maxCount: BATCH,
        ...(options.filter ? { filter: options.filter } : {}),
      });
      for (const event of batch) {
        if (closed) return;
        await handler(event);
        position = event.position;
      }
      if (batch.length < BATCH && !closed && !dirty) await idle();
    }
  })().catch((error: unknown) => {
    if (!closed) onError?.(error);
  });

  return {
    async close() {
      closed = true;
      appended.off('appended', signal);
      wake?.();
      await loop;
    },
  };
}
