import {
  ClusterHeaders,
  ClusterRestUrl,
  FORBIDDEN_HEADERS,
  MAX_CLUSTER_HEADERS,
  MAX_HEADER_VALUE,
  clusterView,
  evolveClusters,
  foldClusters,
  type ClusterEvent,
} from '../src';

// The Flink clusters' rules in the domain (issue 19, decision 0018): which base URLs and headers a cluster
// may be registered with, and what its events make of it. The API and the repository apply these; the
// tests here are the domain's own (mutation testing runs libs/domain against libs/domain/test alone).

/** The rules of a refused value, by path: what a 400 names. */
const refusals = (result: {
  success: boolean;
  error?: { issues: { path: PropertyKey[]; params?: unknown }[] };
}) =>
  (result.error?.issues ?? []).map((issue) => [
    issue.path.join('.'),
    (issue.params as { rule?: string } | undefined)?.rule ?? 'format',
  ]);

describe('ClusterRestUrl', () => {
  it.each([
    'http://jobmanager:8081',
    'https://flink.example.com/proxy/cluster-a/',
    'https://flink.example.com:443/a@b', // an @ in the path is not userinfo
  ])('accepts %s', (url) => {
    expect(ClusterRestUrl.safeParse(url).success).toBe(true);
  });

  it.each([
    ['https://user:secret@flink.example.com', 'no-credentials'],
    ['https://@flink.example.com', 'no-credentials'],
    ['https://flink.example.com/?token=1', 'base-url'],
    ['https://flink.example.com/#top', 'base-url'],
    ['https://flink.example.com/a?b', 'base-url'],
  ])('refuses %s (%s)', (url, rule) => {
    expect(refusals(ClusterRestUrl.safeParse(url))).toEqual([['', rule]]);
  });

  it.each(['ftp://flink.example.com', 'jobmanager:8081', ''])('refuses %j: not an http(s) URL', (url) => {
    expect(ClusterRestUrl.safeParse(url).success).toBe(false);
  });
});

describe('ClusterHeaders', () => {
  it('accepts tokens as names and visible characters, spaces and tabs as values', () => {
    const headers = { Authorization: 'Bearer abc', 'X-Api-Key': 'k\tv ~', "x!#$%&'*+-.^_`|~9": '' };
    expect(ClusterHeaders.safeParse(headers).success).toBe(true);
  });

  it.each([
    [{ 'bad name': 'v' }, 'bad name', 'header-name'],
    [{ ['x'.repeat(257)]: 'v' }, 'x'.repeat(257), 'header-name'],
    [{ 'x-ok': 'line\r\nbreak' }, 'x-ok', 'header-value'],
    [{ 'x-ok': 'nul\u0000' }, 'x-ok', 'header-value'],
    [{ 'x-ok': 'v'.repeat(MAX_HEADER_VALUE + 1) }, 'x-ok', 'max-length'],
  ])('refuses %j at %s (%s)', (headers, path, rule) => {
    expect(refusals(ClusterHeaders.safeParse(headers))).toEqual([[path, rule]]);
  });

  it('a name of 256 characters and a value of the maximum length are accepted', () => {
    expect(ClusterHeaders.safeParse({ ['x'.repeat(256)]: 'v'.repeat(MAX_HEADER_VALUE) }).success).toBe(true);
  });

  it.each(FORBIDDEN_HEADERS)('refuses %s, in any case: the client sets it', (name) => {
    const upper = name.toUpperCase();
    expect(refusals(ClusterHeaders.safeParse({ [upper]: 'v' }))).toEqual([[upper, 'forbidden-header']]);
  });

  it('refuses a name given twice in different cases, once', () => {
    expect(refusals(ClusterHeaders.safeParse({ 'X-Key': 'a', 'x-key': 'b' }))).toEqual([['x-key', 'unique']]);
  });

  it(`refuses more than ${MAX_CLUSTER_HEADERS} headers, and accepts exactly that many`, () => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));
    expect(ClusterHeaders.safeParse(many(MAX_CLUSTER_HEADERS)).success).toBe(true);
    expect(refusals(ClusterHeaders.safeParse(many(MAX_CLUSTER_HEADERS + 1)))).toEqual([['', 'max-length']]);
  });

  it('never puts a value in a message (it is a secret)', () => {
    const secret = 'hunter2-\r\n';
    const result = ClusterHeaders.safeParse({ 'x-key': secret, Host: secret });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).not.toContain('hunter2');
  });
});

