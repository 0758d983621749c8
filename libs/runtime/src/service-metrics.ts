import type { Registry } from 'prom-client';
import type { CommandBus } from '@snapcat/application';
import type { EventStore, EventStoreCounters, Position } from '@snapcat/event-store';
import { countersOnScrape, gaugeOnScrape, positionValue } from './metrics';
import type { RedisState } from './redis';

/*
 * The families every snapcat process reports on /metrics beside Node's own: the command bus's and the event
 * store's counters, and what is read on scrape (queue depths, the consumers, the log's head). An API process
 * serves them on its port, a workers or projector process on SNAPCAT_OPS_PORT (ops-server.ts).
 */

/** The command bus's and the event store's counters, under the names /metrics has always used. */
export function registerCommandMetrics(
  registry: Registry,
  bus: CommandBus,
  storeCounters?: EventStoreCounters,
): void {
  countersOnScrape(registry, 'snapcat_command_bus_', () => bus.stats, commandBusHelp);
  if (storeCounters) {
    countersOnScrape(registry, 'snapcat_event_store_', () => storeCounters, eventStoreHelp);
  }
}

const commandBusHelp = (key: string) =>
  ({
    commands: 'Commands the command bus executed.',
    appends: 'Appends the command bus made (a group commit is one).',
    eventsAppended: 'Events the command bus appended.',
    conflicts: 'Appends that met a concurrent writer and were decided again.',
    eventsRead: 'Events the command bus read to rebuild job states.',
    aggregateSnapshotsWritten: 'Aggregate snapshots (cached job states) written to the log.',
    aggregateSnapshotsLoaded: 'Aggregate snapshots loaded instead of folding from the first event.',
    aggregateSnapshotsChunked:
      'Aggregate snapshots over the event store’s append limit, written in several parts.',
    aggregateSnapshotsSkipped:
      'Aggregate snapshots not written: too large even in parts (the job loads from its events, slower).',
    aggregateSnapshotsFailed: 'Aggregate snapshots the event store refused or failed to write.',
    appendsSplit: 'Group commits split because their events were more than the event store takes at once.',
  })[key] ?? `The command bus's ${key} counter.`;

const eventStoreHelp = (key: string) =>
  ({
    appends: 'Appends asked of the event store.',
    eventsAppended: 'Events appended to the event store.',
    appendFailures: 'Appends the event store refused or failed.',
    streamReads: 'Stream reads asked of the event store.',
    eventsRead: 'Events read from the event store streams.',
    accessDenied:
      "Operations the event store refused for snapcat's credentials (a missing permission, or a refused login).",
  })[key] ?? `The event store's ${key} counter.`;

/** What /metrics needs to report a BullMQ queue: its name and its counts. */
export interface CountedQueue {
  name: string;
  getJobCounts(...types: QueueState[]): Promise<Record<string, number>>;
}
const QUEUE_STATES = [
  'waiting',
  'prioritized',
  'delayed',
  'active',
  'waiting-children',
  'failed',
  'completed',
] as const;
type QueueState = (typeof QUEUE_STATES)[number];

/** A leased log consumer of this process, or the read model's projector. */
export interface ConsumerState {
  consumer: 'projector' | 'process_manager' | 'webhook_dispatcher';
  /** Whether this process holds its lease. */
  active: boolean;
  /** Its position in the log, if known. */
  position: Position | null | undefined;
  /** Whether it stands by because the event store refused snapcat's credentials (see /readyz). */
  blocked?: boolean;
}

/** What /metrics reads of a leased log consumer (the process manager, the webhook dispatcher). */
interface LeasedConsumer {
  active: boolean;
  savedPosition: ConsumerState['position'];
  blocked?: unknown;
}

/** A leased consumer's state as /metrics reports it: its position only while this process holds the lease. */
export const leasedConsumerState = (
  consumer: ConsumerState['consumer'],
  state: LeasedConsumer,
): ConsumerState => ({
  consumer,
  active: state.active,
  position: state.active ? state.savedPosition : undefined,
  blocked: state.blocked !== undefined,
});

/** What /metrics reads of the read model's projector. */
interface ProjectorConsumer {
  active: boolean;
  position: Position | undefined;
  blocked?: unknown;
}

/**
 * The projector as /metrics reports it: this process's position while its projector holds the lease, else
 * the read model's (the active projector's, from Redis). A standby reports where the read model is, not
 * where it stood when it last held the lease, so every process reports the same position.
 */
export async function projectorConsumerState(
  projector: ProjectorConsumer | undefined,
  readModelPosition: () => Promise<Position | null>,
): Promise<ConsumerState> {
  return {
    consumer: 'projector',
    active: projector?.active ?? false,
    position: projector?.active ? projector.position : await readModelPosition(),
    blocked: projector?.blocked !== undefined,
  };
}

/** The workers' part of a process's /metrics: their queues and webhook deliveries', and their two consumers. */
export function workerMetricSources(
  queues: Record<string, CountedQueue>,
  parts: {
    processManager?: LeasedConsumer;
    webhooks?: { deliveries: { queue: CountedQueue }; dispatcher?: LeasedConsumer };
  },
) {
  const { processManager, webhooks } = parts;
  return {
    queues: (): CountedQueue[] => [
      ...Object.values(queues),
      ...(webhooks ? [webhooks.deliveries.queue] : []),
    ],
    consumers: (): ConsumerState[] => [
      ...(processManager ? [leasedConsumerState('process_manager', processManager)] : []),
      ...(webhooks?.dispatcher ? [leasedConsumerState('webhook_dispatcher', webhooks.dispatcher)] : []),
    ],
  };
}

