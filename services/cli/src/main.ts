import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { webhookJsonSchemaFiles } from '@snapcat/webhooks';
import { openApiDocumentText } from '@snapcat/api/src/openapi';
import { JOB_STREAM_PREFIX, jobStream, recordedEventView } from '@snapcat/application';
import { JobId } from '@snapcat/domain';
import { rebuildReadModel, verifyReadModel } from '@snapcat/read-model';
import {
  SCOPES,
  TokenLineError,
  connectRedis,
  forgetStoreState,
  storeIsRunning,
  loadConfigOrExit,
  namespaceKeys,
  newToken,
  parseTokenLine,
  storeNamespace,
  tokenLine,
} from '@snapcat/runtime';
import {
  STORE_ID,
  openEventStore,
  readStreamPages,
  redactConnection,
  storeIdentity,
} from '@snapcat/event-store';
import { ROOT_CLAIM_FILE, openSnapshotStorage } from '@snapcat/storage';
import { Progress } from './progress';

/** Each command and what it does: the usage, and `<command> --help`. */
const COMMANDS: [string, string][] = [
  ['replay', 'rebuild the read model from the log into a fresh key space, then switch'],
  [
    'audit verify',
    'compare the read model with the log, job by job (safe while the service writes; exit 1 on drift)',
  ],
  ['audit export --job <id> [--from <time>] [--to <time>]', "the job's events as NDJSON on stdout"],
  [
    'schema write [--out <dir>] [--openapi <file>]',
    'write the JSON Schema of every webhook payload (default schema/webhooks) and the OpenAPI document of the REST API (default schema/openapi.json)',
  ],
  [
    'storage claim',
    'give this catalogue the storage roots nobody claimed, files and all, so that its orphan sweep may delete there (decision 0044; only files written from now on)',
  ],
  ['redis stores', 'the event stores whose state is kept under the Redis prefix'],
  ['redis forget <storeId>', "delete another store's state (read model, positions, queues) from Redis"],
  [
    "token create --name <name> --scope <scope> [--scope <scope>] --namespace <ns>|'*' [--namespace <ns>]",
    `print a new access token (once) and its SNAPCAT_TOKENS line; scopes ${SCOPES.join(', ')}; the namespaces it may act in, or '*' for every one`,
  ],
];
const usage = (only?: string) =>
  [
    `usage: npx snapcat <command>   (or: npm run --silent snapcat -- <command>)`,
    ...COMMANDS.filter(([name]) => !only || name.startsWith(only)).map(
      ([name, what]) => `  ${name}\n      ${what}`,
    ),
    'Configuration comes from the same SNAPCAT_* variables as the service.',
  ].join('\n');
const USAGE = usage();

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      job: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      openapi: { type: 'string' },
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      namespace: { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
  });
  const command = positionals.slice(0, 2).join(' ');
  const commands = [
    'replay',
    'audit verify',
    'audit export',
    'schema write',
    'redis stores',
    'redis forget',
    'token create',
    'storage claim',
  ];
  if (values.help) {
    process.stdout.write(`${usage(commands.includes(command) ? command : undefined)}\n`);
    return 0;
  }
  if (!commands.includes(command)) {
    process.stderr.write(`${command ? `unknown command: ${command}\n` : ''}${USAGE}\n`);
    return 2;
  }
  if (command === 'schema write') {
    return writeSchemas(
      values.out ?? join('schema', 'webhooks'),
      values.openapi ?? join('schema', 'openapi.json'),
    );
  }
  if (command === 'token create') return createToken(values);
  const config = loadConfigOrExit();
  const store = openEventStore(config.eventStore);
  try {
    if (command === 'audit export') return await exportJob(store, values);
    if (command === 'storage claim') return await claimStorage(config, store);
    const redis = connectRedis(config.redisUrl);
    try {
      const storeId = await storeIdentity(store);
      if (command === 'redis stores') return await listStores(redis, config.queuePrefix, storeId);
      if (command === 'redis forget')
        return await forgetStore(redis, config.queuePrefix, storeId, positionals[2]);
      const prefix = storeNamespace(config.queuePrefix, storeId);
      if (command === 'replay') return await replay(store, redis, prefix);
      return await auditVerify(store, redis, prefix);
    } finally {
      redis.disconnect();
    }
  } finally {
    await store.close();
  }
}

type Store = ReturnType<typeof openEventStore>;

