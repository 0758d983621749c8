import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FlinkTestServer } from './flink/server';
import { sleep, until } from './support/wait';
import {
  client,
  runCli,
  startOutcome,
  startService,
  testPrefix,
  type RunningService,
} from './support/service';
import { deleteKeys } from './support/redis';
import { e2eStore } from './support/stores';
import { ROOT_CLAIM_FILE } from '@snapcat/storage';
import { RedisDeletionFence } from '@snapcat/read-model';
import IORedis from 'ioredis';
import { namespaceOf } from './support/namespace';

const STORE = process.env.SNAPCAT_E2E_STORE ?? 'sqlite';

let counter = 0;
const newJobId = () =>
  `${(Date.now() + counter++).toString(16).padStart(16, '0')}${'cd'.repeat(8)}`.slice(0, 32);

/** Writes a file of `size` bytes (creating its directory), as a task manager uploads state. */
function put(path: string, size: number): { path: string; sizeBytes: number } {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.alloc(size, 1));
  return { path, sizeBytes: size };
}

describe(`shared state on real files (${STORE} store): incremental checkpoints never lose a file a live snapshot needs`, () => {
  let dir: string;
  let root: string;
  let service: RunningService;
  let api: ReturnType<typeof client>;
  let store: Awaited<ReturnType<typeof e2eStore>>;
  const prefix = testPrefix('shared');
  /** Where the test plays the other side of decision 0047's fence, as the workers or the API would. */
  const fenceRedis = new IORedis('redis://127.0.0.1:6379', { lazyConnect: true });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-shared-'));
    root = join(dir, 'root');
    store = await e2eStore(dir);
    service = await startService({
      SNAPCAT_EVENT_STORE: store.connection,
      SNAPCAT_STORAGE_ROOTS: root,
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_DISCARD_BACKOFF_MS: '200',
    });
    api = client(service.url);
  });
  afterAll(async () => {
    await service.stop('SIGKILL');
    await store.close();
    fenceRedis.disconnect();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const snapshot = async (jobId: string, id: number) =>
    (await api.get(`/jobs/${jobId}/snapshots/${id}`)).body;
  const discarded = (jobId: string, id: number) =>
    until(
      async () => {
        const s = await snapshot(jobId, id);
        return s.status === 'DISCARDED' ? s : undefined;
      },
      15_000,
      `snapshot ${id} DISCARDED`,
    );
  const checkpoint = async (
    jobId: string,
    stateHandles: { path: string; sizeBytes: number; shared?: boolean }[],
  ) => {
    const t = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
    expect(t.status).toBe(202);
    const id = t.body.snapshotId as number;
    const ack = await api.post(`/jobs/${jobId}/snapshots/${id}/acks`, {
      taskId: 'a',
      stateSize: 1,
      stateHandles,
    });
    expect(ack.body).toMatchObject({ result: 'SUCCESS', snapshotStatus: 'COMPLETED' });
    return id;
  };
  const graphql = async (query: string) => {
    const res = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    const body = (await res.json()) as { data: Record<string, unknown>; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data;
  };

  /** Registers jobs with one task and one retained checkpoint (the next one subsumes it). */
  const register = async (...jobIds: string[]) => {
    for (const jobId of jobIds) {
      const registered = await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained: 1 } });
      expect([jobId, registered.status]).toEqual([jobId, 201]);
    }
  };
  /** The job's events once one of `type` is among them (the workers recorded it). */
  const recorded = (jobId: string, type: string) =>
    until(
      async () => {
        const all = (await api.get(`/jobs/${jobId}/events?limit=1000`)).body.events as { type: string }[];
        return all.some((e) => e.type === type) ? all : undefined;
      },
      15_000,
      `${type} recorded`,
    );
  /** Decision 0032: the process manager released the job's hold of a snapshot another job restored from. */
  const holdReleased = (jobId: string) => recorded(jobId, 'SnapshotHoldReleased');

  it('subsumption, persist, a user discard and a stray ack keep every shared file a live checkpoint needs', async () => {
    const jobId = newJobId();
    await register(jobId);
    const base = join(root, 'checkpoints', jobId); // Flink's layout: shared/ beside chk-N
    const s1 = put(join(base, 'shared', 's1'), 1000);
    const p1 = put(join(base, 'chk-1', 'p1'), 11);
    expect(await checkpoint(jobId, [{ ...s1, shared: true }, p1])).toBe(1);
    const s2 = put(join(base, 'shared', 's2'), 2000);
    const p2 = put(join(base, 'chk-2', 'p2'), 22);
    expect(await checkpoint(jobId, [{ ...s1, shared: true }, { ...s2, shared: true }, p2])).toBe(2);

    // chk 2 subsumed chk 1: only chk 1's private file went, and the bytes say so.
    const first = await discarded(jobId, 1);
    expect(existsSync(s1.path)).toBe(true);
    expect(existsSync(p1.path)).toBe(false);
    expect(existsSync(join(base, 'chk-1'))).toBe(false);
    expect(first.discard.bytesReclaimed).toBe(11);

    const persisted = await api.post(`/jobs/${jobId}/snapshots/2/persist`, {});
    expect(persisted.status).toBe(200);
    const manifest = await until(
      async () => (await snapshot(jobId, 2)).manifestPath ?? undefined,
      15_000,
      'manifest of chk 2',
    );
    const p3 = put(join(base, 'chk-3', 'p3'), 33);
    expect(await checkpoint(jobId, [{ ...s2, shared: true }, p3])).toBe(3);
    const s4 = put(join(base, 'shared', 's4'), 4000);
    const p4 = put(join(base, 'chk-4', 'p4'), 44);
    // Unmarked handles: the layout (shared/) tells the views, the location decides the references.
    expect(await checkpoint(jobId, [s2, s4, p4])).toBe(4);
    await discarded(jobId, 3);
    expect(existsSync(s1.path)).toBe(true);
    expect(existsSync(s2.path)).toBe(true);
    expect(existsSync(p3.path)).toBe(false);

    // The user discards the persisted chk 2: s1 was its alone, s2 is chk 4's too.
    const manifestBytes = statSync(manifest).size;
    expect((await api.post(`/jobs/${jobId}/snapshots/2/discard`, {})).status).toBe(202);
    const second = await discarded(jobId, 2);
    expect(existsSync(s1.path)).toBe(false);
    expect(existsSync(s2.path)).toBe(true);
    expect(existsSync(p2.path)).toBe(false);
    expect(second.discard.bytesReclaimed).toBe(1000 + 22 + manifestBytes);

    // A stray acknowledgement (unknown snapshot) carrying s2 and garbage of its own.
    const junk = put(join(base, 'chk-9', 'junk'), 99);
    const stray = await api.post(`/jobs/${jobId}/snapshots/9/acks`, {
      taskId: 'a',
      stateHandles: [{ ...s2, shared: true }, junk],
    });
    expect(stray.body.result).toBe('UNKNOWN');
    await until(async () => (existsSync(junk.path) ? undefined : true), 15_000, 'stray junk deleted');
    type Recorded = { type: string; data: { snapshotId?: number } };
    const events = await until(
      async () => {
        const all = (await api.get(`/jobs/${jobId}/events?limit=1000`)).body.events as Recorded[];
        return all.some((e) => e.type === 'StrayStateDeleted') ? all : undefined;
      },
      15_000,
      'StrayStateDeleted recorded',
    );
    expect(existsSync(s2.path)).toBe(true);
    expect(existsSync(s4.path)).toBe(true);
    expect(existsSync(p4.path)).toBe(true);

    // The audit trail explains every deletion: what the discard of chk 2 kept, and why.
    const request = events.find((e) => e.type === 'SnapshotDiscardRequested' && e.data.snapshotId === 2);
    expect(request?.data).toMatchObject({
      stateHandles: expect.arrayContaining([expect.objectContaining({ path: s1.path })]),
      kept: [{ path: s2.path, reason: 'REFERENCED', snapshots: [4] }],
    });

    // Views: shared and private sizes per snapshot, what the live snapshots reference in all.
    expect(await snapshot(jobId, 4)).toMatchObject({ sharedStateSize: 6000, privateStateSize: 44 });
    const data = await until(
      async () => {
        const d = (await graphql(
          `{ job(id: "${jobId}") { referencedStateSize referencedFiles
             snapshots(first: 1) { edges { node { id sharedStateSize privateStateSize } } } } }`,
        )) as { job: { referencedStateSize: number; snapshots: { edges: { node: { id: number } }[] } } };
        return d.job.referencedStateSize === 6044 ? d : undefined;
      },
      10_000,
      'read model with the registry sizes',
    );
    expect(data.job).toMatchObject({
      referencedStateSize: 6044, // s2, s4 and p4, each once
      referencedFiles: 3,
      snapshots: { edges: [{ node: { id: 4, sharedStateSize: 6000, privateStateSize: 44 } }] },
    });
  }, 90_000);
  it('a file outside any Flink layout that two jobs reference is deleted by neither’s discard or stray cleanup until the last reference goes', async () => {
    const [first, second] = [newJobId(), newJobId()];
    await register(first, second);
    // A client's own layout: no `<jobId>/shared` nor `savepoint-<6>-…` names whose the file is.
    const common = put(join(root, 'data', 'common', 'shared', 'f'), 700);
    const own = (jobId: string, name: string) => put(join(root, 'checkpoints', jobId, name, 'p'), 5);
    expect(await checkpoint(first, [{ ...common, shared: true }, own(first, 'chk-1')])).toBe(1);
    expect(await checkpoint(second, [{ ...common, shared: true }, own(second, 'chk-1')])).toBe(1);

    // The first job's chk 1 is subsumed: its registry alone would delete the file the second's chk 1 needs.
    expect(await checkpoint(first, [own(first, 'chk-2')])).toBe(2);
    const firstDiscard = await discarded(first, 1);
    expect(existsSync(common.path)).toBe(true);
    expect(existsSync(join(root, 'checkpoints', first, 'chk-1'))).toBe(false);
    expect(firstDiscard.discard.bytesReclaimed).toBe(5);

    // A stray acknowledgement of the first job naming the file: its cleanup keeps it too.
    const junk = put(join(root, 'data', 'junk', 'j'), 9);
    const stray = await api.post(`/jobs/${first}/snapshots/7/acks`, {
      taskId: 'a',
      stateHandles: [{ ...common, shared: true }, junk],
    });
    expect(stray.body.result).toBe('UNKNOWN');
    await until(async () => (existsSync(junk.path) ? undefined : true), 15_000, 'stray junk deleted');
    await recorded(first, 'StrayStateDeleted');
    expect(existsSync(common.path)).toBe(true);

    // The last reference goes with the second job's chk 1: its discard deletes the file.
    expect(await checkpoint(second, [own(second, 'chk-2')])).toBe(2);
    const secondDiscard = await discarded(second, 1);
    expect(existsSync(common.path)).toBe(false);
    expect(secondDiscard.discard.bytesReclaimed).toBe(705);
  }, 90_000);
  it('an acknowledgement naming a loose file meets another job’s deletion of it in the fence: refused while the deletion is under way, and waited for by a deletion that begins while it is recorded (decision 0047)', async () => {
    const [first, second] = [newJobId(), newJobId()];
    await register(first, second);
    const fence = new RedisDeletionFence(fenceRedis, await namespaceOf(store.connection, prefix));
    const common = put(join(root, 'data', 'fenced', 'shared', 'f'), 300);
    const own = (jobId: string, name: string) => put(join(root, 'checkpoints', jobId, name, 'p'), 5);

    // The first job's discard of the directory the file lies in is under way (it marked it, as the workers do).
    const deleting = await fence.deleting(first, [join(root, 'data', 'fenced')]);
    const t = await api.post(`/jobs/${second}/snapshots`, { kind: 'CHECKPOINT' });
    const ack = {
      taskId: 'a',
      stateSize: 1,
      stateHandles: [own(second, 'chk-1'), { ...common, shared: true }],
    };
    const refused = await api.post(`/jobs/${second}/snapshots/${t.body.snapshotId}/acks`, ack);
    expect(refused.status).toBe(409);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({ field: 'body.stateHandles[1].path', rule: 'being-deleted' }),
    ]);
    expect((await snapshot(second, t.body.snapshotId)).status).toBe('PENDING'); // nothing recorded
    await deleting.release();
    const accepted = await api.post(`/jobs/${second}/snapshots/${t.body.snapshotId}/acks`, ack);
    expect(accepted.body).toMatchObject({ result: 'SUCCESS', snapshotStatus: 'COMPLETED' });
    // The reservation went with the answer: a deletion of the first job that begins now does not meet it.
    const unheld = await fence.deleting(first, [common.path]);
    expect(unheld.conflicts.size).toBe(0);
    await unheld.release();

    // The other way round: the first job acknowledges the file, and while the second job's acknowledgement
    // of it is being recorded (reserved, not yet appended nor projected), the first job's discard begins: it
    // waits for that answer, as nothing in the log says yet whether the second job will reference the file.
    const other = put(join(root, 'data', 'fenced', 'other', 'g'), 70);
    expect(await checkpoint(first, [{ ...other, shared: true }, own(first, 'chk-1')])).toBe(1);
    const recording = await fence.recording(second, [other.path]);
    expect(await checkpoint(first, [own(first, 'chk-2')])).toBe(2);
    await sleep(1_500); // the discard's turns meanwhile (one a second) each meet the reservation
    expect((await snapshot(first, 1)).status).not.toBe('DISCARDED');
    expect(existsSync(join(root, 'checkpoints', first, 'chk-1'))).toBe(true); // nothing deleted meanwhile
    // The second job's acknowledgement lands (retried while a turn of the discard holds its mark: 409), then
    // its reservation goes: the discard's next turn sees the reference, and keeps the file.
    const t2 = await api.post(`/jobs/${second}/snapshots`, { kind: 'CHECKPOINT' });
    const acked = await until(
      async () => {
        const res = await api.post(`/jobs/${second}/snapshots/${t2.body.snapshotId}/acks`, {
          taskId: 'a',
          stateHandles: [{ ...other, shared: true }],
        });
        return res.status === 409 ? undefined : res;
      },
      15_000,
      'the second job’s acknowledgement recorded',
    );
    expect(acked.body).toMatchObject({ result: 'SUCCESS', snapshotStatus: 'COMPLETED' });
    await recording.release();
    const done = await discarded(first, 1);
    expect(existsSync(other.path)).toBe(true);
    expect(existsSync(join(root, 'checkpoints', first, 'chk-1'))).toBe(false);
    expect(done.discard.bytesReclaimed).toBe(5);
  }, 60_000);
  it('an import meets another job’s deletion of its directory in the fence: refused while the deletion is under way, and waited for by a deletion that begins while it is recorded (decision 0047)', async () => {
    const [first, second] = [newJobId(), newJobId()];
    await register(first, second);
    const fence = new RedisDeletionFence(fenceRedis, await namespaceOf(store.connection, prefix));
    const nightly = join(root, 'keep', 'fenced-nightly');
    put(join(nightly, '_metadata'), 10);
    const importInto = (jobId: string) =>
      api.post(`/jobs/${jobId}/snapshots/import`, { externalPath: nightly, kind: 'SAVEPOINT' });

    // The first job's discard of the directory is under way (it marked it, as the workers do); nothing in the
    // read model says so any more (a snapshot being discarded is no longer live there).
    const deleting = await fence.deleting(first, [nightly]);
    const refused = await importInto(second);
    expect(refused.status).toBe(409);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({ field: 'body.externalPath', rule: 'being-deleted' }),
    ]);
    await deleting.release();

    // The other way round: while the second job's import of it is being recorded, the first job's import of
    // the same directory is discarded: the discard waits for that answer. The import never comes (the second
    // job gave up): the discard then deletes the directory, which nothing else holds.
    const imported = await importInto(first);
    expect(imported.status).toBe(201);
    const recording = await fence.recording(second, [nightly]);
    const id = imported.body.snapshotId as number;
    expect((await api.post(`/jobs/${first}/snapshots/${id}/discard`, {})).status).toBe(202);
    await sleep(1_500);
    expect((await snapshot(first, id)).status).not.toBe('DISCARDED');
    expect(existsSync(join(nightly, '_metadata'))).toBe(true);
    await recording.release();
    const done = await discarded(first, id);
    expect(existsSync(join(nightly, '_metadata'))).toBe(false);
    expect(done.discard.bytesReclaimed).toBe(10);
  }, 60_000);
  it('an import of a directory another job restored from by its path keeps, at its discard, the files that job’s live checkpoints name (decision 0046)', async () => {
    const [restoredJob, importer] = [newJobId(), newJobId()];
    await register(restoredJob, importer);
    // A savepoint of a run no catalogue holds, kept at a path of the user's choosing.
    const nightly = join(root, 'keep', 'nightly');
    const metadata = put(join(nightly, '_metadata'), 10);
    const inherited = put(join(nightly, 'sst-1'), 300);
    const restored = await api.post(`/jobs/${restoredJob}/restores`, {
      externalPath: nightly,
      claimMode: 'LEGACY',
    });
    expect(restored.status).toBe(201);
    await checkpoint(restoredJob, [inherited, put(join(root, 'checkpoints', restoredJob, 'chk-1', 'p'), 4)]);
    // Uncatalogued until now: the import is accepted, and its discard deletes its directory.
    const imported = await api.post(`/jobs/${importer}/snapshots/import`, {
      externalPath: nightly,
      kind: 'SAVEPOINT',
    });
    expect(imported.status).toBe(201);
    const id = imported.body.snapshotId as number;
    expect((await api.post(`/jobs/${importer}/snapshots/${id}/discard`, {})).status).toBe(202);
    const done = await discarded(importer, id);
    expect(existsSync(inherited.path)).toBe(true);
    expect(existsSync(metadata.path)).toBe(false);
    expect(done.discard.bytesReclaimed).toBe(10);
  }, 60_000);
  it('a job registered under the id of a run another job imported from never deletes that import with its own discards', async () => {
    const [run, importer] = [newJobId(), newJobId()];
    expect((await api.put(`/jobs/${importer}`, { tasks: ['a'] })).status).toBe(201);
    // An uncatalogued run's retained checkpoint, imported into another job.
    const adopted = join(root, 'checkpoints', run, 'chk-1');
    const metadata = put(join(adopted, '_metadata'), 10);
    const imported = await api.post(`/jobs/${importer}/snapshots/import`, {
      externalPath: adopted,
      kind: 'CHECKPOINT',
    });
    expect(imported.status).toBe(201);
    // The run is registered afterwards under its id: its own chk-1 is the import's directory.
    await register(run);
    expect(await checkpoint(run, [put(join(adopted, 'p1'), 11)])).toBe(1);
    expect(await checkpoint(run, [put(join(root, 'checkpoints', run, 'chk-2', 'p2'), 22)])).toBe(2);
    await discarded(run, 1);
    expect(existsSync(metadata.path)).toBe(true);
    expect(await snapshot(importer, imported.body.snapshotId)).toMatchObject({ status: 'COMPLETED' });
  }, 60_000);
  it('an import’s discard keeps the checkpoint a job registered later under that id wrote into the same directory', async () => {
    const [run, importer] = [newJobId(), newJobId()];
    expect((await api.put(`/jobs/${importer}`, { tasks: ['a'] })).status).toBe(201);
    const adopted = join(root, 'checkpoints', run, 'chk-1');
    put(join(adopted, '_metadata'), 10);
    const imported = await api.post(`/jobs/${importer}/snapshots/import`, {
      externalPath: adopted,
      kind: 'CHECKPOINT',
    });
    expect(imported.status).toBe(201);
    expect((await api.put(`/jobs/${run}`, { tasks: ['a'] })).status).toBe(201);
    const own = put(join(adopted, 'p1'), 11);
    expect(await checkpoint(run, [own])).toBe(1); // the run's own chk-1, live
    expect(
      (await api.post(`/jobs/${importer}/snapshots/${imported.body.snapshotId}/discard`, {})).status,
    ).toBe(202);
    await discarded(importer, imported.body.snapshotId);
    expect(existsSync(own.path)).toBe(true);
    expect(existsSync(join(adopted, '_metadata'))).toBe(true);
    expect(await snapshot(run, 1)).toMatchObject({ status: 'COMPLETED' });
  }, 60_000);
  it('an import whose directory holds a job’s checkpoints written since (registered there, or under the id it names) keeps them at its discard', async () => {
    const [importer, inside, named] = [newJobId(), newJobId(), newJobId()];
    expect((await api.put(`/jobs/${importer}`, { tasks: ['a'] })).status).toBe(201);
    // A job registered with its checkpoints in a directory that another job imports before the job writes.
    const imported = join(root, 'imports', `x-${importer}`);
    expect(
      (await api.put(`/jobs/${inside}`, { tasks: ['a'], storage: { checkpointDir: imported } })).status,
    ).toBe(201);
    put(join(imported, '_metadata'), 10);
    const first = await api.post(`/jobs/${importer}/snapshots/import`, {
      externalPath: imported,
      kind: 'SAVEPOINT',
    });
    expect(first.status).toBe(201);
    const insideFiles = [
      put(join(imported, inside, 'chk-1', '_metadata'), 5),
      put(join(imported, inside, 'shared', 's'), 6),
    ];
    expect(await checkpoint(inside, insideFiles)).toBe(1);
    // An uncatalogued run's area, imported; the job of that id registered afterwards checkpoints into it.
    const area = join(root, 'checkpoints', named);
    put(join(area, '_metadata'), 10);
    const second = await api.post(`/jobs/${importer}/snapshots/import`, {
      externalPath: area,
      kind: 'SAVEPOINT',
    });
    expect(second.status).toBe(201);
    expect((await api.put(`/jobs/${named}`, { tasks: ['a'] })).status).toBe(201);
    const own = [put(join(area, 'chk-1', '_metadata'), 7), put(join(area, 'shared', 's'), 8)];
    expect(await checkpoint(named, own)).toBe(1);

    for (const imp of [first, second]) {
      expect((await api.post(`/jobs/${importer}/snapshots/${imp.body.snapshotId}/discard`, {})).status).toBe(
        202,
      );
      await discarded(importer, imp.body.snapshotId);
    }
    for (const file of [...insideFiles, ...own])
      expect([file.path, existsSync(file.path)]).toEqual([file.path, true]);
    // The imports' own files went.
    expect(existsSync(join(imported, '_metadata'))).toBe(false);
    expect(existsSync(join(area, '_metadata'))).toBe(false);
  }, 60_000);
  it('an adopted retained checkpoint keeps its area’s shared files, which its _metadata names: not deleted by the job’s subsumptions nor a stray cleanup', async () => {
    const jobId = newJobId();
    await register(jobId);
    // The previous run under the same id (a fixed job id) left chk-5; its metadata names shared/x-from-run-1.
    const area = join(root, 'checkpoints', jobId);
    put(join(area, 'chk-5', '_metadata'), 10);
    const fromRun1 = put(join(area, 'shared', 'x-from-run-1'), 100);
    const adopted = await api.post(`/jobs/${jobId}/snapshots/import`, {
      externalPath: join(area, 'chk-5'),
      kind: 'CHECKPOINT',
    });
    expect(adopted.status).toBe(201);
    // The new run names the inherited file in one checkpoint, then no more: it would be deleted with it.
    const a = await checkpoint(jobId, [{ ...fromRun1, shared: true }, put(join(area, `chk-${10}`, 'p'), 1)]);
    const b = await checkpoint(jobId, [put(join(area, `chk-${11}`, 'p'), 1)]);
    expect(b).toBeGreaterThan(a);
    await discarded(jobId, a);
    expect(existsSync(fromRun1.path)).toBe(true);
    // A stray acknowledgement naming it is cleaned up without it.
    const stray = await api.post(`/jobs/${jobId}/snapshots/42/acks`, {
      taskId: 'a',
      stateHandles: [fromRun1],
    });
    expect(stray.body.result).toBe('UNKNOWN');
    await recorded(jobId, 'StrayStateDeleted');
    expect(existsSync(fromRun1.path)).toBe(true);
    expect(await snapshot(jobId, adopted.body.snapshotId)).toMatchObject({ status: 'COMPLETED' });
  }, 60_000);
  it('a job restored from another job’s checkpoint never deletes the files it inherited, and holds that checkpoint while it uses them (decisions 0031, 0032)', async () => {
    const [jobA, jobB] = [newJobId(), newJobId()];
    await register(jobA, jobB);
    const areaA = join(root, 'checkpoints', jobA);
    const areaB = join(root, 'checkpoints', jobB);
    const inherited = put(join(areaA, 'shared', 'sst-a'), 500);
    expect(await checkpoint(jobA, [{ ...inherited, shared: true }, put(join(areaA, 'chk-1', 'p'), 5)])).toBe(
      1,
    );

    // B starts from A's checkpoint, claimed: its incremental checkpoints report A's file until compaction.
    const restored = await api.post(`/jobs/${jobB}/restores`, {
      externalPath: `file://${join(areaA, 'chk-1', '_metadata')}`, // as Flink takes it, too
      claimMode: 'CLAIM',
    });
    expect(restored.status).toBe(201);
    // B's ids continue above the checkpoint it restored from, as Flink's counter does: its first is 2.
    expect(restored.body.nextSnapshotId).toBe(2);
    const first = await checkpoint(jobB, [{ ...inherited, shared: true }, put(join(areaB, 'chk-2', 'p'), 6)]);

    // Decision 0032: while B uses A's files, A's checkpoint is held: not subsumed by A's next one, and a
    // user's discard of it is refused; the snapshot names B as its holder.
    expect(await checkpoint(jobA, [put(join(areaA, 'chk-2', 'p'), 8)])).toBe(2);
    expect(await snapshot(jobA, 1)).toMatchObject({ status: 'COMPLETED', heldBy: [jobB], hiddenHolders: 0 });
    const refused = await api.post(`/jobs/${jobA}/snapshots/1/discard`, {});
    expect(refused.status).toBe(409);
    expect(refused.body.errors[0]).toMatchObject({ rule: 'held-by-restore' });
    expect(refused.body.detail).toContain('held by 1 job');

    // A stray acknowledgement to B naming A's file (accepted while the hold stands) does not delete it either.
    const stray = await api.post(`/jobs/${jobB}/snapshots/99/acks`, {
      taskId: 'a',
      stateHandles: [inherited],
    });
    expect(stray.body.result).toBe('UNKNOWN');

    const own = put(join(areaB, 'shared', 'sst-b'), 700);
    await checkpoint(jobB, [{ ...own, shared: true }, put(join(areaB, 'chk-3', 'p'), 7)]);
    const subsumed = await discarded(jobB, first);
    expect(subsumed.discard.bytesReclaimed).toBe(6);
    expect(existsSync(inherited.path)).toBe(true);
    expect(existsSync(join(areaB, 'chk-2'))).toBe(false);

    type Recorded = { type: string; data: { snapshotId?: number; kept?: unknown[] } };
    const events = await until(
      async () => {
        const all = (await api.get(`/jobs/${jobB}/events?limit=1000`)).body.events as Recorded[];
        return all.some((e) => e.type === 'StrayAcknowledgementReceived') ? all : undefined;
      },
      15_000,
      'stray acknowledgement recorded',
    );
    const keptOther = [{ path: inherited.path, reason: 'OTHER_JOB', snapshots: [] }];
    const request = events.find((e) => e.type === 'SnapshotDiscardRequested' && e.data.snapshotId === first);
    expect(request?.data.kept).toEqual(keptOther);
    // The stray came while B's first checkpoint named the file too: kept as referenced by it.
    expect(events.find((e) => e.type === 'StrayAcknowledgementReceived')?.data).toMatchObject({
      cleanup: [],
      kept: [{ path: inherited.path, reason: 'REFERENCED', snapshots: [first] }],
    });
    expect(existsSync(inherited.path)).toBe(true);
    expect(await snapshot(jobA, 1)).toMatchObject({ status: 'COMPLETED' });

    // B's live checkpoints use none of A's files now: the process manager released the hold, and A's next
    // checkpoint subsumes its first, whose files nothing needs any more.
    await holdReleased(jobA);
    // With no hold left, B naming A's file again is refused: A would delete it under B's checkpoint.
    const late = await api.post(`/jobs/${jobB}/snapshots`, { kind: 'CHECKPOINT' });
    const named = await api.post(`/jobs/${jobB}/snapshots/${late.body.snapshotId}/acks`, {
      taskId: 'a',
      stateHandles: [{ ...inherited, shared: true }],
    });
    expect([named.status, named.body.errors?.[0]?.rule]).toEqual([409, 'restore-recorded']);
    expect(await checkpoint(jobA, [put(join(areaA, 'chk-3', 'p'), 9)])).toBe(3);
    await discarded(jobA, 1);
    expect(existsSync(inherited.path)).toBe(false);
  }, 60_000);

  it('a job restored from a second job before it let go of the first releases the first once nothing of its earlier run is live (decision 0032)', async () => {
    const [jobA, jobB, jobC] = [newJobId(), newJobId(), newJobId()];
    for (const [jobId, numRetained] of [
      [jobA, 2],
      [jobB, 1],
      [jobC, 1],
    ] as const) {
      const res = await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained } });
      expect(res.status).toBe(201);
    }
    const area = (jobId: string) => join(root, 'checkpoints', jobId);
    const fromA = put(join(area(jobA), 'shared', 'sst-a'), 500);
    const fromC = put(join(area(jobC), 'shared', 'sst-c'), 300);
    expect(await checkpoint(jobA, [{ ...fromA, shared: true }, put(join(area(jobA), 'chk-1', 'p'), 5)])).toBe(
      1,
    );
    expect(await checkpoint(jobA, [put(join(area(jobA), 'chk-2', 'p'), 5)])).toBe(2);
    expect(await checkpoint(jobC, [{ ...fromC, shared: true }, put(join(area(jobC), 'chk-1', 'p'), 5)])).toBe(
      1,
    );
    const restore = (from: string) =>
      api.post(`/jobs/${jobB}/restores`, { externalPath: join(area(from), 'chk-1'), claimMode: 'CLAIM' });

    expect((await restore(jobA)).status).toBe(201);
    const inheriting = await checkpoint(jobB, [{ ...fromA, shared: true }]);
    expect(inheriting).toBe(2); // above A's checkpoint 1
    // B is restored again, from C, while its checkpoint of the run from A is live: A's hold stays.
    expect((await restore(jobC)).status).toBe(201);
    const discardFirst = (jobId: string) => api.post(`/jobs/${jobId}/snapshots/1/discard`, {});
    const refused = await discardFirst(jobA);
    expect([refused.status, refused.body.errors?.[0]?.rule]).toEqual([409, 'held-by-restore']);
    // B's first checkpoint from C uses C's file only and subsumes the one that used A's.
    await checkpoint(jobB, [{ ...fromC, shared: true }]);
    await discarded(jobB, inheriting);
    await holdReleased(jobA);
    const eventsOfC = (await api.get(`/jobs/${jobC}/events?limit=1000`)).body.events as { type: string }[];
    expect(eventsOfC.map((e) => e.type)).toContain('SnapshotHeld');
    expect(eventsOfC.map((e) => e.type)).not.toContain('SnapshotHoldReleased');
    // A's first checkpoint goes now, and with it the file only it needs.
    expect((await discardFirst(jobA)).status).toBe(202);
    await discarded(jobA, 1);
    expect(existsSync(fromA.path)).toBe(false);
    expect(existsSync(fromC.path)).toBe(true);
  }, 60_000);

  it('a job restored from another job’s native savepoint named by fromJobId keeps its files, and that job holds the savepoint while they are used (decisions 0031, 0032)', async () => {
    // newJobId's ids are time-ordered: A's and B's share their first six characters, all that a savepoint's
    // directory names of its job. The restore named A, which tells A's savepoint's files from B's own.
    const [jobA, jobB] = [newJobId(), newJobId()];
    expect(jobA.slice(0, 6)).toBe(jobB.slice(0, 6));
    await register(jobA, jobB);
    const triggered = await api.post(`/jobs/${jobA}/snapshots`, { kind: 'SAVEPOINT', formatType: 'NATIVE' });
    expect(triggered.status).toBe(202);
    const savepointId = triggered.body.snapshotId as number;
    const savepointDir = (await snapshot(jobA, savepointId)).externalPath as string;
    expect(savepointDir).toMatch(new RegExp(`/savepoint-${jobA.slice(0, 6)}-[0-9a-f]{12}$`));
    const inherited = put(join(savepointDir, 'sst-1'), 300);
    const ack = await api.post(`/jobs/${jobA}/snapshots/${savepointId}/acks`, {
      taskId: 'a',
      stateHandles: [inherited],
    });
    expect(ack.body.snapshotStatus).toBe('COMPLETED');
    const areaA = join(root, 'checkpoints', jobA);
    await checkpoint(jobA, [put(join(areaA, `chk-${savepointId + 1}`, 'p'), 3)]); // the savepoint is not A's latest

    const restored = await api.post(`/jobs/${jobB}/restores`, {
      fromJobId: jobA,
      snapshotId: savepointId,
      claimMode: 'LEGACY',
    });
    expect(restored.status).toBe(201);
    expect(restored.body.restorePath).toBe(savepointDir);
    const areaB = join(root, 'checkpoints', jobB);
    const first = await checkpoint(jobB, [inherited, put(join(areaB, 'chk-1', 'p'), 4)]);
    const refused = await api.post(`/jobs/${jobA}/snapshots/${savepointId}/discard`, {});
    expect([refused.status, refused.body.errors?.[0]?.rule]).toEqual([409, 'held-by-restore']);

    // B's compaction: its own files only. Its first checkpoint is subsumed without deleting A's savepoint's
    // file, and the hold is released.
    await checkpoint(jobB, [put(join(areaB, 'shared', 'sst-b'), 7)]);
    const subsumed = await discarded(jobB, first);
    expect(subsumed.discard.bytesReclaimed).toBe(4);
    expect(existsSync(inherited.path)).toBe(true);
    await holdReleased(jobA);
    // R72: without a hold of its own, no job names a file of A's savepoint (A's discard would delete it under
    // the checkpoint that named it): neither B, its hold released, nor a job never restored from it.
    const jobC = newJobId();
    expect((await api.put(`/jobs/${jobC}`, { tasks: ['a'] })).status).toBe(201);
    for (const jobId of [jobB, jobC]) {
      const pending = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
      const named = await api.post(`/jobs/${jobId}/snapshots/${pending.body.snapshotId}/acks`, {
        taskId: 'a',
        stateHandles: [inherited],
      });
      const [problem] = named.body.errors;
      expect([named.status, problem.rule, problem.field]).toEqual([
        409,
        'restore-recorded',
        'body.stateHandles[0].path',
      ]);
    }
    expect((await api.post(`/jobs/${jobA}/snapshots/${savepointId}/discard`, {})).status).toBe(202);
    await discarded(jobA, savepointId);
    expect(existsSync(savepointDir)).toBe(false);
  }, 60_000);
});

