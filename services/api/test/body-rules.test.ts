import {
  buildSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isLeafType,
  type GraphQLArgument,
  type GraphQLInputField,
  type GraphQLInputType,
} from 'graphql';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import IORedis from 'ioredis';
import request from 'supertest';
import { ReadModel } from '@snapcat/read-model';
import { SCOPES, newToken, parseTokenList, tokenLine, type Scope } from '@snapcat/runtime';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { DEFAULT_RULE, GRAPHQL_RULES, restRule } from '../src/access';
import { REST_BODY_LIMIT } from '../src/app';
import { openApiDocument } from '../src/openapi';
import { SCHEMA_FILE } from './files';
import { apiFixture, BASE, expectProblem, JOB, graphqlOver, webhooksFixture } from './fixture';
import { concrete, requestExamples, SUBSCRIPTION } from './routes';

/*
 * Issue 24, item 1: every body the API takes refuses a field it does not know (400 naming it, nothing written)
 * and a body over the limit (413), through REST and GraphQL.
 *
 * The REST routes are the OpenAPI document's operations with a request body, each sent with every example the
 * document gives it: a route added to the document is covered here without a line changed. A route the app
 * registers but the document leaves out fails openapi.test.ts ('describes exactly the routes the app
 * registers'), and a documented body without an example fails it too ('has examples for every request body').
 * The GraphQL inputs are the input objects the schema's mutations take, walked from schema/catalog.graphql.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';
const prefix = testPrefix('body-rules');
/** A token of each scope, for every namespace: each call carries the one its rule needs, so auth lets it by. */
const tokens = Object.fromEntries(SCOPES.map((scope) => [scope, newToken()])) as Record<Scope, string>;
const TOKENS = parseTokenList(
  SCOPES.map((scope) => tokenLine({ name: scope, scopes: [scope], namespaces: '*' }, tokens[scope])).join(
    '\n',
  ),
);
const bearer = (scope: Scope) => ({ authorization: `Bearer ${tokens[scope]}` });

/** Every documented request example, and one per operation (the 413 needs no body of the route's own). */
const EXAMPLES = requestExamples().map((e) => ({ ...e, route: `${e.method.toUpperCase()} ${e.path}` }));
const OPERATIONS = EXAMPLES.filter((e, i) => EXAMPLES.findIndex((o) => o.route === e.route) === i);

interface JsonSchema {
  $ref?: string;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  type?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: unknown;
}
const doc = openApiDocument() as unknown as {
  paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: JsonSchema }> } }>>;
  components: { schemas?: Record<string, JsonSchema> };
};

/**
 * The paths of the objects a body holds, the body itself or an array body's items included, and the nested
 * ones its example holds (`checkpointing`, `stateHandles.0`): each must refuse a field it does not know. Only
 * a map is left out, an object whose schema says what its other keys hold (a cluster's `headers`, the
 * client's names): an object merely not closed (a non-strict zod object) is still held to the rule.
 */
function bodyObjects(value: unknown, schema: JsonSchema, at: string[] = []): string[][] {
  if (schema.$ref) return bodyObjects(value, doc.components.schemas![schema.$ref.split('/').pop()!]!, at);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) {
    const kind = Array.isArray(value) ? 'array' : typeof value;
    return alternatives.filter((s) => s.type === kind).flatMap((s) => bodyObjects(value, s, at));
  }
  if (Array.isArray(value) && schema.items) {
    return value.flatMap((item, i) => bodyObjects(item, schema.items!, [...at, String(i)]));
  }
  if (value === null || typeof value !== 'object') return [];
  return [
    ...(typeof schema.additionalProperties === 'object' ? [] : [at]),
    ...Object.entries(value).flatMap(([key, v]) => {
      const property = schema.properties?.[key];
      return property ? bodyObjects(v, property, [...at, key]) : [];
    }),
  ];
}

