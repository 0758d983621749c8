// `#/jobs/<jobId>`: the job, its checkpoints charted, its snapshots, restore point, schedule and history;
// live through the job's snapshot events.
import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { byteTicks, formatByteTick } from '../axis';
import { Chart, type Palette, timeOf } from '../chart';
import { describeSchedule, formatBytes, formatDuration, plural } from '../format';
import { HistorySection, useHistory } from '../history';
import { type Actions, type Resource, useActions, useLiveJob, useNow, useResource } from '../hooks';
import { type PagedList, usePagedList } from '../lists';
import {
  allPages,
  can,
  CHECKPOINTS,
  CLAIM_MODES,
  type Connection,
  JOB,
  type JobAnswer,
  type JobDetail,
  RECORD_RESTORE,
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
  Check,
  type Column,
  ConfirmDialog,
  Crumbs,
  DataTable,
  Facts,
  Field,
  FilterSelect,
  Instant,
  JobNotVisible,
  Loading,
  Mono,
  More,
  NotFound,
  Outcome,
  StatusBadge,
  TableWrap,
  yesNo,
} from '../ui';
import { LivePageHead } from './live-badge';

const CHART_PAGE = 100;
const CHART_MAX = 1000;
const SNAPSHOT_PAGE = 20;
const HISTORY_PAGE = 50;

export function JobPage({ jobId }: { jobId: string }) {
  const viewer = useViewer();
  const now = useNow();
  const actions = useActions();
  const job = useJob(jobId);
  const checkpoints = useCheckpoints(jobId);
  const snapshots = useSnapshots(jobId);
  const history = useHistory(jobId, undefined, HISTORY_PAGE);
  // Refreshes, not reloads: on a slow link a busy job's events come faster than its reads (the charts' up to 10
  // pages), and each event would abort them and start over, for ever "Loading".
  const refresh = () => {
    job.refresh();
    checkpoints.refresh();
    snapshots.list.refresh();
    history.refresh();
  };
  // Any of the page's reads failing makes it Stale, and read again when the subscription (re)opens.
  const readError = job.error ?? checkpoints.error ?? snapshots.list.error ?? history.error;
  const liveState = useLiveJob(jobId, refresh, readError);
  const detail = job.data;
  const snapshotActions = useSnapshotActions(detail ?? undefined, actions, (change) => {
    snapshots.list.patch((row) => (row.id === change.id ? { ...row, ...change } : row));
    refresh();
  });

  if (detail === null) {
    return (
      <NotFound title="Job not found" focusable>
        <JobNotVisible jobId={jobId} />
      </NotFound>
    );
  }

  return (
    <>
      <Crumbs above={[]} current={detail?.name ?? jobId} />
      <LivePageHead
        title={detail?.name ?? 'Job'}
        status={detail?.status}
        live={liveState}
        readError={readError}
      >
        {can(viewer, 'runtime') && detail && (
          <TriggerSavepointButton jobId={jobId} actions={actions} afterwards={refresh} />
        )}
      </LivePageHead>
      <Outcome actions={actions} loadError={job.error} />
      {!detail && !job.error && <Loading what="the job" />}
      {detail && (
        <JobOverview
          job={detail}
          now={now}
          actions={actions}
          operator={can(viewer, 'operator')}
          runtime={can(viewer, 'runtime')}
          afterwards={refresh}
        />
      )}
      <ChartsSection checkpoints={checkpoints} />
      <SnapshotsSection
        jobId={jobId}
        now={now}
        snapshots={snapshots}
        actionsColumn={snapshotActions.operator}
        buttons={snapshotActions.buttons}
      />
      <HistorySection jobId={jobId} list={history} now={now} caption="Events of the job" showSnapshot />
      {snapshotActions.dialog}
    </>
  );
}

type PlannedJob = JobDetail & {
  plans: { failover: RestorePlanView | null; newestSavepoint: RestorePlanView | null };
};

/** The job with what a failover and the newest savepoint would restore from; null when there is none. */
function useJob(jobId: string): Resource<PlannedJob | null> {
  return useResource(
    async (signal) => {
      const { job, failover, newestSavepoint } = await gql<JobAnswer>(JOB, { id: jobId }, signal);
      return job && { ...job, plans: { failover, newestSavepoint } };
    },
    [jobId],
  );
}

interface SnapshotFilters {
  kind: string;
  status: string;
  persisted: string;
}

