import type { Redis } from 'ioredis';
import { scanKeys } from '@snapcat/runtime';
import { isDeepStrictEqual } from 'node:util';
import { fold, initialState, snapshotView, type Event, type JobState } from '@snapcat/domain';
import { JOB_STREAM_PREFIX, domainEvent } from '@snapcat/application';
import {
  START,
  comparePositions,
  formatPosition,
  parsePosition,
  type EventStore,
  type Position,
} from '@snapcat/event-store';
import { ReadModelKeys } from './keys';
import { storedJobViews, writeJobViews } from './writes';

const PAGE = 1000;

const OLD_SPACE_GRACE_MS = 2500;

/** Folds `$all` (job streams) from the start, up to `until` if given: every job's state, as the log says. */
export async function foldLog(
  store: EventStore,
  until?: Position,
  onPage?: (events: number) => void,
): Promise<{
  states: Map<string, JobState>;
  revisions: Map<string, bigint>;
  position: Position;
  events: number;
}> {
  const states = new Map<string, JobState>();
  const revisions = new Map<string, bigint>();
  let after: Position = START;
  let events = 0;
  for (;;) {
    let page = await store.readAll({
      after,
      maxCount: PAGE,
      filter: { streamNamePrefixes: [JOB_STREAM_PREFIX] },
    });
    if (until) page = page.filter((e) => comparePositions(e.position, until) <= 0);
    if (page.length === 0) break;
    const byJob = new Map<string, Event[]>();
    for (const recorded of page) {
      const event = domainEvent(recorded);
      let list = byJob.get(event.jobId);
      if (!list) byJob.set(event.jobId, (list = []));
      list.push(event);
      revisions.set(event.jobId, recorded.revision);
    }
    for (const [jobId, list] of byJob)
      states.set(jobId, fold(states.get(jobId) ?? initialState(jobId), list));
    events += page.length;
    after = page[page.length - 1]!.position;
    onPage?.(events);
    if (page.length < PAGE) break;
  }
  return { states, revisions, position: after, events };
}

/**
 * Rebuilds the read model from the log into a fresh key space, then switches `current` to it (projectors
 * follow within a second) and deletes the old one. Returns what it did and how fast.
 */
export async function rebuildReadModel(store: EventStore, redis: Redis, prefix: string) {
  const keys = new ReadModelKeys(prefix);
  const started = process.hrtime.bigint();
  const oldVersion = Number((await redis.get(keys.current)) ?? '0');
  const version = oldVersion + 1;
  const space = keys.space(version);
  await deleteSpace(redis, space.ns);
  const { states, revisions, position, events } = await foldLog(store);
  const writes = redis.pipeline();
  let queued = 0;
  for (const [jobId, state] of states) {
    writeJobViews(writes, space, state, state.snapshots.keys(), true);
    writes.hset(space.applied, jobId, revisions.get(jobId)!.toString());
    if ((queued += 3 + 2 * state.snapshots.size) >= 5000) {
      await writes.exec();
      queued = 0;
    }
  }
  writes.set(space.position, formatPosition(position));
  await writes.exec();
  await redis.set(keys.current, String(version));
  // Readers and projectors look `current` up once a second: the old space stays until they moved on.
  if (oldVersion > 0) {
    await new Promise((resolve) => setTimeout(resolve, OLD_SPACE_GRACE_MS));
    await deleteSpace(redis, keys.space(oldVersion).ns);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { version, jobs: states.size, events, seconds, eventsPerSecond: events / seconds };
}

export interface Difference {
  key: string;
  expected: unknown;
  actual: unknown;
}

/**
 * Folds the log from scratch up to the read model's position and compares every job and snapshot view
 * with what Redis holds. An empty list means no drift.
 */
export async function verifyReadModel(
  store: EventStore,
  redis: Redis,
  prefix: string,
): Promise<Difference[]> {
  const keys = new ReadModelKeys(prefix);
  const space = keys.space(Number((await redis.get(keys.current)) ?? '1'));
  const positionText = await redis.get(space.position);
  const until = positionText ? parsePosition(positionText) : START;
  const { states } = await foldLog(store, until);
  const differences: Difference[] = [];
  const compare = async (key: string, expected: unknown) => {
    const text = await redis.get(key);
    const actual = text === null ? null : JSON.parse(text);
    if (!isDeepStrictEqual(actual, expected)) differences.push({ key, expected, actual });
  };
  for (const [jobId, state] of states) {
    const { summary, tasks } = storedJobViews(state);
    await compare(space.job(jobId), summary);
    await compare(space.jobTasks(jobId), tasks);
    for (const snapshot of state.snapshots.values()) {
      await compare(space.snapshot(jobId, snapshot.snapshotId), { jobId, ...snapshotView(snapshot) });
    }
    const stored = await redis.zrange(space.snapshots(jobId), 0, -1);
    for (const id of stored) {
      if (!state.snapshots.has(Number(id))) {
        differences.push({ key: space.snapshot(jobId, Number(id)), expected: null, actual: 'present' });
      }
    }
  }
  for (const jobId of await redis.zrange(space.jobs, 0, -1)) {
    if (!states.has(jobId)) differences.push({ key: space.job(jobId), expected: null, actual: 'present' });
  }
  return differences;
}

async function deleteSpace(redis: Redis, ns: string): Promise<void> {
  for await (const found of scanKeys(redis, `${ns}:*`)) await redis.del(...found);
}
