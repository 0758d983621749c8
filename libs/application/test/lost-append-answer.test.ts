import { Command } from '@snapcat/domain';
import {
  EsdbEventStore,
  StoreUnavailableError,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
} from '@snapcat/event-store';
import { CommandBus, jobStream } from '../src';
import { EsdbTestServer } from '../../../test/esdb/test-server';

// A commit timeout leaves the outcome unknown: the append may be in the log. The bus answers 503 (the
// adapter's StoreUnavailableError); the caller's retry is decided again, with new event ids, at the
// expected revision the bus knew: against the server's duplicate detection (the slots after that
// revision), the written events make it WrongExpectedVersion, the bus catches up and decides again.
const JOB = 'feed0000feed0000feed0000feed0000';
const command = (input: Record<string, unknown>) => Command.parse({ jobId: JOB, ...input });
const configure = command({
  type: 'ConfigureJob',
  name: 'j',
  tasks: ['a'],
  checkpointing: { numRetained: 5 },
  storage: { checkpointDir: '/data/c', savepointDir: '/data/s' },
});
const trigger = command({
  type: 'TriggerSnapshot',
  kind: 'SAVEPOINT',
  triggerId: 't1',
  triggerType: 'MANUAL',
  formatType: 'CANONICAL',
});

/** The store, but the answer to the next append is lost after the server wrote it (a commit timeout). */
function losingAnswers(inner: EventStore) {
  const state = { loseNext: false };
  const store: EventStore = Object.assign(Object.create(inner) as EventStore, {
    async append(streamId: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
      const result = await inner.append(streamId, events, expected);
      if (!state.loseNext) return result;
      state.loseNext = false;
      throw new StoreUnavailableError('EventStoreDB unavailable: Operation timed out: Commit timeout.');
    },
  });
  return { store, state };
}

describe('command bus: an append whose answer was lost, retried (protocol test server)', () => {
  let server: EsdbTestServer;
  let inner: EsdbEventStore;
  beforeEach(async () => {
    server = new EsdbTestServer();
    await server.start();
    inner = new EsdbEventStore(server.connectionString);
  });
  afterEach(async () => {
    await inner.close();
    await server.stop();
  });

  it('written but unanswered: the retry finds it (a duplicate trigger), the log holds it once', async () => {
    const { store, state } = losingAnswers(inner);
    const bus = new CommandBus(store);
    await bus.execute(configure);
    state.loseNext = true;
    await expect(bus.execute(trigger)).rejects.toBeInstanceOf(StoreUnavailableError);
    const retried = await bus.execute(trigger);
    expect(retried.reply).toMatchObject({ snapshotId: 1, duplicate: true });
    const types = (await inner.readStream(jobStream(JOB))).map((e) => e.type);
    expect(types.filter((t) => t === 'SnapshotTriggered')).toHaveLength(1);
    expect(bus.stats.conflicts).toBe(1);
  });

  it('timed out and not written: the retry writes it once', async () => {
    const bus = new CommandBus(inner);
    await bus.execute(configure);
    server.refuse('timeout');
    await expect(bus.execute(trigger)).rejects.toBeInstanceOf(StoreUnavailableError);
    server.refuse(undefined);
    const retried = await bus.execute(trigger);
    expect(retried.reply).toMatchObject({ snapshotId: 1, duplicate: false });
    const types = (await inner.readStream(jobStream(JOB))).map((e) => e.type);
    expect(types.filter((t) => t === 'SnapshotTriggered')).toHaveLength(1);
  });
});
