import { currentSchemaVersion } from '@snapcat/domain';
import type { ServerResponse } from 'node:http';
import { StoreAccessDeniedError, type EventStore, type NewerEvent } from '@snapcat/event-store';
import { sendProblem } from './http-json';
import type { RedisState } from './redis';

/** What every snapcat process's /readyz looks at (an API process adds its read model's lag and Flink's clusters). */
export interface ReadinessDeps {
  store: EventStore;
  /**
   * A refusal of snapcat's credentials by the event store that still holds (InstrumentedEventStore's
   * `accessDenied`): not ready, naming the permission, while there is one.
   */
  storeAccessDenied?: () => StoreAccessDeniedError | undefined;
  /**
   * The first event this process read that a newer snapcat wrote (InstrumentedEventStore's `newerEvent`):
   * not ready from then on, as the process can no longer follow the log (decision 0037).
   */
  storeOutdated?: () => NewerEvent | undefined;
  /** Whether Redis (read model, queues, leases) answers; absent: the process uses none. */
  redisState?: () => RedisState;
  /** What of the process waits while Redis is down, and what goes on (said when it is). */
  waitingForRedis: string;
  /** What the process is still starting, if it is (not ready until it has started). */
  starting?: () => string | undefined;
  log: (msg: string, fields?: object) => void;
}

export type Readiness =
  | { ready: true; redis: 'connected' | 'not used' }
  /** `detail` says why; `extra` names it for machines (problem extension members). */
  | { ready: false; detail: string; extra: Record<string, unknown> };

/**
 * Whether the process can do its work: the event store answers with snapcat's credentials, holds nothing a
 * newer snapcat wrote, and Redis is connected. The outdated store is logged once, with its stream, which the
 * answer leaves out (/readyz is public).
 */
export function readinessCheck({
  store,
  storeAccessDenied,
  storeOutdated,
  redisState,
  waitingForRedis,
  starting,
  log,
}: ReadinessDeps): () => Promise<Readiness> {
  let outdatedSaid = false;
  // The store refusing snapcat's credentials is no outage: the answer names the permission and the user.
  const accessDenied = (error: StoreAccessDeniedError): Readiness => ({
    ready: false,
    detail: error.message,
    extra: { eventStore: error.reason, permission: error.permission, user: error.user ?? null },
  });
  return async () => {
    try {
      await store.lastPosition();
    } catch (error) {
      if (error instanceof StoreAccessDeniedError) return accessDenied(error);
      return { ready: false, detail: `event store unreachable: ${(error as Error).message}`, extra: {} };
    }
    const refused = storeAccessDenied?.();
    if (refused) return accessDenied(refused);
    const newer = storeOutdated?.();
    if (newer) {
      if (!outdatedSaid) {
        outdatedSaid = true;
        log('the event store holds an event a newer snapcat wrote: this process is out of date', {
          ...newer,
        });
      }
      return {
        ready: false,
        detail:
          `the event store holds events a newer snapcat wrote (${newer.type} of schema version ` +
          `${String(newer.schemaVersion)}; this snapcat reads up to version ${currentSchemaVersion(newer.type)}): ` +
          'upgrade this process',
        extra: { eventStore: 'newer-events', eventType: newer.type, schemaVersion: newer.schemaVersion },
      };
    }
    const redis = redisState?.();
    if (redis !== undefined && redis !== 'ready') return redisNotReady(redis, waitingForRedis);
    const unfinished = starting?.();
    if (unfinished) return { ready: false, detail: `starting: ${unfinished}`, extra: { starting: true } };
    return { ready: true, redis: redisState ? 'connected' : 'not used' };
  };
}

/** Not ready without Redis: the read model, the queues and the leases need it. */
export const redisNotReady = (
  redis: 'connecting' | 'unreachable',
  waiting: string,
): Readiness & { ready: false } => ({
  ready: false,
  detail: redis === 'connecting' ? `connecting to Redis: ${waiting}` : `Redis is unreachable: ${waiting}`,
  extra: { eventStore: 'reachable', redis },
});

/** /readyz's 503: the reason as a problem (`more` adds members, such as the process's role), asked again in 1 s. */
export function sendNotReady(
  res: ServerResponse,
  { detail, extra }: { detail: string; extra: Record<string, unknown> },
  more: Record<string, unknown> = {},
): void {
  res.setHeader('Retry-After', '1');
  sendProblem(res, {
    status: 503,
    slug: 'unavailable',
    title: 'Not ready',
    detail,
    extra: { ...more, ...extra },
  });
}
