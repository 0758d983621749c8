import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteKeys } from './support/redis';
import { startService, testPrefix, type RunningService } from './support/service';

describe('SNAPCAT_ROLE: what `npm start` runs', () => {
  let dir: string;
  const running: RunningService[] = [];
  const prefix = testPrefix('roles');
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-roles-'));
  });
  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop('SIGKILL')));
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async (role: string) => {
    const service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_ROLE: role,
    });
    running.push(service);
    return service;
  };
  const listening = (service: RunningService) =>
    JSON.parse(service.logs.find((l) => l.includes('"msg":"listening"'))!) as Record<string, unknown>;

  it('api serves HTTP without workers; workers runs the workers without HTTP; all runs both', async () => {
    const api = await start('api');
    expect(listening(api)).toMatchObject({ workers: 'off', projector: 'embedded' });
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    expect(api.logs.some((l) => l.includes('"workers started"'))).toBe(false);

    const workers = await start('workers');
    expect(listening(workers)).toEqual(expect.objectContaining({ role: 'workers' }));
    expect(listening(workers).port).toBeUndefined();
    expect(workers.logs.some((l) => l.includes('"workers started"'))).toBe(true);

    const all = await start('all');
    expect(listening(all)).toMatchObject({ workers: 'embedded', projector: 'embedded' });
    expect((await fetch(`${all.url}/healthz`)).status).toBe(200);
  }, 60_000);
});
