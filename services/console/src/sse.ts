// Server-sent events, as GraphQL over SSE sends a subscription (`event: next` / `data: {...}` frames, a blank
// line ending each, `event: complete` at the end; `:` lines keep the connection alive). Pure: the chunks come
// in as text, whole messages go out. Unit-tested in test/sse.test.ts.

export interface SseMessage {
  /** The `event:` field; "message" when the frame has none. */
  event: string;
  /** The `data:` lines joined with newlines. */
  data: string;
  id?: string;
}

/**
 * An incremental parser: `push` each decoded chunk (a chunk may end anywhere, even between CR and LF), get
 * the messages it completes. Follows the HTML event-stream rules, except that a frame with an `event:` but
 * no `data:` is delivered too (so that a bare `event: complete` is seen).
 */
export class SseParser {
  private buffer = '';
  private skipLineFeed = false;
  private event = '';
  private data: string[] = [];
  private id: string | undefined;
  private hasFields = false;

  push(chunk: string): SseMessage[] {
    const messages: SseMessage[] = [];
    let text = chunk;
    if (this.skipLineFeed && text.startsWith('\n')) text = text.slice(1);
    this.skipLineFeed = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      const line = this.buffer.slice(start, i);
      if (c === '\r') {
        if (i + 1 === this.buffer.length) this.skipLineFeed = true;
        else if (this.buffer[i + 1] === '\n') i += 1;
      }
      start = i + 1;
      const message = this.line(line);
      if (message) messages.push(message);
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  /** The end of the stream: a frame not ended by a blank line is dropped, as the rules say. */
  end(): SseMessage[] {
    this.buffer = '';
    this.reset();
    return [];
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        this.hasFields = true;
        break;
      case 'data':
        this.data.push(value);
        this.hasFields = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      default:
      // `retry:` and unknown fields: ignored (the reconnect policy is the client's).
    }
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    if (!this.hasFields) return undefined;
    const message: SseMessage = { event: this.event || 'message', data: this.data.join('\n') };
    if (this.id !== undefined) message.id = this.id;
    this.reset();
    return message;
  }

  private reset() {
    this.event = '';
    this.data = [];
    this.hasFields = false;
  }
}

/** The whole of a stream's text at once (tests, small answers). */
export function parseSse(text: string): SseMessage[] {
  const parser = new SseParser();
  return [...parser.push(text), ...parser.end()];
}

/** The wait before reconnect attempt `attempt` (0-based): 1 s, 2 s, 4 s, 8 s, then 15 s. */
export function reconnectDelay(attempt: number, minMs = 1000, maxMs = 15_000): number {
  return Math.min(maxMs, minMs * 2 ** Math.max(0, Math.min(attempt, 30)));
}