/** Each example with `unexpected` in one of its objects: 400 naming `body.<path>.unexpected` (`body[0].unexpected`). */
const UNKNOWN = EXAMPLES.flatMap((e) => {
  const schema = doc.paths[e.path]![e.method]!.requestBody.content['application/json']!.schema;
  return bodyObjects(e.value, schema).map((at) => {
    const body = structuredClone(e.value) as Record<string, unknown>;
    const object = at.reduce((o, key) => o[key] as Record<string, unknown>, body);
    object.unexpected = 1;
    const field = [...at, 'unexpected'].reduce(
      (n, key) => (/^\d+$/.test(key) ? `${n}[${key}]` : `${n}.${key}`),
      'body',
    );
    return { ...e, at, body, field };
  });
});

describe('every body: unknown fields and oversized bodies', () => {
  const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
  // The subscriptions in a store of their own (the fixture opens its store with the app): written() reads both.
  const { webhooks, close: closeWebhooks } = webhooksFixture(redis, prefix);
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  let subscriptionId: string;

  /** Everything the routes write: the event store (jobs, snapshots, clusters) and the webhook subscriptions. */
  const written = async () => ({
    events: (await fx.store.readAll()).length,
    subscriptions: await webhooks.list('*'),
  });
  /** A documented path with its parameters naming what beforeAll created. */
  const url = (path: string) => concrete(path).replace(SUBSCRIPTION, subscriptionId);
  /** The request, with a token of the scope its route needs (no body route is public). */
  const send = (method: string, path: string) =>
    http[method as 'post'](url(path)).set(bearer(restRule(method.toUpperCase(), url(path)) as Scope));

  beforeAll(async () => {
    fx = apiFixture({
      tokens: TOKENS,
      webhooks,
      graphql: graphqlOver({
        readModel: new ReadModel(redis, prefix),
        topic: `${prefix}:events`,
        tokens: TOKENS,
      }),
    });
    http = request(fx.app);
    // What the paths name: the job, its snapshot 1, a webhook subscription (a cluster's PUT creates it).
    const admin = bearer('admin');
    await http
      .put(`${BASE}/jobs/${JOB}`)
      .set(admin)
      .send({ tasks: ['a', 'b'] })
      .expect(201);
    await http.post(`${BASE}/jobs/${JOB}/status`).set(admin).send({ status: 'RUNNING' }).expect(200);
    await http.post(`${BASE}/jobs/${JOB}/snapshots`).set(admin).send({ kind: 'CHECKPOINT' }).expect(202);
    const created = await http.post(`${BASE}/webhooks`).set(admin).send({ url: 'https://8.8.8.8/hook' });
    expect(created.status).toBe(201);
    subscriptionId = created.body.id;
  });
  afterAll(async () => {
    await fx.close();
    await closeWebhooks();
    await deleteKeys(prefix, REDIS_URL);
    redis.disconnect();
  });

  it('every example is sent with an unknown field in the body itself (in an array body, its first item)', () => {
    const top = (e: (typeof EXAMPLES)[number]) => (Array.isArray(e.value) ? ['0'] : []);
    const missed = EXAMPLES.filter(
      (e) => !UNKNOWN.some((u) => u.route === e.route && u.name === e.name && u.at.join() === top(e).join()),
    );
    expect(missed.map((e) => `${e.route} (${e.name})`)).toEqual([]);
  });

  it.each(UNKNOWN)('$route ($name): $field is a 400 naming it, and writes nothing', async (e) => {
    const before = await written();
    const res = await send(e.method, e.path).send(e.body as object);
    expectProblem(res, 400, e.field, 'unknown-field');
    // The example is otherwise valid: the unknown field is the only error.
    expect(res.body.errors).toHaveLength(1);
    expect(await written()).toEqual(before);
  });

  it.each(OPERATIONS)('$route: a body over the limit is a 413 problem, and writes nothing', async (e) => {
    const before = await written();
    const huge = `{"pad":"${'x'.repeat(REST_BODY_LIMIT)}"}`;
    const res = await send(e.method, e.path).set('content-type', 'application/json').send(huge);
    expectProblem(res, 413, 'body', 'max-size');
    expect(res.body).toMatchObject({
      status: 413,
      detail: `the body is larger than ${REST_BODY_LIMIT} bytes`,
    });
    expect(await written()).toEqual(before);
  });

  describe('GraphQL: every input object a mutation takes refuses an unknown field', () => {
    const schema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8'));
    const mutations = Object.values(schema.getMutationType()!.getFields());

    /** A value GraphQL validation accepts for the type: an object's required fields only, a list of one. */
    const valueOf = (type: GraphQLInputType): unknown => {
      if (isNonNullType(type)) return valueOf(type.ofType);
      if (isListType(type)) return [valueOf(type.ofType)];
      if (isEnumType(type)) return type.getValues()[0]!.name;
      if (isInputObjectType(type)) {
        return Object.fromEntries(required(Object.values(type.getFields())).map((f) => [f.name, f.value]));
      }
      return { Int: 1, Long: 1, Float: 1, Boolean: true }[type.name] ?? 'x';
    };
    const required = (args: readonly (GraphQLArgument | GraphQLInputField)[]) =>
      args
        .filter((a) => isNonNullType(a.type) && a.defaultValue === undefined)
        .map((a) => ({ name: a.name, type: a.type, value: valueOf(a.type) }));

    /**
     * A value of the type with `unexpected` in one of its input objects (a list's only item), for each input
     * object it holds at any depth: `at` is the path of fields to it.
     */
    const withUnknown = (
      type: GraphQLInputType,
      seen: string[] = [],
    ): { at: string[]; type: string; value: unknown }[] => {
      if (isNonNullType(type)) return withUnknown(type.ofType, seen);
      if (isListType(type)) return withUnknown(type.ofType, seen).map((v) => ({ ...v, value: [v.value] }));
      if (!isInputObjectType(type) || seen.includes(type.name)) return [];
      const base = valueOf(type) as object;
      return [
        { at: [], type: type.name, value: { ...base, unexpected: 1 } },
        ...Object.values(type.getFields()).flatMap((field) =>
          withUnknown(field.type, [...seen, type.name]).map((v) => ({
            ...v,
            at: [field.name, ...v.at],
            value: { ...base, [field.name]: v.value },
          })),
        ),
      ];
    };

    const cases = mutations.flatMap((mutation) =>
      mutation.args.flatMap((arg) =>
        withUnknown(arg.type).flatMap(({ at, type, value }) =>
          (['inline', 'variables'] as const).map((form) => ({
            name: [mutation.name, arg.name, ...at].join('.'),
            form,
            type,
            mutation,
            // The mutation's other required arguments, then the one with the unknown field.
            args: [
              ...required(mutation.args).filter((a) => a.name !== arg.name),
              { name: arg.name, type: arg.type, value },
            ],
          })),
        ),
      ),
    );

    /** A value as a GraphQL literal of its type; a field the type does not know is printed as JSON. */
    const literal = (value: unknown, type: GraphQLInputType): string => {
      if (isNonNullType(type)) return literal(value, type.ofType);
      if (isListType(type)) return `[${(value as unknown[]).map((v) => literal(v, type.ofType)).join(', ')}]`;
      if (isInputObjectType(type)) {
        const fields = type.getFields();
        const entries = Object.entries(value as object).map(
          ([k, v]) => `${k}: ${fields[k] ? literal(v, fields[k].type) : JSON.stringify(v)}`,
        );
        return `{ ${entries.join(', ')} }`;
      }
      return isEnumType(type) ? String(value) : JSON.stringify(value);
    };

    /** The mutation with its arguments written in the document, or passed as variables. */
    const operation = ({ mutation, args, form }: (typeof cases)[number]) => {
      const selection = isLeafType(getNamedType(mutation.type)) ? '' : ' { __typename }';
      if (form === 'inline') {
        const inline = args.map((a) => `${a.name}: ${literal(a.value, a.type)}`).join(', ');
        return { query: `mutation { ${mutation.name}(${inline})${selection} }` };
      }
      const declared = args.map((a) => `$${a.name}: ${String(a.type)}`).join(', ');
      const passed = args.map((a) => `${a.name}: $${a.name}`).join(', ');
      return {
        query: `mutation (${declared}) { ${mutation.name}(${passed})${selection} }`,
        variables: Object.fromEntries(args.map((a) => [a.name, a.value])),
      };
    };

    it('the mutations take no JSON argument, which would take any object unchecked', () => {
      const json = mutations.flatMap((m) => m.args.filter((a) => getNamedType(a.type).name === 'JSON'));
      expect(json.map((a) => a.name)).toEqual([]);
    });

    it.each(cases)('$name ($form): refused naming the field, nothing written', async (c) => {
      const scope = (GRAPHQL_RULES as Record<string, Scope>)[`Mutation.${c.mutation.name}`] ?? DEFAULT_RULE;
      const before = await written();
      const res = await http.post('/graphql').set(bearer(scope)).send(operation(c));
      // What yoga answers: a literal fails validation (200, GRAPHQL_VALIDATION_FAILED), a variable its
      // coercion before execution (400, naming the variable and where in it). Either way the only error.
      const named = `Field "unexpected" is not defined by type "${c.type}".`;
      expect([res.status, res.body.data]).toEqual([c.form === 'inline' ? 200 : 400, undefined]);
      expect(res.body.errors).toEqual([
        expect.objectContaining(
          c.form === 'inline'
            ? { message: named, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }
            : { message: expect.stringContaining(`; ${named}`) },
        ),
      ]);
      expect(await written()).toEqual(before);
    });
  });
});

