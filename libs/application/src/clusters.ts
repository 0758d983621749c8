import {
  ClusterEvent,
  ClusterHeaders,
  ClusterName,
  ClusterRestUrl,
  CommandRejected,
  fieldName,
  NamespaceGrantSchema,
  clusterView,
  evolveClusters,
  readEvent,
  type ClusterView,
  type Clusters,
  type NamespaceGrant,
  type SealedSecret,
  type StoredCluster,
} from '@snapcat/domain';
import type { z } from 'zod';
import type { EventStore } from '@snapcat/event-store';
import { DeciderHandler, oneCommandAtATime, singleStream } from './decider-handler';
import { OptimisticRetry } from './optimistic-retry';

/** The stream every cluster event goes to: clusters are few and changed rarely. */
export const CLUSTERS_STREAM = 'snapcat-clusters';

/** A Flink cluster snapcat may talk to, its headers in clear: for the connector only, never for an answer. */
export interface FlinkCluster {
  name: string;
  restUrl: string;
  /** Lowercased names; the values in clear. */
  headers: Record<string, string>;
}

/** What the Flink connector reads: the clusters as of now (every change durable before the call). */
export interface ClusterRegistry {
  get(name: string): Promise<FlinkCluster | null>;
  list(): Promise<FlinkCluster[]>;
}

/**
 * Seals and opens header values: `SecretBox` of @snapcat/webhooks (AES-256-GCM under SNAPCAT_SECRET_KEY),
 * the one that seals webhook secrets. An interface here, so that this library need not depend on that one.
 */
export interface Sealer {
  seal(plain: string): SealedSecret;
  open(sealed: SealedSecret): string;
}

/** What a PUT gives: the whole definition (headers replace the previous ones). */
export interface ClusterInput {
  restUrl: string;
  headers?: Record<string, string>;
  /** The namespaces whose jobs may name the cluster as their source; absent: every namespace (`*`). */
  namespaces?: NamespaceGrant;
}

/** Header values cannot be stored: there is no key to seal them with. */
export class HeadersNeedKeyError extends Error {
  constructor() {
    super(
      'headers are stored sealed: set SNAPCAT_SECRET_KEY (32+ characters) to give a cluster headers; ' +
        'only SNAPCAT_ENV=development may run without one',
    );
    this.name = 'HeadersNeedKeyError';
  }
}

/** A stored header cannot be opened: the key is not the one it was sealed with, or there is none. */
export class ClusterHeadersUnreadableError extends Error {
  constructor(cluster: string, why: string) {
    super(`the headers of cluster ${cluster} cannot be opened: ${why}`);
    this.name = 'ClusterHeadersUnreadableError';
  }
}

/** A change to the clusters, as the repository decides it (the API's input checked first). */
type ClusterCommand =
  | { type: 'Put'; name: string; restUrl: string; headers: [string, string][]; namespaces: '*' | string[] }
  | { type: 'Remove'; name: string }
  | { type: 'RecordReachability'; name: string; reachable: boolean; error: string };

export interface ClusterRepositoryOptions {
  /** Seals header values; without one, a cluster with headers is refused (HeadersNeedKeyError). */
  box?: Sealer;
  now?: () => number;
}

/**
 * The clusters, folded from `snapcat-clusters` and caught up from their revision on each read, so that every
 * process (API, workers) sees a change as soon as it is durable. Header values are sealed before they are
 * written: the events, backups and audit exports never hold one in clear. It is the ClusterRegistry the
 * connector reads (values opened), and what the API changes and shows (names only).
 */
export class ClusterRepository implements ClusterRegistry {
  private readonly box: Sealer | undefined;
  private readonly handler: DeciderHandler<Clusters, ClusterCommand, ClusterEvent, Clusters, undefined>;

  constructor(store: EventStore, options: ClusterRepositoryOptions = {}) {
    this.box = options.box;
    const rules = oneCommandAtATime({
      initialState: (): Clusters => new Map(),
      decide: (state: Clusters, command: ClusterCommand, now: number) => this.decide(state, command, now),
      evolve: evolveClusters,
    });
    this.handler = new DeciderHandler(
      store,
      rules,
      singleStream(CLUSTERS_STREAM, (recorded) => readEvent(ClusterEvent, recorded)),
      {
        // A change decided and appended alone; after 10 lost races, the last one is the error.
        maxBatch: 1,
        clock: { now: options.now ?? Date.now },
        retry: new OptimisticRetry({ attempts: 10, exhausted: (_id, conflict) => conflict }),
      },
    );
  }

  /** Whether headers can be stored (a key to seal them with). */
  get sealsHeaders(): boolean {
    return this.box !== undefined;
  }

  /** The clusters as of now: reads and changes go through one queue, so each event is applied once. */
  current(): Promise<Clusters> {
    return this.handler.load(CLUSTERS_STREAM, undefined);
  }

  async get(name: string): Promise<FlinkCluster | null> {
    const cluster = (await this.current()).get(name);
    return cluster ? this.opened(cluster) : null;
  }

  /** Every cluster, by name. */
  async list(): Promise<FlinkCluster[]> {
    return byName(await this.current()).map((cluster) => this.opened(cluster));
  }

  /** What a client may see of every cluster, by name. */
  async views(): Promise<ClusterView[]> {
    return byName(await this.current()).map(clusterView);
  }

  async view(name: string): Promise<ClusterView | null> {
    const cluster = (await this.current()).get(name);
    return cluster ? clusterView(cluster) : null;
  }

