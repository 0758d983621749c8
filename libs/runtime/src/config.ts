import { resolve } from 'node:path';
import { z } from 'zod';
import { IsoDuration, durationMs } from '@snapcat/domain';

const EnvSchema = z.object({
  SNAPCAT_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  SNAPCAT_HOST: z.string().min(1).default('0.0.0.0'),
  SNAPCAT_EVENT_STORE: z
    .string()
    .regex(/^(memory:|sqlite:.+|esdb(\+discover)?:\/\/.+)$/, {
      error: 'must be memory:, sqlite:<file> or an esdb:// connection string',
    })
    .default('sqlite:./data/snapcat.db'),
  SNAPCAT_REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// URL' })
    .default('redis://127.0.0.1:6379'),
  SNAPCAT_STORAGE_ROOTS: z.string().min(1).default('./data/snapshots'),
  SNAPCAT_CHECKPOINT_DIR: z.string().min(1).optional(),
  SNAPCAT_SAVEPOINT_DIR: z.string().min(1).optional(),
  SNAPCAT_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  SNAPCAT_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'letters, digits, _ and - only' })
    .default('snapcat'),
  SNAPCAT_RETENTION_SWEEP: IsoDuration.default('PT1M'),
  SNAPCAT_ORPHAN_GRACE: IsoDuration.default('PT24H'),
  SNAPCAT_DELETE_ORPHANS: z.enum(['true', 'false']).default('false'),
  SNAPCAT_DISCARD_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  SNAPCAT_DISCARD_BACKOFF_MS: z.coerce.number().int().min(1).max(3_600_000).default(1000),
  SNAPCAT_AGGREGATE_SNAPSHOT_EVERY: z.coerce.number().int().min(1).max(100_000_000).default(250),
});

export interface Config {
  port: number;
  host: string;
  eventStore: string;
  redisUrl: string;
  storageRoots: string[];
  /** Where a job's snapshots go when its registration names no directory. */
  defaultCheckpointDir: string;
  defaultSavepointDir: string;
  logLevel: z.infer<typeof EnvSchema>['SNAPCAT_LOG_LEVEL'];
  /** Prefix of every Redis key snapcat's workers use (BullMQ queues, positions, leases). */
  queuePrefix: string;
  retentionSweepMs: number;
  orphanGraceMs: number;
  deleteOrphans: boolean;
  discardAttempts: number;
  discardBackoffMs: number;
  /** Minimum events between two aggregate snapshots of a job (more for large aggregates). */
  aggregateSnapshotEvery: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the configuration from the environment; a bad value is a ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const storageRoots = e.SNAPCAT_STORAGE_ROOTS.split(',').map((root) => resolve(root.trim()));
  const firstRoot = storageRoots[0]!;
  return {
    port: e.SNAPCAT_PORT,
    host: e.SNAPCAT_HOST,
    eventStore: e.SNAPCAT_EVENT_STORE,
    redisUrl: e.SNAPCAT_REDIS_URL,
    storageRoots,
    defaultCheckpointDir: resolve(e.SNAPCAT_CHECKPOINT_DIR ?? `${firstRoot}/checkpoints`),
    defaultSavepointDir: resolve(e.SNAPCAT_SAVEPOINT_DIR ?? `${firstRoot}/savepoints`),
    logLevel: e.SNAPCAT_LOG_LEVEL,
    queuePrefix: e.SNAPCAT_QUEUE_PREFIX,
    retentionSweepMs: durationMs(e.SNAPCAT_RETENTION_SWEEP),
    orphanGraceMs: durationMs(e.SNAPCAT_ORPHAN_GRACE),
    deleteOrphans: e.SNAPCAT_DELETE_ORPHANS === 'true',
    discardAttempts: e.SNAPCAT_DISCARD_ATTEMPTS,
    discardBackoffMs: e.SNAPCAT_DISCARD_BACKOFF_MS,
    aggregateSnapshotEvery: e.SNAPCAT_AGGREGATE_SNAPSHOT_EVERY,
  };
}
