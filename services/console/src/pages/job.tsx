// `#/jobs/<jobId>`: the job, its checkpoints charted, its snapshots, restore point, schedule and history;
// live through the job's snapshot events.
import type { ComponentChildren } from 'preact';
import { useMemo, useRef, useState } from 'preact/hooks';
import { Chart, type Palette } from '../chart';
import { describeSchedule, formatBytes, formatDuration, plural } from '../format';
import { HistoryTable } from '../history';
import { type Actions, useActions, useLiveJob, useNow, useResource } from '../hooks';
import { usePagedList } from '../lists';
import {
  allPages,
  can,
  CHECKPOINTS,
  type Connection,
  HISTORY,
  type HistoryEvent,
  JOB,
  type JobAnswer,
  type JobDetail,
  type RestorePlanView,
  REMOVE_SCHEDULE,
  SET_SCHEDULE,
  SNAPSHOT_KINDS,
  SNAPSHOT_STATUSES,
  SNAPSHOTS,
  type SnapshotRow,
  TRIGGER_SAVEPOINT,
} from '../queries';
import { snapshotHref } from '../route';
import { type CheckpointSample, durationSeries, mergeNewest, sizeSeries } from '../series';
import { gql, useViewer } from '../session';
import { useSnapshotActions } from '../snapshot-actions';
import {
  Ago,
  Alert,
  Facts,
  FilterSelect,
  Instant,
  Loading,
  Mono,
  More,
  Notice,
  StatusBadge,
  TableWrap,
  yesNo,
} from '../ui';
import { LiveBadge } from './live-badge';

const CHART_PAGE = 100;
const CHART_MAX = 1000;
const SNAPSHOT_PAGE = 20;
const HISTORY_PAGE = 50;

