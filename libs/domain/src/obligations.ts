import { CommandRejected } from './errors';
import { decide } from './decide';
import { isTerminal, type SavepointSchedule } from './schemas';
import type { Event } from './events';
import { discardUnfinished, disposedByFlink, type JobState, type SnapshotState } from './state';

/**
 * What the workers owe a job (decision 0021): each is enqueued idempotently (by a deterministic id), so
 * owing it twice costs nothing. The reconcile enqueues `obligations(state)`; the live path what each event
 * adds (`obligationsOfEvent`). Both take their conditions from the predicates below, written once.
 */
export type Obligation =
  /** The retention sweep and orphan report visit the job. */
  | { kind: 'retention' }
  | { kind: 'schedule'; schedule: SavepointSchedule }
  | { kind: 'timeout'; snapshotId: number; deadline: number }
  /** snapcat deletes what the discard's event planned (the plan is in the event, not the state). */
  | { kind: 'discard'; snapshotId: number }
  /** A stray acknowledgement's cleanup; without an id for events before decision 0011 (never in the state). */
  | { kind: 'stray'; cleanupId?: number }
  | { kind: 'manifest'; snapshotId: number }
  /** Managed jobs (R67, R68): the mirror, a savepoint taken in Flink, a disposal through Flink. */
  | { kind: 'mirror'; cluster: string }
  /** A managed job Flink had ended when it was registered: its checkpoint history is read once (R67, R68). */
  | { kind: 'lastMirror' }
  | { kind: 'flinkSavepoint'; snapshotId: number }
  | { kind: 'dispose'; snapshotId: number; path: string };

/** What an event changes in the obligations: those it adds, and the standing ones it ends. */
export interface ObligationChange {
  owed: Obligation[];
  ended: ('schedule' | 'mirror')[];
}

/** One key per obligation, the same whatever the data: what the tests compare. */
export function obligationKey(obligation: Obligation): string {
  if ('snapshotId' in obligation) return `${obligation.kind}:${obligation.snapshotId}`;
  if (obligation.kind === 'stray') return `stray:${obligation.cleanupId}`;
  return obligation.kind;
}

/**
 * R39: a manifest is owed by a persisted snapshot that has none yet and is not being discarded. This is the
 * reconcile's old condition; the live path enqueued one on every SnapshotPersisted, which is the same
 * thing, as a snapshot is persisted only once, while COMPLETED (so with no manifest and no discard).
 */
export const owesManifest = (
  snapshot: Pick<SnapshotState, 'persisted' | 'manifestPath' | 'discard'>,
): boolean => snapshot.persisted && !snapshot.manifestPath && !snapshot.discard;

/**
 * R67: a managed job's savepoint that snapcat triggered is taken in Flink; what the mirror recorded (a
 * Flink checkpoint id) Flink took already, and an imported one (R69) exists already.
 */
export const takenInFlink = (
  snapshot: Pick<SnapshotState, 'kind' | 'flinkCheckpointId' | 'imported'>,
): boolean => snapshot.kind === 'SAVEPOINT' && snapshot.flinkCheckpointId === null && !snapshot.imported;

/**
 * R67: what a disposal through Flink freed, as far as the catalogue knows: the snapshot's size (Flink's figures
 * of it, or what its import said), null when it knows none (0: Flink reported no figures). Flink's answer
 * names no size (`SavepointDisposalHandlers`: the operation's result is an `AsynchronousOperationInfo`, a
 * failure cause at most), and a 0 would say that nothing was freed.
 */
export const sizeDisposedByFlink = (snapshot: Pick<SnapshotState, 'stateSize'>): number | null =>
  snapshot.stateSize > 0 ? snapshot.stateSize : null;

/** What one snapshot still owes: its timeout while pending, its deletion, its manifest. */
export function snapshotObligations(snapshot: SnapshotState, managed: boolean): Obligation[] {
  const { snapshotId } = snapshot;
  const owed: Obligation[] = [];
  if (snapshot.status === 'PENDING') {
    owed.push({ kind: 'timeout', snapshotId, deadline: snapshot.deadline });
    if (managed && takenInFlink(snapshot)) owed.push({ kind: 'flinkSavepoint', snapshotId });
  }
  if (discardUnfinished(snapshot.discard)) {
    // R67: snapcat deletes nothing of a managed job itself.
    if (!managed) owed.push({ kind: 'discard', snapshotId });
    // An imported retained checkpoint's discard requested before they were no longer disposed of through
    // Flink: the connector ends it without Flink.
    else if (disposedByFlink(snapshot) || snapshot.imported)
      owed.push({ kind: 'dispose', snapshotId, path: snapshot.externalPath });
  }
  if (owesManifest(snapshot)) owed.push({ kind: 'manifest', snapshotId });
  return owed;
}

