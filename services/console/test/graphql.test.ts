import { ApiError, errorOf, graphqlHeaders, request, subscribe, type LiveState } from '../src/graphql';
import { actorOf, allPages, can, eventSummary } from '../src/queries';

describe('errorOf', () => {
  it('HTTP 401 is UNAUTHENTICATED, with the server message when there is one', () => {
    expect(errorOf(401, null)).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect(errorOf(401, { errors: [{ message: 'the token is not valid' }] })).toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'the token is not valid',
    });
  });

  it('the first GraphQL error: its message and extensions.code', () => {
    const body = {
      errors: [
        { message: 'snapshot 3 is not completed', extensions: { code: 'CONFLICT' } },
        { message: 'second', extensions: { code: 'NOT_FOUND' } },
      ],
      data: null,
    };
    expect(errorOf(200, body)).toMatchObject({ code: 'CONFLICT', message: 'snapshot 3 is not completed' });
    expect(errorOf(200, { errors: [{ message: 'x', extensions: { code: 'UNAUTHENTICATED' } }] })?.code).toBe(
      'UNAUTHENTICATED',
    );
    expect(errorOf(403, { errors: [{ message: 'needs operator' }] })?.code).toBe('FORBIDDEN');
    expect(errorOf(200, { errors: [{ message: 'odd' }] })?.code).toBe('GRAPHQL_ERROR');
  });

  it('a failed status without errors, or an answer that is not GraphQL', () => {
    expect(errorOf(502, null)).toMatchObject({ code: 'HTTP_ERROR', status: 502 });
    expect(errorOf(200, 'hello')?.code).toBe('PROTOCOL');
  });

  it('a problem+json answer: its detail, each error named by its field, its status; 429 retryable, with Retry-After', () => {
    const problem = (retryAfter?: string) =>
      new Headers({
        'content-type': 'application/problem+json; charset=utf-8',
        ...(retryAfter ? { 'retry-after': retryAfter } : {}),
      });
    const limited = errorOf(
      429,
      {
        type: 'urn:snapcat:problem:too-many-requests',
        title: 'Too many requests',
        status: 429,
        detail: 'rate limit exceeded: retry in 1 s',
      },
      problem('1'),
    );
    expect(limited).toMatchObject({
      message: 'rate limit exceeded: retry in 1 s',
      code: 'RATE_LIMITED',
      status: 429,
      retryAfterS: 1,
    });
    const tooLarge = errorOf(
      413,
      {
        title: 'Payload too large',
        status: 413,
        detail: 'the body is larger than 1048576 bytes',
        errors: [{ field: 'body', rule: 'max-size', message: 'must be at most 1048576 bytes' }],
      },
      problem(),
    );
    expect(tooLarge).toMatchObject({
      message: 'the body is larger than 1048576 bytes (body: must be at most 1048576 bytes)',
      code: 'BAD_USER_INPUT',
      status: 413,
    });
    // An error the detail already says is not said twice; a title stands in for a missing detail.
    expect(
      errorOf(
        400,
        {
          detail: 'body.query: is required',
          errors: [
            { field: 'body.query', rule: 'required', message: 'is required' },
            { field: 'body.variables', rule: 'type', message: 'must be an object' },
          ],
        },
        problem(),
      )?.message,
    ).toBe('body.query: is required (body.variables: must be an object)');
    expect(errorOf(503, { title: 'Service unavailable' }, problem('30'))).toMatchObject({
      message: 'Service unavailable (retry in 30 s)',
      code: 'UNAVAILABLE',
      retryAfterS: 30,
    });
    expect(errorOf(401, { detail: 'the token is not valid' }, problem())).toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'the token is not valid',
    });
  });

  it('none for data', () => {
    expect(errorOf(200, { data: { viewer: null } })).toBeNull();
  });
});

it('graphqlHeaders: the CSRF header always, the token when there is one', () => {
  expect(graphqlHeaders(null)).toEqual({
    'content-type': 'application/json',
    accept: 'application/json',
    'x-graphql-csrf': '1',
  });
  expect(graphqlHeaders('t0k', 'text/event-stream')).toMatchObject({
    authorization: 'Bearer t0k',
    accept: 'text/event-stream',
  });
});

