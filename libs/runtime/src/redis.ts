import IORedis, { Cluster, type ChainableCommander, type Redis } from 'ioredis';
import type { LogFn } from './log';

/**
 * Whether Redis answers, for every connection connectRedis made, told to the log once per change: down
 * (the first error), still down (once a minute), back. ioredis reports every failed reconnection as an
 * error event, and prints a non-JSON stack trace for each one that nobody listens to: here, all are heard.
 */
const REST_GOES_ON = 'GraphQL, the workers and webhooks wait; REST commands go on';
/** How long after its start a Redis refusing its database or credentials stops a process (exit 2). */
const STARTING_MS = 30_000;
/** How long a stopping process gives its last heartbeat's tasks. */
const LAST_BEAT_MS = 500;

class RedisHealth {
  private readonly failing = new Set<object>();
  /** Connections that have been ready: connecting again is reconnecting, which is Redis gone, not a start. */
  private readonly wereReady = new WeakSet<object>();
  private log: { warn: LogFn; info: LogFn } | undefined;
  /** What goes on without Redis in this process, said with the outage. */
  private meanwhile = REST_GOES_ON;
  private downSince = 0;
  private reportedAt = 0;
  private beating: Redis | undefined;
  /** What else runs on each answered beat (`everyBeat`). */
  private readonly beatTasks: ((connection: Redis) => Promise<void>)[] = [];
  /** Whether any connection has been ready in this process: a refusal before that is a configuration's. */
  private everReady = false;
  private onMisconfigured: ((reason: string) => void) | undefined;
  private reportingSince = 0;
  /** Set while a connection has lately met a node that takes no writes (`notWritable`): it ends the state. */
  private notWritableLapse: NodeJS.Timeout | undefined;

  /**
   * The log that hears about the changes (set once by the process's composition root); a process that serves
   * no API (workers, a projector) says only that it waits.
   */
  reportTo(
    log: { warn: LogFn; info: LogFn },
    {
      servesApi = true,
      onMisconfigured,
    }: { servesApi?: boolean; onMisconfigured?: (reason: string) => void } = {},
  ): void {
    this.log = log;
    this.meanwhile = servesApi ? REST_GOES_ON : 'this process waits for it';
    this.onMisconfigured = onMisconfigured;
    this.reportingSince = Date.now();
  }

  get reachable(): boolean {
    return this.failing.size === 0;
  }

  /**
   * Pings Redis every `everyMs` on a connection of its own, for a long-running process: a Redis that hangs
   * (stopped, a network that drops packets) closes no connection and sends no error event, so only a command
   * left unanswered tells (a walkthrough's workers and projector said `ready` through a minute of it).
   */
  heartbeat(url: string, everyMs = 2000): void {
    if (this.beating) return;
    const connection = connectRedis(url, { commandTimeoutMs: everyMs });
    this.beating = connection;
    const unanswered = { status: 'unanswered' }; // not a connection's state: its own entry in `failing`
    const beat = async () => {
      if (this.beating !== connection) return; // stopped
      try {
        await connection.ping();
        this.recovered(unanswered);
        for (const task of this.beatTasks) await task(connection);
      } catch (error) {
        if (this.beating === connection) this.failed(unanswered, error);
      }
      setTimeout(() => void beat(), everyMs).unref();
    };
    void beat();
  }

  /** Runs `task` on the heartbeat's connection after each answered ping (a task's error counts as unanswered). */
  everyBeat(task: (connection: Redis) => Promise<void>): void {
    this.beatTasks.push(task);
  }

  /**
   * Runs the beat's tasks a last time, then closes the heartbeat's connection (a private Redis stops only when
   * no other client is connected).
   */
  async stopHeartbeat(): Promise<void> {
    const connection = this.beating;
    if (!connection) return;
    this.beating = undefined;
    // A last beat's tasks, what they record (the store's timeline mark) being as of the process's end; only
    // while Redis answers, and briefly: a shutdown must not wait on a Redis that is away.
    if (this.reachable) {
      const last = Promise.all(this.beatTasks.map((task) => task(connection).catch(() => undefined)));
      await Promise.race([last, new Promise((resolve) => setTimeout(resolve, LAST_BEAT_MS).unref())]);
    }
    await closeRedis(connection);
  }