export interface ServiceMetricsDeps {
  /** The BullMQ queues to count (workers' and webhook deliveries'), read on scrape. */
  queues?: () => CountedQueue[];
  /** The read model's append-to-visible lag in ms (the /readyz figure). */
  projectionLag?: () => Promise<unknown>;
  /** The log consumers and their positions. */
  consumers?: () => ConsumerState[] | Promise<ConsumerState[]>;
  /** Whether Redis answers: until it does, the families read from it are left empty at once. */
  redisState?: () => RedisState;
  /** The log, for its head position. */
  store?: EventStore;
  /** How long a scrape waits for Redis or the store before leaving a family empty. */
  timeoutMs?: number;
}

/**
 * The families read from Redis or the store on scrape (within `timeoutMs`, so an outage never hangs
 * /metrics): queue depths, the projection lag, the consumers' positions and the log's head.
 */
export function registerServiceMetrics(registry: Registry, deps: ServiceMetricsDeps): void {
  const timeoutMs = deps.timeoutMs ?? 1000;
  const needRedis = () => {
    const redis = deps.redisState?.();
    if (redis !== undefined && redis !== 'ready') throw new Error(`redis ${redis}`);
  };
  const family = { registry, timeoutMs, needRedis };
  if (deps.queues) registerQueueDepth(family, deps.queues);
  if (deps.projectionLag) registerProjectionLag(family, deps.projectionLag);
  if (deps.consumers) registerConsumers(family, deps.consumers);
  if (deps.store) registerHeadPosition(family, deps.store);
}

/** What each family registered on scrape shares: the registry, its time limit, the Redis precondition. */
interface ScrapedFamily {
  registry: Registry;
  timeoutMs: number;
  /** Throws while Redis is unreachable, so that a family read from it is left empty at once. */
  needRedis: () => void;
}

function registerQueueDepth({ registry, timeoutMs, needRedis }: ScrapedFamily, queues: () => CountedQueue[]) {
  gaugeOnScrape(registry, {
    name: 'snapcat_queue_depth',
    help: 'Jobs in each BullMQ queue, by state (read from Redis on scrape).',
    labelNames: ['queue', 'state'],
    timeoutMs,
    read: async () => {
      needRedis();
      const all = queues();
      const counts = await Promise.all(all.map((q) => q.getJobCounts(...QUEUE_STATES)));
      return all.flatMap((q, i) =>
        QUEUE_STATES.map((state) => ({ labels: { queue: q.name, state }, value: counts[i]![state] ?? 0 })),
      );
    },
  });
}

function registerProjectionLag(
  { registry, timeoutMs, needRedis }: ScrapedFamily,
  lag: () => Promise<unknown>,
) {
  const read = perScrape(async () => asLag(await lag()));
  const seconds = (value: unknown) => (typeof value === 'number' ? [{ value: value / 1000 }] : []);
  gaugeOnScrape(registry, {
    name: 'snapcat_projection_lag_seconds',
    help: 'Append-to-visible lag of the read model: the last event the projector applied.',
    timeoutMs,
    read: async () => (needRedis(), seconds((await read())?.last)),
  });
  gaugeOnScrape(registry, {
    name: 'snapcat_projection_lag_p99_seconds',
    help: 'Append-to-visible lag of the read model: 99th percentile of the last 1,000 events applied.',
    timeoutMs,
    read: async () => (needRedis(), seconds((await read())?.p99)),
  });
}

function registerConsumers(
  { registry, timeoutMs }: ScrapedFamily,
  read: NonNullable<ServiceMetricsDeps['consumers']>,
) {
  const consumers = perScrape(async () => read());
  gaugeOnScrape(registry, {
    name: 'snapcat_consumer_position',
    help: 'Commit position in the log up to which each consumer has handled events.',
    labelNames: ['consumer'],
    timeoutMs,
    read: async () =>
      (await consumers()).flatMap(({ consumer, position }) =>
        position ? [{ labels: { consumer }, value: positionValue(position) }] : [],
      ),
  });
  gaugeOnScrape(registry, {
    name: 'snapcat_consumer_active',
    help: 'Whether this process holds the consumer lease (1) or stands by (0).',
    labelNames: ['consumer'],
    timeoutMs,
    read: async () =>
      (await consumers()).map(({ consumer, active }) => ({ labels: { consumer }, value: active ? 1 : 0 })),
  });
  gaugeOnScrape(registry, {
    name: 'snapcat_consumer_blocked',
    help: "Whether the consumer stands by (1) because the event store refused snapcat's credentials (reading $all needs the $admins role).",
    labelNames: ['consumer'],
    timeoutMs,
    read: async () =>
      (await consumers()).map(({ consumer, blocked }) => ({
        labels: { consumer },
        value: blocked ? 1 : 0,
      })),
  });
}

function registerHeadPosition({ registry, timeoutMs }: ScrapedFamily, store: EventStore) {
  gaugeOnScrape(registry, {
    name: 'snapcat_event_store_head_position',
    help: 'Commit position of the last event in the log: a consumer is behind by the difference.',
    timeoutMs,
    read: async () => {
      const last = await store.lastPosition();
      return last ? [{ value: positionValue(last) }] : [];
    },
  });
}

/** One read shared by the families of a scrape (the registry collects them all at once). */
function perScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  return () =>
    (current ??= Promise.resolve()
      .then(read)
      .finally(() => setImmediate(() => (current = undefined))));
}

function asLag(value: unknown): { last?: unknown; p99?: unknown } | null {
  return value && typeof value === 'object' ? (value as { last?: unknown; p99?: unknown }) : null;
}