describe(`a discard while no read model can say whose snapshots lie where it deletes (${STORE} store, decision 0043)`, () => {
  let dir: string;
  let store: Awaited<ReturnType<typeof e2eStore>>;
  const services: RunningService[] = [];
  const prefix = testPrefix('owners-unknown');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-owners-'));
    store = await e2eStore(dir);
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop('SIGKILL')));
    await store.close();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('waits, deleting nothing and recording no failure, until a projector has indexed the log; then it completes', async () => {
    const root = join(dir, 'root');
    const env = {
      SNAPCAT_EVENT_STORE: store.connection,
      SNAPCAT_STORAGE_ROOTS: root,
      SNAPCAT_QUEUE_PREFIX: prefix,
    };
    services.push(await startService({ ...env, SNAPCAT_PROJECTOR: 'off' }));
    const api = client(services[0]!.url);
    const jobId = newJobId();
    expect(
      (await api.put(`/jobs/${jobId}`, { tasks: ['a'], checkpointing: { numRetained: 1 } })).status,
    ).toBe(201);
    const own = put(join(root, 'checkpoints', jobId, 'chk-1', 'p1'), 11);
    for (const stateHandles of [[own], []]) {
      const t = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
      const ack = await api.post(`/jobs/${jobId}/snapshots/${t.body.snapshotId}/acks`, {
        taskId: 'a',
        stateHandles,
      });
      expect(ack.body).toMatchObject({ snapshotStatus: 'COMPLETED' });
    }
    const events = async () =>
      ((await api.get(`/jobs/${jobId}/events?limit=1000`)).body.events as { type: string }[]).map(
        (e) => e.type,
      );
    await until(
      async () => ((await events()).includes('SnapshotDiscardRequested') ? true : undefined),
      10_000,
      'the discard requested',
    );
    await until(
      async () =>
        services[0]!.logs.some((l) => l.includes('deletions wait for the read model')) ? true : undefined,
      10_000,
      'the wait logged',
    );
    await sleep(2_000);
    expect(existsSync(own.path)).toBe(true);
    expect(await events()).not.toContain('SnapshotDiscardFailed');
    expect((await api.get(`/jobs/${jobId}/snapshots/1`)).body).toMatchObject({ status: 'DISCARDING' });

    // A projector starts elsewhere: the read model is built, and the discard goes ahead.
    services.push(await startService({ ...env, SNAPCAT_ROLE: 'api' }));
    await until(
      async () => ((await events()).includes('SnapshotDiscarded') ? true : undefined),
      20_000,
      'the discard done',
    );
    expect(existsSync(own.path)).toBe(false);
    expect(await events()).not.toContain('SnapshotDiscardFailed');
  }, 60_000);
});

