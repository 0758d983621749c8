import {
  DEFAULT_NAMESPACE,
  grantsNamespace,
  otherJobNamedBy,
  withOtherJobHidden,
  type NamespaceGrant,
} from '@snapcat/domain';
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

/**
 * Decision 0045: a hold names its holder, a job that may lie in a namespace the reader of the held snapshot
 * may not see (an admin restored it from another team's snapshot). Each reader is shown the holders it may
 * see, and a count of the others; another job an event names (a hold's holder, a restore's source) that it
 * may not see is null. Nothing is looked up for a reader of every namespace, nor for a snapshot nobody holds.
 */
export class HolderVisibility {
  constructor(private readonly namespaces: Pick<JobNamespaces, 'visible'>) {}

  /** The snapshot view as a reader of `grant` reads it: `heldBy` those it may see, `hiddenHolders` the rest. */
  async snapshot<V extends { heldBy: readonly string[] }>(
    grant: NamespaceGrant,
    view: V,
  ): Promise<V & { hiddenHolders: number }> {
    const seen = await this.visibleOf(grant, view.heldBy);
    return { ...view, heldBy: seen, hiddenHolders: view.heldBy.length - seen.length };
  }

  /**
   * The holders of `heldBy` a reader of `grant` may see: `heldBy` itself, at once, when nothing needs to be
   * looked up (most snapshots are held by no one; a reader of every namespace sees every holder), so that
   * GraphQL resolves the common case without a promise.
   */
  visibleOf(
    grant: NamespaceGrant,
    heldBy: readonly string[],
  ): readonly string[] | Promise<readonly string[]> {
    if (grant === '*' || heldBy.length === 0) return heldBy;
    return Promise.all(heldBy.map((jobId) => this.namespaces.visible(grant, jobId))).then((visible) =>
      heldBy.filter((_, i) => visible[i]),
    );
  }

  /** The event as a reader of `grant` reads it: another job it names that the reader may not see is null. */
  async event<E extends { type: string }>(grant: NamespaceGrant, event: E): Promise<E> {
    const other = otherJobNamedBy(event);
    if (other === undefined || (await this.namespaces.visible(grant, other))) return event;
    return withOtherJobHidden(event);
  }
}