describe('the clusters fold', () => {
  const sealed = (data: string) => ({ v: 1 as const, iv: 'iv', tag: 'tag', data });
  const registered: ClusterEvent = {
    type: 'ClusterRegistered',
    name: 'prod',
    occurredAt: '2026-12-01T10:00:00.000Z',
    restUrl: 'http://jm:8081',
    headers: [{ name: 'authorization', value: sealed('a') }],
  };

  it('registers a cluster: created and updated at its event, reachability unknown', () => {
    const prod = foldClusters([registered]).get('prod');
    expect(prod).toEqual({
      name: 'prod',
      restUrl: 'http://jm:8081',
      headers: [{ name: 'authorization', value: sealed('a') }],
      namespaces: '*', // an event without namespaces (written before they existed): every namespace
      createdAt: '2026-12-01T10:00:00.000Z',
      updatedAt: '2026-12-01T10:00:00.000Z',
      reachability: { state: 'UNKNOWN', since: null, error: null },
    });
  });

  it('a change replaces the definition, keeps when it was created and what the connector last found', () => {
    const clusters = foldClusters([
      registered,
      {
        type: 'FlinkClusterUnreachable',
        name: 'prod',
        occurredAt: '2026-12-01T10:05:00.000Z',
        error: 'ECONNREFUSED',
      },
      {
        type: 'ClusterChanged',
        name: 'prod',
        occurredAt: '2026-12-01T11:00:00.000Z',
        restUrl: 'https://jm:8443',
        headers: [],
        namespaces: ['payments'],
      },
    ]);
    expect(clusters.get('prod')).toEqual({
      name: 'prod',
      restUrl: 'https://jm:8443',
      headers: [],
      namespaces: ['payments'],
      createdAt: '2026-12-01T10:00:00.000Z',
      updatedAt: '2026-12-01T11:00:00.000Z',
      reachability: { state: 'UNREACHABLE', since: '2026-12-01T10:05:00.000Z', error: 'ECONNREFUSED' },
    });
  });

  it('reachability: unreachable with its error, then reachable without one; of an unknown cluster, nothing', () => {
    const down: ClusterEvent = {
      type: 'FlinkClusterUnreachable',
      name: 'prod',
      occurredAt: '2026-12-01T10:05:00.000Z',
      error: 'timeout',
    };
    const up: ClusterEvent = {
      type: 'FlinkClusterReachable',
      name: 'prod',
      occurredAt: '2026-12-01T10:06:00.000Z',
    };
    expect(foldClusters([registered, down]).get('prod')?.reachability).toEqual({
      state: 'UNREACHABLE',
      since: '2026-12-01T10:05:00.000Z',
      error: 'timeout',
    });
    expect(foldClusters([registered, down, up]).get('prod')?.reachability).toEqual({
      state: 'REACHABLE',
      since: '2026-12-01T10:06:00.000Z',
      error: null,
    });
    expect(foldClusters([down, up]).size).toBe(0);
  });

  it('a removed cluster is gone, and may be registered afresh', () => {
    const removed: ClusterEvent = {
      type: 'ClusterRemoved',
      name: 'prod',
      occurredAt: '2026-12-01T12:00:00.000Z',
    };
    expect(foldClusters([registered, removed]).has('prod')).toBe(false);
    const again = { ...registered, occurredAt: '2026-12-01T13:00:00.000Z' };
    expect(foldClusters([registered, removed, again]).get('prod')?.createdAt).toBe(
      '2026-12-01T13:00:00.000Z',
    );
  });

  it('an event leaves the state it was applied to as it was (states are shared)', () => {
    const before = foldClusters([registered]);
    const after = evolveClusters(before, {
      type: 'ClusterRemoved',
      name: 'prod',
      occurredAt: '2026-12-01T12:00:00.000Z',
    });
    expect(after.has('prod')).toBe(false);
    expect(before.has('prod')).toBe(true);
  });

  it('a view names the headers, never their values, and the reachability', () => {
    const view = clusterView(foldClusters([registered]).get('prod')!);
    expect(view).toEqual({
      name: 'prod',
      restUrl: 'http://jm:8081',
      headers: ['authorization'],
      namespaces: '*',
      createdAt: '2026-12-01T10:00:00.000Z',
      updatedAt: '2026-12-01T10:00:00.000Z',
      state: 'UNKNOWN',
      stateSince: null,
      lastError: null,
    });
    expect(JSON.stringify(view)).not.toContain('"data"');
  });
});
