import { Circuit, FlinkRestClient } from '@snapcat/flink';
import type { LogFn } from '@snapcat/runtime';
import { grantsNamespace } from '@snapcat/domain';
import type { ClusterRegistry, ClusterRepository } from '@snapcat/application';
import type { FlinkApis, FlinkConnectorDeps } from './flink';

/**
 * The Flink API of each registered cluster: one client per cluster configuration, and one circuit per
 * cluster shared by them all, so that an unreachable cluster fails fast for every job on it and never
 * delays another's. The circuit's transitions are logged (an operator's first sign of a cluster down).
 */
export function flinkApisFrom(
  clusters: Pick<ClusterRegistry, 'get'> & Partial<Pick<ClusterRepository, 'recordReachability'>>,
  log: { warn: LogFn; info: LogFn },
  options: { timeoutMs?: number; retries?: number } = {},
): FlinkApis {
  const circuits = new Map<string, Circuit>();
  const clients = new Map<string, { key: string; client: FlinkRestClient }>();
  return async (name) => {
    const cluster = await clusters.get(name);
    if (!cluster) throw new Error(`Flink cluster ${name} is not registered (PUT /api/v1/clusters/${name})`);
    let circuit = circuits.get(name);
    if (!circuit) {
      circuit = new Circuit();
      circuit.onChange((change) => {
        (change === 'unreachable' ? log.warn : log.info)(`flink cluster ${change}`, { cluster: name });
        // Recorded in the clusters' log (FlinkClusterUnreachable, FlinkClusterReachable): once per outage.
        clusters
          .recordReachability?.(
            name,
            change === 'reachable',
            'calls failed repeatedly (refused connections, timeouts or 5xx answers): they fail fast until a probe gets through',
          )
          .catch((error: Error) =>
            log.warn('cannot record a Flink cluster’s reachability', { cluster: name, error: error.message }),
          );
      });
      circuits.set(name, circuit);
    }
    // A changed URL or header makes a new client; the header values are compared, never logged.
    const key = JSON.stringify([cluster.restUrl, cluster.headers]);
    const cached = clients.get(name);
    if (cached?.key === key) return cached.client;
    const client = new FlinkRestClient(cluster, { circuit, ...options });
    clients.set(name, { key, client });
    return client;
  };
}

/** Whether a registered cluster serves a namespace now, read from the clusters' log (decision 0033). */
export function servesNamespace(clusters: Pick<ClusterRepository, 'view'>): FlinkConnectorDeps['serves'] {
  return async (cluster, namespace) => {
    const view = await clusters.view(cluster);
    return view !== null && grantsNamespace(view.namespaces, namespace);
  };
}