export function JobPage({ jobId }: { jobId: string }) {
  const viewer = useViewer();
  const now = useNow();
  const actions = useActions();

  const job = useResource(
    async (signal) => {
      const { job, failover, newestSavepoint } = await gql<JobAnswer>(JOB, { id: jobId }, signal);
      return job && { ...job, plans: { failover, newestSavepoint } };
    },
    [jobId],
  );
  const checkpoints = useCheckpoints(jobId);
  const [filters, setFilters] = useState({ kind: '', status: '', persisted: '' });
  const snapshots = usePagedList<SnapshotRow>(
    async (first, after, signal) =>
      (
        await gql<{ snapshots: Connection<SnapshotRow> }>(
          SNAPSHOTS,
          {
            jobId,
            first,
            after,
            ...(filters.kind ? { kinds: [filters.kind] } : {}),
            ...(filters.status ? { statuses: [filters.status] } : {}),
            ...(filters.persisted ? { persisted: filters.persisted === 'true' } : {}),
          },
          signal,
        )
      ).snapshots,
    SNAPSHOT_PAGE,
    [jobId, filters.kind, filters.status, filters.persisted],
    'replace',
  );
  const history = usePagedList<HistoryEvent>(
    async (first, after, signal) =>
      (await gql<{ history: Connection<HistoryEvent> }>(HISTORY, { jobId, first, after }, signal)).history,
    HISTORY_PAGE,
    [jobId],
    'append',
  );
  const refresh = () => {
    job.reload();
    checkpoints.reload();
    snapshots.refresh();
    history.refresh();
  };
  const liveState = useLiveJob(jobId, refresh);
  const detail = job.data;
  const snapshotActions = useSnapshotActions(detail ?? undefined, actions, (change) => {
    snapshots.patch((row) => (row.id === change.id ? { ...row, ...change } : row));
    refresh();
  });

  if (job.data === null) {
    return (
      <div class="empty">
        <h1 tabIndex={-1}>Job not found</h1>
        <p>
          There is no job <Mono>{jobId}</Mono>, or your token may not see its namespace.{' '}
          <a href="#/">All jobs</a>
        </p>
      </div>
    );
  }

  return (
    <>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="#/">Jobs</a> <span aria-hidden="true">/</span>{' '}
        <span aria-current="page">{detail?.name ?? jobId}</span>
      </nav>
      <div class="page-head">
        <h1>
          {detail?.name ?? 'Job'} {detail && <StatusBadge status={detail.status} />}
        </h1>
        <div class="head-actions">
          <LiveBadge state={liveState.state} error={liveState.error} />
          {can(viewer, 'runtime') && detail && (
            <button
              type="button"
              class="primary"
              data-action="trigger-savepoint"
              disabled={actions.busy}
              onClick={() =>
                void actions.run(async () => {
                  const { triggerSnapshot } = await gql<{ triggerSnapshot: { id: number; status: string } }>(
                    TRIGGER_SAVEPOINT,
                    { jobId },
                  );
                  refresh();
                  return `Savepoint ${triggerSnapshot.id} triggered (${triggerSnapshot.status}).`;
                })
              }
            >
              Trigger savepoint
            </button>
          )}
        </div>
      </div>
      <Notice text={actions.notice} />
      <Alert error={actions.error ?? job.error} onDismiss={actions.error ? actions.dismiss : undefined} />
      {!detail && !job.error && <Loading what="the job" />}
      {detail?.warnings.map((warning) => (
        <p class="panel warning" role="note" data-testid="job-warning">
          {warning}
        </p>
      ))}
      {detail && <JobFacts job={detail} now={now} />}

      {detail && (
        <div class="cards">
          <RestorePlansCard job={detail} now={now} />
          <ScheduleCard
            job={detail}
            now={now}
            actions={actions}
            operator={can(viewer, 'operator')}
            afterwards={refresh}
          />
        </div>
      )}

      <section aria-labelledby="charts-title">
        <h2 id="charts-title">Checkpoints over time</h2>
        <Alert error={checkpoints.error} />
        {checkpoints.data ? (
          <Charts samples={checkpoints.data} />
        ) : (
          !checkpoints.error && <Loading what="checkpoints" />
        )}
      </section>

      <section aria-labelledby="snapshots-title">
        <h2 id="snapshots-title">Snapshots</h2>
        <form class="filters" aria-label="Filter snapshots" onSubmit={(e) => e.preventDefault()}>
          <FilterSelect
            label="Kind"
            name="kind"
            value={filters.kind}
            options={SNAPSHOT_KINDS}
            onChange={(kind) => setFilters({ ...filters, kind })}
          />
          <FilterSelect
            label="Status"
            name="snapshotStatus"
            value={filters.status}
            options={SNAPSHOT_STATUSES}
            onChange={(status) => setFilters({ ...filters, status })}
          />
          <FilterSelect
            label="Persisted"
            name="persisted"
            value={filters.persisted}
            options={[
              ['true', 'Persisted'],
              ['false', 'Not persisted'],
            ]}
            onChange={(persisted) => setFilters({ ...filters, persisted })}
          />
        </form>
        <SnapshotsTable
          jobId={jobId}
          rows={snapshots.items}
          loaded={snapshots.loaded}
          now={now}
          actionsColumn={snapshotActions.operator}
          buttons={snapshotActions.buttons}
        />
        <Alert error={snapshots.error} />
        <More
          shown={snapshots.items.length}
          hasMore={snapshots.hasMore}
          loading={snapshots.loading && snapshots.loaded}
          testid="more-snapshots"
          label="Load more snapshots"
          onMore={snapshots.more}
        />
      </section>

      <section aria-labelledby="history-title">
        <h2 id="history-title">History</h2>
        <HistoryTable jobId={jobId} list={history} now={now} caption="Events of the job" showSnapshot />
      </section>
      {snapshotActions.dialog}
    </>
  );
}

/** The charts' checkpoints: up to 1,000 newest; a refresh reads the newest page and merges it in. */
function useCheckpoints(jobId: string) {
  const held = useRef<CheckpointSample[]>([]);
  return useResource(
    async (signal) => {
      const page = (first: number, after: string | null) =>
        gql<{ snapshots: Connection<CheckpointSample> }>(CHECKPOINTS, { jobId, first, after }, signal).then(
          (answer) => answer.snapshots,
        );
      let items: CheckpointSample[] | null = null;
      if (held.current.length > 0) {
        const newest = await page(CHART_PAGE, null);
        items = mergeNewest(
          held.current,
          newest.edges.map((edge) => edge.node),
          !newest.pageInfo.hasNextPage,
          CHART_MAX,
        );
      }
      items ??= (await allPages(page, CHART_PAGE, CHART_MAX)).items;
      held.current = items;
      return items;
    },
    [jobId],
  );
}

