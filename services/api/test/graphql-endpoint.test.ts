import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { ReadModelKeys, snapshotEventPublisher, type SnapshotEventMessage } from '@snapcat/read-model';
import { createSnapshotEventsPubSub } from '../src/graphql';
import { GRAPHQL_ENDPOINT, graphqlOnFirstRequest } from '../src/graphql-endpoint';

const REDIS_URL = 'redis://127.0.0.1:6379';

describe('GraphQL made on its first request (decision 0041)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  const serve = async (handler: Parameters<typeof createServer>[1]) => {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}${GRAPHQL_ENDPOINT}`;
  };

  it('makes the endpoint once for requests that arrive together, and serves every one of them', async () => {
    let made = 0;
    let served = 0;
    const endpoint = graphqlOnFirstRequest(
      async () => {
        made += 1;
        await new Promise((resolve) => setTimeout(resolve, 50));
        return (_req, res) => res.end(`answer ${(served += 1)}`);
      },
      () => {},
    );
    expect(endpoint.graphqlEndpoint).toBe('/graphql');
    const url = await serve(endpoint);
    const answers = await Promise.all([1, 2, 3].map(async () => (await fetch(url)).text()));
    expect(made).toBe(1);
    expect(answers.sort()).toEqual(['answer 1', 'answer 2', 'answer 3']);
    expect(await (await fetch(url)).text()).toBe('answer 4');
    expect(made).toBe(1);
  });

  it('a failure to make it is logged and a 500 problem; the next request makes it again', async () => {
    const logged: object[] = [];
    let attempts = 0;
    const endpoint = graphqlOnFirstRequest(
      async () => {
        attempts += 1;
        if (attempts === 1) throw new Error('the schema and the resolvers disagree');
        return (_req, res) => res.end('made');
      },
      (msg, fields) => logged.push({ msg, ...fields }),
    );
    const url = await serve(endpoint);
    const failed = await fetch(url);
    expect(failed.status).toBe(500);
    expect(failed.headers.get('content-type')).toContain('application/problem+json');
    expect(await failed.json()).toMatchObject({ status: 500, detail: expect.stringContaining('GraphQL') });
    expect(logged).toEqual([
      {
        msg: 'the GraphQL endpoint could not be made',
        error: 'Error: the schema and the resolvers disagree',
      },
    ]);
    const retried = await fetch(url);
    expect(retried.status).toBe(200);
    expect(await retried.text()).toBe('made');
    expect(attempts).toBe(2);
  });

  it("the projector's publisher reaches the endpoint's subscriptions over Redis: the job's topic, the message as published", async () => {
    const keys = new ReadModelKeys(`snapcat-test-publisher-${process.pid}-${Date.now()}`);
    const publishing = new Redis(REDIS_URL);
    const subscribing = new Redis(REDIS_URL);
    const pubsub = createSnapshotEventsPubSub(
      createRedisEventTarget({ publishClient: publishing, subscribeClient: subscribing }),
    );
    const message = (jobId: string, snapshotId: number): SnapshotEventMessage => ({
      jobId,
      type: 'SnapshotCompleted',
      snapshotId,
      revision: '3',
      position: '12/12',
      occurredAt: '2026-12-05T20:00:00.000Z',
      data: { type: 'SnapshotCompleted', snapshotId } as never,
    });
    try {
      const jobA = 'a'.repeat(32);
      const events = pubsub.subscribe(keys.channel, jobA)[Symbol.asyncIterator]();
      const first = events.next();
      await new Promise((resolve) => setTimeout(resolve, 100)); // SUBSCRIBE reached Redis
      const publish = snapshotEventPublisher(publishing, keys);
      publish(message('b'.repeat(32), 7)); // another job's topic
      publish(message(jobA, 8));
      expect((await first).value).toEqual(message(jobA, 8));
      await events.return?.();
    } finally {
      publishing.disconnect();
      subscribing.disconnect();
    }
  });
});