describe('PUT savepoint-schedule: retention and format (docs/domain.md R49, R53)', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  beforeAll(async () => {
    fx = apiFixture();
    http = request(fx.app);
    await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] });
  });
  afterAll(() => fx.close());

  it('maxCount 0 is a 400 naming body.retention.maxCount, and writes nothing', async () => {
    const before = (await fx.store.readStream(`snapcat-job-${JOB}`)).length;
    const res = await http
      .put(`${BASE}/jobs/${JOB}/savepoint-schedule`)
      .send({ every: 'PT1S', retention: { maxCount: 0 } });
    expectProblem(res, 400, 'body.retention.maxCount');
    expect((await fx.store.readStream(`snapcat-job-${JOB}`)).length).toBe(before);
  });

  it('maxCount 1 and a formatType are accepted and shown', async () => {
    const schedule = { every: 'PT1S', retention: { maxCount: 1 }, formatType: 'NATIVE' };
    const res = await http.put(`${BASE}/jobs/${JOB}/savepoint-schedule`).send(schedule);
    expect(res.status).toBe(200);
    expect(res.body.schedule).toEqual(schedule);
    expect((await http.get(`${BASE}/jobs/${JOB}/savepoint-schedule`)).body.schedule).toEqual(schedule);
    const bad = await http
      .put(`${BASE}/jobs/${JOB}/savepoint-schedule`)
      .send({ ...schedule, formatType: 'x' });
    expectProblem(bad, 400, 'body.formatType');
  });
});

