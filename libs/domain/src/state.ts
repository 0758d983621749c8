import { DEFAULT_NAMESPACE } from './namespaces';
import { internProperties, persistedProperties, restoredProperties } from './properties';
import {
  COUNTED_FAILURES,
  PRE_FLIGHT_FAILURES,
  type CheckpointType,
  type CheckpointingConfig,
  type ClaimMode,
  type RecordedCheckpointingConfig,
  type DiscardCause,
  type FailureReason,
  type FormatType,
  type JobSource,
  type JobStatus,
  type SavepointSchedule,
  type SavepointType,
  type SnapshotKind,
  type StopWithSavepoint,
  type SnapshotProperties,
  type SnapshotStatus,
  type StateHandle,
  type StorageConfig,
  type TriggerType,
} from './schemas';
import type { Event, EventOf } from './events';
import { AckLog } from './ack-log';
import { LayeredMap } from './layered-map';
import { durationMs } from './duration';
import {
  EMPTY_REGISTRY,
  checkpointAreaOf,
  RegistryEditor,
  deletionIndex,
  deletingSnapshot,
  isSealed,
  isLooseLocation,
  isSharedHandle,
  jobAreaOf,
  normaliseLocation,
  planDiscard,
  savepointJobPrefixOf,
  strayCleanupOwner,
  type DiscardPlan,
  type PlanningJob,
  type SharedStateRegistry,
} from './shared-state';

export interface DiscardState {
  cause: DiscardCause;
  reason?: string;
  requestedAt: number;
  state: 'REQUESTED' | 'DONE' | 'FAILED';
  /** Once DONE; null: not known (`SnapshotDiscarded`). */
  bytesReclaimed?: number | null;
  error?: string;
  retryable?: boolean;
  attempts: number;
  /** While the discard is not done: what it is deleting (`deletionIndex` of its plan; the plan is in the event). */
  deleting?: string[];
}

/**
 * R67: of a managed job, Flink disposes of savepoints, imported ones included; the rest it owns. Not of an
 * imported retained checkpoint: Flink's disposal (`Checkpoints.disposeSavepoint`) reads its `_metadata`
 * without a shared-state registry, so `IncrementalRemoteKeyedStateHandle.discardState()` deletes its
 * `shared/` files too, which the run's later checkpoints (imported or not, catalogued or not) reference (a
 * review). A savepoint is self-contained (FLIP-203: it never shares files), so disposing of it whole is safe.
 */
export const disposedByFlink = (snapshot: Pick<SnapshotState, 'kind'>): boolean =>
  snapshot.kind === 'SAVEPOINT';

/** A discard not done yet: requested, or failed in a way a retry may mend. */
export const discardUnfinished = (discard: DiscardState | undefined): boolean =>
  discard !== undefined &&
  (discard.state === 'REQUESTED' || (discard.state === 'FAILED' && !!discard.retryable));

export interface SnapshotState {
  snapshotId: number;
  kind: SnapshotKind;
  triggerType: TriggerType;
  triggerId: string;
  formatType: FormatType;
  /** What the trigger asked Flink for (R58): FULL for every savepoint; null for a checkpoint triggered before R58. */
  requestedCheckpointType: CheckpointType | null;
  /** What the acknowledgements reported: INCREMENTAL once one did, FULL once one did and none INCREMENTAL. */
  reportedCheckpointType: CheckpointType | null;
  /**
   * The application's and Flink's version that took the snapshot (R61): the trigger's, else the job's at the
   * time; null when neither was known (every snapshot triggered before versions were recorded).
   */
  jobVersion: string | null;
  flinkVersion: string | null;
  properties: SnapshotProperties;
  status: SnapshotStatus;
  persisted: boolean;
  persistedPath?: string;
  externalPath: string;
  /**
   * The tasks that must acknowledge; emptied once a discard is requested (only the counts stay). The same
   * array as the job's task list when they are equal, so retained snapshots do not each hold a copy.
   */
  expectedTasks: string[];
  totalTasks: number;
  /**
   * Acknowledgements by task while the snapshot is pending. On completion every expected task has
   * acknowledged, so they are folded into `taskHandles` and emptied; emptied too once a discard is
   * requested, as the discard event carries the handles.
   */
  acks: AckLog;
  /**
   * Set on completion: the state handles each task reported, for the tasks that reported any (what a
   * discard deletes, what a manifest lists). Per-task sizes and times are in the log, not kept here.
   */
  taskHandles?: [string, StateHandle[]][];
  acknowledged: number;
  stateSize: number;
  /** Bytes the tasks uploaded for this snapshot (Flink's `checkpointed_size`): each ack's, or its stateSize. */
  checkpointedSize: number;
  /** Bytes of the reported handles that are shared state (marked, or in a `shared/` directory), and of the rest. */
  sharedStateSize: number;
  privateStateSize: number;
  triggeredAt: number;
  deadline: number;
  completedAt?: number;
  failedAt?: number;
  failureReason?: FailureReason;
  failureMessage?: string;
  declinedBy?: string;
  subsumedBy?: number;
  /** R73: subsumed while checkpoints up to this id were pending: discarded once they have ended. */
  discardAwaits?: number;
  discard?: DiscardState;
  /**
   * Where snapcat's manifest of a persisted checkpoint was written (R39): `snapcat-manifest.json` in its
   * `persistedPath`, or `_metadata` there when written before that name.
   */
  manifestPath?: string;
  /**
   * The claim mode of the newest restore from this snapshot (R62), null while none: CLAIM makes the job
   * its owner (subsumed and discarded like its own checkpoints), NO_CLAIM and LEGACY the user.
   */
  claimMode: ClaimMode | null;
  /** A stop-with-savepoint's request (R65), null for every other snapshot. */
  terminate: StopWithSavepoint | null;
  /** false for a managed job's checkpoint Flink keeps in memory only (R68): it has no restore path. */
  externallyAddressable: boolean;
  /**
   * Jobs restored from this snapshot whose checkpoints may use its files (decision 0032): absent while none.
   * Nothing discards a held snapshot; a user's discard is refused.
   */
  heldBy?: readonly SnapshotHold[];
  /** Flink's id of a managed job's checkpoint the mirror recorded (R68), null otherwise. */
  flinkCheckpointId: number | null;
  /** A managed job's savepoint taken to persist a checkpoint (R67): that checkpoint's id; null otherwise. */
  standsFor: number | null;
  /**
   * Imported (R69): it existed before snapcat catalogued it. The user's (never subsumed, R70), and not part
   * of the job's run: its completion resets no failure count, starts no pause, and no restore plan picks it.
   */
  imported: boolean;
}

/** Another job restored from a snapshot (decision 0032): which job, and which of its restores. */
export interface SnapshotHold {
  jobId: string;
  restore: number;
}

/** A restore of the job (R62): from one of its snapshots or from an external path. */
export interface RestoreRecord {
  /** The job's own snapshot, null for an external path. */
  snapshotId: number | null;
  /** What Flink was given. */
  restorePath: string;
  /** The restored snapshot's id when known (its own id, or the one an external path's metadata holds). */
  checkpointId: number | null;
  claimMode: ClaimMode;
  allowNonRestoredState: boolean;
  /** The other job whose snapshot it was, as the restore named it (decision 0032); null: not named. */
  fromJobId: string | null;
  restoredAt: number;
  /** The first snapshot id of the run that started from it: snapshots below it belong to earlier runs. */
  firstSnapshotId: number;
}

/** Another job an earlier restore was from, and the first snapshot id of the restore that superseded it. */
export interface FormerRestoreOwner {
  jobId: string;
  /** This job's checkpoints below it may have been taken in the run that used that job's files. */
  untilSnapshotId: number;
  /** The directory of that job's snapshot the restore named, when it named the job (`planningJobOf`). */
  restoredFrom?: string;
}