describe('orphan report and discards agree on what is live (one rule in the domain)', () => {
  let dir: string;
  let root: string;
  let service: RunningService;
  let api: ReturnType<typeof client>;
  let flink: FlinkTestServer;
  const prefix = testPrefix('orphans');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-orphans-'));
    root = join(dir, 'root');
    flink = new FlinkTestServer();
    await flink.start();
    service = await startService({
      SNAPCAT_FLINK_POLL: 'PT0.2S',
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: root,
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_RETENTION_SWEEP: 'PT1S',
      SNAPCAT_ORPHAN_GRACE: 'PT1H',
      SNAPCAT_DELETE_ORPHANS: 'true',
    });
    api = client(service.url);
    // The catalogue has claimed the root for three hours (its first sweep claims it now): the files the
    // tests age by two hours were written since, as leftovers of its own jobs are (decision 0044).
    await backdateRootClaim(root, 3 * 3600_000);
  });
  afterAll(async () => {
    await service.stop('SIGKILL');
    await flink.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const reportNow = async () => {
    const r = await api.get('/storage/orphans');
    return r.status === 200
      ? (r.body as { generatedAt: string; files: { path: string }[]; totalBytes: number; deleted: boolean })
      : undefined;
  };
  /**
   * The first report listing `orphan`, and the first made wholly after it. A sweep lists every file it
   * deletes; one that began before the files were aged may list and delete them, so a report is not waited
   * for by when it began.
   */
  const reportsListing = async (orphan: string) => {
    const listing = await until(
      async () => {
        const report = await reportNow();
        return report?.files.some((f) => f.path === orphan) ? report : undefined;
      },
      20_000,
      `a report listing ${orphan}`,
    );
    const seen = Date.now();
    const next = await until(
      async () => {
        const report = await reportNow();
        return report && Date.parse(report.generatedAt) > seen ? report : undefined;
      },
      20_000,
      'the next report',
    );
    return [listing, next].map((report) => ({ ...report, paths: report.files.map((f) => f.path) }));
  };

  it('only old files that no live snapshot needs are reported and deleted: not young ones, not those of pending snapshots', async () => {
    const jobId = newJobId();
    await api.put(`/jobs/${jobId}`, { tasks: ['a', 'b'], checkpointing: { numRetained: 1 } });
    const base = join(root, 'checkpoints', jobId);
    // The files are written young (nothing sweeps them while the acknowledgements come) and aged after.
    const shared = put(join(base, 'shared', 'kept-shared'), 10);
    const own = put(join(base, 'chk-1', 'kept-private'), 10);
    // A completed checkpoint with a shared and a private file.
    const t1 = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
    for (const taskId of ['a', 'b']) {
      await api.post(`/jobs/${jobId}/snapshots/${t1.body.snapshotId}/acks`, {
        taskId,
        stateHandles: taskId === 'a' ? [shared, own] : [],
      });
    }
    // A pending checkpoint: one task acknowledged a shared file, the other is still uploading into chk-2.
    const t2 = await api.post(`/jobs/${jobId}/snapshots`, { kind: 'CHECKPOINT' });
    const pendingShared = put(join(base, 'shared', 'pending-shared'), 10);
    await api.post(`/jobs/${jobId}/snapshots/${t2.body.snapshotId}/acks`, {
      taskId: 'a',
      stateHandles: [pendingShared],
    });
    const uploading = put(join(base, `chk-${t2.body.snapshotId}`, 'uploading'), 10);
    // Uploaded long ago (a timeout longer than the grace) by a task of the pending checkpoint that has not
    // acknowledged yet: kept while a checkpoint of the job is pending (a walkthrough's sweep deleted it).
    const unacknowledged = put(join(base, 'shared', 'uploaded-not-acknowledged'), 10);
    // Nobody's: an old leftover outside any job's area (an orphan), and a young file (maybe a checkpoint
    // just starting).
    const orphan = put(join(root, 'leftovers', jobId, 'orphan'), 123);
    const young = put(join(base, 'shared', 'young'), 7);
    // A retained incremental checkpoint of an earlier run, imported: its _metadata names its run's shared
    // files, which no acknowledgement listed; kept while the import is live (R69).
    const earlierRun = join(root, 'earlier', newJobId());
    const importedFiles = [
      put(join(earlierRun, 'chk-5', '_metadata'), 10),
      put(join(earlierRun, 'shared', 'sst-of-chk-5'), 10),
    ];
    const imported = await api.post(`/jobs/${jobId}/snapshots/import`, {
      externalPath: join(earlierRun, 'chk-5'),
      kind: 'CHECKPOINT',
    });
    expect(imported.status).toBe(201);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const file of [shared, own, pendingShared, uploading, unacknowledged, orphan, ...importedFiles]) {
      utimesSync(file.path, twoHoursAgo, twoHoursAgo);
    }
    const [report, next] = await reportsListing(orphan.path);
    expect(report!.paths).toEqual([orphan.path]);
    expect(report!.totalBytes).toBe(123);
    expect(report!.deleted).toBe(true);
    expect(next!.paths).toEqual([]);
    expect(existsSync(orphan.path)).toBe(false);
    for (const live of [shared, own, pendingShared, uploading, unacknowledged, young, ...importedFiles])
      expect(existsSync(live.path)).toBe(true);
  }, 60_000);

  it('R67: nothing in a managed job’s checkpoint area is an orphan, though the mirror names none of its shared files (Flink deletes there)', async () => {
    expect((await api.put('/clusters/local', { restUrl: flink.url })).status).toBe(201);
    const jobId = newJobId();
    const checkpointDir = join(root, 'checkpoints');
    flink.addJob(jobId, { checkpointDir, savepointDir: join(root, 'savepoints'), checkpointIntervalMs: 200 });
    const registered = await api.put(`/jobs/${jobId}`, {
      source: { type: 'flink', cluster: 'local' },
      storage: { checkpointDir, savepointDir: join(root, 'savepoints') },
    });
    expect(registered.status).toBe(201);
    await until(
      async () => {
        const { snapshots } = (await api.get(`/jobs/${jobId}`)).body as { snapshots: { status: string }[] };
        return snapshots.some((s) => s.status === 'COMPLETED') ? true : undefined;
      },
      20_000,
      'a mirrored checkpoint',
    );
    // RocksDB's incremental layout: SST files the retained checkpoints share, and task-owned state.
    const area = join(checkpointDir, jobId);
    const flinks = [put(join(area, 'shared', 'sst-1'), 10), put(join(area, 'taskowned', 'log-1'), 10)];
    const stray = put(join(root, 'checkpoints', 'leftover', 'x'), 5);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const file of [...flinks, stray]) utimesSync(file.path, twoHoursAgo, twoHoursAgo);

    const [report, next] = await reportsListing(stray.path);
    expect(report!.paths).toEqual([stray.path]);
    expect(next!.paths).toEqual([]);
    for (const file of flinks) expect(existsSync(file.path)).toBe(true);
  }, 60_000);

  it('a managed job’s data files under an entropy prefix, and the uncatalogued run Flink restored it from, are not orphans', async () => {
    const jobId = newJobId();
    const earlierRun = newJobId(); // a run snapcat never catalogued: only Flink's `latest.restored` names it
    const checkpointDir = join(root, 'entropy', 'checkpoints');
    flink.addJob(jobId, { checkpointDir, savepointDir: join(root, 'savepoints'), checkpointIntervalMs: 200 });
    flink.restore(jobId, {
      externalPath: `file:${join(checkpointDir, earlierRun, 'chk-42')}`,
      isSavepoint: false,
    });
    const registered = await api.put(`/jobs/${jobId}`, {
      source: { type: 'flink', cluster: 'local' },
      storage: { checkpointDir, savepointDir: join(root, 'savepoints') },
    });
    expect(registered.status).toBe(201);
    await until(
      async () => ((await api.get(`/jobs/${jobId}`)).body.flinkRestore ? true : undefined),
      20_000,
      'the restore mirrored',
    );
    // `s3.entropy.key`: Flink writes data files with random characters where the key is, `_metadata` without.
    const entropy = [
      put(join(root, 'x7q2', 'checkpoints', jobId, 'shared', 'sst-1'), 10),
      put(join(root, 'ab12', 'checkpoints', jobId, 'chk-1', 'op-state'), 10),
    ];
    const inherited = [
      put(join(checkpointDir, earlierRun, 'shared', 'sst-0'), 10),
      put(join(checkpointDir, earlierRun, 'chk-42', '_metadata'), 10),
    ];
    const stray = put(join(root, 'x7q2', 'checkpoints', newJobId(), 'shared', 'nobodys'), 5);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const file of [...entropy, ...inherited, stray]) utimesSync(file.path, twoHoursAgo, twoHoursAgo);

    const [report, next] = await reportsListing(stray.path);
    expect(report!.paths).toEqual([stray.path]);
    expect(next!.paths).toEqual([]);
    expect(existsSync(stray.path)).toBe(false);
    for (const file of [...entropy, ...inherited]) expect(existsSync(file.path)).toBe(true);
  }, 60_000);
  it('a job registered while the process manager is behind: the directory it imported is not taken for orphans (the sweep waits for the list of jobs to reach the log)', async () => {
    const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    const lease = `${await namespaceOf(`sqlite:${join(dir, 'events.db')}`, prefix)}:pm:lease`;
    try {
      // Once the process manager has listed the jobs and scheduled the sweeps (a first report), another process
      // holds its lease, and is stuck: the list of known jobs stops growing.
      await until(reportNow, 20_000, 'a first report');
      await redis.set(lease, 'a-stuck-workers-process', 'PX', 60_000);
      await sleep(1500);
      const jobId = newJobId();
      expect((await api.put(`/jobs/${jobId}`, { tasks: ['a'] })).status).toBe(201);
      const nightly = join(root, 'nightly', newJobId());
      const files = [put(join(nightly, '_metadata'), 10), put(join(nightly, 'op-state'), 10)];
      const imported = await api.post(`/jobs/${jobId}/snapshots/import`, {
        externalPath: nightly,
        kind: 'SAVEPOINT',
      });
      expect(imported.status).toBe(201);
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
      for (const file of files) utimesSync(file.path, twoHoursAgo, twoHoursAgo);
      // The sweeps list them (the job is not known yet) and delete nothing: the list lags the log.
      const [behind, stillBehind] = await reportsListing(files[0]!.path);
      expect(behind!.deleted).toBe(false);
      expect(stillBehind!.paths).toEqual(expect.arrayContaining(files.map((f) => f.path)));
      expect(stillBehind!.deleted).toBe(false);
      for (const file of files) expect(existsSync(file.path)).toBe(true);
      expect(service.logs.join('\n')).toContain('orphans not deleted: the list of jobs is not whole');

      // The process manager back: the job is known, its import is live.
      await redis.del(lease);
      const back = Date.now();
      const resumed = await until(
        async () => {
          const report = await reportNow();
          return report && Date.parse(report.generatedAt) > back + 2000 ? report : undefined;
        },
        20_000,
        'a sweep after the process manager caught up',
      );
      expect(resumed.deleted).toBe(true);
      expect(resumed.files.map((f) => f.path)).not.toContain(files[0]!.path);
      for (const file of files) expect(existsSync(file.path)).toBe(true);
    } finally {
      await redis.del(lease);
      redis.disconnect();
    }
  }, 90_000);
});

