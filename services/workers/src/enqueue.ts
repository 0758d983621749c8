import type { Redis } from 'ioredis';
import type { EventOf, JobState, SavepointSchedule, StateHandle } from '@snapcat/domain';
import { durationMs } from '@snapcat/domain';
import { previousFireTime } from '@snapcat/application';
import { KEEP, jobIds, type Queues } from './queues';

export interface EnqueueOptions {
  discardAttempts: number;
  discardBackoffMs: number;
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
    private readonly options: EnqueueOptions,
  ) {}

  async knownJob(jobId: string): Promise<void> {
    await this.redis.sadd(this.knownJobsKey, jobId);
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

  async discard(
    jobId: string,
    snapshotId: number,
    locations: string[],
    stateHandles: StateHandle[],
  ): Promise<void> {
    await this.queues.storage.add(
      'discard',
      { jobId, snapshotId, locations, stateHandles },
      {
        ...KEEP,
        jobId: jobIds.discard(jobId, snapshotId),
        attempts: this.options.discardAttempts,
        backoff: { type: 'exponential', delay: this.options.discardBackoffMs },
      },
    );
  }

  async stray(
    eventId: string,
    jobId: string,
    snapshotId: number,
    stateHandles: StateHandle[],
  ): Promise<void> {
    if (stateHandles.length === 0) return;
    await this.queues.storage.add(
      'stray',
      { jobId, snapshotId, stateHandles },
      { ...KEEP, jobId: jobIds.stray(eventId), attempts: 5, backoff: { type: 'exponential', delay: 1000 } },
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

  async schedule(jobId: string, schedule: SavepointSchedule | null): Promise<void> {
    const id = jobIds.schedule(jobId);
    if (!schedule) {
      await this.queues.schedules.removeJobScheduler(id);
      return;
    }
    // Slots of `every` schedules sit on multiples of the interval since the epoch, so that a scheduler
    // re-created after a Redis wipe keeps the same grid and the same slot ids.
    const every = schedule.every ? durationMs(schedule.every) : undefined;
    const repeat = every
      ? { every, startDate: Math.ceil(this.options.now() / every) * every }
      : { pattern: schedule.cron!, ...(schedule.tz ? { tz: schedule.tz } : {}) };
    await this.queues.schedules.upsertJobScheduler(id, repeat, {
      name: 'periodic-savepoint',
      data: { jobId },
      opts: { removeOnComplete: { age: 3600, count: 1000 }, removeOnFail: { age: 24 * 3600 } },
    });
  }

  /**
   * Everything a job's state still owes the workers: its schedule, timeouts, unfinished deletions and
   * manifests. What to delete is in the discard events, which `discardRequests` reads back for the ids given.
   */
  async reconcile(
    state: JobState,
    discardRequests: (snapshotIds: Set<number>) => Promise<EventOf<'SnapshotDiscardRequested'>[]>,
  ): Promise<void> {
    await this.knownJob(state.jobId);
    await this.schedule(state.jobId, state.schedule);
    // A slot that passed while the scheduler was gone fires once, late, rather than not at all.
    if (state.schedule && state.lastSlot !== null && state.status === 'RUNNING') {
      const missed = previousFireTime(state.schedule, this.options.now());
      if (missed > state.lastSlot) {
        await this.queues.schedules.add(
          'periodic-savepoint',
          { jobId: state.jobId, slot: missed },
          { ...KEEP, jobId: jobIds.catchUp(state.jobId, missed) },
        );
      }
    }
    const unfinished = new Set<number>();
    for (const snapshot of state.snapshots.values()) {
      if (snapshot.status === 'PENDING')
        await this.timeout(state.jobId, snapshot.snapshotId, snapshot.deadline);
      const discard = snapshot.discard;
      if (discard && (discard.state === 'REQUESTED' || (discard.state === 'FAILED' && discard.retryable))) {
        unfinished.add(snapshot.snapshotId);
      }
      if (snapshot.persisted && !snapshot.manifestPath && !snapshot.discard) {
        await this.manifest(state.jobId, snapshot.snapshotId);
      }
    }
    if (unfinished.size === 0) return;
    for (const request of await discardRequests(unfinished)) {
      await this.discard(state.jobId, request.snapshotId, request.locations, request.stateHandles);
    }
  }
}
