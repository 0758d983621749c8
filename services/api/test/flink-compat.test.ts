import { join } from 'node:path';
import { OpenAPIBackend } from 'openapi-backend';
import request from 'supertest';
import { newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import {
  FlinkCheckpointConfigInfo,
  FlinkCheckpointStatistics,
  FlinkCheckpointingStatistics,
} from '../src/flink-compat';
import { apiFixture, JOB } from './fixture';

/*
 * The Flink-compatible read API (issue 19, item 5; decision 0017) over HTTP. Acceptance: "the
 * Flink-compatible endpoints' answers validate against the spec, for managed and native jobs". Every answer
 * here is validated by openapi-backend against Flink's own description (schema/flink/rest_v1_dispatcher.yml):
 * the 200s against the operation's schema, the errors as Flink's ErrorResponseBody. As that description lists
 * no required fields and allows any other, each answer is also checked for the fields a Flink script reads
 * and for fields Flink's schema does not name. The mapping is the same for managed jobs (source: flink) and
 * native ones, so native jobs are driven here.
 */

const SPEC = join(__dirname, '..', '..', '..', 'schema', 'flink', 'rest_v1_dispatcher.yml');
const FLINK = '/api/flink/v1';
const JOB_B = 'b1b2c3d4e5f60718293a4b5c6d7e8f90';

const admin = newToken();
const teamA = newToken();
const teamB = newToken();
const TOKENS = parseTokenList(
  [
    tokenLine({ name: 'admin', scopes: ['admin'], namespaces: '*' }, admin),
    tokenLine({ name: 'reader-a', scopes: ['read'], namespaces: ['team-a'] }, teamA),
    tokenLine({ name: 'reader-b', scopes: ['read'], namespaces: ['team-b'] }, teamB),
  ].join('\n'),
);
const as = (token: string) => ({ authorization: `Bearer ${token}` });

type Schema = { properties?: Record<string, Schema>; allOf?: Schema[]; $ref?: string };

describe("Flink's REST API's checkpoint reads (GET /api/flink/v1/jobs/{jobid}/checkpoints…)", () => {
  let api: OpenAPIBackend;
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;

  /** The names of the properties Flink's schema gives an object (through allOf and $ref). */
  const propertiesOf = (name: string): Set<string> => {
    const schemas = (api.definition as unknown as { components: { schemas: Record<string, Schema> } })
      .components.schemas;
    const names = new Set<string>();
    const walk = (schema: Schema) => {
      if (schema.$ref) return walk(schemas[schema.$ref.replace('#/components/schemas/', '')]!);
      for (const key of Object.keys(schema.properties ?? {})) names.add(key);
      for (const part of schema.allOf ?? []) walk(part);
    };
    walk(schemas[name]!);
    return names;
  };

  /** Asserts the object names no field Flink's schema does not. */
  const onlyKnownFields = (value: object, schema: string) => {
    const known = propertiesOf(schema);
    expect([schema, Object.keys(value).filter((key) => !known.has(key))]).toEqual([schema, []]);
  };

  const checkpointSchema = {
    completed: 'CompletedCheckpointStatistics',
    failed: 'FailedCheckpointStatistics',
    in_progress: 'PendingCheckpointStatistics',
  };

  /** A GET answered 200, valid by Flink's operation, and by snapcat's own (stricter) zod description. */
  const get = async (path: string, operationId: string, token = admin) => {
    const res = await http.get(`${FLINK}${path}`).set(as(token));
    expect([path, res.status, res.status === 200 ? '' : res.body]).toEqual([path, 200, '']);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const verdict = api.validateResponse(res.body, operationId);
    expect([path, verdict.errors ?? []]).toEqual([path, []]);
    return res;
  };

  /** An error answered as Flink's ErrorResponseBody. */
  const error = async (path: string, status: number, token = admin) => {
    const res = await http.get(`${FLINK}${path}`).set(as(token));
    expect([path, res.status]).toEqual([path, status]);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    // Flink's ErrorResponseBody (RestHandlerException's answer; the vendored description does not list it).
    expect(res.body).toEqual({ errors: [expect.any(String)] });
    return res;
  };

  const put = (jobId: string, body: object) => http.put(`/api/v1/jobs/${jobId}`).set(as(admin)).send(body);
  const trigger = async (jobId: string, body: object = { kind: 'CHECKPOINT' }) => {
    const res = await http.post(`/api/v1/jobs/${jobId}/snapshots`).set(as(admin)).send(body);
    expect(res.status).toBe(202);
    return res.body.snapshotId as number;
  };
  const ack = async (jobId: string, id: number, taskId: string, stateSize = 100) => {
    const res = await http
      .post(`/api/v1/jobs/${jobId}/snapshots/${id}/acks`)
      .set(as(admin))
      .send({ taskId, stateSize });
    expect(res.status).toBe(200);
  };
  const complete = async (jobId: string, body?: object) => {
    const id = await trigger(jobId, body);
    for (const task of ['source-0', 'sink-0']) await ack(jobId, id, task);
    return id;
  };

  beforeAll(async () => {
    api = new OpenAPIBackend({ definition: SPEC, quick: false, validate: true });
    await api.init();
    fx = apiFixture({ tokens: TOKENS });
    http = request(fx.app);
    const checkpointing = {
      numRetained: 3,
      retention: 'RETAIN_ON_CANCELLATION',
      tolerableFailures: 100,
      timeoutMs: 600_000,
      maxConcurrent: 5,
      minPauseMs: 0,
    };
    expect(
      (await put(JOB, { tasks: ['source-0', 'sink-0'], namespace: 'team-a', checkpointing })).status,
    ).toBe(201);
    expect((await put(JOB_B, { tasks: ['source-0', 'sink-0'], namespace: 'team-a' })).status).toBe(201);
  });
  afterAll(async () => {
    await fx.close();
  });

  it('validates the answers of a job with every kind of snapshot, and returns the whole history (more than 10)', async () => {
    const checkpoints: number[] = [];
    for (let i = 0; i < 12; i += 1) checkpoints.push(await complete(JOB));
    const savepoint = await complete(JOB, { kind: 'SAVEPOINT', formatType: 'NATIVE' });
    const declined = await trigger(JOB);
    await http
      .post(`/api/v1/jobs/${JOB}/snapshots/${declined}/decline`)
      .set(as(admin))
      .send({ taskId: 'sink-0', reason: 'disk full' })
      .expect(200);
    const persisted = checkpoints[checkpoints.length - 1]!;
    await http.post(`/api/v1/jobs/${JOB}/snapshots/${persisted}/persist`).set(as(admin)).send({}).expect(200);
    await http
      .post(`/api/v1/jobs/${JOB}/restores`)
      .set(as(admin))
      .send({ snapshotId: savepoint, claimMode: 'NO_CLAIM' })
      .expect(201);
    const pending = await trigger(JOB);
    await ack(JOB, pending, 'source-0');

    const { body } = await get(`/jobs/${JOB}/checkpoints`, 'getCheckpointingStatistics');
    expect(FlinkCheckpointingStatistics.safeParse(body).error).toBeUndefined();
    onlyKnownFields(body, 'CheckpointingStatistics');
    const all = [...checkpoints, savepoint, declined, pending];
    expect(body.counts).toEqual({
      restored: 1,
      total: all.length,
      in_progress: 1,
      completed: 13,
      failed: 1,
    });
    // The whole history, newest first: not Flink's last 10.
    expect(body.history).toHaveLength(15);
    expect(body.history.map((h: { id: number }) => h.id)).toEqual([...all].sort((a, b) => b - a));
    for (const entry of body.history) {
      onlyKnownFields(entry, checkpointSchema[entry.className as keyof typeof checkpointSchema]);
      for (const field of [
        'className',
        'id',
        'status',
        'is_savepoint',
        'trigger_timestamp',
        'checkpoint_type',
      ]) {
        expect([entry.id, field, field in entry]).toEqual([entry.id, field, true]);
      }
    }
    const byId = new Map(body.history.map((h: { id: number }) => [h.id, h]));
    expect(byId.get(pending)).toMatchObject({
      className: 'in_progress',
      status: 'IN_PROGRESS',
      num_acknowledged_subtasks: 1,
      num_subtasks: 2,
    });
    expect(byId.get(declined)).toMatchObject({
      className: 'failed',
      status: 'FAILED',
      failure_message: expect.stringContaining('disk full'),
    });
    expect(byId.get(savepoint)).toMatchObject({
      is_savepoint: true,
      savepointFormat: 'NATIVE',
      checkpoint_type: 'SAVEPOINT',
    });
    // numRetained 3: the oldest checkpoints were subsumed, and are discarded.
    expect(byId.get(checkpoints[0]!)).toMatchObject({ status: 'COMPLETED', discarded: true });
    expect(byId.get(persisted)).toMatchObject({ status: 'COMPLETED', is_savepoint: false, discarded: false });
    // What a Flink script reads.
    expect(body.latest.completed).toMatchObject({
      id: persisted,
      status: 'COMPLETED',
      external_path: expect.stringContaining(`chk-${persisted}`),
    });
    expect(body.latest.savepoint).toMatchObject({ id: savepoint, external_path: expect.any(String) });
    expect(body.latest.failed).toMatchObject({ id: declined, failure_timestamp: expect.any(Number) });
    expect(body.latest.restored).toMatchObject({
      id: savepoint,
      is_savepoint: true,
      restore_timestamp: expect.any(Number),
      external_path: expect.any(String),
    });
    onlyKnownFields(body.latest, 'LatestCheckpoints');
    onlyKnownFields(body.latest.restored, 'RestoredCheckpointStatistics');
    onlyKnownFields(body.counts, 'Counts');
    onlyKnownFields(body.summary, 'CheckpointStatisticsSummary');
    for (const summary of Object.values(body.summary)) onlyKnownFields(summary as object, 'StatsSummaryDto');
    expect(body.summary.state_size).toMatchObject({ min: 200, max: 200, avg: 200, p50: 200 });

    // Each snapshot's details, valid as CheckpointStatistics.
    for (const id of all) {
      const detail = (await get(`/jobs/${JOB}/checkpoints/details/${id}`, 'getCheckpointStatisticDetails'))
        .body;
      expect(FlinkCheckpointStatistics.safeParse(detail).error).toBeUndefined();
      expect(detail).toEqual(byId.get(id));
    }

    const config = (await get(`/jobs/${JOB}/checkpoints/config`, 'getCheckpointConfig')).body;
    expect(FlinkCheckpointConfigInfo.safeParse(config).error).toBeUndefined();
    onlyKnownFields(config, 'CheckpointConfigInfo');
    onlyKnownFields(config.externalization, 'ExternalizedCheckpointInfo');
    expect(config).toMatchObject({
      mode: 'EXACTLY_ONCE',
      interval: -1,
      timeout: 600_000,
      max_concurrent: 5,
      min_pause: 0,
      tolerable_failed_checkpoints: 100,
      externalization: { enabled: true, delete_on_cancellation: false },
    });
  });

  it('a stop-with-savepoint is SYNC_SAVEPOINT; a job without snapshots answers zero counts and an empty history', async () => {
    const empty = await get(`/jobs/${JOB_B}/checkpoints`, 'getCheckpointingStatistics');
    expect(empty.body).toMatchObject({ counts: { total: 0 }, latest: {}, history: [] });
    const stop = await complete(JOB_B, { kind: 'SAVEPOINT', terminate: { drain: true } });
    const { body } = await get(`/jobs/${JOB_B}/checkpoints/details/${stop}`, 'getCheckpointStatisticDetails');
    expect(body).toMatchObject({
      is_savepoint: true,
      checkpoint_type: 'SYNC_SAVEPOINT',
      savepointFormat: 'CANONICAL',
    });
    const config = await get(`/jobs/${JOB_B}/checkpoints/config`, 'getCheckpointConfig');
    expect(config.body.externalization).toEqual({ enabled: false, delete_on_cancellation: true });
  });

  it('pages the history with limit and before, naming the next page in a Link header', async () => {
    const first = await get(`/jobs/${JOB}/checkpoints?limit=4`, 'getCheckpointingStatistics');
    expect(first.body.history).toHaveLength(4);
    const last = first.body.history[3].id as number;
    expect(first.headers.link).toBe(`<${FLINK}/jobs/${JOB}/checkpoints?limit=4&before=${last}>; rel="next"`);
    const next = await get(`/jobs/${JOB}/checkpoints?limit=4&before=${last}`, 'getCheckpointingStatistics');
    expect(next.body.history[0].id).toBeLessThan(last);
    // The whole history fits the default: no Link.
    expect(
      (await get(`/jobs/${JOB}/checkpoints`, 'getCheckpointingStatistics')).headers.link,
    ).toBeUndefined();
  });

  it("answers errors as Flink's ErrorResponseBody: a bad job id or checkpoint id 400, an unknown one 404", async () => {
    await error('/jobs/NOT-A-JOB/checkpoints', 400);
    await error('/jobs/NOT-A-JOB/checkpoints/config', 400);
    await error(`/jobs/${JOB}/checkpoints/details/abc`, 400);
    await error(`/jobs/${JOB}/checkpoints/details/0`, 400);
    await error(`/jobs/${JOB}/checkpoints?limit=0`, 400);
    await error(`/jobs/${JOB}/checkpoints?limit=1e1`, 400);
    await error(`/jobs/${JOB}/checkpoints?limit=0x10`, 400);
    await error(`/jobs/${JOB}/checkpoints?unknown=1`, 400);
    await error(`/jobs/${'f'.repeat(32)}/checkpoints`, 404);
    await error(`/jobs/${'f'.repeat(32)}/checkpoints/config`, 404);
    const missing = await error(`/jobs/${JOB}/checkpoints/details/9999`, 404);
    expect(missing.body.errors[0]).toContain('9999');
  });

  it("refuses a job of another namespace as unknown (404), and serves it to its namespace's reader", async () => {
    for (const path of [
      `/jobs/${JOB}/checkpoints`,
      `/jobs/${JOB}/checkpoints/config`,
      `/jobs/${JOB}/checkpoints/details/1`,
    ]) {
      const res = await error(path, 404, teamB);
      expect(res.body.errors[0]).not.toContain('team-a');
    }
    await get(`/jobs/${JOB}/checkpoints`, 'getCheckpointingStatistics', teamA);
    await get(`/jobs/${JOB}/checkpoints/details/1`, 'getCheckpointStatisticDetails', teamA);
    // Without a token: the access layer's 401 (a problem, before the route).
    const anonymous = await http.get(`${FLINK}/jobs/${JOB}/checkpoints`);
    expect(anonymous.status).toBe(401);
  });
});