/**
 * Claims every storage root nobody claimed for this catalogue, whatever it holds (decision 0044), and prints
 * each root's claim; exit 1 when a root is another catalogue's (its claim is left as it is).
 */
async function claimStorage(config: ReturnType<typeof loadConfigOrExit>, store: Store): Promise<number> {
  // A store with no job is most likely not the catalogue's (a mistyped SNAPCAT_EVENT_STORE makes a new one):
  // claiming for it would take the roots from the real catalogue.
  const [job] = await store.readAll({ maxCount: 1, filter: { streamNamePrefixes: [JOB_STREAM_PREFIX] } });
  if (!job) {
    process.stderr.write(
      `the event store (${redactConnection(config.eventStore)}) holds no job: not claiming storage for it. Check SNAPCAT_EVENT_STORE, ` +
        'or register a job first\n',
    );
    return 2;
  }
  const storeId = await storeIdentity(store);
  process.stdout.write(`this catalogue: event store ${storeId}\n`);
  const storage = openSnapshotStorage(config.storageRoots, config.s3);
  const claims = await storage.claimRoots(storeId, { evenIfNotEmpty: true });
  let others = 0;
  for (const { root, catalogue, claimedAt } of claims) {
    const whose = catalogue === storeId ? 'this catalogue' : `the catalogue of event store ${catalogue}`;
    if (catalogue !== storeId) others += 1;
    process.stdout.write(`${root}  claimed by ${whose} since ${claimedAt}\n`);
  }
  if (others > 0) {
    process.stderr.write(
      `${others} root(s) belong to another catalogue: its orphan sweep deletes there, this one's never does. ` +
        `Once that catalogue is gone for good, delete the root's ${ROOT_CLAIM_FILE} and claim it again.\n`,
    );
  }
  return others > 0 ? 1 : 0;
}

/** Rebuilds the read model into a fresh key space, then makes it current. */
async function replay(store: Store, redis: Redis, prefix: string): Promise<number> {
  const progress = await Progress.overLog(store, 'replay');
  const r = await rebuildReadModel(store, redis, prefix, (events, at) =>
    progress.update(events, Number(at.commit)),
  );
  progress.finish();
  process.stdout.write(
    `replayed ${r.events} events of ${r.jobs} jobs in ${r.seconds.toFixed(2)} s: ` +
      `${Math.round(r.eventsPerSecond)} events/s; read model version ${r.version} is now current\n`,
  );
  return 0;
}

/** Compares the read model with the log; exit 1 when they differ. */
async function auditVerify(store: Store, redis: Redis, prefix: string): Promise<number> {
  const progress = await Progress.overLog(store, 'audit verify');
  const differences = await verifyReadModel(store, redis, prefix, (events, at) =>
    progress.update(events, Number(at.commit)),
  );
  progress.finish();
  for (const d of differences) {
    process.stdout.write(
      `DRIFT ${d.key}\n  expected: ${JSON.stringify(d.expected)}\n  actual:   ${JSON.stringify(d.actual)}\n`,
    );
  }
  if (
    differences.length === 1 &&
    differences[0]!.key.endsWith(':position') &&
    differences[0]!.actual === null
  ) {
    process.stdout.write(
      'no read model of this event store in this Redis: is SNAPCAT_REDIS_URL (and SNAPCAT_QUEUE_PREFIX) the ' +
        "service's? A service's projector builds it as it starts; `snapcat replay` builds it now\n",
    );
  }
  process.stdout.write(
    differences.length
      ? `${differences.length} difference${differences.length === 1 ? '' : 's'}\n`
      : 'read model matches the log\n',
  );
  return differences.length ? 1 : 0;
}

async function listStores(redis: Redis, prefix: string, storeId: string): Promise<number> {
  const keys = namespaceKeys(prefix);
  const [owner, stores] = await Promise.all([redis.get(keys.owner), redis.hgetall(keys.stores)]);
  for (const [id, lastStarted] of Object.entries(stores).sort(([, a], [, b]) => a.localeCompare(b))) {
    const notes = [id === storeId ? 'this store' : '', id === owner ? 'last started' : ''].filter(Boolean);
    process.stdout.write(
      `${id}  last started ${lastStarted}${notes.length ? `  (${notes.join(', ')})` : ''}\n`,
    );
  }
  return 0;
}

