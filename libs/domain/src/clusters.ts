import { z } from 'zod';
import { ClusterName } from './schemas';
import { NamespaceGrantSchema, type NamespaceGrant } from './namespaces';
import { SealedSecret } from './webhooks';

/**
 * The Flink clusters snapcat may talk to (issue 19), as events of their own stream. Pure: header values
 * arrive sealed (encrypted by an adapter, as webhook secrets are); this module never sees one in the clear.
 * The rules of the fields are written once here, for REST, GraphQL and the repository.
 */

const Timestamp = z.iso.datetime();

/** The `userinfo@` of an absolute URL, however empty. */
const USERINFO = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i;

/**
 * The base URL of the cluster's REST API (the JobManager, or a proxy before it): http(s), no credentials
 * (they would be stored and shown in clear; headers carry them sealed), no query or fragment, as the
 * client appends the REST paths to it.
 */
export const ClusterRestUrl = z
  .url({ protocol: /^https?$/, error: 'must be an absolute http:// or https:// URL' })
  .max(2048)
  .refine((url) => !USERINFO.test(url), {
    error: 'must not carry user:password@: send credentials as headers, which are stored sealed',
    params: { rule: 'no-credentials' },
  })
  .refine((url) => !url.includes('?') && !url.includes('#'), {
    error: 'must not carry a ?query or #fragment: it is the base the REST paths are appended to',
    params: { rule: 'base-url' },
  });

export const MAX_CLUSTER_HEADERS = 20;
export const MAX_HEADER_VALUE = 4096;
const MAX_HEADER_NAME = 256;

/** RFC 9110 token: what a field name may hold. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 field-value: visible characters, spaces and tabs (obs-text too); never CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Header names the client owns: hop-by-hop fields (RFC 9110 7.6.1), the framing of the message and its
 * target, which a stored header must never override.
 */
