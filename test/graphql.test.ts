import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSchema } from 'graphql';
import { REPO_ROOT, client, startService, testPrefix, type RunningService } from './support/service';
import { deleteKeys } from './support/redis';
import IORedis from 'ioredis';
import { ReadModelKeys } from '@snapcat/read-model';

const JOB = '9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a';
const OTHER_JOBS = ['9b9b9b9b9b9b9b9b9b9b9b9b9b9b9b9b', '9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Gql {
  data?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

describe('GraphQL catalog over HTTP (service as a child process, real Redis)', () => {
  let dir: string;
  let service: RunningService;
  let api: ReturnType<typeof client>;
  const prefix = testPrefix('graphql');
  const instants: number[] = [];
  const gql = async (query: string, variables: object = {}): Promise<Gql> => {
    const res = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as Gql;
  };

  /** The key space of the service's read model: under the test's prefix and its event store's namespace. */
  const readModelSpace = async (redis: IORedis) => {
    let cursor = '0';
    let current: string | undefined;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*:rm:current`, 'COUNT', 1000);
      [cursor, current] = [next, current ?? keys[0]];
    } while (cursor !== '0' && current === undefined);
    const version = Number(await redis.get(current!));
    return new ReadModelKeys(current!.slice(0, -':rm:current'.length)).space(version);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-graphql-'));
    service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_WORKERS: 'off',
    });
    api = client(service.url);
    await api.put(`/jobs/${JOB}`, { name: 'orders', tasks: ['a'], checkpointing: { numRetained: 50 } });
    for (const id of OTHER_JOBS) await api.put(`/jobs/${id}`, { tasks: ['a'] });
    await api.post(`/jobs/${OTHER_JOBS[0]}/status`, { status: 'FINISHED' });
    // A scripted history: 25 snapshots, every 4th a savepoint; three instants remembered along the way.
    for (let i = 1; i <= 25; i += 1) {
      await api.post(`/jobs/${JOB}/snapshots`, { kind: i % 4 === 0 ? 'SAVEPOINT' : 'CHECKPOINT' });
      await api.post(`/jobs/${JOB}/snapshots/${i}/acks`, { taskId: 'a', stateSize: i });
      if (i === 5 || i === 15) {
        await sleep(5);
        instants.push(Date.now());
        await sleep(5);
      }
    }
    await api.post(`/jobs/${JOB}/snapshots/3/persist`);
    await api.post(`/jobs/${JOB}/snapshots/2/discard`);
    await sleep(5);
    instants.push(Date.now());
    await sleep(5);
    await api.post(`/jobs/${JOB}/snapshots/1/discard`);
    // the read model catches up
    for (let i = 0; i < 100; i += 1) {
      const r = await gql(`{ snapshot(jobId: "${JOB}", id: 1) { status } }`);
      if (r.data?.snapshot?.status === 'DISCARDING') break;
      await sleep(50);
    }
  }, 60_000);
  afterAll(async () => {
    await service.stop('SIGKILL');
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('job: status, configuration, counts, latest snapshots and the restore point', async () => {
    const r = await gql(`{ job(id: "${JOB}") {
      id name status tasks checkpointing { numRetained retention persistOnFailure } storage { checkpointDir }
      counts { total inProgress completed failed discarded }
      latestCompletedCheckpoint { id kind } latestSavepoint { id kind persisted }
      restorePoint { reason snapshot { id } } } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data!.job).toMatchObject({
      id: JOB,
      name: 'orders',
      status: 'RUNNING',
      tasks: ['a'],
      checkpointing: { numRetained: 50, retention: 'NEVER_RETAIN_AFTER_TERMINATION', persistOnFailure: true },
      counts: { total: 25, inProgress: 0, completed: 25, failed: 0, discarded: 2 },
      latestCompletedCheckpoint: { id: 25, kind: 'CHECKPOINT' },
      latestSavepoint: { id: 24, kind: 'SAVEPOINT' },
      restorePoint: { snapshot: { id: 25 } },
    });
    expect((await gql(`{ job(id: "${'f'.repeat(32)}") { id } }`)).data!.job).toBeNull();
  });

  it('jobs: filtered by status, paged without gaps or repeats', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const r: Gql = await gql(
        `query($after: String) { jobs(first: 2, after: $after) { edges { node { id } cursor } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      seen.push(...r.data!.jobs.edges.map((e: { node: { id: string } }) => e.node.id));
      after = r.data!.jobs.pageInfo.hasNextPage ? r.data!.jobs.pageInfo.endCursor : null;
    } while (after);
    expect(seen.filter((id) => [JOB, ...OTHER_JOBS].includes(id)).sort()).toEqual(
      [JOB, ...OTHER_JOBS].sort(),
    );
    expect(new Set(seen).size).toBe(seen.length);
    const finished = await gql(`{ jobs(status: FINISHED, first: 50) { edges { node { id status } } } }`);
    expect(finished.data!.jobs.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(
      OTHER_JOBS[0],
    );
    expect(
      finished.data!.jobs.edges.every((e: { node: { status: string } }) => e.node.status === 'FINISHED'),
    ).toBe(true);
  });

  it('snapshots: newest first, Relay pagination across pages without gaps or repeats, and filters', async () => {
    const ids: number[] = [];
    let after: string | null = null;
    do {
      const r: Gql = await gql(
        `query($after: String) { snapshots(jobId: "${JOB}", first: 7, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      ids.push(...r.data!.snapshots.edges.map((e: { node: { id: number } }) => e.node.id));
      after = r.data!.snapshots.pageInfo.hasNextPage ? r.data!.snapshots.pageInfo.endCursor : null;
    } while (after);
    expect(ids).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
    const savepoints = await gql(
      `{ snapshots(jobId: "${JOB}", kinds: [SAVEPOINT], first: 50) { edges { node { id kind triggerType properties { forced } } } } }`,
    );
    expect(savepoints.data!.snapshots.edges.map((e: { node: { id: number } }) => e.node.id)).toEqual([
      24, 20, 16, 12, 8, 4,
    ]);
    const persisted = await gql(
      `{ snapshots(jobId: "${JOB}", persisted: true) { edges { node { id externalPath restorePath savepointPath } } } }`,
    );
    expect(persisted.data!.snapshots.edges).toMatchObject([{ node: { id: 3 } }]);
    // R57: a persisted checkpoint restores from its own chk-3; its savepointPath holds snapcat's manifest only.
    const [{ node: three }] = persisted.data!.snapshots.edges;
    expect(three.externalPath).toMatch(new RegExp(`/${JOB}/chk-3$`));
    expect(three.restorePath).toBe(three.externalPath);
    expect(three.savepointPath).toMatch(new RegExp(`/savepoint-${JOB.slice(0, 6)}-[0-9a-f]{12}$`));
    const discarding = await gql(
      `{ snapshots(jobId: "${JOB}", statuses: [DISCARDING], triggerTypes: [MANUAL]) { edges { node { id discard { cause state } } } } }`,
    );
    expect(discarding.data!.snapshots.edges.map((e: { node: { id: number } }) => e.node.id)).toEqual([2, 1]);
    const one = await gql(
      `{ snapshot(jobId: "${JOB}", id: 7) { id kind status stateSize acknowledgedTasks totalTasks externalPath triggeredAt completedAt } }`,
    );
    expect(one.data!.snapshot).toMatchObject({
      id: 7,
      kind: 'CHECKPOINT',
      status: 'COMPLETED',
      stateSize: 7,
      acknowledgedTasks: 1,
      totalTasks: 1,
    });
    const bad = await gql(`{ snapshots(jobId: "${JOB}", after: "bm9wZQ") { edges { cursor } } }`);
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
  });

  it('R58 Snapshot.checkpointType and checkpointedSize; views stored before them answer what a replay gives', async () => {
    const r = await gql(
      `{ a: snapshot(jobId: "${JOB}", id: 7) { kind checkpointType stateSize checkpointedSize }
         b: snapshot(jobId: "${JOB}", id: 8) { kind checkpointType formatType checkpointedSize } }`,
    );
    expect(r.errors).toBeUndefined();
    expect(r.data!.a).toEqual({
      kind: 'CHECKPOINT',
      checkpointType: 'INCREMENTAL',
      stateSize: 7,
      checkpointedSize: 7,
    });
    expect(r.data!.b).toEqual({
      kind: 'SAVEPOINT',
      checkpointType: 'FULL',
      formatType: 'CANONICAL',
      checkpointedSize: 8,
    });
    // Rewrite both stored views as the read model wrote them before R58: without the two fields.
    const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    try {
      const space = await readModelSpace(redis);
      for (const id of [7, 8]) {
        const view = JSON.parse((await redis.get(space.snapshot(JOB, id)))!);
        delete view.checkpointType;
        delete view.checkpointedSize;
        delete view.restorePath; // and before R57
        await redis.set(space.snapshot(JOB, id), JSON.stringify(view));
      }
    } finally {
      redis.disconnect();
    }
    const old = await gql(
      `{ a: snapshot(jobId: "${JOB}", id: 7) { checkpointType checkpointedSize restorePath externalPath }
         b: snapshot(jobId: "${JOB}", id: 8) { checkpointType checkpointedSize } }`,
    );
    expect(old.errors).toBeUndefined();
    // A checkpoint of an old log: unknown; a savepoint: FULL; no task reported an uploaded size; a completed
    // checkpoint restores from its own chk-<id>.
    expect(old.data!.a).toEqual({
      checkpointType: null,
      checkpointedSize: 7,
      restorePath: old.data!.a.externalPath,
      externalPath: expect.stringMatching(/\/chk-7$/),
    });
    expect(old.data!.b).toEqual({ checkpointType: 'FULL', checkpointedSize: 8 });
    const full = await gql(
      `mutation { triggerSnapshot(jobId: "${OTHER_JOBS[1]}", kind: CHECKPOINT, checkpointType: FULL) { id checkpointType } }`,
    );
    expect(full.errors).toBeUndefined();
    expect(full.data!.triggerSnapshot).toEqual({ id: 1, checkpointType: 'FULL' });
    const refused = await gql(
      `mutation { triggerSnapshot(jobId: "${OTHER_JOBS[1]}", kind: SAVEPOINT, checkpointType: INCREMENTAL) { id } }`,
    );
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      field: 'checkpointType',
      rule: 'savepoint-is-full',
    });
  });

  it('R61 Job and Snapshot versions; a job’s snapshots filtered by jobVersion and flinkVersion (live and as of an instant); triggerSnapshot takes them; views stored before them read as null', async () => {
    const job = '9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e';
    const config = { name: 'payments', tasks: ['a'], checkpointing: { numRetained: 10, maxConcurrent: 5 } };
    await api.put(`/jobs/${job}`, { ...config, jobVersion: '1.4.0', flinkVersion: '1.18.1' });
    for (const id of [1, 2]) {
      await api.post(`/jobs/${job}/snapshots`, { kind: 'CHECKPOINT' });
      await api.post(`/jobs/${job}/snapshots/${id}/acks`, { taskId: 'a' });
    }
    const rc = await gql(
      `mutation { triggerSnapshot(jobId: "${job}", kind: SAVEPOINT, jobVersion: "1.5.0-rc1") { id jobVersion flinkVersion } }`,
    );
    expect(rc.errors).toBeUndefined();
    expect(rc.data!.triggerSnapshot).toEqual({ id: 3, jobVersion: '1.5.0-rc1', flinkVersion: '1.18.1' });
    await api.post(`/jobs/${job}/snapshots/3/acks`, { taskId: 'a' });
    await api.put(`/jobs/${job}`, { ...config, jobVersion: '1.5.0', flinkVersion: '1.19.1' });
    await api.post(`/jobs/${job}/snapshots`, { kind: 'CHECKPOINT' });
    await api.post(`/jobs/${job}/snapshots/4/acks`, { taskId: 'a' });
    // REST answers before the read model shows it: wait for the last ack.
    for (let i = 0; i < 100; i += 1) {
      const r = await gql(`{ snapshot(jobId: "${job}", id: 4) { status } }`);
      if (r.data?.snapshot?.status === 'COMPLETED') break;
      await sleep(50);
    }
    const ids = (connection: { edges: { node: { id: number } }[] }) => connection.edges.map((e) => e.node.id);
    const r = await gql(`{ job(id: "${job}") {
        jobVersion flinkVersion
        all: snapshots { edges { node { id jobVersion flinkVersion } } }
        v140: snapshots(jobVersion: "1.4.0") { edges { node { id } } }
        v150: snapshots(jobVersion: "1.5.0") { edges { node { id } } }
        f1181: snapshots(flinkVersion: "1.18.1") { edges { node { id } } }
        both: snapshots(jobVersion: "1.4.0", flinkVersion: "1.18.1", first: 1) { edges { node { id } } pageInfo { hasNextPage } }
        none: snapshots(jobVersion: "1.4") { edges { node { id } } }
        savepoints: snapshots(kinds: [SAVEPOINT], flinkVersion: "1.18.1") { edges { node { id } } } } }`);
    expect(r.errors).toBeUndefined();
    const j = r.data!.job;
    expect(j).toMatchObject({ jobVersion: '1.5.0', flinkVersion: '1.19.1' });
    expect(j.all.edges.map((e: { node: object }) => e.node)).toEqual([
      { id: 4, jobVersion: '1.5.0', flinkVersion: '1.19.1' },
      { id: 3, jobVersion: '1.5.0-rc1', flinkVersion: '1.18.1' },
      { id: 2, jobVersion: '1.4.0', flinkVersion: '1.18.1' },
      { id: 1, jobVersion: '1.4.0', flinkVersion: '1.18.1' },
    ]);
    expect([ids(j.v140), ids(j.v150), ids(j.f1181), ids(j.none), ids(j.savepoints)]).toEqual([
      [2, 1],
      [4],
      [3, 2, 1],
      [],
      [3],
    ]);
    expect(j.both).toEqual({ edges: [{ node: { id: 2 } }], pageInfo: { hasNextPage: true } });
    const top = await gql(
      `{ snapshots(jobId: "${job}", jobVersion: "1.5.0-rc1") { edges { node { id } } } }`,
    );
    expect(ids(top.data!.snapshots)).toEqual([3]);
    // Folded from the log (catalogAsOf): the same filter.
    const asOf = await gql(`{ catalogAsOf(jobId: "${job}", at: "${new Date().toISOString()}") {
        job { jobVersion snapshots(jobVersion: "1.4.0") { edges { node { id jobVersion } } } } } }`);
    expect(asOf.errors).toBeUndefined();
    expect(asOf.data!.catalogAsOf.job).toEqual({
      jobVersion: '1.5.0',
      snapshots: {
        edges: [{ node: { id: 2, jobVersion: '1.4.0' } }, { node: { id: 1, jobVersion: '1.4.0' } }],
      },
    });

    // Views projected before versions: unknown, and matched by no version filter.
    const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    try {
      const space = await readModelSpace(redis);
      const view = JSON.parse((await redis.get(space.snapshot(job, 1)))!);
      delete view.jobVersion;
      delete view.flinkVersion;
      await redis.set(space.snapshot(job, 1), JSON.stringify(view));
      const summary = JSON.parse((await redis.get(space.job(job)))!);
      delete summary.jobVersion;
      delete summary.flinkVersion;
      await redis.set(space.job(job), JSON.stringify(summary));
    } finally {
      redis.disconnect();
    }
    const old = await gql(`{ job(id: "${job}") { jobVersion flinkVersion
        snapshots(jobVersion: "1.4.0") { edges { node { id } } } }
        snapshot(jobId: "${job}", id: 1) { jobVersion flinkVersion } }`);
    expect(old.errors).toBeUndefined();
    expect(old.data!.job).toEqual({
      jobVersion: null,
      flinkVersion: null,
      snapshots: { edges: [{ node: { id: 2 } }] },
    });
    expect(old.data!.snapshot).toEqual({ jobVersion: null, flinkVersion: null });

    const refused = await gql(
      `mutation { triggerSnapshot(jobId: "${job}", kind: CHECKPOINT, flinkVersion: "") { id } }`,
    );
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'flinkVersion' });
  });

  it('catalog: the restorable snapshots, newest first', async () => {
    const r = await gql(`{ catalog(jobId: "${JOB}", first: 100) { edges { node { id status } } } }`);
    const ids = r.data!.catalog.edges.map((e: { node: { id: number } }) => e.node.id);
    expect(ids).toEqual(Array.from({ length: 23 }, (_, i) => 25 - i));
  });

  it('history: the events themselves with revision and position, filtered and paged', async () => {
    const all: { revision: number; type: string }[] = [];
    let after: string | null = null;
    do {
      const r: Gql = await gql(
        `query($after: String) { history(jobId: "${JOB}", first: 10, after: $after) { edges { node { revision type position eventId occurredAt } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      all.push(...r.data!.history.edges.map((e: { node: { revision: number; type: string } }) => e.node));
      after = r.data!.history.pageInfo.hasNextPage ? r.data!.history.pageInfo.endCursor : null;
    } while (after);
    expect(all.map((e) => e.revision)).toEqual(Array.from({ length: all.length }, (_, i) => i));
    const events = (await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events as unknown[];
    expect(all).toHaveLength(events.length);
    const ofThree = await gql(
      `{ history(jobId: "${JOB}", snapshotId: 3) { edges { node { type snapshotId } } } }`,
    );
    expect(ofThree.data!.history.edges.map((e: { node: { type: string } }) => e.node.type)).toEqual([
      'SnapshotTriggered',
      'TaskAcknowledged',
      'SnapshotCompleted',
      'SnapshotPersisted',
    ]);
    const typed = await gql(
      `{ history(jobId: "${JOB}", types: ["SnapshotDiscardRequested"]) { edges { node { snapshotId } } } }`,
    );
    expect(typed.data!.history.edges.map((e: { node: { snapshotId: number } }) => e.node.snapshotId)).toEqual(
      [2, 1],
    );
    const window = await gql(
      `query($from: DateTime, $to: DateTime) { history(jobId: "${JOB}", from: $from, to: $to, types: ["SnapshotCompleted"], first: 100) { edges { node { snapshotId } } } }`,
      {
        from: new Date(instants[0]!).toISOString(),
        to: new Date(instants[1]!).toISOString(),
      },
    );
    expect(
      window.data!.history.edges.map((e: { node: { snapshotId: number } }) => e.node.snapshotId),
    ).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  });

  it('catalogAsOf: the job and its catalog at three instants of the scripted history', async () => {
    const at = async (instant: number) =>
      (
        await gql(
          `query($at: DateTime!) { catalogAsOf(jobId: "${JOB}", at: $at) { events job { counts { total } latestSavepoint { id } } catalog { id persisted } } }`,
          {
            at: new Date(instant).toISOString(),
          },
        )
      ).data!.catalogAsOf;
    const first = await at(instants[0]!);
    expect(first.catalog.map((s: { id: number }) => s.id)).toEqual([5, 4, 3, 2, 1]);
    expect(first.job).toMatchObject({ counts: { total: 5 }, latestSavepoint: { id: 4 } });
    const second = await at(instants[1]!);
    expect(second.catalog.map((s: { id: number }) => s.id)).toEqual(
      Array.from({ length: 15 }, (_, i) => 15 - i),
    );
    const third = await at(instants[2]!);
    expect(third.catalog.map((s: { id: number }) => s.id)).toEqual([
      ...Array.from({ length: 23 }, (_, i) => 25 - i),
      1,
    ]);
    expect(third.catalog.find((s: { id: number }) => s.id === 3).persisted).toBe(true);
    const before = await gql(`{ catalogAsOf(jobId: "${JOB}", at: "2000-01-01T00:00:00Z") { events } }`);
    expect(before.data!.catalogAsOf).toBeNull();
  });

  it('mutations go through the command handlers and answer after the read model caught up', async () => {
    const t = await gql(
      `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT, triggerId: "gql-1") { id kind status triggerId } }`,
    );
    expect(t.data!.triggerSnapshot).toEqual({
      id: 26,
      kind: 'SAVEPOINT',
      status: 'PENDING',
      triggerId: 'gql-1',
    });
    await api.post(`/jobs/${JOB}/snapshots/26/acks`, { taskId: 'a' });
    const p = await gql(
      `mutation { persistSnapshot(jobId: "${JOB}", snapshotId: 25) { id persisted externalPath restorePath savepointPath } }`,
    );
    expect(p.data!.persistSnapshot).toMatchObject({ id: 25, persisted: true });
    expect(p.data!.persistSnapshot.restorePath).toBe(p.data!.persistSnapshot.externalPath);
    const d = await gql(
      `mutation { discardSnapshot(jobId: "${JOB}", snapshotId: 10, reason: "space") { id status discard { cause reason } } }`,
    );
    expect(d.data!.discardSnapshot).toEqual({
      id: 10,
      status: 'DISCARDING',
      discard: { cause: 'USER', reason: 'space' },
    });
    const refused = await gql(`mutation { discardSnapshot(jobId: "${JOB}", snapshotId: 26) { id } }`);
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      code: 'CONFLICT',
      rule: 'latest-completed-retained',
    });
    const unknown = await gql(`mutation { persistSnapshot(jobId: "${JOB}", snapshotId: 999) { id } }`);
    expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'snapshotId' });
    const badJob = await gql(`mutation { setJobStatus(jobId: "nope", status: FAILED) { id } }`);
    expect(badJob.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'jobId' });
    const s = await gql(
      `mutation { setJobStatus(jobId: "${OTHER_JOBS[1]}", status: SUSPENDED) { id status } }`,
    );
    expect(s.data!.setJobStatus).toEqual({ id: OTHER_JOBS[1], status: 'SUSPENDED' });
  });

  it('a subscription to an event type that does not exist is refused (BAD_USER_INPUT event-type), not silent forever', async () => {
    const res = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: `subscription { snapshotEvents(jobId: "${'9e'.repeat(16)}", types: ["SnapshotCompleted", "NoSuchType"]) { type } }`,
      }),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text(); // the stream ends: an error, then complete
    const data = text.split('\n').find((line) => line.startsWith('data:') && line.length > 6);
    const [error] = JSON.parse(data!.slice(5)).errors;
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'types', rule: 'event-type' });
    expect(error.message).toMatch(/^types: "NoSuchType" is not an event type \(one of .*SnapshotCompleted/);
  });

  it('an SSE subscription receives the events of a lifecycle driven through REST', async () => {
    const job = '9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d';
    await api.put(`/jobs/${job}`, { tasks: ['a', 'b'] });
    const controller = new AbortController();
    const res = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: `subscription { snapshotEvents(jobId: "${job}", types: ["SnapshotTriggered", "TaskAcknowledged", "SnapshotCompleted"]) { type snapshotId revision jobId } }`,
      }),
      signal: controller.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const received: { type: string; snapshotId: number | null }[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let index;
        while ((index = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, index);
          buffer = buffer.slice(index + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data:'));
          if (data && data.length > 6) received.push(JSON.parse(data.slice(5)).data.snapshotEvents);
          if (received.some((e) => e.type === 'SnapshotCompleted')) return;
        }
      }
    })().catch(() => undefined);
    await sleep(300);
    await api.post(`/jobs/${job}/snapshots`, { kind: 'CHECKPOINT' });
    await api.post(`/jobs/${job}/snapshots/1/acks`, [{ taskId: 'a' }, { taskId: 'b' }]);
    await Promise.race([reading, sleep(10_000)]);
    controller.abort();
    expect(received.map((e) => e.type)).toEqual([
      'SnapshotTriggered',
      'TaskAcknowledged',
      'TaskAcknowledged',
      'SnapshotCompleted',
    ]);
    expect(received.every((e) => e.snapshotId === 1)).toBe(true);
  });

  it('savepoint schedules: set, shown on the job, refused when invalid (naming the field), removed', async () => {
    const job = OTHER_JOBS[1];
    const set = await gql(
      `mutation($s: SavepointScheduleInput!) { setSavepointSchedule(jobId: "${job}", schedule: $s) { every cron nextFireAt } }`,
      { s: { every: 'PT1H', retention: { maxCount: 3 } } },
    );
    expect(set.errors).toBeUndefined();
    expect(set.data!.setSavepointSchedule).toMatchObject({ every: 'PT1H', cron: null });
    expect(Date.parse(set.data!.setSavepointSchedule.nextFireAt)).toBeGreaterThan(Date.now());
    const shown = await gql(`{ job(id: "${job}") { schedule { every retention { maxCount } } } }`);
    expect(shown.data!.job.schedule).toEqual({ every: 'PT1H', retention: { maxCount: 3 } });
    const both = await gql(
      `mutation { setSavepointSchedule(jobId: "${job}", schedule: { every: "PT1H", cron: "0 * * * *" }) { every } }`,
    );
    expect(both.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'every' });
    const removed = await gql(`mutation { removeSavepointSchedule(jobId: "${job}") }`);
    expect(removed.data).toEqual({ removeSavepointSchedule: true });
    const again = await gql(`mutation { removeSavepointSchedule(jobId: "${job}") }`);
    expect(again.data).toEqual({ removeSavepointSchedule: false });
    expect((await gql(`{ job(id: "${job}") { schedule { every } } }`)).data!.job.schedule).toBeNull();
  });

  it('stateHandles: the handles each task reported, shared ones apart; none once a discard was requested', async () => {
    const job = '9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d';
    await api.put(`/jobs/${job}`, { tasks: ['a'] });
    const { checkpointDir } = (await api.get(`/jobs/${job}`)).body.storage as { checkpointDir: string };
    const triggered = await api.post(`/jobs/${job}/snapshots`, { kind: 'CHECKPOINT' });
    const id = triggered.body.snapshotId as number;
    const handles = [
      { path: `${checkpointDir}/${job}/chk-${id}/a-private`, sizeBytes: 10 },
      { path: `${checkpointDir}/${job}/shared/a-sst`, sizeBytes: 20 },
      { path: `${checkpointDir}/${job}/chk-${id}/a-marked`, sizeBytes: 30, shared: true },
    ];
    const ack = await api.post(`/jobs/${job}/snapshots/${id}/acks`, { taskId: 'a', stateHandles: handles });
    expect([ack.status, ack.body.snapshotStatus]).toEqual([200, 'COMPLETED']);
    const query = `{ snapshot(jobId: "${job}", id: ${id}) { status stateHandles { taskId path sizeBytes shared } } }`;
    let answer = await gql(query);
    for (let i = 0; i < 100 && answer.data?.snapshot?.status !== 'COMPLETED'; i += 1) {
      await sleep(20);
      answer = await gql(query);
    }
    expect(answer.data!.snapshot.stateHandles).toEqual([
      { taskId: 'a', path: handles[0]!.path, sizeBytes: 10, shared: false },
      { taskId: 'a', path: handles[1]!.path, sizeBytes: 20, shared: true },
      { taskId: 'a', path: handles[2]!.path, sizeBytes: 30, shared: true },
    ]);
    await api.post(`/jobs/${job}/status`, { status: 'CANCELED' });
    await api.post(`/jobs/${job}/snapshots/${id}/discard`, { force: true });
    expect((await gql(query)).data!.snapshot.stateHandles).toEqual([]);
  });

  it('every mutation refuses an unknown argument, naming it, and writes nothing (generated from the schema)', async () => {
    const schema = buildSchema(readFileSync(join(REPO_ROOT, 'schema', 'catalog.graphql'), 'utf8'));
    const mutations = Object.keys(schema.getMutationType()!.getFields());
    expect(mutations.length).toBeGreaterThan(0);
    const before = (await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events.length;
    for (const name of mutations) {
      const res = await gql(`mutation { ${name}(unexpected: 1) { __typename } }`);
      expect({ name, messages: (res.errors ?? []).map((e) => e.message) }).toEqual({
        name,
        messages: expect.arrayContaining([expect.stringContaining('Unknown argument "unexpected"')]),
      });
    }
    expect((await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events.length).toBe(before);
  });
});