  /**
   * Registers or replaces the cluster. Unchanged (the same URL, the same headers with the same values):
   * nothing is written. CommandRejected INVALID for a field that breaks a rule (the API checks them first);
   * HeadersNeedKeyError for headers without a key.
   */
  async put(
    name: string,
    input: ClusterInput,
  ): Promise<{ cluster: ClusterView; created: boolean; changed: boolean }> {
    checked(ClusterName, name, 'name');
    checked(ClusterRestUrl, input.restUrl, 'restUrl');
    const headers = normalized(checked(ClusterHeaders, input.headers ?? {}, 'headers'));
    if (headers.length > 0 && !this.box) throw new HeadersNeedKeyError();
    const namespaces = sortedGrant(checked(NamespaceGrantSchema, input.namespaces ?? '*', 'namespaces'));
    const put = { type: 'Put' as const, name, restUrl: input.restUrl, headers, namespaces };
    const { reply, events } = await this.change(put);
    const cluster = clusterView(reply.get(name)!);
    return { cluster, created: events[0]?.type === 'ClusterRegistered', changed: events.length > 0 };
  }

  /** Removes the cluster; false when there is none of that name (nothing written). */
  async remove(name: string): Promise<boolean> {
    const { events } = await this.change({ type: 'Remove', name });
    return events.length > 0;
  }

  /**
   * Records what the connector found (issue 19, item 6): an event only when it changes what the log says,
   * so several workers seeing one outage record it once. False when nothing was written (unknown cluster,
   * or already recorded).
   */
  async recordReachability(name: string, reachable: boolean, error = ''): Promise<boolean> {
    const { events } = await this.change({ type: 'RecordReachability', name, reachable, error });
    return events.length > 0;
  }

  /** Decided on the clusters as of now and appended; decided again after a concurrent change. */
  private change(command: ClusterCommand) {
    return this.handler.execute(CLUSTERS_STREAM, command, undefined);
  }

  /** The event a change makes, if any: nothing when the log already says it. */
  private decide(state: Clusters, command: ClusterCommand, now: number): ClusterEvent[] {
    const { name } = command;
    const cluster = state.get(name);
    const occurredAt = new Date(now).toISOString();
    switch (command.type) {
      case 'Put': {
        const { restUrl, headers, namespaces } = command;
        const sameGrant = cluster && JSON.stringify(cluster.namespaces) === JSON.stringify(namespaces);
        if (cluster && cluster.restUrl === restUrl && sameGrant && this.sameHeaders(cluster, headers))
          return [];
        const sealed = headers.map(([header, value]) => ({ name: header, value: this.box!.seal(value) }));
        const type = cluster ? 'ClusterChanged' : 'ClusterRegistered';
        return [{ type, name, restUrl, headers: sealed, namespaces, occurredAt }];
      }
      case 'Remove':
        return cluster ? [{ type: 'ClusterRemoved', name, occurredAt }] : [];
      case 'RecordReachability': {
        if (!cluster) return [];
        const { reachable, error } = command;
        if (cluster.reachability.state === (reachable ? 'REACHABLE' : 'UNREACHABLE')) return [];
        // An outage ending is news only when one was recorded; a first success is the normal case.
        if (reachable && cluster.reachability.state === 'UNKNOWN') return [];
        return reachable
          ? [{ type: 'FlinkClusterReachable', name, occurredAt }]
          : [{ type: 'FlinkClusterUnreachable', name, occurredAt, error: error.slice(0, 4096) }];
      }
    }
  }

  /** Compared in clear: sealing twice never gives the same bytes. */
  private sameHeaders(cluster: StoredCluster, headers: [string, string][]): boolean {
    if (cluster.headers.length !== headers.length) return false;
    if (headers.length === 0) return true;
    if (!this.box) return false;
    try {
      return cluster.headers.every(
        (stored, i) => stored.name === headers[i]![0] && this.box!.open(stored.value) === headers[i]![1],
      );
    } catch {
      // Sealed under another key: replacing them is how they become readable again.
      return false;
    }
  }

  private opened(cluster: StoredCluster): FlinkCluster {
    const headers: Record<string, string> = {};
    if (cluster.headers.length > 0 && !this.box) {
      throw new ClusterHeadersUnreadableError(cluster.name, 'SNAPCAT_SECRET_KEY is not set');
    }
    for (const header of cluster.headers) {
      try {
        headers[header.name] = this.box!.open(header.value);
      } catch {
        throw new ClusterHeadersUnreadableError(
          cluster.name,
          'SNAPCAT_SECRET_KEY is not the key they were sealed with (set them again with PUT)',
        );
      }
    }
    return { name: cluster.name, restUrl: cluster.restUrl, headers };
  }
}

/** The value, or CommandRejected INVALID naming the field (and the header) and the rule it breaks. */
function checked<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const named = issue.code === 'custom' ? issue.params?.rule : undefined;
  const rule = typeof named === 'string' ? named : issue.code.replace(/_/g, '-');
  const path = fieldName(field, issue.path);
  throw new CommandRejected('INVALID', path, rule, `${path}: ${issue.message}`);
}

const byName = (clusters: Clusters): StoredCluster[] =>
  [...clusters.values()].sort((a, b) => (a.name < b.name ? -1 : 1));

/** Lowercased names, sorted: the order the log keeps them in. */
const normalized = (headers: Record<string, string>): [string, string][] =>
  Object.entries(headers)
    .map(([name, value]): [string, string] => [name.toLowerCase(), value])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** A grant in one spelling (sorted, without repeats), so that the same one given again changes nothing. */
const sortedGrant = (grant: NamespaceGrant): '*' | string[] =>
  grant === '*' ? '*' : [...new Set(grant)].sort();
