import {
  notRegistered,
  directoriesOf,
  grantsNamespace,
  isWithin,
  normaliseLocation,
  type JobState,
  type StateHandle,
} from '@snapcat/domain';
import { isLimited, type Principal } from './access';
import { Problem } from './problem';

/**
 * The job a path is named for: its state when the caller may see it, null when it is not registered, and
 * `hidden` when it is another namespace's: nothing is checked then, as the command is refused as for a job
 * that does not exist (R55), and a refusal here would tell the job exists.
 */
type OwnJob = Pick<JobState, 'jobId' | 'namespace' | 'storage' | 'snapshots'> | null | 'hidden';

/**
 * Where a token limited to namespaces may name storage (decision 0030). Every namespace shares the storage
 * roots, and what a job names it may later delete (an imported directory on discard; an acknowledged file
 * once no live snapshot references it), so a team's token that named another team's files could have
 * snapcat delete them. A token of every namespace (`*`, and every caller while authentication is off) may
 * name anything inside the roots; a limited token names only
 * - its namespaces' storage (SNAPCAT_NAMESPACE_ROOTS);
 * - the job's own: its checkpoint area `<checkpointDir>/<jobId>` (Flink's layout, where the job's tasks
 *   write), and for an acknowledgement the directory snapcat laid out for the snapshot acknowledged;
 * - as a place to create directories in (a job's directories, a savepoint's target), exactly the service's
 *   default directories or the job's registered ones: what is created there is named by snapcat
 *   (`<jobId>`, `savepoint-<jobId>-<random>`), so naming such a place names no existing file.
 */
export class NamespaceStorage {
  private readonly areas: Map<string, string[]>;
  private readonly defaultPlaces: string[];
  /**
   * The job's own directories seen (normalised): its checkpoint areas and the directories snapcat laid out for
   * its snapshots acknowledged, with the job's namespace (set at registration, never changed).
   * Acknowledgements by callers of that namespace check these without loading the job.
   */
  private readonly jobAreas = new Map<string, { namespace: string; areas: Set<string> }>();

  constructor(
    namespaceRoots: Readonly<Record<string, readonly string[]>>,
    defaults: { checkpointDir: string; savepointDir: string },
  ) {
    this.areas = new Map(
      Object.entries(namespaceRoots).map(([namespace, roots]) => [namespace, roots.map(normaliseLocation)]),
    );
    this.defaultPlaces = [defaults.checkpointDir, defaults.savepointDir].map(normaliseLocation);
  }

  /** The job as a limited caller's checks see it (`OwnJob`). */
  ownJob(principal: Principal, state: JobState): OwnJob {
    if (!state.registered) return null;
    return grantsNamespace(principal.namespaces, state.namespace) ? state : 'hidden';
  }

  /** Whether a limited caller names a place outside its namespaces' storage: one every namespace shares. */
  isSharedPlace(
    principal: Principal | undefined,
    location: string,
  ): principal is Principal & { namespaces: string[] } {
    return isLimited(principal) && !this.inAreas(principal, normaliseLocation(location));
  }

  /** A place new directories are created in: a job's checkpoint or savepoint directory, a savepoint's target. */
  requirePlace(
    principal: Principal | undefined,
    location: string | undefined,
    field: string,
    job: OwnJob,
  ): void {
    const named = this.toCheck(principal, location, job);
    if (!named || this.inAreas(named.principal, named.key)) return;
    const own = job && job !== 'hidden' ? [job.storage.checkpointDir, job.storage.savepointDir] : [];
    if ([...this.defaultPlaces, ...own.map(normaliseLocation)].includes(named.key)) return;
    throw this.refusal(named.principal, field, 'or be the default directories or the job’s own');
  }

  /** Existing state a job takes on: an imported directory, a restore's path. */
  requireState(
    principal: Principal | undefined,
    location: string | undefined,
    field: string,
    job: OwnJob,
  ): void {
    const named = this.toCheck(principal, location, job);
    if (!named || this.inAreas(named.principal, named.key)) return;
    if (job && job !== 'hidden' && isWithin(named.key, checkpointArea(job))) return;
    throw this.refusal(named.principal, field, 'or lie in the job’s own checkpoint directory');
  }

  /** What there is to check: nothing for a caller of every namespace, no path, or another namespace's job. */
  private toCheck(
    principal: Principal | undefined,
    location: string | undefined,
    job: OwnJob,
  ): { principal: Principal & { namespaces: string[] }; key: string } | undefined {
    if (location === undefined || !isLimited(principal) || job === 'hidden') return undefined;
    return { principal, key: normaliseLocation(location) };
  }

