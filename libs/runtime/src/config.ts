import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { IsoDuration, NAMESPACE_PATTERN, durationMs, isWithin, normaliseLocation } from '@snapcat/domain';
import {
  ConnectionStringError,
  isEventStoreConnection,
  parseEventStoreConnection,
} from '@snapcat/event-store';
import type { ForeignStatePolicy } from './store-namespace';
import { parseClusterUrl, parseSentinelUrl } from './redis';
import { TokenLineError, parseTokenList, type TokenEntry } from './tokens';

/** A period something runs at, or waits: zero would never wait (a queue refuses it, a loop spins). */
const Interval = IsoDuration.refine((value) => durationMs(value) > 0, { error: 'must be longer than zero' });

const EnvSchema = z.object({
  SNAPCAT_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  SNAPCAT_OPS_PORT: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z.coerce.number().int().min(0).max(65535).optional(),
  ),
  // Its default depends on SNAPCAT_TOKENS (loopback without tokens): see loadConfig.
  SNAPCAT_HOST: z.preprocess((value) => (value === '' ? undefined : value), z.string().optional()),
  SNAPCAT_TOKENS: z.preprocess((value) => (value === '' ? undefined : value), z.string().optional()),
  SNAPCAT_RATE_LIMIT: z.coerce.number().int().min(0).max(10_000_000).default(10_000),
  SNAPCAT_MAX_STREAMS_PER_TOKEN: z.coerce.number().int().min(0).max(1_000_000).default(100),
  SNAPCAT_EVENT_STORE: z.string().superRefine(checkEventStore).default('sqlite:./data/snapcat.db'),
  SNAPCAT_REDIS_URL: z
    .string()
    .refine(
      (url) =>
        parseClusterUrl(url) !== undefined ||
        parseSentinelUrl(url) !== undefined ||
        z.url({ protocol: /^rediss?$/ }).safeParse(url).success,
      {
        error:
          'must be a redis:// (rediss://) URL, redis+cluster://host:port,host:port for a Redis Cluster, or ' +
          'redis+sentinel://host:port,host:port/<master name> for the primary Redis Sentinel names',
      },
    )
    .default('redis://127.0.0.1:6379'),
  SNAPCAT_EMBEDDED_REDIS: z.enum(['auto', 'on', 'off']).default('auto'),
  SNAPCAT_STORAGE_ROOTS: z.string().min(1).default('./data/snapshots'),
  SNAPCAT_CHECKPOINT_DIR: z.string().min(1).optional(),
  SNAPCAT_SAVEPOINT_DIR: z.string().min(1).optional(),
  SNAPCAT_NAMESPACE_ROOTS: z.preprocess((value) => (value === '' ? undefined : value), z.string().optional()),
  SNAPCAT_S3_FORCE_PATH_STYLE: z.enum(['true', 'false']).optional(),
  SNAPCAT_S3_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  SNAPCAT_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  SNAPCAT_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'letters, digits, _ and - only' })
    .default('snapcat'),
  SNAPCAT_ROLE: z.enum(['all', 'api', 'workers']).optional(),
  /** Before SNAPCAT_ROLE: `off` meant the API only. */
  SNAPCAT_WORKERS: z.enum(['on', 'off']).optional(),
  SNAPCAT_PROJECTOR: z.enum(['on', 'off']).default('on'),
  // PT0S exited 1 at once on SIGTERM, before draining or closing the store and without a word (a walkthrough).
  SNAPCAT_SHUTDOWN_GRACE: Interval.default('PT10S'),
  SNAPCAT_ON_FOREIGN_READ_MODEL: z.enum(['rebuild', 'refuse']).default('rebuild'),
  SNAPCAT_RETENTION_SWEEP: Interval.default('PT1M'),
  SNAPCAT_FLINK_POLL: Interval.default('PT5S'),
  SNAPCAT_ORPHAN_GRACE: IsoDuration.default('PT24H'),
  SNAPCAT_DELETE_ORPHANS: z.enum(['true', 'false']).default('false'),
  SNAPCAT_DISCARD_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  SNAPCAT_DISCARD_BACKOFF_MS: z.coerce.number().int().min(1).max(3_600_000).default(1000),
  SNAPCAT_AGGREGATE_SNAPSHOT_EVERY: z.coerce.number().int().min(1).max(100_000_000).default(250),
  SNAPCAT_ENV: z.enum(['production', 'development']).default('production'),
  // Empty counts as unset, as with most environment-driven tools (webhooks then stay off, saying so); a key
  // that is set but short stops the process. The message never repeats the value.
  SNAPCAT_SECRET_KEY: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z.string().min(32, { error: 'must be at least 32 characters (e.g. openssl rand -base64 32)' }).optional(),
  ),
  SNAPCAT_WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false'),
  SNAPCAT_WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .default('PT0S,PT5S,PT5M,PT30M,PT2H,PT5H,PT10H,PT10H')
    .pipe(
      z
        .string()
        .transform((text) => text.split(',').map((part) => part.trim()))
        .pipe(
          z.array(IsoDuration, { error: 'must be ISO-8601 durations separated by commas' }).min(1).max(50),
        ),
    ),
  SNAPCAT_WEBHOOK_TIMEOUT: Interval.default('PT15S'),
  SNAPCAT_WEBHOOK_SECRET_OVERLAP: IsoDuration.default('PT24H'),
  SNAPCAT_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(32),
  SNAPCAT_WEBHOOK_CHECKPOINT_EVERY: Interval.default('PT1M'),
});

