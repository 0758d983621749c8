import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import IORedis from 'ioredis';
import request from 'supertest';
import { Projector, rebuildReadModel, ReadModel, ReadModelKeys } from '@snapcat/read-model';
import { newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import { deleteKeys } from '../../../test/support/redis';
import { apiFixture, BASE, expectProblem } from './fixture';

const A = 'a0'.repeat(16);
const B = 'b0'.repeat(16);
const OTHER_TEAM_JOB = 'c0'.repeat(16);
const TOKEN = { admin: newToken(), team: newToken() };
const TOKENS = parseTokenList(
  [
    tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, TOKEN.admin),
    tokenLine({ name: 'team', scopes: ['operator'], namespaces: ['team'] }, TOKEN.team),
  ].join('\n'),
);
const as = (who: keyof typeof TOKEN) => ({ authorization: `Bearer ${TOKEN[who]}` });

/** Jobs A and B in `namespace`, and another team's job. */
async function registerJobs(http: ReturnType<typeof request>, namespace: string, config: object = {}) {
  for (const [jobId, ns] of [
    [A, namespace],
    [B, namespace],
    [OTHER_TEAM_JOB, 'other'],
  ] as const) {
    await http
      .put(`${BASE}/jobs/${jobId}`)
      .set(as('admin'))
      .send({ namespace: ns, tasks: ['t'], ...config })
      .expect(201);
  }
}

/** A snapshot of the job (A unless named), triggered and acknowledged by its one task: completed. */
async function complete(http: ReturnType<typeof request>, kind: 'CHECKPOINT' | 'SAVEPOINT', jobId = A) {
  const triggered = await http
    .post(`${BASE}/jobs/${jobId}/snapshots`)
    .set(as('admin'))
    .send({ kind })
    .expect(202);
  const { snapshotId } = triggered.body as { snapshotId: number };
  await http
    .post(`${BASE}/jobs/${jobId}/snapshots/${snapshotId}/acks`)
    .set(as('admin'))
    .send({ taskId: 't' })
    .expect(200);
  return snapshotId;
}

/** No projector or reader runs beside these fixtures: a rebuild deletes the old key space at once. */
const NO_READER = 0;

/** The job's events as the REST history gives them, each its type and data in one object. */
async function historyOf(http: ReturnType<typeof request>, jobId: string) {
  const res = await http.get(`${BASE}/jobs/${jobId}/events`).set(as('admin')).expect(200);
  return (res.body.events as { type: string; data: Record<string, unknown> }[]).map((e) => ({
    type: e.type,
    ...e.data,
  }));
}

/** Decision 0032 at the API: the hold a restore places, and only that one, goes with a refused restore. */
describe('holds placed by restores from another job’s checkpoint', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let chk1: string;
  beforeEach(async () => {
    fx = apiFixture({ tokens: TOKENS });
    http = request(fx.app);
    await registerJobs(http, 'default', { checkpointing: { numRetained: 5 } });
    await complete(http, 'CHECKPOINT');
    // A newer one, so that chk-1 is not the running job's latest (which a discard needs `force` for).
    await http.post(`${BASE}/jobs/${A}/snapshots`).set(as('admin')).send({ kind: 'CHECKPOINT' }).expect(202);
    await http.post(`${BASE}/jobs/${A}/snapshots/2/acks`).set(as('admin')).send({ taskId: 't' }).expect(200);
    chk1 = join(fx.defaults.checkpointDir, A, 'chk-1');
    mkdirSync(chk1, { recursive: true });
    writeFileSync(join(chk1, '_metadata'), 'x');
  });
  afterEach(() => fx.close());

  const discardA1 = () => http.post(`${BASE}/jobs/${A}/snapshots/1/discard`).set(as('admin')).send({});
  const restore = (jobId: string, who: keyof typeof TOKEN = 'admin') =>
    http
      .post(`${BASE}/jobs/${jobId}/restores`)
      .set(as(who))
      .send({ externalPath: chk1, claimMode: 'LEGACY' });

  it('a restore holds the checkpoint; a second, refused, restore leaves the first hold in place', async () => {
    expect((await restore(B)).status).toBe(201);
    expectProblem(await discardA1(), 409, 'path.snapshotId', 'held-by-restore');
    await http.post(`${BASE}/jobs/${B}/status`).set(as('admin')).send({ status: 'FAILED' }).expect(200);
    expectProblem(await restore(B), 409, undefined);
    expectProblem(await discardA1(), 409, 'path.snapshotId', 'held-by-restore');
  });

  it('R72 an acknowledgement naming a file of another job is refused until a restore from that job holds its snapshot', async () => {
    const shared = join(fx.defaults.checkpointDir, A, 'shared', 'sst-1');
    const trigger = async () =>
      (
        await http
          .post(`${BASE}/jobs/${B}/snapshots`)
          .set(as('admin'))
          .send({ kind: 'CHECKPOINT' })
          .expect(202)
      ).body.snapshotId as number;
    const ack = (snapshotId: number) =>
      http
        .post(`${BASE}/jobs/${B}/snapshots/${snapshotId}/acks`)
        .set(as('admin'))
        .send({ taskId: 't', stateHandles: [{ path: shared, sizeBytes: 1, shared: true }] });
    const first = await trigger();
    const refused = await ack(first);
    expectProblem(refused, 409, 'body.stateHandles[0].path', 'restore-recorded');
    expect(refused.body.detail).toContain(`job ${A}`);
    expect((await http.get(`${BASE}/jobs/${B}/snapshots/${first}`).set(as('admin'))).body).toMatchObject({
      status: 'PENDING',
      acknowledgedTasks: 0,
    });
    // Restored from A's checkpoint (held while B may use it): B's tasks may name A's files.
    const restored = await restore(B);
    expect([restored.status, restored.body.detail]).toEqual([201, undefined]);
    const accepted = await ack(await trigger());
    expect([accepted.status, accepted.body.result]).toEqual([200, 'SUCCESS']);
  });

  it('a refused restore holds nothing; a job the caller may not see places no hold', async () => {
    await http.post(`${BASE}/jobs/${B}/status`).set(as('admin')).send({ status: 'CANCELED' }).expect(200);
    expectProblem(await restore(B), 409, undefined);
    expect((await restore(OTHER_TEAM_JOB, 'team')).status).toBe(404);
    const res = await discardA1();
    expect([res.status, res.body.errors?.[0]?.rule]).toEqual([202, undefined]);
  });
});

