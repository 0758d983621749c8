import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { redactConnection } from '@snapcat/event-store';
import type { Config } from './config';
import type { Logger } from './log';

/** A redis-server this process started (or adopted) and stops with itself. */
export interface EmbeddedRedis {
  pid: number;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * The embedded default: when nothing answers at the configured loopback Redis address, start a private
 * `redis-server` from PATH there, its data (append-only file) under `<data>/redis` beside the SQLite log,
 * bound to loopback. Without `redis-server` on PATH, one line says how to get one and the service serves
 * REST commands alone (the read model, workers and webhooks wait for Redis, as in any Redis outage).
 */
export async function startEmbeddedRedis(config: Config, log: Logger): Promise<EmbeddedRedis | undefined> {
  if (!config.embeddedRedis) return undefined;
  const url = new URL(config.redisUrl);
  const shown = redactConnection(config.redisUrl); // never its password in a log line
  const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 6379);
  const dataDir = embeddedRedisDir(config.eventStore);
  const pidFile = join(dataDir, 'redis.pid');
  const ownerFile = join(dataDir, 'redis.owner');
  if (await answers(host, port)) return adoptLeftRunning({ host, port, dataDir, ownerFile }, config, log);
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    log.warn(
      `no Redis at ${shown} and no redis-server on PATH: install one (apt-get install redis-server, brew install redis) or set SNAPCAT_REDIS_URL; serving REST commands only until Redis answers (no read model, workers or webhooks)`,
    );
    return undefined;
  }
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      host,
      '--dir',
      dataDir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--pidfile',
      pidFile,
      '--logfile',
      join(dataDir, 'redis.log'),
      '--daemonize',
      'no',
    ],
    // A process group of its own: a Ctrl-C (SIGINT to the terminal's group) or a group stop reaches snapcat,
    // whose orderly stop decides whether it goes (another process may still use it), not the Redis itself.
    { stdio: 'ignore', detached: true },
  );
  child.unref();
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.once('error', () => undefined); // reported through `exited` (spawn failures exit too)
  const deadline = Date.now() + 5000;
  while (!(await answers(host, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      log.error('the private redis-server did not start: serving REST commands only', {
        redis: shown,
        exitCode: child.exitCode,
        log: join(dataDir, 'redis.log'),
      });
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  writeFileSync(ownerFile, String(process.pid));
  // Whatever way this process exits (a failed bind, the shutdown grace), the private Redis goes with it
  // (`stop`, the orderly way, leaves it to another process still using it).
  const exitWithProcess = () => child.kill('SIGTERM');
  process.once('exit', exitWithProcess);
  log.info('started a private Redis (no Redis answered at the default address; it stops with snapcat)', {
    redis: shown,
    pid: child.pid,
    dataDir,
    version: /v=(\S+)/.exec(version.stdout)?.[1],
  });
  const stop = async () => {
    process.off('exit', exitWithProcess);
    await stopUnlessUsed(host, port, ownerFile, () => stopChild(child, exited), log);
  };
  return { pid: child.pid!, dataDir, stop };
}

/** The pid in the owner file when that process still runs, and is not this one. */
function liveOwner(ownerFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(ownerFile, 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Stops the private Redis unless another process still has connections to it (a second replica using it:
 * this process's own are closed by now). Left running, it has no owner: the next start adopts it.
 */
async function stopUnlessUsed(
  host: string,
  port: number,
  ownerFile: string,
  stop: () => Promise<void>,
  log: Logger,
): Promise<void> {
  const clients = await connectedClients(host, port);
  // The probe's own connection is one of them.
  if (clients !== undefined && clients > 1) {
    rmSync(ownerFile, { force: true });
    log.info('left the private Redis running: other processes use it', { clients: clients - 1 });
    return;
  }
  await stop();
}

/** `connected_clients` of INFO clients, or undefined when the Redis does not answer within 500 ms. */
function connectedClients(host: string, port: number): Promise<number | undefined> {
  return new Promise((done) => {
    const socket = createConnection({ host, port });
    let text = '';
    const finish = (result: number | undefined) => {
      socket.destroy();
      done(result);
    };
    socket.setTimeout(500, () => finish(undefined));
    socket.once('error', () => finish(undefined));
    socket.once('connect', () => socket.write('INFO clients\r\n'));
    socket.on('data', (data) => {
      text += data.toString();
      const found = /connected_clients:(\d+)/.exec(text);
      if (found) finish(Number(found[1]));
    });
  });
}

/**
 * Something answers at the address. A private Redis a previous start left running (that process was killed):
 * adopted, so it stops with this one. One a live snapcat process started or adopted (a second replica on the
 * same defaults) is that process's: used, not stopped with this one. Anything else answering there is
 * someone else's Redis, used as it is.
 */
function adoptLeftRunning(
  at: { host: string; port: number; dataDir: string; ownerFile: string },
  config: Config,
  log: Logger,
): EmbeddedRedis | undefined {
  const { host, port, dataDir, ownerFile } = at;
  const shown = redactConnection(config.redisUrl);
  const pid = leftRunning(join(dataDir, 'redis.pid'));
  if (pid === undefined) return undefined;
  const owner = liveOwner(ownerFile);
  if (owner !== undefined) {
    log.info('using the private Redis another snapcat process runs (it stops with that process)', {
      redis: shown,
      pid,
      owner,
    });
    return undefined;
  }
  writeFileSync(ownerFile, String(process.pid));
  log.info('using the private Redis a previous start left running', { redis: shown, pid, dataDir });
  return { pid, dataDir, stop: () => stopUnlessUsed(host, port, ownerFile, () => stopProcess(pid), log) };
}

/** `<dir of the SQLite file>/redis`, or ./data/redis for the other stores. */
export function embeddedRedisDir(eventStore: string): string {
  const sqlite = /^sqlite:(.+)$/.exec(eventStore)?.[1];
  return resolve(sqlite ? join(dirname(sqlite), 'redis') : join('data', 'redis'));
}

/** Whether something accepts a connection and answers PING like Redis (NOAUTH counts) within 500 ms. */
function answers(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host, port });
    const finish = (result: boolean) => {
      socket.destroy();
      done(result);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => finish(/^[+-]/.test(data.toString())));
  });
}

/** The pid in a private Redis' pid file when that process still runs and is a redis-server. */
function leftRunning(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    const command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    return command.startsWith('redis-server') ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** SIGTERM: redis-server flushes its append-only file and exits. */
async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
}

async function stopProcess(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  for (let waited = 0; waited < 3000; waited += 50) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
