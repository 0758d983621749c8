import type { Redis } from 'ioredis';
import type { SavepointSchedule } from '@snapcat/domain';

type ScriptedRedis = Redis & {
  snapcatSetSchedule(
    schedules: string,
    due: string,
    jobId: string,
    json: string,
    slot: number,
  ): Promise<number>;
  snapcatAdvanceSchedules(due: string, lease: number, ...jobsAndSlots: (string | number)[]): Promise<number>;
  snapcatClaimDueSchedules(
    due: string,
    schedules: string,
    now: number,
    lease: number,
    limit: number,
  ): Promise<string[]>;
};

/** A schedule that fell due and is now claimed by one worker until `lease` (epoch ms). */
export interface DueSchedule {
  jobId: string;
  schedule: SavepointSchedule;
  /** The score it had when claimed: its planned slot, or an earlier claim's lapsed lease. */
  dueAt: number;
  lease: number;
}

// Claims up to ARGV[3] members due at ARGV[1] by moving their score to the lease ARGV[2]: a worker that dies
// leaves them to be claimed again once the lease lapses; two workers never claim the same member at once.
const CLAIM = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #due, 2 do
  local def = redis.call('HGET', KEYS[2], due[i])
  if def then
    redis.call('ZADD', KEYS[1], ARGV[2], due[i])
    table.insert(out, due[i]); table.insert(out, due[i + 1]); table.insert(out, def)
  else
    redis.call('ZREM', KEYS[1], due[i])
  end
end
return out`;

// Sets a schedule and its next slot, unless the same schedule is set already: replaying the event that set
// it (after a crash before the position was saved) must not move a due slot past its firing.
const SET = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] and redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1`;

// Moves each member claimed until the lease ARGV[1] (ARGV[2], ARGV[4], ...) to its next slot (ARGV[3], ARGV[5],
// ...), unless its schedule was set again or removed meanwhile; returns how many moved.
const ADVANCE = `
local advanced = 0
for i = 2, #ARGV, 2 do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
    advanced = advanced + 1
  end
end
return advanced`;

/**
 * Every job's savepoint schedule and its next slot, in Redis (derived state: the process manager writes it
 * from the log and rebuilds it after a wipe). One BullMQ job scheduler ticks once a second and fires every
 * schedule due in that second as one batch, so 10,000 jobs scheduled on the same minute cost one claim per
 * thousand of them, not one BullMQ job each.
 */
export class ScheduleIndex {
  readonly dueKey: string;
  readonly schedulesKey: string;
  private readonly redis: ScriptedRedis;

  constructor(redis: Redis, prefix: string) {
    this.dueKey = `${prefix}:savepoint-schedules:due`;
    this.schedulesKey = `${prefix}:savepoint-schedules`;
    // Sent once and then called by hash (EVALSHA), as ioredis does for defined commands.
    redis.defineCommand('snapcatClaimDueSchedules', { numberOfKeys: 2, lua: CLAIM });
    redis.defineCommand('snapcatAdvanceSchedules', { numberOfKeys: 1, lua: ADVANCE });
    redis.defineCommand('snapcatSetSchedule', { numberOfKeys: 2, lua: SET });
    this.redis = redis as ScriptedRedis;
  }

  /**
   * Sets the job's schedule and the slot it fires at next (a past slot fires on the next tick); when the
   * same schedule is set already, it keeps its slot. Returns whether anything changed.
   */
  async set(jobId: string, schedule: SavepointSchedule, nextSlot: number): Promise<boolean> {
    const changed = await this.redis.snapcatSetSchedule(
      this.schedulesKey,
      this.dueKey,
      jobId,
      JSON.stringify(schedule),
      nextSlot,
    );
    return changed === 1;
  }

  async remove(jobId: string): Promise<void> {
    await this.redis.multi().zrem(this.dueKey, jobId).hdel(this.schedulesKey, jobId).exec();
  }

  /** The earliest slot any schedule waits for, or null without schedules. */
  async earliest(): Promise<number | null> {
    const [, score] = await this.redis.zrange(this.dueKey, 0, 0, 'WITHSCORES');
    return score === undefined ? null : Number(score);
  }

  async claimDue(now: number, leaseMs: number, limit: number): Promise<DueSchedule[]> {
    const lease = now + leaseMs;
    const flat = await this.redis.snapcatClaimDueSchedules(this.dueKey, this.schedulesKey, now, lease, limit);
    const claimed: DueSchedule[] = [];
    for (let i = 0; i < flat.length; i += 3) {
      claimed.push({
        jobId: flat[i]!,
        dueAt: Number(flat[i + 1]),
        schedule: JSON.parse(flat[i + 2]!) as SavepointSchedule,
        lease,
      });
    }
    return claimed;
  }

  /**
   * Releases the claims to their next slots, one script call for the claims of one lease (a batch's: a call per
   * claim was 5 % of the main thread while 10,000 periodic savepoints fired); returns how many were still claimed.
   */
  async advance(fired: { due: DueSchedule; nextSlot: number }[]): Promise<number> {
    const byLease = new Map<number, (string | number)[]>();
    for (const { due, nextSlot } of fired) {
      const args = byLease.get(due.lease);
      if (args) args.push(due.jobId, nextSlot);
      else byLease.set(due.lease, [due.jobId, nextSlot]);
    }
    let advanced = 0;
    for (const [lease, args] of byLease) {
      advanced += await this.redis.snapcatAdvanceSchedules(this.dueKey, lease, ...args);
    }
    return advanced;
  }
}
