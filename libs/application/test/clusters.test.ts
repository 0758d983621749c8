import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandRejected } from '@snapcat/domain';
import {
  MemoryEventStore,
  SqliteEventStore,
  WrongExpectedVersionError,
  type EventStore,
} from '@snapcat/event-store';
import { SecretBox } from '@snapcat/webhooks';
import {
  CLUSTERS_STREAM,
  ClusterHeadersUnreadableError,
  ClusterRepository,
  HeadersNeedKeyError,
  type ClusterRegistry,
} from '../src';

const box = new SecretBox('k'.repeat(32));
const T0 = Date.parse('2026-11-30T10:00:00.000Z');
const SECRET = 'Bearer eyJhbGciOiJIUzI1NiJ9.top-secret-value';
const API_KEY = 'proxy-api-key-0123456789';

describe('ClusterRepository', () => {
  let dir: string;
  let store: SqliteEventStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-clusters-'));
    store = new SqliteEventStore(join(dir, 'events.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers, replaces, keeps an unchanged one as it is, removes; the registry opens the headers', async () => {
    let now = T0;
    const clusters = new ClusterRepository(store, { box, now: () => now });
    const created = await clusters.put('flink-prod', {
      restUrl: 'https://flink.example.com:8081',
      headers: { Authorization: SECRET, 'X-Api-Key': API_KEY },
    });
    expect(created).toEqual({
      created: true,
      changed: true,
      cluster: {
        name: 'flink-prod',
        restUrl: 'https://flink.example.com:8081',
        headers: ['authorization', 'x-api-key'],
        namespaces: '*',
        createdAt: '2026-11-30T10:00:00.000Z',
        updatedAt: '2026-11-30T10:00:00.000Z',
        state: 'UNKNOWN',
        stateSince: null,
        lastError: null,
      },
    });
    // The same definition (names in another case and order): nothing written.
    const same = await clusters.put('flink-prod', {
      restUrl: 'https://flink.example.com:8081',
      headers: { 'x-api-key': API_KEY, AUTHORIZATION: SECRET },
    });
    expect(same).toEqual({ created: false, changed: false, cluster: created.cluster });
    expect(await store.readStream(CLUSTERS_STREAM)).toHaveLength(1);

    // Another value for the same name is a change.
    now = T0 + 1000;
    const changed = await clusters.put('flink-prod', {
      restUrl: 'https://flink.example.com:8081',
      headers: { Authorization: `${SECRET}-2`, 'X-Api-Key': API_KEY },
    });
    expect(changed).toMatchObject({ created: false, changed: true });
    expect(changed.cluster).toMatchObject({
      createdAt: '2026-11-30T10:00:00.000Z',
      updatedAt: '2026-11-30T10:00:01.000Z',
    });
    // A PUT without headers replaces them with none.
    await clusters.put('flink-dev', { restUrl: 'http://localhost:8081' });
    const registry: ClusterRegistry = new ClusterRepository(store, { box });
    expect(await registry.get('flink-prod')).toEqual({
      name: 'flink-prod',
      restUrl: 'https://flink.example.com:8081',
      headers: { authorization: `${SECRET}-2`, 'x-api-key': API_KEY },
    });
    expect(await registry.list()).toEqual([
      { name: 'flink-dev', restUrl: 'http://localhost:8081', headers: {} },
      expect.objectContaining({ name: 'flink-prod' }),
    ]);
    expect(await registry.get('nope')).toBeNull();
    expect((await clusters.views()).map((v) => v.name)).toEqual(['flink-dev', 'flink-prod']);

    expect(await clusters.remove('flink-prod')).toBe(true);
    expect(await clusters.remove('flink-prod')).toBe(false);
    expect(await registry.get('flink-prod')).toBeNull();
    expect((await store.readStream(CLUSTERS_STREAM)).map((e) => e.type)).toEqual([
      'ClusterRegistered',
      'ClusterChanged',
      'ClusterRegistered',
      'ClusterRemoved',
    ]);
  });

  it('never writes a header value in clear: not in the events, not in the database file', async () => {
    const clusters = new ClusterRepository(store, { box, now: () => T0 });
    await clusters.put('flink-prod', {
      restUrl: 'https://flink.example.com',
      headers: { Authorization: SECRET, 'X-Api-Key': API_KEY },
    });
    const events = await store.readStream(CLUSTERS_STREAM);
    const raw = JSON.stringify(events.map((e) => [e.data, e.metadata]));
    expect(raw).toContain('authorization');
    for (const plain of [SECRET, 'top-secret-value', API_KEY]) expect(raw).not.toContain(plain);
    expect(events[0]!.data).toMatchObject({
      headers: [
        { name: 'authorization', value: { v: 1, iv: expect.any(String), tag: expect.any(String) } },
        { name: 'x-api-key', value: { v: 1 } },
      ],
    });
    await store.close();
    const file = readFileSync(join(dir, 'events.db')).toString('latin1');
    expect(file).toContain('flink.example.com');
    for (const plain of [SECRET, 'top-secret-value', API_KEY]) expect(file).not.toContain(plain);
    store = new SqliteEventStore(join(dir, 'events.db')); // for afterEach
  });

  it('without a key: a cluster without headers is fine, one with headers is refused, sealed ones are unreadable', async () => {
    const keyless = new ClusterRepository(store, { now: () => T0 });
    expect(keyless.sealsHeaders).toBe(false);
    await keyless.put('flink-dev', { restUrl: 'http://localhost:8081', headers: {} });
    expect(await keyless.get('flink-dev')).toEqual({
      name: 'flink-dev',
      restUrl: 'http://localhost:8081',
      headers: {},
    });
    await expect(
      keyless.put('flink-prod', { restUrl: 'https://flink.example.com', headers: { authorization: 'x' } }),
    ).rejects.toBeInstanceOf(HeadersNeedKeyError);
    expect(await store.readStream(CLUSTERS_STREAM)).toHaveLength(1);

    // Sealed with a key, then read without it or with another one: an error naming the cluster.
    await new ClusterRepository(store, { box }).put('flink-prod', {
      restUrl: 'https://flink.example.com',
      headers: { authorization: SECRET },
    });
    await expect(keyless.get('flink-prod')).rejects.toThrow(ClusterHeadersUnreadableError);
    const otherKey = new ClusterRepository(store, { box: new SecretBox('o'.repeat(32)) });
    await expect(otherKey.get('flink-prod')).rejects.toThrow(/cluster flink-prod .*SNAPCAT_SECRET_KEY/);
    // The API shows names without opening anything.
    expect((await keyless.view('flink-prod'))!.headers).toEqual(['authorization']);
    // PUT with the new key replaces what the old one sealed: readable again.
    await otherKey.put('flink-prod', {
      restUrl: 'https://flink.example.com',
      headers: { authorization: SECRET },
    });
    expect((await otherKey.get('flink-prod'))!.headers).toEqual({ authorization: SECRET });
  });

  it.each([
    ['name', 'Flink_Prod', { restUrl: 'http://a' }, 'name', 'invalid-format'],
    ['restUrl', 'a', { restUrl: 'ftp://a' }, 'restUrl', 'invalid-format'],
    ['credentials', 'a', { restUrl: 'https://u:p@a' }, 'restUrl', 'no-credentials'],
    [
      'header name',
      'a',
      { restUrl: 'http://a', headers: { 'bad name': 'x' } },
      'headers.bad name',
      'header-name',
    ],
    ['forbidden', 'a', { restUrl: 'http://a', headers: { Host: 'x' } }, 'headers.Host', 'forbidden-header'],
    ['CRLF', 'a', { restUrl: 'http://a', headers: { a: 'x\r\nb: y' } }, 'headers.a', 'header-value'],
  ])(
    'refuses a bad %s, naming the field and the rule, writing nothing',
    async (_what, name, input, field, rule) => {
      const clusters = new ClusterRepository(store, { box });
      const error = await clusters.put(name, input).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommandRejected);
      expect(error).toMatchObject({ code: 'INVALID', field, rule });
      expect(await store.readStream(CLUSTERS_STREAM)).toEqual([]);
    },
  );

  it('sees what another repository appended, and retries after a concurrent change', async () => {
    const memory = new MemoryEventStore();
    const a = new ClusterRepository(memory, { box });
    const b = new ClusterRepository(memory, { box });
    await a.put('one', { restUrl: 'http://one' });
    await b.current();
    await a.put('two', { restUrl: 'http://two' });
    // b appends expecting revision 0: refused once, then decided again on the caught-up state.
    await b.put('three', { restUrl: 'http://three' });
    expect((await a.list()).map((c) => c.name)).toEqual(['one', 'three', 'two']);
    // And gives up after 10 lost races.
    let appends = 0;
    const racing: EventStore = Object.assign(Object.create(memory) as EventStore, {
      append: async () => {
        appends += 1;
        throw new WrongExpectedVersionError(CLUSTERS_STREAM, 0n, 1n);
      },
    });
    await expect(
      new ClusterRepository(racing).put('four', { restUrl: 'http://four' }),
    ).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(appends).toBe(10);
  });

  it('records a cluster found unreachable once per outage, and back once it answers, whoever saw it', async () => {
    const clusters = new ClusterRepository(store, { box, now: () => T0 });
    const other = new ClusterRepository(store, { box, now: () => Date.parse('2026-11-30T11:00:00.000Z') });
    await clusters.put('flink-down', { restUrl: 'https://down.example.com' });
    // A first success is the normal case: nothing to record.
    expect(await clusters.recordReachability('flink-down', true)).toBe(false);
    expect(await clusters.recordReachability('flink-down', false, 'refused')).toBe(true);
    expect(await other.recordReachability('flink-down', false, 'refused too')).toBe(false); // already recorded
    expect(await clusters.view('flink-down')).toMatchObject({ state: 'UNREACHABLE', lastError: 'refused' });
    expect(await other.recordReachability('flink-down', true)).toBe(true);
    expect(await clusters.view('flink-down')).toMatchObject({
      state: 'REACHABLE',
      stateSince: '2026-11-30T11:00:00.000Z',
      lastError: null,
    });
    expect(await clusters.recordReachability('no-such-cluster', false)).toBe(false);
    const types = (await store.readStream(CLUSTERS_STREAM)).map((e) => e.type);
    expect(types.filter((t) => t.startsWith('FlinkCluster'))).toEqual([
      'FlinkClusterUnreachable',
      'FlinkClusterReachable',
    ]);
  });
});
