import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, startService, type RunningService } from './support/service';
import { e2eStore } from './support/stores';
import { runCli, testPrefix } from './support/service';
import { deleteKeys } from './support/redis';

const JOB = '5f0c1e2d3b4a59687766554433221100';
const TASKS = ['source-0', 'map-0', 'map-1', 'sink-0'];

describe(`end to end: the service as a child process (${process.env.SNAPCAT_E2E_STORE ?? 'sqlite'} store)`, () => {
  let dir: string;
  let service: RunningService | undefined;
  let store: Awaited<ReturnType<typeof e2eStore>>;
  const prefix = testPrefix('lifecycle');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-e2e-'));
    store = await e2eStore(dir);
  });
  afterAll(async () => {
    await service?.stop('SIGKILL');
    await store.close();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async () => {
    service = await startService({
      SNAPCAT_EVENT_STORE: store.connection,
      // The catalog alone, as in the lifecycle issue: no storage worker turns DISCARDING into DISCARDED here.
      SNAPCAT_WORKERS: 'off',
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
    });
    return client(service.url);
  };

  it('checkpoints, subsumption, a savepoint, persist and cancel; every answer survives a restart', async () => {
    let api = await start();
    const put = await api.put(`/jobs/${JOB}`, {
      name: 'orders-enrichment',
      tasks: TASKS,
      checkpointing: { numRetained: 2, retention: 'RETAIN_ON_CANCELLATION' },
    });
    expect(put.status).toBe(201);

    const completeOne = async (kind: 'CHECKPOINT' | 'SAVEPOINT') => {
      const trigger = await api.post(`/jobs/${JOB}/snapshots`, { kind });
      expect(trigger.status).toBe(202);
      const id = trigger.body.snapshotId as number;
      for (const taskId of TASKS) {
        const ack = await api.post(`/jobs/${JOB}/snapshots/${id}/acks`, {
          taskId,
          stateSize: 100,
          stateHandles: [{ path: `${dir}/snapshots/checkpoints/${JOB}/chk-${id}/${taskId}`, sizeBytes: 100 }],
        });
        expect(ack.status).toBe(200);
      }
      return id;
    };
    for (let i = 1; i <= 5; i += 1) expect(await completeOne('CHECKPOINT')).toBe(i);

    const statuses = async () =>
      Object.fromEntries(
        ((await api.get(`/jobs/${JOB}`)).body.snapshots as { snapshotId: number; status: string }[]).map(
          (s) => [s.snapshotId, s.status],
        ),
      );
    expect(await statuses()).toEqual({
      1: 'DISCARDING',
      2: 'DISCARDING',
      3: 'DISCARDING',
      4: 'COMPLETED',
      5: 'COMPLETED',
    });
    for (const id of [1, 2, 3]) {
      expect((await api.get(`/jobs/${JOB}/snapshots/${id}`)).body.discard).toMatchObject({
        cause: 'SUBSUMED',
        state: 'REQUESTED',
      });
    }

    expect(await completeOne('SAVEPOINT')).toBe(6);
    const savepoint = (await api.get(`/jobs/${JOB}/snapshots/6`)).body;
    expect(savepoint).toMatchObject({ kind: 'SAVEPOINT', status: 'COMPLETED', properties: { forced: true } });

    // Flink names a savepoint <savepointDir>/savepoint-<first 6 of the jobId>-<12 hex> (R14).
    expect(savepoint.externalPath).toMatch(new RegExp(`/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`));
    expect(savepoint.restorePath).toBe(savepoint.externalPath);

    const persist = await api.post(`/jobs/${JOB}/snapshots/5/persist`);
    expect(persist.status).toBe(200);
    // The persisted checkpoint is restored from its own chk-5 (R57); its savepoint directory holds snapcat's
    // manifest only (R36, R39).
    const chk5 = `${dir}/snapshots/checkpoints/${JOB}/chk-5`;
    expect(persist.body).toMatchObject({ persisted: true, restorePath: chk5, changed: true });
    expect(persist.body.savepointPath).toMatch(new RegExp(`/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`));
    expect((await api.get(`/jobs/${JOB}/snapshots/5`)).body).toMatchObject({
      persisted: true,
      status: 'COMPLETED',
      externalPath: chk5,
      restorePath: chk5,
      savepointPath: persist.body.savepointPath,
    });

    expect((await api.post(`/jobs/${JOB}/status`, { status: 'CANCELED' })).status).toBe(200);
    expect(await statuses()).toEqual({
      1: 'DISCARDING',
      2: 'DISCARDING',
      3: 'DISCARDING',
      4: 'COMPLETED',
      5: 'COMPLETED',
      6: 'COMPLETED',
    });
    const events = (await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events as {
      type: string;
      data: { cause?: string };
    }[];
    expect(events.filter((e) => e.type === 'SnapshotDiscardRequested').map((e) => e.data.cause)).toEqual([
      'SUBSUMED',
      'SUBSUMED',
      'SUBSUMED',
    ]);

    const answers = async () => ({
      job: (await api.get(`/jobs/${JOB}`)).body,
      snapshots: await Promise.all(
        [1, 2, 3, 4, 5, 6].map(async (id) => (await api.get(`/jobs/${JOB}/snapshots/${id}`)).body),
      ),
      events: (await api.get(`/jobs/${JOB}/events?limit=1000`)).body,
    });
    const before = await answers();
    expect(await service!.stop('SIGTERM')).toBe(0);
    api = await start();
    if (store.durable) {
      expect(await answers()).toEqual(before);
      // The auditor's check: the read model the service projected equals a fresh fold of the log.
      const audit = await runCli(['audit', 'verify'], {
        SNAPCAT_EVENT_STORE: store.connection,
        SNAPCAT_QUEUE_PREFIX: prefix,
      });
      expect(audit.stderr + audit.stdout).toContain('read model matches the log');
      expect(audit.status).toBe(0);
      // Pointed at a prefix that holds no read model of this store (another Redis database, say): a difference.
      const elsewhere = await runCli(['audit', 'verify'], {
        SNAPCAT_EVENT_STORE: store.connection,
        SNAPCAT_QUEUE_PREFIX: `${prefix}-elsewhere`,
      });
      expect(elsewhere.stdout).toContain('no read model of this event store in this Redis');
      expect(elsewhere.stdout).toMatch(/\n1 difference\n$/);
      expect(elsewhere.status).toBe(1);
    } else {
      // The memory store keeps nothing across a restart, and the service says so instead of inventing state.
      expect((await api.get(`/jobs/${JOB}`)).status).toBe(404);
    }
  });
});