/** Deletes everything under another store's namespace; never this store's own, which a service may be using. */
async function forgetStore(redis: Redis, prefix: string, storeId: string, target: string | undefined) {
  if (!target || !STORE_ID.test(target)) {
    process.stderr.write(`redis forget needs a store id (16 hex digits; see: redis stores)\n${USAGE}\n`);
    return 2;
  }
  if (target === storeId) {
    process.stderr.write(`${target} is this event store (SNAPCAT_EVENT_STORE): its state is in use\n`);
    return 2;
  }
  if (await storeIsRunning(redis, prefix, target)) {
    // SNAPCAT_EVENT_STORE may be mistyped (a fresh SQLite file is another store): never under a live process.
    process.stderr.write(
      `store ${target} is running: a process of it holds a lease on its state (leases expire within 5 s of its end)\n`,
    );
    return 2;
  }
  const deleted = await forgetStoreState(redis, prefix, target);
  process.stdout.write(`deleted ${deleted} keys of store ${target}\n`);
  return 0;
}

/**
 * Prints a new token on the first line of stdout and its SNAPCAT_TOKENS line on the second; the token is
 * shown this once and stored nowhere (the line holds its SHA-256 only).
 */
function createToken(values: { name?: string; scope?: string[]; namespace?: string[] }): number {
  const scopes = (values.scope ?? []).flatMap((s) => s.split('+'));
  const namespaces = (values.namespace ?? []).flatMap((n) => n.split('+'));
  // No namespace given is no token for every namespace: least privilege unless '*' is asked for in so many words.
  if (!values.name || scopes.length === 0 || namespaces.length === 0) {
    process.stderr.write(
      `token create needs --name, at least one --scope and at least one --namespace ('*' for every one)\n${usage('token create')}\n`,
    );
    return 2;
  }
  const token = newToken();
  const entry = {
    name: values.name,
    scopes: scopes as (typeof SCOPES)[number][],
    namespaces: namespaces.includes('*') ? ('*' as const) : namespaces,
  };
  const line = tokenLine(entry, token);
  try {
    parseTokenLine(line, 1); // the same rules as the service's configuration
  } catch (error) {
    if (!(error instanceof TokenLineError)) throw error;
    process.stderr.write(`token create: ${error.message.replace(/^line 1: /, '')}\n`);
    return 2;
  }
  process.stderr.write(
    'The token (first line) is shown this once: give it to its client, which sends `Authorization: Bearer <token>`.\n' +
      'Add the second line to SNAPCAT_TOKENS (a file of such lines, or the lines separated by commas).\n',
  );
  process.stdout.write(`${token}\n${line}\n`);
  return 0;
}

function writeSchemas(dir: string, openapi: string): number {
  mkdirSync(dir, { recursive: true });
  const files = webhookJsonSchemaFiles();
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  process.stdout.write(`wrote ${Object.keys(files).length} schemas to ${dir}\n`);
  mkdirSync(dirname(openapi), { recursive: true });
  writeFileSync(openapi, openApiDocumentText());
  process.stdout.write(`wrote the OpenAPI document to ${openapi}\n`);
  return 0;
}

async function exportJob(
  store: Store,
  values: { job?: string; from?: string; to?: string },
): Promise<number> {
  const job = JobId.safeParse(values.job);
  const from = values.from === undefined ? undefined : Date.parse(values.from);
  const to = values.to === undefined ? undefined : Date.parse(values.to);
  if (!job.success || Number.isNaN(from) || Number.isNaN(to)) {
    process.stderr.write(`--job must be a Flink JobID; --from and --to ISO-8601 times\n${USAGE}\n`);
    return 2;
  }
  const [first] = await store.readStream(jobStream(job.data), { maxCount: 1 });
  if (!first) {
    process.stderr.write(`no job ${job.data} in the event store\n`);
    return 1;
  }
  const [last] = await store.readStream(jobStream(job.data), { direction: 'backwards', maxCount: 1 });
  const progress = new Progress('audit export', Number(last!.revision) + 1);
  let events = 0;
  for await (const page of readStreamPages(store, jobStream(job.data))) {
    for (const recorded of page) {
      const view = recordedEventView(recorded);
      const at = Date.parse(view.occurredAt);
      if ((from !== undefined && at < from) || (to !== undefined && at > to)) continue;
      process.stdout.write(`${JSON.stringify(view)}\n`);
    }
    events += page.length;
    progress.update(events, events);
  }
  progress.finish();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`snapcat: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