function JobFacts({ job, now }: { job: JobDetail; now: number }) {
  const c = job.checkpointing;
  return (
    <section aria-label="Job details" class="panel">
      <Facts
        items={[
          ['Job id', <Mono>{job.id}</Mono>],
          ['Namespace', job.namespace],
          ['Tasks', <span title={job.tasks.join(', ')}>{job.tasks.length}</span>],
          [
            'Snapshots',
            <>
              {job.counts.completed} completed · {job.counts.failed} failed · {job.counts.inProgress} in
              progress · {job.counts.discarded} discarded
            </>,
          ],
          [
            'Referenced state',
            <>
              {formatBytes(job.referencedStateSize)}
              {job.referencedFiles !== null && (
                <span class="muted"> in {plural(job.referencedFiles, 'file')}</span>
              )}
            </>,
          ],
          [
            'Consecutive failures',
            <span class={job.consecutiveFailures > 0 ? 'failed-count' : undefined}>
              {job.consecutiveFailures} (tolerable {c.tolerableFailures})
            </span>,
          ],
          [
            'Latest checkpoint',
            job.latestCompletedCheckpoint ? (
              <>
                <a href={snapshotHref(job.id, job.latestCompletedCheckpoint.id)}>
                  #{job.latestCompletedCheckpoint.id}
                </a>{' '}
                <Ago iso={job.latestCompletedCheckpoint.completedAt} now={now} /> ·{' '}
                {formatBytes(job.latestCompletedCheckpoint.stateSize)}
              </>
            ) : (
              <span class="muted">none yet</span>
            ),
          ],
          [
            'Latest savepoint',
            job.latestSavepoint ? (
              <>
                <a href={snapshotHref(job.id, job.latestSavepoint.id)}>#{job.latestSavepoint.id}</a>{' '}
                <Ago iso={job.latestSavepoint.completedAt} now={now} />
              </>
            ) : (
              <span class="muted">none</span>
            ),
          ],
          [
            'Checkpointing',
            <>
              retain {c.numRetained} · timeout {formatDuration(c.timeoutMs)} · max concurrent{' '}
              {c.maxConcurrent} · min pause {formatDuration(c.minPauseMs)} · {c.retention}
            </>,
          ],
          ['Checkpoint directory', <Mono>{job.storage.checkpointDir}</Mono>],
          ['Savepoint directory', <Mono>{job.storage.savepointDir}</Mono>],
          [
            'Source',
            job.source ? `Flink cluster ${job.source.cluster} (managed)` : 'its clients report its snapshots',
          ],
          ['Registered', <Instant iso={job.registeredAt} now={now} />],
        ]}
      />
    </section>
  );
}

type PlannedJob = JobDetail & {
  plans: { failover: RestorePlanView | null; newestSavepoint: RestorePlanView | null };
};

/** What a failover and the newest savepoint would restore from (R64), and the job's last restore (R62). */
function RestorePlansCard({ job, now }: { job: PlannedJob; now: number }) {
  const restore = job.latestRestore;
  return (
    <section class="panel card" aria-labelledby="restore-title" data-testid="restore-plans">
      <h2 id="restore-title">Restore from</h2>
      <RestorePlanRow
        title="On a failover (what Flink restores)"
        plan={job.plans.failover}
        job={job}
        now={now}
      />
      <RestorePlanRow title="The newest savepoint" plan={job.plans.newestSavepoint} job={job} now={now} />
      {restore && (
        <p class="muted small">
          Last restored <Ago iso={restore.restoredAt} now={now} /> from{' '}
          {restore.snapshot ? (
            <a href={snapshotHref(job.id, restore.snapshot.id)}>snapshot {restore.snapshot.id}</a>
          ) : (
            <Mono>{restore.restorePath}</Mono>
          )}{' '}
          ({restore.claimMode})
        </p>
      )}
    </section>
  );
}

