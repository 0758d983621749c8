import { closeRedis, connectRedis, connectionState } from '../src/redis';
import { eventually } from '../../../test/support/wait';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** What /readyz says of Redis (connectionState): a new connection is connecting, not unreachable. */
describe('connectionState', () => {
  it('is connecting until a new connection is ready, then ready; one failing connection makes every one unreachable', async () => {
    const redis = connectRedis('redis://127.0.0.1:6379');
    // Connecting: nothing has failed yet (until this change it read as unreachable).
    expect(connectionState(redis)).toBe('connecting');
    await eventually(() => connectionState(redis) === 'ready', 5_000, 'the connection to be ready');

    const refused = connectRedis('redis://127.0.0.1:1'); // nothing listens there
    try {
      await eventually(() => connectionState(refused) === 'unreachable', 5_000, 'the refusal');
      expect(connectionState(redis)).toBe('unreachable'); // the process cannot count on Redis
    } finally {
      await closeRedis(refused);
      await closeRedis(redis);
    }
  });

  it('a connection that was ready and lost is unreachable while it connects again, never connecting', async () => {
    // In front of Redis: the first connection passes through; once it is closed (no error: a FIN), new ones
    // are accepted and never answered, so the connection sits in its attempt to connect again with no error
    // event (a loaded process asked /readyz in that moment and read `connecting`).
    const sockets: Socket[] = [];
    const proxy = createServer((client) => {
      sockets.push(client);
      if (sockets.length > 1) return;
      const upstream = connect(6379, '127.0.0.1');
      sockets.push(upstream);
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const redis = connectRedis(`redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
    try {
      await eventually(() => connectionState(redis) === 'ready', 5_000, 'the connection to be ready');
      sockets[0]!.end();
      await eventually(() => sockets.length > 2, 5_000, 'an attempt to connect again');
      expect(redis.status).not.toBe('ready');
      expect(connectionState(redis)).toBe('unreachable');
    } finally {
      await closeRedis(redis);
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
