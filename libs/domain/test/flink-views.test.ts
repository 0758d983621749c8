import {
  FLINK_HISTORY_DEFAULT,
  flinkCheckpoint,
  flinkCheckpointConfig,
  flinkCheckpointingStatistics,
  quantile,
  statsSummary,
  type FlinkCompletedCheckpoint,
  type FlinkFailedCheckpoint,
  type Retention,
} from '../src';
import { JOB, Job, T0 } from './harness';

/** The id of an accepted trigger. */
function idOf(reply: ReturnType<Job['trigger']>): number {
  if (!reply.accepted) throw new Error(`trigger rejected: ${reply.reason}`);
  return reply.snapshotId;
}

/** Acknowledges every task of a snapshot, `ms` apart, each with `size` bytes. */
function ackAll(job: Job, id: number, size: number, ms: number): void {
  for (const task of job.state.tasks) {
    job.now += ms;
    job.ack(id, task, size);
  }
}

describe("Flink's shapes of a job's snapshots (issue 19 item 5, decision 0017)", () => {
  it('a completed checkpoint: CheckpointStatistics.CompletedCheckpointStatistics', () => {
    const job = new Job().register({ tasks: ['a', 'b'] });
    const id = idOf(job.trigger());
    ackAll(job, id, 100, 1_000);
    expect(flinkCheckpoint(job.snapshot(id))).toEqual({
      className: 'completed',
      id,
      status: 'COMPLETED',
      is_savepoint: false,
      trigger_timestamp: T0,
      latest_ack_timestamp: T0 + 2_000,
      checkpointed_size: 200,
      state_size: 200,
      end_to_end_duration: 2_000,
      alignment_buffered: 0,
      processed_data: 0,
      persisted_data: 0,
      num_subtasks: 2,
      num_acknowledged_subtasks: 2,
      checkpoint_type: 'CHECKPOINT',
      tasks: {},
      external_path: `/data/chk/${JOB}/chk-${id}`,
      discarded: false,
    });
  });

  it('a pending checkpoint is IN_PROGRESS (in_progress), with Flink’s -1 / 0 for the acknowledgement time it does not keep', () => {
    const job = new Job().register({ tasks: ['a', 'b'] });
    const id = idOf(job.trigger());
    job.ack(id, 'a', 5);
    expect(flinkCheckpoint(job.snapshot(id))).toMatchObject({
      className: 'in_progress',
      id,
      status: 'IN_PROGRESS',
      latest_ack_timestamp: -1,
      end_to_end_duration: 0,
      num_subtasks: 2,
      num_acknowledged_subtasks: 1,
      state_size: 5,
    });
    expect(flinkCheckpoint(job.snapshot(id))).not.toHaveProperty('external_path');
  });

  it('a declined checkpoint is FAILED (failed), with its failure time and message', () => {
    const job = new Job().register({ tasks: ['a', 'b'], tolerableFailures: 5 });
    const id = idOf(job.trigger());
    job.now += 3_000;
    job.run({ type: 'DeclineTask', snapshotId: id, taskId: 'b', reason: 'disk full' });
    const failed = flinkCheckpoint(job.snapshot(id)) as FlinkFailedCheckpoint;
    expect(failed).toMatchObject({
      className: 'failed',
      status: 'FAILED',
      failure_timestamp: T0 + 3_000,
      end_to_end_duration: 3_000,
      latest_ack_timestamp: -1,
    });
    expect(failed.failure_message).toContain('disk full');
    // Without a message: the reason Flink would name.
    const expired = idOf(job.trigger());
    job.now += 120_000;
    job.run({ type: 'ExpireOverdue' });
    expect(flinkCheckpoint(job.snapshot(expired))).toMatchObject({
      status: 'FAILED',
      failure_message: expect.stringMatching(/CHECKPOINT_EXPIRED|expired/i),
    });
  });

  it('savepoints: is_savepoint, savepointFormat, SAVEPOINT; a stop-with-savepoint is SYNC_SAVEPOINT', () => {
    const job = new Job().register();
    const savepoint = idOf(
      job.run({
        type: 'TriggerSnapshot',
        kind: 'SAVEPOINT',
        triggerId: 'sp',
        triggerType: 'MANUAL',
        formatType: 'NATIVE',
      }).reply,
    );
    ackAll(job, savepoint, 1, 10);
    expect(flinkCheckpoint(job.snapshot(savepoint))).toMatchObject({
      is_savepoint: true,
      savepointFormat: 'NATIVE',
      checkpoint_type: 'SAVEPOINT',
      external_path: job.snapshot(savepoint).externalPath,
    });
    for (const drain of [false, true]) {
      const stop = idOf(
        job.run({
          type: 'TriggerSnapshot',
          kind: 'SAVEPOINT',
          triggerId: `stop-${drain}`,
          triggerType: 'MANUAL',
          formatType: 'CANONICAL',
          terminate: { drain },
        }).reply,
      );
      expect(flinkCheckpoint(job.snapshot(stop))).toMatchObject({
        is_savepoint: true,
        savepointFormat: 'CANONICAL',
        checkpoint_type: 'SYNC_SAVEPOINT',
      });
    }
    // A checkpoint has no savepointFormat (Flink's is null there).
    const checkpoint = new Job().register();
    const id = checkpoint.complete();
    expect(flinkCheckpoint(checkpoint.snapshot(id))).not.toHaveProperty('savepointFormat');
  });

  it('a FULL checkpoint is CHECKPOINT (RestAPICheckpointType has no FULL); a persisted checkpoint stays a checkpoint', () => {
    const job = new Job().register({ numRetained: 3 });
    const full = idOf(
      job.run({
        type: 'TriggerSnapshot',
        kind: 'CHECKPOINT',
        triggerId: 'full',
        triggerType: 'MANUAL',
        formatType: 'CANONICAL',
        checkpointType: 'FULL',
      }).reply,
    );
    ackAll(job, full, 1, 1);
    job.run({ type: 'PersistSnapshot', snapshotId: full });
    expect(job.snapshot(full).persisted).toBe(true);
    expect(flinkCheckpoint(job.snapshot(full))).toMatchObject({
      is_savepoint: false,
      checkpoint_type: 'CHECKPOINT',
      external_path: `/data/chk/${JOB}/chk-${full}`,
    });
  });

  it('a discarded or discarding checkpoint stays COMPLETED with discarded: true', () => {
    const job = new Job().register({ numRetained: 1 });
    const first = job.complete();
    const second = job.complete(); // subsumes the first
    expect(job.snapshot(first).status).toBe('DISCARDING');
    expect(flinkCheckpoint(job.snapshot(first))).toMatchObject({ status: 'COMPLETED', discarded: true });
    job.run({ type: 'RecordDiscardCompleted', snapshotId: first, bytesReclaimed: 10 });
    expect(job.snapshot(first).status).toBe('DISCARDED');
    expect(flinkCheckpoint(job.snapshot(first))).toMatchObject({ status: 'COMPLETED', discarded: true });
    expect(flinkCheckpoint(job.snapshot(second))).toMatchObject({ discarded: false });
  });

  it('CheckpointingStatistics: counts, latest, restored and the whole history newest first', () => {
    const job = new Job().register({ numRetained: 2, tolerableFailures: 100 });
    const ids: number[] = [];
    for (let i = 0; i < 12; i += 1) ids.push(job.complete());
    const savepoint = job.complete('SAVEPOINT');
    const declined = idOf(job.trigger());
    job.run({ type: 'DeclineTask', snapshotId: declined, taskId: 'a' });
    const pending = idOf(job.trigger());
    job.now += 5_000;
    job.run({
      type: 'RestoreSnapshot',
      snapshotId: savepoint,
      claimMode: 'NO_CLAIM',
      allowNonRestoredState: false,
    });
    const { statistics, more } = flinkCheckpointingStatistics(job.state);
    expect(more).toBe(false);
    // The restore aborted the pending checkpoint of the previous run.
    expect(job.snapshot(pending).status).toBe('FAILED');
    expect(statistics.counts).toEqual({ restored: 1, total: 15, in_progress: 0, completed: 13, failed: 2 });
    expect(statistics.history.map((h) => h.id)).toEqual([pending, declined, savepoint, ...ids.reverse()]);
    expect(statistics.history).toHaveLength(15); // not Flink's last 10
    expect(statistics.latest.completed).toMatchObject({ id: ids[0], is_savepoint: false });
    expect(statistics.latest.savepoint).toMatchObject({ id: savepoint, is_savepoint: true });
    expect(statistics.latest.failed).toMatchObject({ id: pending, status: 'FAILED' });
    expect(statistics.latest.restored).toEqual({
      id: savepoint,
      restore_timestamp: job.now,
      is_savepoint: true,
      external_path: job.snapshot(savepoint).externalPath,
    });
    // Subsumed checkpoints count as completed, and are in the summary, as Flink's are.
    expect(statistics.summary.state_size).toMatchObject({ min: 20, max: 20, avg: 20, p50: 20, p999: 20 });
    expect(statistics.summary.alignment_buffered).toMatchObject({ min: 0, max: 0, avg: 0, p50: 0 });
  });

  it('a job without snapshots: zero counts and summaries, no latest, an empty history', () => {
    const { statistics } = flinkCheckpointingStatistics(new Job().register().state);
    expect(statistics.counts).toEqual({ restored: 0, total: 0, in_progress: 0, completed: 0, failed: 0 });
    expect(statistics.latest).toEqual({});
    expect(statistics.history).toEqual([]);
    expect(statistics.summary.end_to_end_duration).toEqual({
      min: 0,
      max: 0,
      avg: 0,
      p50: 0,
      p90: 0,
      p95: 0,
      p99: 0,
      p999: 0,
    });
  });

  it('a restore from an external path: its id when given, -1 when not; a savepoint by its directory name', () => {
    const job = new Job().register();
    job.run({
      type: 'RestoreSnapshot',
      externalPath: 's3://other/savepoints/savepoint-abcdef-0123456789ab',
      checkpointId: 500,
      claimMode: 'NO_CLAIM',
      allowNonRestoredState: true,
    });
    expect(flinkCheckpointingStatistics(job.state).statistics.latest.restored).toMatchObject({
      id: 500,
      is_savepoint: true,
      external_path: 's3://other/savepoints/savepoint-abcdef-0123456789ab',
    });
    job.run({
      type: 'RestoreSnapshot',
      externalPath: 's3://other/checkpoints/job/chk-7',
      claimMode: 'CLAIM',
      allowNonRestoredState: false,
    });
    const { statistics } = flinkCheckpointingStatistics(job.state);
    expect(statistics.latest.restored).toMatchObject({ id: -1, is_savepoint: false });
    expect(statistics.counts.restored).toBe(2);
  });

  it('the history is cut at `limit`, newest first, and goes on `before` an id', () => {
    const job = new Job().register({ numRetained: 1 });
    for (let i = 0; i < 25; i += 1) job.complete();
    const first = flinkCheckpointingStatistics(job.state, { limit: 10 });
    expect(first.more).toBe(true);
    expect(first.statistics.history.map((h) => h.id)).toEqual([25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
    const next = flinkCheckpointingStatistics(job.state, { limit: 10, before: 16 });
    expect(next.statistics.history.map((h) => h.id)).toEqual([15, 14, 13, 12, 11, 10, 9, 8, 7, 6]);
    const last = flinkCheckpointingStatistics(job.state, { limit: 10, before: 6 });
    expect([last.more, last.statistics.history.map((h) => h.id)]).toEqual([false, [5, 4, 3, 2, 1]]);
    // The counts and the latest are the job's, whatever the page.
    expect(last.statistics.counts.total).toBe(25);
    expect((last.statistics.latest.completed as FlinkCompletedCheckpoint).id).toBe(25);
    expect(FLINK_HISTORY_DEFAULT).toBeGreaterThanOrEqual(10_000);
  });

  it('CheckpointingStatistics counts a pending snapshot in progress, keeps the newest savepoint apart, and sums durations', () => {
    const job = new Job().register({ numRetained: 5, tasks: ['a'] });
    const first = job.complete('SAVEPOINT');
    const second = job.complete('SAVEPOINT');
    const checkpoint = idOf(job.trigger());
    job.now += 4_000;
    job.ack(checkpoint, 'a', 10); // completes 4 s after its trigger
    const pending = idOf(job.trigger());
    const { statistics } = flinkCheckpointingStatistics(job.state);
    expect(statistics.counts).toEqual({ restored: 0, total: 4, in_progress: 1, completed: 3, failed: 0 });
    expect(statistics.latest.savepoint).toMatchObject({ id: second });
    expect(statistics.latest.completed).toMatchObject({ id: checkpoint });
    expect(statistics.history.map((h) => h.id)).toEqual([pending, checkpoint, second, first]);
    expect(statistics.summary.end_to_end_duration).toMatchObject({ min: 0, max: 4_000 });
  });

  it('a restore from the job’s own checkpoint is no savepoint; an external path is one only when its directory is named savepoint-…', () => {
    const job = new Job().register({ numRetained: 3 });
    const checkpoint = job.complete();
    job.run({
      type: 'RestoreSnapshot',
      snapshotId: checkpoint,
      claimMode: 'NO_CLAIM',
      allowNonRestoredState: false,
    });
    expect(flinkCheckpointingStatistics(job.state).statistics.latest.restored).toMatchObject({
      id: checkpoint,
      is_savepoint: false,
    });
    const restoredFrom = (externalPath: string) => {
      job.run({ type: 'RestoreSnapshot', externalPath, claimMode: 'NO_CLAIM', allowNonRestoredState: false });
      return flinkCheckpointingStatistics(job.state).statistics.latest.restored?.is_savepoint;
    };
    expect(restoredFrom('/sp/savepoint-abc/_metadata')).toBe(true);
    expect(restoredFrom('/sp/savepoint-abc/')).toBe(true);
    expect(restoredFrom('/sp/mysavepoint-abc')).toBe(false);
    expect(restoredFrom('/sp/savepoint-abc/chk-3')).toBe(false);
    expect(restoredFrom('/sp/savepoint-abc/_metadata.bak')).toBe(false);
  });

  it('the summary sorts what it is given; the quantiles of none are 0, and a position at the count is the largest', () => {
    expect(statsSummary([30, 10, 20])).toMatchObject({ min: 10, max: 30, p50: 20 });
    expect(quantile([], 0.5)).toBe(0);
    expect(quantile([1, 2, 3], 0.75)).toBe(3); // pos = 0.75 x 4 = 3 = count
    expect(quantile([1, 2, 3], 0.5)).toBe(2);
    expect(quantile([1, 2, 3], 0.375)).toBe(1.5);
  });

  it('the summary: min, max, the truncated average and Commons Math LEGACY quantiles', () => {
    expect(statsSummary([10, 20, 30, 40])).toEqual({
      min: 10,
      max: 40,
      avg: 25,
      // pos = p(n+1): 2.5 -> 25; 4.5 and more -> the largest.
      p50: 25,
      p90: 40,
      p95: 40,
      p99: 40,
      p999: 40,
    });
    expect(statsSummary([1, 2]).avg).toBe(1); // 3 / 2, truncated as a long division
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(hundred, 0.5)).toBe(50.5);
    expect(quantile(hundred, 0.9)).toBeCloseTo(90.9);
    expect(quantile(hundred, 0.001)).toBe(1); // pos < 1
    expect(quantile([7], 0.99)).toBe(7);
  });

  it.each([
    ['NEVER_RETAIN_AFTER_TERMINATION', { enabled: false, delete_on_cancellation: true }],
    ['RETAIN_ON_CANCELLATION', { enabled: true, delete_on_cancellation: false }],
    ['RETAIN_ON_FAILURE', { enabled: true, delete_on_cancellation: true }],
  ] as [Retention, object][])(
    'CheckpointConfigInfo: retention %s is externalization %j',
    (retention, ext) => {
      const job = new Job().register({
        retention,
        timeoutMs: 90_000,
        minPauseMs: 500,
        maxConcurrent: 3,
        tolerableFailures: 4,
      });
      expect(flinkCheckpointConfig(job.state)).toEqual({
        mode: 'EXACTLY_ONCE',
        interval: -1,
        timeout: 90_000,
        min_pause: 500,
        max_concurrent: 3,
        externalization: ext,
        checkpoint_storage: 'FileSystemCheckpointStorage',
        unaligned_checkpoints: false,
        tolerable_failed_checkpoints: 4,
        aligned_checkpoint_timeout: 0,
        checkpoints_after_tasks_finish: true,
        state_changelog_enabled: false,
      });
    },
  );

  it('CheckpointConfigInfo of a managed job is what Flink reported of it (retention, timeout), not snapcat’s', () => {
    const job = new Job().registerManaged(1);
    expect(job.state.checkpointing.retention).not.toBe('RETAIN_ON_CANCELLATION');
    job.run({
      type: 'RecordFlinkCheckpointConfig',
      externalized: true,
      deleteOnCancellation: false,
      timeoutMs: 120_000,
    });
    expect(flinkCheckpointConfig(job.state)).toMatchObject({
      timeout: 120_000,
      externalization: { enabled: true, delete_on_cancellation: false },
    });
  });
});