/**
 * SNAPCAT_EVENT_STORE: `memory:`, `sqlite:<file>`, or an EventStoreDB/KurrentDB connection string checked
 * rule by rule (connection.ts): the message names the setting and the rule, never the value (it may hold a
 * password).
 */
function checkEventStore(value: string, ctx: z.RefinementCtx): void {
  if (value === 'memory:' || /^sqlite:.+$/.test(value)) return;
  if (!isEventStoreConnection(value)) {
    ctx.addIssue({
      code: 'custom',
      message:
        'must be memory:, sqlite:<file> or an EventStoreDB/KurrentDB connection string (esdb://, esdb+discover://, kurrentdb://, kurrentdb+discover://)',
    });
    return;
  }
  try {
    parseEventStoreConnection(value);
  } catch (error) {
    if (!(error instanceof ConnectionStringError)) throw error;
    ctx.addIssue({ code: 'custom', message: `${error.setting}: ${error.rule}` });
  }
}

/** Used only with SNAPCAT_ENV=development and no SNAPCAT_SECRET_KEY: public, so never for real secrets. */
export const DEVELOPMENT_SECRET_KEY = 'snapcat-development-key-not-secret-000';

export interface Config {
  /** What `npm start` runs: the API and the workers (all), the API only, or the workers only. */
  role: 'all' | 'api' | 'workers';
  /** Whether an API process runs a projector too (one is active per prefix and store, the rest stand by). */
  projector: boolean;
  port: number;
  /**
   * SNAPCAT_OPS_PORT: where a workers or projector process serves /healthz, /readyz and /metrics (ops-server.ts);
   * unset, it serves no HTTP. An API process serves them on `port` and ignores it.
   */
  opsPort: number | undefined;
  /** 127.0.0.1 by default without tokens, 0.0.0.0 with; a non-loopback host without tokens is refused. */
  host: string;
  /** The configured tokens (SNAPCAT_TOKENS), hashes only; empty: authentication is off. */
  tokens: TokenEntry[];
  /** Requests per second per token (per client address without tokens); 0: no limit. */
  rateLimit: number;
  /** GraphQL subscriptions one token (client address) may hold open per process; 0: no limit. */
  maxStreamsPerToken: number;
  /** SNAPCAT_EVENT_STORE as given (it may hold a password: log `redactConnection(eventStore)`). */
  eventStore: string;
  /** What the event store's connection string allows but probably does not mean, told once at start. */
  eventStoreWarnings: string[];
  redisUrl: string;
  /**
   * Start a private redis-server (from PATH) when nothing answers at redisUrl, a loopback redis:// URL:
   * SNAPCAT_EMBEDDED_REDIS=on, or `auto` (the default) when SNAPCAT_REDIS_URL is not set at all.
   */
  embeddedRedis: boolean;
  storageRoots: string[];
  /** Where a job's snapshots go when its registration names no directory. */
  defaultCheckpointDir: string;
  defaultSavepointDir: string;
  /**
   * SNAPCAT_NAMESPACE_ROOTS: the storage each namespace's tokens may name beyond the default directories and
   * their jobs' own (`services/api/src/namespace-storage.ts`); disjoint, inside the storage roots.
   */
  namespaceRoots: Record<string, string[]>;
  /** How to reach s3:// roots (endpoint, region and credentials come from the AWS environment). */
  s3: { forcePathStyle: boolean | undefined; concurrency: number };
  logLevel: z.infer<typeof EnvSchema>['SNAPCAT_LOG_LEVEL'];
  /**
   * Prefix of every Redis key snapcat uses (BullMQ queues, positions, leases, the read model); a store's keys
   * live under `<prefix>:{<storeId>}` (see storeNamespace).
   */
  queuePrefix: string;
  /** How long a SIGTERM may take: what waits on Redis is abandoned before, so the store closes cleanly. */
  shutdownGraceMs: number;
  /** When the prefix last held another store's state: build this store's afresh beside it, or exit 2. */
  onForeignReadModel: ForeignStatePolicy;
  retentionSweepMs: number;
  /** How often the mirror of each managed job asks Flink for its checkpoints and status (issue 19). */
  flinkPollMs: number;
  orphanGraceMs: number;
  deleteOrphans: boolean;
  discardAttempts: number;
  discardBackoffMs: number;
  /** Minimum events between two aggregate snapshots of a job (more for large aggregates). */
  aggregateSnapshotEvery: number;
  environment: 'production' | 'development';
  webhooks: WebhookConfig;
}