export interface JobState {
  jobId: string;
  registered: boolean;
  name: string;
  /** Who may see and act on the job (issue 18); set at registration, never changed. */
  namespace: string;
  tasks: string[];
  status: JobStatus;
  checkpointing: CheckpointingConfig;
  storage: StorageConfig;
  /**
   * The job's current application version and Flink version (R61), from its registration and
   * reconfigurations; a configuration that leaves one out keeps it. Null until one is given.
   */
  jobVersion: string | null;
  flinkVersion: string | null;
  /** The id the next snapshot gets; one counter for checkpoints and savepoints, as in Flink. */
  nextSnapshotId: number;
  /** Its live snapshots and newest finished ones (decision 0035), in id order; shared by versions (LayeredMap). */
  snapshots: ReadonlyMap<number, SnapshotState>;
  /** The snapshot each trigger id made (idempotent triggers); shared by versions like `snapshots`. */
  triggers: ReadonlyMap<string, number>;
  /** Ids of PENDING snapshots, kept so that commands do not scan every snapshot the job ever had. */
  pending: Set<number>;
  /** Ids of COMPLETED snapshots (retained, not being discarded), ascending. */
  completed: number[];
  lastCompletedAt: number | null;
  /** Running totals, so views need not scan every snapshot the job ever had. */
  counts: {
    completed: number;
    failed: number;
    discarded: number;
    /** Finished snapshots dropped from `snapshots` (decision 0035). */
    compacted: number;
  };
  /**
   * Ids of the finished snapshots still in `snapshots` (their discard done: nothing left to delete or
   * restore), ascending; at most FINISHED_SNAPSHOTS_KEPT, the greatest ids (decision 0035).
   */
  finished: number[];
  /** Which live snapshots reference each state location (decision 0011); derived from the snapshots. */
  sharedState: SharedStateRegistry;
  /** Cleanups of stray acknowledgements' state not done yet, by cleanup id: the locations each deletes. */
  strayCleanups: Map<number, string[]>;
  nextCleanupId: number;
  /**
   * Flink's `CheckpointFailureManager.continuousFailureCounter`: the failures counted since the last reset
   * (R27, R28, R59, R60). Reset by a completion newer than `lastSucceededSnapshotId` (R29) and by
   * `TolerableFailuresExceeded` (R28).
   */
  consecutiveFailures: number;
  /** How many restores the job recorded, and the newest (R62). */
  restores: { count: number; latest: RestoreRecord | null };
  /**
   * Other jobs earlier restores were from, superseded by a later restore (decision 0032): each may still
   * hold a snapshot for this job, released once nothing of this job may use its files (`formerHoldsToRelease`).
   */
  formerRestoreOwners: FormerRestoreOwner[];
  /** After a NO_CLAIM restore, until a checkpoint completes: checkpoints are triggered FULL (R63). */
  fullCheckpointOwed: boolean;
  /** A managed job's source (R67): its snapshots come from Flink; null for a job whose clients report them. */
  source: JobSource | null;
  /** What Flink does with a managed job's checkpoints when it ends (R67); null until the connector read it. */
  flinkRetention: { externalized: boolean; deleteOnCancellation: boolean; timeoutMs?: number } | null;
  /** What Flink last reported the managed job restored from (R68); null while it reported none. */
  flinkRestore: {
    flinkCheckpointId: number;
    snapshotId: number | null;
    isSavepoint: boolean;
    externalPath: string | null;
    restoredAt: number;
    /** The other job whose snapshot it was (decision 0032); absent: none, or not catalogued. */
    fromJobId?: string;
  } | null;
  /**
   * The areas Flink reported this managed job restored from (`restoredArea`; not its own checkpoint area),
   * uncatalogued runs and its own savepoints alike, in order: kept by the orphan sweep as long as the job is,
   * and no savepoint among them is disposed of while it runs (R67, `inUseByManagedRun`). A later restore (a
   * failover to the job's own checkpoint) replaces `flinkRestore`, while the job's checkpoints may still use
   * the first run's files.
   */
  flinkRestoreSources: string[];
  /**
   * The directories of the job's restores from an external path in NO_CLAIM or LEGACY, normalised, in order:
   * the user's, whose files are never the job's to delete (`planningJobOf`; R62, decision 0031), after later
   * restores too (a failover to the job's own checkpoint may still reference them).
   */
  usersRestoreDirectories: string[];
  /**
   * The mirror's record (R68): Flink's checkpoint ids recorded, and the snapshot each became, while that
   * snapshot is in the state; its entry leaves with it (decision 0035).
   */
  flinkCheckpoints: ReadonlyMap<number, number>;
  /**
   * The greatest Flink checkpoint id whose snapshot left the state (-1: none). An id at or below it that
   * `flinkCheckpoints` does not hold was recorded and compacted, or is older than anything recorded: as
   * Flink's `CheckpointCoordinator` keeps 16 ghost ids rather than every id, the mirror remembers a floor.
   */
  flinkCheckpointFloor: number;
  /** Its `countedCheckpointIds`: the snapshots counted since the last reset, each counted once (R28). */
  countedFailures: Set<number>;
  /** Its `lastSucceededCheckpointId`: the greatest id that completed, 0 before any did (R29, R60). */
  lastSucceededSnapshotId: number;
  schedule: SavepointSchedule | null;
  /** The newest schedule slot (epoch ms) that fired or was skipped; older ones never fire again. */
  lastSlot: number | null;
  /**
   * When the schedule's timing (`every`, `cron`, `tz`) was last set (epoch ms), null without a schedule: its
   * slots before then are not missed, it did not exist (a change of retention or directory keeps it).
   */
  scheduleSince: number | null;
  registeredAt: number | null;
  updatedAt: number | null;
  /** How many events have been folded into this state. */
  version: number;
}

export function initialState(jobId: string): JobState {
  return {
    jobId,
    registered: false,
    name: '',
    namespace: DEFAULT_NAMESPACE,
    tasks: [],
    status: 'RUNNING',
    checkpointing: {
      numRetained: 1,
      timeoutMs: 600_000,
      maxConcurrent: 1,
      minPauseMs: 0,
      tolerableFailures: 0,
      retention: 'NEVER_RETAIN_AFTER_TERMINATION',
      persistOnFailure: true,
    },
    storage: { checkpointDir: '/', savepointDir: '/' },
    jobVersion: null,
    flinkVersion: null,
    nextSnapshotId: 1,
    snapshots: LayeredMap.of(),
    triggers: LayeredMap.of(),
    pending: new Set(),
    completed: [],
    lastCompletedAt: null,
    counts: { completed: 0, failed: 0, discarded: 0, compacted: 0 },
    finished: [],
    sharedState: EMPTY_REGISTRY,
    strayCleanups: new Map(),
    nextCleanupId: 1,
    consecutiveFailures: 0,
    restores: { count: 0, latest: null },
    formerRestoreOwners: [],
    fullCheckpointOwed: false,
    source: null,
    flinkRetention: null,
    flinkRestore: null,
    flinkRestoreSources: [],
    usersRestoreDirectories: [],
    flinkCheckpoints: LayeredMap.of(),
    flinkCheckpointFloor: -1,
    countedFailures: new Set(),
    lastSucceededSnapshotId: 0,
    schedule: null,
    lastSlot: null,
    scheduleSince: null,
    registeredAt: null,
    updatedAt: null,
    version: 0,
  };
}

/**
 * How many finished snapshots a job's state keeps (decision 0035): the rest leave it, so that a job's state
 * grows with its live snapshots, not with its age. Flink keeps less: the ids of 16 recent checkpoints
 * (CheckpointCoordinator.NUM_GHOST_CHECKPOINT_IDS) and a statistics history of `web.checkpoints.history`
 * (10 by default, CheckpointStatsTracker). The read model keeps every snapshot's last view.
 */
export const FINISHED_SNAPSHOTS_KEPT = 100;

/** Whether nothing is left of the snapshot to delete, restore or hold: its discard is done. */
export const isFinished = (snapshot: SnapshotState): boolean =>
  snapshot.discard?.state === 'DONE' && !snapshot.heldBy?.length;

/**
 * Whether the id may be of a snapshot compacted out of the state (decision 0035): an id missing below the
 * finished ones kept. (Ids a restore's jump skipped look the same; either way, it is not in the state.)
 */
