import type { Redis } from 'ioredis';
import {
  EMPTY_REGISTRY,
  asksWhetherManaged,
  discardPlanOf,
  obligations,
  obligationsOfEvent,
  planStrayCleanup,
  isTerminal,
  mirroredRestoreFrom,
  formerHoldsToRelease,
  restoreHoldToRelease,
  restoredFromJob,
  type DiscardPlan,
  type Event,
  type EventOf,
  type JobState,
  type Obligation,
  type StateHandle,
  planningJobOf,
  completedSnapshotAt,
} from '@snapcat/domain';
import { JOB_STREAM_PREFIX, domainEvent, jobIdOfStream, type CommandBus } from '@snapcat/application';
import {
  START,
  isTombstone,
  readAllPages,
  type EventStore,
  type Position,
  type RecordedEvent,
  type LogSubscription,
} from '@snapcat/event-store';
import { LeasedLogConsumer, type LogFn } from '@snapcat/runtime';
import { newestDiscardRequests } from './discard-requests';
import type { Enqueuer } from './enqueue';
import { executeUnlessRejected } from './execute';
import type { FlinkEnqueuer } from './flink';
import type { UrgentWork } from './urgent-work';

/** Events after which a restored job may no longer use the files of the job it was restored from. */
const LETTING_GO = new Set<Event['type']>([
  'SnapshotCompleted',
  'SnapshotDiscardRequested',
  'JobStatusChanged',
  // A restore may leave the job an earlier restore was from behind at once.
  'SnapshotRestored',
  'FlinkRestoreRecorded',
]);

export interface ProcessManagerDeps {
  store: EventStore;
  bus: CommandBus;
  redis: Redis;
  enqueue: Enqueuer;
  /** The Flink connector's work for managed jobs (issue 19). */
  flink: FlinkEnqueuer;
  keyPrefix: string;
  log: { info: LogFn; warn: LogFn; error: LogFn };
  /** Waited for before each event: what the events call for can wait while periodic savepoints fire. */
  urgent?: UrgentWork;
}

/**
 * Consumes the log from its stored position and enqueues the work events call for. One process manager
 * in the cluster is active at a time (a lease in Redis), so job schedulers are upserted from one place.
 * Without a stored position (first start, or Redis was wiped) it reconciles from the jobs' states first:
 * schedulers, timeouts of pending snapshots, unfinished deletions and manifests.
 */
export class ProcessManager extends LeasedLogConsumer {
  readonly stats = { reconciliations: 0, eventsHandled: 0 };
  /** The last event handled whose position is not saved yet, and when a position was last saved. */
  private unsaved: Position | undefined;
  private savedAt = 0;

  constructor(private readonly deps: ProcessManagerDeps) {
    super({ redis: deps.redis, keyPrefix: `${deps.keyPrefix}:pm`, name: 'process manager', log: deps.log });
  }

  protected recover(): Promise<Position> {
    return this.reconcile();
  }

  protected async subscribeToLog(from: Position): Promise<LogSubscription> {
    // What an earlier subscription handled and did not save is not saved now: consumption goes on from `from`
    // (after Redis lost writes, a position past it would skip what is queued again).
    this.unsaved = undefined;
    // On taking over, and after a wipe (which recovered first): the schedulers exist, created from here only.
    await this.deps.enqueue.maintenanceSchedulers();
    return this.deps.store.subscribeToAll(
      {
        from,
        filter: { streamNamePrefixes: [JOB_STREAM_PREFIX] },
        onCheckpoint: (position) => this.checkpointed(position),
      },
      (event) => this.handle(event),
      this.logSubscriptionFailed,
    );
  }

