import { DEFAULT_NAMESPACE, grantsNamespace, type NamespaceGrant } from './namespaces';
import type { Command, CommandOf } from './commands';
import { CommandRejected } from './errors';
import type { Event } from './events';
import { durationMs } from './duration';
import { checkpointPath, fnv1a, periodicTriggerId, restorePath, savepointPath } from './paths';
import { discardsOn, persistedProperties, propertiesFor } from './properties';
import {
  isTerminal,
  type AckResult,
  type ClaimMode,
  type DiscardCause,
  FailureReason,
  type JobStatus,
  type KeptLocation,
  type SnapshotStatus,
} from './schemas';
import {
  Draft,
  directoriesOf,
  expectsTask,
  hasAcknowledged,
  isJobOwned,
  stateHandlesOf,
  latestCompleted,
  pendingStop,
  pendingWhere,
  type JobState,
  type SnapshotState,
} from './state';
import { deletingSnapshot, isWithin, normaliseLocation, planDiscard, planStrayCleanup } from './shared-state';

export interface Replies {
  ConfigureJob: { created: boolean; changed: boolean };
  ChangeJobStatus: { status: JobStatus; changed: boolean };
  TriggerSnapshot:
    | { accepted: true; snapshotId: number; triggerId: string; status: SnapshotStatus; duplicate: boolean }
    | { accepted: false; triggerId: string; reason: FailureReason };
  AcknowledgeTask: { result: AckResult; snapshotStatus: SnapshotStatus | null };
  DeclineTask: { snapshotStatus: SnapshotStatus };
  /** `nextSnapshotId`: the id the restored run's next snapshot gets (R62). */
  RestoreSnapshot: {
    snapshotId: number | null;
    restorePath: string;
    claimMode: ClaimMode;
    aborted: number[];
    nextSnapshotId: number;
  };
  /** `savepointPath`: where snapcat's manifest lies (R39); `restorePath`: what Flink restores from (R57). */
  /** A managed job's checkpoint is persisted by a savepoint taken in Flink: `savepointSnapshotId` (R67). */
  PersistSnapshot: {
    savepointPath: string;
    restorePath: string;
    changed: boolean;
    savepointSnapshotId?: number;
  };
  RequestDiscard: { snapshotStatus: SnapshotStatus; changed: boolean };
  RecordDiscardCompleted: { snapshotStatus: SnapshotStatus; changed: boolean };
  RecordDiscardFailed: { snapshotStatus: SnapshotStatus };
  ExpireOverdue: { expired: number[] };
  SetSavepointSchedule: { changed: boolean };
  RemoveSavepointSchedule: { changed: boolean };
  FirePeriodicSavepoint:
    | { fired: true; snapshotId: number; triggerId: string }
    | {
        fired: false;
        reason: 'NO_SCHEDULE' | 'SLOT_ALREADY_HANDLED' | 'PREVIOUS_SAVEPOINT_PENDING' | FailureReason;
      };
  ApplyRetention: { discarded: number[] };
  RecordManifestWritten: { changed: boolean };
  RecordStrayCleanupCompleted: { changed: boolean };
  /** How many of Flink's reports changed the catalog, by what they recorded (R68). */
  RecordFlinkCheckpoints: { recorded: number; completed: number; failed: number; discarded: number };
  RecordFlinkSavepoint: { snapshotStatus: SnapshotStatus; changed: boolean };
  RecordFlinkCheckpointConfig: { changed: boolean };
  /** `duplicate`: the path was imported before, and this is that snapshot (R69). */
  ImportSnapshot: { snapshotId: number; status: SnapshotStatus; duplicate: boolean };
}
export type ReplyOf<C extends Command> = Replies[C['type']];

export interface Decision<C extends Command = Command> {
  events: Event[];
  reply: ReplyOf<C>;
  /** The state with the events folded in (what `fold(state, events)` gives), so callers need not fold again. */
  state: JobState;
}

type EventInput = Event extends infer E ? (E extends Event ? Omit<E, 'jobId' | 'occurredAt'> : never) : never;

/** Collects the events of one decision and folds each into a private draft, so later rules see earlier ones. */
class Decider {
  readonly events: Event[] = [];
  private readonly draft: Draft;
  private readonly occurredAt: string;

  get occurredAtIso(): string {
    return this.occurredAt;
  }

  constructor(
    state: JobState,
    readonly now: number,
  ) {
    this.draft = new Draft(state);
    this.occurredAt = new Date(now).toISOString();
  }

  get state(): JobState {
    return this.draft.state;
  }

  /** The state after every event, immutable; the decider must not be used afterwards. */
  seal(): JobState {
    return this.draft.seal();
  }

  /** Takes ownership of `input` (always a fresh literal): completing it in place costs no copy per event. */
  emit(input: EventInput): void {
    const event = input as Event;
    event.jobId = this.state.jobId;
    event.occurredAt = this.occurredAt;
    this.events.push(event);
    this.draft.apply(event, this.now);
  }
}

/**
 * The job aggregate's decision: which events a command produces in a state at `now`.
 * Pure: time comes in as `now` (epoch ms); ids (triggerId) come in with the command.
 * Any command on a registered job first expires its overdue pending snapshots.
 * Throws CommandRejected when the command cannot apply; nothing is then written.
 */
export function decide<C extends Command>(state: JobState, command: C, now: number): Decision<C> {
  const batch = decideBatch(state, [command], now);
  const outcome = batch.outcomes[0]!;
  if (!outcome.ok) throw outcome.error;
  return { events: batch.events, reply: outcome.reply as ReplyOf<C>, state: batch.state };
}

export type Outcome =
  | { ok: true; reply: ReplyOf<Command>; events: Event[] }
  /** A rejected command's events are only the expirations it triggered first. */
  | { ok: false; error: CommandRejected; events: Event[] };

export interface BatchDecision {
  /** Every event of the batch, in order: what to append. */
  events: Event[];
  outcomes: Outcome[];
  state: JobState;
}

/**
 * Decides commands in order, each seeing the events of those before it (group commit). One draft serves
 * the whole batch, so its cost does not grow with the batch times the aggregate's size. A rejected
 * command writes nothing of its own; expirations it triggered are facts and stay.
 */
export function decideBatch(
  state: JobState,
  commands: readonly Command[],
  now: number,
  grants?: readonly NamespaceGrant[],
): BatchDecision {
  const d = new Decider(state, now);
  const outcomes = commands.map((command, i): Outcome => {
    const start = d.events.length;
    try {
      const grant = grants?.[i] ?? '*';
      if (grant !== '*') requireNamespace(d.state, command, grant);
      if (command.type !== 'ConfigureJob' && !d.state.registered) throw notRegistered(command.jobId);
      const expired = d.state.registered ? expireOverdue(d) : [];
      const reply = decideCommand(d, command, expired);
      return { ok: true, reply, events: d.events.slice(start) };
    } catch (error) {
      if (!(error instanceof CommandRejected)) throw error;
      return { ok: false, error, events: d.events.slice(start) };
    }
  });
  return { events: d.events, outcomes, state: d.seal() };
}

const notRegistered = (jobId: string) =>
  new CommandRejected('NOT_FOUND', 'jobId', 'job-exists', `job ${jobId} is not registered`);

/**
 * Issue 18: a job outside the caller's namespaces is answered as if it did not exist (its existence is not
 * revealed); registering a job in a namespace the caller may not act in is forbidden. Checked per command,
 * on the state the command is decided on, so a job registered earlier in the same batch counts.
 */
