import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { until } from './support/wait';
import { client, startService, testPrefix, type RunningService } from './support/service';
import { deleteKeys } from './support/redis';

let counter = 0;
const newJobId = () =>
  `${(Date.now() + counter++).toString(16).padStart(16, '0')}${'ef'.repeat(8)}`.slice(0, 32);

/** Writes a file of `size` bytes (creating its directory), as a task manager uploads state. */
function put(path: string, size: number): { path: string; sizeBytes: number } {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.alloc(size, 1));
  return { path, sizeBytes: size };
}

describe('restores over HTTP (R62-R64): claim modes on real files, restore plans over GraphQL', () => {
  let dir: string;
  let root: string;
  let service: RunningService;
  let api: ReturnType<typeof client>;
  const prefix = testPrefix('restores');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-restores-'));
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

  const snapshot = async (jobId: string, id: number) =>
    (await api.get(`/jobs/${jobId}/snapshots/${id}`)).body;
  const graphql = async (query: string) => {
    const res = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as {
      data: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      errors?: { message: string; extensions?: Record<string, unknown> }[];
    };
  };
  /** A checkpoint of task `a` with a private file in its chk-N directory; returns its id. */
  const checkpoint = async (jobId: string) => {
    const t = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
    expect(t.status).toBe(202);
    const id = t.body.snapshotId as number;
    const file = put(join(root, 'checkpoints', jobId, `chk-${id}`, 'state'), 10);
    const ack = await api.post(`/jobs/${jobId}/snapshots/${id}/acks`, {
      taskId: 'a',
      stateSize: 10,
      stateHandles: [file],
    });
    expect(ack.body).toMatchObject({ result: 'SUCCESS', snapshotStatus: 'COMPLETED' });
    return id;
  };

  /** A job with checkpoint 1 persisted (its manifest written), restored from it in `claimMode`. */
  const restoredJob = async (claimMode: 'CLAIM' | 'NO_CLAIM' | 'LEGACY') => {
    const jobId = newJobId();
    expect(
      (await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained: 2 } })).status,
    ).toBe(201);
    expect(await checkpoint(jobId)).toBe(1);
    expect((await api.post(`/jobs/${jobId}/snapshots/1/persist`, {})).status).toBe(200);
    const manifest = await until(
      async () => (await snapshot(jobId, 1)).manifestPath ?? undefined,
      15_000,
      'manifest of chk 1',
    );
    const restored = await api.post(`/jobs/${jobId}/restores`, { snapshotId: 1, claimMode });
    expect(restored.status).toBe(201);
    expect(restored.body).toEqual({
      jobId,
      snapshotId: 1,
      restorePath: join(root, 'checkpoints', jobId, 'chk-1'),
      claimMode,
      aborted: [],
      nextSnapshotId: 2,
    });
    return { jobId, manifest: manifest as string };
  };

  it.each([
    ['CLAIM', true],
    ['NO_CLAIM', false],
    ['LEGACY', false],
  ] as const)(
    'R62 restored from a persisted checkpoint in %s, then four checkpoints with numRetained 2: discarded = %s',
    async (claimMode, discarded) => {
      const { jobId, manifest } = await restoredJob(claimMode);
      for (let i = 0; i < 4; i += 1) await checkpoint(jobId);
      const chk1 = join(root, 'checkpoints', jobId, 'chk-1');
      if (discarded) {
        const gone = await until(
          async () => {
            const s = await snapshot(jobId, 1);
            return s.status === 'DISCARDED' ? s : undefined;
          },
          15_000,
          'the claimed snapshot DISCARDED',
        );
        expect(gone.discard).toMatchObject({ cause: 'SUBSUMED' });
        expect(existsSync(chk1)).toBe(false);
        expect(existsSync(manifest)).toBe(false);
      } else {
        // Give the workers time to do what they would (a subsumption's discard takes ~100 ms here).
        await new Promise((r) => setTimeout(r, 1000));
        expect(await snapshot(jobId, 1)).toMatchObject({ status: 'COMPLETED', claimMode, discard: null });
        expect(existsSync(join(chk1, 'state'))).toBe(true);
        expect(existsSync(manifest)).toBe(true);
      }
      // R63: the first checkpoint after a NO_CLAIM restore is FULL; after CLAIM and LEGACY it is not.
      expect((await snapshot(jobId, 2)).checkpointType).toBe(
        claimMode === 'NO_CLAIM' ? 'FULL' : 'INCREMENTAL',
      );
      expect((await snapshot(jobId, 3)).checkpointType).toBe('INCREMENTAL');
      const job = await graphql(
        `{ job(id: "${jobId}") { counts { restored } latestRestore { claimMode snapshot { id claimMode } } } }`,
      );
      expect(job.data.job).toEqual({
        counts: { restored: 1 },
        latestRestore: { claimMode, snapshot: { id: 1, claimMode } },
      });
    },
  );

  it('R64 restorePlan answers each strategy over GraphQL and refuses with maxAge too small', async () => {
    const { jobId } = await restoredJob('NO_CLAIM');
    const plan = async (strategy: string, maxAge?: string) =>
      graphql(
        `{ restorePlan(jobId: "${jobId}", strategy: ${strategy}${maxAge ? `, maxAge: "${maxAge}"` : ''}) {
          strategy ok snapshot { id kind persisted } restorePath claimMode reason refusal versionWarning } }`,
      );
    // Only the restored snapshot so far: every strategy picks it, NO_CLAIM (the user's).
    for (const strategy of ['FAILOVER', 'LATEST_STATE', 'LATEST_SAVEPOINT']) {
      expect((await plan(strategy)).data.restorePlan).toMatchObject({
        strategy,
        ok: true,
        snapshot: { id: 1 },
        claimMode: 'NO_CLAIM',
      });
    }
    const newest = await checkpoint(jobId);
    const savepoint = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    await api.post(`/jobs/${jobId}/snapshots/${savepoint.body.snapshotId}/acks`, { taskId: 'a' });
    await until(
      async () => (await snapshot(jobId, savepoint.body.snapshotId)).status === 'COMPLETED' || undefined,
      5_000,
      'savepoint completed',
    );
    expect((await plan('FAILOVER')).data.restorePlan).toMatchObject({
      ok: true,
      snapshot: { id: newest, kind: 'CHECKPOINT' },
      restorePath: join(root, 'checkpoints', jobId, `chk-${newest}`),
      claimMode: 'CLAIM',
      refusal: null,
      versionWarning: null,
    });
    expect((await plan('LATEST_STATE')).data.restorePlan).toMatchObject({
      snapshot: { id: savepoint.body.snapshotId, kind: 'SAVEPOINT' },
      claimMode: 'NO_CLAIM',
    });
    expect((await plan('LATEST_SAVEPOINT')).data.restorePlan).toMatchObject({
      snapshot: { id: savepoint.body.snapshotId },
    });
    await new Promise((r) => setTimeout(r, 1100));
    const tooOld = (await plan('FAILOVER', 'PT1S')).data.restorePlan;
    expect(tooOld).toMatchObject({
      ok: false,
      refusal: 'TOO_OLD',
      snapshot: { id: newest },
      claimMode: null,
    });
    expect(tooOld.reason).toMatch(/older than maxAge/);
    expect((await plan('FAILOVER', 'PT1H')).data.restorePlan).toMatchObject({ ok: true });
    const bad = await plan('FAILOVER', 'soon');
    expect(bad.errors?.[0]?.extensions).toMatchObject({ field: 'maxAge', rule: 'iso-duration' });
    // The deprecated restorePoint is LATEST_STATE's choice.
    const point = await graphql(`{ job(id: "${jobId}") { restorePoint { snapshot { id } } } }`);
    expect(point.data.job.restorePoint.snapshot.id).toBe(savepoint.body.snapshotId);
  });

  it('R62 refusals are clear 4xx problems and write nothing', async () => {
    const jobId = newJobId();
    await api.put(`/jobs/${jobId}`, { tasks: ['a'] });
    const done = await checkpoint(jobId);
    const pending = (await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' })).body.snapshotId;
    const both = await api.post(`/jobs/${jobId}/restores`, { snapshotId: done, externalPath: '/x' });
    expect(both.status).toBe(400);
    expect(both.body.errors[0]).toMatchObject({
      field: 'body.snapshotId',
      rule: 'snapshot-or-external-path',
    });
    const mode = await api.post(`/jobs/${jobId}/restores`, { snapshotId: done, claimMode: 'MAYBE' });
    expect(mode.status).toBe(400);
    expect(mode.body.errors[0].field).toBe('body.claimMode');
    const notDone = await api.post(`/jobs/${jobId}/restores`, { snapshotId: pending, claimMode: 'CLAIM' });
    expect(notDone.status).toBe(409);
    expect((await api.get(`/jobs/${jobId}`)).body).toMatchObject({
      latestRestore: null,
      counts: { restored: 0 },
    });
    expect((await snapshot(jobId, pending)).status).toBe('PENDING');
  });
});
