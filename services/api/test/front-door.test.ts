import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { newToken, parseTokenList, tokenLine } from '@snapcat/runtime';
import { frontDoor, ACK_ROUTE } from '../src/front-door';

const GRAPHQL_ROUTE = '/graphql';
import { accessCheck } from '../src/access';
import { requestObserver } from '../src/metrics';
import { problemResponder } from '../src/problem';
import { createRateLimiter } from '../src/rate-limit';
import { createMetricsRegistry } from '@snapcat/runtime';
import IORedis from 'ioredis';
import { ReadModel } from '@snapcat/read-model';
import { deleteKeys } from '../../../test/support/redis';
import { apiFixture, BASE, graphqlOver, JOB } from './fixture';

const REDIS_URL = 'redis://127.0.0.1:6379';

/*
 * Decision 0036: the plain acknowledgements and GraphQL POSTs are answered before express. The front door must
 * answer every request it takes exactly as the express app does, and leave every other form to express.
 */

const ACKS = `${BASE}/jobs/${JOB}/snapshots/1/acks`;
const runtime = newToken();
const reader = newToken();
const TOKENS = parseTokenList(
  [
    tokenLine({ name: 'flink', scopes: ['runtime'], namespaces: '*' }, runtime),
    tokenLine({ name: 'dashboards', scopes: ['read'], namespaces: '*' }, reader),
  ].join('\n'),
);

interface Case {
  name: string;
  path?: string;
  headers?: Record<string, string>;
  body: string | Buffer;
}

const json = { 'content-type': 'application/json' };
const ack = (taskId: string) => JSON.stringify({ taskId, stateSize: 1024 });

/** Requests in order: each later one sees what the earlier ones recorded (a repeated ack, a completion). */
const CASES: Case[] = [
  { name: 'one ack', headers: json, body: ack('t0') },
  { name: 'the same ack again', headers: json, body: ack('t0') },
  {
    name: 'a batch',
    headers: json,
    body: JSON.stringify([{ taskId: 't1' }, { taskId: 't2', stateSize: 7 }]),
  },
  { name: 'a body that breaks the schema', headers: json, body: '{}' },
  { name: 'a field the schema does not know', headers: json, body: '{"taskId":"t3","extra":1}' },
  { name: 'no JSON', headers: json, body: '{"taskId":' },
  { name: 'JSON that is neither object nor array', headers: json, body: '"t3"' },
  { name: 'a byte-order mark', headers: json, body: `\uFEFF${ack('t3')}` },
  {
    name: 'an unknown snapshot',
    path: `${BASE}/jobs/${JOB}/snapshots/99/acks`,
    headers: json,
    body: ack('t4'),
  },
  {
    name: 'a snapshot id that is no number',
    path: `${BASE}/jobs/${JOB}/snapshots/x/acks`,
    headers: json,
    body: ack('t4'),
  },
  {
    name: 'an unknown job',
    path: `${BASE}/jobs/${'f'.repeat(32)}/snapshots/1/acks`,
    headers: json,
    body: ack('t4'),
  },
  {
    name: 'a +json type with charset',
    headers: { 'content-type': 'application/vnd.flink+json; charset=UTF-8' },
    body: ack('t4'),
  },
  { name: 'text', headers: { 'content-type': 'text/plain' }, body: ack('t5') },
  {
    name: 'another charset',
    headers: { 'content-type': 'application/json; charset=latin1' },
    body: ack('t5'),
  },
  {
    name: 'a query string (the route takes none: 400)',
    path: `${ACKS}?from=flink`,
    headers: json,
    body: ack('t5'),
  },
  { name: 'a trailing slash', path: `${ACKS}/`, headers: json, body: ack('t6') },
  { name: 'gzip', headers: { ...json, 'content-encoding': 'gzip' }, body: gzipSync(ack('t7')) },
  { name: 'gzip that does not inflate', headers: { ...json, 'content-encoding': 'gzip' }, body: ack('t8') },
  { name: 'a correlation id', headers: { ...json, 'x-correlation-id': 'flink-42' }, body: ack('t8') },
  { name: 'an insane correlation id', headers: { ...json, 'x-correlation-id': 'a b' }, body: ack('t9') },
  { name: 'another host', headers: { ...json, host: 'evil.example' }, body: ack('t9') },
  { name: 'a page of another origin', headers: { ...json, origin: 'https://evil.example' }, body: ack('t9') },
  {
    name: 'the last tasks',
    headers: json,
    // t5's ack above came with a query string, refused.
    body: JSON.stringify([{ taskId: 't5' }, { taskId: 't9' }, { taskId: 't10' }, { taskId: 't11' }]),
  },
  { name: 'an ack after completion', headers: json, body: ack('t0') },
];

