// `#/jobs/<jobId>/snapshots/<snapshotId>`: one snapshot, its state handles and every event of its life.
import { formatBytes, formatDuration, plural, toMillis } from '../format';
import { HistorySection, useHistory } from '../history';
import { useActions, useLiveJob, useNow, useResource } from '../hooks';
import { SNAPSHOT, type SnapshotDetail, type StateHandle } from '../queries';
import { jobHref } from '../route';
import { gql } from '../session';
import { kindTitle, useSnapshotActions } from '../snapshot-actions';
import {
  Crumbs,
  DataTable,
  Facts,
  Instant,
  JobNotVisible,
  Loading,
  Mono,
  NotFound,
  Outcome,
  StatusBadge,
  TableWrap,
  yesNo,
} from '../ui';
import { LivePageHead } from './live-badge';

type SnapshotJob = { id: string; name: string; status: string };

interface Answer {
  job: SnapshotJob | null;
  snapshot: SnapshotDetail | null;
}

const HISTORY_PAGE = 100;

export function SnapshotPage({ jobId, snapshotId }: { jobId: string; snapshotId: number }) {
  const now = useNow();
  const actions = useActions();
  const answer = useResource(
    (signal) => gql<Answer>(SNAPSHOT, { jobId, id: snapshotId }, signal),
    [jobId, snapshotId],
  );
  const history = useHistory(jobId, snapshotId, HISTORY_PAGE);
  const refresh = () => {
    answer.refresh();
    history.refresh();
  };
  const readError = answer.error ?? history.error;
  const liveState = useLiveJob(jobId, refresh, readError);
  const job = answer.data?.job ?? undefined;
  const s = answer.data?.snapshot;
  const snapshotActions = useSnapshotActions(job, actions, () => refresh());

  if (answer.data && (!answer.data.job || !s)) {
    return (
      <NotFound title="Snapshot not found">
        {answer.data.job ? (
          <>
            Job <a href={jobHref(jobId)}>{answer.data.job.name}</a> has no snapshot {snapshotId}.
          </>
        ) : (
          <JobNotVisible jobId={jobId} />
        )}
      </NotFound>
    );
  }

  return (
    <>
      <Crumbs
        above={[[jobHref(jobId), job?.name ?? jobId]]}
        current={s ? `${kindTitle(s.kind)} ${s.id}` : snapshotId}
      />
      <LivePageHead
        title={s ? `${kindTitle(s.kind)} ${s.id}` : `Snapshot ${snapshotId}`}
        status={s?.status}
        live={liveState}
        readError={readError}
      >
        {s && snapshotActions.buttons(s)}
      </LivePageHead>
      <Outcome actions={actions} loadError={answer.error} />
      {!s && !answer.error && <Loading what="the snapshot" />}
      {s && (
        <>
          {s.status === 'PENDING' && <AcksProgress snapshot={s} />}
          <SnapshotFacts jobId={jobId} job={job} snapshot={s} now={now} />
          <div class="cards">
            <PropertiesCard snapshot={s} />
            <DiscardCard snapshot={s} now={now} />
          </div>
          <StateHandlesSection snapshot={s} />
        </>
      )}
      <HistorySection
        jobId={jobId}
        list={history}
        now={now}
        caption={`Events of snapshot ${snapshotId}`}
        showSnapshot={false}
      />
      {snapshotActions.dialog}
    </>
  );
}

/** How many of the tasks acknowledged a snapshot still in progress. */
function AcksProgress({ snapshot: s }: { snapshot: SnapshotDetail }) {
  return (
    <div class="panel progress-panel">
      <label for="acks">
        Acknowledged by {s.acknowledgedTasks} of {s.totalTasks} tasks
      </label>
      <progress id="acks" max={Math.max(1, s.totalTasks)} value={s.acknowledgedTasks}>
        {s.acknowledgedTasks} / {s.totalTasks}
      </progress>
    </div>
  );
}

/** Every field of the snapshot, under the API's names. */
function SnapshotFacts(props: {
  jobId: string;
  job: SnapshotJob | undefined;
  snapshot: SnapshotDetail;
  now: number;
}) {
  const { jobId, job, snapshot: s, now } = props;
  const duration = (toMillis(s.completedAt ?? s.failedAt) ?? NaN) - (toMillis(s.triggeredAt) ?? NaN);
  return (
    <section class="panel" aria-label="Snapshot details">
      <Facts
        fields
        items={[
          ['job', <a href={jobHref(jobId)}>{job?.name ?? jobId}</a>],
          ['id', String(s.id)],
          ['kind', s.kind],
          ['status', <StatusBadge status={s.status} />],
          ['persisted', yesNo(s.persisted)],
          ['heldBy', <Holders heldBy={s.heldBy} hidden={s.hiddenHolders} />],
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
  );
}

function PropertiesCard({ snapshot: s }: { snapshot: SnapshotDetail }) {
  return (
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
  );
}

function DiscardCard({ snapshot: s, now }: { snapshot: SnapshotDetail; now: number }) {
  return (
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
  );
}

function StateHandlesSection({ snapshot: s }: { snapshot: SnapshotDetail }) {
  return (
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
          <Handles
            testid="shared-handles"
            caption="Shared (incremental) state"
            handles={s.stateHandles.filter((h) => h.shared)}
          />
          <Handles
            testid="private-handles"
            caption="Private state"
            handles={s.stateHandles.filter((h) => !h.shared)}
          />
        </div>
      )}
    </section>
  );
}

function Handles({ testid, caption, handles }: { testid: string; caption: string; handles: StateHandle[] }) {
  const total = handles.reduce((sum, h) => sum + h.sizeBytes, 0);
  return (
    <TableWrap label={caption}>
      <DataTable
        testid={testid}
        caption={
          <>
            {caption}{' '}
            <span class="muted">
              ({handles.length} {handles.length === 1 ? 'file' : 'files'}, {formatBytes(total)})
            </span>
          </>
        }
        columns={['Task', 'Path', { label: 'Size', num: true }]}
        items={handles}
        empty="None."
        row={(h) => (
          <tr key={`${h.taskId} ${h.path}`}>
            <td>{h.taskId}</td>
            <td class="path-full">
              <Mono>{h.path}</Mono>
            </td>
            <td class="num">{formatBytes(h.sizeBytes)}</td>
          </tr>
        )}
      />
    </TableWrap>
  );
}

/** The jobs holding the snapshot the caller may see, linked, and a count of those it may not (decision 0045). */
function Holders({ heldBy, hidden }: { heldBy: string[]; hidden: number }) {
  if (heldBy.length === 0 && hidden === 0) return <>—</>;
  return (
    <>
      {heldBy.map((holder, i) => [i > 0 ? ', ' : '', <a href={jobHref(holder)}>{holder}</a>])}
      {hidden > 0 && `${heldBy.length > 0 ? ', and ' : ''}${plural(hidden, 'job')} in other namespaces`}
    </>
  );
}
