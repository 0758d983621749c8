// `#/`: every job the token may see, polled every 5 s (there is no all-jobs subscription), filtered here.
import { useMemo, useState } from 'preact/hooks';
import { describeSchedule, formatBytes, isStale, plural } from '../format';
import { useNow, usePolling, useResource } from '../hooks';
import { allPages, type Connection, JOB_STATUSES, JOBS, type JobRow } from '../queries';
import { jobHref } from '../route';
import { gql, useSessionNumber, useViewer } from '../session';
import { Ago, Alert, DataTable, Field, FilterSelect, Loading, Mono, StatusBadge, TableWrap } from '../ui';
import { LiveBadge } from './live-badge';

export const STALE_KEY = 'snapcat.staleAfterMinutes';
/** The API's greatest page: a few requests for thousands of jobs, each latency paid once per page. */
const PAGE = 500;

const fetchJobs = (signal: AbortSignal) =>
  allPages<JobRow>(
    async (first, after) => (await gql<{ jobs: Connection<JobRow> }>(JOBS, { first, after }, signal)).jobs,
    PAGE,
  ).then(({ items }) => items);

/** A job whose checkpoints stopped: RUNNING, and its latest completed checkpoint older than the threshold. */
export const jobIsStale = (job: JobRow, minutes: number, now: number) =>
  job.status === 'RUNNING' && isStale(job.latestCompletedCheckpoint?.completedAt, minutes, now);

interface JobFilters {
  status: string;
  namespace: string;
  /** Searched for in the name and the id. */
  q: string;
}

/** The jobs the filters let through. */
function filterJobs(all: JobRow[], { status, namespace, q }: JobFilters): JobRow[] {
  const needle = q.trim().toLowerCase();
  return all.filter(
    (job) =>
      (!status || job.status === status) &&
      (!namespace || job.namespace === namespace) &&
      (!needle || job.name.toLowerCase().includes(needle) || job.id.toLowerCase().includes(needle)),
  );
}

export function JobsPage() {
  const viewer = useViewer();
  const jobs = useResource(fetchJobs, []);
  // A refresh, not a reload: with thousands of jobs on a slow link the pages take longer than the interval, and
  // each tick would abort the load and start it over, for ever "Loading".
  usePolling(jobs.refresh, 5000);
  const now = useNow(5000);
  const [filters, setFilters] = useState<JobFilters>({ status: '', namespace: '', q: '' });
  const [staleAfter, setStaleAfter] = useSessionNumber(STALE_KEY, 10);

  const all = useMemo(() => jobs.data ?? [], [jobs.data]);
  const namespaces = useMemo(
    () => viewer.namespaces ?? [...new Set(all.map((job) => job.namespace))].sort(),
    [viewer.namespaces, all],
  );
  const shown = filterJobs(all, filters);
  const staleCount = shown.filter((job) => jobIsStale(job, staleAfter, now)).length;

  return (
    <>
      <div class="page-head">
        <h1>Jobs</h1>
        <div class="head-actions">
          {/* Stale while a refresh fails for want of the service or its read model: the rows may be old. */}
          <LiveBadge
            state={jobs.data ? 'live' : 'connecting'}
            readError={jobs.error}
            titles={{ live: 'The list refreshes every 5 s', connecting: 'Loading the jobs' }}
          />
        </div>
        <p class="muted">
          {jobs.data
            ? `${plural(all.length, 'job')}${staleCount ? `, ${staleCount} stale` : ''} · refreshed every 5 s`
            : ' '}
        </p>
      </div>
      <Alert error={jobs.error} />
      <form class="filters" role="search" aria-label="Filter jobs" onSubmit={(e) => e.preventDefault()}>
        <Field label="Search">
          <input
            type="search"
            name="q"
            placeholder="Name or id"
            value={filters.q}
            onInput={(e) => setFilters({ ...filters, q: e.currentTarget.value })}
          />
        </Field>
        <FilterSelect
          label="Status"
          name="status"
          value={filters.status}
          options={JOB_STATUSES}
          onChange={(status) => setFilters({ ...filters, status })}
        />
        <FilterSelect
          label="Namespace"
          name="namespace"
          value={filters.namespace}
          options={namespaces}
          onChange={(namespace) => setFilters({ ...filters, namespace })}
        />
        <StaleAfterField minutes={staleAfter} onChange={setStaleAfter} />
      </form>

      {!jobs.data && !jobs.error && <Loading what="jobs" />}
      {jobs.data && all.length === 0 && <NoJobs />}
      {jobs.data && all.length > 0 && <JobsTable all={all} shown={shown} staleAfter={staleAfter} now={now} />}
    </>
  );
}