/** Decision 0032: a restore from another job's snapshot named by `fromJobId` (a savepoint's path names no job). */
describe('restores from another job’s snapshot named by fromJobId', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  /** A's completed savepoint. */
  let savepoint: { snapshotId: number; externalPath: string };
  beforeEach(async () => {
    fx = apiFixture({ tokens: TOKENS });
    http = request(fx.app);
    await registerJobs(http, 'team');
    const snapshotId = await complete(http, 'SAVEPOINT');
    const got = await http.get(`${BASE}/jobs/${A}/snapshots/${snapshotId}`).set(as('admin')).expect(200);
    savepoint = { snapshotId, externalPath: got.body.externalPath };
    expect(savepoint.externalPath).toMatch(new RegExp(`/savepoint-${A.slice(0, 6)}-[0-9a-f]{12}$`));
  });
  afterEach(() => fx.close());

  const discard = () =>
    http.post(`${BASE}/jobs/${A}/snapshots/${savepoint.snapshotId}/discard`).set(as('admin')).send({});
  const restoreB = (body: object, who: keyof typeof TOKEN = 'team') =>
    http
      .post(`${BASE}/jobs/${B}/restores`)
      .set(as(who))
      .send({ claimMode: 'LEGACY', ...body });
  const eventsOf = async (jobId: string) =>
    (await http.get(`${BASE}/jobs/${jobId}/events`).set(as('admin')).expect(200)).body.events as {
      type: string;
      data: Record<string, unknown>;
    }[];

  it('by snapshotId: B restores from A’s savepoint path, A holds it (its discard is 409), and B’s restore names A', async () => {
    const res = await restoreB({ fromJobId: A, snapshotId: savepoint.snapshotId });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ restorePath: savepoint.externalPath, snapshotId: null });
    expect(res.body.nextSnapshotId).toBeGreaterThan(savepoint.snapshotId);
    expectProblem(await discard(), 409, 'path.snapshotId', 'held-by-restore');
    const restored = (await eventsOf(B)).find((e) => e.type === 'SnapshotRestored');
    expect(restored?.data).toMatchObject({ fromJobId: A, restorePath: savepoint.externalPath });
    const held = (await eventsOf(A)).find((e) => e.type === 'SnapshotHeld');
    expect(held?.data).toMatchObject({ snapshotId: savepoint.snapshotId, holderJobId: B, holderRestore: 1 });
    // The snapshot's view names the holder: why its discard is refused.
    const view = await http
      .get(`${BASE}/jobs/${A}/snapshots/${savepoint.snapshotId}`)
      .set(as('admin'))
      .expect(200);
    expect(view.body.heldBy).toEqual([B]);
  });

  it('by externalPath (its directory or its _metadata): held the same way, though the token may not name that directory otherwise', async () => {
    expectProblem(
      await restoreB({ externalPath: savepoint.externalPath }),
      403,
      'body.externalPath',
      'namespace-storage',
    );
    const res = await restoreB({ fromJobId: A, externalPath: `${savepoint.externalPath}/_metadata` });
    expect(res.status).toBe(201);
    expectProblem(await discard(), 409, 'path.snapshotId', 'held-by-restore');
  });

  it('refused, and nothing written, for a job the caller may not see, a snapshot that is not a completed one of it, or the job itself', async () => {
    const before = { a: (await eventsOf(A)).length, b: (await eventsOf(B)).length };
    expectProblem(
      await restoreB({ fromJobId: OTHER_TEAM_JOB, snapshotId: 1 }),
      404,
      'body.fromJobId',
      'job-exists',
    );
    expectProblem(
      await restoreB({ fromJobId: A, snapshotId: 99 }),
      409,
      'body.snapshotId',
      'from-job-snapshot',
    );
    expectProblem(
      await restoreB({
        fromJobId: A,
        externalPath: join(fx.defaults.savepointDir, 'savepoint-a0a0a0-000000000000'),
      }),
      409,
      'body.externalPath',
      'from-job-snapshot',
    );
    expectProblem(await restoreB({ fromJobId: B, snapshotId: 1 }), 400, 'body.fromJobId', 'another-job');
    // No hold on A, no restore of B.
    expect({ a: (await eventsOf(A)).length, b: (await eventsOf(B)).length }).toEqual(before);
  });

  it('a restore of a job that has ended, which the job’s rules refuse, writes nothing to the job it is from (no hold placed and released)', async () => {
    await http.post(`${BASE}/jobs/${B}/status`).set(as('admin')).send({ status: 'FINISHED' }).expect(200);
    const before = (await eventsOf(A)).length;
    const res = await restoreB({ fromJobId: A, snapshotId: savepoint.snapshotId });
    expectProblem(res, 409, 'path.jobId', 'terminal-status');
    expect((await eventsOf(A)).map((e) => e.type).slice(before)).toEqual([]);
  });
});

