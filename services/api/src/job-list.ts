import type express from 'express';
import type { ReadModel } from '@snapcat/read-model';
import { isRedisConnectionError } from '@snapcat/runtime';
import { Problem } from './problem';
import { principalOf, visibleNamespaces } from './access';
import { parse, type requestSchemas } from './requests';

export interface JobListDeps {
  /** The Redis read model the list is read from (kept by the projector). */
  readModel?: Pick<ReadModel, 'jobs'>;
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
    const namespaces = visibleNamespaces(principalOf(req)?.namespaces ?? '*', namespace);
    const unavailable = (why: string) => {
      res.setHeader('Retry-After', '1');
      return new Problem(
        503,
        'read-model-unavailable',
        'Read model unavailable',
        `the read model is unavailable: ${why} (REST commands keep working)`,
      );
    };
    if (!readModel) throw unavailable('this process has no read model (Redis)');
    if (readModelAvailable?.() === false) throw unavailable('Redis is unreachable');
    let page: Awaited<ReturnType<ReadModel['jobs']>>;
    try {
      page = await readModel.jobs({ status, namespaces }, limit, after);
    } catch (error) {
      if (readModelAvailable?.() === false || isRedisConnectionError(error)) {
        throw unavailable(`Redis is unreachable (${(error as Error).message})`);
      }
      throw error;
    }
    res.json({ jobs: page.items, nextCursor: page.hasNextPage ? page.endCursor : null });
  };
}
