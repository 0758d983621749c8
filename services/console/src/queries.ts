// The GraphQL documents the console sends (schema/catalog.graphql), and the shapes of their answers.
// Page sizes go in as variables; the server prices them as it prices literals (page-budget.ts).
import { formatBytes } from './format';

// The enums' values from the domain itself (a zod-free module of it), so that a filter never misses one.
import { JOB_STATUSES, SNAPSHOT_KINDS, SNAPSHOT_STATUSES } from '@snapcat/domain/src/enum-values';
export { JOB_STATUSES, SNAPSHOT_KINDS, SNAPSHOT_STATUSES };

export type JobStatus = (typeof JOB_STATUSES)[number];
export type SnapshotKind = (typeof SNAPSHOT_KINDS)[number];
export type SnapshotStatus = (typeof SNAPSHOT_STATUSES)[number];

export interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}
export interface Connection<T> {
  edges: { node: T }[];
  pageInfo: PageInfo;
}

export interface Viewer {
  name: string;
  scopes: string[];
  namespaces: string[] | null;
  authenticationEnabled: boolean;
}

export const VIEWER = `query Viewer { viewer { name scopes namespaces authenticationEnabled } }`;

export interface ScheduleSummary {
  every: string | null;
  cron: string | null;
  tz: string | null;
  nextFireAt: string | null; // null: it never fires
}
export interface Schedule extends ScheduleSummary {
  targetDirectory: string | null;
  retention: { maxCount: number | null; maxAge: string | null } | null;
  lastSlotAt: string | null;
}

export interface JobRow {
  id: string;
  name: string;
  namespace: string;
  status: JobStatus;
  registeredAt: string | null;
  counts: { total: number; completed: number; failed: number; inProgress: number };
  referencedStateSize: number | null;
  latestCompletedCheckpoint: { id: number; completedAt: string | null } | null;
  schedule: ScheduleSummary | null;
}