export const wasCompacted = (state: JobState, snapshotId: number): boolean =>
  state.counts.compacted > 0 &&
  snapshotId > 0 &&
  snapshotId < (state.finished[0] ?? state.nextSnapshotId) &&
  !state.snapshots.has(snapshotId);

/** A snapshot's status once its discard is done: DISCARDED if it was being discarded, else as it was (FAILED). */
export const statusOnceDiscarded = (status: SnapshotStatus): SnapshotStatus =>
  status === 'DISCARDING' ? 'DISCARDED' : status;

/** Told of each snapshot a fold drops from the state (decision 0035), as it was last: its final view. */
export type OnCompacted = (snapshot: SnapshotState) => void;

/**
 * Folds events into a state without touching the given one. Containers are copied once per fold and
 * each snapshot at most once, so folding a batch costs O(snapshots + events), not O(snapshots x events).
 */
export function fold(state: JobState, events: readonly Event[], onCompacted?: OnCompacted): JobState {
  const draft = new Draft(state, onCompacted);
  for (const event of events) draft.apply(event);
  return draft.seal();
}

export function evolve(state: JobState, event: Event): JobState {
  return fold(state, [event]);
}

/** Shared by every completed snapshot whose tasks reported no state handles (never mutated). */
const NO_TASK_HANDLES: [string, StateHandle[]][] = [];

/** A completed snapshot's handles by task, the one shared empty list when no task reported any. */
export const retainedTaskHandles = (reported: [string, StateHandle[]][]): [string, StateHandle[]][] =>
  reported.length > 0 ? reported : NO_TASK_HANDLES;

/** The containers a draft copies on its first change, as the draft changes them. */
interface WritableContainers {
  snapshots: LayeredMap<number, SnapshotState>;
  triggers: LayeredMap<string, number>;
  flinkCheckpoints: LayeredMap<number, number>;
  pending: Set<number>;
  completed: number[];
  finished: number[];
  counts: JobState['counts'];
  strayCleanups: Map<number, string[]>;
  countedFailures: Set<number>;
}
type SharedContainer = keyof WritableContainers;
const COPY: { [K in SharedContainer]: (value: JobState[K]) => WritableContainers[K] } = {
  countedFailures: (set) => new Set(set),
  // These grow with the job's history: a new layer over the shared map, not a copy of it.
  snapshots: (map) => LayeredMap.editOf(map),
  triggers: (map) => LayeredMap.editOf(map),
  flinkCheckpoints: (map) => LayeredMap.editOf(map),
  pending: (set) => new Set(set),
  completed: (list) => [...list],
  finished: (list) => [...list],
  counts: (counts) => ({ ...counts }),
  strayCleanups: (map) => new Map(map),
};

const CONTAINER_BITS: { [K in SharedContainer]: number } = {
  snapshots: 1,
  triggers: 2,
  flinkCheckpoints: 4,
  pending: 8,
  completed: 16,
  finished: 32,
  counts: 64,
  strayCleanups: 128,
  countedFailures: 256,
};

/** A private, mutable copy of a state; the decider emits into one so each command sees its own events. */
export class Draft {
  readonly state: JobState;
  /** Snapshots copied into this draft (changed by it); made on the first. */
  private copiedSnapshots: Set<number> | undefined;
  /**
   * Containers copied into this draft, as bits of CONTAINER_BITS: each is copied on its first change, so a
   * batch of acknowledgements copies only the snapshot map, not the trigger index or the lists. (A Set here
   * was one more allocation per command on the hot paths, bench #9's firing and #1's acks.)
   */
  private copiedContainers = 0;

  /** The registry being edited, from the first change on; sealed into the state by `seal()`. */
  private registry: RegistryEditor | undefined;

  constructor(
    base: JobState,
    private readonly onCompacted?: OnCompacted,
  ) {
    // An unsealed base would share the maps a previous draft still edits in place.
    if (!isSealed(base.sharedState)) throw new Error('a draft of a state whose draft was never sealed');
    this.state = { ...base };
  }

  /** The state with every change made immutable; the draft must not be used afterwards. */
  seal(): JobState {
    if (this.registry) this.state.sharedState = this.registry.seal();
    this.registry = undefined;
    return this.state;
  }

  /** The registry to edit: the draft's state reads it as it is edited, until `seal()`. */
  private editRegistry(): RegistryEditor {
    if (!this.registry) {
      this.registry = new RegistryEditor(this.state.sharedState);
      this.state.sharedState = this.registry;
    }
    return this.registry;
  }

  /** The draft's copy of a container, to change (copied on the first call). */
  private writable<K extends SharedContainer>(container: K): WritableContainers[K] {
    if ((this.copiedContainers & CONTAINER_BITS[container]) === 0) {
      this.copiedContainers |= CONTAINER_BITS[container];
      const copy = COPY[container] as (value: JobState[K]) => WritableContainers[K];
      this.state[container] = copy(this.state[container]) as JobState[K];
    }
    return this.state[container] as WritableContainers[K];
  }

  /** `at` is `event.occurredAt` as epoch ms, when the caller has it (a decision): no parse per event. */
  apply(event: Event, at = Date.parse(event.occurredAt)): void {
    this.state.version += 1;
    this.state.updatedAt = at;
    // A switch, not a table of handlers: this is the hot path of replay and of every command.
    switch (event.type) {
      case 'JobRegistered':
        return this.jobRegistered(event, at);
      case 'JobReconfigured':
        return this.jobReconfigured(event);
      case 'JobStatusChanged':
        this.state.status = event.to;
        return;
      case 'SnapshotTriggered':
        return this.snapshotTriggered(event, at);
      case 'StrayAcknowledgementReceived':
        return this.strayAcknowledgementReceived(event);
      case 'StrayStateDeleted':
        return this.strayStateDeleted(event);
      case 'SnapshotTriggerRejected':
        return;
      case 'TolerableFailuresExceeded':
        // R28: crossing the threshold clears the count (CheckpointFailureManager.checkFailureAgainstCounter:
        // `clearCount()` before the job is failed), so the next tolerableFailures + 1 failures cross it again.
        return this.clearFailureCount();
      case 'TaskAcknowledged':
        return this.taskAcknowledged(event);
      case 'SnapshotCompleted':
        return this.snapshotCompleted(event, at);
      case 'SnapshotFailed':
        return this.snapshotFailed(event, at);
      case 'SnapshotSubsumed': {
        const snapshot = this.snapshot(event.snapshotId);
        snapshot.subsumedBy = event.subsumedBy;
        if (event.discardAwaits !== undefined) snapshot.discardAwaits = event.discardAwaits;
        return;
      }
      case 'SnapshotHeld': {
        const snapshot = this.snapshot(event.snapshotId);
        const hold = { jobId: event.holderJobId, restore: event.holderRestore };
        snapshot.heldBy = [...(snapshot.heldBy ?? []), hold];
        return;
      }
      case 'SnapshotHoldReleased': {
        const snapshot = this.snapshot(event.snapshotId);
        const heldBy = (snapshot.heldBy ?? []).filter(
          (hold) => hold.jobId !== event.holderJobId || hold.restore !== event.holderRestore,
        );
        // Left present (undefined), not deleted: every snapshot keeps one hidden class (`snapshotRecord`).
        snapshot.heldBy = heldBy.length > 0 ? heldBy : undefined;
        return;
      }
      case 'SnapshotRestored':
        return this.snapshotRestored(event, at);
      case 'SnapshotPersisted':
        return this.snapshotPersisted(event);
      case 'SnapshotDiscardRequested':
        return this.snapshotDiscardRequested(event, at);
      case 'SnapshotDiscarded':
        return this.snapshotDiscarded(event);
      case 'SnapshotDiscardFailed':
        return this.snapshotDiscardFailed(event);
      case 'SnapshotManifestWritten':
        this.snapshot(event.snapshotId).manifestPath = event.path;
        return;
      case 'SavepointScheduleSet':
        return this.savepointScheduleSet(event, at);
      case 'SavepointScheduleRemoved':
        this.state.schedule = null;
        this.state.scheduleSince = null;
        return;
      case 'PeriodicSavepointSkipped':
        this.state.lastSlot = Math.max(this.state.lastSlot ?? 0, event.slot);
        return;
      case 'FlinkRestoreRecorded':
        return this.flinkRestoreRecorded(event);
      case 'FlinkCheckpointRetentionRecorded':
        return this.flinkRetentionRecorded(event);
    }
  }