/** Everything the workers owe the job in this state: what the reconcile enqueues. */
export function obligations(state: JobState): Obligation[] {
  if (!state.registered) return [];
  const managed = state.source !== null;
  const owed: Obligation[] = [{ kind: 'retention' }];
  if (state.schedule) owed.push({ kind: 'schedule', schedule: state.schedule });
  if (state.source && !isTerminal(state.status)) owed.push({ kind: 'mirror', cluster: state.source.cluster });
  for (const snapshot of state.snapshots.values()) owed.push(...snapshotObligations(snapshot, managed));
  if (!managed) for (const cleanupId of state.strayCleanups.keys()) owed.push({ kind: 'stray', cleanupId });
  return owed;
}

/** Whether `obligationsOfEvent` needs to know if the job is managed: the live path loads the job only then. */
export function asksWhetherManaged(event: Event): boolean {
  if (event.type === 'SnapshotDiscardRequested' || event.type === 'StrayAcknowledgementReceived') return true;
  if (event.type === 'JobStatusChanged') return isTerminal(event.to);
  return event.type === 'SnapshotTriggered' && takenInFlink(triggered(event));
}

/** The fields of a snapshot that its SnapshotTriggered sets and the predicates read. */
const triggered = (event: Extract<Event, { type: 'SnapshotTriggered' }>) => ({
  kind: event.kind,
  flinkCheckpointId: event.flinkCheckpointId ?? null,
  imported: event.imported ?? false,
});

/**
 * What the event adds to the job's obligations, or ends (the live path). `managed`: whether the job is
 * managed through Flink, asked only where `asksWhetherManaged`.
 */
export function obligationsOfEvent(event: Event, managed = false): ObligationChange {
  const none: ObligationChange = { owed: [], ended: [] };
  const owe = (...owed: Obligation[]): ObligationChange => ({ owed, ended: [] });
  switch (event.type) {
    case 'JobRegistered':
      if (!event.source) return owe({ kind: 'retention' });
      // R67: a job Flink had ended already is not polled, as no ended job is; what its history kept is read once.
      return isTerminal(event.status)
        ? owe({ kind: 'retention' }, { kind: 'lastMirror' })
        : owe({ kind: 'retention' }, { kind: 'mirror', cluster: event.source.cluster });
    case 'JobReconfigured':
      return event.source ? owe({ kind: 'mirror', cluster: event.source.cluster }) : none;
    case 'JobStatusChanged':
      // A managed job's end stops its poll; its history is read once more, as a job registered ended has it
      // read: one given a source as Flink reports it ended (the same command) was never polled.
      if (!isTerminal(event.to)) return none;
      return { owed: managed ? [{ kind: 'lastMirror' }] : [], ended: ['mirror'] };
    case 'SnapshotTriggered': {
      const { snapshotId } = event;
      const timeout: Obligation = { kind: 'timeout', snapshotId, deadline: Date.parse(event.deadline) };
      if (managed && takenInFlink(triggered(event)))
        return owe(timeout, { kind: 'flinkSavepoint', snapshotId });
      return owe(timeout);
    }
    case 'SnapshotDiscardRequested':
      if (!managed) return owe({ kind: 'discard', snapshotId: event.snapshotId });
      // The decider gives a managed job's discard a location only for what Flink disposes of.
      return event.locations.length > 0
        ? owe({ kind: 'dispose', snapshotId: event.snapshotId, path: event.locations[0]! })
        : none;
    case 'StrayAcknowledgementReceived':
      // Nothing to delete unless it names a cleanup; an event before decision 0011 has its cleanup planned now.
      if (managed) return none;
      if (event.cleanupId !== undefined) return owe({ kind: 'stray', cleanupId: event.cleanupId });
      return event.cleanup === undefined ? owe({ kind: 'stray' }) : none;
    case 'SnapshotPersisted':
      return owe({ kind: 'manifest', snapshotId: event.snapshotId });
    case 'SavepointScheduleSet':
      return owe({ kind: 'schedule', schedule: event.schedule });
    case 'SavepointScheduleRemoved':
      return { owed: [], ended: ['schedule'] };
    default:
      return none;
  }
}

/** Whether the retention sweep owes the job an ApplyRetention now: whether the decider would discard anything. */
export function retentionDue(state: JobState, now: number): boolean {
  try {
    return decide(state, { type: 'ApplyRetention', jobId: state.jobId }, now).events.length > 0;
  } catch (error) {
    if (error instanceof CommandRejected) return false;
    throw error;
  }
}
