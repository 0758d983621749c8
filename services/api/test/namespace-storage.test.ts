import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import IORedis from 'ioredis';
import request from 'supertest';
import { ReadModel } from '@snapcat/read-model';
import { newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import { apiFixture, BASE, expectProblem, graphqlOver } from './fixture';
import { CommandBus } from '@snapcat/application';
import { Command } from '@snapcat/domain';
import { MemoryEventStore } from '@snapcat/event-store';
import { NamespaceStorage } from '../src/namespace-storage';

/** Team A's job, team B's job, and a job an admin registered for team A in a directory of its choice. */
const A_JOB = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const B_JOB = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const LEGACY_JOB = 'cccccccccccccccccccccccccccccccc';

const TOKEN = { a: newToken(), b: newToken(), admin: newToken() };
const TOKENS = parseTokenList(
  [
    tokenLine({ name: 'team-a', scopes: ['operator'], namespaces: ['team-a'] }, TOKEN.a),
    tokenLine({ name: 'team-b', scopes: ['operator'], namespaces: ['team-b'] }, TOKEN.b),
    tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, TOKEN.admin),
  ].join('\n'),
);
const as = (who: keyof typeof TOKEN) => ({ authorization: `Bearer ${TOKEN[who]}` });
/** Team A registers its job with the default directories. */
const registerTeamAJob = (http: ReturnType<typeof request>) =>
  http
    .put(`${BASE}/jobs/${A_JOB}`)
    .set(as('a'))
    .send({ namespace: 'team-a', tasks: ['t'] })
    .expect(201);

/**
 * Decision 0030: every namespace shares the storage roots, and what a job names snapcat may later delete (an
 * imported directory on discard, an acknowledged file once nothing references it). A token limited to
 * namespaces names only its namespaces' storage (SNAPCAT_NAMESPACE_ROOTS), the default directories as places
 * to create in, and its job's own directories; a token of every namespace is not limited.
 */