/** The job's snapshots, newest first, a page at a time, as the filters choose (a new choice starts over). */
function useSnapshots(jobId: string) {
  const [filters, setFilters] = useState<SnapshotFilters>({ kind: '', status: '', persisted: '' });
  const list = usePagedList<SnapshotRow>(
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
  );
  return { filters, setFilters, list };
}

/**
 * A trigger carries a triggerId of its own, kept until a trigger is answered: a click after one whose answer
 * was lost (a dropped connection, OUTCOME_UNKNOWN) sends the same id, which names the savepoint the first one
 * took if the store recorded it, rather than taking a second.
 */
function TriggerSavepointButton(props: { jobId: string; actions: Actions; afterwards(): void }) {
  const { jobId, actions } = props;
  const unanswered = useRef<string | undefined>(undefined);
  return (
    <button
      type="button"
      class="primary"
      data-action="trigger-savepoint"
      disabled={actions.busy}
      onClick={() =>
        void actions.run(async () => {
          const triggerId = (unanswered.current ??= newTriggerId());
          const { triggerSnapshot } = await gql<{ triggerSnapshot: { id: number; status: string } }>(
            TRIGGER_SAVEPOINT,
            { jobId, triggerId },
          );
          unanswered.current = undefined;
          props.afterwards();
          return `Savepoint ${triggerSnapshot.id} triggered (${triggerSnapshot.status}).`;
        })
      }
    >
      Trigger savepoint
    </button>
  );
}

/** 128 random bits as hex: `crypto.randomUUID` exists only in secure contexts (a console on plain HTTP). */
function newTriggerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The job's warnings, its facts, and the cards of its restore plans and savepoint schedule. */
function JobOverview(props: {
  job: PlannedJob;
  now: number;
  actions: Actions;
  operator: boolean;
  runtime: boolean;
  afterwards(): void;
}) {
  const { job, now } = props;
  return (
    <>
      {job.warnings.map((warning) => (
        <p class="panel warning" role="note" data-testid="job-warning">
          {warning}
        </p>
      ))}
      <JobFacts job={job} now={now} />
      <div class="cards">
        <RestorePlansCard {...props} />
        <ScheduleCard {...props} />
      </div>
    </>
  );
}

function ChartsSection({ checkpoints }: { checkpoints: Resource<CheckpointSample[]> }) {
  return (
    <section aria-labelledby="charts-title">
      <h2 id="charts-title">Checkpoints over time</h2>
      <Alert error={checkpoints.error} />
      {checkpoints.data ? (
        <div class="charts">
          <StateSizeChart samples={checkpoints.data} />
          <DurationChart samples={checkpoints.data} />
        </div>
      ) : (
        !checkpoints.error && <Loading what="checkpoints" />
      )}
    </section>
  );
}

/** What a row of the snapshots table shows besides its snapshot. */
interface SnapshotRowOptions {
  jobId: string;
  now: number;
  actionsColumn: boolean;
  buttons(row: SnapshotRow): ComponentChildren;
}

function SnapshotsSection(props: SnapshotRowOptions & { snapshots: ReturnType<typeof useSnapshots> }) {
  const { snapshots, ...options } = props;
  const { filters, setFilters, list } = snapshots;
  return (
    <section aria-labelledby="snapshots-title">
      <h2 id="snapshots-title">Snapshots</h2>
      <SnapshotFilterForm filters={filters} onChange={setFilters} />
      <SnapshotsTable list={list} {...options} />
      <Alert error={list.error} />
      <More
        shown={list.items.length}
        hasMore={list.hasMore}
        loading={list.loading && list.loaded}
        testid="more-snapshots"
        label="Load more snapshots"
        onMore={list.more}
      />
    </section>
  );
}