describe('request and subscribe (fetch replaced)', () => {
  const realFetch = global.fetch;
  afterEach(() => {
    global.fetch = realFetch;
  });
  const session = (token: string | null = 'secret') => {
    const refused: ApiError[] = [];
    return { refused, token: () => token, unauthenticated: (e: ApiError) => refused.push(e) };
  };
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const stream = (chunks: string[]) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
          controller.close();
        },
      }),
      { status: 200, headers: { 'content-type': 'text/event-stream' } },
    );

  it('request POSTs the query to /graphql and resolves its data', async () => {
    const fetchMock = jest.fn(async (_url: string, _init: RequestInit) =>
      json(200, { data: { viewer: { name: 'ops' } } }),
    );
    global.fetch = fetchMock as unknown as typeof fetch;
    await expect(request(session(), '{ viewer { name } }', { a: 1 })).resolves.toEqual({
      viewer: { name: 'ops' },
    });
    const [url, init] = fetchMock.mock.calls[0]!;
    expect(url).toBe('/graphql');
    expect(init.method).toBe('POST');
    expect(init.headers).toMatchObject({ authorization: 'Bearer secret', 'x-graphql-csrf': '1' });
    expect(JSON.parse(String(init.body))).toEqual({ query: '{ viewer { name } }', variables: { a: 1 } });
  });

  it('request tells the session of UNAUTHENTICATED, and rejects with the error', async () => {
    global.fetch = (async () => json(401, { errors: [{ message: 'a token is required' }] })) as typeof fetch;
    const s = session(null);
    await expect(request(s, '{ viewer { name } }')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(s.refused).toHaveLength(1);
  });

  it('request: a problem+json refusal (a spent rate limit) rejects with its detail and status', async () => {
    global.fetch = (async () =>
      new Response(
        JSON.stringify({
          title: 'Too many requests',
          status: 429,
          detail: 'rate limit exceeded: retry in 2 s',
        }),
        { status: 429, headers: { 'content-type': 'application/problem+json', 'retry-after': '2' } },
      )) as typeof fetch;
    await expect(request(session(), '{ x }')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      message: 'rate limit exceeded: retry in 2 s',
      retryAfterS: 2,
    });
  });

  it('request: an unreachable server is a NETWORK error', async () => {
    global.fetch = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    await expect(request(session(), '{ x }')).rejects.toMatchObject({ code: 'NETWORK' });
  });

  it('subscribe hands each `next` to the handler, reconnects after the stream ends, stops on abort', async () => {
    const controller = new AbortController();
    const seen: unknown[] = [];
    const states: LiveState[] = [];
    const opened: boolean[] = [];
    let calls = 0;
    global.fetch = (async (_url: string, init: RequestInit) => {
      calls += 1;
      expect((init.headers as Record<string, string>).accept).toBe('text/event-stream');
      if (calls === 1) {
        return stream([
          ':\n\nevent: next\ndata: {"data":{"snapshotEvents":{"type":"A","snapshotId":1}}}\n',
          '\nevent: next\ndata: {"data":{"snapshotEvents":{"type":"B","snapshotId":2}}}\n\n',
          'event: complete\ndata:\n\n',
        ]);
      }
      if (calls === 2) throw new TypeError('connection refused');
      controller.abort();
      throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    }) as typeof fetch;
    const delays: number[] = [];
    await subscribe(
      session(),
      'subscription { x }',
      { jobId: 'j' },
      {
        next: (data) => seen.push(data),
        open: (reconnected) => opened.push(reconnected),
        state: (state) => states.push(state),
      },
      controller.signal,
      (attempt) => {
        delays.push(attempt);
        return 1;
      },
    );
    expect(seen).toEqual([
      { snapshotEvents: { type: 'A', snapshotId: 1 } },
      { snapshotEvents: { type: 'B', snapshotId: 2 } },
    ]);
    expect(opened).toEqual([false]);
    expect(calls).toBe(3);
    // After the end of the stream: attempt 0; after the refused connection: attempt 1.
    expect(delays).toEqual([0, 1]);
    expect(states).toEqual(['connecting', 'live', 'retrying', 'connecting', 'retrying', 'connecting']);
  });

  it('subscribe stops for good on UNAUTHENTICATED (in the stream or as a 401)', async () => {
    for (const answer of [
      () => json(401, { errors: [{ message: 'a token is required' }] }),
      () =>
        stream([
          'event: next\ndata: {"errors":[{"message":"no","extensions":{"code":"UNAUTHENTICATED"}}]}\n\n',
        ]),
    ]) {
      global.fetch = (async () => answer()) as typeof fetch;
      const s = session();
      const states: LiveState[] = [];
      await subscribe(
        s,
        'subscription { x }',
        {},
        { next: () => undefined, state: (st) => states.push(st) },
        new AbortController().signal,
        () => 1,
      );
      expect(states.at(-1)).toBe('closed');
      expect(s.refused).toHaveLength(1);
    }
  });
});

describe('queries helpers', () => {
  it('allPages follows endCursor to the end, or up to max', async () => {
    const pages = [
      { edges: [{ node: 1 }, { node: 2 }], pageInfo: { hasNextPage: true, endCursor: 'c2' } },
      { edges: [{ node: 3 }, { node: 4 }], pageInfo: { hasNextPage: true, endCursor: 'c4' } },
      { edges: [{ node: 5 }], pageInfo: { hasNextPage: false, endCursor: 'c5' } },
    ];
    const asked: [number, string | null][] = [];
    const fetchPage = async (first: number, after: string | null) => {
      asked.push([first, after]);
      return pages[asked.length - 1]!;
    };
    await expect(allPages(fetchPage, 2)).resolves.toEqual({
      items: [1, 2, 3, 4, 5],
      complete: true,
      endCursor: 'c5',
    });
    expect(asked).toEqual([
      [2, null],
      [2, 'c2'],
      [2, 'c4'],
    ]);
    asked.length = 0;
    await expect(allPages(fetchPage, 2, 3)).resolves.toEqual({
      items: [1, 2, 3, 4],
      complete: false,
      endCursor: 'c4',
    });
    expect(asked).toEqual([
      [2, null],
      [1, 'c2'],
    ]);
  });

  it('can: the expanded scopes decide', () => {
    expect(can({ scopes: ['read'] }, 'operator')).toBe(false);
    expect(can({ scopes: ['operator', 'runtime', 'read'] }, 'runtime')).toBe(true);
    expect(can({ scopes: ['admin'] }, 'operator')).toBe(true);
  });

  it('eventSummary and actorOf', () => {
    expect(
      eventSummary({
        type: 'TaskAcknowledged',
        data: { taskId: 't0', stateSize: 1_258_291, stateHandles: [] },
      }),
    ).toBe('task t0 · state 1.2 MiB');
    expect(eventSummary({ type: 'X', data: null })).toBe('');
    expect(actorOf({ metadata: { actor: 'ops' } })).toBe('ops');
    expect(actorOf({ metadata: null })).toBeNull();
    expect(actorOf({ metadata: { actor: '' } })).toBeNull();
  });
});