describe('a team’s token names only its own storage', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let teamB: string;
  beforeEach(async () => {
    fx = apiFixture({
      tokens: TOKENS,
      namespaceRoots: (dir) => ({ 'team-a': [join(dir, 'a')], 'team-b': [join(dir, 'b')] }),
    });
    http = request(fx.app);
    teamB = join(fx.dir, 'b');
    await http
      .put(`${BASE}/jobs/${B_JOB}`)
      .set(as('b'))
      .send({
        namespace: 'team-b',
        tasks: ['t'],
        storage: { checkpointDir: join(teamB, 'chk'), savepointDir: teamB },
      })
      .expect(201);
    await registerTeamAJob(http);
  });
  afterEach(() => fx.close());

  /** A savepoint directory as Flink writes one, with `_metadata`. */
  const savepoint = (parent: string, name = 'savepoint-bbbbbb-0123456789ab') => {
    const dir = join(parent, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '_metadata'), Buffer.alloc(100, 1));
    return dir;
  };
  const snapshot = (jobId: string, snapshotId: number) =>
    http.get(`${BASE}/jobs/${jobId}/snapshots/${snapshotId}`).set(as('admin'));

  it('importing another team’s savepoint (which a discard would then delete) is 403 and catalogues nothing', async () => {
    const theirs = savepoint(teamB);
    const res = await http
      .post(`${BASE}/jobs/${A_JOB}/snapshots/import`)
      .set(as('a'))
      .send({ externalPath: theirs, kind: 'SAVEPOINT' });
    expectProblem(res, 403, 'body.externalPath', 'namespace-storage');
    expect(res.body.detail).toContain(join(fx.dir, 'a'));
    expect(res.body.detail).not.toContain(teamB);
    expect((await snapshot(A_JOB, 1)).status).toBe(404);
    expect(existsSync(join(theirs, '_metadata'))).toBe(true);
    // Written another way, it is still theirs.
    const sneaky = `file://${join(fx.dir, 'a', '..', 'b', 'savepoint-bbbbbb-0123456789ab')}/`;
    const again = await http
      .post(`${BASE}/jobs/${A_JOB}/snapshots/import`)
      .set(as('a'))
      .send({ externalPath: sneaky, kind: 'SAVEPOINT' });
    expectProblem(again, 403, 'body.externalPath', 'namespace-storage');
    // Its own savepoint, in its namespace's storage, imports.
    const ours = savepoint(join(fx.dir, 'a'), 'savepoint-aaaaaa-0123456789ab');
    const imported = await http
      .post(`${BASE}/jobs/${A_JOB}/snapshots/import`)
      .set(as('a'))
      .send({ externalPath: ours, kind: 'SAVEPOINT' });
    expect(imported.status).toBe(201);
  });

  it('a place in another team’s storage is 403 whatever lies there: a symbolic link there is not told apart (it was a 400)', async () => {
    mkdirSync(join(teamB, 'real'), { recursive: true });
    symlinkSync(join(teamB, 'real'), join(teamB, 'link'));
    for (const place of [join(teamB, 'link'), join(teamB, 'link', 'x'), join(teamB, 'plain', 'x')]) {
      const trigger = await http
        .post(`${BASE}/jobs/${A_JOB}/snapshots`)
        .set(as('a'))
        .send({ kind: 'SAVEPOINT', targetDirectory: place });
      expectProblem(trigger, 403, 'body.targetDirectory', 'namespace-storage');
      const configure = await http
        .put(`${BASE}/jobs/${A_JOB}`)
        .set(as('a'))
        .send({ namespace: 'team-a', tasks: ['t'], storage: { savepointDir: place } });
      expectProblem(configure, 403, 'body.storage.savepointDir', 'namespace-storage');
      const imported = await http
        .post(`${BASE}/jobs/${A_JOB}/snapshots/import`)
        .set(as('a'))
        .send({ externalPath: place, kind: 'SAVEPOINT' });
      expectProblem(imported, 403, 'body.externalPath', 'namespace-storage');
      const restored = await http
        .post(`${BASE}/jobs/${A_JOB}/restores`)
        .set(as('a'))
        .send({ externalPath: place });
      expectProblem(restored, 403, 'body.externalPath', 'namespace-storage');
      // Another namespace's job and one not registered: the 404 of any command on them.
      for (const jobId of [B_JOB, 'e'.repeat(32)]) {
        const res = await http
          .post(`${BASE}/jobs/${jobId}/restores`)
          .set(as('a'))
          .send({ externalPath: place });
        expectProblem(res, 404, 'path.jobId', 'job-exists');
      }
    }
  });

  it('acknowledging another team’s files is 403 and records nothing; the job’s own checkpoint directory and its namespace’s storage are accepted', async () => {
    const triggered = await http
      .post(`${BASE}/jobs/${A_JOB}/snapshots`)
      .set(as('a'))
      .send({ kind: 'CHECKPOINT' });
    const snapshotId = triggered.body.snapshotId as number;
    const acks = `${BASE}/jobs/${A_JOB}/snapshots/${snapshotId}/acks`;
    const own = join(fx.defaults.checkpointDir, A_JOB, 'shared', 'sst-1');
    const theirs = join(teamB, 'chk', B_JOB, 'shared', 'sst-9');
    /** One acknowledgement of task t reporting these files. */
    const ackOf = (...paths: string[]) => ({
      taskId: 't',
      stateHandles: paths.map((path) => ({ path, sizeBytes: 1 })),
    });
    const single = await http.post(acks).set(as('a')).send(ackOf(own, theirs));
    expectProblem(single, 403, 'body.stateHandles[1].path', 'namespace-storage');
    const batch = await http
      .post(acks)
      .set(as('a'))
      .send([ackOf(own), ackOf(join(teamB, 'x'))]);
    expectProblem(batch, 403, 'body[1].stateHandles[0].path', 'namespace-storage');
    // Outside every storage root it is no namespace's: the 400 every caller gets.
    const outside = await http
      .post(acks)
      .set(as('a'))
      .send([ackOf(own), ackOf(`s3://elsewhere/${B_JOB}/x`)]);
    expectProblem(outside, 400, 'body[1].stateHandles[0].path', 'within-storage-roots');
    const shown = await snapshot(A_JOB, snapshotId).expect(200);
    expect(shown.body).toMatchObject({ status: 'PENDING', acknowledgedTasks: 0 });

    const accepted = await http
      .post(acks)
      .set(as('a'))
      .send(ackOf(own, join(fx.dir, 'a', 'restored', 'sst-2')));
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ result: 'SUCCESS' });
  });

  it('in its own storage, a path laid out under another team’s job id answers as under an id the catalogue does not hold (R55): no oracle of another namespace’s jobs', async () => {
    const unknown = 'dddddddddddddddddddddddddddddddd';
    const triggered = await http
      .post(`${BASE}/jobs/${A_JOB}/snapshots`)
      .set(as('a'))
      .send({ kind: 'CHECKPOINT' });
    const acks = `${BASE}/jobs/${A_JOB}/snapshots/${triggered.body.snapshotId}/acks`;
    const ackNaming = (jobId: string, taskId: string) => ({
      taskId,
      stateHandles: [{ path: join(fx.dir, 'a', 'restored', jobId, 'shared', 'x'), sizeBytes: 1 }],
    });
    const answers = [];
    for (const [i, jobId] of [B_JOB, unknown].entries()) {
      const res = await http
        .post(acks)
        .set(as('a'))
        .send(ackNaming(jobId, `t${i}`));
      answers.push([res.status, res.body.result ?? res.body.errors?.[0]?.rule]);
      expect(JSON.stringify(res.body)).not.toContain(B_JOB);
    }
    expect(answers[0]).toEqual(answers[1]);
    // Imports alike: a checkpoint laid out under team B's job id in team A's storage.
    const imported = [];
    for (const jobId of [B_JOB, unknown]) {
      const dir = join(fx.dir, 'a', 'runs', jobId, 'chk-1');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, '_metadata'), Buffer.alloc(10, 1));
      const res = await http
        .post(`${BASE}/jobs/${A_JOB}/snapshots/import`)
        .set(as('a'))
        .send({ externalPath: dir, kind: 'CHECKPOINT' });
      imported.push(res.status);
    }
    expect(imported).toEqual([201, 201]);
    // A token of every namespace is told: the job is catalogued there.
    const told = await http.post(acks).set(as('admin')).send(ackNaming(B_JOB, 't2'));
    expect([told.status, told.body.errors?.[0]?.rule]).toEqual([409, 'restore-recorded']);
  });

  it('a savepoint’s files are accepted inside the directory snapcat laid out for it', async () => {
    const triggered = await http
      .post(`${BASE}/jobs/${A_JOB}/snapshots`)
      .set(as('a'))
      .send({ kind: 'SAVEPOINT' });
    const { snapshotId } = triggered.body as { snapshotId: number };
    const { externalPath } = (await snapshot(A_JOB, snapshotId).expect(200)).body as { externalPath: string };
    expect(externalPath.startsWith(fx.defaults.savepointDir)).toBe(true);
    const acks = `${BASE}/jobs/${A_JOB}/snapshots/${snapshotId}/acks`;
    const inside = await http
      .post(acks)
      .set(as('a'))
      .send({ taskId: 't', stateHandles: [{ path: `${externalPath}/state-0`, sizeBytes: 1 }] });
    expect(inside.body).toMatchObject({ result: 'SUCCESS' });
  });

  it('a job’s directories and a savepoint’s target: its namespace’s storage, the defaults, or the job’s own; nothing else', async () => {
    const elsewhere = await http
      .put(`${BASE}/jobs/${A_JOB}`)
      .set(as('a'))
      .send({ namespace: 'team-a', tasks: ['t'], storage: { checkpointDir: join(teamB, 'chk') } });
    expectProblem(elsewhere, 403, 'body.storage.checkpointDir', 'namespace-storage');
    const inOwn = await http
      .put(`${BASE}/jobs/${A_JOB}`)
      .set(as('a'))
      .send({ namespace: 'team-a', tasks: ['t'], storage: { checkpointDir: join(fx.dir, 'a', 'chk') } });
    expect(inOwn.status).toBe(200);

    const target = (targetDirectory: string) =>
      http.post(`${BASE}/jobs/${A_JOB}/snapshots`).set(as('a')).send({ kind: 'SAVEPOINT', targetDirectory });
    expectProblem(await target(teamB), 403, 'body.targetDirectory', 'namespace-storage');
    expectProblem(await target(fx.dir), 403, 'body.targetDirectory', 'namespace-storage');
    expect((await target(fx.defaults.savepointDir)).body).toMatchObject({ snapshotId: 1, status: 'PENDING' });
    const schedule = await http
      .put(`${BASE}/jobs/${A_JOB}/savepoint-schedule`)
      .set(as('a'))
      .send({ every: 'PT1H', targetDirectory: join(teamB, 'periodic') });
    expectProblem(schedule, 403, 'body.targetDirectory', 'namespace-storage');
    const restore = await http
      .post(`${BASE}/jobs/${A_JOB}/restores`)
      .set(as('a'))
      .send({ externalPath: savepoint(teamB), claimMode: 'CLAIM' });
    expectProblem(restore, 403, 'body.externalPath', 'namespace-storage');
  });

  it('a job the token may not see and one that does not exist answer alike: 404 before any storage check', async () => {
    const UNKNOWN = 'dddddddddddddddddddddddddddddddd';
    for (const jobId of [B_JOB, UNKNOWN]) {
      const trigger = await http
        .post(`${BASE}/jobs/${jobId}/snapshots`)
        .set(as('a'))
        .send({ kind: 'SAVEPOINT', targetDirectory: join(fx.dir, 'elsewhere') });
      expectProblem(trigger, 404, 'path.jobId', 'job-exists');
      const schedule = await http
        .put(`${BASE}/jobs/${jobId}/savepoint-schedule`)
        .set(as('a'))
        .send({ every: 'PT1H', targetDirectory: join(fx.dir, 'elsewhere') });
      expectProblem(schedule, 404, 'path.jobId', 'job-exists');
      const restore = await http
        .post(`${BASE}/jobs/${jobId}/restores`)
        .set(as('a'))
        .send({ externalPath: savepoint(teamB), claimMode: 'CLAIM' });
      expectProblem(restore, 404, 'path.jobId', 'job-exists');
      const ack = await http
        .post(`${BASE}/jobs/${jobId}/snapshots/1/acks`)
        .set(as('a'))
        .send({
          taskId: 't',
          stateSize: 1,
          stateHandles: [{ path: join(fx.dir, 'elsewhere', 'f'), sizeBytes: 1 }],
        });
      expectProblem(ack, 404, 'path.jobId', 'job-exists');
    }
  });

  it('another team acknowledging in a job’s directories the service has seen its own team use: 404, no file looked at', async () => {
    const triggered = await http
      .post(`${BASE}/jobs/${A_JOB}/snapshots`)
      .set(as('a'))
      .send({ kind: 'CHECKPOINT' });
    const acks = `${BASE}/jobs/${A_JOB}/snapshots/${triggered.body.snapshotId as number}/acks`;
    const shared = join(fx.defaults.checkpointDir, A_JOB, 'shared');
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, 'sst-1'), Buffer.alloc(1));
    // Team A's own acknowledgement: the job's checkpoint area is now known to the service.
    const own = { taskId: 't', stateHandles: [{ path: join(shared, 'sst-1'), sizeBytes: 1 }] };
    expect((await http.post(acks).set(as('a')).send(own)).status).toBe(200);
    // Team B names a directory there (a file check would say "is a directory"): the job is not theirs to see.
    const probe = await http
      .post(acks)
      .set(as('b'))
      .send({ taskId: 't', stateHandles: [{ path: shared, sizeBytes: 1 }] });
    expectProblem(probe, 404, 'path.jobId', 'job-exists');
  });

  it('a job an admin placed outside its namespace’s storage keeps working for the team: its own directories are its own', async () => {
    const legacy = join(fx.dir, 'legacy');
    const storage = { checkpointDir: join(legacy, 'chk'), savepointDir: join(legacy, 'sp') };
    await http
      .put(`${BASE}/jobs/${LEGACY_JOB}`)
      .set(as('admin'))
      .send({ namespace: 'team-a', tasks: ['t'], storage })
      .expect(201);
    // The same registration again, from the team's token: the job's own directories.
    await http
      .put(`${BASE}/jobs/${LEGACY_JOB}`)
      .set(as('a'))
      .send({ namespace: 'team-a', tasks: ['t'], storage })
      .expect(200);
    const moved = await http
      .put(`${BASE}/jobs/${LEGACY_JOB}`)
      .set(as('a'))
      .send({
        namespace: 'team-a',
        tasks: ['t'],
        storage: { ...storage, checkpointDir: join(legacy, 'other') },
      });
    expectProblem(moved, 403, 'body.storage.checkpointDir', 'namespace-storage');
    const { snapshotId } = (
      await http.post(`${BASE}/jobs/${LEGACY_JOB}/snapshots`).set(as('a')).send({ kind: 'CHECKPOINT' })
    ).body as { snapshotId: number };
    const ack = await http
      .post(`${BASE}/jobs/${LEGACY_JOB}/snapshots/${snapshotId}/acks`)
      .set(as('a'))
      .send({
        taskId: 't',
        stateHandles: [{ path: join(legacy, 'chk', LEGACY_JOB, 'shared', 's'), sizeBytes: 1 }],
      });
    expect(ack.body).toMatchObject({ result: 'SUCCESS' });
    // Its retained checkpoint imports; a neighbour's directory in the same legacy place does not.
    const retained = savepoint(join(legacy, 'chk', LEGACY_JOB), 'chk-7');
    const imported = await http
      .post(`${BASE}/jobs/${LEGACY_JOB}/snapshots/import`)
      .set(as('a'))
      .send({ externalPath: retained, kind: 'CHECKPOINT' });
    expect(imported.status).toBe(201);
    const neighbour = savepoint(join(legacy, 'chk', B_JOB), 'chk-3');
    const refused = await http
      .post(`${BASE}/jobs/${LEGACY_JOB}/snapshots/import`)
      .set(as('a'))
      .send({ externalPath: neighbour, kind: 'CHECKPOINT' });
    expectProblem(refused, 403, 'body.externalPath', 'namespace-storage');
  });

  it('a team’s new job may not take an area of the shared checkpoint directory that already holds files (an uncatalogued Flink job’s): 409, nothing recorded', async () => {
    const unknown = 'dddddddddddddddddddddddddddddddd';
    const chk = join(fx.dir, 'chk', unknown, 'chk-7');
    mkdirSync(chk, { recursive: true });
    writeFileSync(join(chk, '_metadata'), Buffer.alloc(100, 1));
    const register = (who: keyof typeof TOKEN, body: object) =>
      http
        .put(`${BASE}/jobs/${unknown}`)
        .set(as(who))
        .send({ namespace: 'team-a', tasks: ['t'], ...body });
    expectProblem(await register('a', {}), 409, 'path.jobId', 'checkpoint-area-in-use');
    expect((await http.get(`${BASE}/jobs/${unknown}`).set(as('admin'))).status).toBe(404);
    // In the namespace's own storage the area is the team's: no other team's job writes there.
    const own = { storage: { checkpointDir: join(fx.dir, 'a', 'chk'), savepointDir: join(fx.dir, 'sp') } };
    mkdirSync(join(fx.dir, 'a', 'chk', unknown), { recursive: true });
    writeFileSync(join(fx.dir, 'a', 'chk', unknown, 'x'), 'x');
    expect((await register('a', own)).status).toBe(201);
    // Registered, the job is the team's: a change is no new claim.
    expect((await register('a', own)).status).toBe(200);
    // A new job whose area is empty, and an admin's registration, are not refused.
    expect((await register('a', {})).status).toBe(200);
    const fresh = 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee';
    expect(
      (
        await http
          .put(`${BASE}/jobs/${fresh}`)
          .set(as('a'))
          .send({ namespace: 'team-a', tasks: ['t'] })
      ).status,
    ).toBe(201);
  });

  it('an admin may register a job whose area in the shared checkpoint directory already holds files (adopting it)', async () => {
    const unknown = 'dddddddddddddddddddddddddddddddd';
    const chk = join(fx.dir, 'chk', unknown, 'chk-7');
    mkdirSync(chk, { recursive: true });
    writeFileSync(join(chk, '_metadata'), Buffer.alloc(100, 1));
    const res = await http
      .put(`${BASE}/jobs/${unknown}`)
      .set(as('admin'))
      .send({ namespace: 'team-a', tasks: ['t'] });
    expect(res.status).toBe(201);
  });

  it('a token of every namespace is not limited: an admin may name any place inside the roots', async () => {
    const res = await http
      .post(`${BASE}/jobs/${A_JOB}/snapshots/import`)
      .set(as('admin'))
      .send({ externalPath: savepoint(join(fx.dir, 'shared-by-hand')), kind: 'SAVEPOINT' });
    expect(res.status).toBe(201);
  });
});

