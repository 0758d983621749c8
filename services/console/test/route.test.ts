import { jobHref, parseRoute, snapshotHref } from '../src/route';

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
    expect(parseRoute('#/jobs/a%2Fb?x=1')).toEqual({ page: 'job', jobId: 'a/b' });
  });

  it.each(['#/nope', `#/jobs/${JOB}/snapshots/x`, `#/jobs/${JOB}/snapshots`, '#/jobs/%E0%A4%A'])(
    '%p is not found',
    (hash) => {
      expect(parseRoute(hash).page).toBe('not-found');
    },
  );

  it('round-trips the links it makes', () => {
    expect(parseRoute(jobHref('a b'))).toEqual({ page: 'job', jobId: 'a b' });
    expect(parseRoute(snapshotHref(JOB, 7))).toEqual({ page: 'snapshot', jobId: JOB, snapshotId: 7 });
  });
});
