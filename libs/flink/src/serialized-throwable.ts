/**
 * The first line of the stack trace a failure's Java serialization carries: for a `failure-cause` that holds
 * only `serialized-throwable`, the one property Flink's published REST description gives it. Flink's own
 * serializer (`SerializedThrowableSerializer`) writes `class` and `stack-trace` beside it, which are read
 * first; a server that follows the description alone does not.
 *
 * The bytes are an `org.apache.flink.util.SerializedThrowable` in Java's serialization stream format, whose
 * `fullStringifiedStackTrace` (the original exception's printed stack trace, its causes' included) is a
 * string record: TC_STRING (0x74) with a 2-byte length, or TC_LONGSTRING (0x7C) with an 8-byte one. The
 * causes' own traces are records too, and shorter: the longest trace is the failure's. Undefined when no
 * record holds a trace (not base64, not that class, truncated).
 */
export function serializedThrowableHeadline(base64: string): string | undefined {
  const bytes = Buffer.from(base64, 'base64');
  let longest: string | undefined;
  for (let i = 0; i < bytes.length; i++) {
    const record = stringRecordAt(bytes, i);
    if (record === undefined) continue;
    if (record.text.includes('\n\tat ') && record.text.length > (longest?.length ?? 0)) longest = record.text;
  }
  return longest?.split(/\r?\n/, 1)[0]?.trim() || undefined;
}

const TC_STRING = 0x74;
const TC_LONGSTRING = 0x7c;

/** The string record starting at `i`, if one fits there (Java's modified UTF-8 reads as UTF-8 for text). */
function stringRecordAt(bytes: Buffer, i: number): { text: string } | undefined {
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
  if (start + length > bytes.length) return undefined;
  return { text: bytes.toString('utf8', start, start + length) };
}
