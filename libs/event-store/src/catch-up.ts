import { EventEmitter } from 'node:events';
import {
  comparePositions,
  type EventStore,
  type EventHandler,
  type Position,
  type LogSubscribeOptions,
  type LogSubscription,
} from './port';

const BATCH = 500;

/**
 * A catch-up subscription for stores that can read $all: read after the last delivered position until a
 * read comes back short, then wait for an append signal (or the poll interval, for writers in other
 * processes) and read again. One loop per subscription; the handler is awaited before the next event.
 * With a filter, each read is preceded by a read of the log's last position: once a filtered read comes
 * back short, every matching event up to that position was delivered, so the subscription moves on to it
 * (the next read does not scan again what the filter skipped) and reports it to `onCheckpoint` when it is
 * past the last event delivered.
 */
export function catchUpSubscription(
  store: Pick<EventStore, 'readAll' | 'lastPosition'>,
  appended: EventEmitter,
  options: LogSubscribeOptions,
  handler: EventHandler,
  onError: ((error: unknown) => void) | undefined,
  pollMs: number,
): LogSubscription {
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

  let caughtUp = false;
  const loop = (async () => {
    while (!closed) {
      dirty = false;
      // Read first: a log position no later than the end the filtered read below scans to.
      const head = options.filter ? await store.lastPosition() : undefined;
      const batch = await store.readAll({
        after: position,
        maxCount: BATCH,
        ...(options.filter ? { filter: options.filter } : {}),
      });
      for (const event of batch) {
        if (closed) return;
        await handler(event);
        position = event.position;
      }
      if (batch.length < BATCH && head && comparePositions(head, position) > 0 && !closed) {
        position = head;
        await options.onCheckpoint?.(head);
      }
      if (batch.length < BATCH && !caughtUp && !closed) {
        caughtUp = true;
        await options.onCaughtUp?.();
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
