import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpenAPIBackend } from 'openapi-backend';
import { FlinkTestServer, SPEC_PATH } from './flink/server';
import { sleep, until } from './support/wait';
import { client, startService, testPrefix, type RunningService } from './support/service';
import { deleteKeys } from './support/redis';
import { namespaceOf } from './support/namespace';
import { Queue } from 'bullmq';

let counter = 0;
const newJobId = () =>
  `${(Date.now() + counter++).toString(16).padStart(16, '0')}${'f1'.repeat(8)}`.slice(0, 32);

interface SnapshotBody {
  snapshotId: number;
  kind: string;
  status: string;
  triggerType: string;
  externalPath: string;
  flinkCheckpointId: number | null;
  failureMessage: string | null;
  discard: { cause: string; state: string; error: string | null } | null;
  triggeredAt: string;
  completedAt: string | null;
}

/** A catalog location (`file:///…` or a path) as a local path, to look at the file system. */
const localPath = (location: string) => (location.startsWith('file:') ? fileURLToPath(location) : location);

describe('the Flink connector (issue 19): managed jobs over Flink’s REST API, against the Flink test server', () => {
  let dir: string;
  let root: string;
  let flink: FlinkTestServer;
  let service: RunningService;
  let api: ReturnType<typeof client>;
  const prefix = testPrefix('flink');
  const env = () => ({
    SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
    SNAPCAT_STORAGE_ROOTS: root,
    SNAPCAT_QUEUE_PREFIX: prefix,
    SNAPCAT_FLINK_POLL: 'PT0.2S',
    SNAPCAT_SECRET_KEY: 'a'.repeat(64),
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-flink-'));
    root = join(dir, 'root');
    flink = new FlinkTestServer({ savepointDelayMs: 50, disposalDelayMs: 30 });
    await flink.start();
    service = await startService(env());
    api = client(service.url);
    const cluster = await api.put('/clusters/local', { restUrl: flink.url });
    expect([200, 201]).toContain(cluster.status);
  }, 60_000);
  afterAll(async () => {
    await service?.stop('SIGKILL');
    await flink?.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    // Every request snapcat sent matched Flink's published spec, and every answer the server gave did.
    expect(flink.violations).toEqual([]);
  });

  const snapshots = async (jobId: string): Promise<SnapshotBody[]> =>
    (await api.get(`/jobs/${jobId}`)).body.snapshots as SnapshotBody[];
  /** Decision 0032: B's restore in Flink is mirrored as from A's snapshot, and A holds that snapshot for B. */
  const heldFor = async (b: string, a: string, snapshotId: number) => {
    const eventOf = async (jobId: string, type: string) =>
      ((await api.get(`/jobs/${jobId}/events`)).body.events as { type: string; data: object }[]).find(
        (e) => e.type === type,
      );
    const restored = await until(() => eventOf(b, 'FlinkRestoreRecorded'), 15_000, 'the restore mirrored');
    expect(restored.data).toMatchObject({ fromJobId: a });
    const hold = await until(() => eventOf(a, 'SnapshotHeld'), 15_000, 'the hold');
    expect(hold.data).toMatchObject({ snapshotId, holderJobId: b });
  };
  /** The snapshot once it has the status (waits up to `ms`). */
  const snapshotWhen = (jobId: string, snapshotId: number, status: string, ms: number) =>
    until(
      async () => {
        const s = (await api.get(`/jobs/${jobId}/snapshots/${snapshotId}`)).body as SnapshotBody;
        return s.status === status ? s : undefined;
      },
      ms,
      `snapshot ${snapshotId} ${status}`,
    );
  /** A job running in the simulated Flink, registered in snapcat as managed through it. */
  const managedJob = async (
    checkpointIntervalMs?: number,
    externalizedRetention:
      'RETAIN_ON_CANCELLATION' | 'NO_EXTERNALIZED_CHECKPOINTS' = 'RETAIN_ON_CANCELLATION',
    historySize?: number,
    {
      jobId = newJobId(),
      ...more
    }: { checkpointStatistics?: boolean; numRetained?: number; jobId?: string } = {},
  ) => {
    flink.addJob(jobId, {
      checkpointDir: join(root, 'checkpoints'),
      savepointDir: join(root, 'savepoints'),
      externalizedRetention,
      ...(checkpointIntervalMs ? { checkpointIntervalMs } : {}),
      ...(historySize ? { historySize } : {}),
      ...more,
    });
    const registered = await api.put(`/jobs/${jobId}`, {
      source: { type: 'flink', cluster: 'local' },
      storage: { checkpointDir: join(root, 'checkpoints'), savepointDir: join(root, 'savepoints') },
    });
    expect(registered.status).toBe(201);
    return jobId;
  };

  it('R68 the mirror records 30 checkpoints exactly once each, across a snapcat restart and a JobManager failover', async () => {
    // Flink keeps 10 checkpoints in its history by default (web.checkpoints.history); 25 here: fewer than the
    // 30 mirrored, so the whole history the Flink-compatible reads show is snapcat's. (What leaves Flink's
    // history, or a failover wipes, before any poll read it is lost to every observer, snapcat included.)
    const jobId = await managedJob(500, 'RETAIN_ON_CANCELLATION', 25);
    const mirrored = async () =>
      (await snapshots(jobId)).filter((s) => s.kind === 'CHECKPOINT' && s.flinkCheckpointId !== null);
    await until(
      async () => ((await mirrored()).length >= 8 ? true : undefined),
      20_000,
      '8 checkpoints mirrored',
    );
    // While snapcat is down Flink takes exactly three checkpoints (the periodic ones are held, so a slow
    // restart on a loaded machine cannot outlast Flink's history); the restarted mirror must catch up on them.
    flink.holdCheckpoints(jobId, true);
    await service.stop('SIGKILL');
    for (let i = 0; i < 3; i += 1) await flink.checkpointNow(jobId);
    // Taken while snapcat was down: catalogued with Flink's times, not the restarted mirror's (R68).
    const iso = (ms: number) => new Date(ms).toISOString();
    const takenWhileDown = flink
      .job(jobId)
      .history.filter((c) => c.status === 'COMPLETED')
      .slice(0, 3)
      .map((c) => ({
        id: c.id,
        triggeredAt: iso(c.triggerTimestamp),
        completedAt: iso(c.latestAckTimestamp),
      }));
    expect(takenWhileDown).toHaveLength(3);
    service = await startService(env());
    api = client(service.url);
    flink.holdCheckpoints(jobId, false);
    // The restarted mirror catches up on what Flink's history still holds, then the JobManager fails over
    // (what a failover wipes before anyone read it is lost to any observer, snapcat included).
    await until(async () => ((await mirrored()).length >= 14 ? true : undefined), 20_000, 'caught up');
    const recorded = new Map((await mirrored()).map((s) => [s.flinkCheckpointId, s]));
    expect(
      takenWhileDown.map(({ id }) => ({
        id,
        triggeredAt: recorded.get(id)?.triggeredAt,
        completedAt: recorded.get(id)?.completedAt,
      })),
    ).toEqual(takenWhileDown);
    // The failover comes once snapcat has recorded Flink's newest completed checkpoint and before the next
    // one starts: a failover aborts the checkpoint in flight, and wipes a completion no poll has read yet.
    // (Checked after the read, in one synchronous step with the failover, so Flink cannot move in between.)
    await until(
      async () => {
        const recorded = (await mirrored())
          .filter((s) => s.status !== 'PENDING')
          .map((s) => s.flinkCheckpointId);
        const flinkJob = flink.job(jobId);
        if (flinkJob.checkpointRunning || !recorded.includes(flinkJob.latestCompleted?.id ?? null))
          return undefined;
        flink.failover(jobId);
        return true;
      },
      10_000,
      'snapcat caught up with Flink, no checkpoint in flight',
    );
    await until(
      async () => ((await mirrored()).filter((s) => s.status !== 'PENDING').length >= 30 ? true : undefined),
      40_000,
      '30 checkpoints mirrored',
    );
    const ids = (await mirrored()).map((s) => s.flinkCheckpointId!);
    expect(new Set(ids).size).toBe(ids.length); // never twice
    const sorted = [...ids].sort((a, b) => a - b);
    // Flink's ids continue through the failover and none went missing (its history held 25: 12.5 s at 500 ms).
    expect(sorted).toEqual(Array.from({ length: sorted.length }, (_, i) => sorted[0]! + i));
    // The failover's restore is recorded, with the catalogued checkpoint it restored from.
    const restore = (await api.get(`/jobs/${jobId}`)).body.flinkRestore;
    expect(restore).toMatchObject({ isSavepoint: false, snapshotId: expect.any(Number) });
    expect(ids).toContain(restore.flinkCheckpointId);
    // The Flink-compatible reads of the managed job answer as Flink's spec says, with the whole history.
    const spec = new OpenAPIBackend({ definition: SPEC_PATH, quick: false, validate: true });
    await spec.init();
    const compat = async (path: string, operationId: string) => {
      const res = await fetch(`${service.url}/api/flink/v1/jobs/${jobId}${path}`);
      expect(res.status).toBe(200);
      const body = await res.json();
      const valid = spec.validateResponse(body, operationId);
      expect([operationId, valid.errors ?? []]).toEqual([operationId, []]);
      return body as { history?: { id: number }[] };
    };
    const stats = await compat('/checkpoints', 'getCheckpointingStatistics');
    expect(stats.history!.length).toBeGreaterThanOrEqual(30); // not Flink's last 25
    await compat('/checkpoints/config', 'getCheckpointConfig');
    await compat(`/checkpoints/details/${stats.history![0]!.id}`, 'getCheckpointStatisticDetails');
    // Flink subsumed all but its newest: recorded as discarded by Flink, with nothing deleted by snapcat.
    const discarded = (await mirrored()).filter((s) => s.status === 'DISCARDED');
    expect(discarded.length).toBeGreaterThan(20);
    expect(discarded.every((s) => s.discard?.cause === 'SUBSUMED')).toBe(true);
  }, 120_000);

  it('R67 a PT1S schedule takes one Flink savepoint per slot; retention disposes of old ones through Flink, and drops them only after success', async () => {
    const jobId = await managedJob();
    flink.failNextDisposals(1, 'java.io.IOException: the object store said no');
    const schedule = await api.put(`/jobs/${jobId}/savepoint-schedule`, {
      every: 'PT1S',
      retention: { maxCount: 2 },
    });
    expect(schedule.status).toBeLessThan(300);
    await until(
      async () =>
        (await snapshots(jobId)).filter((s) => s.kind === 'SAVEPOINT' && s.status === 'DISCARDED').length >= 2
          ? true
          : undefined,
      30_000,
      'two periodic savepoints disposed of',
    );
    await api.delete(`/jobs/${jobId}/savepoint-schedule`);
    const savepoints = (await snapshots(jobId)).filter((s) => s.kind === 'SAVEPOINT');
    // One Flink savepoint per snapcat savepoint (per slot): Flink keys them by trigger id, so a POST the
    // connector repeats while it follows one is that one, not another. The last slot's POST may still be on
    // its way when the schedule is removed: waited for, then the counts must be equal (a duplicate never is).
    await until(
      async () => (flink.job(jobId).savepoints.size >= savepoints.length ? true : undefined),
      10_000,
      'every savepoint posted to Flink',
    );
    expect(flink.job(jobId).savepoints.size).toBe(savepoints.length);
    expect(
      flink.requestsFor(jobId).filter((r) => r.operationId === 'triggerSavepoint').length,
    ).toBeGreaterThanOrEqual(savepoints.length);
    for (const s of savepoints.filter((x) => x.status === 'COMPLETED')) {
      expect(s.externalPath).toMatch(/savepoint-[0-9a-f]{6}-[0-9a-f]{12}$/);
      expect(existsSync(localPath(s.externalPath))).toBe(true);
    }
    for (const s of savepoints.filter((x) => x.status === 'DISCARDED')) {
      expect(s.discard?.cause).toBe('RETENTION');
      expect(existsSync(localPath(s.externalPath))).toBe(false);
    }
    // The disposal that failed was recorded with Flink's error, then tried again until it succeeded.
    const disposals = flink.requests.filter((r) => r.operationId === 'triggerSavepointDisposal');
    expect(disposals.length).toBeGreaterThanOrEqual(3);
    const graphql = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `{ catalog(jobId: "${jobId}", first: 50) { edges { node { id kind externalPath } } } }`,
      }),
    });
    const catalog = (
      (await graphql.json()) as { data: { catalog: { edges: { node: { externalPath: string } }[] } } }
    ).data.catalog.edges.map((e) => e.node.externalPath);
    for (const s of savepoints.filter((x) => x.status === 'COMPLETED'))
      expect(catalog).toContain(s.externalPath);
  }, 60_000);

  it('R67 persisting a managed job’s checkpoint takes a NATIVE savepoint in Flink that stands for it', async () => {
    const jobId = await managedJob(300);
    // Flink subsumes a checkpoint every 300 ms here: one found completed may be discarded by the time it is
    // persisted (409 DISCARDED), so the newest completed one is tried until one is persisted.
    const { checkpoint, persisted } = await until(
      async () => {
        const completed = (await snapshots(jobId)).filter(
          (s) => s.kind === 'CHECKPOINT' && s.status === 'COMPLETED',
        );
        const newest = completed.at(-1);
        if (!newest) return undefined;
        const answer = await api.post(`/jobs/${jobId}/snapshots/${newest.snapshotId}/persist`, {});
        if (answer.status === 409 && /DISCARDED/.test(answer.body.detail)) return undefined;
        return { checkpoint: newest, persisted: answer };
      },
      15_000,
      'a mirrored checkpoint persisted',
    );
    expect([persisted.status, persisted.body.detail]).toEqual([202, undefined]);
    expect(persisted.body).toMatchObject({
      persisted: false,
      changed: true,
      savepointPath: null,
      restorePath: null,
    });
    const savepoint = await until(
      async () => {
        const s = (await api.get(`/jobs/${jobId}/snapshots/${persisted.body.savepointSnapshotId}`)).body;
        return s.status === 'COMPLETED' ? s : undefined;
      },
      15_000,
      'the savepoint completed',
    );
    expect(savepoint).toMatchObject({
      kind: 'SAVEPOINT',
      formatType: 'NATIVE',
      standsFor: checkpoint.snapshotId,
    });
    expect(existsSync(localPath(savepoint.externalPath))).toBe(true);
  }, 60_000);

  it('R67 the status follows Flink’s (one overview request per cluster), checkpoints cost one request per job per poll, and a job Flink would lose its checkpoints of is flagged', async () => {
    const jobId = await managedJob(300, 'NO_EXTERNALIZED_CHECKPOINTS');
    const warnings = await until(
      async () => {
        const job = (await api.get(`/jobs/${jobId}`)).body;
        return job.warnings.length > 0 ? job.warnings : undefined;
      },
      10_000,
      'the retention warning',
    );
    expect(warnings[0]).toMatch(/externalized checkpoints are off/);
    flink.setJobState(jobId, 'RESTARTING');
    await until(
      async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'RESTARTING' ? true : undefined),
      10_000,
      'RESTARTING',
    );
    flink.setJobState(jobId, 'RUNNING');
    await until(
      async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'RUNNING' ? true : undefined),
      10_000,
      'RUNNING',
    );
    // Over 3 s at a 200 ms poll: at most one checkpoint-history request per poll, and no per-job status request.
    const since = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    const mine = flink.requestsFor(jobId, since);
    expect(mine.filter((r) => r.operationId === 'getCheckpointingStatistics').length).toBeLessThanOrEqual(
      3000 / 200 + 1,
    );
    expect(mine.filter((r) => r.operationId === 'getJobDetails')).toEqual([]);
    const overviews = flink.requests.filter((r) => r.operationId === 'getJobsOverview' && r.time >= since);
    expect(overviews.length).toBeGreaterThan(0);
    expect(overviews.length).toBeLessThanOrEqual(3000 / 200 + 1);
  }, 60_000);

  it('R67 a job Flink has already ended when it is registered is recorded as it is (FINISHED, CANCELED, FAILED), takes no savepoint, and has what Flink’s history kept catalogued once', async () => {
    const storage = { checkpointDir: join(root, 'checkpoints'), savepointDir: join(root, 'savepoints') };
    for (const ended of ['FINISHED', 'CANCELED', 'FAILED'] as const) {
      const jobId = newJobId();
      flink.addJob(jobId, { ...storage, externalizedRetention: 'RETAIN_ON_CANCELLATION' });
      const flinkId = await flink.checkpointNow(jobId);
      flink.setJobState(jobId, ended);
      const registered = await api.put(`/jobs/${jobId}`, {
        source: { type: 'flink', cluster: 'local' },
        storage,
      });
      expect(registered.status).toBe(201);
      // Recorded as Flink reports it, at once: no RUNNING until a status poll.
      const events = (await api.get(`/jobs/${jobId}/events`)).body.events as { type: string; data: object }[];
      expect(events.find((e) => e.type === 'JobRegistered')?.data).toMatchObject({ status: ended });
      expect(events.filter((e) => e.type === 'JobStatusChanged')).toEqual([]);
      expect((await api.get(`/jobs/${jobId}`)).body.status).toBe(ended);
      expect((await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' })).status).toBe(409);
      // What Flink's history kept of the ended job is catalogued, once.
      const mirrored = await until(
        async () =>
          (await snapshots(jobId)).find((s) => s.flinkCheckpointId === flinkId && s.status === 'COMPLETED'),
        15_000,
        `the ${ended} job's checkpoint catalogued`,
      );
      expect(mirrored.kind).toBe('CHECKPOINT');
      const reads = () =>
        flink.requestsFor(jobId).filter((r) => r.operationId === 'getCheckpointingStatistics').length;
      const read = reads();
      await sleep(1_000); // five poll intervals: an ended job is not polled
      expect(reads()).toBe(read);
    }
    // A job its clients reported until now, given its source once Flink has ended it: ended in the same
    // command, never polled, its history read once all the same.
    const adopted = newJobId();
    expect((await api.put(`/jobs/${adopted}`, { tasks: ['a'], storage })).status).toBe(201);
    flink.addJob(adopted, { ...storage, externalizedRetention: 'RETAIN_ON_CANCELLATION' });
    const lastCheckpoint = await flink.checkpointNow(adopted);
    flink.setJobState(adopted, 'FINISHED');
    const given = await api.put(`/jobs/${adopted}`, { source: { type: 'flink', cluster: 'local' }, storage });
    expect(given.status).toBe(200);
    expect((await api.get(`/jobs/${adopted}`)).body.status).toBe('FINISHED');
    await until(
      async () =>
        (await snapshots(adopted)).find(
          (s) => s.flinkCheckpointId === lastCheckpoint && s.status === 'COMPLETED',
        ),
      15_000,
      'the adopted job’s last checkpoint catalogued',
    );
    // A job Flink does not know (not submitted yet) is registered as before: RUNNING, the status poll follows.
    const unknown = newJobId();
    const registered = await api.put(`/jobs/${unknown}`, {
      source: { type: 'flink', cluster: 'local' },
      storage,
    });
    expect(registered.status).toBe(201);
    expect((await api.get(`/jobs/${unknown}`)).body.status).toBe('RUNNING');
  }, 90_000);

  it('R65, R66, R67 a stop-with-savepoint of a managed job goes through Flink’s /stop and finishes the job', async () => {
    const jobId = await managedJob();
    const stop = await api.post(`/jobs/${jobId}/snapshots`, {
      kind: 'SAVEPOINT',
      terminate: { drain: true },
    });
    expect(stop.status).toBe(202);
    await until(
      async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'FINISHED' ? true : undefined),
      15_000,
      'the job FINISHED',
    );
    const savepoint = (await api.get(`/jobs/${jobId}/snapshots/${stop.body.snapshotId}`)).body;
    expect(savepoint).toMatchObject({ status: 'COMPLETED', savepointType: 'TERMINATE' });
    expect(existsSync(localPath(savepoint.externalPath))).toBe(true);
    expect(flink.requestsFor(jobId).some((r) => r.operationId === 'triggerStopWithSavepoint')).toBe(true);
    expect(flink.job(jobId).state).toBe('FINISHED');
  }, 60_000);

  it('R68 a job stopped with a savepoint outside snapcat (the Kubernetes operator, `flink stop`) has that savepoint catalogued: the history is read before the status', async () => {
    const jobId = await managedJob();
    await until(
      async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'RUNNING' ? true : undefined),
      15_000,
      'the job RUNNING',
    );
    // The mirror's reads of the history fail for a while: the status poll sees FINISHED first.
    flink.refuseNext('getCheckpointingStatistics', 10, 500, 'the JobManager is busy');
    const stopped = await fetch(`${flink.url}/jobs/${jobId}/stop`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ targetDirectory: join(root, 'savepoints'), drain: false }),
    });
    expect(stopped.status).toBe(202);
    await until(
      async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'FINISHED' ? true : undefined),
      20_000,
      'the job FINISHED',
    );
    const finalSavepoint = flink.job(jobId).latestSavepoint!.directory!;
    const savepoints = (await snapshots(jobId)).filter((s) => s.kind === 'SAVEPOINT');
    expect(savepoints.map((s) => localPath(s.externalPath))).toEqual([finalSavepoint]);
    expect(savepoints[0]).toMatchObject({ status: 'COMPLETED' });
    expect(existsSync(finalSavepoint)).toBe(true);
  }, 60_000);

  /**
   * A checkpoint taken now in Flink (held: nothing else is triggered), once the mirror shows it PENDING: its
   * completion in Flink (`done`, Flink's id), and the catalogue's view of it.
   */
  const checkpointSeenInProgress = async (jobId: string) => {
    const done = flink.checkpointNow(jobId);
    const mirrored = async () =>
      (await snapshots(jobId)).find((s) => s.kind === 'CHECKPOINT' && s.flinkCheckpointId !== null);
    await until(
      async () => (await mirrored())?.status === 'PENDING' || undefined,
      15_000,
      'seen in progress',
    );
    return { done, mirrored };
  };

  it('R45, R68 a checkpoint Flink completed just before the job failed over stays COMPLETED: the history is read before RESTARTING', async () => {
    const jobId = await managedJob();
    flink.holdCheckpoints(jobId, true);
    flink.configure({ checkpointDurationMs: 1_500 });
    try {
      const { done, mirrored } = await checkpointSeenInProgress(jobId);
      // The mirror's next read comes after the status poll's (a slow answer): Flink completes the checkpoint,
      // then the job fails over.
      flink.refuseNext('getCheckpointingStatistics', 100_000, 500, 'the JobManager is busy');
      const id = await done;
      flink.setJobState(jobId, 'RESTARTING');
      await sleep(1_000); // five status polls
      flink.refuseNext('getCheckpointingStatistics', 0, 500, '');
      await until(
        async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'RESTARTING' ? true : undefined),
        15_000,
        'the job RESTARTING',
      );
      expect(await mirrored()).toMatchObject({ flinkCheckpointId: id, status: 'COMPLETED' });
    } finally {
      flink.refuseNext('getCheckpointingStatistics', 0, 500, '');
      flink.configure({ checkpointDurationMs: 5 });
      flink.setJobState(jobId, 'RUNNING');
    }
  }, 60_000);

  it('R66, R68 a checkpoint Flink completed just before the stop snapcat took is catalogued completed: the history is read before the stop is recorded', async () => {
    const jobId = await managedJob();
    flink.holdCheckpoints(jobId, true);
    flink.configure({ checkpointDurationMs: 1_500 });
    try {
      const { done, mirrored } = await checkpointSeenInProgress(jobId);
      // Flink completes the checkpoint, then the stop's savepoint, before the mirror reads the history again
      // (a walkthrough's poll came after the stop in 2 runs of 5): the history is busy meanwhile.
      flink.refuseNext('getCheckpointingStatistics', 100_000, 500, 'the JobManager is busy');
      const id = await done;
      const stop = await api.post(`/jobs/${jobId}/snapshots`, {
        kind: 'SAVEPOINT',
        terminate: { drain: false },
      });
      expect(stop.status).toBe(202);
      await until(
        async () => (flink.job(jobId).state === 'FINISHED' ? true : undefined),
        15_000,
        'stopped in Flink',
      );
      await sleep(2_000); // the stop's answer read meanwhile: its record waits for the history
      flink.refuseNext('getCheckpointingStatistics', 0, 500, '');
      await until(
        async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'FINISHED' ? true : undefined),
        20_000,
        'the job FINISHED',
      );
      const checkpoint = (await mirrored())!;
      expect(checkpoint).toMatchObject({ flinkCheckpointId: id, failedAt: null });
      expect(checkpoint.completedAt).not.toBeNull();
      const types = (await api.get(`/jobs/${jobId}/events`)).body.events.map((e: { type: string }) => e.type);
      expect(types).not.toContain('SnapshotFailed');
      expect((await api.get(`/jobs/${jobId}/snapshots/${stop.body.snapshotId}`)).body.status).toBe(
        'COMPLETED',
      );
      expect((await snapshots(jobId)).filter((s) => s.kind === 'SAVEPOINT')).toHaveLength(1);
    } finally {
      flink.refuseNext('getCheckpointingStatistics', 0, 500, '');
      flink.configure({ checkpointDurationMs: 5 });
    }
  }, 60_000);

  it('decision 0019: checkpoints Flink deleted after they left its history (num-retained above its size, a JobManager failover) are recorded deleted once their directory is gone; those it retains stay COMPLETED', async () => {
    // A history of 2 and 3 retained: each completion deletes a checkpoint the history no longer reports.
    const jobId = await managedJob(500, 'RETAIN_ON_CANCELLATION', 2, { numRetained: 3 });
    // Its first checkpoint fails: latest.failed keeps reporting it long after it left the history, and must
    // not hide what lies below the history from this look (a review).
    flink.failNextCheckpoints(jobId, 1);
    const mirrored = async () =>
      (await snapshots(jobId)).filter((s) => s.kind === 'CHECKPOINT' && s.flinkCheckpointId !== null);
    const completedIds = async () =>
      (await mirrored())
        .filter((s) => s.status === 'COMPLETED')
        .map((s) => s.flinkCheckpointId!)
        .sort((a, b) => a - b);
    const retainedIds = () => flink.job(jobId).retained.map((c) => c.id);
    /**
     * Once Flink completed one more: the catalogue's completed checkpoints are exactly those Flink retains (of
     * those the mirror saw: one that left the history before any poll read it is known to nobody).
     */
    const catalogueMatchesFlink = async (what: string) => {
      await flink.checkpointNow(jobId);
      let last = '';
      await until(
        async () => {
          const seen = new Set((await mirrored()).map((s) => s.flinkCheckpointId));
          const want = retainedIds().filter((id) => seen.has(id));
          const have = await completedIds();
          last = `completed ${JSON.stringify(have)}, Flink retains ${JSON.stringify(retainedIds())}`;
          return JSON.stringify(have) === JSON.stringify(want) && want.length >= 2 ? true : undefined;
        },
        45_000,
        `${what}: the completed checkpoints are Flink's retained ones`,
      ).catch((error: Error) => {
        throw new Error(`${error.message} (${last})`);
      });
    };
    await until(
      async () => ((await mirrored()).filter((s) => s.status !== 'PENDING').length >= 8 ? true : undefined),
      30_000,
      '8 checkpoints mirrored',
    );
    flink.holdCheckpoints(jobId, true);
    await catalogueMatchesFlink('num-retained above the history');
    const deleted = (await mirrored()).filter((s) => s.status === 'DISCARDED');
    expect(deleted.length).toBeGreaterThanOrEqual(4);
    expect(deleted.every((s) => s.discard?.cause === 'SUBSUMED')).toBe(true);
    // After a JobManager failover the history starts empty: the restored checkpoint and the two before it are
    // deleted as new ones complete, none of them ever reported discarded. (Of those the mirror saw: one Flink
    // completed after the last poll is known to nobody.)
    const seenBefore = new Set((await mirrored()).map((s) => s.flinkCheckpointId));
    const beforeFailover = retainedIds().filter((id) => seenBefore.has(id));
    expect(beforeFailover.length).toBeGreaterThanOrEqual(2);
    flink.failover(jobId);
    await until(
      async () => (flink.job(jobId).state === 'RUNNING' ? true : undefined),
      10_000,
      'RUNNING again',
    );
    for (let i = 0; i < 2; i += 1) await flink.checkpointNow(jobId);
    await catalogueMatchesFlink('after a failover');
    const statusOf = async (flinkId: number) =>
      (await mirrored()).find((s) => s.flinkCheckpointId === flinkId)?.status;
    for (const flinkId of beforeFailover) expect(await statusOf(flinkId)).toBe('DISCARDED');
  }, 90_000);

  it('R68 a completion that left the history before any poll saw it (a streak of failures longer than the history) is catalogued from latest.completed, and the checkpoint it subsumed recorded deleted', async () => {
    const jobId = await managedJob(500, 'RETAIN_ON_CANCELLATION', 2, { numRetained: 1 });
    flink.holdCheckpoints(jobId, true);
    const before = await flink.checkpointNow(jobId);
    const mirroredAs = async (flinkId: number) =>
      (await snapshots(jobId)).find((s) => s.kind === 'CHECKPOINT' && s.flinkCheckpointId === flinkId);
    await until(
      async () => ((await mirroredAs(before))?.status === 'COMPLETED' ? true : undefined),
      15_000,
      'the first completion mirrored',
    );
    // snapcat does not see Flink for a while: one more completes (deleting the first), then three fail.
    flink.refuseNext('getCheckpointingStatistics', 100_000, 500, 'the JobManager is busy');
    const unseen = await flink.checkpointNow(jobId);
    flink.failNextCheckpoints(jobId, 3);
    for (let i = 0; i < 3; i += 1) await flink.checkpointNow(jobId);
    const history = flink.job(jobId).history.map((c) => c.status);
    expect(history).toEqual(['FAILED', 'FAILED']);
    expect(flink.job(jobId).latestCompleted?.id).toBe(unseen);
    flink.refuseNext('getCheckpointingStatistics', 0, 500, '');
    await until(
      async () => ((await mirroredAs(unseen))?.status === 'COMPLETED' ? true : undefined),
      15_000,
      'the unseen completion catalogued',
    );
    await until(
      async () => ((await mirroredAs(before))?.status === 'DISCARDED' ? true : undefined),
      15_000,
      'the first recorded deleted',
    );
  }, 60_000);

  it('a status the overview says changed before the newest checkpoint Flink triggered (a stale read) is not recorded (it would abort what is pending); one that changed after is', async () => {
    const jobId = await managedJob();
    flink.holdCheckpoints(jobId, true);
    const first = await flink.checkpointNow(jobId);
    await until(
      async () => ((await snapshots(jobId)).some((s) => s.flinkCheckpointId === first) ? true : undefined),
      10_000,
      'the checkpoint mirrored',
    );
    // The overview as read just before the job ran again after a restart: RESTARTING, changed a minute ago.
    type Overview = { jobs: { jid: string }[] };
    const overviewSaying = (lastModification: () => number) => (body: unknown) => ({
      ...(body as Overview),
      jobs: (body as Overview).jobs.map((job) =>
        job.jid === jobId ? { ...job, state: 'RESTARTING', 'last-modification': lastModification() } : job,
      ),
    });
    flink.reshapeAnswers(
      'getJobsOverview',
      overviewSaying(() => Date.now() - 60_000),
    );
    try {
      const polled = flink.requests.filter((r) => r.operationId === 'getJobsOverview').length;
      await until(
        async () =>
          flink.requests.filter((r) => r.operationId === 'getJobsOverview').length >= polled + 3
            ? true
            : undefined,
        10_000,
        'three status polls',
      );
      expect((await api.get(`/jobs/${jobId}`)).body.status).toBe('RUNNING');
      // A RESTARTING after the newest checkpoint is the job's: recorded.
      flink.reshapeAnswers(
        'getJobsOverview',
        overviewSaying(() => Date.now()),
      );
      await until(
        async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'RESTARTING' ? true : undefined),
        10_000,
        'RESTARTING recorded',
      );
    } finally {
      flink.reshapeAnswers('getJobsOverview', undefined);
    }
  }, 60_000);

  it('a job run again under the same JobID with its checkpoint ids from 1 (no HA) stops the mirror, said once: the earlier run’s checkpoints are not taken for the new run’s', async () => {
    const jobId = await managedJob(undefined, 'RETAIN_ON_CANCELLATION', 10, { numRetained: 2 });
    flink.holdCheckpoints(jobId, true); // only the checkpoints taken here
    for (let i = 0; i < 5; i += 1) await flink.checkpointNow(jobId);
    const recorded = async () =>
      (await snapshots(jobId))
        .filter((s) => s.flinkCheckpointId !== null)
        .map((s) => [s.flinkCheckpointId, s.status] as const)
        .sort((a, b) => a[0]! - b[0]!);
    await until(
      async () =>
        (await recorded()).filter(([, status]) => status !== 'PENDING').length === 5 ? true : undefined,
      15_000,
      'the first run mirrored',
    );
    const before = await recorded();
    flink.resubmit(jobId);
    // The new run takes three (ids 1 to 3) and, retaining 2, deletes its own 1: the earlier run's 1 to 5 must
    // stay as they were, and nothing of the new run is recorded under the earlier run's ids.
    for (let i = 0; i < 3; i += 1) await flink.checkpointNow(jobId);
    const said = () =>
      service.logs.filter((line) => line.includes('checkpoint ids went back') && line.includes(jobId));
    await until(async () => (said().length > 0 ? true : undefined), 10_000, 'the rerun said');
    await sleep(1_000); // five more polls
    expect(said()).toHaveLength(1);
    // Said at the first poll that saw the new run: after its first, second or third checkpoint.
    const line = JSON.parse(said()[0]!) as { level: string; reported: number; recorded: number };
    expect([line.level, line.recorded, [1, 2, 3].includes(line.reported)]).toEqual(['error', 5, true]);
    expect(await recorded()).toEqual(before);
  });

  it('R67 a savepoint of a job Flink does not run fails with Flink’s 404 once it has lasted 15 s, not at its deadline with no cause', async () => {
    const jobId = newJobId(); // registered as managed, never submitted to Flink
    const registered = await api.put(`/jobs/${jobId}`, {
      source: { type: 'flink', cluster: 'local' },
      storage: { checkpointDir: join(root, 'checkpoints'), savepointDir: join(root, 'savepoints') },
    });
    expect(registered.status).toBe(201);
    const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    const failed = await snapshotWhen(jobId, taken.body.snapshotId, 'FAILED', 45_000);
    expect(failed.failureMessage).toMatch(
      new RegExp(`^Flink does not know job ${jobId} \\(404 for \\d+ s\\): `),
    );
  }, 60_000);

  it('R67 a savepoint snapcat takes carries Flink’s figures of it (sizes, completion time) from Flink’s checkpoint history', async () => {
    const jobId = await managedJob();
    const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    const savepoint = await snapshotWhen(jobId, taken.body.snapshotId, 'COMPLETED', 15_000);
    const inFlink = flink
      .job(jobId)
      .history.find(
        (c) => c.checkpointType !== 'CHECKPOINT' && c.directory === localPath(savepoint.externalPath),
      );
    expect(inFlink?.stateSize).toBeGreaterThan(0);
    expect(savepoint).toMatchObject({
      stateSize: inFlink!.stateSize,
      checkpointedSize: inFlink!.checkpointedSize,
      completedAt: new Date(inFlink!.latestAckTimestamp).toISOString(),
    });
  }, 60_000);

  it('R67 a disposal through Flink records the savepoint’s size as reclaimed, or null (not known) where the catalogue knew none; REST and GraphQL alike', async () => {
    const known = await managedJob();
    // No checkpoint statistics: Flink's figures of the savepoint are never known.
    const unknown = await managedJob(undefined, undefined, undefined, { checkpointStatistics: false });
    const disposed = async (jobId: string) => {
      const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
      const savepoint = await snapshotWhen(jobId, taken.body.snapshotId, 'COMPLETED', 15_000);
      await api.post(`/jobs/${jobId}/snapshots/${taken.body.snapshotId}/discard`, { force: true });
      const done = await snapshotWhen(jobId, taken.body.snapshotId, 'DISCARDED', 15_000);
      // REST reads the store, GraphQL the read model: it is read once the projector has gone past the request.
      const discard = await until(
        async () => {
          const graphql = await fetch(`${service.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              query: `{ snapshot(jobId: "${jobId}", id: ${taken.body.snapshotId}) { discard { state bytesReclaimed } } }`,
            }),
          });
          const { data } = (await graphql.json()) as {
            data: { snapshot: { discard: { state: string; bytesReclaimed: number | null } } };
          };
          return data.snapshot.discard.state === 'REQUESTED' ? undefined : data.snapshot.discard;
        },
        5_000,
        'the read model to project the disposal',
      );
      const events = (await api.get(`/jobs/${jobId}/events`)).body.events as {
        type: string;
        data: { snapshotId: number; bytesReclaimed?: number | null };
      }[];
      const event = events.find((e) => e.type === 'SnapshotDiscarded');
      return {
        stateSize: (savepoint as SnapshotBody & { stateSize: number }).stateSize,
        rest: (done.discard as { bytesReclaimed?: number | null }).bytesReclaimed,
        graphql: discard,
        event: event?.data.bytesReclaimed,
      };
    };
    const withSize = await disposed(known);
    expect(withSize.stateSize).toBeGreaterThan(0);
    expect(withSize).toEqual({
      stateSize: withSize.stateSize,
      rest: withSize.stateSize,
      graphql: { state: 'DONE', bytesReclaimed: withSize.stateSize },
      event: withSize.stateSize,
    });
    expect(await disposed(unknown)).toEqual({
      stateSize: 0,
      rest: null,
      graphql: { state: 'DONE', bytesReclaimed: null },
      event: null,
    });
  }, 60_000);

  it('R67 a disposal Flink fails for a savepoint no longer there (an earlier disposal did it, its answer lost) counts as done', async () => {
    const jobId = await managedJob();
    const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    const savepoint = await snapshotWhen(jobId, taken.body.snapshotId, 'COMPLETED', 15_000);
    rmSync(localPath(savepoint.externalPath), { recursive: true, force: true });
    flink.failNextDisposals(100, 'java.io.FileNotFoundException: no savepoint there');
    const before = flink.requests.filter((r) => r.operationId === 'triggerSavepointDisposal').length;
    await api.post(`/jobs/${jobId}/snapshots/${taken.body.snapshotId}/discard`, { force: true });
    await snapshotWhen(jobId, taken.body.snapshotId, 'DISCARDED', 15_000);
    expect(flink.requests.filter((r) => r.operationId === 'triggerSavepointDisposal').length - before).toBe(
      1,
    );
    // Recorded as done, and said so with Flink's cause (the README's "with Flink's error" holds in the log).
    const said = service.logs.filter(
      (line) => line.includes('no longer on storage: recorded as done') && line.includes(jobId),
    );
    expect(said).toHaveLength(1);
    expect(said[0]).toContain('FileNotFoundException');
    flink.failNextDisposals(0);
  }, 60_000);

  it('R67 a storage order for a managed job’s savepoint whose disposal is requested deletes nothing: Flink disposes of it', async () => {
    const jobId = await managedJob();
    const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    const snapshotId = taken.body.snapshotId as number;
    const savepoint = await snapshotWhen(jobId, snapshotId, 'COMPLETED', 15_000);
    const directory = localPath(savepoint.externalPath);
    expect(existsSync(directory)).toBe(true);
    // Flink refuses the disposal, so the discard stays requested while the order runs.
    flink.failNextDisposals(100, 'java.io.IOException: disposal refused');
    const queue = new Queue('storage', {
      connection: { url: 'redis://127.0.0.1:6379' },
      prefix: await namespaceOf(`sqlite:${join(dir, 'events.db')}`, prefix),
    });
    try {
      expect((await api.post(`/jobs/${jobId}/snapshots/${snapshotId}/discard`, { force: true })).status).toBe(
        202,
      );
      // The order a queue from another timeline of the store, or a hand edit, could hold.
      const order = await queue.add('discard', {
        jobId,
        snapshotId,
        locations: [savepoint.externalPath],
        stateHandles: [],
        keep: [],
      });
      const result = await until(
        async () => {
          const job = await queue.getJob(order.id!);
          return job?.finishedOn ? (job.returnvalue as unknown) : undefined;
        },
        20_000,
        'the order settled',
      );
      expect(result).toEqual({ skipped: true });
      expect(existsSync(directory)).toBe(true);
    } finally {
      flink.failNextDisposals(0);
      await queue.close();
    }
  }, 60_000);

  it('R67 a savepoint is triggered once, then followed by the id Flink answered with (a server may make its own)', async () => {
    const jobId = await managedJob();
    // Long enough for several status polls (every 500 ms), each of which used to send the trigger again.
    flink.configure({ ownTriggerIds: true, savepointDelayMs: 1_600 });
    try {
      const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
      expect(taken.status).toBe(202);
      const savepoint = await snapshotWhen(jobId, taken.body.snapshotId, 'COMPLETED', 20_000);
      expect(existsSync(localPath(savepoint.externalPath))).toBe(true);
      const requests = flink.requestsFor(jobId);
      expect(requests.filter((r) => r.operationId === 'triggerSavepoint')).toHaveLength(1);
      expect(requests.filter((r) => r.operationId === 'getSavepointStatus').length).toBeGreaterThan(1);
      expect(flink.job(jobId).savepoints.size).toBe(1);
    } finally {
      flink.configure({ ownTriggerIds: false, savepointDelayMs: 50 });
    }
  }, 60_000);

  it('R67 a disposal whose result Flink no longer holds (expired, or lost in a failover) is asked for again, not followed forever', async () => {
    const jobId = await managedJob();
    const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    await snapshotWhen(jobId, taken.body.snapshotId, 'COMPLETED', 15_000);
    flink.configure({ disposalDelayMs: 1_500 });
    try {
      const since = Date.now();
      const disposals = () =>
        flink.requests.filter((r) => r.operationId === 'triggerSavepointDisposal' && r.time >= since).length;
      await api.post(`/jobs/${jobId}/snapshots/${taken.body.snapshotId}/discard`, { force: true });
      await until(
        async () =>
          flink.requests.some((r) => r.operationId === 'getSavepointDisposalStatus' && r.time >= since) ||
          undefined,
        15_000,
        'the connector follows the disposal',
      );
      flink.forgetOperations();
      await snapshotWhen(jobId, taken.body.snapshotId, 'DISCARDED', 20_000);
      expect(disposals()).toBe(2);
    } finally {
      flink.configure({ disposalDelayMs: 30 });
    }
  }, 60_000);

  it('R67 a job Flink has no checkpoint statistics for (404 from both checkpoint endpoints) is managed all the same: nothing fails, savepoints work (FLIP-10)', async () => {
    const jobId = await managedJob(undefined, undefined, undefined, { checkpointStatistics: false });
    await until(
      async () =>
        flink.requestsFor(jobId).filter((r) => r.operationId === 'getCheckpointingStatistics').length >= 3 ||
        undefined,
      15_000,
      'three mirror polls',
    );
    const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    expect(taken.status).toBe(202);
    await snapshotWhen(jobId, taken.body.snapshotId, 'COMPLETED', 15_000);
    expect(service.logs.filter((line) => line.includes('flink job failed') && line.includes(jobId))).toEqual(
      [],
    );
  }, 60_000);

  it('R67 a checkpoint configuration without externalization (the spec requires none of its fields) is asked once, said once, and the mirror goes on', async () => {
    // The id is chosen first: the workers ask for the configuration as soon as the job is registered, which
    // may be before the registration's answer arrives (a loaded CI run asked it with the real body).
    const jobId = newJobId();
    flink.reshapeAnswers('getCheckpointConfig', (body, params) => (params['jobid'] === jobId ? {} : body));
    try {
      await managedJob(100, undefined, undefined, { jobId });
      await until(
        async () => ((await snapshots(jobId)).some((s) => s.status === 'COMPLETED') ? true : undefined),
        15_000,
        'a mirrored checkpoint',
      );
      const polls = () =>
        flink.requestsFor(jobId).filter((r) => r.operationId === 'getCheckpointingStatistics').length;
      const since = polls();
      await until(async () => polls() >= since + 3 || undefined, 15_000, 'three more mirror polls');
      expect(flink.requestsFor(jobId).filter((r) => r.operationId === 'getCheckpointConfig')).toHaveLength(1);
      const said = service.logs.filter(
        (line) => line.includes('without externalization') && line.includes(jobId),
      );
      expect(said).toHaveLength(1);
      const events = (await api.get(`/jobs/${jobId}/events?limit=1000`)).body.events as { type: string }[];
      expect(events.map((e) => e.type)).not.toContain('FlinkCheckpointRetentionRecorded');
    } finally {
      flink.reshapeAnswers('getCheckpointConfig', undefined);
    }
  }, 60_000);

  it('R67 a managed job its JobManager no longer lists is said once in the log, not followed in silence', async () => {
    const jobId = await managedJob();
    await until(
      async () => flink.requests.some((r) => r.operationId === 'getJobsOverview') || undefined,
      15_000,
      'a status poll',
    );
    flink.forgetJob(jobId);
    const since = Date.now();
    await until(
      async () =>
        flink.requests.filter((r) => r.operationId === 'getJobsOverview' && r.time >= since).length >= 4 ||
        undefined,
      15_000,
      'four status polls without the job',
    );
    const said = service.logs.filter(
      (line) => line.includes('not in its Flink cluster') && line.includes(jobId),
    );
    expect(said).toHaveLength(1);
    expect(JSON.parse(said[0]!)).toMatchObject({
      level: 'warn',
      job: jobId,
      cluster: 'local',
      status: 'RUNNING',
    });
  }, 60_000);

  it('R68 a restore Flink reports from a path the catalog cannot hold is recorded without it, and fails no poll', async () => {
    const jobId = await managedJob();
    flink.restore(jobId, { externalPath: 'savepoints/relative-1', isSavepoint: true });
    const restore = await until(
      async () => {
        const job = (await api.get(`/jobs/${jobId}`)).body as {
          flinkRestore: { externalPath: unknown } | null;
        };
        return job.flinkRestore ?? undefined;
      },
      15_000,
      'the restore recorded',
    );
    expect(restore.externalPath).toBeNull();
    expect(service.logs.filter((line) => line.includes('flink job failed') && line.includes(jobId))).toEqual(
      [],
    );
  }, 60_000);

  it('decision 0032: a managed job Flink restored from another job’s savepoint has that job hold it until it ends', async () => {
    const a = await managedJob();
    const taken = await api.post(`/jobs/${a}/snapshots`, { kind: 'SAVEPOINT' });
    const savepoint = await snapshotWhen(a, taken.body.snapshotId, 'COMPLETED', 15_000);
    // A newer one: the latest completed snapshot of a running job is kept whatever holds it.
    const newer = await api.post(`/jobs/${a}/snapshots`, { kind: 'SAVEPOINT' });
    await snapshotWhen(a, newer.body.snapshotId, 'COMPLETED', 15_000);
    const b = await managedJob();
    // Started in Flink from A's savepoint (an operator's initialSavepointPath), not through snapcat.
    flink.restore(b, { externalPath: localPath(savepoint.externalPath), isSavepoint: true });
    const discardA = () => api.post(`/jobs/${a}/snapshots/${savepoint.snapshotId}/discard`, {});
    await heldFor(b, a, savepoint.snapshotId);
    const refused = await discardA();
    expect([refused.status, refused.body.errors?.[0]?.rule]).toEqual([409, 'held-by-restore']);
    // B ends in Flink: the hold goes, and A's discard of its savepoint is accepted.
    flink.setJobState(b, 'CANCELED');
    const accepted = await until(
      async () => {
        const res = await discardA();
        return res.status === 202 ? res : undefined;
      },
      15_000,
      'the hold released',
    );
    expect(accepted.status).toBe(202);
  }, 60_000);

  it('decision 0032: a managed job Flink restored from another job’s imported snapshot (a directory naming no job) has that job hold it', async () => {
    const a = await managedJob();
    const imports = join(root, 'imports', `nightly-${a.slice(0, 8)}`);
    mkdirSync(imports, { recursive: true });
    writeFileSync(join(imports, '_metadata'), 'x');
    const imported = await api.post(`/jobs/${a}/snapshots/import`, {
      externalPath: imports,
      kind: 'SAVEPOINT',
    });
    expect(imported.status).toBe(201);
    const b = await managedJob();
    // Started in Flink from A's import (an operator's initialSavepointPath): only the index knows whose it is.
    flink.restore(b, { externalPath: imports, isSavepoint: true });
    await heldFor(b, a, imported.body.snapshotId);
  }, 60_000);

  it('decision 0033: once an admin narrows a cluster to other namespaces, snapcat sends nothing for the jobs left out: a savepoint fails with the reason, the mirror stops', async () => {
    expect(
      (await api.put('/clusters/narrowed', { restUrl: flink.url, namespaces: ['default'] })).status,
    ).toBe(201);
    const jobId = newJobId();
    flink.addJob(jobId, {
      checkpointDir: join(root, 'checkpoints'),
      savepointDir: join(root, 'savepoints'),
      externalizedRetention: 'RETAIN_ON_CANCELLATION',
      checkpointIntervalMs: 200,
    });
    const registered = await api.put(`/jobs/${jobId}`, {
      source: { type: 'flink', cluster: 'narrowed' },
      storage: { checkpointDir: join(root, 'checkpoints'), savepointDir: join(root, 'savepoints') },
    });
    expect(registered.status).toBe(201);
    // Served: the mirror polls the job.
    await until(
      async () =>
        flink.requestsFor(jobId).some((r) => r.operationId === 'getCheckpointingStatistics') || undefined,
      10_000,
      'a mirror poll',
    );
    expect((await api.put('/clusters/narrowed', { restUrl: flink.url, namespaces: ['team-b'] })).status).toBe(
      200,
    );
    await new Promise((r) => setTimeout(r, 1_000)); // a poll under way when the change landed ends
    const since = Date.now();
    const triggered = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    expect(triggered.status).toBe(202);
    const failed = await snapshotWhen(jobId, triggered.body.snapshotId, 'FAILED', 15_000);
    expect(failed.failureMessage).toContain('Flink cluster narrowed no longer serves namespace default');
    await new Promise((r) => setTimeout(r, 1_000)); // five poll intervals
    expect(flink.requestsFor(jobId, since)).toEqual([]);
    expect(service.logs.join('\n')).toContain('no longer serves namespace default');
  }, 60_000);

  it('R67 a savepoint Flink fails becomes a failed snapshot with Flink’s cause', async () => {
    const jobId = await managedJob();
    flink.failNextSavepoints(jobId, 1, 'Checkpoint was declined (tasks not ready)');
    const triggered = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    expect(triggered.status).toBe(202);
    const failed = await snapshotWhen(jobId, triggered.body.snapshotId, 'FAILED', 15_000);
    expect(failed.failureMessage).toContain('Checkpoint was declined (tasks not ready)');
    const next = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    await snapshotWhen(jobId, next.body.snapshotId, 'COMPLETED', 15_000);
  }, 60_000);

  it('R67 a savepoint whose operation Flink forgot while it ran (404 on its status) is followed in Flink’s history, not taken twice', async () => {
    const jobId = await managedJob();
    flink.configure({ savepointDelayMs: 1_500 });
    try {
      const since = Date.now();
      const triggered = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
      expect(triggered.status).toBe(202);
      await until(
        async () =>
          flink.requestsFor(jobId, since).some((r) => r.operationId === 'getSavepointStatus') || undefined,
        15_000,
        'the connector follows the savepoint',
      );
      flink.forgetOperations(); // a JobManager failover, or the result's store duration passed
      const done = await snapshotWhen(jobId, triggered.body.snapshotId, 'COMPLETED', 20_000);
      const triggers = flink.requestsFor(jobId, since).filter((r) => r.operationId === 'triggerSavepoint');
      expect(triggers).toHaveLength(1);
      expect(done.externalPath).toMatch(/savepoint-/);
      const savepoints = (await snapshots(jobId)).filter((s) => s.kind === 'SAVEPOINT');
      expect(savepoints).toHaveLength(1);
    } finally {
      flink.configure({ savepointDelayMs: 30 });
    }
  }, 60_000);

  it('R67 a savepoint whose operation Flink forgot after it left the bounded history is found in latest.savepoint, not taken twice', async () => {
    const jobId = await managedJob(undefined, 'RETAIN_ON_CANCELLATION', 2);
    flink.holdCheckpoints(jobId, true);
    const since = Date.now();
    // The connector cannot follow the operation for a while (snapcat busy, or down).
    flink.refuseNext('getSavepointStatus', 1_000, 503, 'the JobManager is busy');
    try {
      const triggered = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
      expect(triggered.status).toBe(202);
      await until(
        async () => flink.job(jobId).latestSavepoint?.directory,
        15_000,
        'Flink took the savepoint',
      );
      // Three checkpoints push it out of Flink's history (web.checkpoints.history: 2), and the operation's
      // result is dropped (rest.async.store-duration passed, or a JobManager failover).
      for (let i = 0; i < 3; i += 1) await flink.checkpointNow(jobId);
      flink.forgetOperations();
    } finally {
      flink.refuseNext('getSavepointStatus', 0, 503, '');
    }
    const savepoint = (await snapshots(jobId)).find((s) => s.kind === 'SAVEPOINT')!;
    const done = await snapshotWhen(jobId, savepoint.snapshotId, 'COMPLETED', 20_000);
    expect(localPath(done.externalPath)).toBe(flink.job(jobId).latestSavepoint!.directory);
    const triggers = flink.requestsFor(jobId, since).filter((r) => r.operationId === 'triggerSavepoint');
    expect(triggers).toHaveLength(1);
    flink.holdCheckpoints(jobId, false);
  }, 60_000);

  it('R67 a stop whose savepoint Flink took but whose job failed while stopping (StopWithSavepointStoppingException) catalogues that savepoint, and the job runs on', async () => {
    const jobId = await managedJob();
    flink.failNextStops(jobId, 1);
    const stop = await api.post(`/jobs/${jobId}/snapshots`, {
      kind: 'SAVEPOINT',
      terminate: { drain: false },
    });
    expect(stop.status).toBe(202);
    const done = await snapshotWhen(jobId, stop.body.snapshotId, 'COMPLETED', 15_000);
    expect(done.externalPath).toMatch(/savepoint-/);
    expect(existsSync(localPath(done.externalPath))).toBe(true);
    expect(flink.job(jobId).state).not.toBe('FINISHED');
    // Not finished in the catalogue either: it follows Flink's status (a failover, then RUNNING) and takes
    // savepoints again. Both must be RUNNING again first: the catalogue may never have seen the failover, and
    // Flink fails a savepoint triggered while the job restarts (a CI run did exactly that). A status poll
    // answered during the failover may be recorded after Flink runs again (its RESTARTING waits for the stop's
    // savepoint to settle): a CI run read the catalogue's RUNNING from before it, and the trigger was then
    // refused NOT_ALL_REQUIRED_TASKS_RUNNING. So the catalogue is read once two polls have been served since.
    await until(
      async () => (flink.job(jobId).state === 'RUNNING' ? true : undefined),
      15_000,
      'RUNNING in Flink',
    );
    const overviews = () => flink.requests.filter((r) => r.operationId === 'getJobsOverview').length;
    const polled = overviews();
    await until(async () => (overviews() >= polled + 2 ? true : undefined), 10_000, 'two status polls since');
    await until(
      async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'RUNNING' ? true : undefined),
      15_000,
      'the job RUNNING in the catalogue',
    );
    const next = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    expect([next.status, next.status === 202 ? 'triggered' : next.body]).toEqual([202, 'triggered']);
    await snapshotWhen(jobId, next.body.snapshotId, 'COMPLETED', 15_000);
  }, 60_000);

  it('R67 a savepoint Flink completed just before the job failed over is catalogued: the status waits for Flink’s answer', async () => {
    const jobId = await managedJob();
    flink.restartAfterNextSavepoints(jobId, 1);
    const taken = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    expect(taken.status).toBe(202);
    // Flink's job is RESTARTING for a second before the operation answers COMPLETED (several status polls).
    const done = await snapshotWhen(jobId, taken.body.snapshotId, 'COMPLETED', 15_000);
    expect(existsSync(localPath(done.externalPath))).toBe(true);
    await until(
      async () => ((await api.get(`/jobs/${jobId}`)).body.status === 'RUNNING' ? true : undefined),
      15_000,
      'the job RUNNING',
    );
  }, 60_000);

  it('R67 a savepoint answered completed without its location (the spec requires none) is found in Flink’s history, not taken twice', async () => {
    const jobId = await managedJob();
    flink.reshapeAnswers('getSavepointStatus', (body) =>
      (body as { status: { id: string } }).status.id === 'COMPLETED'
        ? { status: { id: 'COMPLETED' }, operation: {} }
        : body,
    );
    try {
      const since = Date.now();
      const triggered = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
      expect(triggered.status).toBe(202);
      const done = await snapshotWhen(jobId, triggered.body.snapshotId, 'COMPLETED', 20_000);
      expect(done.externalPath).toMatch(/savepoint-/);
      expect(existsSync(localPath(done.externalPath))).toBe(true);
      const triggers = flink.requestsFor(jobId, since).filter((r) => r.operationId === 'triggerSavepoint');
      expect(triggers).toHaveLength(1);
    } finally {
      flink.reshapeAnswers('getSavepointStatus', undefined);
    }
  }, 60_000);

  it('R67 a savepoint Flink refuses to take (a 4xx to the trigger) fails at once with Flink’s answer, not sent again', async () => {
    const jobId = await managedJob();
    const refusal = 'Request did not match expected format SavepointTriggerRequestBody.';
    flink.refuseNext('triggerSavepoint', 1, 400, refusal);
    const since = Date.now();
    const triggered = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    expect(triggered.status).toBe(202);
    const failed = await snapshotWhen(jobId, triggered.body.snapshotId, 'FAILED', 15_000);
    expect(failed.failureMessage).toContain(refusal);
    await sleep(1_500); // a retry would have been sent by now (the first backoff is 1 s)
    const triggers = flink.requestsFor(jobId, since).filter((r) => r.operationId === 'triggerSavepoint');
    expect(triggers).toHaveLength(1);
    const next = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'SAVEPOINT' });
    await snapshotWhen(jobId, next.body.snapshotId, 'COMPLETED', 15_000);
  }, 60_000);

  it('R67 a periodic savepoint whose trigger failed during an outage is taken as soon as the cluster answers again, not after BullMQ’s backoff, and once per slot', async () => {
    const other = new FlinkTestServer({ savepointDelayMs: 50 });
    await other.start();
    const queue = new Queue('flink', {
      connection: { url: 'redis://127.0.0.1:6379' },
      prefix: await namespaceOf(`sqlite:${join(dir, 'events.db')}`, prefix),
    });
    try {
      expect((await api.put('/clusters/sp-outage', { restUrl: other.url })).status).toBe(201);
      const jobId = newJobId();
      other.addJob(jobId, {
        checkpointDir: join(root, 'checkpoints'),
        savepointDir: join(root, 'savepoints'),
      });
      const registered = await api.put(`/jobs/${jobId}`, {
        source: { type: 'flink', cluster: 'sp-outage' },
        storage: { checkpointDir: join(root, 'checkpoints'), savepointDir: join(root, 'savepoints') },
      });
      expect(registered.status).toBe(201);
      const clusterIs = (state: string) =>
        until(
          async () => ((await api.get('/clusters/sp-outage')).body.state === state ? Date.now() : undefined),
          30_000,
          `sp-outage ${state}`,
        );
      await other.outage(true);
      await clusterIs('UNREACHABLE');
      expect((await api.put(`/jobs/${jobId}/savepoint-schedule`, { every: 'PT2S' })).status).toBeLessThan(
        300,
      );
      const pending = await until(
        async () =>
          (await snapshots(jobId)).find(
            (s) => s.kind === 'SAVEPOINT' && s.triggerType === 'PERIODIC' && s.status === 'PENDING',
          ),
        15_000,
        'a periodic savepoint pending',
      );
      // Five failed attempts: BullMQ's next one is 16 s after the fifth (exponential, from 1 s), longer than
      // the circuit's cool-down (10 s) that may still hold the calls back once Flink is back.
      const failedFiveTimes = await until(
        async () => {
          const job = await queue.getJob(`flink-savepoint-${jobId}-${pending.snapshotId}`);
          return job && job.attemptsMade >= 5 && (await job.isDelayed()) ? job : undefined;
        },
        40_000,
        'five failed attempts',
      );
      const backoffEnds = failedFiveTimes.processedOn! + 16_000;
      await other.outage(false);
      const answered = await clusterIs('REACHABLE');
      const taken = await snapshotWhen(jobId, pending.snapshotId, 'COMPLETED', 30_000);
      const completedAt = Date.now();
      // Taken once the cluster answered, not when BullMQ's backoff would have run the job again.
      expect({ beforeBackoffEnds: completedAt < backoffEnds - 1_000 }).toEqual({ beforeBackoffEnds: true });
      expect(completedAt).toBeGreaterThanOrEqual(answered);
      expect(taken.triggerType).toBe('PERIODIC');
      // One Flink savepoint per snapcat savepoint, each slot's once.
      await until(
        async () =>
          (await snapshots(jobId)).filter((s) => s.kind === 'SAVEPOINT' && s.status === 'COMPLETED').length >=
          2
            ? true
            : undefined,
        15_000,
        'a later slot taken too',
      );
      await api.delete(`/jobs/${jobId}/savepoint-schedule`);
      const savepoints = () => snapshots(jobId).then((all) => all.filter((s) => s.kind === 'SAVEPOINT'));
      await until(
        async () =>
          (await savepoints()).every((s) => s.status !== 'PENDING') &&
          other.job(jobId).savepoints.size >= (await savepoints()).length
            ? true
            : undefined,
        15_000,
        'every savepoint settled',
      );
      expect(other.job(jobId).savepoints.size).toBe((await savepoints()).length);
      expect(other.violations).toEqual([]);
    } finally {
      await queue.close();
      await other.stop();
    }
  }, 120_000);

  it('item 6: an unreachable cluster is recorded once and shown in /readyz and GraphQL, never delays another cluster’s jobs, and is recorded back', async () => {
    const logsFrom = service.logs.length; // an earlier test's outage is its own
    const other = new FlinkTestServer();
    await other.start();
    try {
      expect((await api.put('/clusters/other', { restUrl: other.url })).status).toBe(201);
      const elsewhere = newJobId();
      other.addJob(elsewhere, { checkpointDir: join(root, 'checkpoints'), checkpointIntervalMs: 200 });
      await api.put(`/jobs/${elsewhere}`, {
        source: { type: 'flink', cluster: 'other' },
        storage: { checkpointDir: join(root, 'checkpoints'), savepointDir: join(root, 'savepoints') },
      });
      const jobId = await managedJob(200);
      const mirroredOf = async (id: string) =>
        (await snapshots(id)).filter((s) => s.flinkCheckpointId !== null).length;
      await until(async () => ((await mirroredOf(jobId)) > 0 ? true : undefined), 10_000, 'first mirror');
      await flink.outage(true);
      const down = await until(
        async () => {
          const cluster = (await api.get('/clusters/local')).body;
          return cluster.state === 'UNREACHABLE' ? cluster : undefined;
        },
        20_000,
        'local recorded unreachable',
      );
      expect(down.lastError).toMatch(/fail/);
      const ready = (await fetch(`${service.url}/readyz`)).status;
      expect(ready).toBe(200); // a Flink cluster down never makes snapcat unready
      const readyz = (await (await fetch(`${service.url}/readyz`)).json()) as {
        flinkClusters: { name: string; state: string }[];
      };
      expect(readyz.flinkClusters).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: 'local', state: 'UNREACHABLE' })]),
      );
      // The other cluster's job goes on being mirrored meanwhile.
      const before = await mirroredOf(elsewhere);
      await until(
        async () => ((await mirroredOf(elsewhere)) > before + 3 ? true : undefined),
        10_000,
        'other mirrored',
      );
      const graphql = await fetch(`${service.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ cluster(name: "local") { state stateSince lastError } }' }),
      });
      expect(((await graphql.json()) as { data: { cluster: { state: string } } }).data.cluster.state).toBe(
        'UNREACHABLE',
      );
      // While the circuit is open the polls send nothing and log nothing: the outage is said once.
      const openCircuitLines = service.logs
        .slice(logsFrom)
        .filter((line) => line.includes('flink job failed') && line.includes('the circuit is open'));
      expect(openCircuitLines).toEqual([]);
      await flink.outage(false);
      await until(
        async () => ((await api.get('/clusters/local')).body.state === 'REACHABLE' ? true : undefined),
        30_000,
        'local recorded back',
      );
      const after = await mirroredOf(jobId);
      await until(
        async () => ((await mirroredOf(jobId)) > after ? true : undefined),
        10_000,
        'local mirrored again',
      );
    } finally {
      await other.stop();
    }
  }, 90_000);
});
