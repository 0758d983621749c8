import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis, { type Command } from 'ioredis';

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

/** A Redis server of the test's own, so that FLUSHALL wipes nothing another suite uses. */
export async function startRedisServer(onPort?: number): Promise<{
  url: string;
  port: number;
  stop(): Promise<void>;
  pause(): void;
  resume(): void;
  restart(): Promise<void>;
}> {
  const { spawn } = await import('node:child_process');
  const { createServer } = await import('node:net');
  const port =
    onPort ??
    (await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    }));
  // A directory of its own: a replica writes the snapshot it syncs from its primary there (dump.rdb).
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  const start = async () => {
    const started = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    const client = new IORedis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
    const deadline = Date.now() + 10_000;
    while ((await client.ping().catch(() => '')) !== 'PONG') {
      if (Date.now() > deadline) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    client.disconnect();
    return started;
  };
  const kill = async () => {
    // Stopped already, or not (SIGKILL ends a paused one too).
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  };
  let child = await start();
  return {
    url,
    port,
    /** Hung, not gone: connections stay open and nothing is answered (SIGSTOP), until `resume`. */
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    /**
     * Killed and started again on the same port, with what its last SAVE wrote (nothing when none): a crash
     * that loses the writes since, as a restart without its last appends or a failover to a lagging replica.
     */
    async restart() {
      await kill();
      child = await start();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Records what a test's own (real) connection sends from now on: each command's name, and the round trips.
 * Commands written with no reply arriving in between share a round trip (as auto-pipelining sends them);
 * a command written after a reply starts another (it may depend on that reply).
 */
export function recordRoundTrips(connection: IORedis): { commands: string[]; roundTrips: number } {
  const record = { commands: [] as string[], roundTrips: 0 };
  let replied = true;
  const send = connection.sendCommand.bind(connection);
  connection.sendCommand = (command: Command, stream?: Parameters<IORedis['sendCommand']>[1]) => {
    record.commands.push(command.name);
    if (replied) record.roundTrips += 1;
    replied = false;
    command.promise.then(
      () => (replied = true),
      () => (replied = true),
    );
    return send(command, stream);
  };
  return record;
}
