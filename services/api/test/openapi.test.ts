import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import IORedis from 'ioredis';
import request from 'supertest';
import type { z } from 'zod';
import { Projector, rebuildReadModel, ReadModel } from '@snapcat/read-model';
import type { SnapshotStorage } from '@snapcat/storage';
import { deleteKeys } from '../../../test/support/redis';
import { describedRoutes, openApiDocument, openApiDocumentText } from '../src/openapi';
import { apiFixture, startProjector } from './fixture';
import { concrete, registered, requestExamples, webhookStub } from './routes';

/*
 * The OpenAPI document (services/api/src/openapi.ts) against the API it describes:
 * - it is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator, the OAS 3.1 JSON Schema);
 * - it describes exactly the routes the express app registers: the acks route on the app, the /api/v1
 *   router and the webhook router, /healthz, /readyz and /metrics. Only /graphql is left out: it is GraphQL,
 *   described by schema/catalog.graphql, and mounted as a handler rather than as routes;
 * - every request example passes its JSON Schema (ajv, draft 2020-12), the zod schema it was generated from,
 *   and the route itself over HTTP;
 * - the answers of the routes, over HTTP, match the responses it describes (status and body);
 * - schema/openapi.json and GET /api/v1/openapi.json are the generated document.
 */

type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; responses: Record<string, Response> };
};
type Response = { $ref?: string; content?: Record<string, { schema: object }> };
type Operation = {
  responses: Record<string, Response>;
  requestBody?: {
    content: Record<string, { schema: object; examples?: Record<string, { value: unknown }> }>;
  };
};

const doc = openApiDocument() as unknown as Doc;
const REPO = join(__dirname, '..', '..', '..');
const REDIS_URL = 'redis://127.0.0.1:6379';

