import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, until } from './support/wait';
import { discardKilledMidway } from './support/kill-mid-deletion';
import {
  client,
  expectAcksRefusedOutsideRoots,
  startService,
  testPrefix,
  type RunningService,
} from './support/service';
import { deleteKeys } from './support/redis';
import { namespaceOf } from './support/namespace';
import { Queue } from 'bullmq';

let counter = 0;
const newJobId = () =>
  `${(Date.now() + counter++).toString(16).padStart(16, '0')}${'ab'.repeat(8)}`.slice(0, 32);

describe('storage workers: cleanup, path safety, retention, timeouts, manifests (real Redis, BullMQ, files)', () => {
  let dir: string;
  let root: string;
  let service: RunningService;
  let api: ReturnType<typeof client>;
  const prefix = testPrefix('storage');
  const env = () => ({
    SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
    SNAPCAT_STORAGE_ROOTS: root,
    SNAPCAT_QUEUE_PREFIX: prefix,
    SNAPCAT_RETENTION_SWEEP: 'PT1S',
    SNAPCAT_DISCARD_BACKOFF_MS: '200',
  });
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-workers-'));
    root = join(dir, 'root');
    mkdirSync(join(dir, 'outside'), { recursive: true });
    service = await startService(env());
    api = client(service.url);
  });
  afterAll(async () => {
    await service.stop('SIGKILL');
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const snapshot = async (jobId: string, id: number) =>
    (await api.get(`/jobs/${jobId}/snapshots/${id}`)).body;
  const completed = async (
    jobId: string,
    body: object,
    stateHandles: { path: string; sizeBytes: number }[] = [],
  ) => {
    const t = await api.post(`/jobs/${jobId}/snapshots`, body);
    expect(t.status).toBe(202);
    const id = t.body.snapshotId as number;
    await api.post(`/jobs/${jobId}/snapshots/${id}/acks`, { taskId: 'a', stateSize: 1, stateHandles });
    return id;
  };

  it('a worker killed in the middle of a 1,000-file cleanup finishes after restart with the right byte count', async () => {
    const jobId = newJobId();
    await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained: 5 } });
    const id = await completed(jobId, { kind: 'CHECKPOINT' });
    const chk = (await snapshot(jobId, id)).externalPath as string;
    mkdirSync(chk, { recursive: true });
    let expectedBytes = 0;
    for (let i = 0; i < 1000; i += 1) {
      writeFileSync(join(chk, `part-${i}`), Buffer.alloc(100 + i));
      expectedBytes += 100 + i;
    }
    await completed(jobId, { kind: 'CHECKPOINT' }); // so the first is no longer the latest

    const files = () => (existsSync(chk) ? readdirSync(chk).length : 0);
    const { left, final, violations } = await discardKilledMidway({
      eventStore: `sqlite:${join(dir, 'events.db')}`,
      queuePrefix: prefix,
      jobId,
      snapshotId: id,
      snapshot: () => snapshot(jobId, id),
      requestDiscard: async () => (await api.post(`/jobs/${jobId}/snapshots/${id}/discard`, {})).status,
      remaining: async () => files(),
      // As soon as the first files are gone, while the rest are still being deleted.
      begun: async () => files() < 1000,
      kill: async () => void (await service.stop('SIGKILL')),
      restart: async () => {
        service = await startService(env());
        api = client(service.url);
      },
    });
    expect(left).toBeGreaterThan(0); // the kill did land before the cleanup finished
    expect(final.discard?.bytesReclaimed).toBe(expectedBytes);
    expect(existsSync(chk)).toBe(false);
    expect(violations).toBe(0);
    process.stdout.write(`cleanup kill: ${left} of 1000 files left at the kill\n`);
  }, 240_000);

  it('each path-escape trick is refused: spelled outside the roots or through a link at the acknowledgement (400), a link made since at the discard (SnapshotDiscardFailed, not retryable); the planted file stays', async () => {
    const outsideFile = join(dir, 'outside', 'planted');
    writeFileSync(outsideFile, 'keep me');
    mkdirSync(root, { recursive: true });
    symlinkSync(join(dir, 'outside'), join(root, 'escape-link'));
    symlinkSync(outsideFile, join(root, 'escape-file-link'));
    // Spelled outside the roots, or inside and out through a link: refused with the acknowledgement, which
    // records nothing.
    await expectAcksRefusedOutsideRoots(api, newJobId(), [
      `${root}/../outside/planted`,
      outsideFile,
      `file://${root}/%2e%2e/outside/planted`,
      `file://${root}/..%2foutside%2fplanted`,
      join(root, 'escape-link', 'planted'),
      join(root, 'escape-file-link'),
    ]);
    // Real places when acknowledged, links to the outside file by the discard: only the deletion, which
    // resolves real paths again, can tell.
    const tricks = [join(root, 'later-link', 'planted'), join(root, 'later-file-link')];
    mkdirSync(join(root, 'later-link'));
    writeFileSync(tricks[0]!, 'own');
    writeFileSync(tricks[1]!, 'own');
    // One job per trick: several of them name the same file, and within one job the shared-state
    // registry would have only the last snapshot to reference it delete it (the others keep it).
    const jobIds = tricks.map(() => newJobId());
    for (const [i, path] of tricks.entries()) {
      const jobId = jobIds[i]!;
      await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained: 10 } });
      expect(await completed(jobId, { kind: 'CHECKPOINT' }, [{ path, sizeBytes: 7 }])).toBe(1);
      await completed(jobId, { kind: 'CHECKPOINT' });
    }
    rmSync(join(root, 'later-link'), { recursive: true });
    rmSync(tricks[1]!);
    symlinkSync(join(dir, 'outside'), join(root, 'later-link'));
    symlinkSync(outsideFile, tricks[1]!);
    for (const jobId of jobIds) {
      expect((await api.post(`/jobs/${jobId}/snapshots/1/discard`, {})).status).toBe(202);
    }
    for (const jobId of jobIds) {
      const s = await until(
        async () => {
          const s = await snapshot(jobId, 1);
          return s.discard?.state === 'FAILED' ? s : undefined;
        },
        10_000,
        `discard failure of job ${jobId}`,
      );
      expect(s).toMatchObject({ status: 'DISCARDING', discard: { retryable: false } });
      expect(s.discard.error).toMatch(/outside the configured storage roots|refused/);
      const events = (await api.get(`/jobs/${jobId}/events?limit=1000`)).body.events as {
        type: string;
        data: { retryable?: boolean };
      }[];
      expect(
        events.filter((e) => e.type === 'SnapshotDiscardFailed' && e.data.retryable === false),
      ).toHaveLength(1);
    }
    expect(readFileSync(outsideFile, 'utf8')).toBe('keep me');
    // The operator's way out: a forced discard ends the refused one, recorded discarded with nothing
    // reclaimed; the file outside the roots stays.
    const forced = await api.post(`/jobs/${jobIds[0]}/snapshots/1/discard`, { force: true });
    expect([forced.status, forced.body]).toEqual([202, expect.objectContaining({ changed: true })]);
    expect(await snapshot(jobIds[0]!, 1)).toMatchObject({
      status: 'DISCARDED',
      discard: { state: 'DONE', bytesReclaimed: 0 },
    });
    expect(readFileSync(outsideFile, 'utf8')).toBe('keep me');
  }, 30_000);

  it('registration with a directory outside the roots is refused', async () => {
    const res = await api.put(`/jobs/${newJobId()}`, {
      tasks: ['a'],
      storage: { checkpointDir: join(dir, 'outside') },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatchObject({
      field: 'body.storage.checkpointDir',
      rule: 'within-storage-roots',
    });
  });

  it('retention: maxCount 5 of 12 periodic savepoints keeps the 5 newest and every manual one; maxAge; maxCount at least 1', async () => {
    const jobId = newJobId();
    await api.put(`/jobs/${jobId}`, { tasks: ['a'] });
    const manual = await completed(jobId, { kind: 'SAVEPOINT' });
    const periodic: number[] = [];
    for (let i = 0; i < 12; i += 1)
      periodic.push(await completed(jobId, { kind: 'SAVEPOINT', triggerType: 'PERIODIC' }));
    // A schedule that will not fire during the test carries the retention; the sweep runs every second.
    await api.put(`/jobs/${jobId}/savepoint-schedule`, { cron: '0 0 0 1 1 *', retention: { maxCount: 5 } });
    const statuses = async () =>
      Promise.all(periodic.map(async (id) => (await snapshot(jobId, id)).status as string));
    await until(
      async () => ((await statuses()).filter((s) => s === 'DISCARDED').length === 7 ? true : undefined),
      15_000,
      'retention',
    );
    expect(await statuses()).toEqual([...Array(7).fill('DISCARDED'), ...Array(5).fill('COMPLETED')]);
    expect((await snapshot(jobId, manual)).status).toBe('COMPLETED');
    expect((await snapshot(jobId, periodic[0]!)).discard.cause).toBe('RETENTION');

    await api.put(`/jobs/${jobId}/savepoint-schedule`, {
      cron: '0 0 0 1 1 *',
      retention: { maxAge: 'PT2S' },
    });
    await until(
      async () => ((await statuses()).filter((s) => s === 'DISCARDED').length === 11 ? true : undefined),
      15_000,
      'maxAge',
    );
    const newest = periodic[periodic.length - 1]!;
    expect((await snapshot(jobId, newest)).status).toBe('COMPLETED'); // the latest completed survives maxAge
    expect((await snapshot(jobId, manual)).status).toBe('COMPLETED');

    // maxCount is at least 1 (docs/domain.md R53); 1 keeps the newest, as every policy does.
    const zero = await api.put(`/jobs/${jobId}/savepoint-schedule`, {
      cron: '0 0 0 1 1 *',
      retention: { maxCount: 0 },
    });
    expect(zero.status).toBe(400);
    expect(zero.body.errors[0]).toMatchObject({ field: 'body.retention.maxCount' });
    await api.put(`/jobs/${jobId}/savepoint-schedule`, {
      cron: '0 0 0 1 1 *',
      retention: { maxCount: 1, maxAge: 'PT1S' },
    });
    await sleep(2500);
    expect((await snapshot(jobId, newest)).status).toBe('COMPLETED'); // and maxCount 1 with maxAge
  }, 60_000);

  it('a snapshot with timeoutMs 1000 and a missing ack expires within 3 s; a late ack is DISCARDED and cleaned up', async () => {
    const jobId = newJobId();
    await api.put(`/jobs/${jobId}`, {
      tasks: ['a', 'b'],
      checkpointing: { timeoutMs: 1000, tolerableFailures: 5 },
    });
    const started = Date.now();
    const t = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
    const id = t.body.snapshotId as number;
    await api.post(`/jobs/${jobId}/snapshots/${id}/acks`, { taskId: 'a' });
    const failed = await until(
      async () => {
        const s = await snapshot(jobId, id);
        return s.status === 'FAILED' ? s : undefined;
      },
      3000,
      'expiry',
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(failed.failureReason).toBe('CHECKPOINT_EXPIRED');
    const late = join(root, 'late', jobId, 'b-state');
    mkdirSync(join(root, 'late', jobId), { recursive: true });
    writeFileSync(late, 'late state');
    const ack = await api.post(`/jobs/${jobId}/snapshots/${id}/acks`, {
      taskId: 'b',
      stateSize: 10,
      stateHandles: [{ path: late, sizeBytes: 10 }],
    });
    expect(ack.body.result).toBe('DISCARDED');
    await until(async () => (existsSync(late) ? undefined : true), 10_000, 'late state cleanup');
  }, 30_000);

  it('persisting writes a self-contained snapcat-manifest.json (never Flink’s _metadata) into the savepoint location, then records it; Flink restores from chk-<id>', async () => {
    const jobId = newJobId();
    await api.put(`/jobs/${jobId}`, { tasks: ['a'] });
    const id = await completed(jobId, { kind: 'CHECKPOINT' }, [
      { path: join(root, 'x', 'a-state'), sizeBytes: 1 },
    ]);
    const persisted = await api.post(`/jobs/${jobId}/snapshots/${id}/persist`, {});
    // Issue 16 (R14, R39, R57): the directory is named as Flink names savepoints, the manifest is not
    // `_metadata` (Flink's binary metadata: `flink run -s` would read it and fail), and the path to restore
    // from is the checkpoint's own chk-<id>, where Flink wrote its `_metadata`.
    expect(persisted.body.savepointPath).toMatch(/\/savepoint-[0-9a-f]{6}-[0-9a-f]{12}$/);
    expect(persisted.body.savepointPath).toContain(`/savepoint-${jobId.slice(0, 6)}-`);
    const checkpoint = await snapshot(jobId, id);
    expect(checkpoint.externalPath).toMatch(new RegExp(`/${jobId}/chk-${id}$`));
    expect(persisted.body.restorePath).toBe(checkpoint.externalPath);
    expect(checkpoint).toMatchObject({
      restorePath: checkpoint.externalPath,
      savepointPath: persisted.body.savepointPath,
    });
    const manifestPath = join(persisted.body.savepointPath, 'snapcat-manifest.json');
    await until(async () => (existsSync(manifestPath) ? true : undefined), 10_000, 'manifest');
    expect(readdirSync(persisted.body.savepointPath)).toEqual(['snapcat-manifest.json']);
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    expect(manifest).toMatchObject({
      jobId,
      snapshotId: id,
      kind: 'CHECKPOINT',
      checkpointPath: checkpoint.externalPath,
      restorePath: checkpoint.externalPath,
      savepointPath: persisted.body.savepointPath,
      properties: { discardSubsumed: false },
      tasks: [{ taskId: 'a', stateHandles: [{ path: join(root, 'x', 'a-state') }] }],
    });
    await until(
      async () => {
        const events = (await api.get(`/jobs/${jobId}/events?limit=100`)).body.events as {
          type: string;
          data: { path?: string };
        }[];
        return events.find((e) => e.type === 'SnapshotManifestWritten' && e.data.path === manifestPath);
      },
      5000,
      'SnapshotManifestWritten',
    );
  });

  it('a discard deletes a persisted directory whole, a manifest written there as _metadata (before issue 16) with it', async () => {
    const jobId = newJobId();
    await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained: 5 } });
    const id = await completed(jobId, { kind: 'CHECKPOINT' });
    const persisted = await api.post(`/jobs/${jobId}/snapshots/${id}/persist`, {});
    const directory = persisted.body.savepointPath as string;
    const manifest = join(directory, 'snapcat-manifest.json');
    await until(async () => (existsSync(manifest) ? true : undefined), 10_000, 'manifest');
    // What the storage worker wrote before issue 16: the same JSON, named `_metadata`.
    writeFileSync(join(directory, '_metadata'), readFileSync(manifest));
    await completed(jobId, { kind: 'CHECKPOINT' }); // so the persisted one is no longer the latest
    expect((await api.post(`/jobs/${jobId}/snapshots/${id}/discard`, {})).status).toBe(202);
    const done = await until(
      async () => {
        const s = await snapshot(jobId, id);
        return s.status === 'DISCARDED' ? s : undefined;
      },
      10_000,
      'discarded',
    );
    expect(done.restorePath).toBeNull();
    expect(existsSync(join(directory, '_metadata'))).toBe(false);
    expect(existsSync(manifest)).toBe(false);
    expect(existsSync(directory)).toBe(false);
  });

  it('orders in the storage queue that the store did not give delete nothing (a restored backup keeps the namespace; a job edited by hand)', async () => {
    const jobId = newJobId();
    await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained: 5 } });
    const first = await completed(jobId, { kind: 'CHECKPOINT' });
    const chk = (await snapshot(jobId, first)).externalPath as string;
    const file = join(chk, 'state');
    mkdirSync(chk, { recursive: true });
    writeFileSync(file, 'live');
    const live = await completed(jobId, { kind: 'CHECKPOINT' }, [{ path: file, sizeBytes: 4 }]);
    const queue = new Queue('storage', {
      connection: { url: 'redis://127.0.0.1:6379' },
      prefix: await namespaceOf(`sqlite:${join(dir, 'events.db')}`, prefix),
    });
    try {
      const orders = [
        // The live checkpoint's discard, as a queue from another timeline of the store would hold it.
        queue.add('discard', { jobId, snapshotId: live, locations: [chk], stateHandles: [], keep: [] }),
        // A stray cleanup the store never opened, and one from before decision 0011 (untracked).
        queue.add('stray', { jobId, cleanupId: 77, stateHandles: [{ path: file, sizeBytes: 4 }] }),
        queue.add('stray', { jobId, stateHandles: [{ path: file, sizeBytes: 4 }] }),
      ];
      for (const added of await Promise.all(orders)) {
        const result = await until(
          async () => {
            // One read of the job: its result and its finishing time are written together.
            const job = await queue.getJob(added.id!);
            return job?.finishedOn ? (job.returnvalue as unknown) : undefined;
          },
          20_000,
          `${added.name} order settled`,
        );
        // The untracked cleanup is planned on the registry: the live snapshot's file is kept, nothing is left.
        expect(result).toEqual(
          added.name === 'discard' || added.data.cleanupId ? { skipped: true } : { bytes: 0 },
        );
      }
    } finally {
      await queue.close();
    }
    expect(readFileSync(file, 'utf8')).toBe('live');
    const kept = await snapshot(jobId, live);
    expect(kept.status).toBe('COMPLETED');
    expect(kept.discard).toBeNull();
  });

  /**
   * A checkpoint subsumed once a second completes (numRetained 1), with `stale` already waiting in the storage
   * queue under the id the store's own order takes (so that one is not enqueued): the order a queue from
   * another timeline of the store, or a hand edit, could hold. Returns the first checkpoint's directory.
   */
  async function subsumedUnderStaleOrder(
    jobId: string,
    stale: (chk: string) => { locations: string[]; keep: string[] },
    secondHandles: (chk: string) => { path: string; sizeBytes: number }[],
  ) {
    await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained: 1 } });
    const first = await completed(jobId, { kind: 'CHECKPOINT' });
    const chk = (await snapshot(jobId, first)).externalPath as string;
    mkdirSync(chk, { recursive: true });
    writeFileSync(join(chk, 'private'), 'first only');
    writeFileSync(join(chk, 'shared'), 'both');
    const queue = new Queue('storage', {
      connection: { url: 'redis://127.0.0.1:6379' },
      prefix: await namespaceOf(`sqlite:${join(dir, 'events.db')}`, prefix),
    });
    try {
      // Runs once the store has requested the discard (the second checkpoint completes well within 3 s).
      await queue.add(
        'discard',
        { jobId, snapshotId: first, stateHandles: [], ...stale(chk) },
        { jobId: `discard-${jobId}-${first}`, delay: 3000 },
      );
    } finally {
      await queue.close();
    }
    await completed(jobId, { kind: 'CHECKPOINT' }, secondHandles(chk));
    await until(
      async () => ((await snapshot(jobId, first)).status === 'DISCARDED' ? true : undefined),
      20_000,
      'the first checkpoint discarded',
    );
    return chk;
  }

  it("an order's keep list does not decide what is kept: a file a live snapshot references stays", async () => {
    const chk = await subsumedUnderStaleOrder(
      newJobId(),
      (c) => ({ locations: [c], keep: [] }),
      (c) => [{ path: join(c, 'shared'), sizeBytes: 4 }],
    );
    expect(existsSync(join(chk, 'private'))).toBe(false);
    expect(readFileSync(join(chk, 'shared'), 'utf8')).toBe('both');
  });

  it("an order naming a place the store does not discard is replaced by the store's own request", async () => {
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    writeFileSync(join(elsewhere, 'file'), 'not ordered');
    const chk = await subsumedUnderStaleOrder(
      newJobId(),
      () => ({ locations: [elsewhere], keep: [] }),
      () => [],
    );
    expect(existsSync(chk)).toBe(false);
    expect(readFileSync(join(elsewhere, 'file'), 'utf8')).toBe('not ordered');
  });

  it("an order naming less than the store discards is replaced by the store's own request (no files left behind)", async () => {
    const chk = await subsumedUnderStaleOrder(
      newJobId(),
      () => ({ locations: [], keep: [] }),
      () => [],
    );
    expect(existsSync(chk)).toBe(false);
  });

  it("an order keeping what the store discards is replaced by the store's own request (no files left behind)", async () => {
    const chk = await subsumedUnderStaleOrder(
      newJobId(),
      (c) => ({ locations: [c], keep: [c] }),
      () => [],
    );
    expect(existsSync(chk)).toBe(false);
  });
});