  watch(connection: WatchedConnection) {
    connection.on('error', (error) => this.failed(connection, error));
    connection.on('ready', () => void this.ready(connection));
  }

  /**
   * A command met a node that takes no writes (READONLY, LOADING): Redis counts as unreachable (the API
   * answers 503, /readyz is not ready) until a connection finds a writable primary behind the address, or
   * NOT_WRITABLE_LAPSE_MS pass without another such answer (the one that met it may be a connection nobody
   * watches, a BullMQ duplicate, or one whose user may not ask ROLE: no flag is left for ever).
   */
  notWritable(error: Error): void {
    this.failed(NOT_WRITABLE_NODE, error);
    clearTimeout(this.notWritableLapse);
    this.notWritableLapse = setTimeout(() => this.writableAgain(), NOT_WRITABLE_LAPSE_MS).unref();
  }

  /** ioredis's reconnection delay: a second apart while the address reaches a node that takes no writes. */
  reconnectDelay(attempt: number): number {
    return this.notWritableLapse ? NOT_WRITABLE_RETRY_MS : Math.min(attempt * 50, 2000);
  }

  private writableAgain(): void {
    if (!this.notWritableLapse) return;
    clearTimeout(this.notWritableLapse);
    this.notWritableLapse = undefined;
    this.recovered(NOT_WRITABLE_NODE);
  }

  private async ready(connection: WatchedConnection): Promise<void> {
    if (this.notWritableLapse && connection.role) {
      // The address may still reach the demoted node (its DNS name not moved yet): look again in a while.
      // ROLE refused (an ACL without it, a subscriber connection) tells nothing: the flag lapses on its own.
      const role = await connection.role().then(
        ([name]) => String(name),
        () => undefined,
      );
      if (role === 'slave' || role === 'replica') {
        this.notWritable(new Error(`READONLY the address reaches a replica (${role})`));
        if (connection.status === 'ready') connection.disconnect?.(true);
        return;
      }
      if (role === 'master') this.writableAgain();
    }
    this.everReady = true;
    this.wereReady.add(connection);
    this.recovered(connection);
  }

  /** A connection closed on purpose no longer says anything of Redis. */
  forget(connection: object): void {
    this.failing.delete(connection);
  }

  /** Whether the connection has been ready since it was made. */
  wasReady(connection: object): boolean {
    return this.wereReady.has(connection);
  }

  private failed(connection: { status: string }, error: unknown): void {
    if (connection.status === 'ready') return; // a command's error, not the connection's
    // Only at start: later (Redis back after an outage, refusing rotated credentials) the process waits as for
    // any outage rather than exit in the middle of its writes.
    const starting = !this.everReady && Date.now() - this.reportingSince < STARTING_MS;
    const refusal = starting ? configurationRefused(error) : undefined;
    if (refusal && this.onMisconfigured) return this.onMisconfigured(refusal);
    const now = Date.now();
    if (this.failing.size === 0) {
      this.downSince = now;
      this.reportedAt = now;
      this.log?.warn(`redis unreachable: ${this.meanwhile}`, {
        error: String(error),
      });
    } else if (now - this.reportedAt >= 60_000) {
      this.reportedAt = now;
      this.log?.warn('redis still unreachable', { downForMs: now - this.downSince, error: String(error) });
    }
    this.failing.add(connection);
  }

  private recovered(connection: object): void {
    if (!this.failing.delete(connection) || this.failing.size > 0) return;
    this.log?.info('redis reachable again', { downForMs: Date.now() - this.downSince });
  }
}

export const redisHealth = new RedisHealth();

/** A connection as redisHealth watches it; `role` and `disconnect` where it is a standalone ioredis one. */
type WatchedConnection = {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  status: string;
  role?: () => Promise<unknown[]>;
  disconnect?: (reconnect?: boolean) => void;
};

