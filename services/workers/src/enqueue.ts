import type { Redis } from 'ioredis';
import {
  discardPlanOf,
  type DiscardPlan,
  type EventOf,
  type JobState,
  type Obligation,
  type SavepointSchedule,
  type StateHandle,
  planningJobOf,
} from '@snapcat/domain';
import { nextFireTime, previousFireTime } from '@snapcat/application';
import type { Queues } from '@snapcat/runtime';
import { KEEP, SAVEPOINT_TICK_MS, discardJob, jobIds } from './queues';
import type { ScheduleIndex } from './schedule-index';

export interface EnqueueOptions {
  discardAttempts: number;
  discardBackoffMs: number;
  retentionSweepMs: number;
  now: () => number;
}

/**
 * Turns what the log says into BullMQ jobs. Every method is idempotent (deterministic job ids, upserted
 * schedulers), so the live path and the reconciliation after a restart or a Redis wipe share it.
 */
export class Enqueuer {
  constructor(
    private readonly queues: Queues,
    private readonly redis: Redis,
    private readonly knownJobsKey: string,
    private readonly schedules: ScheduleIndex,
    private readonly options: EnqueueOptions,
  ) {}

  /**
   * The cluster's two BullMQ job schedulers: the retention sweep and the savepoint tick. Upserted by the
   * active process manager whenever it takes over (also after a Redis wipe), the one place that does.
   */
  async maintenanceSchedulers(): Promise<void> {
    await this.queues.maintenance.upsertJobScheduler(
      jobIds.retentionSweep,
      { every: this.options.retentionSweepMs },
      { name: 'retention-sweep' },
    );
    // Ticks on whole seconds, where `every` slots and cron seconds fall.
    await this.queues.schedules.upsertJobScheduler(
      jobIds.savepointTick,
      {
        every: SAVEPOINT_TICK_MS,
        startDate: Math.ceil(this.options.now() / SAVEPOINT_TICK_MS) * SAVEPOINT_TICK_MS,
      },
      { name: 'savepoint-tick', opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 1000 } } },
    );
    // Job schedulers of the design before decision 0009 (one per job) would fire jobs no worker runs now.
    for (const legacy of await this.queues.schedules.getJobSchedulers(0, -1)) {
      if (legacy.key !== jobIds.savepointTick) await this.queues.schedules.removeJobScheduler(legacy.key);
    }
  }

  async knownJob(jobId: string): Promise<void> {
    await this.redis.sadd(this.knownJobsKey, jobId);
  }

  /** The known jobs whose id starts with `prefix` (a hex prefix: no glob characters in it). */
  async knownJobsStartingWith(prefix: string): Promise<string[]> {
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, ids] = await this.redis.sscan(
        this.knownJobsKey,
        cursor,
        'MATCH',
        `${prefix}*`,
        'COUNT',
        1000,
      );
      for (const id of ids) found.add(id);
      cursor = next;
    } while (cursor !== '0');
    return [...found];
  }

  /** A job whose stream was hard-deleted: out of the retention sweep, its schedule removed. */
  async forget(jobId: string): Promise<void> {
    await this.redis.srem(this.knownJobsKey, jobId);
    await this.schedules.remove(jobId);
  }

  async timeout(jobId: string, snapshotId: number, deadline: number): Promise<void> {
    await this.queues.timeouts.add(
      'expire',
      { jobId, snapshotId },
      {
        ...KEEP,
        jobId: jobIds.timeout(jobId, snapshotId),
        delay: Math.max(0, deadline - this.options.now()),
      },
    );
  }

  async discard(jobId: string, snapshotId: number, plan: DiscardPlan): Promise<void> {
    await this.queues.storage.add('discard', discardJob(jobId, snapshotId, plan), {
      ...KEEP,
      jobId: jobIds.discard(jobId, snapshotId),
      attempts: this.options.discardAttempts,
      backoff: { type: 'exponential', delay: this.options.discardBackoffMs },
    });
  }

  /** A stray acknowledgement's cleanup: by its id, or (events before decision 0011) by the event's id. */
  async stray(
    cleanup: { cleanupId: number } | { eventId: string },
    jobId: string,
    stateHandles: StateHandle[],
  ): Promise<void> {
    if (stateHandles.length === 0) return;
    const tracked = 'cleanupId' in cleanup;
    await this.queues.storage.add(
      'stray',
      { jobId, stateHandles, ...(tracked ? { cleanupId: cleanup.cleanupId } : {}) },
      {
        ...KEEP,
        jobId: tracked ? jobIds.stray(jobId, cleanup.cleanupId) : jobIds.legacyStray(cleanup.eventId),
        attempts: this.options.discardAttempts,
        backoff: { type: 'exponential', delay: this.options.discardBackoffMs },
      },
    );
  }

  async manifest(jobId: string, snapshotId: number): Promise<void> {
    await this.queues.storage.add(
      'manifest',
      { jobId, snapshotId },
      {
        ...KEEP,
        jobId: jobIds.manifest(jobId, snapshotId),
        attempts: 10,
        backoff: { type: 'exponential', delay: 1000 },
      },
    );
  }

  /** Sets the job's schedule in the index, to fire from its next slot on; null removes it. */
  async schedule(jobId: string, schedule: SavepointSchedule | null, firstSlot?: number): Promise<void> {
    if (!schedule) return this.schedules.remove(jobId);
    await this.schedules.set(jobId, schedule, firstSlot ?? nextFireTime(schedule, this.options.now()));
  }

  /**
   * Enqueues one obligation that needs nothing but itself. Discards and stray cleanups need their plans (the
   * caller's: from the event, or read back); a managed job's are the FlinkEnqueuer's.
   */
  async owe(jobId: string, obligation: Obligation): Promise<void> {
    if (obligation.kind === 'retention') return this.knownJob(jobId);
    if (obligation.kind === 'schedule') return this.schedule(jobId, obligation.schedule);
    if (obligation.kind === 'timeout') return this.timeout(jobId, obligation.snapshotId, obligation.deadline);
    if (obligation.kind === 'manifest') return this.manifest(jobId, obligation.snapshotId);
  }

  /**
   * Enqueues what a job's state still owes the workers (`owed`: its `obligations`), but Flink's. What to
   * delete is in the discard events, which `discardRequests` reads back for the ids given.
   */
  async reconcile(
    state: JobState,
    owed: readonly Obligation[],
    discardRequests: (snapshotIds: Set<number>) => Promise<EventOf<'SnapshotDiscardRequested'>[]>,
  ): Promise<void> {
    // A slot that passed while the schedule index was gone fires once, late, rather than not at all (the
    // aggregate records those before it, since the last one handled, as missed).
    const missed = state.schedule && previousFireTime(state.schedule, this.options.now());
    const catchUp =
      missed && state.lastSlot !== null && state.status === 'RUNNING' && missed > state.lastSlot;
    if (!state.schedule) await this.schedule(state.jobId, null);
    const unfinished = new Set<number>();
    for (const obligation of owed) {
      if (obligation.kind === 'schedule') {
        await this.schedule(state.jobId, obligation.schedule, catchUp ? missed : undefined);
      } else if (obligation.kind === 'discard') {
        unfinished.add(obligation.snapshotId);
      } else if (obligation.kind === 'stray' && obligation.cleanupId !== undefined) {
        const locations = state.strayCleanups.get(obligation.cleanupId) ?? [];
        const handles = locations.map((path) => ({ path, sizeBytes: 0 }));
        await this.stray({ cleanupId: obligation.cleanupId }, state.jobId, handles);
      } else {
        await this.owe(state.jobId, obligation);
      }
    }
    if (unfinished.size === 0) return;
    for (const request of await discardRequests(unfinished)) {
      const plan = discardPlanOf(state.sharedState, request.snapshotId, request, planningJobOf(state));
      await this.discard(state.jobId, request.snapshotId, plan);
    }
  }
}