function requireNamespace(state: JobState, command: Command, grant: readonly string[]): void {
  if (state.registered) {
    if (!grantsNamespace(grant, state.namespace)) throw notRegistered(command.jobId);
    return;
  }
  if (command.type !== 'ConfigureJob') return; // refused below as not registered
  const namespace = command.namespace ?? DEFAULT_NAMESPACE;
  if (!grantsNamespace(grant, namespace)) {
    throw new CommandRejected(
      'FORBIDDEN',
      'namespace',
      'namespace-granted',
      `this token may not act in namespace ${namespace} (it may in ${grant.join(', ')})`,
    );
  }
}

function decideCommand(d: Decider, command: Command, expired: number[]): Replies[Command['type']] {
  switch (command.type) {
    case 'ConfigureJob':
      return configureJob(d, command);
    case 'ChangeJobStatus':
      return { status: command.status, changed: changeStatus(d, command.status) };
    case 'TriggerSnapshot':
      return trigger(d, command);
    case 'AcknowledgeTask':
      return acknowledge(d, command);
    case 'DeclineTask':
      return decline(d, command);
    case 'RestoreSnapshot':
      return restore(d, command);
    case 'PersistSnapshot':
      return persist(d, command);
    case 'RequestDiscard':
      return requestDiscard(d, command);
    case 'RecordDiscardCompleted':
      return recordDiscardCompleted(d, command);
    case 'RecordDiscardFailed':
      return recordDiscardFailed(d, command);
    case 'ExpireOverdue':
      return { expired };
    case 'SetSavepointSchedule':
      if (sameJson(d.state.schedule, command.schedule)) return { changed: false };
      d.emit({ type: 'SavepointScheduleSet', schedule: command.schedule });
      return { changed: true };
    case 'RemoveSavepointSchedule':
      if (d.state.schedule === null) return { changed: false };
      d.emit({ type: 'SavepointScheduleRemoved' });
      return { changed: true };
    case 'FirePeriodicSavepoint':
      return firePeriodic(d, command.slot);
    case 'ApplyRetention':
      return { discarded: applyRetention(d) };
    case 'RecordManifestWritten':
      return recordManifest(d, command);
    case 'RecordStrayCleanupCompleted':
      if (!d.state.strayCleanups.has(command.cleanupId)) return { changed: false };
      d.emit({
        type: 'StrayStateDeleted',
        cleanupId: command.cleanupId,
        bytesReclaimed: command.bytesReclaimed,
      });
      return { changed: true };
    case 'RecordFlinkCheckpoints':
      return mirrorFlinkCheckpoints(d, command);
    case 'RecordFlinkSavepoint':
      return recordFlinkSavepoint(d, command);
    case 'RecordFlinkCheckpointConfig': {
      const { externalized, deleteOnCancellation } = command;
      const known = d.state.flinkRetention;
      if (!d.state.source) {
        throw new CommandRejected(
          'CONFLICT',
          'jobId',
          'managed-job',
          `job ${d.state.jobId} is not managed through Flink`,
        );
      }
      if (known?.externalized === externalized && known.deleteOnCancellation === deleteOnCancellation) {
        return { changed: false };
      }
      d.emit({ type: 'FlinkCheckpointRetentionRecorded', externalized, deleteOnCancellation });
      return { changed: true };
    }
    case 'ImportSnapshot':
      return importSnapshot(d, command);
  }
}

/** The triggerId of an imported path (R69): the same path, however written (R43), is the same import. */
export function importTriggerId(externalPath: string): string {
  return `import-${fnv1a(`snapcat import\n${normaliseLocation(externalPath)}`, 64)}`;
}

/**
 * R69, R70: catalogues a savepoint or retained checkpoint that exists already. It gets the next id and is
 * COMPLETED at once, owned by the user (every discard flag off: never subsumed, never discarded by the job's
 * termination), its directory owned in the shared-state registry. Importing the same path again answers
 * that snapshot; a path that is, lies in, or holds the directory of another live snapshot is refused.
 */
function importSnapshot(d: Decider, c: CommandOf<'ImportSnapshot'>): Replies['ImportSnapshot'] {
  const s = d.state;
  const triggerId = importTriggerId(c.externalPath);
  const existingId = s.triggers.get(triggerId);
  if (existingId !== undefined) {
    const existing = s.snapshots.get(existingId)!;
    if (existing.kind !== c.kind) {
      throw new CommandRejected(
        'CONFLICT',
        'kind',
        'import-kind',
        `${c.externalPath} was imported as ${existing.kind.toLowerCase()} ${existingId}`,
      );
    }
    return { snapshotId: existingId, status: existing.status, duplicate: true };
  }
  const path = normaliseLocation(c.externalPath);
  for (const [directory, owners] of s.sharedState.directories.entries()) {
    if (owners.length === 0) continue;
    const owner = owners[0]!;
    if (directory === path) {
      throw new CommandRejected(
        'CONFLICT',
        'externalPath',
        'already-catalogued',
        `${c.externalPath} is the directory of snapshot ${owner}`,
      );
    }
    if (isWithin(path, directory) || isWithin(directory, path)) {
      throw new CommandRejected(
        'CONFLICT',
        'externalPath',
        'overlaps-catalogued',
        isWithin(path, directory)
          ? `${c.externalPath} lies inside ${directory}, the directory of snapshot ${owner}`
          : `${c.externalPath} holds ${directory}, the directory of snapshot ${owner}: its discard would delete it`,
      );
    }
  }
  const snapshotId = s.nextSnapshotId;
  d.emit({
    type: 'SnapshotTriggered',
    snapshotId,
    kind: c.kind,
    triggerType: 'MANUAL',
    triggerId,
    // R70: the user's, whatever the job's retention: every discard flag off (a savepoint stays forced).
    properties: persistedProperties(propertiesFor(c.kind, s.checkpointing.retention)),
    formatType: c.formatType ?? 'CANONICAL',
    ...(c.kind === 'SAVEPOINT' ? { checkpointType: 'FULL' as const } : {}),
    tasks: [],
    deadline: d.occurredAtIso,
    externalPath: c.externalPath,
    imported: true,
  });
  d.emit({
    type: 'SnapshotCompleted',
    snapshotId,
    kind: c.kind,
    stateSize: c.stateSize ?? 0,
    externalPath: c.externalPath,
  });
  return { snapshotId, status: 'COMPLETED', duplicate: false };
}

function expireOverdue(d: Decider): number[] {
  // Runs before every command: cheap unless a snapshot is overdue.
  let overdue: SnapshotState[] | undefined;
  for (const id of d.state.pending) {
    const snapshot = d.state.snapshots.get(id)!;
    if (snapshot.deadline <= d.now) (overdue ??= []).push(snapshot);
  }
  if (!overdue) return [];
  overdue.sort((a, b) => a.snapshotId - b.snapshotId);
  for (const snapshot of overdue) fail(d, snapshot.snapshotId, 'CHECKPOINT_EXPIRED');
  return overdue.map((s) => s.snapshotId);
}

/**
 * One schedule slot fires at most once: its triggerId is derived from the slot, and older slots are ignored.
 * No slot vanishes either: the schedule's slots that passed since the last one handled, and that no worker
 * presented (its worker was killed and the next fires only the newest slot), are recorded as skipped
 * (SLOT_MISSED) before the slot itself is.
 */