  private jobRegistered(event: EventOf<'JobRegistered'>, at: number): void {
    const { state } = this;
    state.registered = true;
    state.registeredAt = at;
    state.name = event.name;
    state.namespace = event.namespace ?? DEFAULT_NAMESPACE;
    state.tasks = event.tasks;
    state.status = event.status;
    state.checkpointing = checkpointingOf(event.checkpointing);
    state.storage = event.storage;
    state.jobVersion = event.jobVersion ?? null;
    state.flinkVersion = event.flinkVersion ?? null;
    state.source = event.source ?? null;
  }

  private jobReconfigured(event: EventOf<'JobReconfigured'>): void {
    const { state } = this;
    state.name = event.name;
    state.tasks = event.tasks;
    state.checkpointing = checkpointingOf(event.checkpointing);
    state.storage = event.storage;
    // Absent: unchanged (R61); a version is replaced, never removed.
    state.jobVersion = event.jobVersion ?? state.jobVersion;
    state.flinkVersion = event.flinkVersion ?? state.flinkVersion;
    state.source = event.source ?? state.source;
  }

  private snapshotTriggered(event: EventOf<'SnapshotTriggered'>, at: number): void {
    const { state } = this;
    // Absent from schema version 2 on: the job's tasks (decision 0037); a list equal to them is shared.
    const tasks = event.tasks === undefined || sameList(event.tasks, state.tasks) ? state.tasks : event.tasks;
    this.writable('snapshots').set(
      event.snapshotId,
      snapshotRecord({
        snapshotId: event.snapshotId,
        kind: event.kind,
        triggerType: event.triggerType,
        triggerId: event.triggerId,
        formatType: event.formatType,
        requestedCheckpointType: event.checkpointType ?? (event.kind === 'SAVEPOINT' ? 'FULL' : null),
        reportedCheckpointType: null,
        jobVersion: event.jobVersion ?? null,
        flinkVersion: event.flinkVersion ?? null,
        properties: internProperties(event.properties),
        status: 'PENDING',
        persisted: false,
        externalPath: event.externalPath,
        expectedTasks: tasks,
        totalTasks: tasks.length,
        acks: new AckLog(),
        acknowledged: 0,
        stateSize: 0,
        checkpointedSize: 0,
        sharedStateSize: 0,
        privateStateSize: 0,
        triggeredAt: event.flinkTriggeredAt ? Date.parse(event.flinkTriggeredAt) : at,
        deadline: Date.parse(event.deadline),
        claimMode: null,
        terminate: event.terminate ?? null,
        externallyAddressable: true,
        flinkCheckpointId: event.flinkCheckpointId ?? null,
        standsFor: event.standsFor ?? null,
        imported: event.imported ?? false,
      }),
    );
    (this.copiedSnapshots ??= new Set()).add(event.snapshotId);
    if (event.flinkCheckpointId !== undefined) {
      this.writable('flinkCheckpoints').set(event.flinkCheckpointId, event.snapshotId);
    }
    this.writable('triggers').set(event.triggerId, event.snapshotId);
    this.writable('pending').add(event.snapshotId);
    state.nextSnapshotId = Math.max(state.nextSnapshotId, event.snapshotId + 1);
    if (event.slot !== undefined) state.lastSlot = Math.max(state.lastSlot ?? 0, event.slot);
    this.editRegistry().ownDirectory(event.snapshotId, event.externalPath);
  }

  private strayAcknowledgementReceived(event: EventOf<'StrayAcknowledgementReceived'>): void {
    // Events before decision 0011 have no cleanup id: their cleanup was never tracked.
    const { cleanupId, cleanup } = event;
    if (cleanupId === undefined || !cleanup) return;
    const locations = cleanup.map((handle) => normaliseLocation(handle.path));
    this.writable('strayCleanups').set(cleanupId, locations);
    this.state.nextCleanupId = Math.max(this.state.nextCleanupId, cleanupId + 1);
    this.editRegistry().markDeleting(strayCleanupOwner(cleanupId), locations);
  }

  private strayStateDeleted(event: EventOf<'StrayStateDeleted'>): void {
    const cleanup = this.state.strayCleanups.get(event.cleanupId);
    if (!cleanup) return;
    this.writable('strayCleanups').delete(event.cleanupId);
    const owner = strayCleanupOwner(event.cleanupId);
    this.editRegistry().deletionDone(owner, cleanup);
  }

  private taskAcknowledged(event: EventOf<'TaskAcknowledged'>): void {
    const snapshot = this.snapshot(event.snapshotId);
    snapshot.acks.append(snapshot.acknowledged, event.taskId, event.stateHandles);
    snapshot.acknowledged += 1;
    snapshot.stateSize += event.stateSize;
    snapshot.checkpointedSize += event.checkpointedSize ?? event.stateSize;
    if (event.checkpointType !== undefined && snapshot.reportedCheckpointType !== 'INCREMENTAL') {
      snapshot.reportedCheckpointType = event.checkpointType;
    }
    if (event.stateHandles.length > 0) {
      for (const handle of event.stateHandles) {
        if (isSharedHandle(handle)) snapshot.sharedStateSize += handle.sizeBytes;
        else snapshot.privateStateSize += handle.sizeBytes;
      }
      this.editRegistry().reference(event.snapshotId, event.stateHandles);
    }
  }

  private snapshotCompleted(event: EventOf<'SnapshotCompleted'>, at: number): void {
    const { state } = this;
    const snapshot = this.snapshot(event.snapshotId);
    snapshot.status = 'COMPLETED';
    snapshot.completedAt = event.flinkCompletedAt ? Date.parse(event.flinkCompletedAt) : at;
    // Only a managed job's: a client's completion repeats the trigger's path (old logs did not always).
    if (state.source && event.externalPath !== snapshot.externalPath) {
      // A managed job's savepoint lies where Flink wrote it (R67), not where its trigger planned it.
      this.editRegistry().release(event.snapshotId, [], [snapshot.externalPath], []);
      this.editRegistry().ownDirectory(event.snapshotId, event.externalPath);
      snapshot.externalPath = event.externalPath;
    }
    const reported = snapshot.acks.entries(snapshot.acknowledged).filter(([, handles]) => handles.length > 0);
    snapshot.taskHandles = retainedTaskHandles(reported);
    snapshot.acks = AckLog.EMPTY;
    snapshot.stateSize = event.stateSize;
    if (event.checkpointedSize !== undefined) snapshot.checkpointedSize = event.checkpointedSize;
    if (event.externallyAddressable === false) snapshot.externallyAddressable = false;
    this.writable('pending').delete(event.snapshotId);
    insertSorted(this.writable('completed'), event.snapshotId);
    this.writable('counts').completed += 1;
    // R70: an imported snapshot is no completion of the job's run: no pause, no reset of the failures.
    if (snapshot.imported) return;
    state.lastCompletedAt = at;
    if (snapshot.kind === 'CHECKPOINT') state.fullCheckpointOwed = false;
    // R29: CheckpointFailureManager.handleCheckpointSuccess, for checkpoints and savepoints alike:
    // only a completion newer than the last success resets the count.
    if (event.snapshotId > state.lastSucceededSnapshotId) {
      state.lastSucceededSnapshotId = event.snapshotId;
      this.clearFailureCount();
    }
  }