/** The entry `failing` holds while the address reaches a node that takes no writes (not a connection). */
const NOT_WRITABLE_NODE = { status: 'not-writable' };
const NOT_WRITABLE_RETRY_MS = 1000;
/** How long one answer of a node that takes no writes counts: several reconnections' worth. */
const NOT_WRITABLE_LAPSE_MS = 5000;

/**
 * Replies of a node that takes no writes now: a primary demoted by a failover (READONLY) or one loading its
 * data (LOADING). A failover behind one address (a managed Redis's primary endpoint, a DNS name moved to the
 * promoted replica) leaves every open connection on the demoted node, and ioredis would keep it for ever:
 * every write failing while Redis is, in fact, back. The node refused the command before running it, so it is
 * sent again (2) once the connection is made anew (decision 0048).
 */
const NOT_WRITABLE_REPLY = /^(READONLY|LOADING)\b/;

function reconnectWhereWritable(error: Error): 2 | false {
  if (!NOT_WRITABLE_REPLY.test(error.message)) return false;
  redisHealth.notWritable(error);
  return 2;
}

/**
 * Redis answered, and refused what SNAPCAT_REDIS_URL asks of it: a database it does not have, or the
 * credentials. Waiting would not mend that (a walkthrough's `/99` ran for good as "redis unreachable").
 */
function configurationRefused(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (/^ERR DB index is out of range/.test(message)) {
    return `SNAPCAT_REDIS_URL names a database this Redis does not have (${message}); its 'databases' setting bounds the index`;
  }
  // A sentinel's refusal comes inside ioredis's "All sentinels are unreachable... Last error: WRONGPASS ...".
  if (/(^|Last error: )(WRONGPASS|NOAUTH|ERR invalid password|ERR AUTH)/.test(message)) {
    return `SNAPCAT_REDIS_URL's credentials are refused by Redis (${message})`;
  }
  return undefined;
}

/** What /readyz says of Redis: `connecting` until a new connection is first ready, unless one has failed. */
export type RedisState = 'ready' | 'connecting' | 'unreachable';

/** The state of one connection, and `unreachable` while any connection connectRedis made is failing. */
export function connectionState(connection: { status: string }): RedisState {
  if (!redisHealth.reachable) return 'unreachable';
  if (connection.status === 'ready') return 'ready';
  // Lost and connecting again (a loaded process may ask before the attempt's error event): unreachable.
  if (redisHealth.wasReady(connection)) return 'unreachable';
  return ['wait', 'connecting', 'connect'].includes(connection.status) ? 'connecting' : 'unreachable';
}

/**
 * Whether an error is Redis being unreachable (refused, reset, broken pipe, timed out, closed), which redisHealth reports
 * once per change; the error events of BullMQ queues and workers repeat it at every reconnection attempt.
 */
export function isRedisConnectionError(error: unknown): boolean {
  const text =
    error instanceof Error ? `${(error as { code?: string }).code ?? ''} ${error.message}` : String(error);
  return /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|Connection is closed|Command timed out/.test(
    text,
  );
}

/**
 * Replies of a Redis that cannot do what it was asked now, and may later: not writable (READONLY, LOADING), a
 * primary or cluster down (MASTERDOWN, CLUSTERDOWN, TRYAGAIN), a script running too long (BUSY), too few
 * replicas (NOREPLICAS), out of memory (OOM).
 */
const REDIS_CANNOT_NOW = /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS|OOM)\b/;

/**
 * Whether an error is Redis unable to answer now, as ioredis raises it: one of REDIS_CANNOT_NOW's replies
 * (ReplyError), or a command failed by the connection (closed, timed out, out of retries). What the API answers
 * with a 503 and Retry-After, the caller having done nothing wrong. Only ioredis's own errors: another client's
 * ECONNREFUSED (S3's, the event store's) is not Redis's.
 */
export function isRedisUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'ReplyError') return REDIS_CANNOT_NOW.test(error.message);
  // AbortError: a command ioredis aborted as the connection closed under it (a pipeline's, auto-pipelined).
  return (
    ['MaxRetriesPerRequestError', 'AbortError'].includes(error.name) ||
    /^(Connection is closed|Command timed out|Command aborted due to connection close)/.test(error.message)
  );
}

