import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { postWebhook } from '../src/http-post';

// A real receiver on loopback, reached by a host name (`localhost`, which the system resolver maps to
// 127.0.0.1 through /etc/hosts): the address guard must look at the resolved address at delivery time,
// not only at IP literals.
describe('webhook delivery: the resolved address is checked when the request is made', () => {
  let server: Server;
  let port: number;
  let received = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      received += 1;
      req.resume();
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = (allowPrivate: boolean) =>
    postWebhook({
      url: `http://localhost:${port}/hook`,
      headers: {},
      body: '{}',
      timeoutMs: 2000,
      allowPrivate,
    });

  it('refuses a host name that resolves to a loopback address, and sends nothing', async () => {
    const before = received;
    const result = await post(false);
    expect(result.statusCode).toBeUndefined();
    expect(result.error).toMatch(
      /localhost resolves to 127\.0\.0\.1, a loopback, link-local or private address/,
    );
    expect(received).toBe(before);
  });

  it('delivers to the same name when private addresses are allowed (the receiver is really there)', async () => {
    const before = received;
    expect(await post(true)).toMatchObject({ statusCode: 204 });
    expect(received).toBe(before + 1);
  });
});