  private snapshotFailed(event: EventOf<'SnapshotFailed'>, at: number): void {
    const { state } = this;
    const snapshot = this.snapshot(event.snapshotId);
    snapshot.status = 'FAILED';
    snapshot.failedAt = at;
    snapshot.failureReason = event.reason;
    if (event.message !== undefined) snapshot.failureMessage = event.message;
    if (event.taskId !== undefined) snapshot.declinedBy = event.taskId;
    this.writable('pending').delete(event.snapshotId);
    this.writable('counts').failed += 1;
    const taskLevel = isTaskLevelFailure(event.reason, event.taskId);
    if (
      // R60: checkFailureAgainstCounter ignores a failure of a snapshot older than the last success.
      event.snapshotId > state.lastSucceededSnapshotId &&
      countsAgainstTolerance(snapshot, event.reason, taskLevel) &&
      // R28: checkFailureCounter, "we should make sure one checkpoint only be counted once".
      !state.countedFailures.has(event.snapshotId)
    ) {
      this.writable('countedFailures').add(event.snapshotId);
      state.consecutiveFailures += 1;
    }
  }

  private snapshotRestored(event: EventOf<'SnapshotRestored'>, at: number): void {
    const { state } = this;
    const owner = this.restoreOwner();
    if (event.snapshotId !== undefined) {
      const snapshot = this.snapshot(event.snapshotId);
      snapshot.claimMode = event.claimMode;
      snapshot.properties = internProperties(
        restoredProperties(event.claimMode, snapshot.properties, state.checkpointing.retention),
      );
    }
    // Flink's id of what was restored, when the event says (an imported `chk-N`, session 44); else the snapshot's.
    const restoredId = event.checkpointId ?? event.snapshotId;
    if (restoredId !== undefined) state.nextSnapshotId = Math.max(state.nextSnapshotId, restoredId + 1);
    state.restores = {
      count: state.restores.count + 1,
      latest: {
        snapshotId: event.snapshotId ?? null,
        restorePath: event.restorePath,
        checkpointId: restoredId ?? null,
        claimMode: event.claimMode,
        allowNonRestoredState: event.allowNonRestoredState,
        fromJobId: event.fromJobId ?? null,
        restoredAt: at,
        firstSnapshotId: state.nextSnapshotId,
      },
    };
    state.fullCheckpointOwed = event.claimMode === 'NO_CLAIM';
    if (event.snapshotId === undefined && event.claimMode !== 'CLAIM') {
      const directory = restoredDirectory(event.restorePath);
      if (!state.usersRestoreDirectories.includes(directory)) {
        state.usersRestoreDirectories = [...state.usersRestoreDirectories, directory];
      }
    }
    this.supersedeRestoreOwner(owner);
  }

  /** The other job the job's latest restore was from, before a new restore supersedes it. */
  private restoreOwner(): Omit<FormerRestoreOwner, 'untilSnapshotId'> | undefined {
    const jobId = restoredFromJob(this.state);
    if (jobId === undefined) return undefined;
    const { restoredFrom } = planningJobOf(this.state);
    return restoredFrom !== undefined && mirroredRestoreFrom(this.state) === undefined
      ? { jobId, restoredFrom }
      : { jobId };
  }

  /** Decision 0032: the other job the restore before this one was from joins the former owners. */
  private supersedeRestoreOwner(owner: Omit<FormerRestoreOwner, 'untilSnapshotId'> | undefined): void {
    const { state } = this;
    if (owner === undefined || owner.jobId === restoredFromJob(state)) return;
    const former = { ...owner, untilSnapshotId: state.nextSnapshotId };
    const others = state.formerRestoreOwners.filter((f) => f.jobId !== owner.jobId);
    state.formerRestoreOwners = [...others, former];
  }

  private snapshotPersisted(event: EventOf<'SnapshotPersisted'>): void {
    const snapshot = this.snapshot(event.snapshotId);
    // Persisting takes a claimed snapshot back from the job (R62): it is a savepoint from now on.
    snapshot.claimMode = snapshot.claimMode === 'CLAIM' ? null : snapshot.claimMode;
    snapshot.persisted = true;
    snapshot.persistedPath = event.savepointPath;
    snapshot.properties = internProperties(persistedProperties(snapshot.properties));
    // A savepoint is never discarded by subsumption: a subsumed checkpoint's wait for it ends (R73, R35).
    snapshot.discardAwaits = undefined;
    this.editRegistry().ownDirectory(event.snapshotId, event.savepointPath);
  }

  private snapshotDiscardRequested(event: EventOf<'SnapshotDiscardRequested'>, at: number): void {
    const snapshot = this.snapshot(event.snapshotId);
    // A running job's tasks build their next incremental checkpoint on the newest completed one (its shared
    // files): with that one discarded (only with force), the next is FULL, as after a NO_CLAIM restore (R63),
    // or it would name files this discard deletes.
    if (
      this.state.status === 'RUNNING' &&
      snapshot.kind === 'CHECKPOINT' &&
      latestCompletedWhere(this.state, (s) => s.kind === 'CHECKPOINT')?.snapshotId === event.snapshotId
    ) {
      this.state.fullCheckpointOwed = true;
    }
    if (snapshot.status === 'COMPLETED') {
      snapshot.status = 'DISCARDING';
      removeSorted(this.writable('completed'), event.snapshotId);
      this.writable('counts').discarded += 1;
    }
    // The snapshot stops being live. Its plan is in the event; events written before the registry
    // (no `kept`) listed every handle, so theirs is planned again here, as the decider would now.
    const handles = stateHandlesOf(snapshot);
    const directories = directoriesOf(snapshot);
    const plan: DiscardPlan = event.kept
      ? { locations: event.locations, stateHandles: event.stateHandles, kept: event.kept }
      : planDiscard(
          this.state.sharedState,
          event.snapshotId,
          handles,
          directories,
          planningJobOf(this.state),
        );
    const deleting = deletionIndex(plan);
    this.editRegistry().release(event.snapshotId, handles, directories, deleting);
    // The plan carries the state handles to delete; the aggregate keeps only the counts, so that a job's
    // state grows with its retained snapshots, not with every acknowledgement it ever had.
    snapshot.acks = AckLog.EMPTY;
    snapshot.taskHandles = undefined;
    snapshot.expectedTasks = [];
    snapshot.discard = {
      cause: event.cause,
      requestedAt: at,
      state: 'REQUESTED',
      attempts: 0,
      ...(event.reason !== undefined ? { reason: event.reason } : {}),
      deleting,
    };
  }

  private snapshotDiscarded(event: EventOf<'SnapshotDiscarded'>): void {
    const snapshot = this.snapshot(event.snapshotId);
    snapshot.status = statusOnceDiscarded(snapshot.status);
    // A failed attempt's error goes with its success (the attempts stay counted): a DONE discard showing an
    // outage's error text read as still failing.
    const { deleting, error: _failed, retryable: _retry, ...done } = snapshot.discard!;
    if (deleting) this.editRegistry().deletionDone(event.snapshotId, deleting);
    snapshot.discard = { ...done, state: 'DONE', bytesReclaimed: event.bytesReclaimed };
    if (isFinished(snapshot)) this.finish(snapshot.snapshotId);
  }

  /**
   * Notes a finished snapshot; beyond FINISHED_SNAPSHOTS_KEPT, the one of the smallest id leaves the state
   * with its trigger id (decision 0035). Smallest id, not oldest finish: the kept ones are then the greatest
   * ids finished, whatever the order they finished in.
   */
  private finish(snapshotId: number): void {
    const finished = this.writable('finished');
    insertSorted(finished, snapshotId);
    if (finished.length > FINISHED_SNAPSHOTS_KEPT) this.compact(finished.shift()!);
  }

  private compact(snapshotId: number): void {
    const dropped = this.state.snapshots.get(snapshotId)!;
    this.writable('snapshots').delete(dropped.snapshotId);
    this.copiedSnapshots?.delete(dropped.snapshotId);
    // A retry of its trigger id now makes a new snapshot, as Flink's operation cache forgets a trigger.
    if (this.state.triggers.get(dropped.triggerId) === dropped.snapshotId)
      this.writable('triggers').delete(dropped.triggerId);
    // Its Flink id leaves too: the floor stands for it, so the mirror's record stays bounded.
    const flinkId = dropped.flinkCheckpointId;
    if (flinkId !== null && this.state.flinkCheckpoints.get(flinkId) === dropped.snapshotId) {
      this.writable('flinkCheckpoints').delete(flinkId);
      this.state.flinkCheckpointFloor = Math.max(this.state.flinkCheckpointFloor, flinkId);
    }
    this.writable('counts').compacted += 1;
    this.onCompacted?.(dropped);
  }

