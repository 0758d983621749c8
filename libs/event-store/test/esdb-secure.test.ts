import { randomUUID } from 'node:crypto';
import {
  EsdbEventStore,
  InstrumentedEventStore,
  START,
  StoreAccessDeniedError,
  StoreUnavailableError,
  openEventStore,
  type NewEvent,
} from '../src';
import { EsdbTestServer } from '../../../test/esdb/test-server';

const ev = (): NewEvent => ({ id: randomUUID(), type: 'T', data: { n: 1 }, metadata: {} });
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => 'it succeeded',
    (error: unknown) => error,
  );

// What the adapter makes of a secure node's refusals (KurrentDB's authentication and default ACLs, as the
// protocol test server follows them), over both append paths.
describe.each(['batchAppend', 'append'] as const)(
  'EventStoreDB adapter on a secure node, over %s',
  (path) => {
    let server: EsdbTestServer;
    const stores: EsdbEventStore[] = [];
    const open = (connection: string) => {
      const store = new EsdbEventStore(connection);
      stores.push(store);
      return store;
    };
    beforeEach(async () => {
      server = new EsdbTestServer(undefined, { serverFeatures: path === 'batchAppend', secure: true });
      await server.start();
      await open(server.connectionString).append('s-warm', [ev()], 'any');
    });
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((store) => store.close()));
      await server.stop();
    });

    it('a user outside $admins writes and reads its streams, but reading $all is StoreAccessDeniedError naming the permission', async () => {
      const ops = open(server.connectionStringAs('ops'));
      await ops.append('s-ops', [ev()], 'no_stream');
      expect(await ops.readStream('s-ops')).toHaveLength(1);
      const error = await failure(ops.readAll({ maxCount: 1 }));
      expect(error).toBeInstanceOf(StoreAccessDeniedError);
      expect(error).toBeInstanceOf(StoreUnavailableError); // a 503 wherever it surfaces
      expect(error).toMatchObject({
        reason: 'access-denied',
        access: { operation: 'read', streamId: '$all' },
        user: 'ops',
        permission: 'read on $all',
        message:
          'event store: reading $all needs the $admins role (or a stream policy granting read on $all) for user ops',
      });
    });

    it('a subscription to $all is refused once, through onError, not retried', async () => {
      const ops = open(server.connectionStringAs('ops'));
      const errors: unknown[] = [];
      const subscription = ops.subscribeToAll(
        { from: START },
        () => {},
        (e) => errors.push(e),
      );
      await new Promise((r) => setTimeout(r, 500));
      await subscription.close();
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ reason: 'access-denied', permission: 'read on $all' });
      expect(server.denied).toEqual([{ user: 'ops', operation: 'read', stream: '$all' }]);
    });

    it('a write the ACL refuses is StoreAccessDeniedError, and writes nothing', async () => {
      server.userStreamAcl.write = ['$admins'];
      const error = await failure(open(server.connectionStringAs('ops')).append('s-locked', [ev()], 'any'));
      expect(error).toMatchObject({
        reason: 'access-denied',
        access: { operation: 'write', streamId: 's-locked' },
        user: 'ops',
      });
      expect(await open(server.connectionString).readStream('s-locked')).toEqual([]);
    });

    it('a wrong password is refused (not-authenticated), naming the user and never the password', async () => {
      const bad = open(server.connectionStringAs('admin', 'wrong-password-x'));
      const attempts = [
        () => bad.readStream('s-warm'),
        () => bad.append('s-warm', [ev()], 'any'),
        () => bad.readAll(),
      ];
      for (const attempt of attempts) {
        const error = await failure(attempt());
        expect(error).toBeInstanceOf(StoreAccessDeniedError);
        expect(error).toMatchObject({ reason: 'not-authenticated', user: 'admin', permission: 'login' });
        expect((error as Error).message).not.toContain('wrong-password-x');
      }
      expect(server.refusedLogins).toBeGreaterThanOrEqual(3);
    });

    it('without credentials: anonymous access is refused, and the message says the string names no user', async () => {
      const url = server.connectionString.replace(/\/\/[^@]*@/, '//');
      const error = await failure(open(url).readStream('s-warm'));
      expect(error).toMatchObject({ reason: 'access-denied', user: undefined });
      expect((error as Error).message).toContain('names no user:password@');
    });

    it('a client that does not trust the CA, or speaks plain HTTP/2, cannot connect (StoreUnavailableError)', async () => {
      for (const url of [
        server.connectionString.replace(/&tlsCAFile=[^&]*/, ''),
        server.connectionString.replace('tls=true', 'tls=false').replace(/&tlsCAFile=[^&]*/, ''),
      ]) {
        const error = await failure(open(url).readStream('s-warm'));
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error).not.toBeInstanceOf(StoreAccessDeniedError);
      }
    });
  },
);

describe('kurrentdb:// and discovery against a secure node', () => {
  let server: EsdbTestServer;
  beforeAll(async () => {
    server = new EsdbTestServer(undefined, { secure: true });
    await server.start();
  });
  afterAll(() => server.stop());

  it.each([
    ['kurrentdb://', (s: EsdbTestServer) => s.connectionString.replace('esdb://', 'kurrentdb://')],
    [
      'kurrentdb+discover:// with two seeds (one down) and nodePreference',
      (s: EsdbTestServer) =>
        s.connectionString
          .replace('esdb://', 'kurrentdb+discover://')
          .replace(`127.0.0.1:${s.port}`, `127.0.0.1:1,127.0.0.1:${s.port}`) + '&nodePreference=leader',
    ],
    ['esdb+discover://', (s: EsdbTestServer) => s.connectionString.replace('esdb://', 'esdb+discover://')],
  ])('%s: opened by openEventStore, appends and reads $all as admin', async (_name, url) => {
    const store = new InstrumentedEventStore(openEventStore(url(server)));
    try {
      const stream = `s-${randomUUID()}`;
      await store.append(stream, [ev()], 'no_stream');
      const [last] = await store.readAll({ direction: 'backwards', maxCount: 1 });
      expect(last?.streamId).toBe(stream);
      expect(store.accessDenied).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});

describe('InstrumentedEventStore remembers a refusal of the credentials until the same access succeeds', () => {
  let server: EsdbTestServer;
  beforeAll(async () => {
    server = new EsdbTestServer(undefined, { secure: true });
    await server.start();
  });
  afterAll(() => server.stop());

  it('reading $all refused: remembered (and counted) until a read of $all succeeds', async () => {
    const store = new InstrumentedEventStore(new EsdbEventStore(server.connectionStringAs('ops')));
    try {
      await expect(store.readAll({ maxCount: 1 })).rejects.toBeInstanceOf(StoreAccessDeniedError);
      await store.readStream('s-any'); // another access succeeding changes nothing
      expect(store.accessDenied?.permission).toBe('read on $all');
      expect(store.counters.accessDenied).toBe(1);
      server.users.get('ops')!.groups.push('$admins');
      await store.readAll({ maxCount: 1 });
      expect(store.accessDenied).toBeUndefined();
    } finally {
      server.users.get('ops')!.groups.pop();
      await store.close();
    }
  });
});
