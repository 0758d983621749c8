import IORedis from 'ioredis';
import { jobStream } from '@snapcat/application';
import { EsdbEventStore, comparePositions, parsePosition, type Position } from '@snapcat/event-store';
import { Projector, ReadModel, ReadModelKeys } from '../src';
import { EsdbTestServer, type TestEventStoreData } from '../../../test/esdb/test-server';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { eventually } from '../../../test/support/wait';
import { checkpoint, decideAll, job, writeJob } from './jobs';

// The projector on the EventStoreDB adapter against the protocol test server, whose filtered subscription
// sends checkpoints as KurrentDB does: the read model's position follows them past other streams' events.
const OTHER_EVENTS = 100_000;

/** Events of other streams, put straight into the server's log (as appends would, positions 137 apart). */
function seedOtherStreams(data: TestEventStoreData, count: number): void {
  for (let i = 0; i < count; i += 1) data.write(`other-${i % 100}`, 'OtherHappened', '{}');
}

describe('projector on EventStoreDB: filtered-subscription checkpoints', () => {
  const redis = new IORedis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const prefix = testPrefix('rm-checkpoints');
  let server: EsdbTestServer;
  let store: EsdbEventStore;
  beforeEach(async () => {
    server = new EsdbTestServer();
    await server.start();
    store = new EsdbEventStore(server.connectionString);
  });
  afterEach(async () => {
    await store.close();
    await server.stop();
    await deleteKeys(prefix);
  });
  afterAll(() => redis.disconnect());

  const make = () =>
    new Projector({ store, redis, prefix, log: { info: () => {}, error: () => {} }, tickMs: 50 });
  const stored = async (): Promise<Position | undefined> => {
    const text = await redis.get(new ReadModelKeys(prefix).space(1).position);
    return text ? parsePosition(text) : undefined;
  };

  it('a restart after 100,000 events of other streams resumes from the last checkpoint: it reads a page, not the 100,000', async () => {
    const jobId = job(1);
    const state = await writeJob(store, jobId, 2);
    const [lastJobEvent] = await store.readStream(jobStream(jobId), { direction: 'backwards', maxCount: 1 });
    seedOtherStreams(server.data, OTHER_EVENTS);
    const log = server.data.log;
    // The last catch-up checkpoint is where the last page (at most 32 events) starts.
    const lastPage = { commit: log[log.length - 33]!.commit, prepare: log[log.length - 33]!.commit };

    const first = make();
    await first.start();
    await eventually(
      async () => {
        const position = await stored();
        return position !== undefined && comparePositions(position, lastPage) > 0;
      },
      20_000,
      'the position past the other streams',
    );
    await first.stop();
    expect(server.subscriptions.eventsScanned).toBeGreaterThanOrEqual(OTHER_EVENTS);
    expect(comparePositions((await stored())!, lastJobEvent!.position)).toBe(1);

    const scannedBefore = server.subscriptions.eventsScanned;
    const sentBefore = server.subscriptions.events;
    const second = make();
    await second.start();
    await eventually(() => second.active, 10_000, 'the second projector active');
    // It follows the log: the events of a new checkpoint come, and are in the read model.
    await decideAll(store, jobId, checkpoint(3), state);
    const [newest] = await store.readStream(jobStream(jobId), { direction: 'backwards', maxCount: 1 });
    expect(await new ReadModel(redis, prefix).waitFor(newest!.position, 10_000)).toBe(true);
    await second.stop();
    const scanned = server.subscriptions.eventsScanned - scannedBefore;
    const sent = server.subscriptions.events - sentBefore;
    // From the last job event it would scan every one of the 100,000 again.
    expect(log.length - log.findIndex((e) => e.id === lastJobEvent!.id)).toBeGreaterThan(OTHER_EVENTS);
    expect(scanned).toBeLessThanOrEqual(32);
    expect(sent).toBe(Number(newest!.revision - lastJobEvent!.revision)); // the new events only
  }, 30_000);

  it('marks the key space complete once caught up, though a tail of other streams’ events keeps its checkpoints short of the log’s end', async () => {
    const jobId = job(2);
    await writeJob(store, jobId, 2);
    // Fewer than a checkpoint's worth past the last job event: no checkpoint reaches the log's end.
    seedOtherStreams(server.data, 20);
    const keys = new ReadModelKeys(prefix).space(1);
    const projector = make();
    await projector.start();
    try {
      await eventually(
        async () => (await redis.exists(keys.complete)) === 1,
        10_000,
        'the space marked complete',
      );
    } finally {
      await projector.stop();
    }
    // The stored position is where the projector got to, which may lie short of the log's end.
    const log = server.data.log;
    const end = { commit: log[log.length - 1]!.commit, prepare: log[log.length - 1]!.commit };
    expect(comparePositions((await stored())!, end)).toBeLessThanOrEqual(0);
    // Queries by job-id prefix (restores by path) are answered, not refused as incomplete.
    expect(await new ReadModel(redis, prefix).jobIdsStartingWith(jobId.slice(0, 6))).toEqual([jobId]);
  }, 30_000);
});
