import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { Queue } from 'bullmq';
import { namespaceOf } from './support/namespace';
import { client, startService, testPrefix, type RunningService } from './support/service';
import { startRedisServer } from './support/redis';
import { periodicTriggerId } from '@snapcat/domain';

const JOB = '5c4ed01e5c4ed01e5c4ed01e5c4ed01e';
const CRON_JOB = '5c4ed01e5c4ed01e5c4ed01e5c4ed01f';
const RETAINED_JOB = '5c4ed01e5c4ed01e5c4ed01e5c4ed020';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The slot of each periodic snapshot, by snapshot id, from its SnapshotTriggered event. Since issue 16 (R48)
 * the triggerId is a Flink TriggerId hashed from the job, schedule and slot, no longer `periodic-<slot>`.
 */
async function slotsOf(api: ReturnType<typeof client>, jobId: string): Promise<Map<number, number>> {
  const events = (await api.get(`/jobs/${jobId}/events?limit=1000`)).body.events as {
    type: string;
    data: { snapshotId?: number; slot?: number };
  }[];
  return new Map(
    events
      .filter((e) => e.type === 'SnapshotTriggered' && e.data.slot !== undefined)
      .map((e) => [e.data.snapshotId!, e.data.slot!]),
  );
}

type Snap = {
  snapshotId: number;
  triggerId: string;
  triggerType: string;
  status: string;
  triggeredAt: string;
};

