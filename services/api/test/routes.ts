import type { App } from '../src/app';
import { CommandRejected, grantCovers, type NamespaceGrant } from '@snapcat/domain';
import type { WebhookService } from '@snapcat/webhooks';
import { CONSOLE_PAGES } from '../src/access';
import { describedRoutes } from '../src/openapi';
import { JOB } from './fixture';

/*
 * What the tests that compare the express app with a list of routes share (the OpenAPI document test, the
 * access matrix test): the routes the app registers, and a webhook service stub for the webhook routes.
 */

export const SUBSCRIPTION = 'wh_4f1c2a9b7d3e5f60a1b2c3d4';
export const CLUSTER = 'flink-prod';

/** A route's path (`/jobs/{jobId}/...`) with its parameters filled in with the tests' job and subscription. */
export const concrete = (path: string) =>
  path
    .replace('{jobId}', JOB)
    .replace('{snapshotId}', '1')
    .replace('{checkpointId}', '1')
    .replace('{subscriptionId}', SUBSCRIPTION)
    .replace('{deliveryId}', 'd1')
    .replace('{name}', CLUSTER);

/** One request example of the OpenAPI document: its operation (`POST /api/v1/jobs/{jobId}/status`) and body. */
export interface RequestExample {
  method: string;
  path: string;
  name: string;
  value: unknown;
}

/** Every request example of the OpenAPI document, operation by operation in the document's order. */
export const requestExamples = (): RequestExample[] =>
  describedRoutes().flatMap(({ method, path, operation }) => {
    const content = operation.requestBody?.content?.['application/json'] as
      { examples?: Record<string, { value: unknown }> } | undefined;
    return Object.entries(content?.examples ?? {}).map(([name, { value }]) => ({
      method,
      path,
      name,
      value,
    }));
  });

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: string;
}

/**
 * Every (method, path) of the API the express app registers, walking its router and the routers mounted on
 * it; the web console's page is not an API route (access.ts CONSOLE_PAGES, tested in console.test.ts).
 */
export function registered(app: App): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const path = `${prefix}${layer.route.path}`.replace(/(.)\/$/, '$1').replace(/:(\w+)/g, '{$1}');
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (method === 'get' && CONSOLE_PAGES.test(path)) continue;
          if (on && method !== '_all') found.push(`${method.toUpperCase()} ${path}`);
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, `${prefix}${layer.rawPath ?? ''}`);
      }
    }
  };
  walk((app.express as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return found;
}

/** Webhook answers without Redis: the routes run, the service is not under test here. */
export const webhookStub = () => {
  const subscription = {
    id: SUBSCRIPTION,
    url: 'https://hooks.example.com/snapcat',
    eventTypes: [],
    jobIds: [],
    description: '',
    namespaces: '*' as NamespaceGrant,
    enabled: true,
    createdAt: '2024-06-01T00:00:00.000Z',
    updatedAt: '2024-06-01T00:00:00.000Z',
  };
  const receipt = { deliveryId: 'd1', messageId: 'msg_1' };
  // As the service does: the caller's namespaces (the last argument) must cover the subscription's.
  const visible =
    <T>(answer: T) =>
    async (...args: unknown[]) => {
      if (!grantCovers(args.at(-1) as NamespaceGrant, subscription.namespaces)) {
        throw new CommandRejected('NOT_FOUND', 'subscriptionId', 'exists', `${SUBSCRIPTION} does not exist`);
      }
      return answer;
    };
  return {
    create: async () => ({ ...subscription, secret: 'whsec_x' }),
    list: async (grant: NamespaceGrant) =>
      grantCovers(grant, subscription.namespaces) ? [subscription] : [],
    get: visible(subscription),
    update: visible(subscription),
    delete: visible(undefined),
    rotateSecret: visible({ ...subscription, secret: 'whsec_y' }),
    deliveries: visible([]),
    redeliver: visible(receipt),
    test: visible(receipt),
  } as unknown as WebhookService;
};
