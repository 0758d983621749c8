import { closeRedis, connectRedis, connectionState } from '../src/redis';
import { eventually } from '../../../test/support/wait';

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
});