/** Error events of a BullMQ queue or worker: logged unless they only repeat that Redis is unreachable. */
export function logQueueErrors(
  emitter: { on(event: 'error', listener: (error: Error) => void): unknown },
  log: LogFn,
  fields: object,
): void {
  emitter.on('error', (error) => {
    if (!isRedisConnectionError(error)) log('queue error', { ...fields, error: error.message });
  });
}

/** `redis+cluster://[user:password@]host:port,host:port/` (or `rediss+cluster://`, with TLS): a Redis Cluster. */
export const REDIS_CLUSTER_URL = /^rediss?\+cluster:\/\/(?:[^@/]*@)?[^@/,:]+:\d+(?:,[^@/,:]+:\d+)*\/?$/;

/**
 * `redis+sentinel://[user:password@]host:port,host:port/<master name>[/<db>][?sentinelPassword=…]` (or
 * `rediss+sentinel://`, with TLS to the sentinels and the nodes): the primary the sentinels name. The
 * credentials are the data nodes'; `sentinelUsername` and `sentinelPassword` (percent-encoded), the sentinels'.
 */
export const REDIS_SENTINEL_URL =
  /^rediss?\+sentinel:\/\/(?:([^@/]*)@)?([^@/,:]+:\d+(?:,[^@/,:]+:\d+)*)\/([^/?]+)(?:\/(\d+))?(?:\?(.*))?$/;

/**
 * A `redis+sentinel://` URL's parts, decoded; undefined when it is not one, or a part does not decode (a stray
 * `%`), or the query holds anything but `sentinelUsername` and `sentinelPassword`. A `+` is a `+`.
 */
export function parseSentinelUrl(url: string) {
  const match = REDIS_SENTINEL_URL.exec(url);
  if (!match) return undefined;
  const [, userinfo, hosts = '', name = '', db, query] = match;
  const params = new Map<string, string>();
  for (const pair of query ? query.split('&') : []) {
    const [key = '', value = ''] = splitAt(pair, '=');
    const decoded = decodePart(value);
    if (!['sentinelUsername', 'sentinelPassword'].includes(key) || decoded === undefined) return undefined;
    params.set(key, decoded);
  }
  const credentials = decodeCredentials(userinfo);
  const master = decodePart(name);
  if (!credentials || master === undefined) return undefined;
  return {
    tls: url.startsWith('rediss'),
    ...credentials,
    sentinels: parseNodes(hosts),
    name: master,
    ...(db ? { db: Number(db) } : {}),
    sentinelUsername: params.get('sentinelUsername'),
    sentinelPassword: params.get('sentinelPassword'),
  };
}

/**
 * A `redis+cluster://` URL's parts, its credentials decoded; undefined when it is not one or they do not decode
 * (a stray `%`: refused by the configuration, not a URIError at the first connection).
 */