describe('periodic savepoints with two worker processes, and a Redis wipe in the middle', () => {
  let dir: string;
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let services: RunningService[] = [];
  const prefix = testPrefix('schedule');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-schedule-'));
    redis = await startRedisServer();
    const env = {
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
      SNAPCAT_REDIS_URL: redis.url,
      SNAPCAT_QUEUE_PREFIX: prefix,
    };
    services = [await startService(env), await startService(env, 'services/workers/src/main.ts')];
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop('SIGKILL')));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every PT2S gives one PERIODIC savepoint per slot for 20 s; FLUSHALL loses no slot and no cleanup', async () => {
    const api = client(services[0]!.url);
    // Nobody acknowledges the periodic savepoints here: each expires (timeoutMs) before the next slot, which
    // a pending one would skip (docs/domain.md R50, PREVIOUS_SAVEPOINT_PENDING).
    expect(
      (await api.put(`/jobs/${JOB}`, { tasks: ['a'], checkpointing: { numRetained: 10, timeoutMs: 1000 } }))
        .status,
    ).toBe(201);
    // Completed checkpoints whose discards will be pending (paused queue) when Redis is wiped.
    const chkDir = (id: number) => join(dir, 'snapshots', 'checkpoints', JOB, `chk-${id}`);
    for (let id = 1; id <= 3; id += 1) {
      await api.post(`/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' });
      mkdirSync(chkDir(id), { recursive: true });
      writeFileSync(join(chkDir(id), 'state'), Buffer.alloc(1000));
      await api.post(`/jobs/${JOB}/snapshots/${id}/acks`, { taskId: 'a', stateSize: 1000 });
    }
    const scheduled = await api.put(`/jobs/${JOB}/savepoint-schedule`, { every: 'PT2S' });
    expect(scheduled.status).toBe(200);
    expect(Date.parse(scheduled.body.nextFireAt) % 2000).toBe(0);
    const started = Date.now();

    await sleep(9000);
    const namespace = await namespaceOf(`sqlite:${join(dir, 'events.db')}`, prefix);
    const storageQueue = new Queue('storage', { connection: { url: redis.url }, prefix: namespace });
    await storageQueue.pause();
    for (const id of [1, 2]) {
      expect((await api.post(`/jobs/${JOB}/snapshots/${id}/discard`, {})).status).toBe(202);
    }
    await sleep(500);
    expect((await api.get(`/jobs/${JOB}/snapshots/1`)).body.status).toBe('DISCARDING'); // held by the pause
    const wiper = new IORedis(redis.url);
    await wiper.flushall();
    wiper.disconnect();
    await storageQueue.close();
    const wipedAt = Date.now();

    // Within 10 s the scheduler is back: a PERIODIC savepoint triggered after the wipe.
    let backAfter = Infinity;
    while (Date.now() - wipedAt < 10_000) {
      const snaps = (await api.get(`/jobs/${JOB}`)).body.snapshots as Snap[];
      if (snaps.some((s) => s.triggerType === 'PERIODIC' && Date.parse(s.triggeredAt) > wipedAt)) {
        backAfter = Date.now() - wipedAt;
        break;
      }
      await sleep(200);
    }
    expect(backAfter).toBeLessThan(10_000);
    await sleep(Math.max(0, started + 20_500 - Date.now()));
    await api.delete(`/jobs/${JOB}/savepoint-schedule`);

    const snaps = (await api.get(`/jobs/${JOB}`)).body.snapshots as Snap[];
    const periodic = snaps.filter((s) => s.triggerType === 'PERIODIC');
    const slotOf = await slotsOf(api, JOB);
    for (const s of periodic) {
      expect(s.triggerId).toBe(periodicTriggerId(JOB, { every: 'PT2S' }, slotOf.get(s.snapshotId)!));
    }
    const slots = periodic.map((s) => slotOf.get(s.snapshotId)!).sort((a, b) => a - b);
    expect(new Set(slots).size).toBe(slots.length); // no slot fired twice
    expect(slots.every((slot) => slot % 2000 === 0)).toBe(true);
    const events = (await api.get(`/jobs/${JOB}/events?limit=1000`)).body.events as {
      type: string;
      data: { triggerType?: string; slot?: number; reason?: string };
    }[];
    // A slot fired late after the wipe may still be pending at the next one, which is then skipped
    // (R50, PREVIOUS_SAVEPOINT_PENDING): handled, not lost. A slot that passed while Redis was gone and the
    // process manager had not reconciled yet, when that took longer than a slot (a loaded machine), is
    // recorded as SLOT_MISSED (the reconcile fires only the latest one late): recorded, not lost. Outside
    // that window a tick can still come more than a slot late when the machine starves the worker processes
    // of CPU (a CI run saw it once, after the outage): the newest slot fires and the one before is recorded
    // SLOT_MISSED, by design (fireBatch). That is allowed once or twice, never as a pattern (an index that
    // skipped slots would miss every other one); nothing else is skipped.
    const skipped = events.filter((e) => e.type === 'PeriodicSavepointSkipped');
    const inOutage = (slot: number) => slot > wipedAt - 4000 && slot < wipedAt + backAfter;
    for (const { data } of skipped) {
      expect({ slot: data.slot, reason: data.reason }).toEqual({
        slot: data.slot,
        reason: expect.stringMatching(/^(SLOT_MISSED|PREVIOUS_SAVEPOINT_PENDING)$/),
      });
    }
    const missedLate = skipped.filter((e) => e.data.reason === 'SLOT_MISSED' && !inOutage(e.data.slot!));
    expect(missedLate.length).toBeLessThanOrEqual(2);
    expect(skipped.filter((e) => e.data.reason === 'PREVIOUS_SAVEPOINT_PENDING').length).toBeLessThanOrEqual(
      2,
    );
    const handled = [...slots, ...skipped.map((e) => e.data.slot!)].sort((a, b) => a - b);
    // One per slot: consecutive slots, 2 s apart, about ten of them over 20 s, none missed.
    for (let i = 1; i < handled.length; i += 1) expect(handled[i]! - handled[i - 1]!).toBe(2000);
    expect(handled.length).toBeGreaterThanOrEqual(9);
    expect(slots.length).toBeGreaterThanOrEqual(7);
    expect(
      events.filter((e) => e.type === 'SnapshotTriggered' && e.data.triggerType === 'PERIODIC'),
    ).toHaveLength(slots.length);

    // The cleanups that were pending in the wiped Redis complete.
    const deadline = Date.now() + 10_000;
    let statuses: string[] = [];
    while (Date.now() < deadline) {
      statuses = await Promise.all(
        [1, 2].map(async (id) => (await api.get(`/jobs/${JOB}/snapshots/${id}`)).body.status),
      );
      if (statuses.every((s) => s === 'DISCARDED')) break;
      await sleep(200);
    }
    expect(statuses).toEqual(['DISCARDED', 'DISCARDED']);
    expect((await api.get(`/jobs/${JOB}/snapshots/1`)).body.discard.bytesReclaimed).toBe(1000);
  }, 60_000);

  it('R50, R53 a PT1S schedule with maxCount 3, each savepoint acknowledged as it appears: never more than 4 completed periodic savepoints in 10 s of samples every 200 ms', async () => {
    const api = client(services[0]!.url);
    expect((await api.put(`/jobs/${RETAINED_JOB}`, { tasks: ['a'] })).status).toBe(201);
    const scheduled = await api.put(`/jobs/${RETAINED_JOB}/savepoint-schedule`, {
      every: 'PT1S',
      retention: { maxCount: 3 },
    });
    expect(scheduled.status).toBe(200);
    const counts: number[] = [];
    const acked = new Set<number>();
    const started = Date.now();
    while (Date.now() - started < 10_000) {
      const snaps = (await api.get(`/jobs/${RETAINED_JOB}`)).body.snapshots as Snap[];
      const periodic = snaps.filter((s) => s.triggerType === 'PERIODIC');
      counts.push(periodic.filter((s) => s.status === 'COMPLETED').length);
      // Flink's part: every task acknowledges each triggered savepoint.
      for (const s of periodic.filter((p) => p.status === 'PENDING' && !acked.has(p.snapshotId))) {
        const ack = await api.post(`/jobs/${RETAINED_JOB}/snapshots/${s.snapshotId}/acks`, {
          taskId: 'a',
          stateSize: 100,
        });
        expect(ack.status).toBe(200);
        acked.add(s.snapshotId);
      }
      await sleep(Math.max(0, started + counts.length * 200 - Date.now()));
    }
    await api.delete(`/jobs/${RETAINED_JOB}/savepoint-schedule`);

    expect(counts.length).toBeGreaterThanOrEqual(40);
    expect(Math.max(...counts)).toBeLessThanOrEqual(4);
    expect(Math.max(...counts)).toBeGreaterThanOrEqual(3); // the schedule did fill its retention
    // Retention ran as savepoints completed: the older ones were discarded with cause RETENTION.
    const snaps = (await api.get(`/jobs/${RETAINED_JOB}`)).body.snapshots as (Snap & {
      discard?: { cause: string };
    })[];
    const periodic = snaps.filter((s) => s.triggerType === 'PERIODIC');
    expect(acked.size).toBeGreaterThanOrEqual(7);
    const retained = periodic.filter((s) => s.status === 'COMPLETED').map((s) => s.snapshotId);
    expect(retained.length).toBeLessThanOrEqual(3);
    const newest = Math.max(...periodic.filter((s) => s.status !== 'FAILED').map((s) => s.snapshotId));
    if (!periodic.some((s) => s.snapshotId === newest && s.status === 'PENDING')) {
      expect(retained).toContain(newest);
    }
    const removed = periodic.filter((s) => s.status === 'DISCARDING' || s.status === 'DISCARDED');
    expect(removed.length).toBeGreaterThanOrEqual(acked.size - 4);
    for (const s of removed) expect(s.discard?.cause).toBe('RETENTION');
  }, 30_000);

  it('a cron schedule with seconds fires on its seconds', async () => {
    const api = client(services[0]!.url);
    // Unacknowledged, each expires before the next slot, which a pending one would skip (R50).
    await api.put(`/jobs/${CRON_JOB}`, { tasks: ['a'], checkpointing: { timeoutMs: 1000 } });
    const res = await api.put(`/jobs/${CRON_JOB}/savepoint-schedule`, {
      cron: '*/3 * * * * *',
      tz: 'Europe/Berlin',
    });
    expect(res.status).toBe(200);
    await sleep(7500);
    await api.delete(`/jobs/${CRON_JOB}/savepoint-schedule`);
    const snaps = (await api.get(`/jobs/${CRON_JOB}`)).body.snapshots as Snap[];
    const slotOf = await slotsOf(api, CRON_JOB);
    const slots = snaps.map((s) => slotOf.get(s.snapshotId)!);
    expect(slots.length).toBeGreaterThanOrEqual(2);
    for (const slot of slots) expect(new Date(slot).getUTCSeconds() % 3).toBe(0);
    for (const s of snaps) {
      const slot = slotOf.get(s.snapshotId)!;
      expect(s.triggerId).toBe(
        periodicTriggerId(CRON_JOB, { cron: '*/3 * * * * *', tz: 'Europe/Berlin' }, slot),
      );
      expect(Date.parse(s.triggeredAt) - slot).toBeLessThan(1000);
    }
  }, 30_000);
});
