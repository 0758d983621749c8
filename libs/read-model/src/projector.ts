import type { Redis } from 'ioredis';
import {
  UnreadableEventError,
  fold,
  looseFilesChangedBy,
  snapshotIdOf,
  type Event,
  type JobState,
  type SnapshotState,
} from '@snapcat/domain';
import { JOB_STREAM_PREFIX, domainEvent, jobIdOfStream } from '@snapcat/application';
import {
  START,
  StreamDeletedError,
  comparePositions,
  StoreAccessDeniedError,
  formatPosition,
  isTombstone,
  parsePosition,
  type EventStore,
  type Position,
  type RecordedEvent,
  type LogSubscription,
} from '@snapcat/event-store';
import {
  ConsumerBlocks,
  LeaseLostError,
  RedisLease,
  execAll,
  positionBehind,
  scanKeys,
} from '@snapcat/runtime';
import { INDEXED_AT_START, ReadModelKeys, deleteSpace, directoriesIndexedAt, type KeySpace } from './keys';
import { stateAt } from './history';
import { indexDirectories, indexLooseFiles, isIndexedStatus, writeJobViews } from './writes';

/** What the directories' backfill reads of a stored snapshot view. */
interface StoredSnapshotPaths {
  jobId: string;
  snapshotId: number;
  status: string;
  externalPath: string | null;
  savepointPath: string | null;
}

const BATCH = 1000;
/** How long a backfill's index being built outlives its last page (`indexLooseFilesOfJobs`). */
const BUILDING_TTL_MS = 10 * 60_000;

export interface SnapshotEventMessage {
  jobId: string;
  type: string;
  snapshotId: number | null;
  revision: string;
  position: string;
  occurredAt: string;
  data: Event;
}

export interface ProjectorDeps {
  store: EventStore;
  /**
   * The projector's own connection: its writes WATCH the lease key, so no other transaction may run on
   * this connection.
   */
  redis: Redis;
  prefix: string;
  /** Told of every applied event, after it is visible (feeds GraphQL subscriptions). */
  publish?: (message: SnapshotEventMessage) => void;
  log: { info: (m: string, f?: object) => void; error: (m: string, f?: object) => void };
  cacheSize?: number;
  /** States another component of this process holds (the command bus), by job and exact revision. */
  sharedStates?: SharedStates;
  /** How long the active projector's lease lasts without renewal: a standby takes over after it. */
  leaseMs?: number;
  tickMs?: number;
  /** How long it stands by after the store refused snapcat's credentials (default 30 s). */
  accessRetryMs?: number;
}

export interface SharedStates {
  /** The job's state exactly at `revision`, if at hand without I/O; otherwise undefined. */
  cachedState(jobId: string, revision: bigint): JobState | undefined;
}

/** A job event of the log, with the domain event it holds. */
interface DecodedEvent {
  recorded: RecordedEvent;
  event: Event;
}

/** A job whose events a batch applied: its state after them, and what its views must rewrite. */
interface TouchedJob {
  state: JobState;
  snapshots: Set<number>;
  tasksChanged: boolean;
  /** Snapshots the fold compacted out of the state (decision 0035), as they were last. */
  compacted: Map<number, SnapshotState>;
  /** The loose files whose references the run may have changed (`looseFilesChangedBy`). */
  files: Set<string>;
}

/**
 * The batch's job events, decoded; and its tombstones (a stream hard-deleted), which are no job events: the
 * job is marked deleted, its views kept.
 */
function decodeBatch(batch: RecordedEvent[]): { events: DecodedEvent[]; deleted: Map<string, string> } {
  const deleted = new Map<string, string>();
  const events: DecodedEvent[] = [];
  for (const recorded of batch) {
    if (isTombstone(recorded)) deleted.set(jobIdOfStream(recorded.streamId), recorded.created.toISOString());
    else events.push({ recorded, event: domainEvent(recorded) });
  }
  return { events, deleted };
}