export const JOBS = `query Jobs($first: Int!, $after: String) {
  jobs(first: $first, after: $after) {
    edges { node {
      id name namespace status registeredAt
      counts { total completed failed inProgress }
      referencedStateSize
      latestCompletedCheckpoint { id completedAt }
      schedule { every cron tz nextFireAt }
    } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export interface JobDetail {
  id: string;
  name: string;
  namespace: string;
  status: JobStatus;
  tasks: string[];
  registeredAt: string | null;
  updatedAt: string | null;
  consecutiveFailures: number;
  referencedStateSize: number | null;
  referencedFiles: number | null;
  checkpointing: {
    numRetained: number;
    timeoutMs: number;
    maxConcurrent: number;
    minPauseMs: number;
    tolerableFailures: number;
    retention: string;
  };
  storage: { checkpointDir: string; savepointDir: string };
  counts: { total: number; completed: number; failed: number; inProgress: number; discarded: number };
  latestCompletedCheckpoint: { id: number; completedAt: string | null; stateSize: number } | null;
  latestSavepoint: { id: number; status: SnapshotStatus; completedAt: string | null } | null;
  latestRestore: {
    claimMode: string;
    restorePath: string;
    restoredAt: string;
    snapshot: { id: number } | null;
  } | null;
  schedule: Schedule | null;
  /** A managed job's Flink cluster (R67). */
  source: { type: string; cluster: string } | null;
  /** What an operator should know about the job's configuration (R67). */
  warnings: string[];
}

/** A restore plan (R64) as the job page shows it. */
export interface RestorePlanView {
  ok: boolean;
  reason: string;
  claimMode: string | null;
  restorePath: string | null;
  versionWarning: string | null;
  snapshot: { id: number; kind: SnapshotKind; status: SnapshotStatus; completedAt: string | null } | null;
}

/** The job page's query: the job, and what a failover and the newest savepoint would restore from. */
export interface JobAnswer {
  job: JobDetail | null;
  failover: RestorePlanView | null;
  newestSavepoint: RestorePlanView | null;
}

const PLAN = 'ok reason claimMode restorePath versionWarning snapshot { id kind status completedAt }';

export const JOB = `query Job($id: ID!) {
  job(id: $id) {
    id name namespace status tasks registeredAt updatedAt consecutiveFailures referencedStateSize referencedFiles
    checkpointing { numRetained timeoutMs maxConcurrent minPauseMs tolerableFailures retention }
    storage { checkpointDir savepointDir }
    counts { total completed failed inProgress discarded }
    latestCompletedCheckpoint { id completedAt stateSize }
    latestSavepoint { id status completedAt }
    latestRestore { claimMode restorePath restoredAt snapshot { id } }
    source { type cluster }
    warnings
    schedule { every cron tz targetDirectory retention { maxCount maxAge } nextFireAt lastSlotAt }
  }
  failover: restorePlan(jobId: $id, strategy: FAILOVER) { ${PLAN} }
  newestSavepoint: restorePlan(jobId: $id, strategy: LATEST_SAVEPOINT) { ${PLAN} }
}`;

/** What the charts need of a checkpoint (series.ts). */
export const CHECKPOINTS = `query Checkpoints($jobId: ID!, $first: Int!, $after: String) {
  snapshots(jobId: $jobId, kinds: [CHECKPOINT], first: $first, after: $after) {
    edges { node { id status triggeredAt completedAt failedAt stateSize sharedStateSize checkpointedSize checkpointType } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export interface SnapshotRow {
  id: number;
  kind: SnapshotKind;
  status: SnapshotStatus;
  persisted: boolean;
  triggerType: string;
  formatType: string;
  /** FULL or INCREMENTAL (R58); null for a checkpoint recorded before snapcat kept it. */
  checkpointType: string | null;
  triggeredAt: string;
  completedAt: string | null;
  failedAt: string | null;
  stateSize: number;
  /** Bytes uploaded for this snapshot (Flink's checkpointed_size). */
  checkpointedSize: number;
  sharedStateSize: number | null;
  privateStateSize: number | null;
  externalPath: string;
  /** What to pass to `flink run -s`: a checkpoint's own chk-<id>, persisted or not; null unless COMPLETED. */
  restorePath: string | null;
  /** Where snapcat's manifest of a persisted checkpoint lies (not a path Flink restores from). */
  savepointPath: string | null;
  failureReason: string | null;
  discard: { cause: string; state: string; reason: string | null } | null;
}

const SNAPSHOT_ROW = `id kind status persisted triggerType formatType checkpointType triggeredAt completedAt failedAt
  stateSize checkpointedSize sharedStateSize privateStateSize externalPath restorePath savepointPath failureReason
  discard { cause state reason }`;

export const SNAPSHOTS = `query Snapshots(
  $jobId: ID!, $kinds: [SnapshotKind!], $statuses: [SnapshotStatus!], $persisted: Boolean, $first: Int!, $after: String
) {
  snapshots(jobId: $jobId, kinds: $kinds, statuses: $statuses, persisted: $persisted, first: $first, after: $after) {
    edges { node { ${SNAPSHOT_ROW} } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export interface StateHandle {
  taskId: string;
  path: string;
  sizeBytes: number;
  shared: boolean;
}

export interface SnapshotDetail extends SnapshotRow {
  jobId: string;
  triggerId: string;
  acknowledgedTasks: number;
  totalTasks: number;
  manifestPath: string | null;
  failureMessage: string | null;
  /** The application's and Flink's version that took it (R61); null when unknown. */
  jobVersion: string | null;
  flinkVersion: string | null;
  /** The jobs whose restore from it holds it (decision 0032): not discarded while any does, unless forced. */
  heldBy: string[];
  /** How many jobs outside the caller's namespaces hold it too (decision 0045). */
  hiddenHolders: number;
  properties: {
    forced: boolean;
    discardSubsumed: boolean;
    discardFinished: boolean;
    discardCancelled: boolean;
    discardFailed: boolean;
    discardSuspended: boolean;
  };
  discard: {
    cause: string;
    reason: string | null;
    state: string;
    requestedAt: string;
    bytesReclaimed: number | null;
    error: string | null;
    retryable: boolean | null;
  } | null;
  stateHandles: StateHandle[];
}

export const SNAPSHOT = `query Snapshot($jobId: ID!, $id: Int!) {
  job(id: $jobId) { id name status }
  snapshot(jobId: $jobId, id: $id) {
    ${SNAPSHOT_ROW}
    jobId triggerId acknowledgedTasks totalTasks manifestPath failureMessage jobVersion flinkVersion heldBy hiddenHolders
    properties { forced discardSubsumed discardFinished discardCancelled discardFailed discardSuspended }
    discard { cause reason state requestedAt bytesReclaimed error retryable }
    stateHandles { taskId path sizeBytes shared }
  }
}`;

export interface HistoryEvent {
  eventId: string;
  type: string;
  occurredAt: string;
  snapshotId: number | null;
  data: Record<string, unknown> | null;
  metadata: Record<string, unknown> | null;
}

export const HISTORY = `query History($jobId: ID!, $snapshotId: Int, $first: Int!, $after: String) {
  history(jobId: $jobId, snapshotId: $snapshotId, first: $first, after: $after, newestFirst: true) {
    edges { node { eventId type occurredAt snapshotId data metadata } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const LIVE = `subscription Live($jobId: ID!) { snapshotEvents(jobId: $jobId) { type snapshotId } }`;

export const TRIGGER_SAVEPOINT = `mutation TriggerSavepoint($jobId: ID!, $triggerId: String) {
  triggerSnapshot(jobId: $jobId, kind: SAVEPOINT, triggerId: $triggerId) { id status }
}`;
export const PERSIST = `mutation Persist($jobId: ID!, $snapshotId: Int!) {
  persistSnapshot(jobId: $jobId, snapshotId: $snapshotId) { id status persisted }
}`;
export const DISCARD = `mutation Discard($jobId: ID!, $snapshotId: Int!, $reason: String, $force: Boolean) {
  discardSnapshot(jobId: $jobId, snapshotId: $snapshotId, reason: $reason, force: $force) { id status }
}`;
export const CLAIM_MODES = ['NO_CLAIM', 'CLAIM', 'LEGACY'] as const;
export const RECORD_RESTORE = `mutation RecordRestore(
  $jobId: ID!, $snapshotId: Int!, $claimMode: ClaimMode!, $allowNonRestoredState: Boolean!
) {
  restoreSnapshot(
    jobId: $jobId, snapshotId: $snapshotId, claimMode: $claimMode, allowNonRestoredState: $allowNonRestoredState
  ) { claimMode restorePath snapshot { id } }
}`;
export const SET_SCHEDULE = `mutation SetSchedule($jobId: ID!, $schedule: SavepointScheduleInput!) {
  setSavepointSchedule(jobId: $jobId, schedule: $schedule) { every cron tz nextFireAt }
}`;
export const REMOVE_SCHEDULE = `mutation RemoveSchedule($jobId: ID!) { removeSavepointSchedule(jobId: $jobId) }`;

/** The scopes imply one another (admin ⊇ operator ⊇ runtime ⊇ read); the server sends them expanded. */
export const can = (viewer: Pick<Viewer, 'scopes'>, scope: 'read' | 'runtime' | 'operator' | 'admin') =>
  viewer.scopes.includes(scope) || viewer.scopes.includes('admin');

/**
 * Every page of a connection, `pageSize` at a time, until the last or until `max` items: `fetchPage` asks
 * for one page after a cursor.
 */
/** The server's largest page (services/api/src/graphql.ts MAX_PAGE). */
export const MAX_PAGE = 500;

/** `first` rows after `after`, in pages the server allows (MAX_PAGE), as one connection. */
export async function readUpTo<T>(
  fetchPage: (first: number, after: string | null) => Promise<Connection<T>>,
  first: number,
  after: string | null,
): Promise<Connection<T>> {
  if (first <= MAX_PAGE) return fetchPage(first, after);
  const { items, complete, endCursor } = await allPages(
    (size, from) => fetchPage(size, from ?? after),
    MAX_PAGE,
    first,
  );
  return { edges: items.map((node) => ({ node })), pageInfo: { hasNextPage: !complete, endCursor } };
}

export async function allPages<T>(
  fetchPage: (first: number, after: string | null) => Promise<Connection<T>>,
  pageSize: number,
  max = Infinity,
): Promise<{ items: T[]; complete: boolean; endCursor: string | null }> {
  const items: T[] = [];
  let after: string | null = null;
  for (;;) {
    const page: Connection<T> = await fetchPage(Math.min(pageSize, max - items.length), after);
    items.push(...page.edges.map((edge) => edge.node));
    const endCursor = page.pageInfo.endCursor ?? after;
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return { items, complete: true, endCursor };
    if (items.length >= max) return { items, complete: false, endCursor };
    after = page.pageInfo.endCursor;
  }
}

/** What an event says, in a few words, from the fields of its data people look for. */
export function eventSummary(event: Pick<HistoryEvent, 'type' | 'data'>): string {
  const data = event.data ?? {};
  const parts: string[] = [];
  for (const [key, label] of SUMMARY_FIELDS) {
    const value = data[key];
    if (BYTE_FIELDS.has(key) && typeof value === 'number') parts.push(`${label} ${formatBytes(value)}`);
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      parts.push(`${label} ${String(value)}`);
    }
  }
  return parts.join(' · ');
}

const SUMMARY_FIELDS: [key: string, label: string][] = [
  ['kind', 'kind'],
  ['status', 'status'],
  ['taskId', 'task'],
  ['stateSize', 'state'],
  ['cause', 'cause'],
  ['reason', 'reason'],
  ['failureReason', 'failure'],
  ['message', 'message'],
  ['error', 'error'],
  ['bytesReclaimed', 'reclaimed'],
  ['savepointPath', 'path'],
  ['name', 'name'],
  ['every', 'every'],
  ['cron', 'cron'],
];
const BYTE_FIELDS = new Set(['stateSize', 'bytesReclaimed']);

/** The name of whoever caused an event (its metadata.actor: the token's name), when recorded. */
export function actorOf(event: Pick<HistoryEvent, 'metadata'>): string | null {
  const actor = event.metadata?.actor;
  return typeof actor === 'string' && actor !== '' ? actor : null;
}
