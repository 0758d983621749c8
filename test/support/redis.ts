import IORedis from 'ioredis';

/** Deletes every key under a prefix (a test's queues, leases and positions). */
export async function deleteKeys(prefix: string, url = 'redis://127.0.0.1:6379'): Promise<void> {
  const redis = new IORedis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
