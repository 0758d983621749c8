import IORedis, { Cluster, type Redis } from 'ioredis';

/** `redis+cluster://[user:password@]host:port,host:port/` (or `rediss+cluster://`, with TLS): a Redis Cluster. */
export const REDIS_CLUSTER_URL = /^rediss?\+cluster:\/\/(?:[^@/]*@)?[^@/,:]+:\d+(?:,[^@/,:]+:\d+)*\/?$/;

/**
 * A Redis connection as BullMQ workers need it (no per-request retry limit, so blocking calls survive).
 * `autoPipelining`: commands issued in the same turn of the event loop go out in one write (for readers
 * that serve many concurrent requests; not for BullMQ's blocking connections).
 *
 * A `redis+cluster://` URL gives an ioredis Cluster. It is typed as Redis on purpose: the commands snapcat
 * uses have the same signatures on both, and every key of a store shares one slot (storeNamespace), so
 * snapcat's transactions and scripts run unchanged. Only keyless scans differ: use scanKeys.
 */
export function connectRedis(url: string, { autoPipelining = false } = {}): Redis {
  const options = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: false,
    enableAutoPipelining: autoPipelining,
  };
  if (!REDIS_CLUSTER_URL.test(url)) return new IORedis(url, options);
  const { tls, username, password, nodes } = parseClusterUrl(url);
  return new Cluster(nodes, {
    enableReadyCheck: true,
    enableAutoPipelining: autoPipelining,
    redisOptions: {
      maxRetriesPerRequest: null,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      ...(tls ? { tls: {} } : {}),
    },
  }) as unknown as Redis;
}

function parseClusterUrl(url: string) {
  const rest = url.replace(/^rediss?\+cluster:\/\//, '').replace(/\/$/, '');
  const at = rest.lastIndexOf('@');
  const [username, password] = at >= 0 ? rest.slice(0, at).split(':').map(decodeURIComponent) : [];
  const nodes = (at >= 0 ? rest.slice(at + 1) : rest).split(',').map((node) => {
    const [host, port] = node.split(':');
    return { host: host!, port: Number(port) };
  });
  return { tls: url.startsWith('rediss'), username, password, nodes };
}

/** Every key matching `pattern`, page by page: on a cluster, from every master (a SCAN names no key). */
export async function* scanKeys(redis: Redis, pattern: string): AsyncGenerator<string[]> {
  const nodes = redis instanceof Cluster ? (redis as Cluster).nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
}