function firePeriodic(d: Decider, slot: number): Replies['FirePeriodicSavepoint'] {
  const s = d.state;
  if (!s.schedule) return { fired: false, reason: 'NO_SCHEDULE' };
  const triggerId = periodicTriggerId(s.jobId, s.schedule, slot);
  if ((s.lastSlot !== null && slot <= s.lastSlot) || s.triggers.has(triggerId)) {
    return { fired: false, reason: 'SLOT_ALREADY_HANDLED' };
  }
  const missed = missedSlots(s, slot);
  missed.slots.forEach((missedSlot, i) =>
    d.emit({
      type: 'PeriodicSavepointSkipped',
      slot: missedSlot,
      reason: 'SLOT_MISSED',
      ...(i === 0 && missed.omitted > 0 ? { missedBefore: missed.omitted } : {}),
    }),
  );
  if (s.status !== 'RUNNING') {
    d.emit({ type: 'PeriodicSavepointSkipped', slot, reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING' });
    return { fired: false, reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING' };
  }
  // R65: a pending stop-with-savepoint stopped the periodic scheduler.
  if (pendingStop(s)) {
    d.emit({ type: 'PeriodicSavepointSkipped', slot, reason: 'PERIODIC_SCHEDULER_SHUTDOWN' });
    return { fired: false, reason: 'PERIODIC_SCHEDULER_SHUTDOWN' };
  }
  // R50: while the previous periodic savepoint is pending the slot is skipped, as the Kubernetes operator
  // triggers none while one is in progress (SnapshotUtils.shouldTriggerSnapshot: `if (inProgress)`).
  // Overdue ones have expired already (R4), so a savepoint nobody acknowledges holds back its timeout only.
  if (pendingPeriodicSavepoint(s)) {
    d.emit({ type: 'PeriodicSavepointSkipped', slot, reason: 'PREVIOUS_SAVEPOINT_PENDING' });
    return { fired: false, reason: 'PREVIOUS_SAVEPOINT_PENDING' };
  }
  const snapshotId = s.nextSnapshotId;
  d.emit({
    type: 'SnapshotTriggered',
    snapshotId,
    kind: 'SAVEPOINT',
    triggerType: 'PERIODIC',
    triggerId,
    properties: propertiesFor('SAVEPOINT', s.checkpointing.retention),
    formatType: s.schedule.formatType ?? 'CANONICAL',
    ...versionsOf(s.jobVersion, s.flinkVersion),
    tasks: s.tasks,
    deadline: new Date(d.now + s.checkpointing.timeoutMs).toISOString(),
    externalPath: savepointPath(
      s.schedule.targetDirectory ?? s.storage.savepointDir,
      s.jobId,
      `${snapshotId}/${triggerId}`,
    ),
    slot,
  });
  return { fired: true, snapshotId, triggerId };
}

/** Whether one of the job's periodic savepoints is pending (the job has one schedule). */
const pendingPeriodicSavepoint = (s: JobState): boolean =>
  pendingWhere(s, (snapshot) => snapshot.kind === 'SAVEPOINT' && snapshot.triggerType === 'PERIODIC') !==
  undefined;

/**
 * At most this many missed slots are recorded one by one when a slot fires (SLOT_MISSED): a job whose
 * `PT1S` schedule was not served for a day would otherwise write 86,400 events (and webhook deliveries) in
 * one decision. The newest are recorded, the ones an operator looks at first; the oldest of them carries
 * `missedBefore`, how many earlier slots were missed too, so that even then no slot goes unaccounted for.
 */
export const MAX_MISSED_SLOTS_RECORDED = 1000;
/** A discard request lists this many of the handles it keeps outside what it deletes, and counts the rest. */
export const KEPT_ELSEWHERE_LISTED = 100;

/**
 * The schedule's slots strictly between the last slot the job handled (or the time its schedule was set,
 * when that is later: a new schedule has missed nothing before it existed) and `slot`, oldest first: the
 * newest MAX_MISSED_SLOTS_RECORDED of them, and how many older ones there are beyond those.
 *
 * An `every` schedule's slots are the whole multiples of its interval since the epoch, as the scheduler
 * plans them (`nextFireTime` in libs/application). A `cron` schedule's slots need a cron evaluator and the
 * IANA time-zone rules (daylight saving), which the pure domain has neither of (the application evaluates
 * them with cron-parser, whose answers depend on the host's time-zone data): no missed slots are computed
 * for it, and a cron slot that no worker presented is still not recorded.
 */
export function missedSlots(s: JobState, slot: number): { slots: number[]; omitted: number } {
  const none = { slots: [], omitted: 0 };
  if (!s.schedule?.every) return none;
  const since = Math.max(s.lastSlot ?? -Infinity, s.scheduleSince ?? -Infinity);
  if (since === -Infinity) return none;
  const period = durationMs(s.schedule.every);
  const first = Math.floor(since / period) + 1; // the first multiple after `since`
  const last = Math.ceil(slot / period) - 1; // the last multiple before `slot`
  const count = last - first + 1;
  if (count <= 0) return none;
  const recorded = Math.min(count, MAX_MISSED_SLOTS_RECORDED);
  const slots = Array.from({ length: recorded }, (_, i) => (last - recorded + 1 + i) * period);
  return { slots, omitted: count - recorded };
}

/**
 * Savepoint retention (R53): of the completed PERIODIC savepoints, newest first, those beyond maxCount or
 * older than maxAge are discarded. Manual savepoints and persisted checkpoints are never candidates; the
 * newest completed periodic savepoint is always kept (a recorded maxCount of 0 keeps it as 1 does), as
 * the Kubernetes operator keeps its last complete one (`SnapshotObserver.getFlinkStateSnapshotsToCleanUp`);
 * while the job has not terminated its latest completed snapshot is kept too (R34). Run by the sweep
 * (ApplyRetention) and whenever a periodic savepoint completes (`complete`).
 */
function applyRetention(d: Decider): number[] {
  const retention = d.state.schedule?.retention;
  if (!retention || (retention.maxCount === undefined && retention.maxAge === undefined)) return [];
  const protectedId = isTerminal(d.state.status) ? undefined : latestCompleted(d.state)?.snapshotId;
  const maxAgeMs = retention.maxAge === undefined ? undefined : durationMs(retention.maxAge);
  const periodic = [...d.state.completed]
    .reverse()
    .map((id) => d.state.snapshots.get(id)!)
    .filter(
      // A snapshot the job restored from is no longer the schedule's (R62): CLAIM made it the job's,
      // NO_CLAIM and LEGACY the user's.
      (s) => s.kind === 'SAVEPOINT' && s.triggerType === 'PERIODIC' && !s.persisted && s.claimMode === null,
    );
  const expired = periodic.filter(
    (s, newestFirst) =>
      newestFirst > 0 &&
      s.snapshotId !== protectedId &&
      ((retention.maxCount !== undefined && newestFirst >= retention.maxCount) ||
        (maxAgeMs !== undefined && d.now - s.completedAt! > maxAgeMs)),
  );
  for (const snapshot of expired) requestDiscardOf(d, snapshot, 'RETENTION');
  return expired.map((s) => s.snapshotId);
}

function recordManifest(d: Decider, c: CommandOf<'RecordManifestWritten'>): Replies['RecordManifestWritten'] {
  const snapshot = requireSnapshot(d.state, c.snapshotId);
  if (!snapshot.persisted) {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'persisted',
      `snapshot ${c.snapshotId} is not persisted`,
    );
  }
  if (snapshot.manifestPath === c.path) return { changed: false };
  d.emit({ type: 'SnapshotManifestWritten', snapshotId: c.snapshotId, path: c.path });
  return { changed: true };
}

function configureJob(d: Decider, c: CommandOf<'ConfigureJob'>): Replies['ConfigureJob'] {
  const s = d.state;
  const source = c.source ?? s.source;
  if (c.tasks.length === 0 && !source) {
    throw new CommandRejected(
      'INVALID',
      'tasks',
      'min-length',
      'name the tasks that acknowledge snapshots; only a job managed through Flink (source) has none (R67)',
    );
  }
  if (!s.registered) {
    d.emit({
      type: 'JobRegistered',
      name: c.name,
      namespace: c.namespace ?? DEFAULT_NAMESPACE,
      tasks: c.tasks,
      status: c.status ?? 'RUNNING',
      checkpointing: c.checkpointing,
      storage: c.storage,
      ...versionsOf(c.jobVersion, c.flinkVersion),
      ...(source ? { source } : {}),
    });
    return { created: true, changed: true };
  }
  if (c.namespace !== undefined && c.namespace !== s.namespace) {
    throw new CommandRejected(
      'CONFLICT',
      'namespace',
      'immutable',
      `job ${c.jobId} is in namespace ${s.namespace}; a job's namespace never changes`,
    );
  }
  // R61: a version left out is kept; a new one alone is a reconfiguration, so that it is recorded.
  const jobVersion = c.jobVersion ?? s.jobVersion;
  const flinkVersion = c.flinkVersion ?? s.flinkVersion;
  const configChanged =
    s.name !== c.name ||
    !sameJson(s.tasks, c.tasks) ||
    !sameJson(s.checkpointing, c.checkpointing) ||
    !sameJson(s.storage, c.storage) ||
    jobVersion !== s.jobVersion ||
    flinkVersion !== s.flinkVersion ||
    !sameJson(source, s.source);
  if (configChanged) {
    d.emit({
      type: 'JobReconfigured',
      name: c.name,
      tasks: c.tasks,
      checkpointing: c.checkpointing,
      storage: c.storage,
      ...versionsOf(jobVersion, flinkVersion),
      ...(source ? { source } : {}),
    });
  }
  const statusChanged = c.status !== undefined && changeStatus(d, c.status);
  return { created: false, changed: configChanged || statusChanged };
}

/**
 * Job status change. Leaving RUNNING aborts pending snapshots; a terminal status applies each retained
 * snapshot's discard flag, after persisting the newest checkpoint on FAILED when it would be discarded
 * (R38). SUSPENDED discards nothing that completed: the job will resume from it.
 */
function changeStatus(d: Decider, to: JobStatus): boolean {
  const from = d.state.status;
  if (from === to) return false;
  if (isTerminal(from)) {
    throw new CommandRejected('CONFLICT', 'status', 'terminal-status', `job is ${from}, a terminal status`);
  }
  d.emit({ type: 'JobStatusChanged', from, to });
  if (to === 'RUNNING') return true;

  // Any status but RUNNING stops the checkpoint scheduler, which aborts what is pending
  // (CheckpointCoordinatorDeActivator.jobStatusChanges → stopCheckpointScheduler); a terminal one shuts
  // the coordinator down (CheckpointCoordinator.shutdown).
  const abortReason: FailureReason = isTerminal(to)
    ? 'CHECKPOINT_COORDINATOR_SHUTDOWN'
    : 'CHECKPOINT_COORDINATOR_SUSPEND';
  abortPending(d, abortReason);
  if (!isTerminal(to)) return true;

  if (to === 'FAILED' && d.state.checkpointing.persistOnFailure && !d.state.source) {
    // R38 (snapcat, after FLIP-10): only the newest completed checkpoint, and only when its retention
    // would discard it (CompletedCheckpoint.shouldBeDiscardedOnShutdown); never an older one.
    const newestCheckpoint = [...d.state.completed]
      .reverse()
      .map((id) => d.state.snapshots.get(id)!)
      .find((s) => s.kind === 'CHECKPOINT');
    if (
      newestCheckpoint &&
      !newestCheckpoint.persisted &&
      discardsOn(newestCheckpoint.properties, 'FAILED')
    ) {
      persistTo(d, newestCheckpoint, d.state.storage.savepointDir, 'JOB_FAILED');
    }
  }
  const cause = `JOB_${to}` as DiscardCause;
  for (const id of [...d.state.completed]) {
    const snapshot = d.state.snapshots.get(id)!;
    // R67: a managed job's checkpoints are Flink's to delete as its externalized retention says.
    if (d.state.source && snapshot.kind === 'CHECKPOINT') continue;
    if (discardsOn(snapshot.properties, to)) requestDiscardOf(d, snapshot, cause);
  }
  return true;
}

function trigger(d: Decider, c: CommandOf<'TriggerSnapshot'>): Replies['TriggerSnapshot'] {
  const s = d.state;
  if (c.kind === 'SAVEPOINT' && c.checkpointType === 'INCREMENTAL') {
    throw new CommandRejected(
      'INVALID',
      'checkpointType',
      'savepoint-is-full',
      'a savepoint is always FULL: it shares no files with other snapshots (R58)',
    );
  }
  if (s.source && c.kind === 'CHECKPOINT') {
    throw new CommandRejected(
      'CONFLICT',
      'kind',
      'managed-job-checkpoints',
      `job ${s.jobId} is managed through Flink cluster ${s.source.cluster}: Flink takes its checkpoints and the mirror records them (R68)`,
    );
  }
  if (c.terminate && c.kind !== 'SAVEPOINT') {
    throw new CommandRejected(
      'INVALID',
      'terminate',
      'stop-with-savepoint',
      'only a savepoint stops the job: stop-with-savepoint (R65)',
    );
  }
  const existingId = s.triggers.get(c.triggerId);
  if (existingId !== undefined) {
    const existing = s.snapshots.get(existingId)!;
    if (existing.kind !== c.kind) {
      throw new CommandRejected(
        'CONFLICT',
        'triggerId',
        'trigger-id-unique',
        `triggerId ${c.triggerId} was already used for ${existing.kind} ${existingId}`,
      );
    }
    return {
      accepted: true,
      snapshotId: existingId,
      triggerId: c.triggerId,
      status: existing.status,
      duplicate: true,
    };
  }
  const properties = propertiesFor(c.kind, s.checkpointing.retention);
  const rejection = preflight(s, properties.forced, c.triggerType === 'PERIODIC', d.now);
  if (rejection) {
    d.emit({
      type: 'SnapshotTriggerRejected',
      kind: c.kind,
      triggerType: c.triggerType,
      triggerId: c.triggerId,
      reason: rejection,
    });
    return { accepted: false, triggerId: c.triggerId, reason: rejection };
  }
  if (c.terminate) {
    // R65: SchedulerBase.stopWithSavepoint first stops the checkpoint scheduler, which aborts every pending
    // snapshot (CheckpointCoordinator.stopCheckpointScheduler: CHECKPOINT_COORDINATOR_SUSPEND).
    abortPending(d, 'CHECKPOINT_COORDINATOR_SUSPEND');
  }
  const snapshotId = s.nextSnapshotId;
  const externalPath =
    c.kind === 'CHECKPOINT'
      ? checkpointPath(s.storage.checkpointDir, s.jobId, snapshotId)
      : savepointPath(c.targetDirectory ?? s.storage.savepointDir, s.jobId, `${snapshotId}/${c.triggerId}`);
  d.emit({
    type: 'SnapshotTriggered',
    snapshotId,
    kind: c.kind,
    triggerType: c.triggerType,
    triggerId: c.triggerId,
    properties,
    formatType: c.formatType,
    // R63: after a NO_CLAIM restore the job's first checkpoint is FULL (RecoveryClaimMode.NO_CLAIM).
    checkpointType:
      c.kind === 'SAVEPOINT' || s.fullCheckpointOwed ? 'FULL' : (c.checkpointType ?? 'INCREMENTAL'),
    // R61: the versions the trigger names, else the job's current ones.
    ...versionsOf(c.jobVersion ?? s.jobVersion, c.flinkVersion ?? s.flinkVersion),
    tasks: s.tasks,
    deadline: new Date(d.now + s.checkpointing.timeoutMs).toISOString(),
    externalPath,
    ...(c.terminate ? { terminate: c.terminate } : {}),
  });
  return { accepted: true, snapshotId, triggerId: c.triggerId, status: 'PENDING', duplicate: false };
}

/**
 * Flink's pre-flight checks (CheckpointRequestDecider.chooseRequestToExecute): forced triggers (savepoints)
 * skip the limits, and the minimum pause holds back periodic requests only (`!isForce() && isPeriodic`).
 */
function preflight(s: JobState, forced: boolean, periodic: boolean, now: number): FailureReason | null {
  if (s.status !== 'RUNNING') return 'NOT_ALL_REQUIRED_TASKS_RUNNING';
  // R65: a stop-with-savepoint stopped the periodic scheduler (CheckpointCoordinator.preCheckGlobalState).
  if (periodic && pendingStop(s)) return 'PERIODIC_SCHEDULER_SHUTDOWN';
  if (forced) return null;
  if (s.pending.size >= s.checkpointing.maxConcurrent) return 'TOO_MANY_CHECKPOINT_REQUESTS';
  if (periodic && s.lastCompletedAt !== null && now - s.lastCompletedAt < s.checkpointing.minPauseMs) {
    return 'MINIMUM_TIME_BETWEEN_CHECKPOINTS';
  }
  return null;
}

function acknowledge(d: Decider, c: CommandOf<'AcknowledgeTask'>): Replies['AcknowledgeTask'] {
  const snapshot = d.state.snapshots.get(c.snapshotId);
  if (!snapshot) return strayAck(d, c, 'UNKNOWN', null);
  if (hasAcknowledged(snapshot, c.taskId)) return { result: 'DUPLICATE', snapshotStatus: snapshot.status };
  // A snapshot being discarded keeps no task list: whoever acknowledges it now sends garbage to clean up.
  if (snapshot.discard) return strayAck(d, c, 'DISCARDED', snapshot.status);
  if (!expectsTask(snapshot, c.taskId)) return strayAck(d, c, 'UNKNOWN', snapshot.status);
  if (snapshot.status !== 'PENDING') return strayAck(d, c, 'DISCARDED', snapshot.status);
  // State that a requested discard is deleting cannot be part of a snapshot that must restore: the
  // snapshot fails, and the acknowledgement is cleaned up like any other that came too late.
  for (const handle of c.stateHandles) {
    const deleter = deletingSnapshot(d.state.sharedState, normaliseLocation(handle.path));
    if (deleter === undefined) continue;
    const by = deleter > 0 ? `the discard of snapshot ${deleter}` : `stray cleanup ${-deleter}`;
    const message = `state handle ${handle.path} is being deleted by ${by}`;
    fail(d, c.snapshotId, 'CHECKPOINT_DECLINED', c.taskId, message);
    return strayAck(d, c, 'DISCARDED', 'FAILED');
  }

  // Flink's task refuses to take an incremental snapshot where a full one was asked for
  // (StreamTask.checkForcedFullSnapshotSupport): it declines instead.
  if (c.checkpointType === 'INCREMENTAL' && snapshot.requestedCheckpointType === 'FULL') {
    throw new CommandRejected(
      'CONFLICT',
      'checkpointType',
      'full-snapshot-acknowledged-incremental',
      `${snapshot.kind.toLowerCase()} ${snapshot.snapshotId} is FULL: a task that cannot take a full snapshot declines it (R58)`,
    );
  }
  d.emit({
    type: 'TaskAcknowledged',
    snapshotId: c.snapshotId,
    taskId: c.taskId,
    stateSize: c.stateSize,
    stateHandles: c.stateHandles,
    ...(c.checkpointType !== undefined ? { checkpointType: c.checkpointType } : {}),
    ...(c.checkpointedSize !== undefined ? { checkpointedSize: c.checkpointedSize } : {}),
  });
  const acked = d.state.snapshots.get(c.snapshotId)!;
  if (acked.acknowledged === acked.totalTasks) complete(d, acked);
  return { result: 'SUCCESS', snapshotStatus: d.state.snapshots.get(c.snapshotId)!.status };
}

/**
 * An acknowledgement no pending snapshot expects: recorded, so that its state handles can be cleaned up,
 * those that no live snapshot references (Flink registers a late acknowledgement's shared state before it
 * discards the rest: `CheckpointCoordinator.receiveAcknowledgeMessage`).
 */
function strayAck(
  d: Decider,
  c: CommandOf<'AcknowledgeTask'>,
  result: 'UNKNOWN' | 'DISCARDED',
  snapshotStatus: SnapshotStatus | null,
): Replies['AcknowledgeTask'] {
  const { cleanup, kept } = planStrayCleanup(d.state.sharedState, c.stateHandles);
  d.emit({
    type: 'StrayAcknowledgementReceived',
    snapshotId: c.snapshotId,
    taskId: c.taskId,
    result,
    stateSize: c.stateSize,
    stateHandles: c.stateHandles,
    cleanup,
    ...keptListed(kept, () => false),
    ...(cleanup.length > 0 ? { cleanupId: d.state.nextCleanupId } : {}),
  });
  return { result, snapshotStatus };
}

/**
 * Completion, then Flink's subsumption: older pending checkpoints abort (CHECKPOINT_SUBSUMED); completed,
 * non-persisted checkpoints beyond numRetained are subsumed oldest first, never the latest completed one.
 */
function complete(
  d: Decider,
  snapshot: SnapshotState,
  reported?: { externalPath: string; stateSize: number; checkpointedSize?: number },
): void {
  d.emit({
    type: 'SnapshotCompleted',
    snapshotId: snapshot.snapshotId,
    kind: snapshot.kind,
    stateSize: reported?.stateSize ?? snapshot.stateSize,
    externalPath: reported?.externalPath ?? snapshot.externalPath,
    ...(reported?.checkpointedSize !== undefined ? { checkpointedSize: reported.checkpointedSize } : {}),
  });
  if (snapshot.kind === 'CHECKPOINT') {
    const olderPending = [...d.state.pending]
      .filter((id) => id < snapshot.snapshotId && d.state.snapshots.get(id)!.kind === 'CHECKPOINT')
      .sort((a, b) => a - b);
    for (const id of olderPending) fail(d, id, 'CHECKPOINT_SUBSUMED');
  }
  const latestId = latestCompleted(d.state)?.snapshotId;
  // R67: Flink subsumes a managed job's checkpoints itself; the mirror records what it deleted.
  const subsumable = d.state.source
    ? []
    : d.state.completed.map((id) => d.state.snapshots.get(id)!).filter(isJobOwned);
  let excess = subsumable.length - d.state.checkpointing.numRetained;
  for (const old of subsumable) {
    if (excess <= 0) break;
    if (old.snapshotId === latestId) continue;
    d.emit({ type: 'SnapshotSubsumed', snapshotId: old.snapshotId, subsumedBy: snapshot.snapshotId });
    if (old.properties.discardSubsumed) requestDiscardOf(d, old, 'SUBSUMED');
    excess -= 1;
  }
  // R53: a completing periodic savepoint applies its schedule's retention at once, not only on the sweep,
  // as the operator cleans up the savepoint history once it observes one complete.
  if (snapshot.kind === 'SAVEPOINT' && snapshot.triggerType === 'PERIODIC') applyRetention(d);
  // R66: a completed stop-with-savepoint finishes the job: its tasks end once it completes
  // (StopWithSavepointTerminationHandlerImpl.handleSavepointCreationSuccess, then FINISHED).
  if (snapshot.terminate) changeStatus(d, 'FINISHED');
}

function decline(d: Decider, c: CommandOf<'DeclineTask'>): Replies['DeclineTask'] {
  const snapshot = requireSnapshot(d.state, c.snapshotId);
  requireStatus(snapshot, ['PENDING'], 'decline');
  if (!expectsTask(snapshot, c.taskId)) {
    throw new CommandRejected(
      'CONFLICT',
      'taskId',
      'expected-task',
      `task ${c.taskId} is not part of snapshot ${c.snapshotId}`,
    );
  }
  // R24: the reason the task gave (CheckpointCoordinator.receiveDeclineMessage takes it from the task's
  // CheckpointException), CHECKPOINT_DECLINED when it gave none.
  fail(d, snapshot.snapshotId, c.failureReason ?? 'CHECKPOINT_DECLINED', c.taskId, c.reason);
  return { snapshotStatus: 'FAILED' };
}

/** Fails every pending snapshot, in id order, for the same reason (the coordinator stopping); returns their ids. */
function abortPending(d: Decider, reason: FailureReason): number[] {
  const ids = [...d.state.pending].sort((a, b) => a - b);
  for (const id of ids) fail(d, id, reason);
  return ids;
}

/**
 * Aborts a pending snapshot, discards its partial state, and counts the failure if Flink would: the fold of
 * SnapshotFailed counts it (R27, R28, R59, R60); when that takes the count beyond `tolerableFailures`,
 * TolerableFailuresExceeded is written, whose fold clears the count (R28:
 * CheckpointFailureManager.checkFailureAgainstCounter, `continuousFailureCounter > tolerableCpFailureNumber`
 * then `clearCount()`). A failure with a task is task-level, one without job-level (R59).
 */
function fail(
  d: Decider,
  snapshotId: number,
  reason: FailureReason,
  taskId?: string,
  message?: string,
): void {
  const countedBefore = d.state.consecutiveFailures;
  d.emit({
    type: 'SnapshotFailed',
    snapshotId,
    reason,
    ...(taskId !== undefined ? { taskId } : {}),
    ...(message !== undefined ? { message } : {}),
  });
  const counted = d.state.consecutiveFailures > countedBefore;
  const failed = d.state.snapshots.get(snapshotId)!;
  requestDiscardOf(d, failed, 'ABORTED');
  const { tolerableFailures } = d.state.checkpointing;
  if (counted && d.state.consecutiveFailures > tolerableFailures) {
    d.emit({
      type: 'TolerableFailuresExceeded',
      snapshotId,
      consecutiveFailures: d.state.consecutiveFailures,
      tolerableFailures,
    });
  }
}

/**
 * R62: the job (re)started from a snapshot, as `CheckpointCoordinator.restoreSavepoint` loads one: the
 * snapshot's properties follow the claim mode, the id counter continues above the restored id, and the
 * previous run's pending snapshots are aborted (CHECKPOINT_COORDINATOR_SUSPEND, not counted).
 */
function restore(d: Decider, c: CommandOf<'RestoreSnapshot'>): Replies['RestoreSnapshot'] {
  if ((c.snapshotId === undefined) === (c.externalPath === undefined)) {
    throw new CommandRejected(
      'INVALID',
      'snapshotId',
      'snapshot-or-external-path',
      'give exactly one of snapshotId (one of the job’s snapshots) or externalPath',
    );
  }
  if (c.snapshotId !== undefined && c.checkpointId !== undefined) {
    throw new CommandRejected(
      'INVALID',
      'checkpointId',
      'external-path-only',
      'checkpointId is the id of an external path’s snapshot; a snapshot of the job has its own',
    );
  }
  if (isTerminal(d.state.status)) {
    throw new CommandRejected(
      'CONFLICT',
      'status',
      'terminal-status',
      `job is ${d.state.status}, a terminal status: Flink runs a restored job as a new job`,
    );
  }
  let path = c.externalPath;
  if (c.snapshotId !== undefined) {
    const snapshot = requireSnapshot(d.state, c.snapshotId);
    requireStatus(snapshot, ['COMPLETED'], 'restore from');
    path = restorePath(snapshot)!;
  }
  const aborted = abortPending(d, 'CHECKPOINT_COORDINATOR_SUSPEND');
  d.emit({
    type: 'SnapshotRestored',
    ...(c.snapshotId !== undefined ? { snapshotId: c.snapshotId } : {}),
    restorePath: path!,
    ...(c.checkpointId !== undefined ? { checkpointId: c.checkpointId } : {}),
    claimMode: c.claimMode,
    allowNonRestoredState: c.allowNonRestoredState,
  });
  return {
    snapshotId: c.snapshotId ?? null,
    restorePath: path!,
    claimMode: c.claimMode,
    aborted,
    nextSnapshotId: d.state.nextSnapshotId,
  };
}

/**
 * R67: the outcome of a managed job's savepoint, as Flink's savepoint status reports it: COMPLETED completes
 * the pending savepoint where Flink wrote it, FAILED fails it with Flink's cause (a job-level failure of a
 * savepoint: never counted, R59). Idempotent: a snapshot no longer pending answers unchanged.
 */
function recordFlinkSavepoint(
  d: Decider,
  c: CommandOf<'RecordFlinkSavepoint'>,
): Replies['RecordFlinkSavepoint'] {
  const snapshot = requireSnapshot(d.state, c.snapshotId);
  if (!d.state.source || snapshot.kind !== 'SAVEPOINT') {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'managed-savepoint',
      `snapshot ${c.snapshotId} is not a savepoint of a job managed through Flink`,
    );
  }
  if (snapshot.status !== 'PENDING') return { snapshotStatus: snapshot.status, changed: false };
  if (c.outcome.status === 'COMPLETED') {
    complete(d, snapshot, { externalPath: c.outcome.location, stateSize: snapshot.stateSize });
  } else {
    fail(d, snapshot.snapshotId, failureReasonOf(c.outcome.cause), undefined, c.outcome.cause);
  }
  return { snapshotStatus: d.state.snapshots.get(c.snapshotId)!.status, changed: true };
}

/**
 * R68: the mirror of a managed job records each checkpoint Flink reports once, by Flink's id: triggered
 * while in progress, then completed (where Flink wrote it, its sizes and type) or failed (Flink's message),
 * and discarded when Flink reports it deleted (nothing for snapcat to delete: the discard is done at once).
 * A savepoint is recorded only once completed or failed, and not when it is one snapcat took (its location
 * is already a savepoint's) or while one of snapcat's savepoints is still pending (the next report, with
 * that one completed, tells them apart).
 */
function mirrorFlinkCheckpoints(
  d: Decider,
  c: CommandOf<'RecordFlinkCheckpoints'>,
): Replies['RecordFlinkCheckpoints'] {
  if (!d.state.source) {
    throw new CommandRejected(
      'CONFLICT',
      'jobId',
      'managed-job',
      `job ${d.state.jobId} is not managed through Flink: its clients report its snapshots`,
    );
  }
  const counts = { recorded: 0, completed: 0, failed: 0, discarded: 0 };
  const restored = c.restored;
  if (restored && restored.restoreTimestamp > (d.state.flinkRestore?.restoredAt ?? -1)) {
    const snapshotId =
      d.state.flinkCheckpoints.get(restored.id) ??
      (restored.externalPath === null ? undefined : savepointAt(d.state, restored.externalPath));
    d.emit({
      type: 'FlinkRestoreRecorded',
      flinkCheckpointId: restored.id,
      ...(snapshotId !== undefined ? { snapshotId } : {}),
      isSavepoint: restored.isSavepoint,
      ...(restored.externalPath !== null ? { externalPath: restored.externalPath } : {}),
      restoredAt: new Date(restored.restoreTimestamp).toISOString(),
    });
  }
  for (const report of c.checkpoints) {
    let id = d.state.flinkCheckpoints.get(report.id);
    if (id === undefined) {
      if (report.isSavepoint && !mirrorsSavepoint(d.state, report)) continue;
      if (report.isSavepoint && report.status === 'IN_PROGRESS') continue;
      id = d.state.nextSnapshotId;
      d.emit({
        type: 'SnapshotTriggered',
        snapshotId: id,
        kind: report.isSavepoint ? 'SAVEPOINT' : 'CHECKPOINT',
        triggerType: report.isSavepoint ? 'MANUAL' : 'PERIODIC',
        triggerId: `flink-${report.id}`,
        properties: propertiesFor(
          report.isSavepoint ? 'SAVEPOINT' : 'CHECKPOINT',
          d.state.checkpointing.retention,
        ),
        formatType: 'CANONICAL',
        checkpointType: report.isSavepoint ? 'FULL' : report.checkpointType,
        ...versionsOf(d.state.jobVersion, d.state.flinkVersion),
        tasks: d.state.tasks,
        deadline: new Date(
          Math.max(d.now, report.triggerTimestamp) + d.state.checkpointing.timeoutMs,
        ).toISOString(),
        externalPath:
          report.externalPath ?? checkpointPath(d.state.storage.checkpointDir, d.state.jobId, report.id),
        flinkCheckpointId: report.id,
      });
      counts.recorded += 1;
    }
    const snapshot = d.state.snapshots.get(id)!;
    if (snapshot.status === 'PENDING' && report.status === 'COMPLETED') {
      complete(d, snapshot, {
        externalPath: report.externalPath ?? snapshot.externalPath,
        stateSize: report.stateSize,
        checkpointedSize: report.checkpointedSize,
      });
      counts.completed += 1;
    } else if (snapshot.status === 'PENDING' && report.status === 'FAILED') {
      const message = report.failureMessage ?? 'Flink reported the checkpoint failed';
      fail(d, id, failureReasonOf(message), undefined, message);
      counts.failed += 1;
    }
    const now = d.state.snapshots.get(id)!;
    if (report.discarded && now.status === 'COMPLETED' && now.kind === 'CHECKPOINT') {
      // Flink deleted it: recorded with nothing for snapcat to delete, and done at once.
      requestDiscardOf(d, now, 'SUBSUMED', 'deleted by Flink');
      counts.discarded += 1;
    }
  }
  return counts;
}

/** The catalogued savepoint at a location, if any. */
function savepointAt(s: JobState, location: string): number | undefined {
  const path = normaliseLocation(location);
  for (const snapshot of s.snapshots.values()) {
    if (snapshot.kind === 'SAVEPOINT' && normaliseLocation(snapshot.externalPath) === path)
      return snapshot.snapshotId;
  }
  return undefined;
}

/** Whether the mirror records a savepoint Flink reports: not one of snapcat's (R68). */
function mirrorsSavepoint(s: JobState, report: { externalPath: string | null }): boolean {
  if (pendingWhere(s, (snapshot) => snapshot.kind === 'SAVEPOINT')) return false;
  return report.externalPath === null || savepointAt(s, report.externalPath) === undefined;
}

/**
 * The CheckpointFailureReason a Flink failure message names: Flink's messages are its reasons' own texts
 * (`CheckpointFailureReason.message()`), or carry the reason's name; anything else is a decline.
 */
export function failureReasonOf(message: string): FailureReason {
  const known: [FailureReason, string][] = [
    ['CHECKPOINT_EXPIRED', 'Checkpoint expired before completing'],
    ['CHECKPOINT_SUBSUMED', 'Checkpoint has been subsumed'],
    ['CHECKPOINT_COORDINATOR_SHUTDOWN', 'CheckpointCoordinator shutdown'],
    ['CHECKPOINT_COORDINATOR_SUSPEND', 'Checkpoint Coordinator is suspending'],
    ['NOT_ALL_REQUIRED_TASKS_RUNNING', 'Not all required tasks are currently running'],
    ['CHECKPOINT_ASYNC_EXCEPTION', 'Asynchronous task checkpoint failed'],
    ['TASK_FAILURE', 'Task has failed'],
    ['TASK_CHECKPOINT_FAILURE', 'Task local checkpoint failure'],
    ['FINALIZE_CHECKPOINT_FAILURE', 'Failure to finalize checkpoint'],
  ];
  for (const [reason, text] of known) if (message.includes(text) || message.includes(reason)) return reason;
  for (const reason of FailureReason.options) if (message.includes(reason)) return reason;
  return 'CHECKPOINT_DECLINED';
}

function persist(d: Decider, c: CommandOf<'PersistSnapshot'>): Replies['PersistSnapshot'] {
  const snapshot = requireSnapshot(d.state, c.snapshotId);
  requireStatus(snapshot, ['COMPLETED'], 'persist');
  const restorePath = snapshot.externalPath;
  if (snapshot.kind === 'SAVEPOINT') return { savepointPath: restorePath, restorePath, changed: false };
  if (snapshot.persisted) return { savepointPath: snapshot.persistedPath!, restorePath, changed: false };
  if (d.state.source) return persistManaged(d, snapshot, c.targetDirectory ?? d.state.storage.savepointDir);
  const path = persistTo(d, snapshot, c.targetDirectory ?? d.state.storage.savepointDir, 'USER');
  return { savepointPath: path, restorePath, changed: true };
}

/**
 * R67: Flink owns a managed job's checkpoints and deletes them when it subsumes them; nothing outside Flink
 * can stop that. Persisting one takes a NATIVE savepoint of the job at once (FLIP-10's persist, as close as
 * Flink allows), which records the checkpoint it stands for. Asked again, it answers that savepoint.
 */
function persistManaged(d: Decider, checkpoint: SnapshotState, dir: string): Replies['PersistSnapshot'] {
  const s = d.state;
  const triggerId = `persist-${checkpoint.snapshotId}`;
  const existing = s.triggers.get(triggerId);
  if (existing !== undefined) {
    const savepoint = s.snapshots.get(existing)!;
    return {
      savepointPath: savepoint.externalPath,
      restorePath: savepoint.externalPath,
      changed: false,
      savepointSnapshotId: existing,
    };
  }
  if (s.status !== 'RUNNING') {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'managed-persist-running',
      `persisting checkpoint ${checkpoint.snapshotId} of a managed job takes a savepoint of the job, which is ${s.status}, not RUNNING`,
    );
  }
  const snapshotId = s.nextSnapshotId;
  const externalPath = savepointPath(dir, s.jobId, `${snapshotId}/${triggerId}`);
  d.emit({
    type: 'SnapshotTriggered',
    snapshotId,
    kind: 'SAVEPOINT',
    triggerType: 'MANUAL',
    triggerId,
    properties: propertiesFor('SAVEPOINT', s.checkpointing.retention),
    formatType: 'NATIVE',
    checkpointType: 'FULL',
    ...versionsOf(s.jobVersion, s.flinkVersion),
    tasks: s.tasks,
    deadline: new Date(d.now + s.checkpointing.timeoutMs).toISOString(),
    externalPath,
    standsFor: checkpoint.snapshotId,
  });
  return {
    savepointPath: externalPath,
    restorePath: externalPath,
    changed: true,
    savepointSnapshotId: snapshotId,
  };
}

