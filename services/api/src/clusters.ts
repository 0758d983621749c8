import express from 'express';
import { z } from 'zod';
import {
  ClusterHeaders,
  ClusterName,
  ClusterRestUrl,
  NamespaceGrantSchema,
  type ClusterView,
} from '@snapcat/domain';
import { HeadersNeedKeyError, type ClusterRepository } from '@snapcat/application';
import { Problem } from './problem';
import { parse } from './requests';
import { requireEveryNamespace } from './access';

const schemas = {
  path: z.strictObject({ name: ClusterName }),
  put: z.strictObject({
    restUrl: ClusterRestUrl.meta({
      description:
        'The base URL of the cluster’s REST API (the JobManager, or a proxy before it): http or https, ' +
        'without user:password@ (send credentials as headers), query or fragment.',
    }),
    headers: ClusterHeaders.optional().meta({
      description:
        'Headers sent with every request to the cluster, such as `Authorization`: at most 20, valid HTTP ' +
        'names (not host, content-length, connection, transfer-encoding or another hop-by-hop one), values ' +
        'of at most 4096 characters. The values are stored sealed with SNAPCAT_SECRET_KEY and never shown ' +
        'again: answers name the headers only. A PUT replaces them all; left out, the cluster has none.',
    }),
    namespaces: NamespaceGrantSchema.optional().meta({
      description:
        'The namespaces whose jobs may name the cluster as their `source` (snapcat drives them with this ' +
        'cluster’s headers): `*`, or a list such as `["payments"]`. Left out: `*`, every namespace.',
    }),
  }),
};
/** The request shapes of the cluster routes (the OpenAPI document describes them). */
export { schemas as clusterSchemas };

/** Why a route spans every namespace: a cluster runs the jobs of any namespace. */
const EVERY_NAMESPACE = 'Flink clusters serve the jobs of every namespace';

/**
 * The cluster commands as REST and GraphQL run them: the same validation (Problem 400 naming the field and
 * the rule), 404 for an unknown cluster, 503 for headers without SNAPCAT_SECRET_KEY, as webhooks answer.
 */
export function clusterCommands(clusters: ClusterRepository) {
  const nameOf = (path: unknown) => parse(schemas.path, path, 'path').name;
  const notFound = (name: string) =>
    new Problem(404, 'not-found', 'Not found', `cluster ${name} is not registered`, [
      { field: 'path.name', rule: 'exists', message: `cluster ${name} is not registered` },
    ]);
  return {
    list: (): Promise<ClusterView[]> => clusters.views(),
    async get(path: unknown): Promise<ClusterView> {
      const name = nameOf(path);
      const view = await clusters.view(name);
      if (!view) throw notFound(name);
      return view;
    },
    async put(path: unknown, body: unknown) {
      const name = nameOf(path);
      const input = parse(schemas.put, body, 'body');
      try {
        return await clusters.put(name, input);
      } catch (error) {
        if (!(error instanceof HeadersNeedKeyError)) throw error;
        throw new Problem(503, 'secret-key-required', 'Headers need a secret key', error.message, [
          { field: 'body.headers', rule: 'sealed', message: 'header values are stored sealed' },
          { field: 'env.SNAPCAT_SECRET_KEY', rule: 'required', message: 'is required for cluster headers' },
        ]);
      }
    },
    async remove(path: unknown): Promise<void> {
      const name = nameOf(path);
      if (!(await clusters.remove(name))) throw notFound(name);
    },
  };
}
export type ClusterCommands = ReturnType<typeof clusterCommands>;

/**
 * /api/v1/clusters: the Flink clusters snapcat may talk to (issue 19). A header's value is never answered,
 * only its name. Every route needs a token for every namespace (decision 0018).
 */
export function clusterRoutes(clusters: ClusterRepository): express.Router {
  const router = express.Router();
  const commands = clusterCommands(clusters);
  router.use((req, _res, next) => {
    requireEveryNamespace(req, EVERY_NAMESPACE);
    next();
  });
  router.get('/', async (_req, res) => {
    res.json({ clusters: await commands.list() });
  });
  router.get('/:name', async (req, res) => {
    res.json(await commands.get(req.params));
  });
  router.put('/:name', async (req, res) => {
    const { cluster, created, changed } = await commands.put(req.params, req.body ?? {});
    if (created) res.status(201).location(`${req.baseUrl}/${cluster.name}`);
    res.json({ ...cluster, changed });
  });
  router.delete('/:name', async (req, res) => {
    await commands.remove(req.params);
    res.status(204).end();
  });
  return router;
}

export { EVERY_NAMESPACE as CLUSTERS_SPAN_EVERY_NAMESPACE };