  /** Enqueues what every job's state still needs; returns the position to consume from afterwards. */
  private async reconcile(): Promise<Position> {
    const { store, bus, enqueue, log } = this.deps;
    const started = Date.now();
    const end = (await store.lastPosition()) ?? START;
    const jobIds = new Set<string>();
    const registrations = readAllPages(store, {
      filter: { streamNamePrefixes: [JOB_STREAM_PREFIX], eventTypes: ['JobRegistered'] },
    });
    for await (const page of registrations) for (const e of page) jobIds.add(domainEvent(e).jobId);
    for (const jobId of jobIds) {
      const state = await bus.loadUnlessDeleted(jobId); // undefined: hard-deleted, nothing left to do for it
      if (!state) {
        await enqueue.forget(jobId);
        continue;
      }
      const owed = obligations(state);
      await enqueue.reconcile(state, owed, (ids) => newestDiscardRequests(this.deps.store, jobId, ids));
      await this.deps.flink.reconcile(jobId, owed);
      await this.holdMirroredRestore(jobId);
      await this.releaseRestoreHold(jobId);
    }
    this.unsaved = undefined; // what was handled before the wipe is not where to resume now
    await this.markRecovered(end, new Date());
    this.stats.reconciliations += 1;
    log.info('process manager reconciled', { jobs: jobIds.size, ms: Date.now() - started });
    return end;
  }

  private async handle(recorded: RecordedEvent): Promise<void> {
    await this.deps.urgent?.idle();
    if (isTombstone(recorded)) {
      // The job's stream was hard-deleted: its schedule and sweeps would only fail from now on.
      const jobId = jobIdOfStream(recorded.streamId);
      await this.deps.enqueue.forget(jobId);
      await this.deps.flink.forget(jobId);
      return this.handled(recorded);
    }
    const event: Event = domainEvent(recorded);
    // The obligations the event adds, with the conditions the reconcile uses (decision 0021).
    const managed = asksWhetherManaged(event) && (await this.managed(event.jobId));
    const { owed, ended } = obligationsOfEvent(event, managed);
    for (const obligation of owed) await this.owe(recorded, event, obligation);
    for (const standing of ended) {
      if (standing === 'schedule') await this.deps.enqueue.schedule(event.jobId, null);
      if (standing === 'mirror') {
        const { source } = await this.deps.bus.load(event.jobId);
        if (source) await this.deps.flink.stopMirror(event.jobId, source.cluster);
      }
    }
    if (event.type === 'FlinkRestoreRecorded' && event.fromJobId) {
      await this.holdMirroredRestore(event.jobId, recorded.id);
    }
    if (LETTING_GO.has(event.type)) await this.releaseRestoreHold(event.jobId, recorded.id);
    await this.handled(recorded);
  }

  /**
   * Decision 0032: a managed job Flink restored from another catalogued job's snapshot (found by the
   * connector, `FlinkRestoreRecorded.fromJobId`) has that job hold it, as a restore through the API does;
   * placed after the fact, it still keeps every later discard off the files. Idempotent: asked again by the
   * reconcile after a restart or a wipe.
   */
  private async holdMirroredRestore(jobId: string, causationId?: string): Promise<void> {
    const { bus } = this.deps;
    const holder = await bus.loadUnlessDeleted(jobId);
    const owner = holder && mirroredRestoreFrom(holder);
    const path = holder?.flinkRestore?.externalPath;
    if (owner === undefined || !path || isTerminal(holder!.status)) return;
    const held = await bus.loadUnlessDeleted(owner);
    const snapshot = held && completedSnapshotAt(held, path);
    if (!snapshot) return; // discarded before Flink's report came: too late to hold
    await executeUnlessRejected(
      bus,
      {
        type: 'HoldSnapshot',
        jobId: owner,
        snapshotId: snapshot.snapshotId,
        holderJobId: jobId,
        holderRestore: holder!.restores.count,
      },
      { causationId },
    );
  }

  /**
   * Decision 0032: a job restored from another job's checkpoint releases its hold there once its own live
   * snapshots use none of that job's files (`restoreHoldToRelease`), and the holds of the jobs earlier
   * restores were from once nothing of theirs may be used (`formerHoldsToRelease`). Asked again after every
   * completion, discard and restore, so a crash between the two only delays it.
   */
  private async releaseRestoreHold(jobId: string, causationId?: string): Promise<void> {
    const holder = await this.deps.bus.loadUnlessDeleted(jobId);
    if (!holder) return;
    // Cheapest first: most jobs were not restored from another's checkpoint, and a released hold is gone.
    const owner = restoredFromJob(holder);
    if (owner !== undefined && (await this.holdsFor(owner, holder))) {
      if (restoreHoldToRelease(holder) === owner) await this.releaseHolds(owner, holder, causationId);
    }
    for (const former of formerHoldsToRelease(holder)) {
      if (await this.holdsFor(former, holder)) await this.releaseHolds(former, holder, causationId);
    }
  }