/**
 * Decision 0032: a restore from another job's savepoint by its path alone. The directory names six characters
 * of the job's id, so the jobs starting with them are found in the read model (a real Redis) and read.
 */
describe('restores from another job’s savepoint by its path alone', () => {
  const prefix = `snapcat-test-restore-path-${process.pid}-${Date.now().toString(36)}`;
  /** Shares A's first six characters, as ids chosen by people do: not the savepoint's owner. */
  const A_TWIN = `${A.slice(0, 6)}${'f'.repeat(26)}`;
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let redis: IORedis;
  let reachable: boolean;
  let savepoint: { snapshotId: number; externalPath: string };
  beforeEach(async () => {
    redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    reachable = true;
    fx = apiFixture({
      tokens: TOKENS,
      readModel: new ReadModel(redis, prefix),
      readModelAvailable: () => reachable,
    });
    http = request(fx.app);
    await registerJobs(http, 'default');
    await http
      .put(`${BASE}/jobs/${A_TWIN}`)
      .set(as('admin'))
      .send({ tasks: ['t'] })
      .expect(201);
    const snapshotId = await complete(http, 'SAVEPOINT');
    const got = await http.get(`${BASE}/jobs/${A}/snapshots/${snapshotId}`).set(as('admin')).expect(200);
    savepoint = { snapshotId, externalPath: got.body.externalPath };
    mkdirSync(savepoint.externalPath, { recursive: true });
    writeFileSync(join(savepoint.externalPath, '_metadata'), 'x');
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
  });
  afterEach(async () => {
    await fx.close();
    redis.disconnect();
    await deleteKeys(prefix);
  });

  const discard = () =>
    http.post(`${BASE}/jobs/${A}/snapshots/${savepoint.snapshotId}/discard`).set(as('admin')).send({});
  const restoreB = () =>
    http
      .post(`${BASE}/jobs/${B}/restores`)
      .set(as('admin'))
      .send({ externalPath: `${savepoint.externalPath}/_metadata`, claimMode: 'CLAIM' });
  const typesOf = (jobId: string) => historyOf(http, jobId);

  it('the owner holds it (its discard is 409) and the restore names it, not the job sharing its prefix', async () => {
    const restored = await restoreB();
    expect(restored.status).toBe(201);
    // The ids continue above the savepoint's, as after a restore naming the job.
    expect(restored.body.nextSnapshotId).toBeGreaterThan(savepoint.snapshotId);
    expectProblem(await discard(), 409, 'path.snapshotId', 'held-by-restore');
    expect((await typesOf(B)).find((e) => e.type === 'SnapshotRestored')).toMatchObject({ fromJobId: A });
    expect((await typesOf(A)).find((e) => e.type === 'SnapshotHeld')).toMatchObject({ holderJobId: B });
    expect((await typesOf(A_TWIN)).map((e) => e.type)).toEqual(['JobRegistered']);
    // The read model's view names the holder too (what GraphQL and the console show).
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    expect((await new ReadModel(redis, prefix).snapshot(A, savepoint.snapshotId))?.heldBy).toEqual([B]);
  });

  it('while Redis is unreachable the restore is a 503 and writes nothing: a restore without its hold is worse than none', async () => {
    reachable = false;
    const res = await restoreB();
    expectProblem(res, 503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body.detail).toMatch(/whose snapshot the path is.*name the owner with fromJobId/);
    expect((await typesOf(B)).map((e) => e.type)).toEqual(['JobRegistered']);
    expect((await typesOf(A)).map((e) => e.type)).not.toContain('SnapshotHeld');
  });

  /** B restored (LEGACY) from a completed checkpoint of A, which holds it; B's checkpoint triggered since. */
  const bRestoredFromACheckpoint = async (redisMeanwhile: 'reachable' | 'unreachable') => {
    const checkpoint = await complete(http, 'CHECKPOINT');
    const { body } = await http.get(`${BASE}/jobs/${A}/snapshots/${checkpoint}`).set(as('admin')).expect(200);
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    const restored = await http
      .post(`${BASE}/jobs/${B}/restores`)
      .set(as('admin'))
      .send({ externalPath: body.externalPath, claimMode: 'LEGACY' });
    expect(restored.status).toBe(201);
    reachable = redisMeanwhile === 'reachable';
    const triggered = await http
      .post(`${BASE}/jobs/${B}/snapshots`)
      .set(as('admin'))
      .send({ kind: 'CHECKPOINT' })
      .expect(202);
    if (reachable) await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    return triggered.body.snapshotId as number;
  };

  it('an acknowledgement naming files in the checkpoint area of the catalogued job it was restored from asks nobody: it works while Redis is unreachable', async () => {
    const snapshotId = await bRestoredFromACheckpoint('unreachable');
    const shared = join(fx.defaults.checkpointDir, A, 'shared', 'sst-1');
    const ack = await http
      .post(`${BASE}/jobs/${B}/snapshots/${snapshotId}/acks`)
      .set(as('admin'))
      .send({ taskId: 't', stateHandles: [{ path: shared, sizeBytes: 1, shared: true }] });
    expect(ack.status).toBe(200);
  });

  it('a hold on one of A’s snapshots does not let B acknowledge files of another (its savepoint): that snapshot must be held', async () => {
    const snapshotId = await bRestoredFromACheckpoint('reachable');
    const ack = await http
      .post(`${BASE}/jobs/${B}/snapshots/${snapshotId}/acks`)
      .set(as('admin'))
      .send({ taskId: 't', stateHandles: [{ path: join(savepoint.externalPath, 'sv'), sizeBytes: 1 }] });
    expectProblem(ack, 409, 'body.stateHandles[0].path', 'restore-recorded');
    expect(ack.body.detail).toContain(`snapshot ${savepoint.snapshotId} of ${A}`);
  });

  it('a restore from the job’s own savepoint asks nobody: it works while Redis is unreachable', async () => {
    const snapshotId = await complete(http, 'SAVEPOINT', B);
    const own = await http.get(`${BASE}/jobs/${B}/snapshots/${snapshotId}`).set(as('admin')).expect(200);
    reachable = false;
    const res = await http
      .post(`${BASE}/jobs/${B}/restores`)
      .set(as('admin'))
      .send({ externalPath: own.body.externalPath, claimMode: 'CLAIM' });
    expect(res.status).toBe(201);
    expect((await typesOf(B)).find((e) => e.type === 'SnapshotRestored')).not.toHaveProperty('fromJobId');
  });

  it('while the read model catches up with the log (after a wipe) the restore is a 503 and writes nothing', async () => {
    const keys = new ReadModelKeys(prefix);
    await redis.del(keys.space(Number(await redis.get(keys.current))).complete);
    const res = await restoreB();
    expectProblem(res, 503);
    expect(res.body.detail).toMatch(/catching up/);
    expect((await typesOf(B)).map((e) => e.type)).toEqual(['JobRegistered']);
  });

  it('importing a directory inside it into another job is a 409 (its discard would delete files of the savepoint)', async () => {
    mkdirSync(join(savepoint.externalPath, 'sub'), { recursive: true });
    writeFileSync(join(savepoint.externalPath, 'sub', '_metadata'), 'x');
    const res = await http
      .post(`${BASE}/jobs/${B}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: join(savepoint.externalPath, 'sub'), kind: 'SAVEPOINT' });
    expectProblem(res, 409, 'body.externalPath', 'another-jobs-snapshot');
    expect((await typesOf(B)).map((e) => e.type)).toEqual(['JobRegistered']);
  });

  it('importing it into another job is a 409 (either discard would delete it under the other)', async () => {
    const res = await http
      .post(`${BASE}/jobs/${B}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: savepoint.externalPath, kind: 'SAVEPOINT' });
    expectProblem(res, 409, 'body.externalPath', 'another-jobs-snapshot');
    expect((await typesOf(B)).map((e) => e.type)).toEqual(['JobRegistered']);
  });

  it('a snapshot of A still in progress is nobody else’s yet: restoring from it, importing it or a directory inside it, and acknowledging its files are 409s that write nothing', async () => {
    const pendingOf = async (kind: 'CHECKPOINT' | 'SAVEPOINT') => {
      const triggered = await http
        .post(`${BASE}/jobs/${A}/snapshots`)
        .set(as('admin'))
        .send({ kind })
        .expect(202);
      const path = (
        await http
          .get(`${BASE}/jobs/${A}/snapshots/${triggered.body.snapshotId}`)
          .set(as('admin'))
          .expect(200)
      ).body.externalPath as string;
      mkdirSync(join(path, 'sub'), { recursive: true });
      writeFileSync(join(path, '_metadata'), 'x'); // as a run that wrote there before the catalogue knew
      return { snapshotId: triggered.body.snapshotId as number, path };
    };
    const checkpointInProgress = await pendingOf('CHECKPOINT');
    const savepointInProgress = await pendingOf('SAVEPOINT');
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    for (const { path } of [savepointInProgress, checkpointInProgress]) {
      const restored = await http
        .post(`${BASE}/jobs/${B}/restores`)
        .set(as('admin'))
        .send({ externalPath: `${path}/_metadata`, claimMode: 'CLAIM' });
      expectProblem(restored, 409, 'body.externalPath', 'snapshot-pending');
    }
    const imported = (externalPath: string) =>
      http
        .post(`${BASE}/jobs/${B}/snapshots/import`)
        .set(as('admin'))
        .send({ externalPath, kind: 'SAVEPOINT' });
    expectProblem(await imported(savepointInProgress.path), 409, 'body.externalPath', 'snapshot-pending');
    writeFileSync(join(savepointInProgress.path, 'sub', '_metadata'), 'x');
    expectProblem(
      await imported(join(savepointInProgress.path, 'sub')),
      409,
      'body.externalPath',
      'another-jobs-snapshot',
    );
    const own = await http.post(`${BASE}/jobs/${B}/snapshots`).set(as('admin')).send({ kind: 'CHECKPOINT' });
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    const ack = await http
      .post(`${BASE}/jobs/${B}/snapshots/${own.body.snapshotId}/acks`)
      .set(as('admin'))
      .send({ taskId: 't', stateHandles: [{ path: join(savepointInProgress.path, 'f'), sizeBytes: 1 }] });
    expectProblem(ack, 409, 'body.stateHandles[0].path', 'snapshot-pending');
    expect(ack.body.detail).toContain(
      `snapshot ${savepointInProgress.snapshotId} of job ${A}, still in progress`,
    );
    expect((await typesOf(B)).map((e) => e.type)).toEqual(['JobRegistered', 'SnapshotTriggered']);
    expect((await typesOf(A)).map((e) => e.type)).not.toContain('SnapshotHeld');
  });

  it('a savepoint of A being discarded (its files going) is no longer completed, yet nobody else’s: restoring from it, importing it or a directory inside it, and acknowledging its files are 409 being-deleted, and write nothing (decision 0047)', async () => {
    // The running job's latest: forced. No workers here, so the discard stays under way.
    const discarded = await http
      .post(`${BASE}/jobs/${A}/snapshots/${savepoint.snapshotId}/discard`)
      .set(as('admin'))
      .send({ force: true });
    expect(discarded.status).toBe(202);
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    expectProblem(await restoreB(), 409, 'body.externalPath', 'being-deleted');
    const imported = (externalPath: string) =>
      http
        .post(`${BASE}/jobs/${B}/snapshots/import`)
        .set(as('admin'))
        .send({ externalPath, kind: 'SAVEPOINT' });
    expectProblem(await imported(savepoint.externalPath), 409, 'body.externalPath', 'being-deleted');
    mkdirSync(join(savepoint.externalPath, 'sub'), { recursive: true });
    writeFileSync(join(savepoint.externalPath, 'sub', '_metadata'), 'x');
    expectProblem(
      await imported(join(savepoint.externalPath, 'sub')),
      409,
      'body.externalPath',
      'being-deleted',
    );
    const own = await http.post(`${BASE}/jobs/${B}/snapshots`).set(as('admin')).send({ kind: 'CHECKPOINT' });
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    const ack = await http
      .post(`${BASE}/jobs/${B}/snapshots/${own.body.snapshotId}/acks`)
      .set(as('admin'))
      .send({ taskId: 't', stateHandles: [{ path: join(savepoint.externalPath, 'f'), sizeBytes: 1 }] });
    expectProblem(ack, 409, 'body.stateHandles[0].path', 'being-deleted');
    expect(ack.body.detail).toContain(`snapshot ${savepoint.snapshotId} of job ${A}, being discarded`);
    expect((await typesOf(B)).map((e) => e.type)).toEqual(['JobRegistered', 'SnapshotTriggered']);
  });

  it('a savepoint two other jobs hold (imported before this check) is a 409 asking for fromJobId', async () => {
    await fx.bus.execute({
      type: 'ImportSnapshot',
      jobId: A_TWIN,
      externalPath: savepoint.externalPath,
      kind: 'SAVEPOINT',
    });
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    expectProblem(await restoreB(), 409, 'body.externalPath', 'one-owner');
    expect((await typesOf(B)).map((e) => e.type)).toEqual(['JobRegistered']);
  });
});

