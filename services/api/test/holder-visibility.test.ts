import IORedis from 'ioredis';
import request from 'supertest';
import { rebuildReadModel, ReadModel } from '@snapcat/read-model';
import { newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import { deleteKeys } from '../../../test/support/redis';
import { createSnapshotEventsPubSub } from '../src/graphql';
import { apiFixture, BASE, expectProblem, graphqlOver, graphqlStream } from './fixture';

/*
 * Decision 0045: a hold names its holder, and an admin may restore a job of one namespace from another
 * namespace's snapshot. A caller limited to the held snapshot's namespace is shown the holders it may see and
 * a count of the others, in every view of the snapshot and of its history; a caller of every namespace, all.
 */

const A = 'a0'.repeat(16); // the held job, in `team`
const B = 'b0'.repeat(16); // a holder in `team`
const C = 'c0'.repeat(16); // a holder in `other`
const TOKEN = { admin: newToken(), team: newToken(), other: newToken() };
const TOKENS = parseTokenList(
  [
    tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, TOKEN.admin),
    tokenLine({ name: 'team', scopes: ['operator'], namespaces: ['team'] }, TOKEN.team),
    tokenLine({ name: 'other', scopes: ['read'], namespaces: ['other'] }, TOKEN.other),
  ].join('\n'),
);
const as = (who: keyof typeof TOKEN) => ({ authorization: `Bearer ${TOKEN[who]}` });