/**
 * Keeps the Redis read model in step with the log. One projector per prefix is active (a lease in Redis,
 * renewed every tick); the others stand by and take over from the stored position when its holder dies.
 * Every batch is written in a transaction that WATCHes the lease, so a holder that lost the lease while
 * paused cannot write a stale batch over its successor's. A batch of events is applied in one MULTI with the
 * position and each job's applied revision, so a crash never applies an event twice nor skips one, and a
 * redelivered event is recognised by its revision. The views are computed with the domain's own fold, from the job's
 * state at the event's revision (cached; reloaded after a gap or a restart). The subscription's checkpoints
 * (how far the store scanned past other streams' events) are written as the position too, with the next
 * batch or alone, so a restart does not scan those events again.
 */
export class Projector {
  private readonly keys: ReadModelKeys;
  private version = 0;
  private subscription: LogSubscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly cache = new Map<string, { state: JobState; revision: bigint }>();
  private readonly lags: number[] = [];
  private lagFlush: NodeJS.Timeout | undefined;
  /** Bumped when a subscription ends, so that nothing it left behind is written afterwards. */
  private epoch = 0;
  private pending: RecordedEvent[] = [];
  /** The latest checkpoint received and not written yet: every event before it is pending or written. */
  private checkpoint: Position | undefined;
  private flushing: Promise<unknown> = Promise.resolve();
  /** The revision of each job's last applied event, as written in Redis (loaded once per job). */
  private readonly appliedRevisions = new Map<string, bigint>();
  private readonly lease: RedisLease;
  private ticking = false;
  private stopped = false;
  private written: Position | undefined;
  /** The log's end when this projector started to follow a space not yet complete; written, it is. */
  private completeAt: Position | undefined;
  /** The position of the last event this process published to live subscriptions. */
  private announced: Position | undefined;
  /** The latest position this subscription delivered (an event's or a checkpoint's), from where it started. */
  private received: Position = START;
  private readonly refusals: ConsumerBlocks;
  readonly stats = { applied: 0, duplicates: 0, reloads: 0, shared: 0 };

  constructor(private readonly deps: ProjectorDeps) {
    this.keys = new ReadModelKeys(deps.prefix);
    this.lease = new RedisLease(deps.redis, this.keys.lease, deps.leaseMs ?? 5000);
    this.refusals = new ConsumerBlocks(deps.accessRetryMs);
  }

  async start(): Promise<void> {
    await this.deps.redis.setnx(this.keys.current, '1');
    await this.tick();
    // stop() may have run meanwhile: its clearInterval came before these timers, which would tick forever.
    if (this.stopped) return;
    // Renews the lease (or takes it over), and follows a rebuild's switch of `current` to a new key space.
    this.timer = setInterval(() => void this.tick(), this.deps.tickMs ?? 1000);
    this.lagFlush = setInterval(() => void this.flushLag().catch(() => undefined), 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.lagFlush);
    while (this.ticking) await new Promise((r) => setTimeout(r, 10));
    await this.subscription?.close();
    this.subscription = undefined;
    await this.flushing;
    await this.lease.release();
  }

  /** True while this projector holds the lease and writes the read model. */
  get active(): boolean {
    return this.subscription !== undefined;
  }

  /**
   * Why the projector does not project: the store refused snapcat's credentials at its last attempt
   * (reading `$all` needs the `$admins` role), and it has not subscribed since; or the log holds an event a
   * newer snapcat wrote (for good). Undefined otherwise.
   */
  get blocked(): StoreAccessDeniedError | UnreadableEventError | undefined {
    return this.refusals.blocked;
  }