function RestorePlanRow(props: { title: string; plan: RestorePlanView | null; job: JobDetail; now: number }) {
  const { plan, job, now } = props;
  return (
    <div class="restore-plan">
      <h3>{props.title}</h3>
      {plan?.ok ? (
        <>
          <p>
            {plan.snapshot ? (
              <>
                <a href={snapshotHref(job.id, plan.snapshot.id)}>
                  {plan.snapshot.kind.toLowerCase()} {plan.snapshot.id}
                </a>{' '}
                <StatusBadge status={plan.snapshot.status} />{' '}
                <span class="muted">
                  completed <Ago iso={plan.snapshot.completedAt} now={now} />
                </span>{' '}
              </>
            ) : null}
            <span class="muted">· claim mode {plan.claimMode}</span>
          </p>
          <p class="path">
            <Mono title="The path to pass to flink run -s (execution.savepoint.path)">
              {plan.restorePath}
            </Mono>
          </p>
          {plan.versionWarning && <p class="warning small">{plan.versionWarning}</p>}
        </>
      ) : null}
      <p class="muted small">{plan?.reason ?? 'No plan.'}</p>
    </div>
  );
}

function ScheduleCard(props: {
  job: JobDetail;
  now: number;
  actions: Actions;
  operator: boolean;
  afterwards(): void;
}) {
  const { job, now } = props;
  const schedule = job.schedule;
  return (
    <section class="panel card" aria-labelledby="schedule-title" data-testid="schedule">
      <h2 id="schedule-title">Savepoint schedule</h2>
      {schedule ? (
        <>
          <p>
            <strong>{describeSchedule(schedule)}</strong> · next <Ago iso={schedule.nextFireAt} now={now} />
            {schedule.lastSlotAt && (
              <span class="muted">
                {' '}
                · last <Ago iso={schedule.lastSlotAt} now={now} />
              </span>
            )}
          </p>
          {(schedule.targetDirectory || schedule.retention) && (
            <p class="muted small">
              {schedule.targetDirectory && (
                <>
                  into <Mono>{schedule.targetDirectory}</Mono>{' '}
                </>
              )}
              {schedule.retention?.maxCount != null && <>keeps {schedule.retention.maxCount} </>}
              {schedule.retention?.maxAge && <>for {schedule.retention.maxAge}</>}
            </p>
          )}
        </>
      ) : (
        <p class="muted">No schedule: savepoints are taken only on request.</p>
      )}
      {props.operator && <ScheduleForm {...props} />}
    </section>
  );
}

function ScheduleForm({
  job,
  actions,
  afterwards,
}: {
  job: JobDetail;
  actions: Actions;
  afterwards(): void;
}) {
  const s = job.schedule;
  const [form, setForm] = useState({
    every: s?.every ?? '',
    cron: s?.cron ?? '',
    tz: s?.tz ?? '',
    targetDirectory: s?.targetDirectory ?? '',
    maxCount: s?.retention?.maxCount != null ? String(s.retention.maxCount) : '',
    maxAge: s?.retention?.maxAge ?? '',
  });
  const field = (name: keyof typeof form) => ({
    name,
    value: form[name],
    onInput: (e: { currentTarget: HTMLInputElement }) => setForm({ ...form, [name]: e.currentTarget.value }),
  });
  const submit = () =>
    actions.run(async () => {
      const text = (value: string) => (value.trim() === '' ? undefined : value.trim());
      const retention = {
        maxCount: text(form.maxCount) === undefined ? undefined : Number(form.maxCount),
        maxAge: text(form.maxAge),
      };
      const schedule = {
        every: text(form.every),
        cron: text(form.cron),
        tz: text(form.tz),
        targetDirectory: text(form.targetDirectory),
        retention: retention.maxCount === undefined && retention.maxAge === undefined ? undefined : retention,
      };
      const { setSavepointSchedule } = await gql<{ setSavepointSchedule: { nextFireAt: string } }>(
        SET_SCHEDULE,
        {
          jobId: job.id,
          schedule,
        },
      );
      afterwards();
      return `Schedule set: ${describeSchedule(schedule)}, next at ${new Date(setSavepointSchedule.nextFireAt).toLocaleString()}.`;
    });
  return (
    <form
      data-testid="schedule-form"
      class="schedule-form"
      aria-label="Change the savepoint schedule"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <div class="row">
        <label class="field">
          <span>Every (ISO-8601 duration)</span>
          <input type="text" placeholder="e.g. PT10M" autoComplete="off" {...field('every')} />
        </label>
        <label class="field">
          <span>Cron</span>
          <input type="text" placeholder="e.g. 0 */6 * * *" autoComplete="off" {...field('cron')} />
        </label>
        <label class="field narrow">
          <span>Time zone</span>
          <input type="text" placeholder="UTC" autoComplete="off" {...field('tz')} />
        </label>
      </div>
      <details>
        <summary>Target directory and retention</summary>
        <div class="row">
          <label class="field wide">
            <span>Target directory</span>
            <input
              type="text"
              placeholder={job.storage.savepointDir}
              autoComplete="off"
              {...field('targetDirectory')}
            />
          </label>
          <label class="field narrow">
            <span>Keep at most</span>
            <input type="number" min={1} step={1} {...field('maxCount')} />
          </label>
          <label class="field narrow">
            <span>Keep for (ISO-8601)</span>
            <input type="text" placeholder="e.g. P7D" autoComplete="off" {...field('maxAge')} />
          </label>
        </div>
      </details>
      <p class="muted small">Give either an interval or a cron expression.</p>
      <div class="row">
        <button type="submit" class="primary" data-action="set-schedule" disabled={actions.busy}>
          Set schedule
        </button>
        {job.schedule && (
          <button
            type="button"
            data-action="remove-schedule"
            disabled={actions.busy}
            onClick={() =>
              void actions.run(async () => {
                const { removeSavepointSchedule } = await gql<{ removeSavepointSchedule: boolean }>(
                  REMOVE_SCHEDULE,
                  {
                    jobId: job.id,
                  },
                );
                afterwards();
                return removeSavepointSchedule ? 'Schedule removed.' : 'There was no schedule.';
              })
            }
          >
            Remove schedule
          </button>
        )}
      </div>
    </form>
  );
}

