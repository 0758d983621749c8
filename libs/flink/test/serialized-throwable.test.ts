import { serializedThrowableHeadline } from '../src/serialized-throwable';
import {
  SERIALIZED_CAUSE_LINE as CAUSE,
  SERIALIZED_FAILURE as FIXTURE,
  SERIALIZED_FAILURE_LINE as FAILURE,
} from '../../../test/flink/serialized-throwable-fixture';

describe('serializedThrowableHeadline', () => {
  it('reads the failure’s own stack trace from Java’s serialization, not its cause’s (written before it)', () => {
    expect(serializedThrowableHeadline(FIXTURE)).toBe(FAILURE);
    // Both traces are in the stream, the cause's first: the longest is the failure's.
    const text = Buffer.from(FIXTURE, 'base64').toString('latin1');
    expect(text.indexOf(CAUSE)).toBeLessThan(text.indexOf(FAILURE));
  });

  it('finds no trace in what is not such a stream', () => {
    expect(serializedThrowableHeadline('')).toBeUndefined();
    expect(serializedThrowableHeadline('not base64 at all!')).toBeUndefined();
    expect(
      serializedThrowableHeadline(Buffer.from('java.lang.Exception: x\n\tat a.b(c)').toString('base64')),
    ).toBe(undefined);
  });

  it('is not misled by a letter t in the text that reads as a longer string record', () => {
    // 0x74 is `t`: here one followed by two bytes that read as a length of 8,192, over text with a trace in
    // it, longer than the real trace. Only a record followed by the class name it starts with is a trace.
    const text = Buffer.from(`eException: not the failure\n\tat a.b.C.d(C.java:1)\n${'x'.repeat(8_300)}`);
    const misleading = Buffer.concat([Buffer.from([0x74, 0x20, 0x00]), text, Buffer.from(FIXTURE, 'base64')]);
    expect(serializedThrowableHeadline(misleading.toString('base64'))).toBe(FAILURE);
  });

  it('never reads past the end of a truncated stream', () => {
    const bytes = Buffer.from(FIXTURE, 'base64');
    const seen = new Set<string | undefined>();
    for (const cut of [1, 10, 100, bytes.length / 2, bytes.length - 1]) {
      const headline = serializedThrowableHeadline(bytes.subarray(0, Math.floor(cut)).toString('base64'));
      // What is left holds the failure's trace, its cause's (written first), or none: never a made-up line.
      expect([undefined, FAILURE, CAUSE]).toContain(headline);
      seen.add(headline);
    }
    expect(seen).toEqual(new Set([undefined, CAUSE, FAILURE]));
  });
});
