import { DEFAULT_NAMESPACE, grantsNamespace, type NamespaceGrant } from './namespaces';
import type { Command, CommandOf } from './commands';
import { CommandRejected } from './errors';
import type { Event } from './events';
import { durationMs } from './duration';
import { checkpointPath, fnv1a, periodicTriggerId, restorePath, savepointPath } from './paths';
import { discardsOn, flinkRetentionPolicy, persistedProperties, propertiesFor } from './properties';
import {
  isTerminal,
  type AckResult,
  type ClaimMode,
  type DiscardCause,
  FailureReason,
  type FlinkCheckpointReport,
  type JobStatus,
  type KeptLocation,
  type SnapshotKind,
  type SnapshotProperties,
  type SnapshotStatus,
} from './schemas';
import {
  Draft,
  FINISHED_SNAPSHOTS_KEPT,
  statusOnceDiscarded,
  wasCompacted,
  directoriesOf,
  discardUnfinished,
  disposedByFlink,
  expectsTask,
  hasAcknowledged,
  isJobOwned,
  stateHandlesOf,
  latestCompleted,
  pendingStop,
  pendingWhere,
  planningJobOf,
  type JobState,
  type SnapshotHold,
  type SnapshotState,
  completedSnapshotAt,
  flinkCheckpointIdOf,
  checkpointTypeOf,
} from './state';
import { restorePlan } from './restore-plan';
import { inUseByManagedRun } from './holds';
import {
  deletingSnapshot,
  isSharedHandle,
  isWithin,
  normaliseLocation,
  planDiscard,
  planStrayCleanup,
  type DeletionOwner,
  type SharedStateRegistry,
} from './shared-state';

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
  /**
   * `savepointPath`: where snapcat's manifest lies (R39); `restorePath`: what Flink restores from (R57). A
   * managed job's checkpoint is persisted by a savepoint taken in Flink: `savepointSnapshotId` (R67).
   */
  PersistSnapshot:
    | { savepointPath: string; restorePath: string; changed: boolean; savepointSnapshotId?: undefined }
    | {
        /** Where Flink wrote the savepoint; null until it reports it (Flink names the directory). */
        savepointPath: string | null;
        restorePath: string | null;
        changed: boolean;
        savepointSnapshotId: number;
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
  HoldSnapshot: { changed: boolean };
  /** The snapshots released, and those of them discarded now (their own job had let them go meanwhile). */
  ReleaseSnapshotHolds: { released: number[]; discarded: number[] };
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
    /** Random characters for the names of savepoint directories (`savepointPath`), drawn on first use. */
    private readonly drawEntropy: () => string = () => '',
  ) {
    this.draft = new Draft(state);
    this.occurredAt = new Date(now).toISOString();
  }

  private drawn: string | undefined;
  /** The batch's entropy: one draw for all its savepoints (each names its own snapshot id besides). */
  entropy(): string {
    return (this.drawn ??= this.drawEntropy());
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
 *
 * `requestSizes` groups the commands into requests (a batch of acknowledgements is one): a request of
 * several commands is all or nothing. When one of its commands is refused, the batch is decided again
 * without it and each of its commands answers that refusal, so that a 4xx never leaves part of a request
 * written. Absent, each command stands alone.
 */
export function decideBatch(
  state: JobState,
  commands: readonly Command[],
  now: number,
  grants?: readonly NamespaceGrant[],
  /** Random characters for savepoint directory names (the command bus draws them; tests need none). */
  drawEntropy?: () => string,
  requestSizes?: readonly number[],
): BatchDecision {
  const requestOf = requestIndexes(commands.length, requestSizes);
  const refused = new Map<number, CommandRejected>(); // a request of several commands, by its first refusal
  for (;;) {
    const decision = decideCommands(state, commands, now, grants, drawEntropy, (i) =>
      refused.get(requestOf[i]!),
    );
    let again = false;
    decision.outcomes.forEach((outcome, i) => {
      const request = requestOf[i]!;
      if (outcome.ok || refused.has(request) || !isMany(request, requestSizes)) return;
      refused.set(request, outcome.error.at(i - requestOf.indexOf(request)));
      again = true;
    });
    if (!again) return decision;
  }
}

function decideCommands(
  state: JobState,
  commands: readonly Command[],
  now: number,
  grants: readonly NamespaceGrant[] | undefined,
  drawEntropy: (() => string) | undefined,
  refusedRequest: (command: number) => CommandRejected | undefined,
): BatchDecision {
  const decider = new Decider(state, now, drawEntropy);
  const outcomes = commands.map((command, i): Outcome => {
    const refused = refusedRequest(i);
    if (refused) return { ok: false, error: refused, events: [] };
    const start = decider.events.length;
    try {
      const grant = grants?.[i] ?? '*';
      if (grant !== '*') requireNamespace(decider.state, command, grant);
      if (command.type !== 'ConfigureJob' && !decider.state.registered) throw notRegistered(command.jobId);
      const expired = decider.state.registered ? expireOverdue(decider) : [];
      const reply = decideCommand(decider, command, expired);
      return { ok: true, reply, events: decider.events.slice(start) };
    } catch (error) {
      if (!(error instanceof CommandRejected)) throw error;
      return { ok: false, error, events: decider.events.slice(start) };
    }
  });
  return { events: decider.events, outcomes, state: decider.seal() };
}

/** Each command's request, by index (every command its own when the sizes are not given). */
function requestIndexes(count: number, sizes: readonly number[] | undefined): number[] {
  if (!sizes) return Array.from({ length: count }, (_, i) => i);
  return sizes.flatMap((size, request) => Array<number>(size).fill(request));
}

const isMany = (request: number, sizes: readonly number[] | undefined) => (sizes?.[request] ?? 1) > 1;

/** The 404 of a command on a job that is not registered (or, to a caller limited to others, another namespace's). */
export const notRegistered = (jobId: string) =>
  new CommandRejected('NOT_FOUND', 'jobId', 'job-exists', `job ${jobId} is not registered`);

/**
 * Issue 18: a job outside the caller's namespaces is answered as if it did not exist (its existence is not
 * revealed); registering a job in a namespace the caller may not act in is forbidden. Checked per command,
 * on the state the command is decided on, so a job registered earlier in the same batch counts. A
 * registration is checked against the namespace it asks for first, whether or not the id is taken in
 * another namespace, so that a refusal tells nothing of other namespaces; only a caller who may register
 * in that namespace learns that the id is taken (NOT_FOUND), as job ids are global.
 */
function requireNamespace(state: JobState, command: Command, grant: readonly string[]): void {
  const visible = state.registered && grantsNamespace(grant, state.namespace);
  if (command.type === 'ConfigureJob' && !visible) {
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
  if (state.registered && !visible) throw notRegistered(command.jobId);
}

function decideCommand(decider: Decider, command: Command, expired: number[]): Replies[Command['type']] {
  switch (command.type) {
    case 'ConfigureJob':
      return configureJob(decider, command);
    case 'ChangeJobStatus':
      return { status: command.status, changed: changeStatus(decider, command.status) };
    case 'TriggerSnapshot':
      return trigger(decider, command);
    case 'AcknowledgeTask':
      return acknowledge(decider, command);
    case 'DeclineTask':
      return decline(decider, command);
    case 'RestoreSnapshot':
      return restore(decider, command);
    case 'PersistSnapshot':
      return persist(decider, command);
    case 'RequestDiscard':
      return requestDiscard(decider, command);
    case 'RecordDiscardCompleted':
      return recordDiscardCompleted(decider, command);
    case 'RecordDiscardFailed':
      return recordDiscardFailed(decider, command);
    case 'ExpireOverdue':
      return { expired };
    case 'SetSavepointSchedule':
      if (sameJson(decider.state.schedule, command.schedule)) return { changed: false };
      decider.emit({ type: 'SavepointScheduleSet', schedule: command.schedule });
      return { changed: true };
    case 'RemoveSavepointSchedule':
      if (decider.state.schedule === null) return { changed: false };
      decider.emit({ type: 'SavepointScheduleRemoved' });
      return { changed: true };
    case 'FirePeriodicSavepoint':
      return firePeriodic(decider, command.slot);
    case 'ApplyRetention':
      return { discarded: applyRetention(decider) };
    case 'RecordManifestWritten':
      return recordManifest(decider, command);
    case 'RecordStrayCleanupCompleted':
      if (!decider.state.strayCleanups.has(command.cleanupId)) return { changed: false };
      decider.emit({
        type: 'StrayStateDeleted',
        cleanupId: command.cleanupId,
        bytesReclaimed: command.bytesReclaimed,
      });
      return { changed: true };
    case 'RecordFlinkCheckpoints':
      return mirrorFlinkCheckpoints(decider, command);
    case 'RecordFlinkSavepoint':
      return recordFlinkSavepoint(decider, command);
    case 'RecordFlinkCheckpointConfig':
      return recordFlinkCheckpointConfig(decider, command);
    case 'ImportSnapshot':
      return importSnapshot(decider, command);
    case 'HoldSnapshot':
      return holdSnapshot(decider, command);
    case 'ReleaseSnapshotHolds':
      return releaseSnapshotHolds(decider, command);
  }
}

/**
 * Decision 0032: another job restored from the snapshot, and its checkpoints may use the snapshot's files
 * (LEGACY, CLAIM, or NO_CLAIM until its first checkpoint: Flink's `RestoreMode`). Held, the snapshot is
 * neither subsumed, nor discarded by retention or the job's end, nor by a user.
 */
function holdSnapshot(decider: Decider, command: CommandOf<'HoldSnapshot'>): Replies['HoldSnapshot'] {
  const snapshot = requireSnapshot(decider.state, command.snapshotId);
  requireStatus(snapshot, ['COMPLETED'], 'restore another job from');
  const { holderJobId, holderRestore } = command;
  if (snapshot.heldBy?.some((hold) => hold.jobId === holderJobId && hold.restore === holderRestore)) {
    return { changed: false };
  }
  decider.emit({ type: 'SnapshotHeld', snapshotId: snapshot.snapshotId, holderJobId, holderRestore });
  return { changed: true };
}

/**
 * The holder lets go. A released snapshot its job has ended without keeping is discarded now, as the job's
 * end would have; one the running job would have subsumed goes at its next checkpoint (R31).
 */
function releaseSnapshotHolds(
  decider: Decider,
  command: CommandOf<'ReleaseSnapshotHolds'>,
): Replies['ReleaseSnapshotHolds'] {
  const released: number[] = [];
  const discarded: number[] = [];
  const { state } = decider;
  const ids = command.snapshotId !== undefined ? [command.snapshotId] : [...state.snapshots.keys()];
  const { holderJobId, throughRestore, holderRestore } = command;
  const releases = (hold: SnapshotHold) =>
    hold.jobId === holderJobId &&
    (holderRestore === undefined || hold.restore === holderRestore) &&
    (throughRestore === undefined || hold.restore <= throughRestore);
  for (const id of ids) {
    const holds = state.snapshots.get(id)?.heldBy?.filter(releases) ?? [];
    if (holds.length === 0) continue;
    for (const hold of holds) {
      decider.emit({
        type: 'SnapshotHoldReleased',
        snapshotId: id,
        holderJobId,
        holderRestore: hold.restore,
      });
    }
    released.push(id);
    const snapshot = decider.state.snapshots.get(id)!;
    const status = decider.state.status;
    const ended = snapshot.status === 'COMPLETED' && !decider.state.source && isTerminal(status);
    if (ended && discardedAtEnd(snapshot, status)) {
      requestDiscardOf(decider, snapshot, `JOB_${status}` as DiscardCause);
      discarded.push(id);
    }
  }
  return { released, discarded };
}

/**
 * R46: whether the job's end in `status` discards the snapshot (its flag for that status), for a job whose
 * snapshots snapcat deletes itself. A held one stays until its holder lets go (decision 0032), and its
 * release applies this rule then (`releaseSnapshotHolds`).
 */
function discardedAtEnd(snapshot: SnapshotState, status: JobStatus): boolean {
  return !snapshot.heldBy && discardsOn(snapshot.properties, status);
}

/** The triggerId of an imported path (R69): the same path, however written (R43), is the same import. */
export function importTriggerId(externalPath: string): string {
  return `import-${fnv1a(`snapcat import\n${normaliseLocation(externalPath)}`, 64)}`;
}

/**
 * R70: an import keeps its directory whole, so nothing in it may be on its way out: a requested discard or a
 * stray cleanup deleting the directory, or a file in it, would take part of the imported snapshot with it.
 * (A restore is not refused so: it records what the job did, and the catalogue must know it.)
 */
function requireNothingBeingDeleted(registry: SharedStateRegistry, path: string, given: string): void {
  const describe = (owner: DeletionOwner) =>
    owner < 0 ? `stray cleanup ${-owner}` : `the discard of snapshot ${owner}`;
  const covering = deletingSnapshot(registry, path);
  const inside =
    covering === undefined
      ? [...registry.deleting.entries()].find(([location]) => isWithin(location, path))
      : undefined;
  if (covering === undefined && inside === undefined) return;
  const message =
    covering !== undefined
      ? `${given} lies in what ${describe(covering)} is deleting`
      : `${given} holds ${inside![0]}, which ${describe(inside![1])} is deleting`;
  throw new CommandRejected(
    'CONFLICT',
    'externalPath',
    'being-deleted',
    `${message}: import it once that is done`,
  );
}

/**
 * R69, R70: catalogues a savepoint or retained checkpoint that exists already. It gets the next id and is
 * COMPLETED at once, owned by the user (every discard flag off: never subsumed, never discarded by the job's
 * termination), its directory owned in the shared-state registry. Importing the same path again answers
 * that snapshot; a path that is, lies in, or holds the directory of another live snapshot is refused.
 */
function importSnapshot(decider: Decider, command: CommandOf<'ImportSnapshot'>): Replies['ImportSnapshot'] {
  const state = decider.state;
  const triggerId = importTriggerId(command.externalPath);
  const existingId = state.triggers.get(triggerId);
  if (existingId !== undefined) {
    const existing = state.snapshots.get(existingId)!;
    if (existing.kind !== command.kind) {
      throw new CommandRejected(
        'CONFLICT',
        'kind',
        'import-kind',
        `${command.externalPath} was imported as ${existing.kind.toLowerCase()} ${existingId}`,
      );
    }
    return { snapshotId: existingId, status: existing.status, duplicate: true };
  }
  const path = normaliseLocation(command.externalPath);
  for (const [directory, owners] of state.sharedState.directories.entries()) {
    if (owners.length === 0) continue;
    const owner = owners[0]!;
    if (directory === path) {
      throw new CommandRejected(
        'CONFLICT',
        'externalPath',
        'already-catalogued',
        `${command.externalPath} is the directory of snapshot ${owner}`,
      );
    }
    if (isWithin(path, directory) || isWithin(directory, path)) {
      throw new CommandRejected(
        'CONFLICT',
        'externalPath',
        'overlaps-catalogued',
        isWithin(path, directory)
          ? `${command.externalPath} lies inside ${directory}, the directory of snapshot ${owner}`
          : `${command.externalPath} holds ${directory}, the directory of snapshot ${owner}: its discard would delete it`,
      );
    }
  }
  requireNothingBeingDeleted(state.sharedState, path, command.externalPath);
  const snapshotId = state.nextSnapshotId;
  decider.emit({
    type: 'SnapshotTriggered',
    snapshotId,
    kind: command.kind,
    triggerType: 'MANUAL',
    triggerId,
    // R70: the user's, whatever the job's retention: every discard flag off (a savepoint stays forced).
    properties: persistedProperties(propertiesFor(command.kind, state.checkpointing.retention)),
    formatType: command.formatType ?? 'CANONICAL',
    ...(command.kind === 'SAVEPOINT' ? { checkpointType: 'FULL' as const } : {}),
    tasks: [], // not the job's (decision 0037): no task acknowledges an imported snapshot
    deadline: decider.occurredAtIso,
    externalPath: command.externalPath,
    imported: true,
  });
  decider.emit({
    type: 'SnapshotCompleted',
    snapshotId,
    kind: command.kind,
    stateSize: command.stateSize ?? 0,
    // All of it was written for it (it names no earlier checkpoint snapcat knows): Flink's checkpointed size.
    checkpointedSize: command.stateSize ?? 0,
    externalPath: command.externalPath,
  });
  return { snapshotId, status: 'COMPLETED', duplicate: false };
}

function expireOverdue(decider: Decider): number[] {
  // Runs before every command: cheap unless a snapshot is overdue.
  let overdue: SnapshotState[] | undefined;
  for (const id of decider.state.pending) {
    const snapshot = decider.state.snapshots.get(id)!;
    if (snapshot.deadline <= decider.now) (overdue ??= []).push(snapshot);
  }
  if (!overdue) return [];
  overdue.sort((a, b) => a.snapshotId - b.snapshotId);
  for (const snapshot of overdue) fail(decider, snapshot.snapshotId, 'CHECKPOINT_EXPIRED');
  return overdue.map((snapshot) => snapshot.snapshotId);
}

/**
 * One schedule slot fires at most once: its triggerId is derived from the slot, and older slots are ignored.
 * No slot vanishes either: the schedule's slots that passed since the last one handled, and that no worker
 * presented (its worker was killed and the next fires only the newest slot), are recorded as skipped
 * (SLOT_MISSED) before the slot itself is.
 */
function firePeriodic(decider: Decider, slot: number): Replies['FirePeriodicSavepoint'] {
  const state = decider.state;
  if (!state.schedule) return { fired: false, reason: 'NO_SCHEDULE' };
  const triggerId = periodicTriggerId(state.jobId, state.schedule, slot);
  if ((state.lastSlot !== null && slot <= state.lastSlot) || state.triggers.has(triggerId)) {
    return { fired: false, reason: 'SLOT_ALREADY_HANDLED' };
  }
  const missed = missedSlots(state, slot);
  missed.slots.forEach((missedSlot, i) =>
    decider.emit({
      type: 'PeriodicSavepointSkipped',
      slot: missedSlot,
      reason: 'SLOT_MISSED',
      ...(i === 0 && missed.omitted > 0 ? { missedBefore: missed.omitted } : {}),
    }),
  );
  if (state.status !== 'RUNNING') {
    decider.emit({ type: 'PeriodicSavepointSkipped', slot, reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING' });
    return { fired: false, reason: 'NOT_ALL_REQUIRED_TASKS_RUNNING' };
  }
  // R65: a pending stop-with-savepoint stopped the periodic scheduler.
  if (pendingStop(state)) {
    decider.emit({ type: 'PeriodicSavepointSkipped', slot, reason: 'PERIODIC_SCHEDULER_SHUTDOWN' });
    return { fired: false, reason: 'PERIODIC_SCHEDULER_SHUTDOWN' };
  }
  // R50: while the previous periodic savepoint is pending the slot is skipped, as the Kubernetes operator
  // triggers none while one is in progress (SnapshotUtils.shouldTriggerSnapshot: `if (inProgress)`).
  // Overdue ones have expired already (R4), so a savepoint nobody acknowledges holds back its timeout only.
  if (pendingPeriodicSavepoint(state)) {
    decider.emit({ type: 'PeriodicSavepointSkipped', slot, reason: 'PREVIOUS_SAVEPOINT_PENDING' });
    return { fired: false, reason: 'PREVIOUS_SAVEPOINT_PENDING' };
  }
  const snapshotId = state.nextSnapshotId;
  decider.emit({
    type: 'SnapshotTriggered',
    snapshotId,
    kind: 'SAVEPOINT',
    triggerType: 'PERIODIC',
    triggerId,
    properties: propertiesFor('SAVEPOINT', state.checkpointing.retention),
    formatType: state.schedule.formatType ?? 'CANONICAL',
    ...versionsOf(state.jobVersion, state.flinkVersion),
    deadline: new Date(decider.now + triggerTimeoutMs(state)).toISOString(),
    externalPath: savepointPath(
      state.schedule.targetDirectory ?? state.storage.savepointDir,
      state.jobId,
      `${snapshotId}/${triggerId}`,
      decider.entropy(),
    ),
    slot,
  });
  return { fired: true, snapshotId, triggerId };
}

/** Whether one of the job's periodic savepoints is pending (the job has one schedule). */
const pendingPeriodicSavepoint = (state: JobState): boolean =>
  pendingWhere(state, (snapshot) => snapshot.kind === 'SAVEPOINT' && snapshot.triggerType === 'PERIODIC') !==
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
export function missedSlots(state: JobState, slot: number): { slots: number[]; omitted: number } {
  const none = { slots: [], omitted: 0 };
  if (!state.schedule?.every) return none;
  const since = Math.max(state.lastSlot ?? -Infinity, state.scheduleSince ?? -Infinity);
  if (since === -Infinity) return none;
  const period = durationMs(state.schedule.every);
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
function applyRetention(decider: Decider): number[] {
  const retention = decider.state.schedule?.retention;
  if (!retention || (retention.maxCount === undefined && retention.maxAge === undefined)) return [];
  const protectedId = isTerminal(decider.state.status)
    ? undefined
    : latestCompleted(decider.state)?.snapshotId;
  const maxAgeMs = retention.maxAge === undefined ? undefined : durationMs(retention.maxAge);
  const periodic = [...decider.state.completed]
    .reverse()
    .map((id) => decider.state.snapshots.get(id)!)
    .filter(
      // A snapshot the job restored from is no longer the schedule's (R62): CLAIM made it the job's,
      // NO_CLAIM and LEGACY the user's.
      (savepoint) =>
        savepoint.kind === 'SAVEPOINT' &&
        savepoint.triggerType === 'PERIODIC' &&
        !savepoint.persisted &&
        savepoint.claimMode === null &&
        !savepoint.heldBy &&
        !inUseByManagedRun(decider.state, savepoint),
    );
  const expired = periodic.filter(
    (savepoint, newestFirst) =>
      newestFirst > 0 &&
      savepoint.snapshotId !== protectedId &&
      ((retention.maxCount !== undefined && newestFirst >= retention.maxCount) ||
        (maxAgeMs !== undefined && decider.now - savepoint.completedAt! > maxAgeMs)),
  );
  for (const snapshot of expired) requestDiscardOf(decider, snapshot, 'RETENTION');
  return expired.map((savepoint) => savepoint.snapshotId);
}

function recordManifest(
  decider: Decider,
  command: CommandOf<'RecordManifestWritten'>,
): Replies['RecordManifestWritten'] {
  const snapshot = requireSnapshot(decider.state, command.snapshotId);
  if (!snapshot.persisted) {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'persisted',
      `snapshot ${command.snapshotId} is not persisted`,
    );
  }
  if (snapshot.manifestPath === command.path) return { changed: false };
  decider.emit({ type: 'SnapshotManifestWritten', snapshotId: command.snapshotId, path: command.path });
  return { changed: true };
}

/**
 * R67: snapcat deletes nothing of a job managed through Flink, so a job becomes managed only once its own
 * deletions are done. A discard or stray cleanup still open would never finish (nothing owes a managed job one),
 * and a discard request handled after the switch would go to Flink's disposal, which ignores what its plan keeps.
 */
function refuseManagingWhileDeleting(state: JobState): void {
  let open = state.strayCleanups.size;
  for (const snapshot of state.snapshots.values()) if (discardUnfinished(snapshot.discard)) open += 1;
  if (open === 0) return;
  throw new CommandRejected(
    'CONFLICT',
    'source',
    'deletions-open',
    `job ${state.jobId} has ${open} discard(s) or stray cleanup(s) still running: it can be managed through Flink once they are done (R67)`,
  );
}

function configureJob(decider: Decider, command: CommandOf<'ConfigureJob'>): Replies['ConfigureJob'] {
  const state = decider.state;
  const source = command.source ?? state.source;
  if (command.tasks.length === 0 && !source) {
    throw new CommandRejected(
      'INVALID',
      'tasks',
      'min-length',
      'name the tasks that acknowledge snapshots; only a job managed through Flink (source) has none (R67)',
    );
  }
  if (!state.registered) {
    decider.emit({
      type: 'JobRegistered',
      name: command.name,
      namespace: command.namespace ?? DEFAULT_NAMESPACE,
      tasks: command.tasks,
      status: command.status ?? 'RUNNING',
      checkpointing: command.checkpointing,
      storage: command.storage,
      ...versionsOf(command.jobVersion, command.flinkVersion),
      ...(source ? { source } : {}),
    });
    return { created: true, changed: true };
  }
  if (command.namespace !== undefined && command.namespace !== state.namespace) {
    throw new CommandRejected(
      'CONFLICT',
      'namespace',
      'immutable',
      `job ${command.jobId} is in namespace ${state.namespace}; a job's namespace never changes`,
    );
  }
  if (source && !state.source) refuseManagingWhileDeleting(state);
  // R61: a version left out is kept; a new one alone is a reconfiguration, so that it is recorded.
  const jobVersion = command.jobVersion ?? state.jobVersion;
  const flinkVersion = command.flinkVersion ?? state.flinkVersion;
  const configChanged =
    state.name !== command.name ||
    !sameJson(state.tasks, command.tasks) ||
    !sameJson(state.checkpointing, command.checkpointing) ||
    !sameJson(state.storage, command.storage) ||
    jobVersion !== state.jobVersion ||
    flinkVersion !== state.flinkVersion ||
    !sameJson(source, state.source);
  if (configChanged) {
    decider.emit({
      type: 'JobReconfigured',
      name: command.name,
      tasks: command.tasks,
      checkpointing: command.checkpointing,
      storage: command.storage,
      ...versionsOf(jobVersion, flinkVersion),
      ...(source ? { source } : {}),
    });
  }
  const statusChanged = command.status !== undefined && changeStatus(decider, command.status);
  return { created: false, changed: configChanged || statusChanged };
}

/**
 * Job status change. Leaving RUNNING aborts pending snapshots; a terminal status applies each retained
 * snapshot's discard flag, after persisting the newest checkpoint on FAILED when it would be discarded
 * (R38). SUSPENDED discards nothing that completed: the job will resume from it.
 */
function changeStatus(decider: Decider, to: JobStatus): boolean {
  const from = decider.state.status;
  if (from === to) return false;
  if (isTerminal(from)) {
    throw new CommandRejected('CONFLICT', 'status', 'terminal-status', `job is ${from}, a terminal status`);
  }
  decider.emit({ type: 'JobStatusChanged', from, to });
  if (to === 'RUNNING') return true;

  // Any status but RUNNING stops the checkpoint scheduler, which aborts what is pending
  // (CheckpointCoordinatorDeActivator.jobStatusChanges → stopCheckpointScheduler); a terminal one shuts
  // the coordinator down (CheckpointCoordinator.shutdown).
  const abortReason: FailureReason = isTerminal(to)
    ? 'CHECKPOINT_COORDINATOR_SHUTDOWN'
    : 'CHECKPOINT_COORDINATOR_SUSPEND';
  abortPending(decider, abortReason);
  if (!isTerminal(to)) return true;

  if (to === 'FAILED' && decider.state.checkpointing.persistOnFailure && !decider.state.source) {
    // R38 (snapcat, after FLIP-10): only the newest completed checkpoint, and only when its retention
    // would discard it (CompletedCheckpoint.shouldBeDiscardedOnShutdown); never an older one.
    const newestCheckpoint = [...decider.state.completed]
      .reverse()
      .map((id) => decider.state.snapshots.get(id)!)
      .find((snapshot) => snapshot.kind === 'CHECKPOINT');
    if (
      newestCheckpoint &&
      !newestCheckpoint.persisted &&
      discardsOn(newestCheckpoint.properties, 'FAILED')
    ) {
      persistTo(decider, newestCheckpoint, decider.state.storage.savepointDir, 'JOB_FAILED');
    }
  }
  const cause = `JOB_${to}` as DiscardCause;
  for (const id of [...decider.state.completed]) {
    const snapshot = decider.state.snapshots.get(id)!;
    if (!decider.state.source) {
      if (discardedAtEnd(snapshot, to)) requestDiscardOf(decider, snapshot, cause);
    } else if (snapshot.claimMode === 'CLAIM' || inFlinksCheckpointStore(decider.state, snapshot)) {
      // R67: a snapshot the managed job claimed, and every checkpoint it mirrored, is in Flink's checkpoint
      // store, which deletes it on shutdown as the job's checkpoint retention says
      // (DefaultCompletedCheckpointStore.shutdown, CompletedCheckpoint.shouldBeDiscardedOnShutdown):
      // recorded so, with nothing for snapcat to delete. The mirror stops at the job's end, so it would not.
      if (discardsOn(flinkOwnedProperties(decider.state, snapshot), to)) {
        requestDiscardOf(decider, snapshot, cause, DELETED_BY_FLINK);
      }
    }
    // The rest of a managed job's snapshots stay: its savepoints, unclaimed, keep every discard flag off (R62),
    // and a persisted checkpoint is catalogued as the savepoint taken for it.
  }
  return true;
}

/** R67: what Flink does with the managed job's checkpoints when it ends, and its checkpoint timeout. */
function recordFlinkCheckpointConfig(
  decider: Decider,
  command: CommandOf<'RecordFlinkCheckpointConfig'>,
): Replies['RecordFlinkCheckpointConfig'] {
  const { externalized, deleteOnCancellation, timeoutMs } = command;
  const known = decider.state.flinkRetention;
  if (!decider.state.source) {
    throw new CommandRejected(
      'CONFLICT',
      'jobId',
      'managed-job',
      `job ${decider.state.jobId} is not managed through Flink`,
    );
  }
  if (
    known?.externalized === externalized &&
    known.deleteOnCancellation === deleteOnCancellation &&
    known.timeoutMs === timeoutMs
  ) {
    return { changed: false };
  }
  decider.emit({
    type: 'FlinkCheckpointRetentionRecorded',
    externalized,
    deleteOnCancellation,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
  return { changed: true };
}

const DELETED_BY_FLINK = 'deleted by Flink';

/**
 * How long the catalogue waits for Flink's outcome of a checkpoint the mirror saw start: Flink's own timeout
 * decides it (`CheckpointCoordinator` expires it then, and the mirror records that), so the catalogue's expiry
 * is only a safety net for an outcome the mirror never sees (a JobManager failover forgets a checkpoint in
 * progress): the longer of the two timeouts, and a minute for the mirror's polls to see Flink's answer.
 */
function mirroredTimeoutMs(state: JobState): number {
  return Math.max(state.checkpointing.timeoutMs, state.flinkRetention?.timeoutMs ?? 0) + MIRROR_GRACE_MS;
}
const MIRROR_GRACE_MS = 60_000;

/**
 * How long a snapshot snapcat triggers may take. A managed job's savepoint is taken by Flink, which expires
 * it by the job's own `execution.checkpointing.timeout` (`CheckpointCoordinator`'s canceller; production jobs
 * set 30-60 minutes): the catalogue's shorter timeout failed a savepoint Flink was still writing, and a stop
 * that then ended the job (a review against a real server's timeouts). Otherwise the catalogue's.
 */
function triggerTimeoutMs(state: JobState): number {
  return state.source ? mirroredTimeoutMs(state) : state.checkpointing.timeoutMs;
}

/**
 * A checkpoint the mirror recorded from Flink's history, not persisted: Flink's store holds it alone. Its
 * end is recorded only by the retention Flink reported: a guess from the catalogue's would record checkpoints
 * Flink retained as deleted.
 */
const inFlinksCheckpointStore = (state: JobState, snapshot: SnapshotState) =>
  state.flinkRetention !== null &&
  snapshot.kind === 'CHECKPOINT' &&
  snapshot.flinkCheckpointId !== null &&
  !snapshot.persisted;

/**
 * The properties Flink gives a snapshot a managed job claimed: its checkpoints' (R62), by the retention Flink
 * reported for the job (`RecordFlinkCheckpointConfig`), else by the one the catalogue has.
 */
function flinkOwnedProperties(state: JobState, snapshot: SnapshotState): SnapshotProperties {
  return state.flinkRetention
    ? propertiesFor('CHECKPOINT', flinkRetentionPolicy(state.flinkRetention))
    : snapshot.properties;
}

function trigger(decider: Decider, command: CommandOf<'TriggerSnapshot'>): Replies['TriggerSnapshot'] {
  const state = decider.state;
  requireTriggerable(state, command);
  const duplicate = repeatedTrigger(state, command);
  if (duplicate) return duplicate;
  const properties = propertiesFor(command.kind, state.checkpointing.retention);
  const rejection = preflight(state, properties.forced, command.triggerType === 'PERIODIC', decider.now);
  if (rejection) {
    decider.emit({
      type: 'SnapshotTriggerRejected',
      kind: command.kind,
      triggerType: command.triggerType,
      triggerId: command.triggerId,
      reason: rejection,
    });
    return { accepted: false, triggerId: command.triggerId, reason: rejection };
  }
  if (command.terminate && !state.source) {
    // R65: SchedulerBase.stopWithSavepoint first stops the checkpoint scheduler, which aborts every pending
    // snapshot (CheckpointCoordinator.stopCheckpointScheduler: CHECKPOINT_COORDINATOR_SUSPEND). A managed
    // job's are Flink's: it aborts those still pending when the stop reaches it, and the mirror records what
    // it did (a walkthrough's checkpoint, completed in Flink just before the stop, was recorded FAILED).
    abortPending(decider, 'CHECKPOINT_COORDINATOR_SUSPEND');
  }
  const snapshotId = state.nextSnapshotId;
  const externalPath =
    command.kind === 'CHECKPOINT'
      ? checkpointPath(state.storage.checkpointDir, state.jobId, snapshotId)
      : savepointPath(
          command.targetDirectory ?? state.storage.savepointDir,
          state.jobId,
          `${snapshotId}/${command.triggerId}`,
          decider.entropy(),
        );
  decider.emit({
    type: 'SnapshotTriggered',
    snapshotId,
    kind: command.kind,
    triggerType: command.triggerType,
    triggerId: command.triggerId,
    properties,
    formatType: command.formatType,
    // R63: after a NO_CLAIM restore the job's first checkpoint is FULL (RecoveryClaimMode.NO_CLAIM).
    checkpointType:
      command.kind === 'SAVEPOINT' || state.fullCheckpointOwed
        ? 'FULL'
        : (command.checkpointType ?? 'INCREMENTAL'),
    // R61: the versions the trigger names, else the job's current ones.
    ...versionsOf(command.jobVersion ?? state.jobVersion, command.flinkVersion ?? state.flinkVersion),
    deadline: new Date(decider.now + triggerTimeoutMs(state)).toISOString(),
    externalPath,
    ...(command.terminate ? { terminate: command.terminate } : {}),
  });
  return { accepted: true, snapshotId, triggerId: command.triggerId, status: 'PENDING', duplicate: false };
}

/** Refuses a trigger no job could accept as asked, and a checkpoint of a job whose checkpoints Flink takes. */
function requireTriggerable(state: JobState, command: CommandOf<'TriggerSnapshot'>): void {
  if (command.kind === 'SAVEPOINT' && command.checkpointType === 'INCREMENTAL') {
    throw new CommandRejected(
      'INVALID',
      'checkpointType',
      'savepoint-is-full',
      'a savepoint is always FULL: it shares no files with other snapshots (R58)',
    );
  }
  if (state.source && command.kind === 'CHECKPOINT') {
    throw new CommandRejected(
      'CONFLICT',
      'kind',
      'managed-job-checkpoints',
      `job ${state.jobId} is managed through Flink cluster ${state.source.cluster}: Flink takes its checkpoints and the mirror records them (R68)`,
    );
  }
  if (command.terminate && command.kind !== 'SAVEPOINT') {
    throw new CommandRejected(
      'INVALID',
      'terminate',
      'stop-with-savepoint',
      'only a savepoint stops the job: stop-with-savepoint (R65)',
    );
  }
}

/**
 * The reply to a trigger whose triggerId was used before (a client's retry), if it was; reusing it for
 * another kind of snapshot is refused.
 */
function repeatedTrigger(
  state: JobState,
  command: CommandOf<'TriggerSnapshot'>,
): Replies['TriggerSnapshot'] | undefined {
  const existingId = state.triggers.get(command.triggerId);
  if (existingId === undefined) return undefined;
  const existing = state.snapshots.get(existingId)!;
  if (existing.kind !== command.kind) {
    throw new CommandRejected(
      'CONFLICT',
      'triggerId',
      'trigger-id-unique',
      `triggerId ${command.triggerId} was already used for ${existing.kind} ${existingId}`,
    );
  }
  return {
    accepted: true,
    snapshotId: existingId,
    triggerId: command.triggerId,
    status: existing.status,
    duplicate: true,
  };
}

/**
 * Flink's pre-flight checks (CheckpointRequestDecider.chooseRequestToExecute): forced triggers (savepoints)
 * skip the limits, and the minimum pause holds back periodic requests only (`!isForce() && isPeriodic`).
 */
function preflight(state: JobState, forced: boolean, periodic: boolean, now: number): FailureReason | null {
  if (state.status !== 'RUNNING') return 'NOT_ALL_REQUIRED_TASKS_RUNNING';
  // R65: a stop-with-savepoint stopped the periodic scheduler (CheckpointCoordinator.preCheckGlobalState).
  if (periodic && pendingStop(state)) return 'PERIODIC_SCHEDULER_SHUTDOWN';
  if (forced) return null;
  if (state.pending.size >= state.checkpointing.maxConcurrent) return 'TOO_MANY_CHECKPOINT_REQUESTS';
  if (
    periodic &&
    state.lastCompletedAt !== null &&
    now - state.lastCompletedAt < state.checkpointing.minPauseMs
  ) {
    return 'MINIMUM_TIME_BETWEEN_CHECKPOINTS';
  }
  return null;
}

function acknowledge(decider: Decider, command: CommandOf<'AcknowledgeTask'>): Replies['AcknowledgeTask'] {
  const snapshot = decider.state.snapshots.get(command.snapshotId);
  if (!snapshot) return strayAck(decider, command, 'UNKNOWN', null);
  if (hasAcknowledged(snapshot, command.taskId))
    return { result: 'DUPLICATE', snapshotStatus: snapshot.status };
  // A snapshot being discarded keeps no task list: whoever acknowledges it now sends garbage to clean up.
  if (snapshot.discard) return strayAck(decider, command, 'DISCARDED', snapshot.status);
  if (!expectsTask(snapshot, command.taskId)) return strayAck(decider, command, 'UNKNOWN', snapshot.status);
  if (snapshot.status !== 'PENDING') return strayAck(decider, command, 'DISCARDED', snapshot.status);
  // State that a requested discard is deleting cannot be part of a snapshot that must restore: the
  // snapshot fails, and the acknowledgement is cleaned up like any other that came too late.
  for (const handle of command.stateHandles) {
    const deleter = deletingSnapshot(decider.state.sharedState, normaliseLocation(handle.path));
    if (deleter === undefined) continue;
    const by = deleter > 0 ? `the discard of snapshot ${deleter}` : `stray cleanup ${-deleter}`;
    const message = `state handle ${handle.path} is being deleted by ${by}`;
    fail(decider, command.snapshotId, 'CHECKPOINT_DECLINED', command.taskId, message);
    return strayAck(decider, command, 'DISCARDED', 'FAILED');
  }

  // Flink's task refuses to take an incremental snapshot where a full one was asked for
  // (StreamTask.checkForcedFullSnapshotSupport): it declines instead.
  if (command.checkpointType === 'INCREMENTAL' && snapshot.requestedCheckpointType === 'FULL') {
    throw new CommandRejected(
      'CONFLICT',
      'checkpointType',
      'full-snapshot-acknowledged-incremental',
      `${snapshot.kind.toLowerCase()} ${snapshot.snapshotId} is FULL: a task that cannot take a full snapshot declines it (R58)`,
    );
  }
  requireSafeTotals(snapshot, command);
  decider.emit({
    type: 'TaskAcknowledged',
    snapshotId: command.snapshotId,
    taskId: command.taskId,
    stateSize: command.stateSize,
    stateHandles: command.stateHandles,
    ...(command.checkpointType !== undefined ? { checkpointType: command.checkpointType } : {}),
    ...(command.checkpointedSize !== undefined ? { checkpointedSize: command.checkpointedSize } : {}),
  });
  const acked = decider.state.snapshots.get(command.snapshotId)!;
  if (acked.acknowledged === acked.totalTasks) complete(decider, acked);
  return { result: 'SUCCESS', snapshotStatus: decider.state.snapshots.get(command.snapshotId)!.status };
}

/**
 * The snapshot's sizes are sums of its acknowledgements': each stays an exact integer (below 2^53), or the
 * catalogue would show rounded sizes and write an event its own schema refuses (a review).
 */
function requireSafeTotals(
  snapshot: SnapshotState,
  command: Pick<CommandOf<'AcknowledgeTask'>, 'stateSize' | 'checkpointedSize' | 'stateHandles'>,
): void {
  // On every acknowledgement (the hot path): no allocation, the handles summed only when there are any.
  let shared = snapshot.sharedStateSize;
  let exclusive = snapshot.privateStateSize;
  for (const handle of command.stateHandles) {
    if (isSharedHandle(handle)) shared += handle.sizeBytes;
    else exclusive += handle.sizeBytes;
  }
  const field =
    snapshot.stateSize + command.stateSize > Number.MAX_SAFE_INTEGER
      ? 'stateSize'
      : snapshot.checkpointedSize + (command.checkpointedSize ?? command.stateSize) > Number.MAX_SAFE_INTEGER
        ? 'checkpointedSize'
        : Math.max(shared, exclusive) > Number.MAX_SAFE_INTEGER
          ? 'stateHandles'
          : undefined;
  if (field === undefined) return;
  throw new CommandRejected(
    'INVALID',
    field,
    'maximum',
    `the snapshot's ${field === 'stateHandles' ? 'state handles’ sizes' : field} would add up to more than ${Number.MAX_SAFE_INTEGER} bytes`,
  );
}

/**
 * An acknowledgement no pending snapshot expects: recorded, so that its state handles can be cleaned up,
 * those that no live snapshot references (Flink registers a late acknowledgement's shared state before it
 * discards the rest: `CheckpointCoordinator.receiveAcknowledgeMessage`).
 */
function strayAck(
  decider: Decider,
  command: CommandOf<'AcknowledgeTask'>,
  result: 'UNKNOWN' | 'DISCARDED',
  snapshotStatus: SnapshotStatus | null,
): Replies['AcknowledgeTask'] {
  const { cleanup, kept } = planStrayCleanup(
    decider.state.sharedState,
    command.stateHandles,
    planningJobOf(decider.state),
  );
  decider.emit({
    type: 'StrayAcknowledgementReceived',
    snapshotId: command.snapshotId,
    taskId: command.taskId,
    result,
    stateSize: command.stateSize,
    stateHandles: command.stateHandles,
    cleanup,
    ...keptListed(kept, () => false),
    ...(cleanup.length > 0 ? { cleanupId: decider.state.nextCleanupId } : {}),
  });
  return { result, snapshotStatus };
}

/**
 * Completion, then Flink's subsumption: older pending checkpoints abort (CHECKPOINT_SUBSUMED); when a
 * checkpoint of the job completed, completed, non-persisted checkpoints beyond numRetained are subsumed oldest
 * first, never the latest completed one. A savepoint subsumes nothing (R31): Flink adds only checkpoints to
 * its store (`CheckpointCoordinator.completePendingCheckpoint`), so after a restore the restored snapshot stays
 * what a failover restores from until a checkpoint completes.
 */
function complete(
  decider: Decider,
  snapshot: SnapshotState,
  reported?: {
    externalPath: string;
    stateSize: number;
    checkpointedSize?: number;
    externallyAddressable?: false;
    /** When Flink completed it (R68), if it says. */
    flinkCompletedAt?: string;
  },
  stopsJob = true,
): void {
  decider.emit({
    type: 'SnapshotCompleted',
    snapshotId: snapshot.snapshotId,
    kind: snapshot.kind,
    stateSize: reported?.stateSize ?? snapshot.stateSize,
    externalPath: reported?.externalPath ?? snapshot.externalPath,
    ...(reported?.checkpointedSize !== undefined ? { checkpointedSize: reported.checkpointedSize } : {}),
    ...(reported?.externallyAddressable === false ? { externallyAddressable: false as const } : {}),
    ...(reported?.flinkCompletedAt !== undefined ? { flinkCompletedAt: reported.flinkCompletedAt } : {}),
  });
  if (snapshot.kind === 'CHECKPOINT') {
    const olderPending = pendingCheckpoints(decider.state).filter((id) => id < snapshot.snapshotId);
    for (const id of olderPending) fail(decider, id, 'CHECKPOINT_SUBSUMED');
  }
  const latestId = latestCompleted(decider.state)?.snapshotId;
  // R67: Flink subsumes a managed job's checkpoints itself; the mirror records what it deleted.
  const subsumable =
    decider.state.source || snapshot.kind !== 'CHECKPOINT' || snapshot.imported
      ? []
      : decider.state.completed
          .map((id) => decider.state.snapshots.get(id)!)
          .filter((old) => isJobOwned(old) && !old.heldBy && old.subsumedBy === undefined);
  let excess = subsumable.length - decider.state.checkpointing.numRetained;
  // R73: a checkpoint still pending may be built on a subsumed one (an incremental checkpoint reuses the
  // files of the checkpoint completed when it was triggered, and its tasks name them only when they
  // acknowledge): that one's discard waits for them, so that it deletes only what none of them named.
  const discardAwaits = pendingCheckpoints(decider.state).at(-1);
  for (const old of subsumable) {
    if (excess <= 0) break;
    if (old.snapshotId === latestId) continue;
    const waits = old.properties.discardSubsumed && discardAwaits !== undefined;
    decider.emit({
      type: 'SnapshotSubsumed',
      snapshotId: old.snapshotId,
      subsumedBy: snapshot.snapshotId,
      ...(waits ? { discardAwaits } : {}),
    });
    if (old.properties.discardSubsumed && !waits) requestDiscardOf(decider, old, 'SUBSUMED');
    excess -= 1;
  }
  // R53: a completing periodic savepoint applies its schedule's retention at once, not only on the sweep,
  // as the operator cleans up the savepoint history once it observes one complete.
  if (snapshot.kind === 'SAVEPOINT' && snapshot.triggerType === 'PERIODIC') applyRetention(decider);
  // R66: a completed stop-with-savepoint finishes the job: its tasks end once it completes
  // (StopWithSavepointTerminationHandlerImpl.handleSavepointCreationSuccess, then FINISHED); unless Flink
  // reported the job failed while stopping (StopWithSavepointStoppingException: it fails over, runs on).
  if (snapshot.terminate && stopsJob) changeStatus(decider, 'FINISHED');
  requestAwaitedDiscards(decider);
}

/**
 * R73: the discards of subsumed checkpoints that waited for the checkpoints pending when they were subsumed,
 * once none of those is pending any more (completed, its references now live in the registry, or failed).
 */
function requestAwaitedDiscards(decider: Decider): void {
  const { completed, snapshots } = decider.state;
  const lowestPending = pendingCheckpoints(decider.state)[0] ?? Infinity;
  // Its flags as they are now: one persisted while it waited is a savepoint, never discarded by subsumption
  // (R35, R36; a property run found a persisted checkpoint's savepoint directory in a SUBSUMED discard).
  const due = completed.filter((id) => {
    const { discardAwaits, discard, heldBy, properties } = snapshots.get(id)!;
    return (
      discardAwaits !== undefined &&
      properties.discardSubsumed &&
      !discard &&
      !heldBy &&
      lowestPending > discardAwaits
    );
  });
  // Each request changes the state: the snapshot is read again from the state it is decided on.
  for (const id of due) requestDiscardOf(decider, decider.state.snapshots.get(id)!, 'SUBSUMED');
}

/** The pending checkpoints' ids in order: what may be built on a completed one (a savepoint is self-contained). */
function pendingCheckpoints(state: JobState): number[] {
  return [...state.pending]
    .filter((id) => state.snapshots.get(id)!.kind === 'CHECKPOINT')
    .sort((a, b) => a - b);
}

function decline(decider: Decider, command: CommandOf<'DeclineTask'>): Replies['DeclineTask'] {
  const snapshot = requireSnapshot(decider.state, command.snapshotId);
  requireStatus(snapshot, ['PENDING'], 'decline');
  if (!expectsTask(snapshot, command.taskId)) {
    throw new CommandRejected(
      'CONFLICT',
      'taskId',
      'expected-task',
      `task ${command.taskId} is not part of snapshot ${command.snapshotId}`,
    );
  }
  // R24: the reason the task gave (CheckpointCoordinator.receiveDeclineMessage takes it from the task's
  // CheckpointException), CHECKPOINT_DECLINED when it gave none.
  fail(
    decider,
    snapshot.snapshotId,
    command.failureReason ?? 'CHECKPOINT_DECLINED',
    command.taskId,
    command.reason,
  );
  return { snapshotStatus: 'FAILED' };
}

/** Fails every pending snapshot, in id order, for the same reason (the coordinator stopping); returns their ids. */
function abortPending(decider: Decider, reason: FailureReason): number[] {
  const ids = [...decider.state.pending].sort((a, b) => a - b);
  for (const id of ids) fail(decider, id, reason);
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
  decider: Decider,
  snapshotId: number,
  reason: FailureReason,
  taskId?: string,
  message?: string,
): void {
  const countedBefore = decider.state.consecutiveFailures;
  decider.emit({
    type: 'SnapshotFailed',
    snapshotId,
    reason,
    ...(taskId !== undefined ? { taskId } : {}),
    ...(message !== undefined ? { message } : {}),
  });
  const counted = decider.state.consecutiveFailures > countedBefore;
  const failed = decider.state.snapshots.get(snapshotId)!;
  requestDiscardOf(decider, failed, 'ABORTED');
  requestAwaitedDiscards(decider);
  const { tolerableFailures } = decider.state.checkpointing;
  if (counted && decider.state.consecutiveFailures > tolerableFailures) {
    decider.emit({
      type: 'TolerableFailuresExceeded',
      snapshotId,
      consecutiveFailures: decider.state.consecutiveFailures,
      tolerableFailures,
    });
  }
}

/**
 * R62: the job (re)started from a snapshot, as `CheckpointCoordinator.restoreSavepoint` loads one: the
 * snapshot's properties follow the claim mode, the id counter continues above the restored id, and the
 * previous run's pending snapshots are aborted (CHECKPOINT_COORDINATOR_SUSPEND, not counted).
 */
function restore(decider: Decider, command: CommandOf<'RestoreSnapshot'>): Replies['RestoreSnapshot'] {
  if ((command.snapshotId === undefined) === (command.externalPath === undefined)) {
    throw new CommandRejected(
      'INVALID',
      'snapshotId',
      'snapshot-or-external-path',
      'give exactly one of snapshotId (one of the job’s snapshots) or externalPath',
    );
  }
  if (
    command.fromJobId !== undefined &&
    (command.externalPath === undefined || command.fromJobId === command.jobId)
  ) {
    throw new CommandRejected(
      'INVALID',
      'fromJobId',
      'another-job',
      'fromJobId names another job, whose snapshot externalPath is',
    );
  }
  if (command.snapshotId !== undefined && command.checkpointId !== undefined) {
    throw new CommandRejected(
      'INVALID',
      'checkpointId',
      'external-path-only',
      'checkpointId is the id of an external path’s snapshot; a snapshot of the job has its own',
    );
  }
  if (isTerminal(decider.state.status)) {
    throw new CommandRejected(
      'CONFLICT',
      'jobId',
      'terminal-status',
      `job is ${decider.state.status}, a terminal status: Flink runs a restored job as a new job`,
    );
  }
  // A path that is one of the job's own completed snapshots is that snapshot, as if named by its id: its claim
  // mode applies to it (R62), else NO_CLAIM or LEGACY would leave it the job's to subsume or discard. The path
  // is recorded as given (a persisted checkpoint has two); a checkpoint id that is not the snapshot's says
  // the path held another checkpoint then: recorded as an external path.
  const snapshotId = command.snapshotId ?? ownSnapshotAt(decider.state, command);
  let path = command.externalPath;
  if (command.snapshotId !== undefined) {
    const snapshot = requireSnapshot(decider.state, command.snapshotId);
    requireStatus(snapshot, ['COMPLETED'], 'restore from');
    const addressable = restorePath(snapshot);
    if (addressable === null) {
      throw new CommandRejected(
        'CONFLICT',
        'snapshotId',
        'externally-addressable',
        `snapshot ${snapshot.snapshotId} is not externally addressable: Flink keeps it in the JobManager's memory only`,
      );
    }
    path = addressable;
  }
  const aborted = abortPending(decider, 'CHECKPOINT_COORDINATOR_SUSPEND');
  // Flink's id of the job's own snapshot, when it is not the snapshot's (an imported `chk-N`): the ids continue
  // above it, where Flink writes its next checkpoint.
  const flinkId =
    snapshotId !== undefined ? flinkCheckpointIdOf(decider.state.snapshots.get(snapshotId)!) : undefined;
  const checkpointId =
    snapshotId === undefined ? command.checkpointId : flinkId !== snapshotId ? flinkId : undefined;
  decider.emit({
    type: 'SnapshotRestored',
    ...(snapshotId !== undefined ? { snapshotId } : {}),
    restorePath: path!,
    ...(checkpointId !== undefined ? { checkpointId } : {}),
    claimMode: command.claimMode,
    allowNonRestoredState: command.allowNonRestoredState,
    ...(command.fromJobId !== undefined ? { fromJobId: command.fromJobId } : {}),
  });
  return {
    snapshotId: snapshotId ?? null,
    restorePath: path!,
    claimMode: command.claimMode,
    aborted,
    nextSnapshotId: decider.state.nextSnapshotId,
  };
}

/**
 * R62: the job's own completed snapshot a restore's external path is (its directory, or its `_metadata`),
 * unless the restore names another job, or a checkpoint id that is not the snapshot's.
 */
function ownSnapshotAt(state: JobState, command: CommandOf<'RestoreSnapshot'>): number | undefined {
  if (command.fromJobId !== undefined || command.externalPath === undefined) return undefined;
  const snapshot = completedSnapshotAt(state, command.externalPath);
  if (!snapshot) return undefined;
  const checkpointId = flinkCheckpointIdOf(snapshot);
  return command.checkpointId === undefined || command.checkpointId === checkpointId
    ? snapshot.snapshotId
    : undefined;
}

/**
 * R67: the outcome of a managed job's savepoint, as Flink's savepoint status reports it: COMPLETED completes
 * the pending savepoint where Flink wrote it, FAILED fails it with Flink's cause (a job-level failure of a
 * savepoint: never counted, R59). Idempotent: a snapshot no longer pending answers unchanged.
 */
function recordFlinkSavepoint(
  decider: Decider,
  command: CommandOf<'RecordFlinkSavepoint'>,
): Replies['RecordFlinkSavepoint'] {
  const snapshot = requireSnapshot(decider.state, command.snapshotId);
  if (!decider.state.source || snapshot.kind !== 'SAVEPOINT') {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'managed-savepoint',
      `snapshot ${command.snapshotId} is not a savepoint of a job managed through Flink`,
    );
  }
  if (snapshot.status !== 'PENDING') return { snapshotStatus: snapshot.status, changed: false };
  const { outcome } = command;
  if (outcome.status === 'COMPLETED') {
    const reported = {
      externalPath: outcome.location,
      stateSize: outcome.stateSize ?? snapshot.stateSize,
      ...(outcome.checkpointedSize !== undefined ? { checkpointedSize: outcome.checkpointedSize } : {}),
      ...flinkTime('flinkCompletedAt', outcome.latestAckTimestamp, decider, snapshot.triggeredAt),
    };
    complete(decider, snapshot, reported, outcome.stopFailure === undefined);
  } else {
    fail(decider, snapshot.snapshotId, failureReasonOf(outcome.cause), undefined, outcome.cause);
  }
  return { snapshotStatus: decider.state.snapshots.get(command.snapshotId)!.status, changed: true };
}

/**
 * R68: the mirror of a managed job records each checkpoint Flink reports once, by Flink's id: triggered
 * while in progress, then completed (where Flink wrote it, its sizes and type) or failed (Flink's message),
 * and discarded when Flink reports it deleted (nothing for snapcat to delete: the discard is done at once),
 * or when the connector found one older than the history gone from storage (`deleted`, decision 0019).
 * A savepoint is recorded only once completed or failed, and not when it is one snapcat took (its location
 * is already a savepoint's) or while one of snapcat's savepoints is still pending (the next report, with
 * that one completed, tells them apart). A completed checkpoint Flink reports as
 * `<checkpoint-not-externally-addressable>` has no restore path.
 */
function mirrorFlinkCheckpoints(
  decider: Decider,
  command: CommandOf<'RecordFlinkCheckpoints'>,
): Replies['RecordFlinkCheckpoints'] {
  if (!decider.state.source) {
    throw new CommandRejected(
      'CONFLICT',
      'jobId',
      'managed-job',
      `job ${decider.state.jobId} is not managed through Flink: its clients report its snapshots`,
    );
  }
  const counts = { recorded: 0, completed: 0, failed: 0, discarded: 0 };
  recordFlinkRestore(decider, command.restored);
  counts.completed += recordCompletedOutOfSight(decider, command);
  for (const report of command.checkpoints) {
    let id = decider.state.flinkCheckpoints.get(report.id);
    // Recorded, finished and compacted out of the state (decision 0035): nothing left to mirror.
    if (id === undefined && report.id <= decider.state.flinkCheckpointFloor) continue;
    if (id !== undefined && !decider.state.snapshots.has(id)) continue;
    if (id !== undefined && completedAfterGivenUp(decider.state.snapshots.get(id)!, report)) id = undefined;
    if (id === undefined) {
      if (report.isSavepoint && !mirrorsSavepoint(decider.state, report)) continue;
      // A savepoint is mirrored once Flink completed it. One that failed holds no state, and has no path to
      // tell it from the catalogue's own savepoint that failed with it (that one is recorded already, through
      // Flink's asynchronous operation): mirrored, it was catalogued twice.
      if (report.isSavepoint && report.status !== 'COMPLETED') continue;
      id = recordMirrored(decider, report);
      counts.recorded += 1;
    }
    const snapshot = decider.state.snapshots.get(id)!;
    if (snapshot.status === 'PENDING' && report.status === 'COMPLETED') {
      complete(decider, snapshot, {
        externalPath: report.externalPath ?? snapshot.externalPath,
        stateSize: report.stateSize,
        checkpointedSize: report.checkpointedSize,
        ...(report.externallyAddressable === false ? { externallyAddressable: false as const } : {}),
        ...flinkTime('flinkCompletedAt', report.latestAckTimestamp, decider, snapshot.triggeredAt),
      });
      counts.completed += 1;
    } else if (snapshot.status === 'PENDING' && report.status === 'FAILED') {
      const message = report.failureMessage ?? 'Flink reported the checkpoint failed';
      fail(decider, id, failureReasonOf(message), undefined, message);
      counts.failed += 1;
    }
    const now = decider.state.snapshots.get(id)!;
    if (report.discarded && now.status === 'COMPLETED' && now.kind === 'CHECKPOINT') {
      // Flink deleted it: recorded with nothing for snapcat to delete, and done at once.
      requestDiscardOf(decider, now, 'SUBSUMED', DELETED_BY_FLINK);
      counts.discarded += 1;
    }
  }
  counts.discarded += recordDeletedOutOfSight(decider, command);
  return counts;
}

/** R68: the record of a checkpoint (or savepoint) Flink reports, as the mirror first sees it: pending. */
function recordMirrored(decider: Decider, report: FlinkCheckpointReport): number {
  const id = decider.state.nextSnapshotId;
  decider.emit({
    type: 'SnapshotTriggered',
    snapshotId: id,
    kind: report.isSavepoint ? 'SAVEPOINT' : 'CHECKPOINT',
    triggerType: report.isSavepoint ? 'MANUAL' : 'PERIODIC',
    triggerId: `flink-${report.id}`,
    properties: propertiesFor(
      report.isSavepoint ? 'SAVEPOINT' : 'CHECKPOINT',
      decider.state.checkpointing.retention,
    ),
    // A checkpoint is in the state backend's own format, NATIVE: Flink's CheckpointProperties.forCheckpoint
    // gives it CheckpointType.CHECKPOINT, which has no SavepointFormatType. A savepoint is in the one Flink
    // reports (SavepointType's format), else SavepointFormatType.DEFAULT, CANONICAL (R58).
    formatType: report.isSavepoint ? (report.savepointFormat ?? 'CANONICAL') : 'NATIVE',
    checkpointType: report.isSavepoint ? 'FULL' : report.checkpointType,
    ...versionsOf(decider.state.jobVersion, decider.state.flinkVersion),
    deadline: new Date(
      Math.max(decider.now, report.triggerTimestamp) + mirroredTimeoutMs(decider.state),
    ).toISOString(),
    externalPath:
      report.externalPath ??
      checkpointPath(decider.state.storage.checkpointDir, decider.state.jobId, report.id),
    flinkCheckpointId: report.id,
    ...flinkTime('flinkTriggeredAt', report.triggerTimestamp, decider),
  });
  return id;
}

/**
 * R68: a mirrored checkpoint the catalogue failed that Flink reports completed and still retains. Flink never
 * completes a checkpoint it failed (`PendingCheckpoint.abort` disposes of it for good), so the failure was
 * the catalogue's own guess: its safety-net expiry while the mirror could not reach Flink for longer than
 * Flink's timeout and a minute, or an abort read from a job status. Flink is the judge of its checkpoints,
 * and a failure recorded is history, so the checkpoint is recorded anew (the same trigger id and Flink id, a
 * new snapshot), completed: the restore point follows Flink's, and the failed record stays as what the
 * catalogue believed then.
 */
const completedAfterGivenUp = (snapshot: SnapshotState, report: FlinkCheckpointReport): boolean =>
  snapshot.status === 'FAILED' && report.status === 'COMPLETED' && !report.discarded;

/**
 * R68: a time Flink reported (epoch ms) as the field of a mirrored event, within what it can be: no later than
 * the decision (a JobManager's clock ahead of snapcat's) nor earlier than `notBefore` (a completion before its
 * recorded trigger). None for a time Flink does not know (0 or absent).
 */
function flinkTime<K extends 'flinkTriggeredAt' | 'flinkCompletedAt'>(
  field: K,
  reported: number | undefined,
  decider: Decider,
  notBefore = 0,
): { [key in K]?: string } {
  if (reported === undefined || reported <= 0) return {};
  const at = Math.min(decider.now, Math.max(notBefore, reported));
  return { [field]: new Date(at).toISOString() } as { [key in K]?: string };
}

/**
 * Decision 0019: the checkpoints the connector found deleted from storage after they left Flink's history,
 * which never reports them discarded: discarded by Flink, as when it does. Their count.
 */
function recordDeletedOutOfSight(decider: Decider, command: CommandOf<'RecordFlinkCheckpoints'>): number {
  let discarded = 0;
  for (const flinkId of command.deleted ?? []) {
    const id = decider.state.flinkCheckpoints.get(flinkId);
    const gone = id === undefined ? undefined : decider.state.snapshots.get(id);
    // Only what the history no longer reports: an entry it does report says itself whether it was deleted.
    if (command.checkpoints.some((report) => report.id === flinkId)) continue;
    if (gone?.status === 'COMPLETED' && gone.kind === 'CHECKPOINT' && !gone.discard) {
      requestDiscardOf(decider, gone, 'SUBSUMED', DELETED_BY_FLINK);
      discarded += 1;
    }
  }
  return discarded;
}

/**
 * Decision 0019: the pending checkpoints the connector found completed (their `_metadata` written) after they
 * left the history's sight: completed before the reports are, whose completions would abort them as subsumed
 * while Flink retains them. Their count.
 */
function recordCompletedOutOfSight(decider: Decider, command: CommandOf<'RecordFlinkCheckpoints'>): number {
  let completed = 0;
  for (const flinkId of [...(command.completed ?? [])].sort((a, b) => a - b)) {
    if (command.checkpoints.some((report) => report.id === flinkId)) continue; // the history says itself
    const pending = decider.state.snapshots.get(decider.state.flinkCheckpoints.get(flinkId) ?? -1);
    if (pending?.status !== 'PENDING' || pending.kind !== 'CHECKPOINT') continue;
    complete(decider, pending);
    completed += 1;
  }
  return completed;
}

/**
 * R68: a restore Flink reports for the first time; from another job's snapshot when the connector found one.
 * A checkpoint the mirror still holds as pending is completed first: Flink restores only a completed one
 * (`CheckpointCoordinator.restoreLatestCheckpointedStateInternal` takes `CompletedCheckpointStore
 * .getLatestCheckpoint()`), so it completed after the last poll read it, just before a JobManager failover
 * whose new history never reports it. Left pending, the next completion aborted it as subsumed while Flink
 * retained it.
 */
function recordFlinkRestore(
  decider: Decider,
  restored: CommandOf<'RecordFlinkCheckpoints'>['restored'],
): void {
  if (!restored || restored.restoreTimestamp <= (decider.state.flinkRestore?.restoredAt ?? -1)) return;
  const recorded = decider.state.flinkCheckpoints.get(restored.id);
  let snapshotId =
    (recorded !== undefined && decider.state.snapshots.has(recorded) ? recorded : undefined) ??
    (restored.externalPath === null ? undefined : snapshotAt(decider.state, restored.externalPath));
  const mirrored = snapshotId === recorded ? decider.state.snapshots.get(snapshotId ?? -1) : undefined;
  if (mirrored?.status === 'PENDING') {
    complete(decider, mirrored, {
      externalPath: restored.externalPath ?? mirrored.externalPath,
      stateSize: mirrored.stateSize,
    });
  } else if (mirrored?.status === 'FAILED' && mirrored.kind === 'CHECKPOINT') {
    // The catalogue's failure was a guess (`completedAfterGivenUp`): recorded anew, completed, as restored.
    snapshotId = recordMirrored(decider, restoredReport(mirrored, restored));
    const anew = decider.state.snapshots.get(snapshotId)!;
    complete(decider, anew, { externalPath: anew.externalPath, stateSize: mirrored.stateSize });
  }
  // Its own snapshot is no other job's, whatever the connector found.
  const fromJobId =
    snapshotId === undefined && restored.fromJobId !== decider.state.jobId ? restored.fromJobId : undefined;
  decider.emit({
    type: 'FlinkRestoreRecorded',
    flinkCheckpointId: restored.id,
    ...(snapshotId !== undefined ? { snapshotId } : {}),
    isSavepoint: restored.isSavepoint,
    ...(restored.externalPath !== null ? { externalPath: restored.externalPath } : {}),
    restoredAt: new Date(restored.restoreTimestamp).toISOString(),
    ...(fromJobId !== undefined ? { fromJobId } : {}),
  });
}

/** What is known of a checkpoint Flink restored from that the catalogue failed: its record, and where Flink read it. */
function restoredReport(
  failed: SnapshotState,
  restored: NonNullable<CommandOf<'RecordFlinkCheckpoints'>['restored']>,
): FlinkCheckpointReport {
  return {
    id: restored.id,
    status: 'COMPLETED',
    isSavepoint: false,
    checkpointType: checkpointTypeOf(failed) ?? 'FULL',
    triggerTimestamp: failed.triggeredAt,
    stateSize: failed.stateSize,
    checkpointedSize: failed.checkpointedSize,
    externalPath: restored.externalPath ?? failed.externalPath,
    discarded: false,
    failureMessage: null,
  };
}

/**
 * The catalogued snapshot at a location, if any; of the kind given, when one is. A restore looks for either
 * kind: a checkpoint the mirror never saw (an imported one, R70) is known by its location only.
 */
function snapshotAt(state: JobState, location: string, kind?: SnapshotKind): number | undefined {
  const path = normaliseLocation(location);
  for (const snapshot of state.snapshots.values()) {
    if ((kind === undefined || snapshot.kind === kind) && normaliseLocation(snapshot.externalPath) === path)
      return snapshot.snapshotId;
  }
  return undefined;
}

/** Whether the mirror records a savepoint Flink reports: not one of snapcat's (R68). */
function mirrorsSavepoint(state: JobState, report: { externalPath: string | null }): boolean {
  if (pendingWhere(state, (snapshot) => snapshot.kind === 'SAVEPOINT')) return false;
  return report.externalPath === null || snapshotAt(state, report.externalPath, 'SAVEPOINT') === undefined;
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

function persist(decider: Decider, command: CommandOf<'PersistSnapshot'>): Replies['PersistSnapshot'] {
  const snapshot = requireSnapshot(decider.state, command.snapshotId);
  requireStatus(snapshot, ['COMPLETED'], 'persist');
  const restorePath = snapshot.externalPath;
  if (snapshot.kind === 'SAVEPOINT') return { savepointPath: restorePath, restorePath, changed: false };
  if (snapshot.persisted) return { savepointPath: snapshot.persistedPath!, restorePath, changed: false };
  if (decider.state.source)
    return persistManaged(decider, snapshot, command.targetDirectory ?? decider.state.storage.savepointDir);
  const path = persistTo(
    decider,
    snapshot,
    command.targetDirectory ?? decider.state.storage.savepointDir,
    'USER',
  );
  return { savepointPath: path, restorePath, changed: true };
}

/**
 * R67: Flink owns a managed job's checkpoints and deletes them when it subsumes them; nothing outside Flink
 * can stop that. Persisting one takes a NATIVE savepoint of the job at once (FLIP-10's persist, as close as
 * Flink allows), which records the checkpoint it stands for. Asked again, it answers that savepoint.
 */
function persistManaged(
  decider: Decider,
  checkpoint: SnapshotState,
  dir: string,
): Replies['PersistSnapshot'] {
  const state = decider.state;
  // One savepoint stands for the checkpoint while it is pending or completed; once one failed or was
  // discarded, persisting again takes another, under the next trigger id free (a review: the failed one was
  // answered for good). Found by what it stands for: an earlier attempt's trigger id may be compacted away.
  for (const savepoint of state.snapshots.values()) {
    if (savepoint.standsFor !== checkpoint.snapshotId) continue;
    if (savepoint.status !== 'PENDING' && savepoint.status !== 'COMPLETED') continue;
    // Flink names the savepoint's directory: the one snapcat placed at the trigger is a guess until then.
    const written = savepoint.status === 'COMPLETED' ? savepoint.externalPath : null;
    const savepointSnapshotId = savepoint.snapshotId;
    return { savepointPath: written, restorePath: written, changed: false, savepointSnapshotId };
  }
  let attempt = 1;
  const triggerIdOf = (n: number) => `persist-${checkpoint.snapshotId}${n === 1 ? '' : `-${n}`}`;
  while (state.triggers.has(triggerIdOf(attempt))) attempt += 1;
  const triggerId = triggerIdOf(attempt);
  if (state.status !== 'RUNNING') {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'managed-persist-running',
      `persisting checkpoint ${checkpoint.snapshotId} of a managed job takes a savepoint of the job, which is ${state.status}, not RUNNING`,
    );
  }
  const snapshotId = state.nextSnapshotId;
  const externalPath = savepointPath(dir, state.jobId, `${snapshotId}/${triggerId}`, decider.entropy());
  decider.emit({
    type: 'SnapshotTriggered',
    snapshotId,
    kind: 'SAVEPOINT',
    triggerType: 'MANUAL',
    triggerId,
    properties: propertiesFor('SAVEPOINT', state.checkpointing.retention),
    formatType: 'NATIVE',
    checkpointType: 'FULL',
    ...versionsOf(state.jobVersion, state.flinkVersion),
    deadline: new Date(decider.now + triggerTimeoutMs(state)).toISOString(),
    externalPath,
    standsFor: checkpoint.snapshotId,
  });
  return { savepointPath: null, restorePath: null, changed: true, savepointSnapshotId: snapshotId };
}

function persistTo(
  decider: Decider,
  snapshot: SnapshotState,
  dir: string,
  cause: 'USER' | 'JOB_FAILED',
): string {
  // The directory snapcat's manifest is written to (R39); Flink restores from the checkpoint's own (R57).
  const path = savepointPath(
    dir,
    decider.state.jobId,
    `${snapshot.snapshotId}/${snapshot.triggerId}`,
    decider.entropy(),
  );
  decider.emit({ type: 'SnapshotPersisted', snapshotId: snapshot.snapshotId, savepointPath: path, cause });
  return path;
}

function requestDiscard(decider: Decider, command: CommandOf<'RequestDiscard'>): Replies['RequestDiscard'] {
  const snapshot = requireSnapshot(decider.state, command.snapshotId);
  const refused = snapshot.discard?.state === 'FAILED' && snapshot.discard.retryable === false;
  if (snapshot.status === 'DISCARDING' && refused && command.force) {
    // The operator's way out of a discard the storage refused for good (a file outside the storage roots):
    // recorded discarded with nothing reclaimed. The refused files stay where they are, as they must; the
    // others its plan named are no live snapshot's any more, so the orphan sweep reports them.
    decider.emit({ type: 'SnapshotDiscarded', snapshotId: snapshot.snapshotId, bytesReclaimed: 0 });
    const after = decider.state.snapshots.get(snapshot.snapshotId);
    return { snapshotStatus: after?.status ?? statusOnceDiscarded(snapshot.status), changed: true };
  }
  if (snapshot.status === 'DISCARDING' || snapshot.status === 'DISCARDED') {
    return { snapshotStatus: snapshot.status, changed: false };
  }
  requireStatus(snapshot, ['COMPLETED'], 'discard');
  // `force` is the operator's way out of a hold that would never end (a holder deleted, or restored since).
  if (snapshot.heldBy && !command.force) {
    const holders = new Set(snapshot.heldBy.map((hold) => hold.jobId)).size;
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'held-by-restore',
      // Not named: a holder may lie in a namespace the caller may not see (decision 0045).
      `snapshot ${snapshot.snapshotId} is held by ${holders} job${holders === 1 ? '' : 's'} ` +
        'restored from it (its heldBy): their checkpoints may use its files; a hold ends once none of the ' +
        'holder’s live snapshots does (decision 0032); set force to discard it anyway',
    );
  }
  if (!command.force && inUseByManagedRun(decider.state, snapshot)) {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'restored-by-running-job',
      `job ${decider.state.jobId} restored from snapshot ${snapshot.snapshotId} and runs on: its checkpoints may ` +
        "use the snapshot's files, and Flink disposes of a savepoint whole; discard it once the job ended, " +
        'or set force to discard it anyway',
    );
  }
  const isLatest = latestCompleted(decider.state)?.snapshotId === snapshot.snapshotId;
  if (!command.force) refuseWhatTheJobRestoresFrom(decider, snapshot, isLatest);
  requestDiscardOf(decider, snapshot, 'USER', command.reason);
  // R72: a checkpoint pending now may be built on the newest completed one, naming its files only when it
  // acknowledges: with that one discarded it cannot complete on them. It fails as Flink's coordinator fails a
  // checkpoint that references state its registry no longer holds (`SharedStateRegistryImpl`: "Attempt to
  // reference unknown state", at finalization: not counted). A walkthrough's completed on a deleted file.
  if (isLatest && snapshot.kind === 'CHECKPOINT') {
    for (const id of pendingCheckpoints(decider.state)) {
      const message = `checkpoint ${snapshot.snapshotId}, the newest completed one, which it may be built on, was discarded`;
      fail(decider, id, 'FINALIZE_CHECKPOINT_FAILURE', undefined, message);
    }
  }
  return { snapshotStatus: 'DISCARDING', changed: true };
}

/** R41: what the job restores from, should it restart now, is discarded only with `force`. */
function refuseWhatTheJobRestoresFrom(decider: Decider, snapshot: SnapshotState, isLatest: boolean): void {
  // Not only while RUNNING: a RESTARTING job is about to restore from it (Flink's
  // `CheckpointCoordinator.restoreLatestCheckpointedStateToAll`), a SUSPENDED one resumes from it, and so on
  // for every status that is not terminal (R34, R41).
  if (isTerminal(decider.state.status)) return;
  if (isLatest) {
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'latest-completed-retained',
      `snapshot ${snapshot.snapshotId} is the latest completed snapshot of a job that has not terminated ` +
        `(${decider.state.status}); set force to discard it`,
    );
  }
  // After a restore from an older snapshot, the given-up run's newest checkpoint has the highest id; what a
  // failover restores from is the restored snapshot until a checkpoint completes (R34, R64).
  const failover = restorePlan(decider.state, 'FAILOVER', decider.now);
  if (failover.ok && failover.snapshotId === snapshot.snapshotId) {
    // Said as it is: the restored snapshot (no checkpoint since), or the newest checkpoint, which savepoints
    // taken after it do not replace (a walkthrough's job, never restored, was told it had been).
    const why =
      decider.state.restores.latest?.snapshotId === snapshot.snapshotId
        ? 'no checkpoint completed since it was restored'
        : 'its newest completed checkpoint: a failover restores from no savepoint';
    throw new CommandRejected(
      'CONFLICT',
      'snapshotId',
      'failover-base',
      `snapshot ${snapshot.snapshotId} is what a failover of the job (${decider.state.status}) restores from ` +
        `(${why}); set force to discard it`,
    );
  }
}

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
  const elsewhere = kept.filter((location) => !mustList(location));
  if (elsewhere.length <= KEPT_ELSEWHERE_LISTED) return { kept };
  const unlisted = new Set(elsewhere.slice(KEPT_ELSEWHERE_LISTED));
  return { kept: kept.filter((location) => !unlisted.has(location)), keptUnlisted: unlisted.size };
}

/** Requests the discard of a snapshot with what it deletes and keeps (Flink's `SharedStateRegistry`: only what no other live snapshot references). */
function requestDiscardOf(
  decider: Decider,
  snapshot: SnapshotState,
  cause: DiscardCause,
  reason?: string,
): void {
  // R67: of a managed job snapcat deletes nothing itself; Flink disposes of a completed savepoint (through the
  // connector) and owns the rest (its checkpoints, imported retained ones too, what a failed snapshot left
  // behind, and a snapshot the job claimed: its later incremental checkpoints may reference the claimed
  // files, which a disposal would delete).
  const plan = decider.state.source
    ? {
        locations:
          disposedByFlink(snapshot) && snapshot.status === 'COMPLETED' && snapshot.claimMode !== 'CLAIM'
            ? [snapshot.externalPath]
            : [],
        stateHandles: [],
        kept: [],
      }
    : planDiscard(
        decider.state.sharedState,
        snapshot.snapshotId,
        stateHandlesOf(snapshot),
        directoriesOf(snapshot),
        planningJobOf(decider.state),
      );
  // The deletion must know what to leave inside the directories it deletes; what it keeps elsewhere is
  // listed up to a bound (decision 0022).
  const directories = plan.locations.map(normaliseLocation);
  decider.emit({
    type: 'SnapshotDiscardRequested',
    snapshotId: snapshot.snapshotId,
    cause,
    ...(reason !== undefined ? { reason } : {}),
    locations: plan.locations,
    stateHandles: plan.stateHandles,
    ...keptListed(plan.kept, (location) =>
      directories.some((directory) => isWithin(location.path, directory)),
    ),
  });
  // Nothing for snapcat to delete of a managed job's snapshot but a savepoint Flink disposes of: done now.
  if (decider.state.source && plan.locations.length === 0) {
    decider.emit({ type: 'SnapshotDiscarded', snapshotId: snapshot.snapshotId, bytesReclaimed: 0 });
  }
}

function recordDiscardCompleted(
  decider: Decider,
  command: CommandOf<'RecordDiscardCompleted'>,
): Replies['RecordDiscardCompleted'] {
  // Its discard was done, or it would not have been compacted (decision 0035): a retried report.
  if (wasCompacted(decider.state, command.snapshotId)) return { snapshotStatus: 'DISCARDED', changed: false };
  const snapshot = requireDiscardRequested(decider.state, command.snapshotId);
  if (snapshot.discard!.state === 'DONE') return { snapshotStatus: snapshot.status, changed: false };
  decider.emit({
    type: 'SnapshotDiscarded',
    snapshotId: command.snapshotId,
    bytesReclaimed: command.bytesReclaimed,
  });
  // Finished now: the snapshot may have left the state with this event (decision 0035).
  const after = decider.state.snapshots.get(command.snapshotId);
  return { snapshotStatus: after?.status ?? statusOnceDiscarded(snapshot.status), changed: true };
}

function recordDiscardFailed(
  decider: Decider,
  command: CommandOf<'RecordDiscardFailed'>,
): Replies['RecordDiscardFailed'] {
  const snapshot = requireDiscardRequested(decider.state, command.snapshotId);
  if (snapshot.discard!.state === 'DONE') {
    throw new CommandRejected('CONFLICT', 'snapshotId', 'discard-pending', 'the discard already succeeded');
  }
  decider.emit({
    type: 'SnapshotDiscardFailed',
    snapshotId: command.snapshotId,
    error: command.error,
    retryable: command.retryable,
  });
  return { snapshotStatus: snapshot.status };
}

function requireSnapshot(state: JobState, snapshotId: number): SnapshotState {
  const snapshot = state.snapshots.get(snapshotId);
  if (!snapshot) {
    throw new CommandRejected(
      'NOT_FOUND',
      'snapshotId',
      'snapshot-exists',
      wasCompacted(state, snapshotId)
        ? `snapshot ${snapshotId} is not in the job: its discard is done, and only the newest ${FINISHED_SNAPSHOTS_KEPT} finished snapshots stay (decision 0035)`
        : `snapshot ${snapshotId} does not exist`,
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

function requireDiscardRequested(state: JobState, snapshotId: number): SnapshotState {
  const snapshot = requireSnapshot(state, snapshotId);
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

function sameJson(left: unknown, right: unknown): boolean {
  return JSON.stringify(left) === JSON.stringify(right);
}