function Charts({ samples }: { samples: CheckpointSample[] }) {
  const size = useMemo(() => sizeSeries(samples), [samples]);
  const duration = useMemo(() => durationSeries(samples), [samples]);
  const sizeData = useMemo(
    () => [size.x, size.full, size.shared, size.uploaded] as [number[], ...(number | null)[][]],
    [size],
  );
  const durationData = useMemo(
    () => [duration.x, duration.duration, duration.failed] as [number[], ...(number | null)[][]],
    [duration],
  );
  const time = (seconds: number) => new Date(seconds * 1000).toLocaleString();
  const sizeSummary =
    size.points === 0
      ? 'State size: no completed checkpoints yet'
      : `State size of ${plural(size.points, 'completed checkpoint')}, latest ${formatBytes(size.latest)}`;
  const durationSummary =
    duration.points === 0 && duration.failures === 0
      ? 'Checkpoint duration: no completed or failed checkpoints yet'
      : `Duration of ${plural(duration.points, 'completed checkpoint')}${
          duration.latest === null ? '' : `, latest ${formatDuration(duration.latest)}`
        }, ${duration.failures} failed`;
  return (
    <div class="charts">
      <Chart
        testid="state-size-chart"
        title="State size"
        summary={sizeSummary}
        points={size.points}
        failures={0}
        data={sizeData}
        formatY={formatBytes}
        empty="No completed checkpoints yet."
        series={(palette: Palette) => [
          {
            // The whole state, whatever the checkpoint type (not FULL as opposed to INCREMENTAL, R58).
            label: 'Whole state',
            stroke: palette('--chart-1'),
            fill: palette('--chart-1-fill'),
            width: 2,
            value: (_u, v) => formatBytes(v),
          },
          {
            label: 'Shared (incremental)',
            stroke: palette('--chart-2'),
            width: 2,
            dash: [6, 4],
            spanGaps: true,
            value: (_u, v) => formatBytes(v),
          },
          {
            label: 'Uploaded (checkpointed size)',
            stroke: palette('--chart-3'),
            width: 2,
            dash: [2, 3],
            spanGaps: true,
            value: (_u, v) => formatBytes(v),
          },
        ]}
        table={() => (
          <table class="data compact">
            <caption>State size of the completed checkpoints</caption>
            <thead>
              <tr>
                <th scope="col">Completed</th>
                <th scope="col" class="num">
                  Whole state
                </th>
                <th scope="col" class="num">
                  Shared
                </th>
                <th scope="col" class="num">
                  Uploaded
                </th>
              </tr>
            </thead>
            <tbody>
              {size.x.map((x, i) => (
                <tr key={i}>
                  <td>{time(x)}</td>
                  <td class="num">{formatBytes(size.full[i])}</td>
                  <td class="num">{formatBytes(size.shared[i])}</td>
                  <td class="num">{formatBytes(size.uploaded[i])}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      />
      <Chart
        testid="duration-chart"
        title="Checkpoint duration"
        summary={durationSummary}
        points={duration.points}
        failures={duration.failures}
        data={durationData}
        formatY={formatDuration}
        empty="No completed or failed checkpoints yet."
        series={(palette: Palette) => [
          {
            label: 'Duration',
            stroke: palette('--chart-3'),
            width: 2,
            spanGaps: true,
            value: (_u, v) => formatDuration(v),
          },
          {
            label: 'Failed',
            stroke: palette('--danger'),
            fill: palette('--danger'),
            width: 0,
            paths: () => null,
            points: { show: true, size: 9, stroke: palette('--danger'), fill: palette('--danger'), width: 1 },
            value: (_u, v) => (v === null ? '—' : `failed after ${formatDuration(v)}`),
          },
        ]}
        table={() => (
          <table class="data compact">
            <caption>Checkpoint durations (failed ones: time to failure)</caption>
            <thead>
              <tr>
                <th scope="col">At</th>
                <th scope="col" class="num">
                  Duration
                </th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {duration.x.map((x, i) => (
                <tr key={i}>
                  <td>{time(x)}</td>
                  <td class="num">{formatDuration(duration.duration[i] ?? duration.failed[i])}</td>
                  <td>{duration.duration[i] !== null ? 'completed' : 'failed'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      />
    </div>
  );
}

function SnapshotsTable(props: {
  jobId: string;
  rows: SnapshotRow[];
  loaded: boolean;
  now: number;
  actionsColumn: boolean;
  buttons(row: SnapshotRow): ComponentChildren;
}) {
  const { rows, now, jobId } = props;
  if (!props.loaded) return <Loading what="snapshots" />;
  const columns = props.actionsColumn ? 14 : 13;
  return (
    <TableWrap label="Snapshots">
      <table data-testid="snapshots" class="data">
        <caption>
          Snapshots <span class="muted">(newest first)</span>
        </caption>
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Kind</th>
            <th scope="col">Status</th>
            <th scope="col">Trigger</th>
            <th scope="col">Persisted</th>
            <th scope="col">Format</th>
            <th scope="col" title="FULL or INCREMENTAL (Flink's CheckpointType)">
              Type
            </th>
            <th scope="col" class="num">
              State size
            </th>
            <th scope="col" class="num">
              Shared / private
            </th>
            <th scope="col">Path</th>
            <th scope="col">Discard</th>
            <th scope="col">Triggered</th>
            <th scope="col">Completed / failed</th>
            {props.actionsColumn && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={columns} class="muted">
                No snapshots match.
              </td>
            </tr>
          )}
          {rows.map((s) => (
            <tr key={s.id} data-snapshot-id={String(s.id)} data-status={s.status}>
              <th scope="row">
                <a href={snapshotHref(jobId, s.id)}>{s.id}</a>
              </th>
              <td>{s.kind}</td>
              <td>
                <StatusBadge status={s.status} />
              </td>
              <td>{s.triggerType}</td>
              <td>{yesNo(s.persisted)}</td>
              <td>{s.formatType}</td>
              <td data-field="checkpointType">{s.checkpointType ?? <span class="muted">—</span>}</td>
              <td class="num">{formatBytes(s.stateSize)}</td>
              <td class="num">
                {formatBytes(s.sharedStateSize)} / {formatBytes(s.privateStateSize)}
              </td>
              <td class="path">
                <Mono title={s.restorePath ? `flink run -s ${s.restorePath}` : s.externalPath}>
                  {s.restorePath ?? s.externalPath}
                </Mono>
              </td>
              <td class="nowrap">
                {s.discard ? (
                  <span title={s.discard.reason ?? undefined}>
                    {s.discard.cause} / {s.discard.state}
                  </span>
                ) : (
                  <span class="muted">—</span>
                )}
              </td>
              <td class="nowrap">
                <Ago iso={s.triggeredAt} now={now} />
              </td>
              <td class="nowrap">
                {s.completedAt ? (
                  <Ago iso={s.completedAt} now={now} />
                ) : s.failedAt ? (
                  <span class="failed-count" title={s.failureReason ?? undefined}>
                    failed <Ago iso={s.failedAt} now={now} />
                  </span>
                ) : (
                  <span class="muted">—</span>
                )}
              </td>
              {props.actionsColumn && <td class="nowrap">{props.buttons(s)}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