function persistTo(d: Decider, snapshot: SnapshotState, dir: string, cause: 'USER' | 'JOB_FAILED'): string {
  // The directory snapcat's manifest is written to (R39); Flink restores from the checkpoint's own (R57).
  const path = savepointPath(dir, d.state.jobId, `${snapshot.snapshotId}/${snapshot.triggerId}`);
  d.emit({ type: 'SnapshotPersisted', snapshotId: snapshot.snapshotId, savepointPath: path, cause });
  return path;
}

function requestDiscard(d: Decider, c: CommandOf<'RequestDiscard'>): Replies['RequestDiscard'] {
  const snapshot = requireSnapshot(d.state, c.snapshotId);
  if (snapshot.status === 'DISCARDING' || snapshot.status === 'DISCARDED') {
    return { snapshotStatus: snapshot.status, changed: false };
  }
  requireStatus(snapshot, ['COMPLETED'], 'discard');
  const isLatest = latestCompleted(d.state)?.snapshotId === snapshot.snapshotId;
  if (isLatest && d.state.status === 'RUNNING' && !c.force) {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'latest-completed-retained',
      `snapshot ${snapshot.snapshotId} is the latest completed snapshot of a running job; set force to discard it`,
    );
  }
  requestDiscardOf(d, snapshot, 'USER', c.reason);
  return { snapshotStatus: 'DISCARDING', changed: true };
}

