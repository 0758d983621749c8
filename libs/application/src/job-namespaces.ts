import { DEFAULT_NAMESPACE, grantsNamespace, type NamespaceGrant } from '@snapcat/domain';
import { StreamDeletedError, type EventStore } from '@snapcat/event-store';
import { domainEvent, jobStream } from './streams';

/**
 * Each job's namespace, from the first event of its stream (JobRegistered), so it is exact the moment the
 * registration is durable, unlike the read model. A namespace never changes: what was read is kept (the
 * oldest dropped beyond `capacity`), and a lookup costs one read per job per process.
 */
export class JobNamespaces {
  private readonly known = new Map<string, string>();

  constructor(
    private readonly store: Pick<EventStore, 'readStream'>,
    private readonly capacity = 100_000,
  ) {}

  /** The job's namespace, or undefined when no job was ever registered under the id, or it was deleted. */
  async of(jobId: string): Promise<string | undefined> {
    const cached = this.known.get(jobId);
    if (cached !== undefined) return cached;
    const [first] = await this.store.readStream(jobStream(jobId), { maxCount: 1 }).catch((error: unknown) => {
      if (error instanceof StreamDeletedError) return []; // hard-deleted: in no namespace any more
      throw error;
    });
    if (!first) return undefined;
    const event = domainEvent(first);
    const namespace = (event.type === 'JobRegistered' && event.namespace) || DEFAULT_NAMESPACE;
    if (this.known.size >= this.capacity) this.known.delete(this.known.keys().next().value!);
    this.known.set(jobId, namespace);
    return namespace;
  }

  /** Whether the job exists and lies within the grant (`*` sees even jobs that do not exist yet). */
  async visible(grant: NamespaceGrant, jobId: string): Promise<boolean> {
    if (grant === '*') return true;
    const namespace = await this.of(jobId);
    return namespace !== undefined && grantsNamespace(grant, namespace);
  }
}
