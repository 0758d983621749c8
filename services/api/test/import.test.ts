import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import { apiFixture, BASE, expectProblem, JOB } from './fixture';

/** POST /jobs/{jobId}/snapshots/import (R69): an existing savepoint or retained checkpoint is catalogued. */
describe('POST /jobs/{jobId}/snapshots/import', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeEach(() => {
    fx = apiFixture();
    http = request(fx.app);
  });
  afterEach(() => fx.close());

  const register = () =>
    http
      .put(`${BASE}/jobs/${JOB}`)
      .send({ tasks: ['a'] })
      .expect(201);
  const importOf = (body: object, jobId = JOB) =>
    http.post(`${BASE}/jobs/${jobId}/snapshots/import`).send(body);
  /** A savepoint directory as Flink writes one: `_metadata` and a state file. */
  const savepointDir = (name = 'savepoint-a1b2c3-0123456789ab') => {
    const dir = join(fx.dir, 'old', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '_metadata'), Buffer.alloc(100, 1));
    writeFileSync(join(dir, 'state-0'), Buffer.alloc(900, 2));
    return dir;
  };

  it('imports a savepoint: 201 with the snapshot and its Location, its size measured; 200 for the same path again', async () => {
    await register();
    const path = savepointDir();
    const res = await importOf({ externalPath: path, kind: 'SAVEPOINT' });
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`${BASE}/jobs/${JOB}/snapshots/1`);
    expect(res.body).toMatchObject({
      jobId: JOB,
      snapshotId: 1,
      kind: 'SAVEPOINT',
      status: 'COMPLETED',
      imported: true,
      triggerType: 'MANUAL',
      formatType: 'CANONICAL',
      stateSize: 1000,
      checkpointedSize: 1000, // all of it written for it, as Flink's checkpointed_size says of a savepoint
      externalPath: path,
      restorePath: path,
      duplicate: false,
    });
    const again = await importOf({
      externalPath: `file://${path}/`,
      kind: 'SAVEPOINT',
      formatType: 'NATIVE',
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ snapshotId: 1, duplicate: true, formatType: 'CANONICAL' });
    const shown = await http.get(`${BASE}/jobs/${JOB}/snapshots/1`).expect(200);
    expect(shown.body).toMatchObject({ imported: true, status: 'COMPLETED' });
  });

  it('imports a retained checkpoint, and refuses its path as another snapshot’s afterwards (409)', async () => {
    await register();
    const path = join(fx.dir, 'chk', JOB, 'chk-7');
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, '_metadata'), 'x');
    const res = await importOf({ externalPath: path, kind: 'CHECKPOINT' });
    expect(res.status).toBe(201);
    expect(res.body.properties).toMatchObject({ discardSubsumed: false, discardFinished: false });
    mkdirSync(join(path, 'sub'));
    writeFileSync(join(path, 'sub', '_metadata'), 'x');
    expectProblem(
      await importOf({ externalPath: join(path, 'sub'), kind: 'SAVEPOINT' }),
      409,
      'body.externalPath',
      'overlaps-catalogued',
    );
  });

  it.each([
    ['outside the storage roots', () => '/etc', 'within-storage-roots'],
    ['where nothing lies', (dir: string) => join(dir, 'missing'), 'exists'],
    ['an empty directory', (dir: string) => (mkdirSync(join(dir, 'empty')), join(dir, 'empty')), 'exists'],
    [
      'a directory without _metadata',
      (dir: string) => {
        mkdirSync(join(dir, 'nometa'));
        writeFileSync(join(dir, 'nometa', 'state-0'), 'x');
        return join(dir, 'nometa');
      },
      'has-metadata',
    ],
    ['a file', (dir: string) => (writeFileSync(join(dir, 'file'), 'x'), join(dir, 'file')), 'has-metadata'],
  ])('refuses a path %s: 400 naming body.externalPath', async (_what, pathOf, rule) => {
    await register();
    const res = await importOf({ externalPath: pathOf(fx.dir), kind: 'SAVEPOINT' });
    expectProblem(res, 400, 'body.externalPath', rule);
    expect((await http.get(`${BASE}/jobs/${JOB}`)).body.counts.completed).toBe(0);
  });

  it('refuses a savepoint named through a symbolic link, or whose _metadata is one (400, nothing imported)', async () => {
    await register();
    const real = savepointDir();
    const linked = join(fx.dir, 'old', 'savepoint-a1b2c3-linked000000');
    symlinkSync(real, linked);
    expectProblem(
      await importOf({ externalPath: linked, kind: 'SAVEPOINT' }),
      400,
      'body.externalPath',
      'within-storage-roots',
    );
    const odd = savepointDir('savepoint-a1b2c3-odd000000000');
    const elsewhere = join(fx.dir, 'elsewhere-metadata');
    writeFileSync(elsewhere, Buffer.alloc(100, 1));
    // A link where Flink's `_metadata` should be: the storage refuses it, a 400 naming the field, not a 500.
    rmSync(join(odd, '_metadata'));
    symlinkSync(elsewhere, join(odd, '_metadata'));
    const res = await importOf({ externalPath: odd, kind: 'SAVEPOINT' });
    expectProblem(res, 400, 'body.externalPath', 'within-storage-roots');
    expect(res.body.detail).toMatch(/passes through a symbolic link/);
    expect((await http.get(`${BASE}/jobs/${JOB}`)).body.counts.completed).toBe(0);
  });

  it('refuses a directory holding more than one snapshot (400 one-snapshot, nothing imported): its discard would delete them all', async () => {
    await register();
    const holding = (inside: string) => {
      const dir = join(fx.dir, 'held', `holding-${inside.replace(/\W/g, '')}`);
      mkdirSync(join(dir, inside), { recursive: true });
      writeFileSync(join(dir, '_metadata'), Buffer.alloc(10, 1)); // made to look like one
      writeFileSync(join(dir, inside, 'x'), Buffer.alloc(5, 1));
      return dir;
    };
    const other = 'b'.repeat(32);
    const cases = [
      [holding(`${other}/chk-3`), `/${other}/chk-3/x`], // a checkpoint directory's parent: other jobs' areas
      [holding(`${other}/shared`), `/${other}/shared/x`],
      [holding('savepoint-bbbbbb-0123456789ab'), '/savepoint-bbbbbb-0123456789ab/x'],
    ];
    // A savepoint directory's parent, made to look like one: the savepoints' own `_metadata` are inside.
    const parent = join(savepointDir(), '..');
    writeFileSync(join(parent, '_metadata'), Buffer.alloc(10, 1));
    cases.push([parent, '/savepoint-a1b2c3-0123456789ab/']);
    for (const [path, found] of cases) {
      const res = await importOf({ externalPath: path, kind: 'SAVEPOINT' });
      expectProblem(res, 400, 'body.externalPath', 'one-snapshot');
      expect(res.body.detail).toContain(`${path}${found}`);
    }
    expect((await http.get(`${BASE}/jobs/${JOB}`)).body.counts.completed).toBe(0);
    // One snapshot's directory with a subdirectory of its own state (no snapshot, no Flink layout) imports.
    const nested = savepointDir('savepoint-a1b2c3-000000000001');
    mkdirSync(join(nested, 'op-1'));
    writeFileSync(join(nested, 'op-1', 'part-0'), Buffer.alloc(24, 1));
    expect((await importOf({ externalPath: nested, kind: 'SAVEPOINT' })).body).toMatchObject({
      stateSize: 1024,
    });
  });

  it('refuses a body without kind or path (400), and an unknown job (404)', async () => {
    await register();
    expectProblem(await importOf({ externalPath: savepointDir() }), 400, 'body.kind');
    expectProblem(await importOf({ kind: 'SAVEPOINT' }), 400, 'body.externalPath');
    expectProblem(
      await importOf({ externalPath: savepointDir(), kind: 'SAVEPOINT' }, 'ffffffffffffffffffffffffffffffff'),
      404,
      'path.jobId',
    );
  });

  it('answers a job in another namespace as not found, before looking at the path; operator scope needed', async () => {
    const admin = newToken();
    const elsewhere = newToken();
    const runtime = newToken();
    const tokens = parseTokenList(
      [
        tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, admin),
        tokenLine({ name: 'elsewhere', scopes: ['operator'], namespaces: ['elsewhere'] }, elsewhere),
        tokenLine({ name: 'runtime', scopes: ['runtime'], namespaces: '*' }, runtime),
      ].join('\n'),
    );
    const secured = apiFixture({ tokens });
    try {
      const api = request(secured.app);
      const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
      await api
        .put(`${BASE}/jobs/${JOB}`)
        .set(bearer(admin))
        .send({ tasks: ['a'] })
        .expect(201);
      const url = `${BASE}/jobs/${JOB}/snapshots/import`;
      const missing = { externalPath: join(secured.dir, 'missing'), kind: 'SAVEPOINT' };
      expectProblem(await api.post(url).set(bearer(elsewhere)).send(missing), 404, 'path.jobId');
      expect((await api.post(url).set(bearer(runtime)).send(missing)).status).toBe(403);
      expectProblem(await api.post(url).set(bearer(admin)).send(missing), 400, 'body.externalPath', 'exists');
    } finally {
      await secured.close();
    }
  });
  it('refuses a checkpoint laid out under another catalogued job’s id (409): either discard would delete it under the other', async () => {
    await register();
    const other = 'f'.repeat(32);
    await http
      .put(`${BASE}/jobs/${other}`)
      .send({ tasks: ['a'] })
      .expect(201);
    const theirs = savepointDir(join('..', 'chk', other, 'chk-5'));
    const res = await importOf({ externalPath: theirs, kind: 'CHECKPOINT' });
    expectProblem(res, 409, 'body.externalPath', 'another-jobs-checkpoint');
    expect(res.body.detail).toContain(`job ${other}`);
    // A previous run's checkpoint, under a job id the catalogue does not hold, imports.
    const previousRun = savepointDir(join('..', 'chk', 'e'.repeat(32), 'chk-5'));
    expect((await importOf({ externalPath: previousRun, kind: 'CHECKPOINT' })).status).toBe(201);
  });
});
