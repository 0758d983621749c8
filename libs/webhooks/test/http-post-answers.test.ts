import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { postWebhook } from '../src/http-post';

// What postWebhook makes of each kind of answer, from a receiver on loopback (private addresses allowed).
let server: Server;
let base: string;
let handle: (req: IncomingMessage, body: string, res: ServerResponse) => void;
const requests: { method?: string; headers: IncomingMessage['headers']; body: string }[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method, headers: req.headers, body });
      handle(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  requests.length = 0;
  handle = (_req, _body, res) => res.writeHead(200).end();
});

const post = (path = '/hook', over: Partial<Parameters<typeof postWebhook>[0]> = {}) =>
  postWebhook({
    url: `${base}${path}`,
    headers: { 'webhook-id': 'msg_1' },
    body: '{"héllo":1}',
    timeoutMs: 2000,
    allowPrivate: true,
    ...over,
  });

describe('postWebhook', () => {
  it('POSTs the body as JSON with its length, the given headers and snapcat’s user agent', async () => {
    const result = await post();
    expect(result).toEqual({ statusCode: 200, latencyMs: expect.any(Number) });
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request!.method).toBe('POST');
    expect(request!.body).toBe('{"héllo":1}');
    expect(request!.headers).toMatchObject({
      'webhook-id': 'msg_1',
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength('{"héllo":1}')),
      'user-agent': 'snapcat-webhooks/1',
    });
  });

  it('measures the latency of the exchange', async () => {
    handle = (_req, _body, res) => setTimeout(() => res.writeHead(202).end(), 120);
    const result = await post();
    expect(result.statusCode).toBe(202);
    expect(result.latencyMs).toBeGreaterThanOrEqual(100);
    expect(result.latencyMs).toBeLessThan(2000);
    expect(Number.isInteger(result.latencyMs)).toBe(true);
  });

  it('an answer outside 2xx is an error naming the status and the start of the body (512 characters)', async () => {
    handle = (_req, _body, res) => res.writeHead(500).end(`${'x'.repeat(600)}`);
    const result = await post();
    expect(result).toEqual({
      statusCode: 500,
      latencyMs: expect.any(Number),
      error: `HTTP 500: ${'x'.repeat(512)}`,
    });
    handle = (_req, _body, res) => {
      res.writeHead(400);
      res.write('a'.repeat(300));
      res.end('b'.repeat(300));
    };
    expect((await post()).error).toBe(`HTTP 400: ${'a'.repeat(300)}${'b'.repeat(212)}`);
  });

  it('a redirect is not followed: it is a failure', async () => {
    handle = (_req, _body, res) => res.writeHead(302, { location: `${base}/elsewhere` }).end();
    expect(await post()).toEqual({ statusCode: 302, latencyMs: expect.any(Number), error: 'HTTP 302' });
    expect(requests.map((r) => r.method)).toEqual(['POST']);
  });

  it('the edges of 2xx: 200 and 299 succeed, 300 and 404 fail', async () => {
    for (const [status, ok] of [
      [200, true],
      [299, true],
      [300, false],
      [404, false],
    ] as const) {
      handle = (_req, _body, res) => res.writeHead(status).end();
      const result = await post();
      expect(result.statusCode).toBe(status);
      expect(result.error === undefined).toBe(ok);
    }
  });

  it('a final answer with a status below 200 (099, 000: Node takes them, its server cannot send them) is a failure', async () => {
    for (const [line, status] of [
      ['HTTP/1.1 099 Odd', 99],
      ['HTTP/1.1 000 Odd', 0],
    ] as const) {
      const raw = createTcpServer((socket) =>
        socket.once('data', () => socket.end(`${line}\r\ncontent-length: 2\r\n\r\nno`)),
      );
      await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = raw.address() as AddressInfo;
        const result = await post('/hook', { url: `http://127.0.0.1:${port}/hook` });
        expect(result).toEqual({
          statusCode: status,
          latencyMs: expect.any(Number),
          error: `HTTP ${status}: no`,
        });
      } finally {
        await new Promise<void>((resolve) => raw.close(() => resolve()));
      }
    }
  });

  it('passes Retry-After on, on success and failure alike', async () => {
    handle = (_req, _body, res) => res.writeHead(503, { 'retry-after': '7' }).end();
    expect(await post()).toMatchObject({ statusCode: 503, retryAfter: '7', error: 'HTTP 503' });
    handle = (_req, _body, res) => res.writeHead(200, { 'retry-after': '3' }).end();
    expect(await post()).toEqual({ statusCode: 200, latencyMs: expect.any(Number), retryAfter: '3' });
  });

  it('no answer within the timeout: an error saying so, without a status', async () => {
    handle = () => undefined; // never answers
    const result = await post('/slow', { timeoutMs: 150 });
    expect(result).toEqual({ latencyMs: expect.any(Number), error: 'no answer within 150 ms' });
    expect(result.latencyMs).toBeGreaterThanOrEqual(140);
  });

  it('an answer cut off in its body: the status it gave and the error, not a hang', async () => {
    handle = (_req, _body, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial', () => res.destroy());
    };
    const result = await post();
    expect(result).toEqual({ statusCode: 200, latencyMs: expect.any(Number), error: expect.any(String) });
    expect(result.error).not.toBe('');
  });

  it('a 2xx whose body is still coming at the timeout keeps its status (it was counted a failure and sent again)', async () => {
    handle = (_req, _body, res) => {
      res.writeHead(200);
      res.write('.'); // and never ends
    };
    const result = await post('/trickle', { timeoutMs: 150 });
    expect(result).toEqual({
      statusCode: 200,
      latencyMs: expect.any(Number),
      error: "the answer's body did not end within 150 ms",
    });
  });

  it('a body longer than what is kept is not waited for', async () => {
    handle = (_req, _body, res) => {
      res.writeHead(500);
      res.write('x'.repeat(600)); // and never ends
    };
    const result = await post('/long', { timeoutMs: 1_500 });
    expect(result).toMatchObject({ statusCode: 500, error: `HTTP 500: ${'x'.repeat(512)}` });
    expect(result.latencyMs).toBeLessThan(1_000);
  });

  it('a refused connection is an error with the system’s message', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await postWebhook({
      url: `http://127.0.0.1:${port}/`,
      headers: {},
      body: '{}',
      timeoutMs: 2000,
      allowPrivate: true,
    });
    expect(result.statusCode).toBeUndefined();
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it('an https:// URL speaks TLS (here to a plain HTTP server: no answer, nothing received)', async () => {
    const result = await postWebhook({
      url: base.replace('http:', 'https:'),
      headers: {},
      body: '{}',
      timeoutMs: 2000,
      allowPrivate: true,
    });
    expect(result.statusCode).toBeUndefined();
    expect(result.error).toBeDefined();
    expect(result.error).not.toMatch(/^HTTP/);
    expect(requests).toHaveLength(0);
  });

  it('refuses a private IP literal at once, without connecting, unless private addresses are allowed', async () => {
    for (const host of ['127.0.0.1', '[::1]']) {
      const url = `http://${host}:${new URL(base).port}/hook`;
      const refused = await postWebhook({
        url,
        headers: {},
        body: '{}',
        timeoutMs: 2000,
        allowPrivate: false,
      });
      const literal = host.replace(/^\[|\]$/g, '');
      expect(refused).toEqual({
        latencyMs: 0,
        error: `${literal} resolves to ${literal}, a loopback, link-local or private address`,
      });
    }
    expect(requests).toHaveLength(0);
    expect((await post()).statusCode).toBe(200);
  });
});
