// Hash routes: `#/` the jobs, `#/jobs/<jobId>` a job, `#/jobs/<jobId>/snapshots/<snapshotId>` a snapshot.
// Pure; unit-tested in test/route.test.ts.
import { JOB_ID_PATTERN } from '@snapcat/domain/src/enum-values';

export type Route =
  | { page: 'jobs' }
  | { page: 'job'; jobId: string }
  | { page: 'snapshot'; jobId: string; snapshotId: number }
  /** An address naming a job or snapshot by something that cannot be one: said as such, nothing asked of the API. */
  | { page: 'bad-job-id'; jobId: string }
  | { page: 'bad-snapshot-id'; jobId: string; snapshotId: string }
  | { page: 'not-found'; path: string };

/** The greatest snapshot id the API can be asked for: GraphQL's Int (32-bit signed), which snapshot ids are. */
export const MAX_SNAPSHOT_ID = 2 ** 31 - 1;

const decode = (part: string): string | null => {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
};

/** The route of a location hash ("", "#", "#/" and "#/jobs" are the jobs page). */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/\?.*$/, '');
  const parts = path.split('/').filter((part) => part !== '');
  if (parts.length === 0 || (parts.length === 1 && parts[0] === 'jobs')) return { page: 'jobs' };
  const jobId = parts[0] === 'jobs' && parts.length >= 2 ? decode(parts[1]!) : null;
  if (jobId && parts.length === 2)
    return JOB_ID_PATTERN.test(jobId) ? { page: 'job', jobId } : { page: 'bad-job-id', jobId };
  if (jobId && parts.length === 4 && parts[2] === 'snapshots' && /^\d+$/.test(parts[3]!)) {
    if (!JOB_ID_PATTERN.test(jobId)) return { page: 'bad-job-id', jobId };
    const snapshotId = Number(parts[3]);
    return snapshotId <= MAX_SNAPSHOT_ID
      ? { page: 'snapshot', jobId, snapshotId }
      : { page: 'bad-snapshot-id', jobId, snapshotId: parts[3]! };
  }
  return { page: 'not-found', path };
}

/** The hash of a route, for links. */
export const jobHref = (jobId: string) => `#/jobs/${encodeURIComponent(jobId)}`;
export const snapshotHref = (jobId: string, snapshotId: number) =>
  `${jobHref(jobId)}/snapshots/${snapshotId}`;