  /**
   * The files the acknowledgements of one request report (`acks[a].stateHandles[h]`, named `field(a, h)`): each
   * in the caller's namespaces' storage, the job's checkpoint area, or the snapshot's own directory. `load` is
   * called at most once per request, and only when a file lies in none of the caller's areas nor the job's
   * known checkpoint areas.
   */
  async requireAcknowledged(
    principal: Principal | undefined,
    jobId: string,
    snapshotId: number,
    acks: readonly { stateHandles: readonly StateHandle[] }[],
    field: (ack: number, handle: number) => string,
    load: () => Promise<JobState>,
  ): Promise<void> {
    if (!isLimited(principal)) return;
    let own: string[] | undefined;
    for (const [a, { stateHandles }] of acks.entries()) {
      for (const [h, handle] of stateHandles.entries()) {
        const key = normaliseLocation(handle.path);
        if (this.inAreas(principal, key) || this.inKnownJobArea(principal, jobId, key)) continue;
        if (!own) {
          const job = this.ownJob(principal, await load());
          // Another namespace's job and one never registered alike: 404, as the domain answers (a 403 for the
          // unregistered one only would tell which ids another team uses). Refused here, not left to the
          // domain: the job may be registered between this read and the ack's decision.
          if (job === 'hidden' || job === null) {
            throw notRegistered(jobId);
          }
          const snapshot = job.snapshots.get(snapshotId);
          own = [checkpointArea(job), ...(snapshot ? directoriesOf(snapshot).map(normaliseLocation) : [])];
          this.remember(job, own);
        }
        if (own.some((directory) => isWithin(key, directory))) continue;
        throw this.refusal(
          principal,
          field(a, h),
          'or lie in the job’s checkpoint directory or the snapshot’s',
        );
      }
    }
  }

  private inAreas(principal: Principal & { namespaces: string[] }, key: string): boolean {
    for (const namespace of principal.namespaces) {
      for (const area of this.areas.get(namespace) ?? []) if (isWithin(key, area)) return true;
    }
    return false;
  }

  /**
   * Whether `key` lies in the job's own directories seen, for a caller of the job's namespace only: another
   * namespace's caller goes on to the job's load, and its 404, before any file of the job is looked at (a
   * review: the file checks after this one told another team the job existed, and what its files were).
   */
  private inKnownJobArea(
    principal: Principal & { namespaces: string[] },
    jobId: string,
    key: string,
  ): boolean {
    const known = this.jobAreas.get(jobId);
    if (!known || !grantsNamespace(principal.namespaces, known.namespace)) return false;
    for (const area of known.areas) if (isWithin(key, area)) return true;
    return false;
  }

  /** Adds the job's directories; its former checkpoint area stays (it holds the job's own older checkpoints). */
  private remember(job: Pick<JobState, 'jobId' | 'namespace'>, directories: readonly string[]): void {
    if (this.jobAreas.size >= MAX_JOBS_REMEMBERED) this.jobAreas.clear();
    const areas = this.jobAreas.get(job.jobId)?.areas ?? new Set<string>();
    for (const directory of directories) {
      areas.delete(directory); // re-added: the most recently seen last
      areas.add(directory);
    }
    // The oldest first: a job's periodic savepoints would grow the set without end.
    for (const oldest of areas) {
      if (areas.size <= MAX_AREAS_PER_JOB) break;
      areas.delete(oldest);
    }
    this.jobAreas.set(job.jobId, { namespace: job.namespace, areas });
  }

  private refusal(
    principal: Principal & { namespaces: string[] },
    field: string,
    otherwise: string,
  ): Problem {
    const areas = principal.namespaces.flatMap((namespace) => this.areas.get(namespace) ?? []);
    const where =
      areas.length > 0
        ? `inside the storage of namespace ${principal.namespaces.join(', ')} (${areas.join(', ')})`
        : `inside storage of namespace ${principal.namespaces.join(', ')}, and none is configured (SNAPCAT_NAMESPACE_ROOTS)`;
    const message = `must lie ${where}, ${otherwise}: token ${principal.name} may not name other namespaces’ files`;
    return new Problem(403, 'forbidden', 'Forbidden', `${field}: ${message}`, [
      { field, rule: 'namespace-storage', message },
    ]);
  }
}

/** Flink's directory of a job's checkpoints and their shared files (`<checkpointDir>/<jobId>`), normalised. */
const checkpointArea = (job: Pick<JobState, 'jobId' | 'storage'>): string =>
  checkpointAreaOf(job.storage.checkpointDir, job.jobId);

export const checkpointAreaOf = (checkpointDir: string, jobId: string): string =>
  normaliseLocation(`${checkpointDir}/${jobId}`);

/** Bounds the directories remembered per job (a savepoint's, once its acknowledgements are over, is not needed). */
const MAX_AREAS_PER_JOB = 64;
/** Bounds the areas remembered; forgetting one costs a load of the job at its next acknowledgement. */
const MAX_JOBS_REMEMBERED = 10_000;