export const FORBIDDEN_HEADERS: readonly string[] = [
  'connection',
  'content-length',
  'expect',
  'host',
  'http2-settings',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/**
 * Headers the client sends with every request to the cluster (`Authorization`, a proxy's API key): names
 * as HTTP field names, compared and stored lowercased; values kept secret.
 */
export const ClusterHeaders = z.record(z.string(), z.string()).superRefine((headers, ctx) => {
  const names = Object.keys(headers);
  const issue = (path: string[], rule: string, message: string) =>
    ctx.addIssue({ code: 'custom', path, message, params: { rule } });
  if (names.length > MAX_CLUSTER_HEADERS) {
    issue([], 'max-length', `at most ${MAX_CLUSTER_HEADERS} headers`);
  }
  const seen = new Set<string>();
  for (const name of names) {
    const lower = name.toLowerCase();
    // Never the value in a message: it is a secret, and messages reach answers and logs.
    if (name.length > MAX_HEADER_NAME || !TOKEN.test(name)) {
      issue(
        [name],
        'header-name',
        'is not a valid HTTP header name (RFC 9110 token, at most 256 characters)',
      );
    } else if (FORBIDDEN_HEADERS.includes(lower)) {
      issue(
        [name],
        'forbidden-header',
        `is set by the client: ${FORBIDDEN_HEADERS.join(', ')} may not be stored`,
      );
    } else if (seen.has(lower)) {
      issue([name], 'unique', 'names a header already given (names are case-insensitive)');
    }
    seen.add(lower);
    const value = headers[name]!;
    if (value.length > MAX_HEADER_VALUE) {
      issue([name], 'max-length', `the value may hold at most ${MAX_HEADER_VALUE} characters`);
    } else if (!FIELD_VALUE.test(value)) {
      issue([name], 'header-value', 'the value holds a character a header may not (CR, LF, NUL, controls)');
    }
  }
});

/** One header as the log holds it: its name, lowercased, and its value sealed. */
export const SealedHeader = z.strictObject({ name: z.string(), value: SealedSecret });
export type SealedHeader = z.infer<typeof SealedHeader>;

const ofCluster = { name: ClusterName, occurredAt: Timestamp };
const definition = {
  restUrl: ClusterRestUrl,
  headers: z.array(SealedHeader).max(MAX_CLUSTER_HEADERS),
  /** The namespaces whose jobs the cluster may run (absent: every namespace, as before it could be set). */
  namespaces: NamespaceGrantSchema.optional(),
};

export const ClusterRegistered = z.strictObject({
  type: z.literal('ClusterRegistered'),
  ...ofCluster,
  ...definition,
});
/** The whole definition again (a PUT replaces it): the headers given are all the cluster has. */
export const ClusterChanged = z.strictObject({
  type: z.literal('ClusterChanged'),
  ...ofCluster,
  ...definition,
});
export const ClusterRemoved = z.strictObject({ type: z.literal('ClusterRemoved'), ...ofCluster });
/**
 * The connector's calls to the cluster failed so often in a row that its circuit opened: calls fail fast
 * until a probe gets through (issue 19, item 6). Recorded once per outage, by whichever worker saw it first.
 */
export const FlinkClusterUnreachable = z.strictObject({
  type: z.literal('FlinkClusterUnreachable'),
  ...ofCluster,
  error: z.string().max(4096),
});
/** A probe got through after an outage: the cluster answers again. */
export const FlinkClusterReachable = z.strictObject({
  type: z.literal('FlinkClusterReachable'),
  ...ofCluster,
});

export const ClusterEvent = z.discriminatedUnion('type', [
  ClusterRegistered,
  ClusterChanged,
  ClusterRemoved,
  FlinkClusterUnreachable,
  FlinkClusterReachable,
]);
export type ClusterEvent = z.infer<typeof ClusterEvent>;
export const CLUSTER_EVENT_TYPES = ClusterEvent.options.map((schema) => schema.shape.type.value);

export interface StoredCluster {
  name: string;
  restUrl: string;
  /** Sorted by name. */
  headers: SealedHeader[];
  /** The namespaces whose jobs may name it as their source (R67): `*` for every one. */
  namespaces: NamespaceGrant;
  createdAt: string;
  updatedAt: string;
  /** What the connector last recorded: UNKNOWN until a worker found the cluster unreachable, or back. */
  reachability: {
    state: 'UNKNOWN' | 'REACHABLE' | 'UNREACHABLE';
    since: string | null;
    error: string | null;
  };
}

const UNKNOWN_REACHABILITY: StoredCluster['reachability'] = { state: 'UNKNOWN', since: null, error: null };

/** Every cluster registered and not removed, by name. */
export type Clusters = ReadonlyMap<string, StoredCluster>;

export function evolveClusters(state: Clusters, event: ClusterEvent): Clusters {
  const next = new Map(state);
  switch (event.type) {
    case 'ClusterRegistered':
    case 'ClusterChanged': {
      const createdAt = state.get(event.name)?.createdAt ?? event.occurredAt;
      next.set(event.name, {
        name: event.name,
        restUrl: event.restUrl,
        headers: event.headers,
        namespaces: event.namespaces ?? '*',
        createdAt,
        updatedAt: event.occurredAt,
        reachability: state.get(event.name)?.reachability ?? UNKNOWN_REACHABILITY,
      });
      break;
    }
    case 'FlinkClusterUnreachable':
    case 'FlinkClusterReachable': {
      const cluster = state.get(event.name);
      if (!cluster) break;
      const unreachable = event.type === 'FlinkClusterUnreachable';
      next.set(event.name, {
        ...cluster,
        reachability: {
          state: unreachable ? 'UNREACHABLE' : 'REACHABLE',
          since: event.occurredAt,
          error: unreachable ? event.error : null,
        },
      });
      break;
    }
    case 'ClusterRemoved':
      next.delete(event.name);
      break;
  }
  return next;
}

export const foldClusters = (events: Iterable<ClusterEvent>): Clusters => {
  let state: Clusters = new Map();
  for (const event of events) state = evolveClusters(state, event);
  return state;
};

/** What a client sees of a cluster: the names of its headers, never a value, not even sealed. */
export function clusterView(cluster: StoredCluster) {
  return {
    name: cluster.name,
    restUrl: cluster.restUrl,
    headers: cluster.headers.map((header) => header.name),
    namespaces: cluster.namespaces,
    createdAt: cluster.createdAt,
    updatedAt: cluster.updatedAt,
    /** As the connector last found it (issue 19, item 6): REACHABLE, UNREACHABLE, or UNKNOWN until then. */
    state: cluster.reachability.state,
    stateSince: cluster.reachability.since,
    lastError: cluster.reachability.error,
  };
}
export type ClusterView = ReturnType<typeof clusterView>;