describe('the holders of a snapshot, as each caller may see them (decision 0045)', () => {
  const prefix = `snapcat-test-holders-${process.pid}-${Date.now().toString(36)}`;
  const topic = `${prefix}:events`;
  let redis: IORedis;
  let pubsub: ReturnType<typeof createSnapshotEventsPubSub>;
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let savepointId: number;

  beforeAll(async () => {
    redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    const readModel = new ReadModel(redis, prefix);
    pubsub = createSnapshotEventsPubSub();
    fx = apiFixture({
      tokens: TOKENS,
      readModel,
      readModelAvailable: () => true,
      graphql: graphqlOver({ readModel, topic, tokens: TOKENS, pubsub }),
    });
    http = request(fx.app);
    for (const [jobId, namespace] of [
      [A, 'team'],
      [B, 'team'],
      [C, 'other'],
    ] as const) {
      await http
        .put(`${BASE}/jobs/${jobId}`)
        .set(as('admin'))
        .send({ namespace, tasks: ['t'] })
        .expect(201);
    }
    const triggered = await http
      .post(`${BASE}/jobs/${A}/snapshots`)
      .set(as('admin'))
      .send({ kind: 'SAVEPOINT' })
      .expect(202);
    savepointId = triggered.body.snapshotId as number;
    await http
      .post(`${BASE}/jobs/${A}/snapshots/${savepointId}/acks`)
      .set(as('admin'))
      .send({ taskId: 't' })
      .expect(200);
    // An admin restores a job of each namespace from A's savepoint: both hold it.
    for (const holder of [B, C]) {
      await http
        .post(`${BASE}/jobs/${holder}/restores`)
        .set(as('admin'))
        .send({ fromJobId: A, snapshotId: savepointId, claimMode: 'LEGACY' })
        .expect(201);
    }
    await rebuildReadModel(fx.store, redis, prefix, undefined, 0);
  });
  afterAll(async () => {
    await fx.close();
    redis.disconnect();
    await deleteKeys(prefix);
  });

  const heldOf = (view: { heldBy: string[]; hiddenHolders: number }) => ({
    heldBy: [...view.heldBy].sort(),
    hiddenHolders: view.hiddenHolders,
  });

  it('REST: the snapshot, and the job with its snapshots, name the holders the caller may see and count the others', async () => {
    const snapshot = (who: keyof typeof TOKEN) =>
      http.get(`${BASE}/jobs/${A}/snapshots/${savepointId}`).set(as(who)).expect(200);
    expect(heldOf((await snapshot('team')).body)).toEqual({ heldBy: [B], hiddenHolders: 1 });
    expect(heldOf((await snapshot('admin')).body)).toEqual({ heldBy: [B, C], hiddenHolders: 0 });
    const job = await http.get(`${BASE}/jobs/${A}`).set(as('team')).expect(200);
    expect(heldOf(job.body.snapshots[0])).toEqual({ heldBy: [B], hiddenHolders: 1 });
    expect(JSON.stringify(job.body)).not.toContain(C);
  });

  it('REST: the history shows a hold of a holder the caller may not see with its holder null', async () => {
    const holders = async (who: keyof typeof TOKEN) => {
      const res = await http.get(`${BASE}/jobs/${A}/events`).set(as(who)).expect(200);
      return (res.body.events as { type: string; data: { holderJobId: string | null } }[])
        .filter((e) => e.type === 'SnapshotHeld')
        .map((e) => e.data.holderJobId);
    };
    expect(await holders('team')).toEqual([B, null]);
    expect(await holders('admin')).toEqual([B, C]);
  });

  it('REST: the restored job’s history shows the job it was restored from as null to a caller who may not see it', async () => {
    const source = async (jobId: string, who: keyof typeof TOKEN) => {
      const res = await http.get(`${BASE}/jobs/${jobId}/events`).set(as(who)).expect(200);
      const events = res.body.events as { type: string; data: { fromJobId?: string | null } }[];
      return events.find((e) => e.type === 'SnapshotRestored')?.data.fromJobId;
    };
    expect(await source(C, 'other')).toBeNull();
    expect(await source(C, 'admin')).toBe(A);
    expect(await source(B, 'team')).toBe(A);
  });

  it('a refused discard counts the holders and names none', async () => {
    const refused = await http
      .post(`${BASE}/jobs/${A}/snapshots/${savepointId}/discard`)
      .set(as('team'))
      .send({});
    expectProblem(refused, 409, 'path.snapshotId', 'held-by-restore');
    expect(refused.body.detail).toContain('held by 2 jobs');
    expect(JSON.stringify(refused.body)).not.toContain(C);
  });

  it('GraphQL: the snapshot and the history, as REST shows them', async () => {
    const query = (who: keyof typeof TOKEN) =>
      http
        .post('/graphql')
        .set(as(who))
        .send({
          query: `{
            snapshot(jobId: "${A}", id: ${savepointId}) { heldBy hiddenHolders }
            job(id: "${A}") { snapshots(first: 5) { edges { node { heldBy hiddenHolders } } } }
            history(jobId: "${A}", types: ["SnapshotHeld"]) { edges { node { data } } }
          }`,
        })
        .expect(200);
    const team = (await query('team')).body;
    expect(team.errors).toBeUndefined();
    expect(heldOf(team.data.snapshot)).toEqual({ heldBy: [B], hiddenHolders: 1 });
    expect(heldOf(team.data.job.snapshots.edges[0].node)).toEqual({ heldBy: [B], hiddenHolders: 1 });
    const holders = (body: { data: { history: { edges: { node: { data: { holderJobId: string } } }[] } } }) =>
      body.data.history.edges.map((e) => e.node.data.holderJobId);
    expect(holders(team)).toEqual([B, null]);
    expect(JSON.stringify(team)).not.toContain(C);
    const restoredFrom = await http
      .post('/graphql')
      .set(as('other'))
      .send({ query: `{ history(jobId: "${C}", types: ["SnapshotRestored"]) { edges { node { data } } } }` })
      .expect(200);
    expect(restoredFrom.body.data.history.edges.map((e: { node: { data: object } }) => e.node.data)).toEqual([
      expect.objectContaining({ fromJobId: null }),
    ]);
    const admin = (await query('admin')).body;
    expect(heldOf(admin.data.snapshot)).toEqual({ heldBy: [B, C], hiddenHolders: 0 });
    expect(holders(admin)).toEqual([B, C]);
  });

  it('GraphQL: a subscription streams a hold with its holder null to a caller who may not see the holder', async () => {
    const query = `subscription { snapshotEvents(jobId: "${A}") { type data } }`;
    const admin = graphqlStream(http, TOKEN.admin, query);
    const team = graphqlStream(http, TOKEN.team, query);
    await new Promise((r) => setTimeout(r, 300)); // both subscribed
    const occurredAt = new Date().toISOString();
    pubsub.publish(topic, A, {
      jobId: A,
      type: 'SnapshotHeld',
      snapshotId: savepointId,
      revision: '9',
      position: '0/0',
      occurredAt,
      data: {
        type: 'SnapshotHeld',
        jobId: A,
        occurredAt,
        snapshotId: savepointId,
        holderJobId: C,
        holderRestore: 1,
      },
    });
    const told = () => admin.received().includes('holderJobId') && team.received().includes('holderJobId');
    for (let i = 0; i < 100 && !told(); i += 1) await new Promise((r) => setTimeout(r, 20));
    await Promise.all([admin.close(), team.close()]);
    expect(admin.received()).toContain(`"holderJobId":"${C}"`);
    expect(team.received()).toContain('"holderJobId":null');
    expect(team.received()).not.toContain(C);
  });
});
