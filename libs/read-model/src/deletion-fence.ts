import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DeletionFence, FenceHeld } from '@snapcat/application';
import { placesAround } from '@snapcat/domain';
import { membersBelow, membersOf } from './keys';

/**
 * Decision 0047, on Redis: two sorted sets under the store's namespace (one hash slot with the rest of it), of
 * members `<location>\0<jobId>\0<holder>` scored by when they lapse. Each side's write and its read of the
 * other's set are one MULTI, so Redis orders the two steps of a deletion and an acknowledgement: the second
 * sees the first. A holder renews its members while it holds them; a process that dies leaves them to lapse
 * (FENCE_TTL_MS), at worst refusing acknowledgements of those files, or keeping a file, for that long.
 */
export class RedisDeletionFence implements DeletionFence {
  private readonly marks: string;
  private readonly reservations: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly ttlMs = FENCE_TTL_MS,
  ) {
    this.marks = `${prefix}:fence:deleting`;
    this.reservations = `${prefix}:fence:acknowledging`;
  }

  deleting(jobId: string, files: readonly string[], directories: readonly string[]): Promise<FenceHeld> {
    // A reservation of a place marked, or of a file below it: that file is kept. A mark covers what lies below
    // it, as the acknowledgements read it, whether the deletion took the place for a file or a directory.
    const places = [...files, ...directories];
    const asked = places.flatMap((place) => [membersOf(place), membersBelow(place)]);
    return this.hold(
      jobId,
      places,
      this.marks,
      this.reservations,
      asked.map((range) => [undefined, range] as const),
    );
  }

  acknowledging(jobId: string, files: readonly string[]): Promise<FenceHeld> {
    // A mark of the file itself, or of a directory it lies in.
    const asked = files.flatMap((file) =>
      [...placesAround(file)].map((place) => [file, membersOf(place)] as const),
    );
    return this.hold(jobId, files, this.reservations, this.marks, asked);
  }

  /**
   * Adds `places` to `own`, and reads `other`'s members in each range of `asked`, in one transaction; the
   * conflicts are the other jobs' members found, by the location asked for (or, undefined, by the member's).
   */
  private async hold(
    jobId: string,
    places: readonly string[],
    own: string,
    other: string,
    asked: readonly (readonly [string | undefined, readonly [string, string]])[],
  ): Promise<FenceHeld> {
    if (places.length === 0) return { conflicts: new Map(), release: async () => undefined };
    const holder = randomUUID();
    const members = [...new Set(places)].map((place) => `${place}\u0000${jobId}\u0000${holder}`);
    const scored = (lapse: number) => members.flatMap((member) => [lapse, member]);
    const now = Date.now();
    const step = this.redis.multi().zremrangebyscore(other, '-inf', now).zremrangebyscore(own, '-inf', now);
    step.zadd(own, ...scored(now + this.ttlMs));
    for (const [, [min, max]] of asked) step.zrangebylex(other, min, max);
    const replies = (await step.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed || replies.length === 0) throw failed?.[0] ?? new Error('the deletion fence was not written');
    const conflicts = new Map<string, string>();
    for (const [i, [location]] of asked.entries()) {
      for (const member of replies[i + 3]![1] as string[]) {
        const [place, holderJob] = member.split('\u0000') as [string, string];
        if (holderJob !== jobId) conflicts.set(location ?? place, place);
      }
    }
    // Renewed well before it lapses; GT: never moved back by a slow renewal.
    const renewal = setInterval(() => {
      this.redis.zadd(own, 'XX', 'GT', ...scored(Date.now() + this.ttlMs)).catch(() => undefined);
    }, this.ttlMs / 3);
    renewal.unref();
    let released: Promise<void> | undefined;
    const release = () =>
      (released ??= (async () => {
        clearInterval(renewal);
        // Unreachable Redis: the members lapse on their own.
        await this.redis.zrem(own, ...members).catch(() => undefined);
      })());
    return { conflicts, release };
  }
}

/** How long a mark or a reservation outlives the process that stopped renewing it. */
export const FENCE_TTL_MS = 60_000;