  private snapshotDiscardFailed(event: EventOf<'SnapshotDiscardFailed'>): void {
    const snapshot = this.snapshot(event.snapshotId);
    const previous = snapshot.discard!;
    snapshot.discard = {
      ...previous,
      state: 'FAILED',
      error: event.error,
      retryable: event.retryable,
      attempts: previous.attempts + 1,
    };
  }

  private savepointScheduleSet(event: EventOf<'SavepointScheduleSet'>, at: number): void {
    const { state } = this;
    if (!state.schedule || !sameTiming(state.schedule, event.schedule)) state.scheduleSince = at;
    state.schedule = event.schedule;
  }

  private flinkRetentionRecorded(event: EventOf<'FlinkCheckpointRetentionRecorded'>): void {
    this.state.flinkRetention = {
      externalized: event.externalized,
      deleteOnCancellation: event.deleteOnCancellation,
      ...(event.timeoutMs !== undefined ? { timeoutMs: event.timeoutMs } : {}),
    };
  }

  private flinkRestoreRecorded(event: EventOf<'FlinkRestoreRecorded'>): void {
    const owner = this.restoreOwner();
    const area = event.externalPath === undefined ? undefined : restoredArea(event.externalPath);
    const own = ownCheckpointArea(this.state);
    // Catalogued or not (a savepoint of the job's too): what a run restored from, which its later checkpoints
    // may use (inUseByManagedRun).
    if (area && area !== own && !this.state.flinkRestoreSources.includes(area)) {
      this.state.flinkRestoreSources = [...this.state.flinkRestoreSources, area];
    }
    this.state.flinkRestore = {
      flinkCheckpointId: event.flinkCheckpointId,
      snapshotId: event.snapshotId ?? null,
      isSavepoint: event.isSavepoint,
      externalPath: event.externalPath ?? null,
      restoredAt: Date.parse(event.restoredAt),
      ...(event.fromJobId !== undefined ? { fromJobId: event.fromJobId } : {}),
    };
    this.supersedeRestoreOwner(owner);
  }

  /** CheckpointFailureManager.clearCount: the counter and the ids it counted. */
  private clearFailureCount(): void {
    this.state.consecutiveFailures = 0;
    if (this.state.countedFailures.size > 0) {
      this.copiedContainers |= CONTAINER_BITS.countedFailures;
      this.state.countedFailures = new Set();
    }
  }

  /** The snapshot, copied on its first change in this draft. */
  private snapshot(id: number): SnapshotState {
    const current = this.state.snapshots.get(id);
    if (!current) throw new Error(`event refers to snapshot ${id}, which was never triggered`);
    if (this.copiedSnapshots?.has(id)) return current;
    // The acknowledgements are not copied: versions share their AckLog, each seeing its own prefix.
    const copy = snapshotRecord(current);
    this.writable('snapshots').set(id, copy);
    (this.copiedSnapshots ??= new Set()).add(id);
    return copy;
  }
}

/** Every field of T, the optional ones too (a value may still be undefined): a copy that must name them all. */
type EveryField<T> = { [K in keyof Required<T>]: T[K] };

/**
 * A snapshot's state with every field present, in one order. V8 then gives all snapshots one hidden class;
 * copies made by spreading and then given a field they lacked got one each (measured: 100,000 retained
 * savepoints held 100,000 hidden classes, a third of the live heap). Listed by hand, as a literal is the
 * fastest copy; typed EveryField, so that a field added to SnapshotState does not compile until it is here.
 */
export function snapshotRecord(snapshot: SnapshotState): SnapshotState {
  const record: EveryField<SnapshotState> = {
    snapshotId: snapshot.snapshotId,
    kind: snapshot.kind,
    triggerType: snapshot.triggerType,
    triggerId: snapshot.triggerId,
    formatType: snapshot.formatType,
    requestedCheckpointType: snapshot.requestedCheckpointType,
    reportedCheckpointType: snapshot.reportedCheckpointType,
    jobVersion: snapshot.jobVersion,
    flinkVersion: snapshot.flinkVersion,
    properties: snapshot.properties,
    status: snapshot.status,
    persisted: snapshot.persisted,
    persistedPath: snapshot.persistedPath,
    externalPath: snapshot.externalPath,
    expectedTasks: snapshot.expectedTasks,
    totalTasks: snapshot.totalTasks,
    acks: snapshot.acks,
    taskHandles: snapshot.taskHandles,
    acknowledged: snapshot.acknowledged,
    stateSize: snapshot.stateSize,
    checkpointedSize: snapshot.checkpointedSize,
    sharedStateSize: snapshot.sharedStateSize,
    privateStateSize: snapshot.privateStateSize,
    triggeredAt: snapshot.triggeredAt,
    deadline: snapshot.deadline,
    completedAt: snapshot.completedAt,
    failedAt: snapshot.failedAt,
    failureReason: snapshot.failureReason,
    failureMessage: snapshot.failureMessage,
    declinedBy: snapshot.declinedBy,
    subsumedBy: snapshot.subsumedBy,
    discardAwaits: snapshot.discardAwaits,
    discard: snapshot.discard,
    manifestPath: snapshot.manifestPath,
    claimMode: snapshot.claimMode,
    terminate: snapshot.terminate,
    externallyAddressable: snapshot.externallyAddressable,
    heldBy: snapshot.heldBy,
    flinkCheckpointId: snapshot.flinkCheckpointId,
    standsFor: snapshot.standsFor,
    imported: snapshot.imported,
  };
  return record;
}

/**
 * Whether the job owns a completed snapshot's files (R32, R62): subsumed beyond `numRetained` and
 * discarded as its retention says. Its own checkpoints, unless persisted or restored from without a claim;
 * and any snapshot it restored from in CLAIM mode.
 */
export function isJobOwned(snapshot: SnapshotState): boolean {
  if (snapshot.claimMode !== null) return snapshot.claimMode === 'CLAIM';
  return snapshot.kind === 'CHECKPOINT' && !snapshot.persisted && !snapshot.imported;
}

/**
 * The snapshot's checkpoint type (R58): FULL when FULL was asked for (every savepoint); otherwise what the
 * tasks reported (INCREMENTAL if one did), and what was asked for while none has said; null for a
 * checkpoint triggered before R58 whose tasks never said.
 */
export function checkpointTypeOf(snapshot: SnapshotState): CheckpointType | null {
  if (snapshot.requestedCheckpointType === 'FULL') return 'FULL';
  return snapshot.reportedCheckpointType ?? snapshot.requestedCheckpointType;
}

/**
 * What restoring the snapshot into the job as it is now changes (R61): a short sentence naming the job
 * version and the Flink version the snapshot was taken by where they differ from the job's current ones;
 * null when they are equal, or when either side of each is unknown.
 */
export function versionDifference(snapshot: SnapshotState, state: JobState): string | null {
  const differs = (then: string | null, now: string | null) => then !== null && now !== null && then !== now;
  const job = differs(snapshot.jobVersion, state.jobVersion);
  const flink = differs(snapshot.flinkVersion, state.flinkVersion);
  if (job && flink) {
    return (
      `taken by job version ${snapshot.jobVersion} on Flink ${snapshot.flinkVersion}; ` +
      `the job is now ${state.jobVersion} on Flink ${state.flinkVersion}`
    );
  }
  if (job) return `taken by job version ${snapshot.jobVersion}; the job is now ${state.jobVersion}`;
  if (flink) return `taken by Flink ${snapshot.flinkVersion}; the job now runs Flink ${state.flinkVersion}`;
  return null;
}

/** Whether a task has acknowledged the snapshot (on a completed one: every expected task has). */
export function hasAcknowledged(snapshot: SnapshotState, taskId: string): boolean {
  return (
    snapshot.acks.has(snapshot.acknowledged, taskId) ||
    (snapshot.taskHandles !== undefined && expectsTask(snapshot, taskId))
  );
}