function SnapshotFilterForm(props: { filters: SnapshotFilters; onChange(filters: SnapshotFilters): void }) {
  const { filters, onChange } = props;
  return (
    <form class="filters" aria-label="Filter snapshots" onSubmit={(e) => e.preventDefault()}>
      <FilterSelect
        label="Kind"
        name="kind"
        value={filters.kind}
        options={SNAPSHOT_KINDS}
        onChange={(kind) => onChange({ ...filters, kind })}
      />
      <FilterSelect
        label="Status"
        name="snapshotStatus"
        value={filters.status}
        options={SNAPSHOT_STATUSES}
        onChange={(status) => onChange({ ...filters, status })}
      />
      <FilterSelect
        label="Persisted"
        name="persisted"
        value={filters.persisted}
        options={[
          ['true', 'Persisted'],
          ['false', 'Not persisted'],
        ]}
        onChange={(persisted) => onChange({ ...filters, persisted })}
      />
    </form>
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

/**
 * What a failover and the newest savepoint would restore from (R64), and the job's last restore (R62). A
 * caller with the runtime scope may record that the job restarted from a plan's snapshot (after running
 * `flink run -s <path>`): snapcat cannot see that of a job it does not mirror from Flink.
 */
function RestorePlansCard(props: {
  job: PlannedJob;
  now: number;
  actions: Actions;
  runtime: boolean;
  afterwards(): void;
}) {
  const { job, now } = props;
  const restore = job.latestRestore;
  const [target, setTarget] = useState<RestorePlanView | null>(null);
  const recordable = (plan: RestorePlanView | null) =>
    props.runtime && plan?.ok && plan.snapshot && !job.source ? () => setTarget(plan) : undefined;
  return (
    <section class="panel card" aria-labelledby="restore-title" data-testid="restore-plans">
      <h2 id="restore-title">Restore from</h2>
      {(
        [
          ['On a failover (what Flink restores)', job.plans.failover],
          ['The newest savepoint', job.plans.newestSavepoint],
        ] as const
      ).map(([title, plan]) => (
        <RestorePlanRow
          key={title}
          title={title}
          plan={plan}
          job={job}
          now={now}
          onRecord={recordable(plan)}
        />
      ))}
      {props.runtime && (
        <RecordRestoreDialog
          job={job}
          plan={target}
          actions={props.actions}
          onClose={() => setTarget(null)}
          afterwards={props.afterwards}
        />
      )}
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

/**
 * Records the restore (GraphQL `restoreSnapshot`, R62) with the claim mode the operator gave Flink: the plan's
 * by default. The page shows the job's new last restore once it answers.
 */
function RecordRestoreDialog(props: {
  job: JobDetail;
  plan: RestorePlanView | null;
  actions: Actions;
  onClose(): void;
  afterwards(): void;
}) {
  const { job, plan, actions } = props;
  const [claimMode, setClaimMode] = useState<string>('NO_CLAIM');
  const [allowNonRestoredState, setAllowNonRestoredState] = useState(false);
  // The dialog keeps the last plan's words while it closes; each opening starts from the plan's claim mode.
  const last = useRef<RestorePlanView | null>(null);
  if (plan) last.current = plan;
  const shown = plan ?? last.current;
  useEffect(() => {
    if (!plan) return;
    setClaimMode(plan.claimMode ?? 'NO_CLAIM');
    setAllowNonRestoredState(false);
  }, [plan]);
  const what = shown?.snapshot ? `${shown.snapshot.kind.toLowerCase()} ${shown.snapshot.id}` : 'a snapshot';
  // Closed whatever the answer, as the discard dialog is: a refusal is said on the page, which the open
  // modal would keep out of reach.
  const record = async (snapshotId: number) => {
    await actions.run(async () => {
      const { restoreSnapshot } = await gql<{ restoreSnapshot: { claimMode: string } }>(RECORD_RESTORE, {
        jobId: job.id,
        snapshotId,
        claimMode,
        allowNonRestoredState,
      });
      props.afterwards();
      return `Restore of ${job.name} from ${what} recorded (${restoreSnapshot.claimMode}).`;
    });
    props.onClose();
  };
  return (
    <ConfirmDialog
      open={plan !== null}
      title={`Record a restore from ${what}`}
      message={
        `Record that ${job.name} restarted from ${what}` +
        (shown?.restorePath ? ` (${shown.restorePath})` : '') +
        '? Its next snapshots continue above that id; the claim mode says who owns its files from now on.'
      }
      confirmLabel="Record restore"
      tone="primary"
      reason={false}
      testid="record-restore"
      busy={actions.busy}
      onCancel={props.onClose}
      onConfirm={() => {
        if (plan?.snapshot) void record(plan.snapshot.id);
      }}
    >
      <Field label="Claim mode (as given to Flink)">
        <select
          name="claimMode"
          value={claimMode}
          onChange={(event) => setClaimMode(event.currentTarget.value)}
        >
          {CLAIM_MODES.map((mode) => (
            <option value={mode}>{mode}</option>
          ))}
        </select>
      </Field>
      <Check
        name="allowNonRestoredState"
        label="Allow non-restored state (state of removed operators was skipped)"
        checked={allowNonRestoredState}
        onChange={setAllowNonRestoredState}
      />
    </ConfirmDialog>
  );
}

function RestorePlanRow(props: {
  title: string;
  plan: RestorePlanView | null;
  job: JobDetail;
  now: number;
  onRecord?: () => void;
}) {
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
          {props.onRecord && (
            <button
              type="button"
              data-action="record-restore"
              aria-label={`Record restore… from ${plan.snapshot?.kind.toLowerCase() ?? 'snapshot'} ${plan.snapshot?.id ?? ''}`}
              onClick={props.onRecord}
            >
              Record restore…
            </button>
          )}
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

type ScheduleFields = Record<'every' | 'cron' | 'tz' | 'targetDirectory' | 'maxCount' | 'maxAge', string>;

/** The form's fields, filled with the job's schedule (empty without one). */
const scheduleFields = (s: JobDetail['schedule']): ScheduleFields => ({
  every: s?.every ?? '',
  cron: s?.cron ?? '',
  tz: s?.tz ?? '',
  targetDirectory: s?.targetDirectory ?? '',
  maxCount: s?.retention?.maxCount != null ? String(s.retention.maxCount) : '',
  maxAge: s?.retention?.maxAge ?? '',
});

/** The schedule the fields give setSavepointSchedule: an empty field is left out. */
function scheduleInput(form: ScheduleFields) {
  const text = (value: string) => (value.trim() === '' ? undefined : value.trim());
  const retention = {
    maxCount: text(form.maxCount) === undefined ? undefined : Number(form.maxCount),
    maxAge: text(form.maxAge),
  };
  return {
    every: text(form.every),
    cron: text(form.cron),
    tz: text(form.tz),
    targetDirectory: text(form.targetDirectory),
    retention: retention.maxCount === undefined && retention.maxAge === undefined ? undefined : retention,
  };
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
  const [form, setForm] = useState(() => scheduleFields(job.schedule));
  const field = (name: keyof ScheduleFields) => ({
    name,
    value: form[name],
    onInput: (e: { currentTarget: HTMLInputElement }) => setForm({ ...form, [name]: e.currentTarget.value }),
  });
  const submit = () =>
    actions.run(async () => {
      const schedule = scheduleInput(form);
      const { setSavepointSchedule } = await gql<{ setSavepointSchedule: { nextFireAt: string } }>(
        SET_SCHEDULE,
        { jobId: job.id, schedule },
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
        <Field label="Every (ISO-8601 duration)">
          <input type="text" placeholder="e.g. PT10M" autoComplete="off" {...field('every')} />
        </Field>
        <Field label="Cron">
          <input type="text" placeholder="e.g. 0 */6 * * *" autoComplete="off" {...field('cron')} />
        </Field>
        <Field label="Time zone" width="narrow">
          <input type="text" placeholder="UTC" autoComplete="off" {...field('tz')} />
        </Field>
      </div>
      <details>
        <summary>Target directory and retention</summary>
        <div class="row">
          <Field label="Target directory" width="wide">
            <input
              type="text"
              placeholder={job.storage.savepointDir}
              autoComplete="off"
              {...field('targetDirectory')}
            />
          </Field>
          <Field label="Keep at most" width="narrow">
            <input type="number" min={1} step={1} {...field('maxCount')} />
          </Field>
          <Field label="Keep for (ISO-8601)" width="narrow">
            <input type="text" placeholder="e.g. P7D" autoComplete="off" {...field('maxAge')} />
          </Field>
        </div>
      </details>
      <p class="muted small">Give either an interval or a cron expression.</p>
      <div class="row">
        <button type="submit" class="primary" data-action="set-schedule" disabled={actions.busy}>
          Set schedule
        </button>
        {job.schedule && <RemoveScheduleButton jobId={job.id} actions={actions} afterwards={afterwards} />}
      </div>
    </form>
  );
}

function RemoveScheduleButton(props: { jobId: string; actions: Actions; afterwards(): void }) {
  const { jobId, actions } = props;
  return (
    <button
      type="button"
      data-action="remove-schedule"
      disabled={actions.busy}
      onClick={() =>
        void actions.run(async () => {
          const { removeSavepointSchedule } = await gql<{ removeSavepointSchedule: boolean }>(
            REMOVE_SCHEDULE,
            {
              jobId,
            },
          );
          props.afterwards();
          return removeSavepointSchedule ? 'Schedule removed.' : 'There was no schedule.';
        })
      }
    >
      Remove schedule
    </button>
  );
}

type Columns = [number[], ...(number | null)[][]];

/** The whole, shared and uploaded state of each completed checkpoint. */
function StateSizeChart({ samples }: { samples: CheckpointSample[] }) {
  const size = useMemo(() => sizeSeries(samples), [samples]);
  const data = useMemo(() => [size.x, size.full, size.shared, size.uploaded] as Columns, [size]);
  const summary =
    size.points === 0
      ? 'State size: no completed checkpoints yet'
      : `State size of ${plural(size.points, 'completed checkpoint')}, latest ${formatBytes(size.latest)}`;
  return (
    <Chart
      testid="state-size-chart"
      title="State size"
      summary={summary}
      points={size.points}
      failures={0}
      data={data}
      formatY={formatByteTick}
      yTicks={byteTicks}
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
        <DataTable
          compact
          caption="State size of the completed checkpoints"
          columns={[
            'Completed',
            { label: 'Whole state', num: true },
            { label: 'Shared', num: true },
            { label: 'Uploaded', num: true },
          ]}
          items={size.x}
          row={(x, i) => (
            <tr key={i}>
              <td>{timeOf(x)}</td>
              <td class="num">{formatBytes(size.full[i])}</td>
              <td class="num">{formatBytes(size.shared[i])}</td>
              <td class="num">{formatBytes(size.uploaded[i])}</td>
            </tr>
          )}
        />
      )}
    />
  );
}

/** How long each completed checkpoint took, and each failed one until it failed (marked). */
function DurationChart({ samples }: { samples: CheckpointSample[] }) {
  const duration = useMemo(() => durationSeries(samples), [samples]);
  const data = useMemo(() => [duration.x, duration.duration, duration.failed] as Columns, [duration]);
  const summary =
    duration.points === 0 && duration.failures === 0
      ? 'Checkpoint duration: no completed or failed checkpoints yet'
      : `Duration of ${plural(duration.points, 'completed checkpoint')}${
          duration.latest === null ? '' : `, latest ${formatDuration(duration.latest)}`
        }, ${duration.failures} failed`;
  return (
    <Chart
      testid="duration-chart"
      title="Checkpoint duration"
      summary={summary}
      points={duration.points}
      failures={duration.failures}
      data={data}
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
        <DataTable
          compact
          caption="Checkpoint durations (failed ones: time to failure)"
          columns={['At', { label: 'Duration', num: true }, 'Outcome']}
          items={duration.x}
          row={(x, i) => (
            <tr key={i}>
              <td>{timeOf(x)}</td>
              <td class="num">{formatDuration(duration.duration[i] ?? duration.failed[i])}</td>
              <td>{duration.duration[i] !== null ? 'completed' : 'failed'}</td>
            </tr>
          )}
        />
      )}
    />
  );
}

const SNAPSHOT_COLUMNS: Column[] = [
  'Id',
  'Kind',
  'Status',
  'Trigger',
  'Persisted',
  'Format',
  { label: 'Type', title: "FULL or INCREMENTAL (Flink's CheckpointType)" },
  { label: 'State size', num: true },
  { label: 'Shared / private', num: true },
  'Path',
  'Discard',
  'Triggered',
  'Completed / failed',
];

function SnapshotsTable(props: SnapshotRowOptions & { list: PagedList<SnapshotRow> }) {
  const { list, ...options } = props;
  if (!list.loaded) return list.error ? null : <Loading what="snapshots" />;
  return (
    <TableWrap label="Snapshots">
      <DataTable
        testid="snapshots"
        caption={
          <>
            Snapshots <span class="muted">(newest first)</span>
          </>
        }
        columns={[...SNAPSHOT_COLUMNS, props.actionsColumn && 'Actions']}
        items={list.items}
        empty="No snapshots match."
        row={(s) => <SnapshotTableRow key={s.id} snapshot={s} {...options} />}
      />
    </TableWrap>
  );
}

function SnapshotTableRow(props: SnapshotRowOptions & { snapshot: SnapshotRow }) {
  const { snapshot: s, now } = props;
  return (
    <tr data-snapshot-id={String(s.id)} data-status={s.status}>
      <th scope="row">
        <a href={snapshotHref(props.jobId, s.id)}>{s.id}</a>
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
  );
}
