import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DeletionFence, FenceHeld } from '@snapcat/application';
import { isWithin, placesAround } from '@snapcat/domain';
import { membersBelow, membersOf } from './keys';

/**
 * Decision 0047, on Redis. Each side (marks of deletions, reservations of recordings) is a pair of sorted sets
 * under the store's namespace (one hash slot with the rest of it) holding the same members,
 * `<place>\0<jobId>\0<holder>`: one scored 0 throughout, read by lexical ranges (ZRANGEBYLEX is defined only
 * over equal scores: a set scored by lapse answered ranges wrongly once two holders' lapses differed), the
 * other scored by when each lapses. One script writes a side and reads the other's, so Redis orders a deletion
 * and a recording: the second sees the first. Times are Redis's own (`TIME`), so no process's clock decides a
 * lapse. A holder renews its members while it holds them; one that dies leaves them to lapse (FENCE_TTL_MS).
 */
export class RedisDeletionFence implements DeletionFence {
  private readonly marks: FenceSide;
  private readonly reservations: FenceSide;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly ttlMs = FENCE_TTL_MS,
  ) {
    this.marks = { places: `${prefix}:fence:deleting`, lapses: `${prefix}:fence:deleting:lapses` };
    this.reservations = { places: `${prefix}:fence:recording`, lapses: `${prefix}:fence:recording:lapses` };
    if (!(FENCE_HOLD in redis)) {
      redis.defineCommand(FENCE_HOLD, { numberOfKeys: 4, lua: HOLD_SCRIPT });
      redis.defineCommand(FENCE_RENEW, { numberOfKeys: 2, lua: RENEW_SCRIPT });
    }
  }

  deleting(jobId: string, places: readonly string[]): Promise<FenceHeld> {
    return this.hold(jobId, places, this.marks, this.reservations);
  }

  recording(jobId: string, places: readonly string[]): Promise<FenceHeld> {
    return this.hold(jobId, places, this.reservations, this.marks);
  }

  /**
   * Adds `places` to `own`, and reads `other`'s members at each place, at every directory above it and below
   * it: each chunk of places in one script (the places of a chunk are written and read in one step, which is
   * what each place needs); the conflicts are the other jobs' places met.
   */
  private async hold(
    jobId: string,
    places: readonly string[],
    own: FenceSide,
    other: FenceSide,
  ): Promise<FenceHeld> {
    if (places.length === 0) return NOTHING_HELD;
    const holder = randomUUID();
    const memberOf = new Map(
      [...new Set(places)].map((place) => [place, `${place}\u0000${jobId}\u0000${holder}`]),
    );
    const conflicts = new Map<string, string[]>();
    const held = this.held(conflicts, own, memberOf);
    try {
      for (const chunk of chunksOf([...memberOf.keys()], PLACES_PER_SCRIPT)) {
        const around = new Set(chunk.flatMap((place) => [...placesAround(place)]));
        const ranges = [...[...around].map(membersOf), ...chunk.map(membersBelow)].flat();
        const members = chunk.map((place) => memberOf.get(place)!);
        const found = (await this.script(FENCE_HOLD)(
          ...[own.places, own.lapses, other.places, other.lapses],
          ...[this.ttlMs, members.length, ...members, ...ranges],
        )) as string[];
        for (const place of metBy(jobId, found)) {
          for (const asked of chunk) {
            if (isWithin(asked, place) || isWithin(place, asked))
              conflicts.set(asked, [...(conflicts.get(asked) ?? []), place]);
          }
        }
      }
    } catch (error) {
      await held.release();
      throw error;
    }
    return held;
  }

  /** The handle on members held: renewed meanwhile (never brought back once lost), released, or abandoned. */
  private held(conflicts: Map<string, string[]>, own: FenceSide, memberOf: Map<string, string>): FenceHeld {
    const renew = async () => {
      let held = 0;
      for (const members of chunksOf([...memberOf.values()], PLACES_PER_SCRIPT)) {
        held += (await this.script(FENCE_RENEW)(own.places, own.lapses, this.ttlMs, ...members)) as number;
      }
      return held;
    };
    const renewal = setInterval(() => void renew().catch(() => undefined), this.ttlMs / 3);
    renewal.unref();
    const letGo = async (places: readonly string[]) => {
      const members = places.flatMap((place) => memberOf.get(place) ?? []);
      for (const place of places) memberOf.delete(place);
      if (memberOf.size === 0) clearInterval(renewal);
      // Unreachable Redis: the members lapse on their own.
      for (const chunk of chunksOf(members, PLACES_PER_SCRIPT)) {
        await this.redis
          .multi()
          .zrem(own.places, ...chunk)
          .zrem(own.lapses, ...chunk)
          .exec()
          .catch(() => undefined);
      }
    };
    return {
      conflicts,
      stillHeld: async () => memberOf.size === 0 || (await renew()) === memberOf.size,
      release: (places) => letGo(places ?? [...memberOf.keys()]),
      abandon: () => {
        clearInterval(renewal);
        memberOf.clear();
      },
    };
  }

  private script(name: string): (...args: (string | number)[]) => Promise<unknown> {
    return (this.redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[
      name
    ]!.bind(this.redis);
  }
}

