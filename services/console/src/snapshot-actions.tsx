// Persist and discard, on a snapshot row and on the snapshot page: only for tokens with the operator scope
// (otherwise neither the buttons nor the dialog are in the document).
import { useRef, useState } from 'preact/hooks';
import type { Actions } from './hooks';
import { can, DISCARD, PERSIST, type SnapshotRow } from './queries';
import { gql, useViewer } from './session';
import { ConfirmDialog } from './ui';

type Target = Pick<SnapshotRow, 'id' | 'kind' | 'status' | 'persisted'>;

/** What a mutation says a snapshot became (the page shows it at once, before its refresh). */
export type SnapshotChange = Pick<SnapshotRow, 'id'> & Partial<Pick<SnapshotRow, 'status' | 'persisted'>>;

const kindName = (kind: string) => kind.toLowerCase();

/** "Savepoint" or "Checkpoint", as a heading or a sentence starts. */
export const kindTitle = (kind: string) => (kind === 'SAVEPOINT' ? 'Savepoint' : 'Checkpoint');

/** Persist (a checkpoint not persisted yet) and Discard, for a completed snapshot. */
function RowActions(props: { snapshot: Target; busy: boolean; onPersist(): void; onDiscard(): void }) {
  const s = props.snapshot;
  return (
    <span class="row-actions">
      {s.kind === 'CHECKPOINT' && !s.persisted && (
        <button
          type="button"
          data-action="persist"
          aria-label={`Persist checkpoint ${s.id}`}
          disabled={props.busy}
          onClick={props.onPersist}
        >
          Persist
        </button>
      )}
      <button
        type="button"
        class="danger-outline"
        data-action="discard"
        aria-label={`Discard ${kindName(s.kind)} ${s.id}`}
        disabled={props.busy}
        onClick={props.onDiscard}
      >
        Discard
      </button>
    </span>
  );
}

export function useSnapshotActions(
  job: { id: string; name: string } | undefined,
  actions: Actions,
  afterwards: (change: SnapshotChange) => void,
) {
  const operator = can(useViewer(), 'operator');
  const [target, setTarget] = useState<Target | null>(null);
  // The dialog keeps the last snapshot's words while it closes.
  const last = useRef<Target | null>(null);
  if (target) last.current = target;
  const named = target ?? last.current;
  const jobId = job?.id ?? '';

  const persist = (s: Target) =>
    actions.run(async () => {
      const { persistSnapshot } = await gql<{
        persistSnapshot: { status: SnapshotRow['status']; persisted: boolean };
      }>(PERSIST, { jobId, snapshotId: s.id });
      afterwards({ id: s.id, status: persistSnapshot.status, persisted: persistSnapshot.persisted });
      return persistSnapshot.persisted
        ? `Checkpoint ${s.id} is persisted: it is kept until discarded explicitly.`
        : `Checkpoint ${s.id}: persisting requested.`;
    });

  const discard = async (s: Target, reason: string | null, force: boolean) => {
    await actions.run(async () => {
      const { discardSnapshot } = await gql<{ discardSnapshot: { status: SnapshotRow['status'] } }>(DISCARD, {
        jobId,
        snapshotId: s.id,
        ...(reason ? { reason } : {}),
        ...(force ? { force } : {}),
      });
      afterwards({ id: s.id, status: discardSnapshot.status });
      return `${kindTitle(s.kind)} ${s.id}: discard requested (${discardSnapshot.status}).`;
    });
    setTarget(null);
  };

  const buttons = (s: Target) =>
    operator && s.status === 'COMPLETED' ? (
      <RowActions
        snapshot={s}
        busy={actions.busy}
        onPersist={() => void persist(s)}
        onDiscard={() => setTarget(s)}
      />
    ) : null;

  const what = named ? `${kindName(named.kind)} ${named.id}` : 'snapshot';
  const dialog = operator && job && (
    <ConfirmDialog
      open={target !== null}
      title={`Discard ${what}`}
      message={`Discard ${what} of job ${job.name}? Its files are deleted once no live snapshot shares them.`}
      confirmLabel="Discard"
      busy={actions.busy}
      onCancel={() => setTarget(null)}
      forceLabel="Force: discard it even if the running job still needs it (its latest snapshot, what a failover restores from, or what a job restored from)"
      onConfirm={(reason, force) => {
        if (target) void discard(target, reason, force);
      }}
    />
  );

  return { operator, buttons, dialog };
}
