import { AppendTooLargeError, type NewEvent } from '@snapcat/event-store';

/** An append's size as EventStoreDB counts it against MaxAppendSize: data + metadata + 2 × type length. */
export function appendBytes(events: readonly NewEvent[]): number {
  let bytes = 0;
  for (const e of events) {
    bytes += Buffer.byteLength(JSON.stringify(e.data)) + 2 * e.type.length;
    if (e.metadata) bytes += Buffer.byteLength(JSON.stringify(e.metadata));
  }
  return bytes;
}

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '');

/**
 * One request's events over the store's limit: refused before the store. When one of its commands alone
 * is over, the error names that command and the field of its events that weighs most, if the command has
 * a field of that name (what the caller sent: an acknowledgement's `stateHandles`, a registration's
 * `tasks`); otherwise the request as a whole is too large.
 */
export function appendTooLarge(
  stream: string,
  commands: readonly object[],
  outcomes: readonly { events: readonly { type: string }[] }[],
  limit: number,
): AppendTooLargeError {
  let total = 0;
  let largest: { command: number; bytes: number; field?: string } | undefined;
  commands.forEach((command, index) => {
    let bytes = 0;
    let field: { name: string; bytes: number } | undefined;
    for (const event of outcomes[index]!.events) {
      bytes += jsonBytes(event) + 2 * event.type.length;
      for (const [name, value] of Object.entries(event)) {
        const size = jsonBytes(value);
        if (!field || size > field.bytes) field = { name, bytes: size };
      }
    }
    total += bytes;
    if (bytes > limit && (!largest || bytes > largest.bytes)) {
      largest = { command: index, bytes, field: field && field.name in command ? field.name : undefined };
    }
  });
  return new AppendTooLargeError(stream, limit, {
    bytes: largest?.bytes ?? total,
    ...(largest ? { command: largest.command, field: largest.field } : {}),
  });
}
