import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { webhookJsonSchemaFiles } from '@snapcat/webhooks';
import { domainEvent, jobStream } from '@snapcat/application';
import { JobId } from '@snapcat/domain';
import { rebuildReadModel, verifyReadModel } from '@snapcat/read-model';
import { connectRedis, loadConfigOrExit } from '@snapcat/runtime';
import { formatPosition, openEventStore } from '@snapcat/event-store';

const USAGE = `usage: npm run snapcat -- <command>
  replay                                    rebuild the read model from the log into a fresh key space, then switch
  audit verify                              fold the log from scratch and compare with the read model (exit 1 on drift)
  audit export --job <id> [--from <time>] [--to <time>]   the job's events as NDJSON on stdout
  schema write [--out <dir>]                write the JSON Schema of every webhook payload (default schema/webhooks)
Configuration comes from the same SNAPCAT_* variables as the service.`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      job: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const command = positionals.join(' ');
  if (values.help || !['replay', 'audit verify', 'audit export', 'schema write'].includes(command)) {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (command === 'schema write') return writeSchemas(values.out ?? join('schema', 'webhooks'));
  const config = loadConfigOrExit();
  const store = openEventStore(config.eventStore);
  try {
    if (command === 'audit export') return await exportJob(store, values);
    const redis = connectRedis(config.redisUrl);
    try {
      if (command === 'replay') {
        const r = await rebuildReadModel(store, redis, config.queuePrefix);
        process.stdout.write(
          `replayed ${r.events} events of ${r.jobs} jobs in ${r.seconds.toFixed(2)} s: ` +
            `${Math.round(r.eventsPerSecond)} events/s; read model version ${r.version} is now current\n`,
        );
        return 0;
      }
      const differences = await verifyReadModel(store, redis, config.queuePrefix);
      for (const d of differences) {
        process.stdout.write(
          `DRIFT ${d.key}\n  expected: ${JSON.stringify(d.expected)}\n  actual:   ${JSON.stringify(d.actual)}\n`,
        );
      }
      process.stdout.write(
        differences.length ? `${differences.length} differences\n` : 'read model matches the log\n',
      );
      return differences.length ? 1 : 0;
    } finally {
      redis.disconnect();
    }
  } finally {
    await store.close();
  }
}

function writeSchemas(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const files = webhookJsonSchemaFiles();
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  process.stdout.write(`wrote ${Object.keys(files).length} schemas to ${dir}\n`);
  return 0;
}

async function exportJob(
  store: ReturnType<typeof openEventStore>,
  values: { job?: string; from?: string; to?: string },
): Promise<number> {
  const job = JobId.safeParse(values.job);
  const from = values.from === undefined ? undefined : Date.parse(values.from);
  const to = values.to === undefined ? undefined : Date.parse(values.to);
  if (!job.success || Number.isNaN(from) || Number.isNaN(to)) {
    process.stderr.write(`--job must be a Flink JobID; --from and --to ISO-8601 times\n${USAGE}\n`);
    return 2;
  }
  let next = 0n;
  for (;;) {
    const page = await store.readStream(jobStream(job.data), { fromRevision: next, maxCount: 1000 });
    for (const recorded of page) {
      const event = domainEvent(recorded);
      const at = Date.parse(event.occurredAt);
      if ((from !== undefined && at < from) || (to !== undefined && at > to)) continue;
      process.stdout.write(
        `${JSON.stringify({
          revision: Number(recorded.revision),
          position: formatPosition(recorded.position),
          eventId: recorded.id,
          type: recorded.type,
          recordedAt: recorded.created.toISOString(),
          data: event,
          metadata: recorded.metadata,
        })}\n`,
      );
    }
    if (page.length < 1000) return 0;
    next = page[page.length - 1]!.revision + 1n;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`snapcat: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
