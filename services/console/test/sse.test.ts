import { parseSse, reconnectDelay, SseParser } from '../src/sse';

describe('the SSE parser', () => {
  it('reads GraphQL over SSE frames: next, keep-alive comments, complete', () => {
    const text =
      ':\n\n' +
      'event: next\ndata: {"data":{"snapshotEvents":{"type":"SnapshotTriggered","snapshotId":6}}}\n\n' +
      ':\n\n' +
      'event: complete\ndata:\n\n';
    expect(parseSse(text)).toEqual([
      { event: 'next', data: '{"data":{"snapshotEvents":{"type":"SnapshotTriggered","snapshotId":6}}}' },
      { event: 'complete', data: '' },
    ]);
  });

  it('delivers a bare `event: complete` (no data line) too', () => {
    expect(parseSse('event: complete\n\n')).toEqual([{ event: 'complete', data: '' }]);
  });

  it('joins data lines with newlines, and calls an unnamed event "message"', () => {
    expect(parseSse('data: a\ndata: b\ndata\n\n')).toEqual([{ event: 'message', data: 'a\nb\n' }]);
  });

  it('strips one space after the colon only, and keeps the id', () => {
    expect(parseSse('id: 7\nevent:next\ndata:  x\n\n')).toEqual([{ event: 'next', data: ' x', id: '7' }]);
  });

  it('takes CRLF, CR and LF line ends', () => {
    expect(parseSse('event: next\r\ndata: 1\r\n\r\nevent: next\rdata: 2\r\rdata: 3\n\n')).toEqual([
      { event: 'next', data: '1' },
      { event: 'next', data: '2' },
      { event: 'message', data: '3' },
    ]);
  });

  it('ignores unknown fields and retry', () => {
    expect(parseSse('retry: 1000\nfoo: bar\ndata: x\n\n')).toEqual([{ event: 'message', data: 'x' }]);
  });

  it('reassembles frames split anywhere across chunks, a CRLF between two chunks included', () => {
    const text = 'event: next\r\ndata: {"a":1}\r\n\r\nevent: next\r\ndata: {"b":2}\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      const parser = new SseParser();
      const messages = [...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))];
      expect(messages).toEqual([
        { event: 'next', data: '{"a":1}' },
        { event: 'next', data: '{"b":2}' },
      ]);
    }
  });

  it('byte by byte, too', () => {
    const parser = new SseParser();
    const messages = [...'event: next\ndata: é\n\n'].flatMap((c) => parser.push(c));
    expect(messages).toEqual([{ event: 'next', data: 'é' }]);
  });

  it('drops a frame the stream ended in the middle of', () => {
    const parser = new SseParser();
    expect(parser.push('event: next\ndata: {"a":1}\n')).toEqual([]);
    expect(parser.end()).toEqual([]);
    expect(parser.push('\n')).toEqual([]);
  });

  it('sends nothing for blank lines alone', () => {
    expect(parseSse('\n\n\n')).toEqual([]);
  });
});

describe('reconnectDelay', () => {
  it('waits 1 s, doubling, at most 15 s', () => {
    expect([0, 1, 2, 3, 4, 5, 50].map((attempt) => reconnectDelay(attempt))).toEqual([
      1000, 2000, 4000, 8000, 15_000, 15_000, 15_000,
    ]);
  });
});