const TOKEN_CASES: Case[] = [
  { name: 'no token', headers: json, body: ack('t0') },
  {
    name: 'a token that is not configured',
    headers: { ...json, authorization: `Bearer ${newToken()}` },
    body: ack('t0'),
  },
  {
    name: 'a token without the scope',
    headers: { ...json, authorization: `Bearer ${reader}` },
    body: ack('t0'),
  },
  { name: 'a token with it', headers: { ...json, authorization: `Bearer ${runtime}` }, body: ack('t0') },
  {
    name: 'another host, with a token',
    headers: { ...json, host: 'snapcat.example', authorization: `Bearer ${runtime}` },
    body: ack('t1'),
  },
  { name: 'past the rate limit', headers: { ...json, authorization: `Bearer ${runtime}` }, body: ack('t2') },
];

const TASKS = Array.from({ length: 12 }, (_, i) => `t${i}`);

/** What an answer says: status, the headers a client reads, the body (request ids are compared as given). */
function answer(res: request.Response) {
  const body = res.body as { errors?: { rule: string; message?: string }[] };
  // The JSON parser's own wording differs (body-parser's against JSON.parse's); field and rule are the contract.
  for (const error of body.errors ?? []) if (error.rule === 'json') delete error.message;
  const id = res.headers['x-correlation-id'] as string;
  return {
    status: res.status,
    contentType: res.headers['content-type'],
    correlationId: /^[0-9a-f-]{36}$/.test(id) ? 'generated' : id,
    wwwAuthenticate: res.headers['www-authenticate'],
    retryAfter: res.headers['retry-after'],
    body,
  };
}

async function answers(
  cases: Case[],
  options: Parameters<typeof apiFixture>[0],
  through: 'the app' | 'express alone',
  headers: Record<string, string> = {},
  /** Register the job and trigger snapshot 1 first (the acks need them). */
  setUp = true,
) {
  const fx = apiFixture(options);
  try {
    const listener: RequestListener = through === 'the app' ? fx.app : fx.app.express;
    const http = request(listener);
    if (setUp) {
      await http.put(`${BASE}/jobs/${JOB}`).set(headers).send({ tasks: TASKS }).expect(201);
      await http.post(`${BASE}/jobs/${JOB}/snapshots`).set(headers).send({ kind: 'SAVEPOINT' }).expect(202);
    }
    const out = [];
    for (const c of cases) {
      const res = await http
        .post(c.path ?? ACKS)
        .set(c.headers ?? {})
        .serialize((body: unknown) => body as string) // as given, not as superagent would encode it
        .send(c.body);
      out.push({ case: c.name, ...answer(res) });
    }
    return out;
  } finally {
    await fx.close();
  }
}

