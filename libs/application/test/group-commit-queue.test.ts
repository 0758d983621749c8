import { randomUUID } from 'node:crypto';
import type { EventStore } from '@snapcat/event-store';
import { GroupCommitQueue, settle, type Entry } from '../src';
import { embeddedStores } from './stores';

const STREAM = 'queue-test';

/** A queue whose commits append each command (a string) as one event, and answer with its revision. */
function appendingQueue(store: EventStore, maxBatch: number) {
  const batches: string[][] = [];
  let revision: bigint | 'no_stream' = 'no_stream';
  const commit = async (batch: Entry<string, undefined>[]) => {
    const commands = batch.flatMap((entry) => entry.commands);
    batches.push(commands);
    if (commands.includes('fail')) throw new Error('refused');
    if (commands.length > 0) {
      const events = commands.map((c) => ({ id: randomUUID(), type: 'Added', data: { c } }));
      revision = (await store.append(STREAM, events, revision)).nextExpectedRevision;
    }
    settle(
      batch,
      revision,
      commands.map((c) => ({ ok: true as const, reply: c, events: [c] })),
      undefined,
    );
  };
  const queue = new GroupCommitQueue<string, undefined>(
    commit,
    maxBatch,
    (error) => new Error(`seen by the caller: ${(error as Error).message}`),
  );
  return { queue, batches };
}

const stored = async (store: EventStore) =>
  (await store.readStream(STREAM)).map((e) => (e.data as { c: string }).c);

describe.each(embeddedStores)('group-commit queue on $name', (adapter) => {
  let opened: ReturnType<(typeof adapter)['open']>;
  beforeEach(() => {
    opened = adapter.open();
  });
  afterEach(() => opened.close());

  it('commits what arrived in one turn as one batch, and what arrived meanwhile as the next, in order', async () => {
    const { queue, batches } = appendingQueue(opened.store, 1000);
    expect(queue.idle).toBe(true);
    const first = ['a', 'b', 'c'].map((c) => queue.push('one', [c], undefined));
    expect(queue.idle).toBe(false);
    await new Promise((r) => setImmediate(r)); // the first commit has started
    const second = ['d', 'e'].map((c) => queue.push('one', [c], undefined));
    const replies = await Promise.all([...first, ...second]);
    expect(replies.map((r) => (r as { reply: string }).reply)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(batches).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e'],
    ]);
    expect(await stored(opened.store)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(queue.idle).toBe(true);
  });

  it('takes whole entries up to maxBatch commands, at least one entry; a load rides along', async () => {
    const { queue, batches } = appendingQueue(opened.store, 3);
    const results = await Promise.all([
      queue.push('many', ['a', 'b'], undefined),
      queue.push('many', ['c', 'd'], undefined), // 4 > 3: the next batch
      queue.push('one', ['e'], undefined),
      queue.push('load', [], undefined),
      queue.push('many', ['f', 'g', 'h', 'i'], undefined), // alone over maxBatch: a batch of its own
    ]);
    expect(batches).toEqual([
      ['a', 'b'],
      ['c', 'd', 'e'],
      ['f', 'g', 'h', 'i'],
    ]);
    expect(results[3]).toBe(4n); // the load: the revision after what was queued before it
    expect(await stored(opened.store)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
  });

  it('a failed batch fails its callers (as the failure maps it), and the queue goes on', async () => {
    const { queue } = appendingQueue(opened.store, 1);
    const results = await Promise.allSettled([
      queue.push('one', ['a'], undefined),
      queue.push('one', ['fail'], undefined),
      queue.push('one', ['b'], undefined),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('seen by the caller: refused');
    expect(await stored(opened.store)).toEqual(['a', 'b']);
  });

  it('commits a batch in halves, each failing alone', async () => {
    const { queue, batches } = appendingQueue(opened.store, 1000);
    const entries: Entry<string, undefined>[] = [];
    const answers = ['a', 'fail', 'b', 'c'].map(
      (c) =>
        new Promise((resolve, reject) =>
          entries.push({ kind: 'one', commands: [c], metadata: undefined, resolve, reject }),
        ),
    );
    const settled = Promise.allSettled(answers);
    await queue.commitInHalves(entries);
    const results = await settled;
    expect(batches).toEqual([
      ['a', 'fail'],
      ['b', 'c'],
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'fulfilled']);
    expect(await stored(opened.store)).toEqual(['b', 'c']);
  });
});

describe('settle', () => {
  it('answers a load with the state, a command with its outcome, many commands with all or the first rejection', async () => {
    const answers: unknown[] = [];
    const entry = (kind: Entry<string, undefined>['kind'], commands: string[]): Entry<string, undefined> => {
      const at = answers.length;
      answers.push(undefined);
      return {
        kind,
        commands,
        metadata: undefined,
        resolve: (value) => (answers[at] = { value }),
        reject: (error) => (answers[at] = { error }),
      };
    };
    const batch = [
      entry('one', ['a']),
      entry('load', []),
      entry('many', ['b', 'c']),
      entry('many', ['d', 'e', 'f']),
    ];
    const ok = (reply: string) => ({ ok: true as const, reply, events: [reply] });
    const no = (error: string) => ({ ok: false as const, error, events: [] });
    settle(batch, 'state', [ok('a'), ok('b'), ok('c'), ok('d'), no('e refused'), no('f refused')], undefined);
    expect(answers).toEqual([
      { value: { reply: 'a', events: ['a'], position: undefined } },
      { value: 'state' },
      {
        value: [
          { reply: 'b', events: ['b'], position: undefined },
          { reply: 'c', events: ['c'], position: undefined },
        ],
      },
      { error: 'e refused' },
    ]);
  });
});