describe('input the checks above let through, each a 400 naming its field with nothing written (a review of session 34)', () => {
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  const written = async () => (await fx.store.readStream(`snapcat-job-${JOB}`)).length;
  beforeAll(async () => {
    fx = apiFixture();
    http = request(fx.app);
    await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] });
  });
  afterAll(() => fx.close());

  it.each([
    ['an interval past what a date holds', { every: 'P999999999D' }, 'body.every', 'at-most-a-century'],
    ['a cron expression no date matches', { cron: '0 0 0 31 2,4 *' }, 'body.cron', 'fires'],
    ['an unknown time zone', { cron: '0 0 * * * *', tz: 'Mars/Base' }, 'body.tz', 'iana-time-zone'],
  ])('a savepoint schedule with %s', async (_what, schedule, field, rule) => {
    const before = await written();
    expectProblem(await http.put(`${BASE}/jobs/${JOB}/savepoint-schedule`).send(schedule), 400, field, rule);
    expect(await written()).toBe(before);
    expect((await http.get(`${BASE}/jobs/${JOB}/savepoint-schedule`)).status).toBe(404);
  });

  it('a schedule at the longest interval is taken and says when it fires', async () => {
    const res = await http.put(`${BASE}/jobs/${JOB}/savepoint-schedule`).send({ every: 'P36525D' });
    expect(res.status).toBe(200);
    expect(Date.parse(res.body.nextFireAt)).toBeGreaterThan(Date.now());
    expect((await http.delete(`${BASE}/jobs/${JOB}/savepoint-schedule`)).status).toBe(200);
  });

  it.each([
    ['below a regular file', '/etc/hostname/x', 'ENOTDIR'],
    ['with a name longer than the file system takes', `/${'a'.repeat(300)}`, 'ENAMETOOLONG'],
  ])('a target directory %s', async (_what, targetDirectory, code) => {
    const before = await written();
    const res = await http.post(`${BASE}/jobs/${JOB}/snapshots`).send({ kind: 'SAVEPOINT', targetDirectory });
    expectProblem(res, 400, 'body.targetDirectory', 'usable-path');
    expect(res.body.detail).toContain(code);
    expect(await written()).toBe(before);
  });

  it('a path parameter that does not decode', async () => {
    for (const path of [`${BASE}/jobs/%zz`, `${BASE}/jobs/%zz/snapshots/1/acks`]) {
      const res = await http.post(path).send({ taskId: 'a' });
      expectProblem(res, 400, 'path', 'percent-encoding');
    }
    expectProblem(await http.get(`${BASE}/jobs/%E0%A4%A`), 400, 'path', 'percent-encoding');
    const flink = await http.get('/api/flink/v1/jobs/%zz/checkpoints');
    expect(flink.status).toBe(400);
    expect(flink.body.errors[0]).toMatch(/malformed percent-escape/);
  });
});

