/**
 * The first line of the stack trace a failure's Java serialization carries: for a `failure-cause` that holds
 * only `serialized-throwable`, the one property Flink's published REST description gives it. Flink's own
 * serializer (`SerializedThrowableSerializer`) writes `class` and `stack-trace` beside it, which are read
 * first; a server that follows the description alone does not.
 *
 * The bytes are an `org.apache.flink.util.SerializedThrowable` in Java's serialization stream format. Its
 * object fields are written in the order of their names: `fullStringifiedStackTrace` (the original
 * exception's printed stack trace, its causes' included), then `originalErrorClassName`, each a string record
 * (TC_STRING 0x74 with a 2-byte length, or TC_LONGSTRING 0x7C with an 8-byte one), and a printed stack trace
 * starts with the class's name. So a trace is a record directly followed by a class name it starts with:
 * an 0x74 byte inside some text (the letter `t`) read as a record almost never is. The causes' own traces are
 * such pairs too, and shorter: the longest trace is the failure's. Undefined when none is found (not base64,
 * not that class, truncated).
 */
export function serializedThrowableHeadline(base64: string): string | undefined {
  const bytes = Buffer.from(base64, 'base64');
  let longest: { start: number; end: number } | undefined;
  for (let i = 0; i < bytes.length; i++) {
    const trace = stringRecordAt(bytes, i);
    if (!trace || trace.end - trace.start <= (longest ? longest.end - longest.start : 0)) continue;
    const name = stringRecordAt(bytes, trace.end);
    if (!name || !startsWithClassName(bytes, trace, name)) continue;
    longest = trace;
  }
  if (!longest) return undefined;
  const text = bytes.toString('utf8', longest.start, longest.end);
  return text.includes('\n\tat ') ? text.split(/\r?\n/, 1)[0]?.trim() || undefined : undefined;
}

const TC_STRING = 0x74;
const TC_LONGSTRING = 0x7c;
const CLASS_NAME = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$/;

/** The bounds of the string record starting at `i`, if one fits there. */
function stringRecordAt(bytes: Buffer, i: number): { start: number; end: number } | undefined {
  let start: number;
  let length: number;
  if (bytes[i] === TC_STRING && i + 3 <= bytes.length) {
    start = i + 3;
    length = bytes.readUInt16BE(i + 1);
  } else if (bytes[i] === TC_LONGSTRING && i + 9 <= bytes.length) {
    const long = bytes.readBigUInt64BE(i + 1);
    if (long > BigInt(bytes.length)) return undefined;
    start = i + 9;
    length = Number(long);
  } else {
    return undefined;
  }
  return start + length <= bytes.length ? { start, end: start + length } : undefined;
}

/** Whether the trace starts with the name, a Java class name followed by `: ` or the end of its line. */
function startsWithClassName(
  bytes: Buffer,
  trace: { start: number; end: number },
  name: { start: number; end: number },
): boolean {
  const length = name.end - name.start;
  if (length === 0 || length > trace.end - trace.start) return false;
  if (bytes.compare(bytes, name.start, name.end, trace.start, trace.start + length) !== 0) return false;
  const next = bytes[trace.start + length];
  if (next !== 0x3a && next !== 0x0a && next !== 0x0d) return false; // ':' or a line's end
  return CLASS_NAME.test(bytes.toString('latin1', name.start, name.end));
}
