import request from 'supertest';
import type { ReadModel, StoredSnapshot } from '@snapcat/read-model';
import { createGraphql, createSnapshotEventsPubSub } from '../src/graphql';
import { apiFixture, JOB } from './fixture';

/**
 * docs/domain.md R57: every view shows `restorePath`. Snapshot views the projector stored in Redis before the
 * field existed lack it until `snapcat replay` rebuilds them; GraphQL answers it from the view all the same.
 */
describe('GraphQL Snapshot.restorePath over views projected before it existed', () => {
  const chk = `/data/chk/${JOB}/chk-3`;
  const stored = (status: string, restorePath?: string | null): StoredSnapshot =>
    ({
      jobId: JOB,
      snapshotId: 3,
      kind: 'CHECKPOINT',
      status,
      persisted: true,
      externalPath: chk,
      savepointPath: `/data/sp/${JOB}/savepoint-3-0a1b2c3d4e5f`,
      manifestPath: `/data/sp/${JOB}/savepoint-3-0a1b2c3d4e5f/_metadata`,
      ...(restorePath !== undefined ? { restorePath } : {}),
    }) as unknown as StoredSnapshot;
  let view: StoredSnapshot;
  const readModel = { snapshot: async () => view } as unknown as ReadModel;
  const fx = apiFixture({
    graphql: ({ store, useCases }) =>
      createGraphql({
        useCases,
        store,
        readModel,
        pubsub: createSnapshotEventsPubSub(),
        topic: 'restore-path',
      }),
  });
  const http = request(fx.app);
  afterAll(() => fx.close());

  const ask = async () =>
    (
      await http
        .post('/graphql')
        .send({ query: `{ snapshot(jobId: "${JOB}", id: 3) { id externalPath restorePath savepointPath } }` })
        .expect(200)
    ).body;

  it('R57 a completed checkpoint stored without restorePath restores from its chk-<id>, not its savepointPath', async () => {
    await http
      .put(`/api/v1/jobs/${JOB}`)
      .send({ tasks: ['a'] })
      .expect(201);
    view = stored('COMPLETED');
    expect(await ask()).toEqual({
      data: {
        snapshot: {
          id: 3,
          externalPath: chk,
          restorePath: chk,
          savepointPath: `/data/sp/${JOB}/savepoint-3-0a1b2c3d4e5f`,
        },
      },
    });
  });

  it('R57 one that is not COMPLETED has none; a stored restorePath is answered as stored', async () => {
    view = stored('DISCARDING');
    expect((await ask()).data.snapshot.restorePath).toBeNull();
    view = stored('COMPLETED', chk);
    expect((await ask()).data.snapshot.restorePath).toBe(chk);
  });
});
