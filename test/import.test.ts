import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './support/wait';
import { client, startService, testPrefix, type RunningService } from './support/service';
import { deleteKeys } from './support/redis';

const JOB = `${Date.now().toString(16).padStart(16, '0')}${'ab'.repeat(8)}`.slice(0, 32);

/**
 * Import over HTTP (R69, R70), on real files: a savepoint directory made by hand is catalogued, shown by the
 * REST API and the GraphQL catalog, and its discard has the workers delete the directory.
 */
describe('import over HTTP (R69): a savepoint made by hand is catalogued and disposed of', () => {
  let dir: string;
  let root: string;
  let service: RunningService;
  let api: ReturnType<typeof client>;
  const prefix = testPrefix('import');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-import-'));
    root = join(dir, 'root');
    service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: root,
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_DISCARD_BACKOFF_MS: '200',
    });
    api = client(service.url);
  });
  afterAll(async () => {
    await service.stop('SIGKILL');
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const graphql = async (query: string) => {
    const res = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as {
      data: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      errors?: { message: string }[];
    };
  };

  it('imports a savepoint once, shows it, and deletes its directory when it is discarded', async () => {
    expect((await api.put(`/jobs/${JOB}`, { tasks: ['a'] })).status).toBe(201);
    const savepoint = join(root, 'by-hand', 'savepoint-abcdef-0123456789ab');
    mkdirSync(join(savepoint, 'op-1'), { recursive: true });
    writeFileSync(join(savepoint, '_metadata'), Buffer.alloc(64, 1));
    writeFileSync(join(savepoint, 'op-1', 'state'), Buffer.alloc(4000, 2));

    const imported = await api.post(`/jobs/${JOB}/snapshots/import`, {
      externalPath: savepoint,
      kind: 'SAVEPOINT',
      formatType: 'NATIVE',
    });
    expect(imported.status).toBe(201);
    expect(imported.body).toMatchObject({
      snapshotId: 1,
      status: 'COMPLETED',
      imported: true,
      stateSize: 4064,
      formatType: 'NATIVE',
      restorePath: savepoint,
    });
    const again = await api.post(`/jobs/${JOB}/snapshots/import`, {
      externalPath: savepoint,
      kind: 'SAVEPOINT',
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ snapshotId: 1, duplicate: true });
    expect((await api.get(`/jobs/${JOB}`)).body.counts).toMatchObject({ completed: 1 });

    const shown = await until(
      async () => {
        const { data } = await graphql(
          `{ catalog(jobId: "${JOB}") { edges { node { id kind status imported restorePath stateSize } } } }`,
        );
        return data.catalog.edges.length > 0 ? data.catalog.edges : undefined;
      },
      10_000,
      'the catalog to show the import',
    );
    expect(shown).toEqual([
      {
        node: {
          id: 1,
          kind: 'SAVEPOINT',
          status: 'COMPLETED',
          imported: true,
          restorePath: savepoint,
          stateSize: 4064,
        },
      },
    ]);

    // A second import over GraphQL: a retained checkpoint left by a job that is gone.
    const retained = join(root, 'old-checkpoints', 'f'.repeat(32), 'chk-9');
    mkdirSync(retained, { recursive: true });
    writeFileSync(join(retained, '_metadata'), 'metadata');
    const mutation = await graphql(
      `mutation { importSnapshot(jobId: "${JOB}", externalPath: "${retained}", kind: CHECKPOINT) { id imported } }`,
    );
    expect(mutation).toEqual({ data: { importSnapshot: { id: 2, imported: true } } });

    // No force needed: an import is never the job's latest snapshot (R70).
    const discard = await api.post(`/jobs/${JOB}/snapshots/1/discard`, {});
    expect(discard.status).toBe(202);
    const done = await until(
      async () => {
        const s = (await api.get(`/jobs/${JOB}/snapshots/1`)).body;
        return s.status === 'DISCARDED' ? s : undefined;
      },
      20_000,
      'the discard of the import',
    );
    expect(done.discard).toMatchObject({ state: 'DONE', bytesReclaimed: 4064 });
    expect(existsSync(savepoint)).toBe(false);
    expect(existsSync(retained)).toBe(true);
  });

  it('a place for snapshots inside an imported directory (no Flink naming) is refused: its discard would delete it', async () => {
    const legacy = join(root, 'legacy');
    mkdirSync(legacy, { recursive: true });
    writeFileSync(join(legacy, '_metadata'), Buffer.alloc(30, 1));
    const owner = `${(Date.now() + 7).toString(16).padStart(16, '0')}${'ef'.repeat(8)}`.slice(0, 32);
    expect((await api.put(`/jobs/${owner}`, { tasks: ['a'] })).status).toBe(201);
    const imported = await api.post(`/jobs/${owner}/snapshots/import`, {
      externalPath: legacy,
      kind: 'SAVEPOINT',
    });
    expect(imported.status).toBe(201);
    const other = `${(Date.now() + 9).toString(16).padStart(16, '0')}${'ef'.repeat(8)}`.slice(0, 32);
    const registered = await api.put(`/jobs/${other}`, {
      tasks: ['a'],
      storage: { checkpointDir: join(legacy, 'ck'), savepointDir: join(root, 'savepoints') },
    });
    expect([registered.status, registered.body.errors?.[0]]).toEqual([
      400,
      expect.objectContaining({ field: 'body.storage.checkpointDir', rule: 'outside-snapshots' }),
    ]);
    expect((await api.put(`/jobs/${other}`, { tasks: ['a'] })).status).toBe(201);
    await api.post(`/jobs/${other}/status`, { status: 'RUNNING' });
    const targeted = await api.post(`/jobs/${other}/snapshots`, {
      kind: 'SAVEPOINT',
      targetDirectory: join(legacy, 'sp'),
    });
    expect([targeted.status, targeted.body.errors?.[0]?.rule]).toEqual([400, 'outside-snapshots']);
  });
});