/**
 * Waits for the root's claim file (the first sweep writes it, the root being empty then) and moves its time,
 * the storage's clock that the claim counts by, `byMs` into the past.
 */
async function backdateRootClaim(root: string, byMs: number): Promise<void> {
  const file = join(root, ROOT_CLAIM_FILE);
  await until(async () => existsSync(file) || undefined, 20_000, 'the root claimed');
  const then = new Date(Date.now() - byMs);
  utimesSync(file, then, then);
}

describe('a catalogue deletes orphans only under the roots it claimed, written since it claimed them (decision 0044)', () => {
  it("a fresh store beside another store's root and beside old files: reported, not one deleted", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-claims-'));
    const prefix = testPrefix('claims');
    // Another catalogue's root (a store deleted and started afresh, a mistyped store path, a second
    // deployment): its live snapshots' files are unknown here. And a root no catalogue claimed, holding files
    // (another catalogue's from before claims existed, say).
    const others = join(dir, 'others');
    const unclaimed = join(dir, 'unclaimed');
    mkdirSync(others, { recursive: true });
    writeFileSync(
      join(others, ROOT_CLAIM_FILE),
      JSON.stringify({ catalogue: '0123456789abcdef', claimedAt: '2026-01-01T00:00:00.000Z' }),
    );
    const claimedThen = new Date('2026-01-01T00:00:00.000Z');
    utimesSync(join(others, ROOT_CLAIM_FILE), claimedThen, claimedThen);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    const files = [
      put(join(others, 'checkpoints', newJobId(), 'chk-7', '_metadata'), 10),
      put(join(others, 'checkpoints', newJobId(), 'shared', 'sst-1'), 20),
      put(join(unclaimed, 'savepoints', 'savepoint-abc123-0123456789ab', '_metadata'), 30),
    ];
    for (const file of files) utimesSync(file.path, twoHoursAgo, twoHoursAgo);
    const settings = {
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'fresh.db')}`,
      SNAPCAT_STORAGE_ROOTS: `${others},${unclaimed}`,
      SNAPCAT_QUEUE_PREFIX: prefix,
      SNAPCAT_RETENTION_SWEEP: 'PT1S',
      SNAPCAT_ORPHAN_GRACE: 'PT1H',
      SNAPCAT_DELETE_ORPHANS: 'true',
    };
    // On another catalogue's root this one does not start: that catalogue would delete what it writes there.
    const refused = await startOutcome(startService(settings));
    expect(refused).toMatch(/^service exited with 2/);
    expect(refused).toContain(
      `storage roots claimed by another catalogue: ${others} (event store 0123456789abcdef)`,
    );
    const service = await startService({ ...settings, SNAPCAT_STORAGE_ROOTS: unclaimed });
    try {
      const api = client(service.url);
      type Report = { files: { path: string }[]; deleted: boolean; notDeleted?: number; claims?: unknown[] };
      const report = await until(
        async () => {
          const r = await api.get('/storage/orphans');
          const body = r.body as Report;
          return r.status === 200 && body.files.length === 1 ? body : undefined;
        },
        20_000,
        'a report listing the old file',
      );
      expect(report.deleted).toBe(true);
      expect(report.notDeleted).toBe(1);
      expect(report.claims).toEqual([{ root: unclaimed, catalogue: null, claimedAt: null, ours: false }]);
      for (const file of files) expect(existsSync(file.path)).toBe(true);
      expect(service.logs.join('\n')).toContain(`orphans under ${unclaimed} are reported, never deleted`);
      // A store with no job is not taken for the catalogue (a mistyped SNAPCAT_EVENT_STORE makes a new one).
      const empty = await runCli(['storage', 'claim'], settings);
      expect(empty.status).toBe(2);
      expect(empty.stderr).toContain('holds no job: not claiming storage for it');
      expect(existsSync(join(unclaimed, ROOT_CLAIM_FILE))).toBe(false);
      expect((await api.put(`/jobs/${newJobId()}`, { tasks: ['t'] })).status).toBe(201);
      // The operator gives this catalogue the root nobody claimed; the other catalogue's stays its own (exit 1).
      const claimed = await runCli(['storage', 'claim'], settings);
      expect(claimed.status).toBe(1);
      expect(claimed.stdout).toContain(`${unclaimed}  claimed by this catalogue since`);
      expect(claimed.stdout).toMatch(/^this catalogue: event store [0-9a-f]{16}\n/);
      expect(claimed.stdout).toContain(`${others}  claimed by the catalogue of event store 0123456789abcdef`);
      const mine = JSON.parse(readFileSync(join(unclaimed, ROOT_CLAIM_FILE), 'utf8')).catalogue as string;
      expect(mine).toMatch(/^[0-9a-f]{16}$/);
      expect(JSON.parse(readFileSync(join(others, ROOT_CLAIM_FILE), 'utf8')).catalogue).toBe(
        '0123456789abcdef',
      );
    } finally {
      await service.stop('SIGKILL');
      await deleteKeys(prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
