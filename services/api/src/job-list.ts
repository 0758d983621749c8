import type express from 'express';
import type { ReadModel } from '@snapcat/read-model';
import { isRedisConnectionError, isRedisUnavailableError } from '@snapcat/runtime';
import { Problem } from './problem';
import { grantOf, visibleNamespaces } from './access';
import { parse, type requestSchemas } from './requests';
import { recentJobEventPosition, type CataloguedJobIds, type DeletionFence } from '@snapcat/application';
import type { EventStore } from '@snapcat/event-store';

export interface JobListDeps {
  /** The Redis read model the list is read from (kept by the projector). */
  readModel?: Pick<
    ReadModel,
    'jobs' | 'jobIdsStartingWith' | 'jobIdsWithSnapshotsIn' | 'waitFor' | 'readiness'
  >;
  /** Whether Redis answers: while it does not, the list answers 503 at once. */
  readModelAvailable?: () => boolean;
}

/**
 * GET /api/v1/jobs: the registered jobs, by job id, a page at a time, from the read model (so eventually
 * consistent with the commands). Redis unreachable is a 503 problem, as GraphQL's queries fail then too;
 * the commands, which need only the event store, go on.
 */
export function listJobs(
  schema: ReturnType<typeof requestSchemas>['jobList'],
  { readModel, readModelAvailable }: JobListDeps,
): express.RequestHandler {
  return async (req, res) => {
    const { status, namespace, limit, after } = parse(schema, req.query, 'query');
    const namespaces = visibleNamespaces(grantOf(req), namespace);
    if (!readModel) throw readModelUnavailable('this process has no read model (Redis)', LISTING);
    await wholeReadModel(readModel, readModelAvailable);
    const page = await fromReadModel(
      () => readModel.jobs({ status, namespaces }, limit, after),
      readModelAvailable,
    );
    res.json({ jobs: page.items, nextCursor: page.hasNextPage ? page.endCursor : null });
  };
}

/**
 * The read model's indexes for the use cases (`CataloguedJobIds`): whose savepoint or imported snapshot a
 * path is. A 503 while Redis is unreachable or the read model is catching up (or indexing), never an answer
 * that may leave the owner out, which would leave a restored snapshot without its hold. Given the `store`,
 * the read model first catches up (within CATCH_UP_MS) with the job event appended last before the question
 * (`recentJobEventPosition`): a snapshot imported a moment ago is then found.
 */
export function readModelJobIds(
  readModel: Pick<ReadModel, 'jobIdsStartingWith' | 'jobIdsWithSnapshotsIn' | 'waitFor'>,
  readModelAvailable?: () => boolean,
  store?: Pick<EventStore, 'readAll'>,
): CataloguedJobIds {
  const caughtUp = async () => {
    const newest = store && (await recentJobEventPosition(store));
    return !newest || (await readModel.waitFor(newest, CATCH_UP_MS));
  };
  const lookUp = async <T>(read: () => Promise<T | undefined>) => {
    const answer = async () => ((await caughtUp()) ? read() : undefined);
    const ids = await fromReadModel(answer, readModelAvailable, OWNER_LOOKUP);
    if (ids) return ids;
    throw readModelUnavailable(
      'it is catching up with the log, and does not know every job yet',
      OWNER_LOOKUP,
    );
  };
  return {
    startingWith: (prefix) => lookUp(() => readModel.jobIdsStartingWith(prefix)),
    withSnapshotsIn: (directories) => lookUp(() => readModel.jobIdsWithSnapshotsIn(directories)),
  };
}

/**
 * The recording side of decision 0047's fence, on the read model's Redis: unreachable, an acknowledgement
 * naming loose files, or an import, is a 503, not recorded without its reservation. Undefined without a read
 * model (no deletion asks one then either).
 */
export function readModelFence(
  readModel: Partial<Pick<ReadModel, 'deletionFence'>> | undefined,
  readModelAvailable?: () => boolean,
): Pick<DeletionFence, 'recording'> | undefined {
  const fence = readModel?.deletionFence?.();
  return (
    fence && {
      async recording(jobId, places) {
        const held = await fromReadModel(
          () => fence.recording(jobId, places),
          readModelAvailable,
          FENCE_UNKNOWN,
        );
        const stillHeld = () => fromReadModel(() => held.stillHeld(), readModelAvailable, FENCE_UNKNOWN);
        return { ...held, stillHeld };
      },
    }
  );
}

const FENCE_UNKNOWN =
  "so no one can tell whether another job's discard is deleting what it names, and the acknowledgement or " +
  'import is not recorded; retry';

/** How long an owner lookup waits for the projection of what was appended just before it. */
const CATCH_UP_MS = 2000;

/** What a 503 says the caller may do meanwhile: the list's and the savepoint owner lookup's. */
const LISTING = 'REST commands keep working';
const OWNER_LOOKUP =
  'so no one can tell whose snapshot the path is, and the restore, import or acknowledgement (of files in ' +
  "another job's savepoint) is not recorded without it; " +
  'retry (a restore may name the owner with fromJobId)';

/** How long a query waits for a read model that is not whole yet (a projector starting) before its 503. */
const WHOLE_WAIT_MS = 2000;

/**
 * Resolves once the read model is whole, waiting a moment (a projector starting on a short log); a 503
 * otherwise: a read model catching up with the log (a first start on a long log, a rebuild after Redis lost
 * it) lists a fragment of the catalogue and answers an existing job as none (a review: `jobs` answered 0,
 * 103, 203 and 500 edges, `job` null for 1.3 s, during one rebuild).
 */
export async function wholeReadModel(
  readModel: Pick<ReadModel, 'readiness'>,
  available?: () => boolean,
  meanwhile = LISTING,
): Promise<void> {
  const deadline = Date.now() + WHOLE_WAIT_MS;
  for (;;) {
    const state = await fromReadModel(() => readModel.readiness(), available, meanwhile);
    if (state === 'complete') return;
    if (Date.now() >= deadline) {
      const why =
        state === 'rebuilding'
          ? 'it is being rebuilt from the event log and does not show every job yet; retry shortly'
          : 'no projector has built it (SNAPCAT_PROJECTOR off in every process, or the projector process down)';
      throw readModelUnavailable(why, meanwhile, state);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A read of the read model; Redis unreachable (before or during it) is a 503 problem. */
export async function fromReadModel<T>(
  read: () => Promise<T>,
  available?: () => boolean,
  meanwhile = LISTING,
): Promise<T> {
  if (available?.() === false) throw readModelUnavailable('Redis is unreachable', meanwhile);
  try {
    return await read();
  } catch (error) {
    // Only Redis's own errors: a lookup's read of the event store (the newest job event) fails as the store's.
    if (available?.() !== false && !isRedisUnavailableError(error)) throw error;
    const message = (error as Error).message;
    const why = available?.() === false || isRedisConnectionError(error) ? 'is unreachable' : 'cannot answer';
    throw readModelUnavailable(`Redis ${why} (${message})`, meanwhile);
  }
}

/** 503: the read model cannot answer (Retry-After is the problem middleware's); `readModel` says why, if known. */
function readModelUnavailable(why: string, meanwhile: string, readModel?: 'rebuilding' | 'absent'): Problem {
  return new Problem(
    503,
    'read-model-unavailable',
    'Read model unavailable',
    `the read model is unavailable: ${why} (${meanwhile})`,
    [],
    readModel ? { readModel } : {},
  );
}
