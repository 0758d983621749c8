import express, { type Request } from 'express';
import { z } from 'zod';
import { SubscriptionFields, SubscriptionId, withoutControlCharacters } from '@snapcat/domain';
import type { WebhookService } from '@snapcat/webhooks';
import { Problem } from './problem';
import { QueryInteger, parse } from './requests';
import { grantOf, routeOf } from './access';

const schemas = {
  path: z.strictObject({ subscriptionId: SubscriptionId }),
  deliveryPath: z.strictObject({
    subscriptionId: SubscriptionId,
    // `<event id>-<subscription id>`: no colon, which would name another key of the delivery log (a 500).
    deliveryId: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[A-Za-z0-9_-]+$/, { error: 'must be a delivery id: letters, digits, - and _' }),
  }),
  create: z.strictObject({
    url: SubscriptionFields.url,
    eventTypes: SubscriptionFields.eventTypes.default([]),
    jobIds: SubscriptionFields.jobIds.default([]),
    description: withoutControlCharacters(SubscriptionFields.description).default(''),
  }),
  update: z
    .strictObject({
      url: SubscriptionFields.url.optional(),
      eventTypes: SubscriptionFields.eventTypes.optional(),
      jobIds: SubscriptionFields.jobIds.optional(),
      description: withoutControlCharacters(SubscriptionFields.description).optional(),
      enabled: z.boolean().optional(),
    })
    .refine((patch) => Object.keys(patch).length > 0, {
      error: 'name at least one field to change',
      params: { rule: 'non-empty' },
    }),
  deliveries: z.strictObject({ limit: QueryInteger(1, 1000).default(50) }),
};
/** The request shapes of the webhook routes (the OpenAPI document describes them). */
export { schemas as webhookSchemas };

/** Retry-After of the 503 while webhooks are disabled: a configuration, not a moment's unavailability. */
const WEBHOOKS_DISABLED_RETRY_AFTER_S = 3600;

/**
 * /api/v1/webhooks. When webhooks are disabled (no SNAPCAT_SECRET_KEY outside development) every route
 * answers 503 saying why, rather than 404, so an operator sees what to configure.
 */
export function webhookRoutes(webhooks: WebhookService | { disabled: string }): express.Router {
  const router = express.Router();
  if ('disabled' in webhooks) {
    router.use((req, res, next) => {
      // A method no webhook route serves goes on to the 405, which says nothing of the configuration.
      if (!routeOf(req.method, req.baseUrl + req.path)) return next();
      // Until an operator configures it and restarts: no client should retry within the second.
      res.setHeader('Retry-After', String(WEBHOOKS_DISABLED_RETRY_AFTER_S));
      next(
        new Problem(503, 'webhooks-disabled', 'Webhooks are disabled', webhooks.disabled, [
          { field: 'env.SNAPCAT_SECRET_KEY', rule: 'required', message: 'is required for webhooks' },
        ]),
      );
    });
    return router;
  }
  const id = (req: Request) => parse(schemas.path, req.params, 'path').subscriptionId;
  // The caller's namespaces (`grantOf`): subscriptions are created for them, and only theirs are seen (issue 18).

  router.post('/', async (req, res) => {
    const created = await webhooks.create(parse(schemas.create, req.body ?? {}, 'body'), grantOf(req));
    res.status(201).location(`${req.baseUrl}/${created.id}`).json(created);
  });
  router.get('/', async (req, res) => {
    res.json({ subscriptions: await webhooks.list(grantOf(req)) });
  });
  router.get('/:subscriptionId', async (req, res) => {
    res.json(await webhooks.get(id(req), grantOf(req)));
  });
  router.patch('/:subscriptionId', async (req, res) => {
    res.json(await webhooks.update(id(req), parse(schemas.update, req.body ?? {}, 'body'), grantOf(req)));
  });
  router.delete('/:subscriptionId', async (req, res) => {
    await webhooks.delete(id(req), grantOf(req));
    res.status(204).end();
  });
  router.post('/:subscriptionId/rotate-secret', async (req, res) => {
    res.json(await webhooks.rotateSecret(id(req), grantOf(req)));
  });
  router.get('/:subscriptionId/deliveries', async (req, res) => {
    const { limit } = parse(schemas.deliveries, req.query, 'query');
    res.json({ deliveries: await webhooks.deliveries(id(req), limit, grantOf(req)) });
  });
  router.post('/:subscriptionId/deliveries/:deliveryId/redeliver', async (req, res) => {
    const { subscriptionId, deliveryId } = parse(schemas.deliveryPath, req.params, 'path');
    res.status(202).json(await webhooks.redeliver(subscriptionId, deliveryId, grantOf(req)));
  });
  router.post('/:subscriptionId/test', async (req, res) => {
    res.status(202).json(await webhooks.test(id(req), grantOf(req)));
  });
  return router;
}
