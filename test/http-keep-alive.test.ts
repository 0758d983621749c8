import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from './support/service';
import { sleep } from './support/wait';

/** One GET on the agent's connection: the status, the Keep-Alive header, and whether the socket was reused. */
function healthz(url: string, agent: Agent) {
  return new Promise<{ status: number; keepAlive: string | undefined; reused: boolean }>(
    (resolve, reject) => {
      const request = get(`${url}/healthz`, { agent }, (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            keepAlive: res.headers['keep-alive']?.toString(),
            reused: request.reusedSocket,
          }),
        );
      });
      request.on('error', reject);
    },
  );
}

// Node closes an idle keep-alive connection after 5 s by default: a client or load balancer sending on it at
// that moment sees "other side closed" under its request (concurrent acks in CI did). The service keeps idle
// connections 65 s, longer than a load balancer's usual idle timeout (AWS ALB: 60 s).
describe('HTTP keep-alive', () => {
  let dir: string;
  let service: RunningService;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-keep-alive-'));
    service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_WORKERS: 'off',
      SNAPCAT_PROJECTOR: 'off',
    });
  });
  afterAll(async () => {
    await service.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says timeout=65 and serves a second request on a connection idle for longer than Node’s default 5 s', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await healthz(service.url, agent);
      expect(first).toEqual({ status: 200, keepAlive: 'timeout=65', reused: false });
      await sleep(6000);
      expect(await healthz(service.url, agent)).toEqual({
        status: 200,
        keepAlive: 'timeout=65',
        reused: true,
      });
    } finally {
      agent.destroy();
    }
  }, 30_000);
});
