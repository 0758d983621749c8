// Hash routes: `#/` the jobs, `#/jobs/<jobId>` a job, `#/jobs/<jobId>/snapshots/<snapshotId>` a snapshot.
// Pure; unit-tested in test/route.test.ts.

export type Route =
  | { page: 'jobs' }
  | { page: 'job'; jobId: string }
  | { page: 'snapshot'; jobId: string; snapshotId: number }
  | { page: 'not-found'; path: string };

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
  if (parts[0] === 'jobs' && parts.length >= 2) {
    const jobId = decode(parts[1]!);
    if (jobId) {
      if (parts.length === 2) return { page: 'job', jobId };
      if (parts.length === 4 && parts[2] === 'snapshots' && /^\d+$/.test(parts[3]!)) {
        return { page: 'snapshot', jobId, snapshotId: Number(parts[3]) };
      }
    }
  }
  return { page: 'not-found', path };
}

/** The hash of a route, for links. */
export const jobHref = (jobId: string) => `#/jobs/${encodeURIComponent(jobId)}`;
export const snapshotHref = (jobId: string, snapshotId: number) =>
  `${jobHref(jobId)}/snapshots/${snapshotId}`;