describe('input a fuzzing review let through (session 39): a 4xx naming the field, nothing written', () => {
  const fuzzPrefix = testPrefix('body-rules-fuzz');
  const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
  let fx: ReturnType<typeof apiFixture>;
  let http: ReturnType<typeof request>;
  const written = async () => (await fx.store.readStream(`snapcat-job-${JOB}`)).length;
  beforeAll(async () => {
    const readModel = new ReadModel(redis, fuzzPrefix);
    fx = apiFixture({ graphql: graphqlOver({ readModel, topic: `${fuzzPrefix}:events` }) });
    http = request(fx.app);
    await http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] });
  });
  afterAll(async () => {
    await fx.close();
    await deleteKeys(fuzzPrefix, REDIS_URL);
    redis.disconnect();
  });

  // zod ran the one-second refinement on text that was no duration, and durationMs threw: a 500.
  it.each(['P', '', 'garbage', 'T1S', `P${'9'.repeat(70)}D`])(
    'a schedule every %j is a 400 naming body.every',
    async (every) => {
      const before = await written();
      expectProblem(
        await http.put(`${BASE}/jobs/${JOB}/savepoint-schedule`).send({ every }),
        400,
        'body.every',
      );
      expect(await written()).toBe(before);
    },
  );

  it('GraphQL: a schedule every "P" is BAD_USER_INPUT, not an internal error', async () => {
    const res = await http.post('/graphql').send({
      query: `mutation { setSavepointSchedule(jobId: "${JOB}", schedule: { every: "P" }) { every } }`,
    });
    expect(res.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it.each([
    ['job', '{ job(id: "nothex") { name } }', 'id'],
    ['snapshot', '{ snapshot(jobId: "NOTHEX", id: 1) { id } }', 'jobId'],
    ['history', '{ history(jobId: "x") { edges { cursor } } }', 'jobId'],
  ])(
    'GraphQL %s with an id that is no Flink JobID is BAD_USER_INPUT naming the argument, not null',
    async (_, query, field) => {
      const res = await http.post('/graphql').send({ query });
      expect(res.body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field,
        rule: 'job-id',
      });
    },
  );

  it.each([
    ['jobs', '{ jobs(namespace: "B!") { edges { cursor } } }', 'namespace', 'namespace'],
    ['snapshot', `{ snapshot(jobId: "${JOB}", id: -1) { id } }`, 'id', 'positive'],
    ['history', `{ history(jobId: "${JOB}", snapshotId: 0) { edges { cursor } } }`, 'snapshotId', 'positive'],
  ])(
    'GraphQL %s with an argument REST refuses is BAD_USER_INPUT naming it, not an empty answer',
    async (_, query, field, rule) => {
      const res = await http.post('/graphql').send({ query });
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field, rule });
    },
  );

  it('GraphQL: a body that is not UTF-8 is a 400, and the mutation is not run', async () => {
    const server = createServer(fx.app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      // The bad bytes sit in a comment: decoded as U+FFFD, the document would run.
      const document = `mutation { triggerSnapshot(jobId: "${JOB}", kind: CHECKPOINT) { snapshotId } } # `;
      const body = Buffer.concat([
        Buffer.from(`{"query":${JSON.stringify(document).slice(0, -1)}`),
        Buffer.from([0xff]),
        Buffer.from('"}'),
      ]);
      const before = await written();
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/UTF-8/);
      expect(await written()).toBe(before);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('GraphQL: a compressed body is a 415 naming header.content-encoding (as chunked and REST), not "not UTF-8"', async () => {
    const document = `mutation { triggerSnapshot(jobId: "${JOB}", kind: CHECKPOINT) { id } }`;
    const before = await written();
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const res = await http
        .post('/graphql')
        .set('content-type', 'application/json')
        .set('content-encoding', encoding)
        .send(gzipSync(JSON.stringify({ query: document })));
      expectProblem(res, 415, 'header.content-encoding', 'supported-encoding');
    }
    expect(await written()).toBe(before);
  });

  // Names a client gives are shown in logs, webhooks and the console: no control characters, as versions.
  it.each([
    ['PUT', `/jobs/${JOB}`, { name: 'a\u0000b', tasks: ['a'] }, 'body.name'],
    ['PUT', `/jobs/${JOB}`, { tasks: ['a', 'b\nc'] }, 'body.tasks[1]'],
    ['POST', `/jobs/${JOB}/snapshots/1/acks`, { taskId: 'a\u001b[31m' }, 'body.taskId'],
    ['POST', `/jobs/${JOB}/snapshots/1/decline`, { taskId: 'a\u0085' }, 'body.taskId'],
  ])('%s %s with a control character is a 400 naming %s', async (method, path, body, field) => {
    const before = await written();
    const res = await http[method === 'PUT' ? 'put' : 'post'](`${BASE}${path}`).send(body);
    expectProblem(res, 400, field);
    expect(res.body.errors[0].message).toBe('must not contain control characters');
    expect(await written()).toBe(before);
  });

  // The body's integers were coerced: "0x10" recorded checkpoint 16, true 1, "1e3" 1000.
  it.each([['0x10'], [true], ['1e3'], ['16'], [1.5]])(
    'a restore with checkpointId %j is a 400',
    async (checkpointId) => {
      const before = await written();
      const res = await http
        .post(`${BASE}/jobs/${JOB}/restores`)
        .send({ externalPath: '/tmp/snapcat-restore-source/chk-16', checkpointId });
      expectProblem(res, 400, 'body.checkpointId');
      expect(await written()).toBe(before);
    },
  );

  // The Long scalar's literal parser answered null for anything else (the argument dropped, the restore
  // recorded without it), and its variable parser passed everything through to a coercing schema.
  it.each(['1.5', '"abc"', 'true', '[1]', '1e309'])(
    'GraphQL: restoreSnapshot with the literal checkpointId %s is refused, nothing written',
    async (literal) => {
      const before = await written();
      const res = await http.post('/graphql').send({
        query: `mutation { restoreSnapshot(jobId: "${JOB}", externalPath: "/tmp/snapcat-restore-source/chk-16", checkpointId: ${literal}) { restorePath } }`,
      });
      expect(res.body.errors?.[0]?.message).toMatch(
        /^Expected value of type "Long", found .*; must be an integer/,
      );
      expect(res.body.data ?? null).toBeNull();
      expect(await written()).toBe(before);
    },
  );

  it.each([[true], ['0x10'], ['16'], [1.5], [2 ** 53]])(
    'GraphQL: restoreSnapshot with the variable checkpointId %j is refused, nothing written',
    async (checkpointId) => {
      const before = await written();
      const res = await http.post('/graphql').send({
        query: `mutation($id: Long) { restoreSnapshot(jobId: "${JOB}", externalPath: "/tmp/snapcat-restore-source/chk-16", checkpointId: $id) { restorePath } }`,
        variables: { id: checkpointId },
      });
      expect(res.body.errors?.[0]?.message).toMatch(
        /^Variable "\$id" got invalid value .*must be an integer/,
      );
      expect(await written()).toBe(before);
    },
  );
});
