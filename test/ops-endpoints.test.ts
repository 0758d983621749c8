import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@snapcat/event-store';
import { REPO_ROOT, client, startService, testPrefix, type RunningService } from './support/service';
import { deleteKeys } from './support/redis';
import { eventually } from './support/wait';

const JOB = '0b5e0000beef0000ae1de0000beef000';
const STREAM = `snapcat-job-${JOB}`;

const json = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init);
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: (await res.json()) as Record<string, unknown>,
  };
};
const metricsOf = async (service: RunningService) => (await fetch(`${service.url}/metrics`)).text();
const sample = (name: string, consumer: string) =>
  new RegExp(`^${name}\\{consumer="${consumer}"\\} (\\d+)$`, 'm');

// A workers or projector process serves no API; with SNAPCAT_OPS_PORT it answers the probes and /metrics, so
// that a supervisor and Prometheus see it as they see an API process (ops-server.ts).
describe('the ops endpoints of a workers and a projector process (SNAPCAT_OPS_PORT)', () => {
  let dir: string;
  let prefix: string;
  let env: Record<string, string>;
  const running: RunningService[] = [];
  const start = async (extra: Record<string, string>, entry?: string) => {
    const service = await startService({ ...env, ...extra }, entry);
    running.push(service);
    return service;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-ops-'));
    prefix = testPrefix('ops');
    env = {
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379',
    };
  });
  afterAll(async () => {
    for (const service of running) await service.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a workers process: alive, ready, its leases and queues on /metrics, nothing else; unready once outdated', async () => {
    const api = await start({ SNAPCAT_ROLE: 'api', SNAPCAT_OPS_PORT: '9' }); // ignored, and said so
    await eventually(
      () =>
        api.logs.some((line) => line.includes('SNAPCAT_OPS_PORT (9) is for a workers or projector process')),
      5_000,
      'the warning that SNAPCAT_OPS_PORT is ignored',
    );
    const workers = await start({ SNAPCAT_ROLE: 'workers', SNAPCAT_OPS_PORT: '0' });
    expect(workers.port).toBeGreaterThan(0); // its `listening` line names the port it took

    expect(await json(`${workers.url}/healthz`)).toMatchObject({
      status: 200,
      body: { status: 'ok', role: 'workers' },
    });
    // Listening comes before ready: the workers' own Redis connections may still be connecting.
    await eventually(
      async () => (await fetch(`${workers.url}/readyz`)).status === 200,
      10_000,
      'the workers process to be ready',
    );
    expect(await json(`${workers.url}/readyz`)).toMatchObject({
      status: 200,
      body: { status: 'ready', role: 'workers', eventStore: 'reachable', redis: 'connected' },
    });
    // What only this process can tell: its process manager holds the lease (the API process runs none).
    await eventually(
      async () =>
        sample('snapcat_consumer_active', 'process_manager').exec(await metricsOf(workers))?.[1] === '1',
      10_000,
      'the process manager’s lease',
    );
    const metrics = await metricsOf(workers);
    expect(metrics).toMatch(/^snapcat_queue_depth\{queue="timeouts",state="waiting"\} \d+$/m);
    expect(metrics).toMatch(/^snapcat_command_bus_commands_total \d+$/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+$/m);
    expect(metrics).not.toMatch(/consumer="projector"/); // the API process reports the projector

    // Nothing but the probes: no API route, no command.
    const route = await json(`${workers.url}/api/v1/jobs`);
    expect(route).toMatchObject({ status: 404, body: { type: 'urn:snapcat:problem:not-found' } });
    expect(route.type).toContain('application/problem+json');
    expect((route.body.errors as object[])[0]).toMatchObject({ field: 'path', rule: 'exists' });
    const post = await json(`${workers.url}/readyz`, { method: 'POST' });
    expect(post).toMatchObject({ status: 405, body: { errors: [{ field: 'method', rule: 'allowed' }] } });

    // A newer snapcat's event in the log: the workers process can no longer follow it, and says so.
    const rest = client(api.url);
    expect((await rest.put(`/jobs/${JOB}`, { tasks: ['a'] })).status).toBe(201);
    const other = new SqliteEventStore(join(dir, 'events.db'));
    try {
      const [registered] = await other.readStream(STREAM);
      await other.append(
        STREAM,
        [
          {
            id: randomUUID(),
            type: registered!.type,
            data: registered!.data,
            metadata: { schemaVersion: 99 },
          },
        ],
        'any',
      );
    } finally {
      await other.close();
    }
    await eventually(
      async () => (await fetch(`${workers.url}/readyz`)).status === 503,
      15_000,
      '/readyz to turn 503',
    );
    const unready = await json(`${workers.url}/readyz`);
    expect(unready.type).toContain('application/problem+json');
    expect(unready.body).toMatchObject({
      status: 503,
      role: 'workers',
      eventStore: 'newer-events',
      schemaVersion: 99,
    });
    expect(unready.body.detail).not.toContain(JOB); // public: the stream stays in the log
    await eventually(
      async () =>
        sample('snapcat_consumer_blocked', 'process_manager').exec(await metricsOf(workers))?.[1] === '1',
      15_000,
      'the process manager to stand down',
    );
    expect((await json(`${workers.url}/healthz`)).status).toBe(200); // alive, only not ready
  }, 90_000);

  it('a projector process: ready, its lease on /metrics; on every interface without tokens (it serves no API)', async () => {
    const projectorEnv = {
      SNAPCAT_OPS_PORT: '0',
      SNAPCAT_HOST: '0.0.0.0', // no SNAPCAT_TOKENS: an API process would be refused this
      SNAPCAT_QUEUE_PREFIX: `${prefix}-p`,
      // A store of its own: the first test's holds an event a newer snapcat wrote. So roots of its own too
      // (decision 0044: another catalogue's are refused).
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'projector.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'projector-snapshots'),
    };
    const projector = await start(projectorEnv, 'services/projector/src/main.ts');
    try {
      expect(await json(`${projector.url}/readyz`)).toMatchObject({
        status: 200,
        body: { status: 'ready', role: 'projector' },
      });
      await eventually(
        async () =>
          sample('snapcat_consumer_active', 'projector').exec(await metricsOf(projector))?.[1] === '1',
        10_000,
        'the projector’s lease',
      );

      // A standby beside it reports where the read model is (the active one's position), not none.
      const standby = await start(projectorEnv, 'services/projector/src/main.ts');
      const api = await start({
        ...projectorEnv,
        SNAPCAT_HOST: '127.0.0.1',
        SNAPCAT_OPS_PORT: '',
        SNAPCAT_ROLE: 'api',
        SNAPCAT_PROJECTOR: 'off',
      });
      expect((await client(api.url).put(`/jobs/${JOB}`, { tasks: ['a'] })).status).toBe(201);
      const positions = async () => {
        const [active, standing] = await Promise.all([metricsOf(projector), metricsOf(standby)]);
        const position = sample('snapcat_consumer_position', 'projector');
        return {
          active: sample('snapcat_consumer_active', 'projector').exec(standing)?.[1],
          activePosition: position.exec(active)?.[1],
          standbyPosition: position.exec(standing)?.[1],
        };
      };
      await eventually(
        async () => {
          const { active, activePosition, standbyPosition } = await positions();
          return active === '0' && activePosition !== undefined && standbyPosition === activePosition;
        },
        15_000,
        'the standby to report the active projector’s position',
      );
      expect(Number((await positions()).standbyPosition)).toBeGreaterThan(0);
    } finally {
      for (const service of running) await service.stop(); // before their keys go
      await deleteKeys(`${prefix}-p`);
    }
  }, 90_000);

  it('a projector whose Redis is down at its start: alive and saying why it is not ready, while it waits', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/projector/src/main.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...env,
        SNAPCAT_OPS_PORT: '0',
        SNAPCAT_HOST: '127.0.0.1',
        SNAPCAT_REDIS_URL: 'redis://127.0.0.1:1', // nothing listens there
        SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'no-redis.db')}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ops endpoints within 30 s')), 30_000);
        createInterface({ input: child.stdout! }).on('line', (line) => {
          if (!line.includes('"ops endpoints listening"')) return;
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        });
      });
      const url = `http://127.0.0.1:${port}`;
      expect(await json(`${url}/healthz`)).toMatchObject({ status: 200, body: { role: 'projector' } });
      await eventually(
        async () => (await json(`${url}/readyz`)).body.redis === 'unreachable',
        10_000,
        'Redis named',
      );
      const unready = await json(`${url}/readyz`);
      expect(unready).toMatchObject({ status: 503, body: { role: 'projector', redis: 'unreachable' } });
      expect(unready.body.detail).toContain('Redis is unreachable: the read model waits for it');
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('a port it cannot take stops the process, saying why', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(start({ SNAPCAT_ROLE: 'workers', SNAPCAT_OPS_PORT: String(port) })).rejects.toThrow(
        /service exited with 1[\s\S]*cannot listen: stopping[\s\S]*EADDRINUSE/,
      );
    } finally {
      taken.close();
    }
  }, 60_000);
});
