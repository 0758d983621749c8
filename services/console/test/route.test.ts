import { jobHref, MAX_SNAPSHOT_ID, parseRoute, snapshotHref } from '../src/route';

const JOB = '000000000000000000000000000000a1';

describe('parseRoute', () => {
  it.each(['', '#', '#/', '#/jobs', '#/jobs/'])('%p is the jobs page', (hash) => {
    expect(parseRoute(hash)).toEqual({ page: 'jobs' });
  });

  it('reads a job and a snapshot', () => {
    expect(parseRoute(`#/jobs/${JOB}`)).toEqual({ page: 'job', jobId: JOB });
    expect(parseRoute(`#/jobs/${JOB}/`)).toEqual({ page: 'job', jobId: JOB });
    expect(parseRoute(`#/jobs/${JOB}/snapshots/42`)).toEqual({
      page: 'snapshot',
      jobId: JOB,
      snapshotId: 42,
    });
  });

  it('decodes the job id, and ignores a query', () => {
    expect(parseRoute(`#/jobs/${JOB.replace('a1', '%61%31')}?x=1`)).toEqual({ page: 'job', jobId: JOB });
  });

  it.each(['not-a-hex-id', 'a%2Fb', JOB.toUpperCase(), `${JOB}0`, JOB.slice(1)])(
    'a job id that cannot be one (%p) is said to be no job id, for the job and its snapshots',
    (id) => {
      const jobId = decodeURIComponent(id);
      expect(parseRoute(`#/jobs/${id}`)).toEqual({ page: 'bad-job-id', jobId });
      expect(parseRoute(`#/jobs/${id}/snapshots/1`)).toEqual({ page: 'bad-job-id', jobId });
    },
  );

  it('a snapshot id beyond what the API can be asked (GraphQL Int) is said to be no snapshot id', () => {
    expect(parseRoute(`#/jobs/${JOB}/snapshots/${MAX_SNAPSHOT_ID}`)).toEqual({
      page: 'snapshot',
      jobId: JOB,
      snapshotId: 2147483647,
    });
    for (const id of ['2147483648', '99999999999999', '1'.repeat(400)]) {
      expect(parseRoute(`#/jobs/${JOB}/snapshots/${id}`)).toEqual({
        page: 'bad-snapshot-id',
        jobId: JOB,
        snapshotId: id,
      });
    }
  });

  it.each(['#/nope', `#/jobs/${JOB}/snapshots/x`, `#/jobs/${JOB}/snapshots`, '#/jobs/%E0%A4%A'])(
    '%p is not found',
    (hash) => {
      expect(parseRoute(hash).page).toBe('not-found');
    },
  );

  it('round-trips the links it makes', () => {
    expect(parseRoute(jobHref(JOB))).toEqual({ page: 'job', jobId: JOB });
    expect(parseRoute(jobHref('a b'))).toEqual({ page: 'bad-job-id', jobId: 'a b' });
    expect(parseRoute(snapshotHref(JOB, 7))).toEqual({ page: 'snapshot', jobId: JOB, snapshotId: 7 });
  });
});
