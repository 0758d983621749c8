import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });

/**
 * A real Redis Cluster of `masters` redis-server processes on local ports (`--cluster-enabled yes`, slots
 * assigned by `redis-cli --cluster create`), and its `redis+cluster://` URL for SNAPCAT_REDIS_URL.
 */
export async function startRedisCluster(
  masters = 3,
): Promise<{ url: string; ports: number[]; stop(): Promise<void> }> {
  // A port found free can be taken before redis-server binds it (another suite starting its own cluster):
  // that server exits at once, and the cluster is started again on other ports.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startRedisClusterOnce(masters);
    } catch (error) {
      if (!(error instanceof ServerExited) || attempt === 3) throw error;
    }
  }
}

class ServerExited extends Error {}

async function startRedisClusterOnce(
  masters: number,
): Promise<{ url: string; ports: number[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-redis-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < masters; i += 1) ports.push(await freePort());
  const children: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null) return undefined;
        child.kill('SIGKILL');
        return new Promise((r) => child.once('exit', r));
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const [i, port] of ports.entries()) {
      await until(async () => {
        const exitCode = children[i]!.exitCode;
        if (exitCode !== null) throw new ServerExited(`redis-server on port ${port} exited (${exitCode})`);
        return (await ask(port, ['PING'])) === 'PONG';
      }, 'redis-server up');
    }
    const created = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (created.status !== 0)
      throw new Error(`redis-cli --cluster create failed:\n${created.stdout}${created.stderr}`);
    for (const port of ports) {
      await until(
        async () => String(await ask(port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'),
        'cluster_state:ok',
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, ports, stop };
}

async function ask(port: number, command: string[]): Promise<unknown> {
  const client = new IORedis(port, '127.0.0.1', {
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    retryStrategy: () => null,
  });
  try {
    await client.connect();
    return await client.call(command[0]!, ...command.slice(1));
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`Redis Cluster: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