/** Requests the discard of a snapshot with what it deletes and keeps (Flink's `SharedStateRegistry`: only what no other live snapshot references). */
/**
 * What an event says it keeps (decision 0022): every location `mustList` names (what a deletion must leave),
 * and of the others the first KEPT_ELSEWHERE_LISTED, counting the rest in `keptUnlisted`. Listing each
 * shared file an incremental checkpoint still references (thousands for a wide job) would make one
 * completion's events outgrow what the store takes in one append.
 */
function keptListed(
  kept: KeptLocation[],
  mustList: (location: KeptLocation) => boolean,
): { kept: KeptLocation[]; keptUnlisted?: number } {
  const elsewhere = kept.filter((k) => !mustList(k));
  if (elsewhere.length <= KEPT_ELSEWHERE_LISTED) return { kept };
  const unlisted = new Set(elsewhere.slice(KEPT_ELSEWHERE_LISTED));
  return { kept: kept.filter((k) => !unlisted.has(k)), keptUnlisted: unlisted.size };
}

function requestDiscardOf(d: Decider, snapshot: SnapshotState, cause: DiscardCause, reason?: string): void {
  // R67: of a managed job snapcat deletes nothing itself; Flink disposes of a completed savepoint (through the
  // connector) and owns the rest (its checkpoints, what a failed snapshot left behind).
  const plan = d.state.source
    ? {
        locations:
          (snapshot.kind === 'SAVEPOINT' || snapshot.imported) && snapshot.status === 'COMPLETED'
            ? [snapshot.externalPath]
            : [],
        stateHandles: [],
        kept: [],
      }
    : planDiscard(
        d.state.sharedState,
        snapshot.snapshotId,
        stateHandlesOf(snapshot),
        directoriesOf(snapshot),
      );
  // The deletion must know what to leave inside the directories it deletes; what it keeps elsewhere is
  // listed up to a bound (decision 0022).
  const directories = plan.locations.map(normaliseLocation);
  d.emit({
    type: 'SnapshotDiscardRequested',
    snapshotId: snapshot.snapshotId,
    cause,
    ...(reason !== undefined ? { reason } : {}),
    locations: plan.locations,
    stateHandles: plan.stateHandles,
    ...keptListed(plan.kept, (k) => directories.some((directory) => isWithin(k.path, directory))),
  });
  // Nothing for snapcat to delete of a managed job's snapshot but a savepoint Flink disposes of: done now.
  if (d.state.source && plan.locations.length === 0) {
    d.emit({ type: 'SnapshotDiscarded', snapshotId: snapshot.snapshotId, bytesReclaimed: 0 });
  }
}

