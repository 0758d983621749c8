// `#/jobs/<jobId>/snapshots/<snapshotId>`: one snapshot, its state handles and every event of its life.
import { formatBytes, formatDuration, toMillis } from '../format';
import { HistoryTable } from '../history';
import { useActions, useLiveJob, useNow, useResource } from '../hooks';
import { usePagedList } from '../lists';
import {
  type Connection,
  HISTORY,
  type HistoryEvent,
  SNAPSHOT,
  type SnapshotDetail,
  type StateHandle,
} from '../queries';
import { jobHref } from '../route';
import { gql } from '../session';
import { useSnapshotActions } from '../snapshot-actions';
import { Alert, Facts, Instant, Loading, Mono, Notice, StatusBadge, TableWrap, yesNo } from '../ui';
import { LiveBadge } from './live-badge';

interface Answer {
  job: { id: string; name: string; status: string } | null;
  snapshot: SnapshotDetail | null;
}

const title = (kind: string) => (kind === 'SAVEPOINT' ? 'Savepoint' : 'Checkpoint');

export function SnapshotPage({ jobId, snapshotId }: { jobId: string; snapshotId: number }) {
  const now = useNow();
  const actions = useActions();
  const answer = useResource(
    (signal) => gql<Answer>(SNAPSHOT, { jobId, id: snapshotId }, signal),
    [jobId, snapshotId],
  );
  const history = usePagedList<HistoryEvent>(
    async (first, after, signal) =>
      (await gql<{ history: Connection<HistoryEvent> }>(HISTORY, { jobId, snapshotId, first, after }, signal))
        .history,
    100,
    [jobId, snapshotId],
    'append',
  );
  const refresh = () => {
    answer.reload();
    history.refresh();
  };
  const liveState = useLiveJob(jobId, refresh);
  const job = answer.data?.job ?? undefined;
  const s = answer.data?.snapshot;
  const snapshotActions = useSnapshotActions(job, actions, () => refresh());

  if (answer.data && (!answer.data.job || !s)) {
    return (
      <div class="empty">
        <h1>Snapshot not found</h1>
        <p>
          {answer.data.job ? (
            <>
              Job <a href={jobHref(jobId)}>{answer.data.job.name}</a> has no snapshot {snapshotId}.
            </>
          ) : (
            <>
              There is no job <Mono>{jobId}</Mono>, or your token may not see its namespace.
            </>
          )}{' '}
          <a href="#/">All jobs</a>
        </p>
      </div>
    );
  }

  const duration = s
    ? (toMillis(s.completedAt ?? s.failedAt) ?? NaN) - (toMillis(s.triggeredAt) ?? NaN)
    : NaN;
  const shared = s?.stateHandles.filter((h) => h.shared) ?? [];
  const own = s?.stateHandles.filter((h) => !h.shared) ?? [];
  return (
    <>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="#/">Jobs</a> <span aria-hidden="true">/</span>{' '}
        <a href={jobHref(jobId)}>{job?.name ?? jobId}</a> <span aria-hidden="true">/</span>{' '}
        <span aria-current="page">{s ? `${title(s.kind)} ${s.id}` : snapshotId}</span>
      </nav>
      <div class="page-head">
        <h1>
          {s ? `${title(s.kind)} ${s.id}` : `Snapshot ${snapshotId}`} {s && <StatusBadge status={s.status} />}
        </h1>
        <div class="head-actions">
          <LiveBadge state={liveState.state} error={liveState.error} />
          {s && snapshotActions.buttons(s)}
        </div>
      </div>
      <Notice text={actions.notice} />
      <Alert error={actions.error ?? answer.error} onDismiss={actions.error ? actions.dismiss : undefined} />
      {!s && !answer.error && <Loading what="the snapshot" />}
      {s && (
        <>
          {s.status === 'PENDING' && (
            <div class="panel progress-panel">
              <label for="acks">
                Acknowledged by {s.acknowledgedTasks} of {s.totalTasks} tasks
              </label>
              <progress id="acks" max={Math.max(1, s.totalTasks)} value={s.acknowledgedTasks}>
                {s.acknowledgedTasks} / {s.totalTasks}
              </progress>
            </div>
          )}
          <section class="panel" aria-label="Snapshot details">
            <Facts
              fields
              items={[
                ['job', <a href={jobHref(jobId)}>{job?.name ?? jobId}</a>],
                ['id', String(s.id)],
                ['kind', s.kind],
                ['status', <StatusBadge status={s.status} />],
                ['persisted', yesNo(s.persisted)],
                ['triggerType', s.triggerType],
                ['triggerId', <Mono>{s.triggerId}</Mono>],
                ['formatType', s.formatType],
                ['checkpointType', s.checkpointType ?? '—'],
                ['jobVersion', s.jobVersion ?? '—'],
                ['flinkVersion', s.flinkVersion ?? '—'],
                ['triggeredAt', <Instant iso={s.triggeredAt} now={now} />],
                ['completedAt', <Instant iso={s.completedAt} now={now} />],
                ['failedAt', <Instant iso={s.failedAt} now={now} />],
                ['duration', Number.isFinite(duration) ? formatDuration(duration) : '—'],
                ['acknowledgedTasks', `${s.acknowledgedTasks} of ${s.totalTasks} (totalTasks)`],
                ['stateSize', formatBytes(s.stateSize)],
                ['checkpointedSize', formatBytes(s.checkpointedSize)],
                ['sharedStateSize', formatBytes(s.sharedStateSize)],
                ['privateStateSize', formatBytes(s.privateStateSize)],
                ['externalPath', <Mono>{s.externalPath}</Mono>],
                ['restorePath', s.restorePath ? <Mono>{s.restorePath}</Mono> : '—'],
                ['savepointPath', s.savepointPath ? <Mono>{s.savepointPath}</Mono> : '—'],
                ['manifestPath', s.manifestPath ? <Mono>{s.manifestPath}</Mono> : '—'],
                ['failureReason', s.failureReason ?? '—'],
                ['failureMessage', s.failureMessage ?? '—'],
              ]}
            />
          </section>
          <div class="cards">
            <section class="panel card" aria-labelledby="properties-title">
              <h2 id="properties-title">Properties</h2>
              <Facts
                fields
                items={[
                  ['forced', yesNo(s.properties.forced)],
                  ['discardSubsumed', yesNo(s.properties.discardSubsumed)],
                  ['discardFinished', yesNo(s.properties.discardFinished)],
                  ['discardCancelled', yesNo(s.properties.discardCancelled)],
                  ['discardFailed', yesNo(s.properties.discardFailed)],
                  ['discardSuspended', yesNo(s.properties.discardSuspended)],
                ]}
              />
            </section>
            <section class="panel card" aria-labelledby="discard-title" data-testid="discard">
              <h2 id="discard-title">Discard</h2>
              {s.discard ? (
                <Facts
                  fields
                  items={[
                    ['cause', s.discard.cause],
                    ['state', s.discard.state],
                    ['reason', s.discard.reason ?? '—'],
                    ['requestedAt', <Instant iso={s.discard.requestedAt} now={now} />],
                    ['bytesReclaimed', formatBytes(s.discard.bytesReclaimed)],
                    ['error', s.discard.error ?? '—'],
                    ['retryable', yesNo(s.discard.retryable)],
                  ]}
                />
              ) : (
                <p class="muted">Not discarded.</p>
              )}
            </section>
          </div>
          <section aria-labelledby="handles-title">
            <h2 id="handles-title">State handles</h2>
            {s.stateHandles.length === 0 ? (
              <p class="muted" data-testid="no-state-handles">
                {s.discard
                  ? 'None left to show: the discard carries the handles it deletes.'
                  : 'The tasks reported no state handles.'}
              </p>
            ) : (
              <div class="handles">
                <Handles testid="shared-handles" caption="Shared (incremental) state" handles={shared} />
                <Handles testid="private-handles" caption="Private state" handles={own} />
              </div>
            )}
          </section>
        </>
      )}
      <section aria-labelledby="history-title">
        <h2 id="history-title">History</h2>
        <HistoryTable
          jobId={jobId}
          list={history}
          now={now}
          caption={`Events of snapshot ${snapshotId}`}
          showSnapshot={false}
        />
      </section>
      {snapshotActions.dialog}
    </>
  );
}

function Handles({ testid, caption, handles }: { testid: string; caption: string; handles: StateHandle[] }) {
  const total = handles.reduce((sum, h) => sum + h.sizeBytes, 0);
  return (
    <TableWrap label={caption}>
      <table class="data" data-testid={testid}>
        <caption>
          {caption}{' '}
          <span class="muted">
            ({handles.length} {handles.length === 1 ? 'file' : 'files'}, {formatBytes(total)})
          </span>
        </caption>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Path</th>
            <th scope="col" class="num">
              Size
            </th>
          </tr>
        </thead>
        <tbody>
          {handles.length === 0 && (
            <tr>
              <td colSpan={3} class="muted">
                None.
              </td>
            </tr>
          )}
          {handles.map((h) => (
            <tr key={`${h.taskId} ${h.path}`}>
              <td>{h.taskId}</td>
              <td class="path-full">
                <Mono>{h.path}</Mono>
              </td>
              <td class="num">{formatBytes(h.sizeBytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