/** A side of the fence: its members by place (all scored 0), and the same members by when they lapse. */
interface FenceSide {
  places: string;
  lapses: string;
}

const NOTHING_HELD: FenceHeld = {
  conflicts: new Map(),
  stillHeld: async () => true,
  release: async () => undefined,
  abandon: () => undefined,
};

/** The other jobs' places among members found (`<place>\0<jobId>\0<holder>`). */
function metBy(jobId: string, found: readonly string[]): Set<string> {
  const met = new Set<string>();
  for (const member of found) {
    const [place, holderJob] = member.split('\u0000') as [string, string];
    if (holderJob !== jobId) met.add(place);
  }
  return met;
}

function* chunksOf<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** Places per script call: a call's arguments are spread onto the stack (30,000 places overflowed it). */
const PLACES_PER_SCRIPT = 1000;

/** How long a mark or a reservation outlives the process that stopped renewing it. */
export const FENCE_TTL_MS = 60_000;

const FENCE_HOLD = 'snapcatFenceHold';
const FENCE_RENEW = 'snapcatFenceRenew';

/** Redis's time in milliseconds, and the removal of a side's lapsed members from both of its sets. */
const LAPSES = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function sweep(places, lapses)
  local gone = redis.call('ZRANGEBYSCORE', lapses, '-inf', now)
  for i = 1, #gone, 1000 do
    redis.call('ZREM', places, unpack(gone, i, math.min(i + 999, #gone)))
    redis.call('ZREM', lapses, unpack(gone, i, math.min(i + 999, #gone)))
  end
end
`;

/**
 * KEYS: own places, own lapses, other places, other lapses. ARGV: lifetime (ms), the count of members, the
 * members, then pairs of lexical range bounds to read of the other side. Answers the other side's members
 * found in the ranges.
 */
const HOLD_SCRIPT = `${LAPSES}
sweep(KEYS[1], KEYS[2])
sweep(KEYS[3], KEYS[4])
local lapse = now + tonumber(ARGV[1])
local last = 2 + tonumber(ARGV[2])
for i = 3, last, 500 do
  local byPlace, byLapse = {}, {}
  for j = i, math.min(i + 499, last) do
    byPlace[#byPlace + 1] = 0
    byPlace[#byPlace + 1] = ARGV[j]
    byLapse[#byLapse + 1] = lapse
    byLapse[#byLapse + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], unpack(byPlace))
  redis.call('ZADD', KEYS[2], unpack(byLapse))
end
local found = {}
for i = last + 1, #ARGV, 2 do
  for _, member in ipairs(redis.call('ZRANGEBYLEX', KEYS[3], ARGV[i], ARGV[i + 1])) do
    found[#found + 1] = member
  end
end
return found
`;

/**
 * KEYS: own places, own lapses. ARGV: lifetime (ms), the members. Pushes the lapse of each member still held
 * further (never back), and answers how many are still held: one lapsed or lost (a Redis that restarted
 * empty) is not brought back, since a recording may have passed while it was missing.
 */
const RENEW_SCRIPT = `${LAPSES}
sweep(KEYS[1], KEYS[2])
local lapse = now + tonumber(ARGV[1])
local held = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    held = held + 1
    redis.call('ZADD', KEYS[2], 'GT', lapse, ARGV[i])
  end
end
return held
`;
