// `#/`: every job the token may see, polled every 5 s (there is no all-jobs subscription), filtered here.
import { useMemo, useState } from 'preact/hooks';
import { describeSchedule, formatBytes, isStale, plural } from '../format';
import { useNow, usePolling, useResource } from '../hooks';
import { allPages, type Connection, JOB_STATUSES, JOBS, type JobRow } from '../queries';
import { jobHref } from '../route';
import { gql, useSessionNumber, useViewer } from '../session';
import { Ago, Alert, FilterSelect, Loading, Mono, StatusBadge, TableWrap } from '../ui';

export const STALE_KEY = 'snapcat.staleAfterMinutes';
const PAGE = 100;

const fetchJobs = (signal: AbortSignal) =>
  allPages<JobRow>(
    async (first, after) => (await gql<{ jobs: Connection<JobRow> }>(JOBS, { first, after }, signal)).jobs,
    PAGE,
  ).then(({ items }) => items);

/** A job whose checkpoints stopped: RUNNING, and its latest completed checkpoint older than the threshold. */
export const jobIsStale = (job: JobRow, minutes: number, now: number) =>
  job.status === 'RUNNING' && isStale(job.latestCompletedCheckpoint?.completedAt, minutes, now);

export function JobsPage() {
  const viewer = useViewer();
  const jobs = useResource(fetchJobs, []);
  usePolling(jobs.reload, 5000);
  const now = useNow(5000);
  const [status, setStatus] = useState('');
  const [namespace, setNamespace] = useState('');
  const [q, setQ] = useState('');
  const [staleAfter, setStaleAfter] = useSessionNumber(STALE_KEY, 10);
  const [staleText, setStaleText] = useState(String(staleAfter));

  const all = useMemo(() => jobs.data ?? [], [jobs.data]);
  const namespaces = useMemo(
    () => viewer.namespaces ?? [...new Set(all.map((job) => job.namespace))].sort(),
    [viewer.namespaces, all],
  );
  const needle = q.trim().toLowerCase();
  const shown = all.filter(
    (job) =>
      (!status || job.status === status) &&
      (!namespace || job.namespace === namespace) &&
      (!needle || job.name.toLowerCase().includes(needle) || job.id.toLowerCase().includes(needle)),
  );
  const staleCount = shown.filter((job) => jobIsStale(job, staleAfter, now)).length;

  return (
    <>
      <div class="page-head">
        <h1>Jobs</h1>
        <p class="muted">
          {jobs.data
            ? `${plural(all.length, 'job')}${staleCount ? `, ${staleCount} stale` : ''} · refreshed every 5 s`
            : ' '}
        </p>
      </div>
      <Alert error={jobs.error} />
      <form class="filters" role="search" aria-label="Filter jobs" onSubmit={(e) => e.preventDefault()}>
        <label class="field">
          <span>Search</span>
          <input
            type="search"
            name="q"
            placeholder="Name or id"
            value={q}
            onInput={(e) => setQ(e.currentTarget.value)}
          />
        </label>
        <FilterSelect
          label="Status"
          name="status"
          value={status}
          options={JOB_STATUSES}
          onChange={setStatus}
        />
        <FilterSelect
          label="Namespace"
          name="namespace"
          value={namespace}
          options={namespaces}
          onChange={setNamespace}
        />
        <label class="field narrow">
          <span>Stale after (minutes)</span>
          <input
            type="number"
            name="staleAfterMinutes"
            min={0}
            step={1}
            inputMode="numeric"
            value={staleText}
            onInput={(e) => {
              const text = e.currentTarget.value;
              setStaleText(text);
              const minutes = Number(text);
              if (text.trim() !== '' && Number.isFinite(minutes) && minutes >= 0) setStaleAfter(minutes);
            }}
          />
        </label>
      </form>

      {!jobs.data && !jobs.error && <Loading what="jobs" />}
      {jobs.data && all.length === 0 && (
        <div class="empty">
          <h2>No jobs yet</h2>
          <p>
            Register one with <Mono>PUT /api/v1/jobs/{'{jobId}'}</Mono> (a 32-hex-digit Flink job id), for
            example{' '}
            <Mono>{`curl -X PUT …/api/v1/jobs/<jobId> -H 'content-type: application/json' -d '{"name":"orders","tasks":["t0"]}'`}</Mono>
            .
          </p>
        </div>
      )}
      {jobs.data && all.length > 0 && (
        <TableWrap label="Jobs">
          <table data-testid="jobs" class="data">
            <caption>
              {shown.length === all.length ? 'All jobs' : 'Jobs matching the filters'}{' '}
              <span class="muted">
                ({shown.length === all.length ? all.length : `${shown.length} of ${all.length}`})
              </span>
            </caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Namespace</th>
                <th scope="col">Status</th>
                <th scope="col">Latest checkpoint</th>
                <th scope="col" class="num">
                  Completed / failed / in progress
                </th>
                <th scope="col" class="num">
                  Referenced state
                </th>
                <th scope="col">Savepoint schedule</th>
              </tr>
            </thead>
            <tbody>
              {shown.length === 0 && (
                <tr>
                  <td colSpan={7} class="muted">
                    No job matches the filters.
                  </td>
                </tr>
              )}
              {shown.map((job) => {
                const stale = jobIsStale(job, staleAfter, now);
                const latest = job.latestCompletedCheckpoint;
                return (
                  <tr key={job.id} data-job-id={job.id} class={stale ? 'stale' : undefined}>
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
                          <Ago iso={latest.completedAt} now={now} />{' '}
                          <span class="muted small">#{latest.id}</span>
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
              })}
            </tbody>
          </table>
        </TableWrap>
      )}
    </>
  );
}