export function parseClusterUrl(url: string) {
  if (!REDIS_CLUSTER_URL.test(url)) return undefined;
  const rest = url.replace(/^rediss?\+cluster:\/\//, '').replace(/\/$/, '');
  const at = rest.lastIndexOf('@');
  const credentials = decodeCredentials(at >= 0 ? rest.slice(0, at) : undefined);
  if (!credentials) return undefined;
  return { tls: url.startsWith('rediss'), ...credentials, nodes: parseNodes(rest.slice(at + 1)) };
}

/** A URL's `user:password`, each percent-decoded (a colon after the first is the password's); `+` is a `+`. */
function decodeCredentials(
  userinfo: string | undefined,
): { username?: string; password?: string } | undefined {
  if (userinfo === undefined) return {};
  const [user, secret = ''] = splitAt(userinfo, ':');
  const [username, password] = [decodePart(user), decodePart(secret)];
  if (username === undefined || password === undefined) return undefined;
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** `part` percent-decoded; undefined when it does not decode (a stray `%`). */
function decodePart(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined; // URIError: malformed percent-encoding
  }
}

/** `text` split at the first `separator`: the rest may hold it too (a password with a colon). */
function splitAt(text: string, separator: string): [string, string?] {
  const at = text.indexOf(separator);
  return at < 0 ? [text] : [text.slice(0, at), text.slice(at + 1)];
}

function parseNodes(hosts: string): { host: string; port: number }[] {
  return hosts.split(',').map((node) => {
    const [host, port] = node.split(':');
    return { host: host!, port: Number(port) };
  });
}

/**
 * A Redis connection as BullMQ workers need it (no per-request retry limit, so blocking calls survive).
 * `autoPipelining`: commands issued in the same turn of the event loop go out in one write (for readers
 * that serve many concurrent requests; not for BullMQ's blocking connections).
 *
 * A `redis+cluster://` URL gives an ioredis Cluster. It is typed as Redis on purpose: the commands snapcat
 * uses have the same signatures on both, and every key of a store shares one slot (storeNamespace), so
 * snapcat's transactions and scripts run unchanged. Only keyless scans differ: use scanKeys.
 */
export function connectRedis(
  url: string,
  { autoPipelining = false, commandTimeoutMs }: { autoPipelining?: boolean; commandTimeoutMs?: number } = {},
): Redis {
  const perCommand = {
    maxRetriesPerRequest: null,
    ...(commandTimeoutMs ? { commandTimeout: commandTimeoutMs } : {}),
  };
  let connection: Redis;
  const standalone = {
    ...perCommand,
    enableReadyCheck: true,
    lazyConnect: false,
    enableAutoPipelining: autoPipelining,
    // A cluster's failover moves slots, which ioredis follows (MOVED); one address must be made anew.
    reconnectOnError: reconnectWhereWritable,
    retryStrategy: (attempt: number) => redisHealth.reconnectDelay(attempt),
  };
  if (REDIS_SENTINEL_URL.test(url)) {
    connection = new IORedis({ ...standalone, ...sentinelOptions(url) });
  } else if (!REDIS_CLUSTER_URL.test(url)) {
    connection = new IORedis(url, standalone);
  } else {
    const parsed = parseClusterUrl(url);
    if (!parsed) throw new Error('SNAPCAT_REDIS_URL is no redis+cluster:// URL'); // loadConfig refused it already
    const { tls, username, password, nodes } = parsed;
    connection = new Cluster(nodes, {
      enableReadyCheck: true,
      enableAutoPipelining: autoPipelining,
      redisOptions: {
        ...perCommand,
        ...(username ? { username } : {}),
        ...(password ? { password } : {}),
        ...(tls ? { tls: {} } : {}),
      },
    }) as unknown as Redis;
  }
  redisHealth.watch(connection);
  return connection;
}

/**
 * Runs a pipeline and answers each command's result, failing on the first command that failed: ioredis
 * resolves `exec()` with each command's error, among them writes aborted by a reconnection (a failover's,
 * decision 0048), which a caller ignoring the results would lose silently (a rebuild marked whole with holes).
 */
export async function execAll(pipeline: ChainableCommander): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([error]) => error);
  if (failed) throw failed[0];
  return results.map(([, result]) => result);
}

/** Closes a connection: politely (QUIT) when Redis answers, at once when it does not. */
export async function closeRedis(connection: Redis): Promise<void> {
  redisHealth.forget(connection);
  if (connection.status !== 'ready') return connection.disconnect();
  await Promise.race([connection.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
  connection.disconnect();
}

/**
 * ioredis's options for a `redis+sentinel://` URL. `failoverDetector`: the sentinels' `+switch-master` moves
 * every connection to the promoted primary at once; without it, a connection stays on the old primary, which
 * takes writes until the sentinels demote it (ten seconds in a test) and then discards them as it resyncs.
 */
function sentinelOptions(url: string) {
  const parsed = parseSentinelUrl(url);
  if (!parsed) throw new Error('SNAPCAT_REDIS_URL is no redis+sentinel:// URL'); // loadConfig refused it already
  const { tls, sentinelUsername, sentinelPassword, ...rest } = parsed;
  return {
    ...rest,
    failoverDetector: true,
    ...(sentinelUsername ? { sentinelUsername } : {}),
    ...(sentinelPassword ? { sentinelPassword } : {}),
    ...(tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
  };
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
