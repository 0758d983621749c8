import type { ClusterRegistry } from '@snapcat/application';
import type { JobStatus } from '@snapcat/domain';
import { FlinkRestClient } from '@snapcat/flink';
import type { LogFn } from '@snapcat/runtime';

/**
 * A managed job's status as its cluster reports it (`GET /jobs/{jobid}`, Flink's `JobDetailsInfo.state`), read
 * when the job is registered or becomes managed: a job Flink has already ended is recorded as it is, not as
 * RUNNING until the first status poll (a walkthrough's FINISHED job took savepoint triggers meanwhile).
 * Undefined when Flink cannot tell now (unreachable, slow, a job it does not know yet): the registration
 * goes on as before, and the status poll follows Flink's status from then on.
 */
export type FlinkJobStatus = (cluster: string, jobId: string) => Promise<JobStatus | undefined>;

/** Asks within a few seconds at most: a registration waits for the answer. */
const REGISTRATION_READ = { timeoutMs: 3_000, retries: 1, backoffMs: 200 };

export function flinkJobStatusFrom(clusters: Pick<ClusterRegistry, 'get'>, warn: LogFn): FlinkJobStatus {
  return async (name, jobId) => {
    const cluster = await clusters.get(name);
    if (!cluster) return undefined;
    try {
      return (await new FlinkRestClient(cluster, REGISTRATION_READ).job(jobId)).state;
    } catch (error) {
      warn('flink job status not read at registration: the status poll follows it', {
        job: jobId,
        cluster: name,
        error: (error as Error).message,
      });
      return undefined;
    }
  };
}