function recordDiscardCompleted(
  d: Decider,
  c: CommandOf<'RecordDiscardCompleted'>,
): Replies['RecordDiscardCompleted'] {
  const snapshot = requireDiscardRequested(d.state, c.snapshotId);
  if (snapshot.discard!.state === 'DONE') return { snapshotStatus: snapshot.status, changed: false };
  d.emit({ type: 'SnapshotDiscarded', snapshotId: c.snapshotId, bytesReclaimed: c.bytesReclaimed });
  return { snapshotStatus: d.state.snapshots.get(c.snapshotId)!.status, changed: true };
}

function recordDiscardFailed(
  d: Decider,
  c: CommandOf<'RecordDiscardFailed'>,
): Replies['RecordDiscardFailed'] {
  const snapshot = requireDiscardRequested(d.state, c.snapshotId);
  if (snapshot.discard!.state === 'DONE') {
    throw new CommandRejected('CONFLICT', 'snapshotId', 'discard-pending', 'the discard already succeeded');
  }
  d.emit({ type: 'SnapshotDiscardFailed', snapshotId: c.snapshotId, error: c.error, retryable: c.retryable });
  return { snapshotStatus: snapshot.status };
}

function requireSnapshot(s: JobState, snapshotId: number): SnapshotState {
  const snapshot = s.snapshots.get(snapshotId);
  if (!snapshot) {
    throw new CommandRejected(
      'NOT_FOUND',
      'snapshotId',
      'snapshot-exists',
      `snapshot ${snapshotId} does not exist`,
    );
  }
  return snapshot;
}

function requireStatus(snapshot: SnapshotState, allowed: SnapshotStatus[], action: string): void {
  if (!allowed.includes(snapshot.status)) {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      `status-${allowed.join('-or-').toLowerCase()}`,
      `cannot ${action} snapshot ${snapshot.snapshotId}: it is ${snapshot.status}, not ${allowed.join(' or ')}`,
    );
  }
}

function requireDiscardRequested(s: JobState, snapshotId: number): SnapshotState {
  const snapshot = requireSnapshot(s, snapshotId);
  if (!snapshot.discard) {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'discard-requested',
      `snapshot ${snapshotId} has no discard requested`,
    );
  }
  return snapshot;
}

/** The versions an event records (R61): those known, the unknown ones left out. */
function versionsOf(
  jobVersion: string | null | undefined,
  flinkVersion: string | null | undefined,
): { jobVersion?: string; flinkVersion?: string } {
  return {
    ...(jobVersion != null ? { jobVersion } : {}),
    ...(flinkVersion != null ? { flinkVersion } : {}),
  };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