/** The stale threshold; the text as typed is kept, and only a number of minutes (0 or more) applies. */
function StaleAfterField(props: { minutes: number; onChange(minutes: number): void }) {
  const [text, setText] = useState(String(props.minutes));
  return (
    <Field label="Stale after (minutes)" width="narrow">
      <input
        type="number"
        name="staleAfterMinutes"
        min={0}
        step={1}
        inputMode="numeric"
        value={text}
        onInput={(e) => {
          const typed = e.currentTarget.value;
          setText(typed);
          const minutes = Number(typed);
          if (typed.trim() !== '' && Number.isFinite(minutes) && minutes >= 0) props.onChange(minutes);
        }}
      />
    </Field>
  );
}

function NoJobs() {
  return (
    <div class="empty">
      <h2>No jobs yet</h2>
      <p>
        Register one with <Mono>PUT /api/v1/jobs/{'{jobId}'}</Mono> (a 32-hex-digit Flink job id), for example{' '}
        <Mono>{`curl -X PUT …/api/v1/jobs/<jobId> -H 'content-type: application/json' -d '{"name":"orders","tasks":["t0"]}'`}</Mono>
        .
      </p>
    </div>
  );
}

function JobsTable(props: { all: JobRow[]; shown: JobRow[]; staleAfter: number; now: number }) {
  const { all, shown } = props;
  return (
    <TableWrap label="Jobs">
      <DataTable
        testid="jobs"
        caption={
          <>
            {shown.length === all.length ? 'All jobs' : 'Jobs matching the filters'}{' '}
            <span class="muted">
              ({shown.length === all.length ? all.length : `${shown.length} of ${all.length}`})
            </span>
          </>
        }
        columns={[
          'Job',
          'Namespace',
          'Status',
          'Latest checkpoint',
          { label: 'Completed / failed / in progress', num: true },
          { label: 'Referenced state', num: true },
          'Savepoint schedule',
        ]}
        items={shown}
        empty="No job matches the filters."
        row={(job) => <JobTableRow key={job.id} job={job} staleAfter={props.staleAfter} now={props.now} />}
      />
    </TableWrap>
  );
}

function JobTableRow({ job, staleAfter, now }: { job: JobRow; staleAfter: number; now: number }) {
  const stale = jobIsStale(job, staleAfter, now);
  const latest = job.latestCompletedCheckpoint;
  return (
    <tr data-job-id={job.id} class={stale ? 'stale' : undefined}>
      <th scope="row" class="job-name">
        <a href={jobHref(job.id)}>{job.name}</a>
        <small class="mono block">{job.id}</small>
      </th>
      <td>{job.namespace}</td>
      <td>
        <StatusBadge status={job.status} />
      </td>
      <td class={stale ? 'stale' : undefined}>
        {latest ? (
          <>
            <Ago iso={latest.completedAt} now={now} /> <span class="muted small">#{latest.id}</span>
          </>
        ) : (
          <span class="muted">none yet</span>
        )}
        {stale && (
          <span class="stale-tag" title={`older than ${staleAfter} min`}>
            stale
          </span>
        )}
      </td>
      <td class="num">
        <span title="completed">{job.counts.completed}</span>
        {' / '}
        <span title="failed" class={job.counts.failed ? 'failed-count' : undefined}>
          {job.counts.failed}
        </span>
        {' / '}
        <span title="in progress">{job.counts.inProgress}</span>
      </td>
      <td class="num">{formatBytes(job.referencedStateSize)}</td>
      <td>
        {job.schedule ? (
          <>
            {describeSchedule(job.schedule)}
            <small class="block muted">
              next <Ago iso={job.schedule.nextFireAt} now={now} />
            </small>
          </>
        ) : (
          <span class="muted">—</span>
        )}
      </td>
    </tr>
  );
}