  /** Whether the job holds a snapshot for the holder through the restore its state was decided on. */
  private async holdsFor(owner: string, holder: JobState): Promise<boolean> {
    const held = await this.deps.bus.loadUnlessDeleted(owner);
    const holds = (id: number) => held!.snapshots.get(id)!.heldBy ?? [];
    const mine = (h: { jobId: string; restore: number }) =>
      h.jobId === holder.jobId && h.restore <= holder.restores.count;
    return held?.completed.some((id) => holds(id).some(mine)) ?? false;
  }

  /** Up to the restore the holder's state was decided on: a hold a later restore placed meanwhile stays. */
  private async releaseHolds(owner: string, holder: JobState, causationId?: string): Promise<void> {
    const throughRestore = holder.restores.count;
    await executeUnlessRejected(
      this.deps.bus,
      { type: 'ReleaseSnapshotHolds', jobId: owner, holderJobId: holder.jobId, throughRestore },
      { causationId },
    );
  }

  /** Enqueues an obligation an event added; a discard's and a stray cleanup's plans are the event's. */
  private async owe(recorded: RecordedEvent, event: Event, obligation: Obligation): Promise<void> {
    const { enqueue, flink } = this.deps;
    if (obligation.kind === 'discard' && event.type === 'SnapshotDiscardRequested') {
      return enqueue.discard(event.jobId, event.snapshotId, await this.discardPlan(event));
    }
    if (obligation.kind === 'stray' && event.type === 'StrayAcknowledgementReceived') {
      const cleanup =
        event.cleanupId !== undefined ? { cleanupId: event.cleanupId } : { eventId: recorded.id };
      return enqueue.stray(cleanup, event.jobId, await this.strayCleanup(event));
    }
    await enqueue.owe(event.jobId, obligation);
    await flink.owe(event.jobId, obligation);
  }

  private async handled(recorded: RecordedEvent): Promise<void> {
    this.stats.eventsHandled += 1;
    // Every enqueue is idempotent, so the position is saved now and then, not per event: a crash replays at
    // most a few hundred events, which enqueue nothing new (a burst of 10,000 firings was 10,000 SETs).
    this.unsaved = recorded.position;
    if (this.stats.eventsHandled % 500 === 0 || Date.now() - this.savedAt >= 250) await this.saveHandled();
  }

  /**
   * The store scanned this far past other streams' events, every job event before it handled: saved as an
   * event's position is (now and then), so a restart does not scan them again.
   */
  private async checkpointed(position: Position): Promise<void> {
    this.unsaved = position;
    if (Date.now() - this.savedAt >= 250) await this.saveHandled();
  }

  /** Whether the job is managed through Flink (its state is cached by the bus: no read per event). */
  private async managed(jobId: string): Promise<boolean> {
    return (await this.deps.bus.load(jobId)).source !== null;
  }

  /**
   * What a discard deletes, as its event recorded it. An event written before the shared-state registry
   * listed every handle: it is planned again from the job's registry as it is now.
   */
  private async discardPlan(event: EventOf<'SnapshotDiscardRequested'>): Promise<DiscardPlan> {
    if (event.kept) return discardPlanOf(EMPTY_REGISTRY, event.snapshotId, event);
    const state = await this.deps.bus.load(event.jobId);
    return discardPlanOf(state.sharedState, event.snapshotId, event, planningJobOf(state));
  }

  /** A stray acknowledgement's handles to delete; for an event from before the registry, planned now. */
  private async strayCleanup(event: EventOf<'StrayAcknowledgementReceived'>): Promise<StateHandle[]> {
    if (event.cleanup) return event.cleanup;
    const state = await this.deps.bus.load(event.jobId);
    return planStrayCleanup(state.sharedState, event.stateHandles, planningJobOf(state)).cleanup;
  }

  private async saveHandled(): Promise<void> {
    const position = this.unsaved;
    if (!position) return;
    this.unsaved = undefined;
    this.savedAt = Date.now();
    await this.savePosition(position);
  }

  /** Saves the position of the last events handled, once a second while the log is quiet. */
  protected override whileActive(): Promise<void> {
    return this.saveHandled();
  }
}