describe('without SNAPCAT_NAMESPACE_ROOTS a team’s token has no storage of its own', () => {
  it('it may use the defaults and its job’s own directories, and says how to configure more', async () => {
    const fx = apiFixture({ tokens: TOKENS });
    try {
      const http = request(fx.app);
      await registerTeamAJob(http);
      const res = await http
        .put(`${BASE}/jobs/${A_JOB}`)
        .set(as('a'))
        .send({ namespace: 'team-a', tasks: ['t'], storage: { savepointDir: join(fx.dir, 'mine') } });
      expectProblem(res, 403, 'body.storage.savepointDir', 'namespace-storage');
      expect(res.body.detail).toContain('SNAPCAT_NAMESPACE_ROOTS');
    } finally {
      await fx.close();
    }
  });
});

describe('GraphQL mutations name storage by the same rule', () => {
  it('importSnapshot of another team’s savepoint is FORBIDDEN with the rule, and writes nothing', async () => {
    const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    const prefix = `snapcat-test-ns-storage-${process.pid}`;
    const readModel = new ReadModel(redis, prefix);
    const fx = apiFixture({
      tokens: TOKENS,
      readModel,
      readModelAvailable: () => true,
      namespaceRoots: (dir) => ({ 'team-a': [join(dir, 'a')] }),
      graphql: graphqlOver({ readModel, topic: `${prefix}:events`, tokens: TOKENS }),
    });
    try {
      const http = request(fx.app);
      await registerTeamAJob(http);
      const theirs = join(fx.dir, 'b', 'savepoint-bbbbbb-0123456789ab');
      mkdirSync(theirs, { recursive: true });
      writeFileSync(join(theirs, '_metadata'), 'x');
      const res = await http
        .post('/graphql')
        .set(as('a'))
        .send({
          query: `mutation { importSnapshot(jobId: "${A_JOB}", externalPath: "${theirs}", kind: SAVEPOINT) { id } }`,
        });
      expect(res.body.errors).toEqual([
        expect.objectContaining({
          extensions: expect.objectContaining({
            code: 'FORBIDDEN',
            rule: 'namespace-storage',
            field: 'externalPath',
          }),
        }),
      ]);
      expect((await http.get(`${BASE}/jobs/${A_JOB}/snapshots/1`).set(as('a'))).status).toBe(404);
    } finally {
      await fx.close();
      redis.disconnect();
    }
  });
});

