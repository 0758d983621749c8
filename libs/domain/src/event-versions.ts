import type { z } from 'zod';
import { EVENT_TYPES, Event } from './events';

/**
 * Event schema versions and upcasting (decision 0023). Every appended event's metadata carries its type's
 * schema version; a stored event is read by upcasting it to the current version, one step at a time, then
 * validating it. An event without a version was written before versions existed: it is version 1.
 */

/** The metadata key of an event's schema version (beside EventStoreDB's `$correlationId` and the actor). */
export const SCHEMA_VERSION_KEY = 'schemaVersion';

/** What reading an event needs of a recorded one: the store's RecordedEvent has these fields. */
export interface StoredEvent {
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
}

/** One step of an event type's history: data of version N in, data of version N + 1 out. Pure. */
export type Upcaster = (data: Record<string, unknown>) => Record<string, unknown>;

/** Per event type, its steps in order: step i takes version i + 1 to version i + 2. */
export type UpcasterRegistry = Readonly<Record<string, readonly Upcaster[]>>;

/**
 * snapcat's event history (decision 0023). Most changes to an event's shape have added an optional field
 * whose absence keeps its old meaning: no step. A rename or a changed meaning adds a step here, and a golden
 * file `test/fixtures/events/<Type>.v<N>.json`.
 */
export const UPCASTERS: UpcasterRegistry = {
  SnapshotTriggered: [
    // v2 (decision 0037): `tasks` absent means the job's tasks. Every v1 event has them, so its data is
    // already a v2 event; the step is there so that a snapcat that reads only v1 refuses a v2 event
    // (UnreadableEventError) rather than failing on the missing field, or guessing.
    (data) => data,
  ],
  SnapshotDiscarded: [
    // v2: `bytesReclaimed` may be null, not known (a disposal through Flink of a savepoint whose size the
    // catalogue does not know; it said 0). Every v1 event has a number, so its data is already a v2 event; the
    // step makes a snapcat that reads only v1 refuse a v2 event rather than fail on the null.
    (data) => data,
  ],
};

/** An event that cannot be read: written by a newer snapcat, or not of the shape its version says. */
export class UnreadableEventError extends Error {
  constructor(
    readonly eventType: string,
    readonly schemaVersion: unknown,
    reason: string,
  ) {
    super(`event ${eventType} (schema version ${String(schemaVersion)}): ${reason}`);
    this.name = 'UnreadableEventError';
  }

  /** What an answer names of it: its type and version (1 for an event written before versions). */
  get named(): { eventType: string; schemaVersion: unknown } {
    return { eventType: this.eventType, schemaVersion: this.schemaVersion ?? 1 };
  }

  /** Whether a newer snapcat wrote it (an upgrade reads it), rather than it not fitting its version's shape. */
  get writtenByNewer(): boolean {
    return isNewerThanRead(this.eventType, this.schemaVersion);
  }
}

/** The version written today for events of this type: one more than its upcasting steps. */
export const currentSchemaVersion = (type: string, registry: UpcasterRegistry = UPCASTERS): number =>
  (registry[type]?.length ?? 0) + 1;

/** Whether `version` is a schema version of `type` newer than this snapcat reads (a newer one wrote it). */
const isNewerThanRead = (type: string, version: unknown, registry: UpcasterRegistry = UPCASTERS): boolean =>
  typeof version === 'number' && version > currentSchemaVersion(type, registry);

/** The version a stored event was written at: its metadata's, 1 when it has none (written before versions). */
export function schemaVersionOf(type: string, metadata: Record<string, unknown>): number {
  const version = metadata[SCHEMA_VERSION_KEY];
  if (version === undefined) return 1;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new UnreadableEventError(type, version, 'its schema version is not a positive integer');
  }
  return version;
}

/**
 * The schema version of a stored event when it is newer than this snapcat reads (a newer snapcat wrote it,
 * and this process is out of date: it can never read the event, an upgrade can); undefined otherwise.
 */
export function newerSchemaVersion(
  stored: Pick<StoredEvent, 'type' | 'metadata'>,
  registry: UpcasterRegistry = UPCASTERS,
): number | undefined {
  const version = stored.metadata[SCHEMA_VERSION_KEY];
  return isNewerThanRead(stored.type, version, registry) ? (version as number) : undefined;
}

/** The event's data brought from `version` to its type's current version, one step after the other. */
export function upcast(
  type: string,
  version: number,
  data: unknown,
  registry: UpcasterRegistry = UPCASTERS,
): unknown {
  const steps = registry[type] ?? [];
  if (isNewerThanRead(type, version, registry)) {
    throw new UnreadableEventError(type, version, `this snapcat reads up to version ${steps.length + 1}`);
  }
  let upcasted = data;
  for (let step = version - 1; step < steps.length; step++) {
    upcasted = steps[step]!(upcasted as Record<string, unknown>);
  }
  return upcasted;
}

/** A stored event's data at its type's current version (not validated: see readEvent). */
export const upcastStored = (stored: StoredEvent, registry: UpcasterRegistry = UPCASTERS): unknown =>
  upcast(stored.type, schemaVersionOf(stored.type, stored.metadata), stored.data, registry);

/** A stored event upcast, then validated against the current schema of its kind. */
export function readEvent<T>(
  schema: z.ZodType<T>,
  stored: StoredEvent,
  registry: UpcasterRegistry = UPCASTERS,
): T {
  const version = schemaVersionOf(stored.type, stored.metadata);
  const parsed = schema.safeParse(upcastStored(stored, registry));
  if (parsed.success) {
    const { type } = parsed.data as { type?: unknown };
    if (type === stored.type) return parsed.data;
    throw new UnreadableEventError(stored.type, version, `its data is of type ${String(type)}`);
  }
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String).join('.');
  throw new UnreadableEventError(stored.type, version, `${path || 'data'}: ${issue.message}`);
}

const DOMAIN_EVENT_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);

/**
 * A job event read from the store. On the replay path: an event at its type's current version was
 * validated when decided, so it gets a structural check only (measured: 0.05 µs an event; a full parse
 * costs 5 µs, a quarter of what replaying an event costs in bench #7, decision 0023); an older one, or
 * one that fails the check, is upcast and parsed in full.
 */
export function readDomainEvent(stored: StoredEvent): Event {
  const { type, data } = stored;
  if (
    DOMAIN_EVENT_TYPES.has(type) &&
    schemaVersionOf(type, stored.metadata) === currentSchemaVersion(type) &&
    isEventShaped(data, type)
  ) {
    return data as Event;
  }
  return readEvent(Event, stored);
}

/** The fields every job event has, of the type it is stored under. */
function isEventShaped(data: unknown, type: string): boolean {
  if (typeof data !== 'object' || data === null) return false;
  const event = data as { type?: unknown; jobId?: unknown; occurredAt?: unknown };
  return event.type === type && typeof event.jobId === 'string' && typeof event.occurredAt === 'string';
}

/**
 * An appended event's metadata: the writer's (correlation, actor) and the type's current schema version.
 * Memoised per metadata object, so that the events of one command still share one metadata object.
 */
export function versionedMetadata(
  type: string,
  metadata: Record<string, unknown> = NO_METADATA,
): Record<string, unknown> {
  const version = currentSchemaVersion(type);
  let byVersion = VERSIONED.get(metadata);
  if (!byVersion) VERSIONED.set(metadata, (byVersion = []));
  return (byVersion[version] ??= { ...metadata, [SCHEMA_VERSION_KEY]: version });
}

const NO_METADATA: Record<string, unknown> = {};
const VERSIONED = new WeakMap<Record<string, unknown>, Record<string, unknown>[]>();