/** The state handles the snapshot's acknowledgements reported, by task. */
export function taskHandlesOf(snapshot: SnapshotState): [string, StateHandle[]][] {
  return snapshot.taskHandles ?? snapshot.acks.entries(snapshot.acknowledged);
}

/** Every state handle the snapshot's acknowledgements reported. */
export const stateHandlesOf = (snapshot: SnapshotState): StateHandle[] =>
  taskHandlesOf(snapshot).flatMap(([, handles]) => handles);

/**
 * The directories that belong to the snapshot: its external path, and its savepoint path once persisted. A
 * discard deletes them whole, whatever their files are named (so a manifest written as `_metadata` too).
 */
export const directoriesOf = (snapshot: SnapshotState): string[] =>
  snapshot.persistedPath ? [snapshot.externalPath, snapshot.persistedPath] : [snapshot.externalPath];

/**
 * The registry as it follows from the snapshots alone (what the fold keeps up event by event): every
 * snapshot not being discarded owns its directories and references its handles; discards not done yet
 * are deleting what they noted (`deleting`). Aggregate snapshots are decoded through it.
 */
export function rebuildRegistry(
  snapshots: Iterable<SnapshotState>,
  strayCleanups: ReadonlyMap<number, string[]>,
): SharedStateRegistry {
  const registry = new RegistryEditor(EMPTY_REGISTRY);
  const ordered = [...snapshots].sort((a, b) => a.snapshotId - b.snapshotId);
  for (const snapshot of ordered) {
    if (snapshot.discard) continue;
    for (const directory of directoriesOf(snapshot)) registry.ownDirectory(snapshot.snapshotId, directory);
    registry.reference(snapshot.snapshotId, stateHandlesOf(snapshot));
  }
  for (const snapshot of ordered) {
    const deleting = snapshot.discard?.deleting;
    if (deleting) registry.markDeleting(snapshot.snapshotId, deleting);
  }
  for (const [cleanupId, locations] of strayCleanups) {
    registry.markDeleting(strayCleanupOwner(cleanupId), locations);
  }
  return registry.seal();
}

/** A recorded configuration as the job holds it: logs written before `persistOnFailure` replay as true (R38). */
function checkpointingOf(recorded: RecordedCheckpointingConfig): CheckpointingConfig {
  const { persistOnFailure, ...rest } = recorded;
  return { ...rest, persistOnFailure: persistOnFailure ?? true };
}

/** Whether two schedules have the same slots (they may differ in retention or target directory). */
export function sameTiming(left: SavepointSchedule, right: SavepointSchedule): boolean {
  const every = (schedule: SavepointSchedule) =>
    schedule.every === undefined ? undefined : durationMs(schedule.every);
  return every(left) === every(right) && left.cron === right.cron && left.tz === right.tz;
}

export function sameList(left: readonly string[], right: readonly string[]): boolean {
  return left === right || (left.length === right.length && left.every((item, i) => item === right[i]));
}

const taskIndexes = new WeakMap<readonly string[], Set<string>>();

/** Whether a task belongs to a snapshot, in O(1): the task list is indexed once, and shared by every state. */
export function expectsTask(snapshot: SnapshotState, taskId: string): boolean {
  let index = taskIndexes.get(snapshot.expectedTasks);
  if (!index) {
    index = new Set(snapshot.expectedTasks);
    taskIndexes.set(snapshot.expectedTasks, index);
  }
  return index.has(taskId);
}

/**
 * R59: a failure a task reported (a decline, R21's included) is task-level, any other (expiry, subsumption,
 * suspension, shutdown) job-level; so is one whose reason is pre-flight, even from a task
 * (CheckpointFailureManager.handleCheckpointException: `isJobManagerFailure` is `isPreFlightFailure(exception)
 * || executionAttemptID == null`).
 */
export function isTaskLevelFailure(reason: FailureReason, taskId: string | undefined): boolean {
  return taskId !== undefined && !PRE_FLIGHT_FAILURES.includes(reason);
}

/**
 * Whether a failure of the snapshot counts against `tolerableFailures`, as Flink's
 * `CheckpointFailureManager` decides it (R27, R59); whether it is newer than the last success (R60) and
 * counted already (R28) the fold checks beside it.
 *
 * - `handleJobLevelCheckpointException`: a job-level failure (not reported by a task: expiry, subsumption,
 *   suspension, shutdown) is checked only `if (!checkpointProperties.isSavepoint())`.
 * - `handleTaskLevelCheckpointException`: a task-level failure (a decline) of a synchronous savepoint fails
 *   the job and is not counted (`props.isSavepoint() && props.isSynchronous()`); of a checkpoint or of a
 *   non-synchronous savepoint it is checked against the counter.
 * - `checkFailureCounter`: only the COUNTED_FAILURES reasons increment the counter.
 *
 * The hook for stop-with-savepoint: see `isSynchronousSavepoint`.
 */
export function countsAgainstTolerance(
  snapshot: SnapshotState,
  reason: FailureReason,
  taskLevel: boolean,
): boolean {
  if (snapshot.kind === 'SAVEPOINT') {
    if (!taskLevel) return false;
    if (isSynchronousSavepoint(snapshot)) return false;
  }
  return COUNTED_FAILURES.includes(reason);
}

/**
 * Whether the snapshot is a synchronous savepoint (Flink's `CheckpointProperties.isSynchronous()`: a
 * stop-with-savepoint, `SavepointType.terminate`/`suspend`, R65): a task's decline of one is not counted
 * (Flink fails the job instead: `failureCallback.failJob`), as `countsAgainstTolerance` says.
 */
export function isSynchronousSavepoint(snapshot: SnapshotState): boolean {
  return snapshot.terminate !== null;
}

/** Flink's `SavepointType` of a savepoint (R65): SAVEPOINT, or SUSPEND / TERMINATE (drained) for a stop; null for a checkpoint. */
export function savepointTypeOf(snapshot: SnapshotState): SavepointType | null {
  if (snapshot.kind !== 'SAVEPOINT') return null;
  if (!snapshot.terminate) return 'SAVEPOINT';
  return snapshot.terminate.drain ? 'TERMINATE' : 'SUSPEND';
}

/** The pending stop-with-savepoint, if any: while it is, Flink's periodic scheduler is stopped (R65). */
export const pendingStop = (state: JobState): SnapshotState | undefined =>
  pendingWhere(state, (snapshot) => snapshot.terminate !== null);

/** A pending snapshot that matches, if any: `pending` is small, unlike the job's snapshots. */
export function pendingWhere(
  state: JobState,
  match: (snapshot: SnapshotState) => boolean,
): SnapshotState | undefined {
  for (const id of state.pending) {
    const snapshot = state.snapshots.get(id)!;
    if (match(snapshot)) return snapshot;
  }
  return undefined;
}

/**
 * The newest retained completed snapshot (checkpoint or savepoint) the job took, the one a restart would
 * use; an imported one (R70) is not the job's.
 */
export function latestCompleted(state: JobState): SnapshotState | undefined {
  for (let i = state.completed.length - 1; i >= 0; i -= 1) {
    const snapshot = state.snapshots.get(state.completed[i]!)!;
    if (!snapshot.imported) return snapshot;
  }
  return undefined;
}

/** The newest completed snapshot the job took (not an imported one, R70), among those retained, that matches. */
export function latestCompletedWhere(
  state: JobState,
  predicate: (snapshot: SnapshotState) => boolean,
): SnapshotState | undefined {
  for (let i = state.completed.length - 1; i >= 0; i -= 1) {
    const snapshot = state.snapshots.get(state.completed[i]!)!;
    if (!snapshot.imported && predicate(snapshot)) return snapshot;
  }
  return undefined;
}

function insertSorted(ids: number[], id: number): void {
  let i = ids.length;
  while (i > 0 && ids[i - 1]! > id) i -= 1;
  ids.splice(i, 0, id);
}

function removeSorted(ids: number[], id: number): void {
  const i = ids.indexOf(id);
  if (i >= 0) ids.splice(i, 1);
}