export interface WebhookConfig {
  /**
   * The key that seals subscription secrets; undefined outside development when SNAPCAT_SECRET_KEY is not
   * set, in which case webhooks do not start. Never logged.
   */
  secretKey: string | undefined;
  /** Without SNAPCAT_SECRET_KEY in development: sealed with a public key, which is logged as a warning. */
  usingDevelopmentKey: boolean;
  allowPrivate: boolean;
  /** The wait before each attempt: the first entry is the first attempt (normally immediately). */
  scheduleMs: number[];
  timeoutMs: number;
  rotationOverlapMs: number;
  concurrency: number;
  checkpointEveryMs: number;
}

/**
 * Whether the event store outlives the process (not `memory:`): only such a catalogue claims storage roots
 * and deletes orphans (decision 0044); one in memory is another catalogue at every start.
 */
export const storeOutlivesProcess = (eventStore: string): boolean => !/^memory:/i.test(eventStore);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A storage root or directory: an s3:// (s3a://, s3p://) URI as written, a local path made absolute. */
function storageLocation(location: string): string {
  if (/^s3[ap]?:\/\//i.test(location)) return location.replace(/\/+$/, '');
  // A file:// URI is its path (Flink spells local state so): resolved as a relative path, it made a directory
  // named `file:` under the working directory (a walkthrough).
  if (/^file:/i.test(location)) {
    try {
      return resolve(fileURLToPath(location));
    } catch {
      throw new ConfigError(
        `invalid configuration:\n  ${location}: not a file:// URI of an absolute local path`,
      );
    }
  }
  return resolve(location);
}

/** Whether a location lies inside one of the storage roots (both normalised). */
const insideARoot = (location: string, storageRoots: readonly string[]): boolean =>
  storageRoots.some((root) => isWithin(normaliseLocation(location), normaliseLocation(root)));

/** Where snapshots live: the roots, the default directories, and each namespace's storage. */
function storageConfig(
  e: z.infer<typeof EnvSchema>,
): Pick<Config, 'storageRoots' | 'defaultCheckpointDir' | 'defaultSavepointDir' | 'namespaceRoots'> {
  const storageRoots = e.SNAPCAT_STORAGE_ROOTS.split(',').map((root, index) => {
    // An empty entry (a trailing comma) resolved to the working directory: a root the orphan sweep may delete in.
    if (root.trim() === '') {
      throw new ConfigError(
        `invalid configuration:\n  SNAPCAT_STORAGE_ROOTS: entry ${index + 1} of the comma-separated list is empty`,
      );
    }
    return storageLocation(root.trim());
  });
  const firstRoot = storageRoots[0]!;
  const defaultCheckpointDir = storageLocation(e.SNAPCAT_CHECKPOINT_DIR ?? `${firstRoot}/checkpoints`);
  const defaultSavepointDir = storageLocation(e.SNAPCAT_SAVEPOINT_DIR ?? `${firstRoot}/savepoints`);
  const defaults = [defaultCheckpointDir, defaultSavepointDir];
  // A default directory outside the roots made every job that names none a 400 naming
  // body.storage.checkpointDir, a field the client never sent (a walkthrough): refused here instead.
  for (const [variable, dir] of [
    ['SNAPCAT_CHECKPOINT_DIR', defaultCheckpointDir],
    ['SNAPCAT_SAVEPOINT_DIR', defaultSavepointDir],
  ] as const) {
    if (!insideARoot(dir, storageRoots)) {
      throw new ConfigError(
        `invalid configuration:\n  ${variable}: ${dir} is not inside SNAPCAT_STORAGE_ROOTS (${storageRoots.join(', ')}); ` +
          'every directory snapcat names must lie in a root',
      );
    }
  }
  const namespaceRoots = parseNamespaceRoots(e.SNAPCAT_NAMESPACE_ROOTS, storageRoots, defaults);
  return { storageRoots, defaultCheckpointDir, defaultSavepointDir, namespaceRoots };
}

/**
 * SNAPCAT_NAMESPACE_ROOTS: `team-a=s3://bucket/team-a,/data/team-a;team-b=/data/team-b`. Each namespace's
 * storage must lie inside the storage roots, and no two namespaces' (nor a namespace's and the default
 * directories, which every namespace writes new directories in) may overlap: a team's token could otherwise
 * name, and so import and discard, another team's files.
 */
export function parseNamespaceRoots(
  value: string | undefined,
  storageRoots: readonly string[],
  defaultDirs: readonly string[],
): Record<string, string[]> {
  const fail = (message: string): never => {
    throw new ConfigError(`invalid configuration:\n  SNAPCAT_NAMESPACE_ROOTS: ${message}`);
  };
  const roots: Record<string, string[]> = {};
  const claimed: { namespace: string; location: string }[] = [
    ...defaultDirs.map((location) => ({ namespace: 'the default directories', location })),
  ];
  for (const entry of (value ?? '').split(';').map((part) => part.trim())) {
    if (entry === '') continue;
    // At the first `=` only: a location may hold one (`s3://bucket/env=prod`).
    const equals = entry.indexOf('=');
    const namespace = entry.slice(0, Math.max(equals, 0)).trim();
    const locations = equals < 0 ? '' : entry.slice(equals + 1).trim();
    if (!entry.includes('=') || locations === '') fail(`"${entry}" is not namespace=location[,location]`);
    if (!NAMESPACE_PATTERN.test(namespace)) fail(`${namespace} is not a namespace name`);
    if (roots[namespace]) fail(`namespace ${namespace} is given twice`);
    roots[namespace] = locations.split(',').map((location) => {
      if (location.trim() === '') fail(`namespace ${namespace} names an empty location`);
      return storageLocation(location.trim());
    });
    for (const location of roots[namespace]) {
      const key = normaliseLocation(location);
      if (!insideARoot(location, storageRoots)) {
        fail(`${location} (namespace ${namespace}) is not inside SNAPCAT_STORAGE_ROOTS`);
      }
      const overlap = claimed.find(
        (other) =>
          isWithin(key, normaliseLocation(other.location)) ||
          isWithin(normaliseLocation(other.location), key),
      );
      if (overlap) {
        fail(`${location} (namespace ${namespace}) overlaps ${overlap.location} (${overlap.namespace})`);
      }
      claimed.push({ namespace: `namespace ${namespace}`, location });
    }
  }
  return roots;
}

/** A plain redis:// URL on this machine: where a private redis-server may be started. */
export function isLoopbackRedisUrl(url: string): boolean {
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  return parsed?.protocol === 'redis:' && ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
}

/** One refused variable; a list's entry by its place, counted from 1 (`SNAPCAT_WEBHOOK_RETRY_SCHEDULE.1` named the second). */
function configIssueLine({ path: [name, index], message }: z.core.$ZodIssue): string {
  return typeof index === 'number'
    ? `  ${String(name)}: entry ${index + 1} of the comma-separated list: ${message}`
    : `  ${String(name)}: ${message}`;
}

/**
 * Reads the configuration from the environment; a bad value is a ConfigError naming the variable.
 * `servesApi: false` for an entry point that never serves the API (the workers and projector processes):
 * without tokens it may still listen beyond loopback, as its ops endpoints are public anyway. By default
 * SNAPCAT_ROLE decides (`workers` serves none).
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  { servesApi }: { servesApi?: boolean } = {},
): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(configIssueLine);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.SNAPCAT_ROLE && e.SNAPCAT_WORKERS === 'off' && e.SNAPCAT_ROLE !== 'api') {
    throw new ConfigError(
      `invalid configuration:\n  SNAPCAT_WORKERS: off contradicts SNAPCAT_ROLE=${e.SNAPCAT_ROLE} (use SNAPCAT_ROLE alone)`,
    );
  }
  if (e.SNAPCAT_EMBEDDED_REDIS === 'on' && !isLoopbackRedisUrl(e.SNAPCAT_REDIS_URL)) {
    throw new ConfigError(
      'invalid configuration:\n  SNAPCAT_EMBEDDED_REDIS: on needs SNAPCAT_REDIS_URL to be a redis:// URL on 127.0.0.1 or localhost (a private redis-server listens only there)',
    );
  }
  const tokens = loadTokens(e.SNAPCAT_TOKENS);
  const role = e.SNAPCAT_ROLE ?? (e.SNAPCAT_WORKERS === 'off' ? 'api' : 'all');
  const host = e.SNAPCAT_HOST ?? (tokens.length > 0 ? '0.0.0.0' : '127.0.0.1');
  if (tokens.length === 0 && (servesApi ?? role !== 'workers') && !isLoopbackHost(host)) {
    throw new ConfigError(
      `invalid configuration:\n  SNAPCAT_HOST: ${host} is not a loopback address, and without SNAPCAT_TOKENS ` +
        'authentication is off: make a token with `npx snapcat token create --name <name> --scope admin ' +
        "--namespace '*'`, put the line it prints into SNAPCAT_TOKENS, or listen on 127.0.0.1",
    );
  }
  return {
    role,
    projector: e.SNAPCAT_PROJECTOR === 'on',
    port: e.SNAPCAT_PORT,
    opsPort: e.SNAPCAT_OPS_PORT,
    host,
    tokens,
    rateLimit: e.SNAPCAT_RATE_LIMIT,
    maxStreamsPerToken: e.SNAPCAT_MAX_STREAMS_PER_TOKEN,
    eventStore: e.SNAPCAT_EVENT_STORE,
    eventStoreWarnings: isEventStoreConnection(e.SNAPCAT_EVENT_STORE)
      ? parseEventStoreConnection(e.SNAPCAT_EVENT_STORE).warnings
      : [],
    redisUrl: e.SNAPCAT_REDIS_URL,
    embeddedRedis:
      e.SNAPCAT_EMBEDDED_REDIS === 'on' || (e.SNAPCAT_EMBEDDED_REDIS === 'auto' && !env.SNAPCAT_REDIS_URL),
    ...storageConfig(e),
    s3: {
      forcePathStyle:
        e.SNAPCAT_S3_FORCE_PATH_STYLE === undefined ? undefined : e.SNAPCAT_S3_FORCE_PATH_STYLE === 'true',
      concurrency: e.SNAPCAT_S3_CONCURRENCY,
    },
    logLevel: e.SNAPCAT_LOG_LEVEL,
    queuePrefix: e.SNAPCAT_QUEUE_PREFIX,
    onForeignReadModel: e.SNAPCAT_ON_FOREIGN_READ_MODEL,
    shutdownGraceMs: durationMs(e.SNAPCAT_SHUTDOWN_GRACE),
    retentionSweepMs: durationMs(e.SNAPCAT_RETENTION_SWEEP),
    flinkPollMs: durationMs(e.SNAPCAT_FLINK_POLL),
    orphanGraceMs: durationMs(e.SNAPCAT_ORPHAN_GRACE),
    deleteOrphans: e.SNAPCAT_DELETE_ORPHANS === 'true',
    discardAttempts: e.SNAPCAT_DISCARD_ATTEMPTS,
    discardBackoffMs: e.SNAPCAT_DISCARD_BACKOFF_MS,
    aggregateSnapshotEvery: e.SNAPCAT_AGGREGATE_SNAPSHOT_EVERY,
    environment: e.SNAPCAT_ENV,
    webhooks: {
      secretKey:
        e.SNAPCAT_SECRET_KEY ?? (e.SNAPCAT_ENV === 'development' ? DEVELOPMENT_SECRET_KEY : undefined),
      usingDevelopmentKey: e.SNAPCAT_SECRET_KEY === undefined && e.SNAPCAT_ENV === 'development',
      allowPrivate: e.SNAPCAT_WEBHOOK_ALLOW_PRIVATE === 'true',
      scheduleMs: e.SNAPCAT_WEBHOOK_RETRY_SCHEDULE.map(durationMs),
      timeoutMs: durationMs(e.SNAPCAT_WEBHOOK_TIMEOUT),
      rotationOverlapMs: durationMs(e.SNAPCAT_WEBHOOK_SECRET_OVERLAP),
      concurrency: e.SNAPCAT_WEBHOOK_CONCURRENCY,
      checkpointEveryMs: durationMs(e.SNAPCAT_WEBHOOK_CHECKPOINT_EVERY),
    },
  };
}

/** 127.0.0.0/8, ::1 and localhost: addresses that only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * SNAPCAT_TOKENS: a file of token lines, or the lines themselves (separated by newlines or commas). A value
 * that names an existing file is read; one with a `:` is taken as lines. Errors name the line and the rule,
 * never the line's content.
 */
function loadTokens(value: string | undefined): TokenEntry[] {
  if (value === undefined) return [];
  let text = value;
  let where = 'SNAPCAT_TOKENS';
  if (existsSync(value)) {
    where = `SNAPCAT_TOKENS (file ${value})`;
    try {
      text = readFileSync(value, 'utf8');
    } catch (error) {
      throw new ConfigError(
        `invalid configuration:\n  ${where}: cannot read it (${(error as Error).message})`,
      );
    }
  } else if (!value.includes(':')) {
    // Not shown: a token pasted where its configuration line belongs would land in the logs.
    throw new ConfigError(
      'invalid configuration:\n  SNAPCAT_TOKENS: names no existing file and holds no token line ' +
        '(name:scopes:namespaces:sha256hex, as `snapcat token create` prints on its second line); ' +
        'the value is not shown, as it may be a token',
    );
  }
  try {
    const tokens = parseTokenList(text);
    if (tokens.length === 0) throw new ConfigError(`invalid configuration:\n  ${where}: names no token`);
    return tokens;
  } catch (error) {
    if (error instanceof TokenLineError) {
      throw new ConfigError(`invalid configuration:\n  ${where}: ${error.message}`);
    }
    throw error;
  }
}