describe('the front door (decision 0036)', () => {
  it('answers every request as the express route does, without tokens', async () => {
    const front = await answers(CASES, {}, 'the app');
    const express = await answers(CASES, {}, 'express alone');
    expect(front).toEqual(express);
    // The cases mean something: acks recorded, the snapshot completed, problems of each kind.
    expect(front.map((a) => a.status)).toEqual([
      200, 200, 200, 400, 400, 400, 400, 200, 200, 400, 404, 200, 415, 415, 400, 200, 200, 400, 200, 200, 403,
      403, 200, 200,
    ]);
    expect(front.at(-2)!.body).toEqual(
      expect.arrayContaining([expect.objectContaining({ snapshotStatus: 'COMPLETED' })]),
    );
  });

  it('answers every request as the express route does, with tokens and a rate limit', async () => {
    const admin = newToken();
    const tokens = [
      ...TOKENS,
      ...parseTokenList(tokenLine({ name: 'setup', scopes: ['admin'], namespaces: '*' }, admin)),
    ];
    const options = () => ({ tokens, rateLimiter: createRateLimiter(1) });
    const setup = { authorization: `Bearer ${admin}` };
    const front = await answers(TOKEN_CASES, options(), 'the app', setup);
    const express = await answers(TOKEN_CASES, options(), 'express alone', setup);
    expect(front).toEqual(express);
    expect(front.map((a) => a.status)).toEqual([401, 401, 403, 200, 200, 429]);
  });

  it('takes the plain acknowledgements and GraphQL POSTs, and leaves every other form to express', async () => {
    const takes = frontDoor({
      observe: requestObserver(createMetricsRegistry()),
      authenticationOn: false,
      access: accessCheck({ tokens: [] }),
      acknowledge: async () => ({ many: false, replies: [{ result: 'SUCCESS', snapshotStatus: null }] }),
      respondWithProblem: problemResponder(() => {}),
      bodyLimit: 64,
      graphql: { handle: (_req, res) => res.writeHead(298).end(), endpoint: GRAPHQL_ROUTE, bodyLimit: 64 },
    });
    const server = createServer((req, res) => {
      if (!takes(req, res)) res.writeHead(299).end('express');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const taken = async (path: string, headers: Record<string, string>, body: string | ArrayBuffer) => {
      const res = await fetch(`${url}${path}`, { method: 'POST', headers, body });
      return res.status === 200 && (await res.json()).result === 'SUCCESS';
    };
    try {
      expect(ACK_ROUTE).toBe('/api/v1/jobs/:jobId/snapshots/:snapshotId/acks');
      expect(await taken(ACKS, json, ack('t0'))).toBe(true);
      expect(await taken(ACKS, { 'content-type': 'application/cloudevents+json;charset=utf-8' }, '{}')).toBe(
        true,
      );
      expect(await taken(`${ACKS}?x=1`, json, ack('t0'))).toBe(false);
      expect(await taken(`${ACKS}/`, json, ack('t0'))).toBe(false);
      expect(await taken(ACKS.replace('jobs', 'JOBS'), json, ack('t0'))).toBe(false);
      expect(await taken(ACKS.replace(JOB, `${JOB.slice(0, -2)}%39%30`), json, ack('t0'))).toBe(false);
      expect(await taken(ACKS, { 'content-type': 'text/plain' }, ack('t0'))).toBe(false);
      expect(await taken(ACKS, { 'content-type': 'application/json; charset=utf-16' }, ack('t0'))).toBe(
        false,
      );
      expect(
        await taken(
          ACKS,
          { ...json, 'content-encoding': 'gzip' },
          Uint8Array.from(gzipSync(ack('t0'))).buffer,
        ),
      ).toBe(false);
      expect(await taken(ACKS, json, JSON.stringify({ taskId: 'x'.repeat(64) }))).toBe(false); // over the limit
      expect(await taken(ACKS, json, '')).toBe(false);
      const chunked = await fetch(`${url}${ACKS}`, {
        method: 'POST',
        headers: json,
        body: new Blob([ack('t0')]).stream(),
        duplex: 'half',
      } as RequestInit);
      expect(chunked.status).toBe(299);
      const get = await fetch(`${url}${ACKS}`);
      expect(get.status).toBe(299);
      // GraphQL: a POST to the endpoint within its limit goes to yoga; anything else to express.
      const graphql = async (init: RequestInit, path = GRAPHQL_ROUTE) =>
        (await fetch(`${url}${path}`, init)).status;
      const query = JSON.stringify({ query: '{ viewer { name } }' });
      expect(await graphql({ method: 'POST', headers: json, body: query })).toBe(298);
      expect(await graphql({ method: 'POST', headers: { 'content-type': 'text/plain' }, body: query })).toBe(
        298,
      );
      expect(await graphql({ method: 'GET' }, `${GRAPHQL_ROUTE}?query=%7Bviewer%7Bname%7D%7D`)).toBe(299);
      expect(await graphql({ method: 'POST', headers: json, body: query }, `${GRAPHQL_ROUTE}?x=1`)).toBe(299);
      expect(await graphql({ method: 'POST', headers: json, body: query }, `${GRAPHQL_ROUTE}/`)).toBe(299);
      const large = JSON.stringify({ query: `{ viewer { name } } ${'#'.repeat(64)}` });
      expect(await graphql({ method: 'POST', headers: json, body: large })).toBe(299);
    } finally {
      server.close();
    }
  });

  it('answers GraphQL as the express app does, with tokens and without', async () => {
    const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const prefix = `snapcat-test-front-door-${process.pid}-${Date.now().toString(36)}`;
    const viewer = JSON.stringify({ query: '{ viewer { name scopes authenticationEnabled } }' });
    const trigger = JSON.stringify({
      query: `mutation { triggerSnapshot(jobId: "${JOB}", kind: SAVEPOINT) { id } }`,
    });
    const graphqlCases = (tokens: boolean): Case[] => [
      { name: 'a query', path: GRAPHQL_ROUTE, headers: json, body: viewer },
      {
        name: 'a document that does not parse',
        path: GRAPHQL_ROUTE,
        headers: json,
        body: '{"query":"{ viewer {"}',
      },
      { name: 'a body that is not JSON', path: GRAPHQL_ROUTE, headers: json, body: '{"query":' },
      { name: 'a form post', path: GRAPHQL_ROUTE, headers: { 'content-type': 'text/plain' }, body: viewer },
      {
        name: 'a correlation id',
        path: GRAPHQL_ROUTE,
        headers: { ...json, 'x-correlation-id': 'dash-7' },
        body: viewer,
      },
      ...(tokens
        ? [
            { name: 'no token', path: GRAPHQL_ROUTE, headers: json, body: viewer },
            {
              name: 'a read token',
              path: GRAPHQL_ROUTE,
              headers: { ...json, authorization: `Bearer ${reader}` },
              body: viewer,
            },
            {
              name: 'a mutation beyond it',
              path: GRAPHQL_ROUTE,
              headers: { ...json, authorization: `Bearer ${reader}` },
              body: trigger,
            },
          ]
        : [
            {
              name: 'another host',
              path: GRAPHQL_ROUTE,
              headers: { ...json, host: 'evil.example' },
              body: viewer,
            },
            {
              name: 'a page of another origin',
              path: GRAPHQL_ROUTE,
              headers: { ...json, origin: 'https://evil.example' },
              body: viewer,
            },
          ]),
    ];
    const options = (tokens: boolean) => ({
      ...(tokens ? { tokens: TOKENS } : {}),
      graphql: graphqlOver({
        readModel: new ReadModel(redis, prefix),
        topic: `${prefix}:events`,
        tokens: tokens ? TOKENS : undefined,
      }),
    });
    try {
      for (const tokens of [false, true]) {
        const cases = graphqlCases(tokens);
        const front = await answers(cases, options(tokens), 'the app', {}, false);
        const express = await answers(cases, options(tokens), 'express alone', {}, false);
        expect(front).toEqual(express);
        expect(front.map((a) => a.status)).toEqual(
          tokens ? [401, 200, 400, 403, 401, 401, 200, 403] : [200, 200, 400, 403, 200, 403, 403],
        );
        if (!tokens) {
          expect(front[0]!.body).toEqual({
            data: { viewer: { name: 'anonymous', scopes: expect.any(Array), authenticationEnabled: false } },
          });
        } else {
          expect(front[6]!.body).toEqual({
            data: { viewer: { name: 'dashboards', scopes: ['read'], authenticationEnabled: true } },
          });
          expect(front[7]!.body).toMatchObject({ errors: [{ extensions: { code: 'FORBIDDEN' } }] });
        }
      }
    } finally {
      await deleteKeys(prefix);
      redis.disconnect();
    }
  });
});