/** Flink restores from a snapshot's directory or from its `_metadata` file alike: the directory, normalised. */
export const restoredDirectory = (restorePath: string): string =>
  normaliseLocation(restorePath).replace(/\/_metadata$/, '');

/**
 * Flink's checkpoint id of a snapshot, which a restore from it continues above (Flink's counter does): the
 * mirror's, else an imported retained checkpoint's from its `chk-<id>` directory (Flink's
 * `AbstractFsCheckpointStorageAccess.createCheckpointDirectory`), else the snapshot's own id.
 */
export function flinkCheckpointIdOf(
  snapshot: Pick<SnapshotState, 'snapshotId' | 'flinkCheckpointId' | 'imported' | 'externalPath'>,
): number {
  if (snapshot.flinkCheckpointId !== null) return snapshot.flinkCheckpointId;
  const numbered = snapshot.imported ? /\/chk-(\d+)$/.exec(normaliseLocation(snapshot.externalPath)) : null;
  return numbered ? Number(numbered[1]) : snapshot.snapshotId;
}

/** The job's completed snapshot whose directory the path is (or whose `_metadata` it names), if any. */
export const completedSnapshotAt = (state: JobState, externalPath: string): SnapshotState | undefined =>
  snapshotAtAmong(state, state.completed, externalPath);

/** The same among the job's pending snapshots, whose tasks may still be writing there. */
export const pendingSnapshotAt = (state: JobState, externalPath: string): SnapshotState | undefined =>
  snapshotAtAmong(state, state.pending, externalPath);

/**
 * The job's snapshot whose requested discard is deleting the path's directory, or a directory it lies in, if
 * any (its discard not failed for good): it is no longer completed, yet its files are still there, going
 * (decision 0047).
 */
export function discardingSnapshotAt(state: JobState, externalPath: string): SnapshotState | undefined {
  const deleter = deletingSnapshot(state.sharedState, restoredDirectory(externalPath));
  const snapshot = deleter !== undefined && deleter > 0 ? state.snapshots.get(deleter) : undefined;
  // One whose discard failed for good deletes nothing more (until a discard is requested again).
  return snapshot && discardUnfinished(snapshot.discard) ? snapshot : undefined;
}

function snapshotAtAmong(
  state: JobState,
  ids: Iterable<number>,
  externalPath: string,
): SnapshotState | undefined {
  const path = restoredDirectory(externalPath);
  for (const id of ids) {
    const snapshot = state.snapshots.get(id)!;
    if (directoriesOf(snapshot).some((directory) => normaliseLocation(directory) === path)) return snapshot;
  }
  return undefined;
}

/**
 * The directories among `paths` (a snapshot's external and savepoint paths, normalised) that Flink's layout
 * does not name for `jobId` (`<jobId>/chk-N`, `savepoint-<6 of its id>-…`): an imported snapshot's, a path a
 * client reported, and a retained checkpoint or savepoint of another run adopted by import (laid out under
 * an id the catalogue may not hold). A restore or an acknowledgement naming one cannot tell from the path
 * whose snapshot it is, so the read model indexes them (decision 0032) and the owner is looked up there.
 */
export function directoriesNotNamedFor(jobId: string, paths: Iterable<string | null | undefined>): string[] {
  const found = new Set<string>();
  const prefix = jobId.slice(0, 6);
  for (const path of paths) {
    if (!path) continue;
    const directory = normaliseLocation(path);
    if (jobAreaOf(directory) !== jobId && savepointJobPrefixOf(directory) !== prefix) found.add(directory);
  }
  return [...found];
}

/**
 * The locations (normalised) whose references an event may change, given the job's state before it (or
 * before a run of its events that holds it): an acknowledgement's handles (referenced), and at a discard's
 * request every handle of the snapshot (released; its plan lists only what it deletes and the first 100 it
 * keeps, decision 0022). The registry changes its references at these two events alone
 * (`RegistryEditor.reference`, `.release`; a property test holds it to that).
 */
export function referencesChangedBy(event: Event, before: Pick<JobState, 'snapshots'>): string[] {
  if (event.type === 'TaskAcknowledged') return event.stateHandles.map(({ path }) => normaliseLocation(path));
  if (event.type !== 'SnapshotDiscardRequested') return [];
  const snapshot = before.snapshots.get(event.snapshotId);
  // Handles acknowledged after `before` (in the same run of events) are named by their acknowledgements.
  return (snapshot ? stateHandlesOf(snapshot) : []).map(({ path }) => normaliseLocation(path));
}

/** Of `referencesChangedBy`, the loose files (`isLooseLocation`): what the read model's index of them follows. */
export const looseFilesChangedBy = (event: Event, before: Pick<JobState, 'snapshots'>): string[] =>
  referencesChangedBy(event, before).filter(isLooseLocation);

/** The job's own checkpoint area, `<checkpointDir>/<jobId>` (Flink's `FsCheckpointStorageAccess`), normalised. */
export const ownCheckpointArea = (state: Pick<JobState, 'storage' | 'jobId'>): string =>
  normaliseLocation(`${state.storage.checkpointDir}/${state.jobId}`);

/** What a restore path keeps: a checkpoint's whole area (its run's `shared/` files with it), else its directory. */
export function restoredArea(restorePath: string): string {
  const directory = restoredDirectory(restorePath);
  return checkpointAreaOf(directory) ?? directory;
}

/**
 * The job as its discard plans see it, with the directories whose files are not the job's to delete: another
 * job's snapshot its latest restore named (`fromJobId`, decision 0032), and every external path it restored
 * from in NO_CLAIM or LEGACY (`usersRestoreDirectories`), which stays the user's (R62: recorded, never
 * adopted; Flink's `RecoveryClaimMode.LEGACY` "will not delete the files"), whoever else may use it (an
 * imported snapshot of another job, a savepoint several jobs started from). A CLAIMed external path is the
 * job's, as in Flink.
 */
export function planningJobOf(
  state: Pick<JobState, 'jobId' | 'restores' | 'usersRestoreDirectories' | 'formerRestoreOwners'>,
): PlanningJob {
  const restore = state.restores.latest;
  const users = state.usersRestoreDirectories;
  const job: PlanningJob =
    users.length > 0 ? { jobId: state.jobId, usersDirectories: users } : { jobId: state.jobId };
  // Earlier restores from other jobs' snapshots stay theirs once a later restore (a failover to the job's own
  // checkpoint) supersedes them: that run's checkpoints may still name their files, and a savepoint's
  // directory may share this job's six characters (a review deleted a held savepoint's files that way).
  const earlier = state.formerRestoreOwners.flatMap((former) => former.restoredFrom ?? []);
  if (earlier.length > 0) job.earlierRestoredFrom = earlier;
  if (!restore?.fromJobId || restore.fromJobId === state.jobId) return job;
  return { ...job, restoredFrom: restoredDirectory(restore.restorePath) };
}

/**
 * Decision 0032: the other job this job was last restored from (named by the restore, or by an external path
 * laid out under that job's id), whose snapshot it may hold; undefined when none. O(1): asked after every
 * completion.
 */
export function restoredFromJob(state: JobState): string | undefined {
  const mirrored = mirroredRestoreFrom(state);
  if (mirrored !== undefined) return mirrored;
  const restore = state.restores.latest;
  if (!restore || restore.snapshotId !== null) return undefined;
  const owner = restore.fromJobId ?? jobAreaOf(normaliseLocation(restore.restorePath));
  return owner === state.jobId ? undefined : owner;
}

/**
 * The other job a managed job's latest restore in Flink (seen by the mirror, `FlinkRestoreRecorded`) was from,
 * when that restore is the job's latest; undefined otherwise.
 */
export function mirroredRestoreFrom(state: JobState): string | undefined {
  const mirrored = state.flinkRestore;
  if (mirrored?.fromJobId === undefined) return undefined;
  const recorded = state.restores.latest;
  return recorded && recorded.restoredAt > mirrored.restoredAt ? undefined : mirrored.fromJobId;
}