/** Every (method, path) of the document, as `GET /api/v1/jobs/{jobId}`. */
const documented = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
  );

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
/** A schema of the document, its $refs to #/components resolved against the document. */
const compile = (schema: object) => ajv.compile({ ...schema, components: doc.components });

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, openApiDocumentText());
      // The validator is an ES module (import.meta): run its CLI rather than load it into jest's CommonJS.
      const cli = require.resolve('@seriousme/openapi-schema-validator/bin/validate-api-cli.js', {
        paths: [REPO],
      });
      let output: string;
      try {
        output = execFileSync(process.execPath, [cli, file], { encoding: 'utf8' });
      } catch (error) {
        throw new Error(`invalid: ${(error as { stdout?: string }).stdout ?? String(error)}`);
      }
      expect(JSON.parse(output)).toEqual({ valid: true });
      expect(doc).toMatchObject({ openapi: '3.1.0' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('describes exactly the routes the app registers (all but /graphql)', () => {
    const fx = apiFixture({ webhooks: webhookStub() });
    try {
      const routes = registered(fx.app);
      expect(routes).toContain('POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/acks'); // on the app itself
      expect(routes).toContain('GET /api/v1/jobs'); // on the /api/v1 router
      expect(routes).toContain('PATCH /api/v1/webhooks/{subscriptionId}'); // on the webhook router
      expect(new Set(routes).size).toBe(routes.length);
      expect([...routes].sort()).toEqual([...documented()].sort());
    } finally {
      void fx.close();
    }
  });

  it('names an operationId, a summary and the answers of every operation; a problem for every error', () => {
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item) as [string, Operation & Record<string, unknown>][]) {
        const where = `${method.toUpperCase()} ${path}`;
        expect([where, typeof op.operationId, typeof op.summary]).toEqual([where, 'string', 'string']);
        ids.add(op.operationId as string);
        const statuses = Object.keys(op.responses);
        expect([where, statuses.some((s) => s.startsWith('2'))]).toEqual([where, true]);
        for (const status of statuses.filter((s) => Number(s) >= 400)) {
          const response = resolve(op.responses[status]!);
          // The Flink-compatible routes' own errors are Flink's ErrorResponseBody (decision 0017); the access
          // layer's refusals before them (401, 403, 429) are problems like every other route's.
          const flink = path.startsWith('/api/flink/') && !['401', '403', '429'].includes(status);
          expect([where, status, Object.keys(response.content ?? {})]).toEqual([
            where,
            status,
            [flink ? 'application/json' : 'application/problem+json'],
          ]);
        }
        if (/[{]/.test(path))
          expect([where, statuses.includes('400') || path === '/healthz']).toEqual([where, true]);
        if (op.requestBody) {
          expect([where, statuses.filter((s) => ['400', '413', '415'].includes(s))]).toEqual([
            where,
            ['400', '413', '415'],
          ]);
        }
      }
    }
    expect(ids.size).toBe(documented().length);
  });

  it('has examples for every request body, each valid by its JSON Schema and its zod schema', () => {
    let examples = 0;
    for (const { method, path, operation } of describedRoutes()) {
      const content = operation.requestBody?.content?.['application/json'];
      if (!content) continue;
      const where = `${method.toUpperCase()} ${path}`;
      const jsonSchema = doc.paths[path]![method]!.requestBody!.content['application/json']!.schema;
      const validate = compile(jsonSchema);
      const zodSchema = content.schema as z.ZodType;
      const named = Object.entries(content.examples ?? {}) as [string, { value: unknown }][];
      expect([where, named.length > 0]).toEqual([where, true]);
      for (const [name, { value }] of named) {
        examples += 1;
        expect([where, name, validate(value) ? [] : validate.errors]).toEqual([where, name, []]);
        const parsed = zodSchema.safeParse(value);
        expect([where, name, parsed.success ? [] : parsed.error.issues]).toEqual([where, name, []]);
        // And both refuse the example with a field they do not know: the JSON Schema is as strict as zod.
        const extended = Array.isArray(value)
          ? [{ ...value[0], unknownField: 1 }]
          : { ...(value as object), unknownField: 1 };
        expect([where, name, validate(extended), zodSchema.safeParse(extended).success]).toEqual([
          where,
          name,
          false,
          false,
        ]);
      }
    }
    const inDocument = Object.values(doc.paths).flatMap((item) =>
      Object.values(item).flatMap((op) =>
        Object.keys(op.requestBody?.content['application/json']?.examples ?? {}),
      ),
    );
    expect(examples).toBe(inDocument.length);
    expect(examples).toBeGreaterThan(10);
  });

  it('schema/openapi.json is the generated document (npm run schema writes it)', () => {
    expect(readFileSync(join(REPO, 'schema', 'openapi.json'), 'utf8')).toBe(openApiDocumentText());
  });
});

function resolve(response: Response): Response {
  if (!response.$ref) return response;
  return doc.components.responses[response.$ref.replace('#/components/responses/', '')]!;
}