describe('NamespaceStorage: a savepoint’s acknowledgements from a team’s token', () => {
  it('load the job once for the savepoint’s directory, however many requests; other files are still refused', async () => {
    const jobId = 'f1'.repeat(16);
    const defaults = { checkpointDir: '/data/chk', savepointDir: '/data/sp' };
    const bus = new CommandBus(new MemoryEventStore());
    await bus.execute(
      Command.parse({
        type: 'ConfigureJob',
        jobId,
        name: 'j',
        namespace: 'team-a',
        tasks: ['a', 'b', 'c', 'd'],
        checkpointing: { numRetained: 1 },
        storage: defaults,
      }),
    );
    const { reply } = await bus.execute(
      Command.parse({
        type: 'TriggerSnapshot',
        jobId,
        kind: 'SAVEPOINT',
        triggerId: 't1',
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
      }),
    );
    const snapshotId = (reply as { snapshotId: number }).snapshotId;
    const directory = (await bus.load(jobId)).snapshots.get(snapshotId)!.externalPath;
    const namespaces = new NamespaceStorage({}, defaults);
    const principal = { name: 'team-a', scopes: ['runtime' as const], namespaces: ['team-a'] };
    let loads = 0;
    const load = () => {
      loads += 1;
      return bus.load(jobId);
    };
    const ack = (path: string) =>
      namespaces.requireAcknowledged(
        principal,
        jobId,
        snapshotId,
        [{ stateHandles: [{ path, sizeBytes: 1 }] }],
        (a, h) => `body[${a}].stateHandles[${h}].path`,
        load,
      );
    for (const task of ['a', 'b', 'c']) await ack(`${directory}/${task}`);
    await ack(`/data/chk/${jobId}/shared/x`); // the checkpoint area, remembered with it
    expect(loads).toBe(1);
    await expect(ack('/data/sp/savepoint-000000-000000000000/f')).rejects.toMatchObject({ status: 403 });
  });
});
