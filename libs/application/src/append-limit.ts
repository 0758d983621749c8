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
      const heaviest = heaviestField(event);
      if (heaviest && (!field || heaviest.bytes > field.bytes)) field = heaviest;
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

/** The field of `value` whose JSON weighs most. */
function heaviestField(value: object): { name: string; bytes: number } | undefined {
  let field: { name: string; bytes: number } | undefined;
  for (const [name, v] of Object.entries(value)) {
    const bytes = jsonBytes(v);
    if (!field || bytes > field.bytes) field = { name, bytes };
  }
  return field;
}

/**
 * Room an event needs beyond the fields its command carries (its type, times and the state's own fields)
 * and its metadata (request id, caller, schema version): a command whose JSON is within this of the limit
 * may be over it once decided.
 */
export const EVENT_ALLOWANCE_BYTES = 4096;

/**
 * The first command of a request of many that cannot fit in one append on its own, found before any of the
 * request is written: the bus splits such a request's commands across appends when together they are over
 * the limit, but never one command, so one that is over alone would fail after the others were written.
 * `bytes` is the command's JSON and the allowance.
 */
export function commandOverLimit(
  stream: string,
  commands: readonly object[],
  limit: number,
): AppendTooLargeError | undefined {
  for (const [index, command] of commands.entries()) {
    const bytes = jsonBytes(command) + EVENT_ALLOWANCE_BYTES;
    if (bytes > limit) {
      return new AppendTooLargeError(stream, limit, {
        bytes,
        command: index,
        field: heaviestField(command)?.name,
      });
    }
  }
  return undefined;
}