describe('the API answers as the document says (over HTTP)', () => {
  const prefix = `snapcat-test-openapi-${process.pid}-${Date.now().toString(36)}`;
  let redis: IORedis;
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  /** The (method, path, status) answers checked against the document. */
  const checked = new Set<string>();

  let projector: Projector | undefined;
  const projectorRedis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });

  beforeAll(async () => {
    redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
    fx = apiFixture({
      webhooks: webhookStub(),
      // Every directory allowed: the examples name /data/snapcat/…, which this machine need not have.
      storage: {
        isWithinRoots: async () => true,
        whyNotStateFile: async () => undefined,
        spelledWithinRoots: () => true,
      } as unknown as SnapshotStorage,
      readModel: new ReadModel(redis, prefix),
      readModelAvailable: () => true,
    });
    http = request(fx.app);
    // A registration naming directories of its own asks the read model whether an import holds them.
    projector = await startProjector(fx.store, projectorRedis, prefix);
  });
  afterAll(async () => {
    await projector?.stop();
    projectorRedis.disconnect();
    await fx.close();
    redis.disconnect();
    await deleteKeys(prefix, REDIS_URL);
  });

  /** Sends a request to a documented route and checks the answer's status and body against the document. */
  const call = async (method: string, path: string, body?: unknown, url = concrete(path)) => {
    const test = http[method as 'get'](url);
    const res = body === undefined ? await test : await test.send(body as object);
    const op = doc.paths[path]?.[method];
    const where = `${method.toUpperCase()} ${path} -> ${res.status}`;
    expect([where, op !== undefined]).toEqual([where, true]);
    const documentedResponse = op!.responses[String(res.status)];
    expect([where, documentedResponse !== undefined]).toEqual([where, true]);
    const response = resolve(documentedResponse!);
    const mediaType = String(res.headers['content-type'] ?? '').split(';')[0]!;
    if (response.content) {
      expect([where, mediaType, Object.keys(response.content).includes(mediaType)]).toEqual([
        where,
        mediaType,
        true,
      ]);
      if (!path.startsWith('/api/v1/webhooks') && mediaType !== 'text/plain') {
        // (the webhook answers here are a stub's: the shapes are checked, not the service)
        const validate = compile(response.content[mediaType]!.schema);
        expect([where, validate(res.body) ? [] : validate.errors, res.body]).toEqual([where, [], res.body]);
      }
    } else {
      expect([where, res.text]).toEqual([where, '']);
    }
    checked.add(`${method.toUpperCase()} ${path}`);
    return res;
  };

  it('every request example is accepted by its route (no 400 on the body, no 413, no 415)', async () => {
    // In document order (the job's registration comes first, so the later ones find it), the status last:
    // FINISHED would refuse the triggers.
    const examples = requestExamples().sort(
      (a, b) => Number(a.path.endsWith('/status')) - Number(b.path.endsWith('/status')),
    );
    for (const { method, path, name, value } of examples) {
      const res = await call(method, path, value);
      const bodyErrors = (res.body.errors ?? []).filter((e: { field: string }) => e.field.startsWith('body'));
      const refused = [413, 415].includes(res.status) || (res.status === 400 && bodyErrors.length > 0);
      expect([method, path, name, refused ? res.body : 'accepted']).toEqual([method, path, name, 'accepted']);
    }
  });

  it('a job, its snapshots, schedule and events; the list; problems', async () => {
    const jobs = '/api/v1/jobs';
    const job = `${jobs}/{jobId}`;
    const snapshot = `${job}/snapshots/{snapshotId}`;
    expect((await call('put', job, { tasks: ['source-0', 'source-1', 'sink-0'] })).status).toBe(200);
    await call('get', job);
    // A checkpoint completed by its acknowledgements (one alone, then an array), a savepoint declined.
    const { body: triggered } = await call('post', `${job}/snapshots`, { kind: 'CHECKPOINT' });
    const id = String(triggered.snapshotId);
    const url = (path: string) => concrete(path).replace('/snapshots/1', `/snapshots/${id}`);
    await call('post', `${snapshot}/acks`, { taskId: 'source-0' }, url(`${snapshot}/acks`));
    await call(
      'post',
      `${snapshot}/acks`,
      [{ taskId: 'source-1' }, { taskId: 'sink-0' }],
      url(`${snapshot}/acks`),
    );
    await call('get', snapshot, undefined, url(snapshot));
    await call('post', `${snapshot}/persist`, {}, url(`${snapshot}/persist`));
    await call('post', `${snapshot}/discard`, {}, url(`${snapshot}/discard`)); // the latest: 409
    const { body: savepoint } = await call('post', `${job}/snapshots`, { kind: 'SAVEPOINT' });
    const declined = concrete(`${snapshot}/decline`).replace(
      '/snapshots/1',
      `/snapshots/${savepoint.snapshotId}`,
    );
    await call('post', `${snapshot}/decline`, { taskId: 'sink-0' }, declined);
    await call('post', `${snapshot}/discard`, { force: true }, url(`${snapshot}/discard`));
    await call('get', `${job}/events`);
    await call('put', `${job}/savepoint-schedule`, { every: 'PT1H' });
    await call('get', `${job}/savepoint-schedule`);
    await call('delete', `${job}/savepoint-schedule`);
    // Flink's shapes of the same job (decision 0017), and their errors.
    const flink = '/api/flink/v1/jobs/{jobId}/checkpoints';
    const history = (await call('get', flink)).body.history as { id: number }[];
    expect(history.length).toBeGreaterThanOrEqual(2);
    await call('get', `${flink}/config`);
    await call('get', `${flink}/details/{checkpointId}`, undefined, concrete(`${flink}/details/${id}`));
    expect(
      (await call('get', `${flink}/details/{checkpointId}`, undefined, concrete(`${flink}/details/999`)))
        .status,
    ).toBe(404);
    expect((await call('get', flink, undefined, concrete(`${flink}?limit=0`))).status).toBe(400);
    expect(
      (await call('get', flink, undefined, `/api/flink/v1/jobs/${'f'.repeat(32)}/checkpoints`)).status,
    ).toBe(404);
    await call('post', `${job}/status`, { status: 'FINISHED' });
    expect((await call('post', `${job}/status`, { status: 'RUNNING' })).status).toBe(409);

    // The list, from the read model.
    await rebuildReadModel(fx.store, redis, prefix);
    expect((await call('get', jobs)).body.jobs).toHaveLength(1);
    expect((await call('get', jobs, undefined, `${jobs}?limit=0`)).status).toBe(400);

    // Problems.
    expect((await call('get', job, undefined, `${jobs}/NOT-A-JOB`)).status).toBe(400);
    expect((await call('get', job, undefined, `${jobs}/${'f'.repeat(32)}`)).status).toBe(404);
    const text = await http
      .post(concrete(`${job}/status`))
      .set('content-type', 'text/plain')
      .send('x');
    expect(text.status).toBe(415);
    expect(doc.paths[`${job}/status`]!.post!.responses['415']).toBeDefined();
    await call('get', '/api/v1/storage/orphans'); // 404: no sweep has written one

    // Operations and this document.
    await call('get', '/healthz');
    await call('get', '/readyz');
    await call('get', '/metrics');
    expect((await call('get', '/api/v1/openapi.json')).body).toEqual(JSON.parse(openApiDocumentText()));
  });

  it('the webhook routes answer as described (their service stubbed)', async () => {
    const webhook = '/api/v1/webhooks/{subscriptionId}';
    await call('get', '/api/v1/webhooks');
    await call('get', webhook);
    await call('post', `${webhook}/rotate-secret`);
    await call('get', `${webhook}/deliveries`);
    await call('post', `${webhook}/deliveries/{deliveryId}/redeliver`);
    await call('post', `${webhook}/test`);
    await call('delete', webhook);
    expect((await call('get', webhook, undefined, '/api/v1/webhooks/nope')).status).toBe(400);
  });

  it('the cluster routes answer as described', async () => {
    const cluster = '/api/v1/clusters/{name}';
    const put = { restUrl: 'https://flink.example.com', headers: { Authorization: 'Bearer x' } };
    expect((await call('put', cluster, put, '/api/v1/clusters/described')).status).toBe(201);
    expect((await call('put', cluster, put, '/api/v1/clusters/described')).status).toBe(200);
    expect((await call('get', cluster, undefined, '/api/v1/clusters/described')).body.headers).toEqual([
      'authorization',
    ]);
    expect((await call('get', '/api/v1/clusters')).body.clusters.length).toBeGreaterThan(0);
    expect((await call('put', cluster, { restUrl: 'https://u:p@x' }, '/api/v1/clusters/x')).status).toBe(400);
    expect((await call('get', cluster, undefined, '/api/v1/clusters/Not_A_Name')).status).toBe(400);
    expect((await call('delete', cluster, undefined, '/api/v1/clusters/described')).status).toBe(204);
    expect((await call('delete', cluster, undefined, '/api/v1/clusters/described')).status).toBe(404);
  });

  it('every described route answered at least once', () => {
    expect(documented().filter((route) => !checked.has(route))).toEqual([]);
  });
});
