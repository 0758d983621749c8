import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EsdbTestServer } from '../esdb/test-server';
import { startService, type RunningService } from './service';

/**
 * The service on the ESDB adapter against a protocol test server of the test's own, which the test may stop,
 * start or make refuse under it; `beforeAll`/`afterAll` set them up and tear them down. The server is secure
 * (TLS, credentials, access control), as a production node is; `user` picks who the service logs in as,
 * `options` adds connection-string settings (`&defaultDeadline=…`).
 */
export function serviceOnEsdbTestServer(
  name: string,
  {
    user = 'admin',
    env = {},
    options = '',
  }: { user?: string; env?: Record<string, string>; options?: string } = {},
) {
  const fixture = {} as { dir: string; server: EsdbTestServer; service: RunningService };
  beforeAll(async () => {
    fixture.dir = mkdtempSync(join(tmpdir(), `snapcat-${name}-`));
    fixture.server = new EsdbTestServer(undefined, { secure: true, user });
    await fixture.server.start();
    fixture.service = await startService({
      SNAPCAT_EVENT_STORE: `${fixture.server.connectionString}${options}`,
      SNAPCAT_STORAGE_ROOTS: join(fixture.dir, 'snapshots'),
      ...env,
    });
  });
  afterAll(async () => {
    await fixture.service.stop('SIGKILL');
    await fixture.server.stop();
    rmSync(fixture.dir, { recursive: true, force: true });
  });
  return fixture;
}