/**
 * Decision 0032: an imported snapshot's directory names no job (no `<jobId>/chk-N`, no `savepoint-<6>-…`), so
 * its owner is found in the read model's index of such directories. Without it, a restore by the path placed
 * no hold, and the importing job's discard deleted the directory the restored job was using.
 */
describe('restores from another job’s imported snapshot by its path alone', () => {
  const prefix = `snapcat-test-restore-import-${process.pid}-${Date.now().toString(36)}`;
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let redis: IORedis;
  let nightly: string;
  let imported: number;
  beforeEach(async () => {
    redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    fx = apiFixture({
      tokens: TOKENS,
      readModel: new ReadModel(redis, prefix),
      readModelAvailable: () => true,
    });
    http = request(fx.app);
    await registerJobs(http, 'default');
    // Imports look the directory's owner up too (a second import would be deleted under the first).
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    nightly = join(fx.dir, 'imports', 'nightly');
    mkdirSync(nightly, { recursive: true });
    writeFileSync(join(nightly, '_metadata'), 'x');
    // A neighbour whose name starts with the directory's: not the same directory.
    mkdirSync(`${nightly}-2`, { recursive: true });
    writeFileSync(join(`${nightly}-2`, '_metadata'), 'x');
    const res = await http
      .post(`${BASE}/jobs/${A}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: `file://${nightly}/`, kind: 'SAVEPOINT' })
      .expect(201);
    imported = res.body.snapshotId as number;
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER); // as a projector would have shown it
    await http
      .post(`${BASE}/jobs/${OTHER_TEAM_JOB}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: `${nightly}-2`, kind: 'SAVEPOINT' })
      .expect(201);
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
  });
  afterEach(async () => {
    await fx.close();
    redis.disconnect();
    await deleteKeys(prefix);
  });

  const restoreB = (externalPath = `${nightly}/_metadata`) =>
    http.post(`${BASE}/jobs/${B}/restores`).set(as('admin')).send({ externalPath, claimMode: 'NO_CLAIM' });
  const discardImport = () =>
    http.post(`${BASE}/jobs/${A}/snapshots/${imported}/discard`).set(as('admin')).send({});

  it('while the import’s discard is under way (no workers here), a restore by its path, an import of it and an acknowledgement of a file in it are 409 being-deleted: the index keeps the directory until its files are gone (decision 0047)', async () => {
    expect((await discardImport()).status).toBe(202);
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    expectProblem(await restoreB(), 409, 'body.externalPath', 'being-deleted');
    const again = await http
      .post(`${BASE}/jobs/${B}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: nightly, kind: 'SAVEPOINT' });
    expectProblem(again, 409, 'body.externalPath', 'being-deleted');
    const own = await http.post(`${BASE}/jobs/${B}/snapshots`).set(as('admin')).send({ kind: 'CHECKPOINT' });
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    const ack = await http
      .post(`${BASE}/jobs/${B}/snapshots/${own.body.snapshotId}/acks`)
      .set(as('admin'))
      .send({ taskId: 't', stateHandles: [{ path: join(nightly, 'sst-1'), sizeBytes: 1 }] });
    expectProblem(ack, 409, 'body.stateHandles[0].path', 'being-deleted');
    expect((await historyOf(http, B)).map((e) => e.type)).toEqual(['JobRegistered', 'SnapshotTriggered']);
  });

  it('the importing job holds it (its discard is 409) and the restore names it', async () => {
    expect((await restoreB()).status).toBe(201);
    expectProblem(await discardImport(), 409, 'path.snapshotId', 'held-by-restore');
    expect((await historyOf(http, B)).find((e) => e.type === 'SnapshotRestored')).toMatchObject({
      fromJobId: A,
    });
    expect((await historyOf(http, A)).find((e) => e.type === 'SnapshotHeld')).toMatchObject({
      holderJobId: B,
    });
    // The neighbour's owner was not read as this directory's: it holds nothing.
    expect((await historyOf(http, OTHER_TEAM_JOB)).map((e) => e.type)).not.toContain('SnapshotHeld');
  });

  it('a team’s token learns nothing of another namespace’s imports from a place it names: 403 or 404, never the 400 naming the import', async () => {
    const teamJob = 'd0'.repeat(16);
    await http
      .put(`${BASE}/jobs/${teamJob}`)
      .set(as('team'))
      .send({ namespace: 'team', tasks: ['t'] })
      .expect(201);
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    // The other team's import, and a place inside it: the 400 named the import's directory.
    for (const place of [`${nightly}-2`, join(`${nightly}-2`, 'a', 'b')]) {
      const trigger = () => http.post(`${BASE}/jobs/${teamJob}/snapshots`).set(as('team'));
      expectProblem(
        await trigger().send({ kind: 'SAVEPOINT', targetDirectory: place }),
        403,
        'body.targetDirectory',
        'namespace-storage',
      );
      for (const jobId of [teamJob, 'e0'.repeat(16)]) {
        const res = await http
          .put(`${BASE}/jobs/${jobId}`)
          .set(as('team'))
          .send({ namespace: 'team', tasks: ['t'], storage: { savepointDir: place } });
        expectProblem(res, 403, 'body.storage.savepointDir', 'namespace-storage');
      }
      // Another namespace's job and one not registered: the 404 of any command on them.
      for (const jobId of [OTHER_TEAM_JOB, 'f0'.repeat(16)]) {
        const res = await http
          .post(`${BASE}/jobs/${jobId}/snapshots`)
          .set(as('team'))
          .send({ kind: 'SAVEPOINT', targetDirectory: place });
        expectProblem(res, 404, 'path.jobId', 'job-exists');
      }
      const taken = await http
        .put(`${BASE}/jobs/${OTHER_TEAM_JOB}`)
        .set(as('team'))
        .send({ namespace: 'team', tasks: ['t'], storage: { savepointDir: place } });
      expectProblem(taken, 404, 'path.jobId');
      expect(JSON.stringify(taken.body)).not.toContain(nightly);
    }
  });

  it('importing the same directory into another job is a 409 (either discard would delete it under the other)', async () => {
    const res = await http
      .post(`${BASE}/jobs/${B}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: nightly, kind: 'SAVEPOINT' });
    expectProblem(res, 409, 'body.externalPath', 'another-jobs-snapshot');
  });

  it('importing a directory inside another job’s import is a 409 (its discard would delete part of the import)', async () => {
    mkdirSync(join(nightly, 'sub'), { recursive: true });
    writeFileSync(join(nightly, 'sub', '_metadata'), 'x');
    const res = await http
      .post(`${BASE}/jobs/${B}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: join(nightly, 'sub'), kind: 'SAVEPOINT' });
    expectProblem(res, 409, 'body.externalPath', 'another-jobs-snapshot');
    expect(res.body.detail).toContain(`inside a snapshot of job ${A}`);
  });

  it('a restore from a directory inside another job’s import is a 409 (no hold would keep it), and writes nothing', async () => {
    mkdirSync(join(nightly, 'deep'), { recursive: true });
    writeFileSync(join(nightly, 'deep', '_metadata'), 'x');
    const res = await restoreB(join(nightly, 'deep'));
    expectProblem(res, 409, 'body.externalPath', 'another-jobs-snapshot');
    expect(res.body.detail).toContain('no hold would keep it');
    expect((await historyOf(http, B)).map((e) => e.type)).toEqual(['JobRegistered']);
  });

  it('a read model whose directories are not indexed yet (written before the index) is a 503, and nothing is written', async () => {
    const keys = new ReadModelKeys(prefix);
    await redis.del(keys.space(Number(await redis.get(keys.current))).directoriesIndexed);
    const res = await restoreB();
    expectProblem(res, 503);
    expect((await historyOf(http, B)).map((e) => e.type)).toEqual(['JobRegistered']);
    expect((await historyOf(http, A)).map((e) => e.type)).not.toContain('SnapshotHeld');
  });

  it('a snapshot imported a moment ago is not missed: the lookup waits for the projection, a 503 while it lags', async () => {
    const weekly = join(fx.dir, 'imports', 'weekly');
    mkdirSync(weekly, { recursive: true });
    writeFileSync(join(weekly, '_metadata'), 'x');
    // Imported after the read model was last written, and no projector runs: the index cannot know it yet.
    const res = await http
      .post(`${BASE}/jobs/${A}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: weekly, kind: 'SAVEPOINT' });
    expect(res.status).toBe(201);
    const lagging = await restoreB(weekly);
    expectProblem(lagging, 503);
    expect(lagging.body.detail).toMatch(/catching up/);
    expect((await historyOf(http, B)).map((e) => e.type)).toEqual(['JobRegistered']);
    // A projector catches up: the same restore holds the import.
    const projector = new Projector({
      store: fx.store,
      redis,
      prefix,
      log: { info: () => {}, error: () => {} },
    });
    await projector.start();
    try {
      expect((await restoreB(weekly)).status).toBe(201);
      expectProblem(
        await http
          .post(`${BASE}/jobs/${A}/snapshots/${res.body.snapshotId}/discard`)
          .set(as('admin'))
          .send({}),
        409,
        'path.snapshotId',
        'held-by-restore',
      );
    } finally {
      await projector.stop();
    }
  });

  it('a directory no catalogued snapshot is, beside the import, is restored from without a hold', async () => {
    const weekly = join(fx.dir, 'imports', 'weekly');
    mkdirSync(weekly, { recursive: true });
    writeFileSync(join(weekly, '_metadata'), 'x');
    expect((await restoreB(weekly)).status).toBe(201);
    expect((await historyOf(http, B)).find((e) => e.type === 'SnapshotRestored')).not.toHaveProperty(
      'fromJobId',
    );
    expect((await discardImport()).status).toBe(202);
  });

  it('an acknowledgement naming a file in another job’s imported directory is refused until a restore from it holds it', async () => {
    const trigger = await http
      .post(`${BASE}/jobs/${B}/snapshots`)
      .set(as('admin'))
      .send({ kind: 'CHECKPOINT' })
      .expect(202);
    const snapshotId = trigger.body.snapshotId as number;
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER); // as a projector would have shown it
    const ack = () =>
      http
        .post(`${BASE}/jobs/${B}/snapshots/${snapshotId}/acks`)
        .set(as('admin'))
        .send({ taskId: 't', stateHandles: [{ path: join(nightly, 'sst-7'), sizeBytes: 1, shared: true }] });
    const refused = await ack();
    expectProblem(refused, 409, 'body.stateHandles[0].path', 'restore-recorded');
    expect(refused.body.detail).toContain(`job ${A}`);
    expect((await restoreB()).status).toBe(201);
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    expect((await ack()).status).toBe(200);
  });

  it('a retained checkpoint of an uncatalogued run, imported into A, is A’s: a second import is a 409, a restore by its path holds it', async () => {
    const previousRun = 'f0'.repeat(16);
    const chk = join(fx.defaults.checkpointDir, previousRun, 'chk-5');
    mkdirSync(chk, { recursive: true });
    writeFileSync(join(chk, '_metadata'), 'x');
    const res = await http
      .post(`${BASE}/jobs/${A}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: chk, kind: 'CHECKPOINT' })
      .expect(201);
    await rebuildReadModel(fx.store, redis, prefix, undefined, NO_READER);
    expectProblem(
      await http
        .post(`${BASE}/jobs/${B}/snapshots/import`)
        .set(as('admin'))
        .send({ externalPath: chk, kind: 'CHECKPOINT' }),
      409,
      'body.externalPath',
      'another-jobs-snapshot',
    );
    expect((await restoreB(chk)).status).toBe(201);
    expect((await historyOf(http, B)).find((e) => e.type === 'SnapshotRestored')).toMatchObject({
      fromJobId: A,
    });
    expectProblem(
      await http.post(`${BASE}/jobs/${A}/snapshots/${res.body.snapshotId}/discard`).set(as('admin')).send({}),
      409,
      'path.snapshotId',
      'held-by-restore',
    );
  });
});