  /** The position of the last batch this projector wrote (for /metrics); undefined before its first. */
  get position(): Position | undefined {
    return this.written;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped || this.refusals.waiting) return;
    this.ticking = true;
    try {
      if (await this.lease.acquire()) {
        if (!this.subscription)
          this.deps.log.info('projector active: it holds the lease', { prefix: this.deps.prefix });
        else this.refusals.clear(); // subscribed a tick ago, and not refused since
        return await this.follow();
      }
      if (this.subscription) {
        this.deps.log.info('projector lost its lease; standing by');
        await this.standBy();
      }
    } catch (error) {
      // Refused credentials may come before the subscription's own read (the log's end, read on subscribing).
      if (ConsumerBlocks.blocks(error)) await this.refused(error);
      else this.deps.log.error('projector tick failed', { error: String(error) });
    } finally {
      this.ticking = false;
    }
  }

  private async standBy(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    this.reset();
    this.version = 0;
    await subscription?.close();
  }

  /** Milliseconds from append to visible: the last and the 99th percentile of the last 1,000 events. */
  lag(): { last: number | null; p99: number | null; samples: number } {
    if (this.lags.length === 0) return { last: null, p99: null, samples: 0 };
    const sorted = [...this.lags].sort((a, b) => a - b);
    return {
      last: this.lags[this.lags.length - 1]!,
      p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!,
      samples: sorted.length,
    };
  }

  private async follow(): Promise<void> {
    const { redis, log } = this.deps;
    const version = Number((await redis.get(this.keys.current)) ?? '1');
    const following = version === this.version && this.subscription !== undefined;
    // What this projector had written before asking: a batch committed meanwhile cannot look like a loss.
    const written = this.written;
    const wiped = following && !(await redis.exists(this.keys.space(version).origin));
    if (following && !wiped) {
      const stored = await redis.get(this.keys.space(version).position);
      if (!positionBehind(stored, written)) return;
      // Redis lost batches it had acknowledged (a failover to a replica that lagged, a restart without its
      // last second of appends): the views, revisions and position it kept are one consistent earlier point
      // (one slot, one transaction a batch), so the log is projected again from there, as on a takeover.
      log.error('Redis lost read-model writes it had acknowledged: projecting again from its position', {
        version,
        written: formatPosition(written!),
        redis: stored ?? 'none',
      });
    }
    this.written = undefined;
    await this.subscription?.close();
    this.reset();
    // A write of the previous subscription may still be in flight (and flushes queued behind it): it ends
    // before this subscription starts, so that it can neither take this one's events nor leave its
    // revisions in the caches this one starts from (then cleared again).
    await this.flushing;
    this.reset();
    this.version = version;
    const space = this.keys.space(version);
    if (wiped) {
      // Redis lost the space under this projector (FLUSHALL, a failover to an empty replica): what its
      // writes put back since is a fragment, and the applied revisions in it would skip events. Emptied,
      // and the whole log projected again; queries show a catching-up read model meanwhile, not a wrong one.
      log.error('the read model was lost from Redis (wiped?): projecting the log again from its start', {
        version,
      });
      // The position and the mark first: a projector taking over meanwhile starts from the log's start.
      await redis.del(space.position, space.complete);
      await deleteSpace(redis, space.ns);
      await redis.setnx(this.keys.current, String(version));
    }
    // The origin first: a wipe after it removes it (the next tick sees that), one before it leaves no position.
    await redis.set(space.origin, new Date().toISOString(), 'NX');
    const stored = await redis.get(space.position);
    if ((await redis.get(space.directoriesIndexed)) !== directoriesIndexedAt(stored)) {
      // A space with no position holds nothing yet, and everything projected into it is indexed as written.
      if (stored !== null) await this.indexDirectoriesOfViews(space);
      await redis.set(space.directoriesIndexed, directoriesIndexedAt(stored));
    }
    if ((await redis.get(space.filesIndexed)) !== (stored ?? INDEXED_AT_START)) {
      if (stored === null) await redis.set(space.filesIndexed, INDEXED_AT_START);
      else await this.indexLooseFilesOfJobs(space, stored);
    }
    // The log's end, not its last job event, which on EventStoreDB may lie behind a long tail of other
    // streams' events (a scan backwards); a position past that tail comes with the store's next checkpoint.
    this.completeAt = (await redis.exists(space.complete))
      ? undefined
      : ((await this.deps.store.lastPosition()) ?? START);
    if (this.completeAt && comparePositions(stored ? parsePosition(stored) : START, this.completeAt) >= 0) {
      await redis.set(space.complete, '1');
      this.completeAt = undefined;
    }
    const epoch = this.epoch;
    this.received = stored ? parsePosition(stored) : START;
    this.subscription = this.deps.store.subscribeToAll(
      {
        from: this.received,
        filter: { streamNamePrefixes: [JOB_STREAM_PREFIX] },
        onCheckpoint: (position) => this.checkpointed(space, epoch, position),
        onCaughtUp: () => this.caughtUp(space, epoch),
      },
      (event) => this.receive(space, epoch, event),
      (error) => this.fail(error),
    );
  }

  /**
   * Indexes the directories of the completed snapshots a space holds (`directories`) afresh, from their views:
   * a space written before the index existed (an upgrade), or in part by an older release's projector during a
   * rolling upgrade (views without index entries), would otherwise answer that no job owns an imported snapshot
   * a restore names. The lookups answer 503 meanwhile (`directoriesIndexed` is behind); the lease is renewed as
   * it goes, and lost, the next holder starts over.
   */
  private async indexDirectoriesOfViews(space: KeySpace): Promise<void> {
    const { redis, log } = this.deps;
    await redis.del(space.directories);
    let views = 0;
    for await (const keys of scanKeys(redis, `${space.snapshotKeyPrefix('*')}*`)) {
      const texts = await redis.mget(...keys);
      const writes = redis.pipeline();
      for (const text of texts) {
        const view = text === null ? undefined : (JSON.parse(text) as StoredSnapshotPaths);
        if (!view || !isIndexedStatus(view.status)) continue;
        indexDirectories(writes, space, view, [view.externalPath, view.savepointPath]);
      }
      await execAll(writes);
      views += keys.length;
      if (!(await this.lease.acquire())) throw new LeaseLostError('projector lost its lease while indexing');
    }
    log.info(
      'projector indexed the directories of the read model again (written before that index, or by an older release)',
      { views },
    );
  }

  /**
   * Indexes the loose files every job's registry references (`files`) afresh, from each job's state as the
   * store holds it now (the views do not list state handles): a space written before the index, or in part
   * by an older release's projector. Events after the stored position, projected next, name every file
   * whose references they change, so the index ends as the log says. The deletions wait meanwhile
   * (`filesIndexed` is behind). Built aside, then put in place with the mark in one transaction fenced by the
   * lease: a holder deposed while it built (paused past the lease) changes nothing its successor wrote.
   */
  private async indexLooseFilesOfJobs(space: KeySpace, stored: string): Promise<void> {
    const { redis, log, store } = this.deps;
    const building = `${space.files}:building:${this.lease.holder}`;
    await redis.del(building);
    const deleted = new Set(await redis.hkeys(space.deleted));
    let jobs = 0;
    for (let from = '-'; ;) {
      const ids = await redis.zrangebylex(space.jobs, from, '+', 'LIMIT', 0, 100);
      if (ids.length === 0) break;
      const writes = redis.pipeline();
      for (const jobId of ids.filter((id) => !deleted.has(id))) {
        const loaded = await stateAt(store, jobId).catch((error: unknown) => {
          if (error instanceof StreamDeletedError) return undefined; // its tombstone follows in the log
          throw error;
        });
        if (loaded) indexLooseFiles(writes, { ...space, files: building }, loaded.state);
        // Renewed per job: a job's state may take a while to read.
        if (!(await this.lease.acquire()))
          throw new LeaseLostError('projector lost its lease while indexing');
      }
      writes.pexpire(building, BUILDING_TTL_MS); // a holder that dies while it builds leaves nothing for good
      await execAll(writes);
      jobs += ids.length;
      from = `(${ids[ids.length - 1]!}`;
    }
    for (;;) {
      await redis.watch(this.keys.lease);
      if ((await redis.get(this.keys.lease)) !== this.lease.holder) {
        await redis.unwatch();
        throw new LeaseLostError('projector lost its lease while indexing');
      }
      const built = (await redis.exists(building)) === 1;
      const tx = redis.multi().del(space.files);
      if (built) tx.rename(building, space.files).persist(space.files);
      if ((await tx.set(space.filesIndexed, stored).exec()) !== null) break;
    }
    log.info(
      'projector indexed the loose files of the read model again (written before that index, or by an older release)',
      { jobs },
    );
  }

  /** Forgets what a stopped subscription left: its unwritten events come again from the stored position. */
  private reset(): void {
    this.epoch += 1;
    this.pending = [];
    this.checkpoint = undefined;
    this.cache.clear();
    this.appliedRevisions.clear();
  }

  private fail(error: unknown): void {
    if (ConsumerBlocks.blocks(error)) return void this.refused(error);
    this.deps.log.error('projector stopped; resubscribing', { error: String(error) });
    const subscription = this.subscription;
    this.subscription = undefined;
    this.reset();
    void subscription?.close().catch(() => undefined);
  }

  /**
   * The store refused snapcat's credentials, or the log holds an event a newer snapcat wrote: retrying every
   * tick would change nothing. Said loudly, the lease given up (a process whose credentials work, or an
   * upgraded one, may take over), the next attempt after accessRetryMs (none after an unreadable event).
   */
  private async refused(error: StoreAccessDeniedError | UnreadableEventError): Promise<void> {
    this.refusals.note(error, 'projector', 'projector cannot follow the log', this.deps.log.error);
    await this.standBy();
    await this.lease.release();
  }

  /**
   * Events are written in batches: those that arrive in one turn of the event loop (up to BATCH) share one
   * MULTI, and a job's summary is written once per batch however many of its events the batch holds.
   */
  private async receive(space: KeySpace, epoch: number, recorded: RecordedEvent): Promise<void> {
    if (epoch !== this.epoch) return;
    const idle = this.pending.length === 0 && !this.checkpoint;
    this.received = recorded.position;
    this.pending.push(recorded);
    if (this.pending.length >= BATCH) return this.flush(space, epoch);
    if (idle) this.flushSoon(space, epoch);
  }

  /**
   * A checkpoint comes after every event before it was received: it is written as the position with the
   * batch those events are in (or alone, if they are written), never ahead of an unwritten event.
   */
  private checkpointed(space: KeySpace, epoch: number, position: Position): void {
    if (epoch !== this.epoch) return;
    const idle = this.pending.length === 0 && !this.checkpoint;
    this.received = position;
    this.checkpoint = position;
    if (idle) this.flushSoon(space, epoch);
  }

  /**
   * The subscription delivered every job event of the log as it was: once what it received is written, the
   * space is complete. Needed on EventStoreDB, whose checkpoints come only every so many events scanned, so
   * the stored position may stay short of the log's end read at the start (a tail of other streams' events)
   * until the log grows.
   */
  private caughtUp(space: KeySpace, epoch: number): void {
    if (epoch !== this.epoch || this.completeAt === undefined) return;
    const received = this.received;
    if (comparePositions(received, this.completeAt) < 0) this.completeAt = received;
    // Nothing waiting to be written (a batch may be in flight, at `received`): written again there, with the
    // mark. Never an earlier position: the stored one must not go back.
    if (this.pending.length === 0 && !this.checkpoint) this.checkpointed(space, epoch, received);
  }

  private flushSoon(space: KeySpace, epoch: number): void {
    setImmediate(() => this.flush(space, epoch).catch((error: unknown) => this.fail(error)));
  }

  private flush(space: KeySpace, epoch: number): Promise<void> {
    const run = this.flushing.then(() => (epoch === this.epoch ? this.write(space) : undefined));
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async write(space: KeySpace): Promise<void> {
    const epoch = this.epoch;
    const batch = this.pending;
    const checkpoint = this.checkpoint;
    this.pending = [];
    this.checkpoint = undefined;
    const last = batch[batch.length - 1]?.position;
    // Events and checkpoints arrive in order: the later of the two is where everything before is written.
    const position = last && (!checkpoint || comparePositions(last, checkpoint) > 0) ? last : checkpoint;
    if (!position) return;
    const { events, deleted } = decodeBatch(batch);
    await this.loadAppliedRevisions(space, events);
    const { runs, applied } = this.newEventsByJob(events);
    const touched = await this.foldRuns(runs);
    // A space still catching up (a first start, a rebuild after Redis lost the read model) projects history:
    // the log up to where it ended when the projector began to fill the space.
    const historyUntil = this.completeAt;
    await this.commit(space, touched, deleted, position);
    // Not once the subscription was reset meanwhile: the next one compares Redis with what it wrote itself.
    if (epoch === this.epoch) this.written = position;
    this.stats.applied += applied.length;
    this.announceWritten(applied, historyUntil);
  }

  /** Reads from Redis the applied revision of each job of the batch this projector has not seen yet. */
  private async loadAppliedRevisions(space: KeySpace, events: DecodedEvent[]): Promise<void> {
    const unknown = [...new Set(events.map(({ event }) => event.jobId))].filter(
      (jobId) => !this.appliedRevisions.has(jobId),
    );
    if (unknown.length === 0) return;
    const revisions = await this.deps.redis.hmget(space.applied, ...unknown);
    unknown.forEach((jobId, i) =>
      this.appliedRevisions.set(jobId, revisions[i] == null ? -1n : BigInt(revisions[i]!)),
    );
  }

  /**
   * Each job's events of the batch not applied before (a redelivered one is counted as a duplicate), in
   * order; and all of them, in the batch's order.
   */
  private newEventsByJob(events: DecodedEvent[]): {
    runs: Map<string, DecodedEvent[]>;
    applied: DecodedEvent[];
  } {
    const runs = new Map<string, DecodedEvent[]>();
    const applied: DecodedEvent[] = [];
    for (const item of events) {
      const { recorded, event } = item;
      if (this.appliedRevisions.get(event.jobId)! >= recorded.revision) {
        this.stats.duplicates += 1;
        continue;
      }
      this.appliedRevisions.set(event.jobId, recorded.revision);
      const run = runs.get(event.jobId);
      if (run) run.push(item);
      else runs.set(event.jobId, [item]);
      applied.push(item);
    }
    return { runs, applied };
  }

  /**
   * Each job's state after its run of events, with the snapshots they touched. A run is folded at once: one
   * copy-on-write draft per job, not per event (a draft copies the job's snapshot map, which is large for
   * jobs that keep many snapshots).
   */
  private async foldRuns(runs: Map<string, DecodedEvent[]>): Promise<Map<string, TouchedJob>> {
    const touched = new Map<string, TouchedJob>();
    for (const [jobId, run] of runs) {
      const snapshots = new Set<number>();
      let tasksChanged = false;
      let discards = false;
      for (const { event } of run) {
        const snapshotId = snapshotIdOf(event);
        if (snapshotId !== null) snapshots.add(snapshotId);
        if (event.type === 'SnapshotDiscardRequested') discards = true;
        if (event.type === 'JobRegistered' || event.type === 'JobReconfigured') tasksChanged = true;
      }
      const revision = run[run.length - 1]!.recorded.revision;
      // The command bus of this process may hold the very same state already: sharing it saves the fold
      // and a second copy of every job's state in memory (states are immutable, so sharing is safe).
      // Not for a discard: the files it releases are read from the state before it (`looseFilesChangedBy`).
      let shared = discards ? undefined : this.deps.sharedStates?.cachedState(jobId, revision);
      // A snapshot the run touched and compacted is only in the fold's `compacted`: fold it then.
      for (const id of snapshots) if (shared && !shared.snapshots.has(id)) shared = undefined;
      if (shared) this.stats.shared += 1;
      const compacted = new Map<number, SnapshotState>();
      const folded = shared ? { state: shared, before: shared } : await this.foldRun(jobId, run, compacted);
      if (!folded) continue; // deleted since: its tombstone follows in the log
      const { state, before } = folded;
      const files = new Set<string>();
      for (const { event } of run) for (const file of looseFilesChangedBy(event, before)) files.add(file);
      this.remember(jobId, state, revision);
      touched.set(jobId, { state, snapshots, tasksChanged, compacted, files });
    }
    return touched;
  }

  /** Writes the batch in one MULTI, fenced: EXEC fails if the lease key changed after the WATCH. */
  private async commit(
    space: KeySpace,
    touched: Map<string, TouchedJob>,
    deleted: Map<string, string>,
    position: Position,
  ): Promise<void> {
    const { redis } = this.deps;
    // Our own renewal of the lease fails the EXEC too: then it is written again.
    for (;;) {
      await redis.watch(this.keys.lease);
      if ((await redis.get(this.keys.lease)) !== this.lease.holder) {
        await redis.unwatch();
        throw new LeaseLostError('another projector holds the lease: batch not written');
      }
      const tx = redis.multi();
      for (const [jobId, { state, snapshots, tasksChanged, compacted, files }] of touched) {
        writeJobViews(tx, space, state, snapshots, tasksChanged, compacted);
        if (files.size > 0) indexLooseFiles(tx, space, state, files);
        tx.hset(space.applied, jobId, this.appliedRevisions.get(jobId)!.toString());
      }
      for (const [jobId, at] of deleted) tx.hset(space.deleted, jobId, at);
      tx.set(space.position, formatPosition(position));
      tx.set(space.directoriesIndexed, directoriesIndexedAt(formatPosition(position)));
      tx.set(space.filesIndexed, formatPosition(position));
      const completes = this.completeAt !== undefined && comparePositions(position, this.completeAt) >= 0;
      if (completes) tx.set(space.complete, '1');
      if ((await tx.exec()) !== null) {
        if (completes) this.completeAt = undefined;
        return;
      }
    }
  }

  /**
   * Records each written event's lag, and publishes it (`deps.publish`) now that it is visible. An event this
   * process published before is not published again: after Redis lost the read model (or acknowledged
   * writes) the log is projected again, and live subscriptions received the whole history a second time (a
   * review).
   */
  private announceWritten(applied: DecodedEvent[], historyUntil: Position | undefined): void {
    const now = Date.now();
    for (const { recorded, event } of applied) {
      // Append to visible for what came after the history a catch-up projects (a first start, a rebuild after
      // Redis lost the read model): that was not waiting on a projector, and its age reported a months-old
      // log as lagging after every Redis failover (a walkthrough). A failover's waiting events count.
      if (!historyUntil || comparePositions(recorded.position, historyUntil) > 0) {
        this.lags.push(now - recorded.created.getTime());
      }
      if (this.announced && comparePositions(recorded.position, this.announced) <= 0) continue;
      this.announced = recorded.position;
      this.deps.publish?.({
        jobId: event.jobId,
        type: event.type,
        snapshotId: snapshotIdOf(event),
        revision: recorded.revision.toString(),
        position: formatPosition(recorded.position),
        occurredAt: event.occurredAt,
        data: event,
      });
    }
    if (this.lags.length > 1000) this.lags.splice(0, this.lags.length - 1000);
  }

  /**
   * The job's state after a run of its events: the cached state folded forward, reloaded after a gap (a
   * first sight of the job, a restart: at the run's first event); and the state it was folded from.
   * Undefined when the reload finds the job's stream hard-deleted (its events are still in $all).
   */
  private async foldRun(
    jobId: string,
    run: DecodedEvent[],
    compacted: Map<number, SnapshotState>,
  ): Promise<{ state: JobState; before: JobState } | undefined> {
    let cached = this.cache.get(jobId);
    let pending: Event[] = [];
    let revision = cached?.revision ?? -2n;
    for (const { recorded, event } of run) {
      if (recorded.revision !== revision + 1n) {
        // Not next to the cached state (first sight of the job, a restart): reload at the event. The
        // events folded so far are in that state already.
        try {
          cached = await stateAt(this.deps.store, jobId, { revision: recorded.revision - 1n });
        } catch (error) {
          if (error instanceof StreamDeletedError) return undefined;
          throw error;
        }
        this.stats.reloads += 1;
        pending = [];
      }
      pending.push(event);
      revision = recorded.revision;
    }
    const before = cached!.state;
    return {
      state: fold(before, pending, (snapshot) => compacted.set(snapshot.snapshotId, snapshot)),
      before,
    };
  }

  private remember(jobId: string, state: JobState, revision: bigint): void {
    this.cache.delete(jobId);
    this.cache.set(jobId, { state, revision });
    if (this.cache.size > (this.deps.cacheSize ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
  }

  private async flushLag(): Promise<void> {
    if (this.lags.length)
      await this.deps.redis.set(this.keys.lag, JSON.stringify({ ...this.lag(), at: Date.now() }));
  }
}
