import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { bearerToken, findToken, grants, type Scope, type TokenEntry } from '@snapcat/runtime';
import { grantsNamespace, type NamespaceGrant } from '@snapcat/domain';
import { Problem } from './problem';

/**
 * Who may call what (issue 18, docs/decisions/0014-access-control.md): the one table of the scope each REST
 * route and each GraphQL root field needs. The access middleware and the GraphQL plugin below read it, and
 * the matrix test (services/api/test/access.test.ts) checks it against the routes the app registers and the
 * fields the schema declares, so a route or an operation without a rule fails the suite.
 *
 * `public`: no token needed (probes, metrics, the OpenAPI document). A route not in the table needs `admin`
 * (deny by default); `/graphql` is authorised per operation, by GRAPHQL_RULES.
 */
export type Rule = Scope | 'public';

export const REST_RULES = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /api/v1/openapi.json': 'public',

  'GET /api/v1/jobs': 'read',
  'GET /api/v1/jobs/{jobId}': 'read',
  'GET /api/v1/jobs/{jobId}/snapshots/{snapshotId}': 'read',
  'GET /api/v1/jobs/{jobId}/events': 'read',
  'GET /api/v1/jobs/{jobId}/savepoint-schedule': 'read',
  'GET /api/v1/storage/orphans': 'read',
  // Flink-compatible reads (decision 0017).
  'GET /api/flink/v1/jobs/{jobId}/checkpoints': 'read',
  'GET /api/flink/v1/jobs/{jobId}/checkpoints/config': 'read',
  'GET /api/flink/v1/jobs/{jobId}/checkpoints/details/{checkpointId}': 'read',

  'PUT /api/v1/jobs/{jobId}': 'runtime',
  'POST /api/v1/jobs/{jobId}/status': 'runtime',
  'POST /api/v1/jobs/{jobId}/snapshots': 'runtime',
  'POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/acks': 'runtime',
  'POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/decline': 'runtime',
  'POST /api/v1/jobs/{jobId}/restores': 'runtime',

  'POST /api/v1/jobs/{jobId}/snapshots/import': 'operator',
  'POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/persist': 'operator',
  'POST /api/v1/jobs/{jobId}/snapshots/{snapshotId}/discard': 'operator',
  'PUT /api/v1/jobs/{jobId}/savepoint-schedule': 'operator',
  'DELETE /api/v1/jobs/{jobId}/savepoint-schedule': 'operator',

  'POST /api/v1/webhooks': 'operator',
  'GET /api/v1/webhooks': 'operator',
  'GET /api/v1/webhooks/{subscriptionId}': 'operator',
  'PATCH /api/v1/webhooks/{subscriptionId}': 'operator',
  'DELETE /api/v1/webhooks/{subscriptionId}': 'operator',
  'POST /api/v1/webhooks/{subscriptionId}/rotate-secret': 'operator',
  'GET /api/v1/webhooks/{subscriptionId}/deliveries': 'operator',
  'POST /api/v1/webhooks/{subscriptionId}/deliveries/{deliveryId}/redeliver': 'operator',
  'POST /api/v1/webhooks/{subscriptionId}/test': 'operator',

  // Flink clusters (decision 0018): their URLs and header names describe infrastructure, their headers carry
  // credentials. Reading them is an operator's; changing where snapcat sends credentials is an admin's.
  'GET /api/v1/clusters': 'operator',
  'GET /api/v1/clusters/{name}': 'operator',
  'PUT /api/v1/clusters/{name}': 'admin',
  'DELETE /api/v1/clusters/{name}': 'admin',
} as const satisfies Record<string, Rule>;

/** The scope of each GraphQL root field (`Type.field`); introspection (`__schema`, `__type`) is public. */
export const GRAPHQL_RULES = {
  'Query.viewer': 'read',
  'Query.job': 'read',
  'Query.jobs': 'read',
  'Query.snapshot': 'read',
  'Query.snapshots': 'read',
  'Query.catalog': 'read',
  'Query.history': 'read',
  'Query.catalogAsOf': 'read',
  'Query.restorePlan': 'read',
  'Subscription.snapshotEvents': 'read',
  'Mutation.triggerSnapshot': 'runtime',
  'Mutation.setJobStatus': 'runtime',
  'Mutation.restoreSnapshot': 'runtime',
  'Mutation.persistSnapshot': 'operator',
  'Mutation.importSnapshot': 'operator',
  'Mutation.discardSnapshot': 'operator',
  'Mutation.setSavepointSchedule': 'operator',
  'Mutation.removeSavepointSchedule': 'operator',
  'Query.clusters': 'operator',
  'Query.cluster': 'operator',
  'Mutation.setCluster': 'admin',
  'Mutation.removeCluster': 'admin',
} as const satisfies Record<string, Scope>;

/**
 * The web console's page and its hashed assets (console.ts): public like a login page, as they hold no data;
 * the page reads and acts through /graphql with the operator's token.
 */
export const CONSOLE_PAGES = /^\/(assets\/[^/]+)?$/;

/** What a route or field not in the tables needs. */
export const DEFAULT_RULE: Scope = 'admin';

/** The caller of a request: a configured token, or `anonymous` (with every right) while authentication is off. */
export interface Principal {
  name: string;
  scopes: Scope[];
  namespaces: '*' | string[];
}
/** Whether the principal may act in some namespaces only, not in all (`*`). */
export const isLimited = (
  principal: Principal | undefined,
): principal is Principal & { namespaces: string[] } =>
  principal !== undefined && principal.namespaces !== '*';

export const ANONYMOUS: Principal = { name: 'anonymous', scopes: ['admin'], namespaces: '*' };

/** How a request identified itself: a principal, no token at all, or a token that is not configured. */
export type Identity = Principal | 'missing' | 'unknown';
const identities = new WeakMap<object, Identity>();

/** How a request the access middleware saw identified itself (GraphQL's access plugin decides on it). */
export const identityOf = (req: object): Identity | undefined => identities.get(req);

/** The principal of a request the access middleware let through (undefined for public routes without token). */
export function principalOf(req: object): Principal | undefined {
  const identity = identities.get(req);
  return typeof identity === 'object' ? identity : undefined;
}

/** The namespaces the request's caller may see and act in: its token's, or every one (`*`) without tokens. */
export const grantOf = (req: object): NamespaceGrant => principalOf(req)?.namespaces ?? '*';

/**
 * Whom a request's limits count (the request rate, open subscriptions): its token, or its client address while
 * authentication is off (every caller is then `anonymous`). Set by the access check.
 */
const limitKeys = new WeakMap<object, string>();
export const limitKeyOf = (req: object): string | undefined => limitKeys.get(req);

/** Authentication off: every caller is `anonymous`. */
const anonymous = (): Identity => ANONYMOUS;

/**
 * How requests are identified by their bearer token. A token that matched a configured hash is remembered, so
 * its next requests skip the SHA-256 (about 3 % of an acknowledgement's CPU, BENCHMARKS.md #14): at most one
 * token per configured entry is kept (a token is kept only once its hash was found among them), and an unknown
 * token pays the hash and the constant-time comparison every time. Whether a token is known is no secret to
 * its caller: the answer (200 or 401) says it.
 */
function identifier(tokens: readonly TokenEntry[]): (authorization: string | undefined) => Identity {
  if (tokens.length === 0) return anonymous;
  const known = new Map<string, Principal>();
  return (authorization) => {
    if (authorization === undefined) return 'missing';
    const token = bearerToken(authorization);
    if (token === undefined) return 'unknown';
    let principal = known.get(token);
    if (principal === undefined) {
      const entry = findToken(tokens, token);
      if (!entry) return 'unknown';
      principal = { name: entry.name, scopes: entry.scopes, namespaces: entry.namespaces };
      known.set(token, principal);
    }
    return principal;
  };
}

/**
 * The namespaces a list shows: the token's, narrowed to `asked` when the caller asked for one (a namespace
 * outside the token's gives an empty list, as if it held no jobs); undefined: every namespace.
 */
export function visibleNamespaces(
  grant: '*' | readonly string[],
  asked?: string,
): readonly string[] | undefined {
  if (asked !== undefined) return grantsNamespace(grant, asked) ? [asked] : [];
  return grant === '*' ? undefined : grant;
}

/** Refuses (403) a caller whose token is limited to some namespaces, for what spans every namespace. */
export function requireEveryNamespace(req: object, why: string): void {
  const principal = principalOf(req);
  if (!principal || principal.namespaces === '*') return;
  const detail = `${why}: this needs a token for every namespace (*); token ${principal.name} has ${principal.namespaces.join(', ')}`;
  throw new Problem(
    403,
    'forbidden',
    'Forbidden',
    detail,
    [{ field: 'header.authorization', rule: 'namespace', message: 'needs every namespace (*)' }],
    { requiredNamespaces: '*' },
  );
}

/**
 * Whether the caller may read the Flink clusters' registrations: the scope of `GET /api/v1/clusters` and a
 * token of every namespace (decision 0018), as the clusters' routes require.
 */
export function mayReadClusters(principal: Principal | undefined): boolean {
  const rule = restRule('GET', '/api/v1/clusters');
  if (rule === 'public') return true;
  return principal?.namespaces === '*' && rule !== 'graphql' && holds(principal, rule);
}

function holds(principal: Principal, needed: Scope): boolean {
  return grants(principal.scopes, needed);
}

/** The rule of a REST request, matched as express matches routes (case-insensitive, optional trailing slash). */
export function restRule(method: string, path: string): Rule | 'graphql' {
  if (/^\/graphql\/?$/i.test(path)) return 'graphql';
  const verb = method === 'HEAD' ? 'GET' : method;
  if (verb === 'GET' && CONSOLE_PAGES.test(path)) return 'public';
  const route = routeOf(method, path);
  if (route) return REST_RULES[route];
  // A method no route serves at a path others are served at reaches no handler: the 405 that lists them is
  // everyone's, rather than a 403 that suggests an admin could do it.
  if (verb !== 'OPTIONS' && allowedMethods(path).length > 0) return 'public';
  return DEFAULT_RULE;
}

/**
 * The methods the API serves at a path (HEAD with GET), from the same table; none for a path it does not
 * serve at all. What a 405's `Allow` lists.
 */
export function allowedMethods(path: string): string[] {
  const verbs = resourceOf(path).map(([pattern]) => pattern.verb);
  return [...new Set(verbs.flatMap((verb) => (verb === 'GET' ? ['GET', 'HEAD'] : [verb])))];
}
const COMPILED = Object.entries(REST_RULES).map(([key, rule]) => {
  const [verb, path] = key.split(' ') as [string, string];
  const source = path.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+');
  const parameters = path.split('{').length - 1;
  return [{ verb, path: new RegExp(`^${source}/?$`, 'i'), key, parameters }, rule as Rule] as const;
});

/**
 * The routes of the resource a path names: of the routes that match it, those with the fewest parameters. A
 * literal segment names a resource of its own that a parameter does not take: `GET …/snapshots/import` is a
 * 405 (only POST serves it), not a read of snapshot "import".
 */
function resourceOf(path: string): (typeof COMPILED)[number][] {
  const matching = COMPILED.filter(([pattern]) => pattern.path.test(path));
  const fewest = Math.min(...matching.map(([pattern]) => pattern.parameters));
  return matching.filter(([pattern]) => pattern.parameters === fewest);
}

/** The route (`GET /api/v1/jobs/{jobId}`, a key of REST_RULES) a request is for; undefined for none. */
export function routeOf(method: string, path: string): keyof typeof REST_RULES | undefined {
  const verb = method === 'HEAD' ? 'GET' : method;
  const found = resourceOf(path).find(([pattern]) => pattern.verb === verb);
  return found?.[0].key as keyof typeof REST_RULES | undefined;
}

/** Per-caller request budget: resolves whether the request may go on, or after how long to retry. */
export interface RateLimiter {
  consume(key: string): Promise<{ allowed: true } | { allowed: false; retryAfterMs: number }>;
}

/**
 * Never limited: what orchestrators, load balancers and scrapers poll. A scrape counted in Redis would also
 * wait for the limiter's Redis while it hangs (500 ms), on top of the families' own 1 s.
 */
const UNLIMITED = new Set(['/healthz', '/readyz', '/metrics']);

export interface AccessOptions {
  /** The configured tokens; none: authentication is off (every caller is `anonymous`). */
  tokens: readonly TokenEntry[];
  rateLimiter?: RateLimiter;
}

/**
 * Identifies the caller (Bearer token, compared in constant time), applies the rate limit (per token, per
 * client address without one), then refuses what the caller's scopes do not allow: 401 problem+json with
 * `WWW-Authenticate: Bearer` for no or an unknown token, 403 naming the scope needed. /graphql is let through
 * identified: its operations are checked by accessPlugin (graphql-access.ts).
 */
export function accessMiddleware(options: AccessOptions): express.RequestHandler {
  const check = accessCheck(options);
  return (req, res, next) => check(req, req.path, req.ip, res, next);
}

/**
 * accessMiddleware's check on Node's request and response (the front door's too): calls
 * `next()` to go on, `next(problem)` to refuse, having set WWW-Authenticate or Retry-After on `res`.
 */
export function accessCheck({ tokens, rateLimiter }: AccessOptions) {
  const identify = identifier(tokens);
  return (
    req: IncomingMessage,
    path: string,
    ip: string | undefined,
    res: ServerResponse,
    next: (error?: unknown) => void,
  ): void => {
    const rule = restRule(req.method ?? 'GET', path);
    const identity = identify(req.headers.authorization);
    identities.set(req, identity);
    const decide = () => {
      if (rule === 'public' || rule === 'graphql') return next();
      if (typeof identity !== 'object') return next(unauthenticated(res, identity));
      if (!holds(identity, rule)) return next(forbidden(rule, identity));
      next();
    };
    const key = typeof identity === 'object' && tokens.length > 0 ? `token:${identity.name}` : `ip:${ip}`;
    limitKeys.set(req, key);
    if (!rateLimiter || UNLIMITED.has(path)) return decide();
    rateLimiter.consume(key).then((verdict) => {
      if (verdict.allowed) return decide();
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      res.setHeader('Retry-After', String(seconds));
      next(
        new Problem(
          429,
          'too-many-requests',
          'Too many requests',
          `rate limit exceeded: retry in ${seconds} s`,
        ),
      );
    }, next);
  };
}

function unauthenticated(res: ServerResponse, identity: 'missing' | 'unknown'): Problem {
  res.setHeader(
    'WWW-Authenticate',
    identity === 'missing' ? 'Bearer realm="snapcat"' : 'Bearer realm="snapcat", error="invalid_token"',
  );
  const detail =
    identity === 'missing'
      ? 'this route needs a token: send Authorization: Bearer <token>'
      : 'the token is not valid';
  return new Problem(401, 'unauthenticated', 'Unauthenticated', detail, [
    { field: 'header.authorization', rule: identity === 'missing' ? 'required' : 'token', message: detail },
  ]);
}

/**
 * A part of a request that needs more than its route's scope: `source` of a job (which Flink cluster snapcat
 * drives for it, with the credentials an admin registered) needs `operator`, though registering a job is a
 * runtime's. Without a principal (no tokens) everything is allowed.
 */
export function requireScope(principal: Principal | undefined, needed: Scope): void {
  if (principal && !grants(principal.scopes, needed)) throw forbidden(needed, principal);
}

function forbidden(needed: Scope, principal: Principal): Problem {
  const detail = `this needs the ${needed} scope; token ${principal.name} has ${principal.scopes.join(', ')}`;
  return new Problem(
    403,
    'forbidden',
    'Forbidden',
    detail,
    [{ field: 'header.authorization', rule: 'scope', message: `needs the ${needed} scope` }],
    { requiredScope: needed },
  );
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Requests a browser was tricked into sending, when there are no tokens (the quick start). Any page may send a
 * "simple" POST (a form, text/plain, no body) to another site without a preflight, and may point a name of its
 * own at 127.0.0.1 (DNS rebinding); without tokens nothing else would stand in the way of a page discarding
 * snapshots on an operator's laptop. So then a request that changes something and carries an Origin (browsers
 * send one; curl, Flink and other programs do not) must come from the service's own origin, as the web
 * console's do, and every request must be addressed to a loopback name. With tokens a request needs an
 * Authorization header, which no page can make a browser send to another site: nothing to add (and a proxy's
 * Host need not match the browser's origin).
 */
export function crossSiteGuard(authenticationOn: boolean): express.RequestHandler {
  return (req, _res, next) => next(authenticationOn ? undefined : crossSiteProblem(req));
}

/** crossSiteGuard's rule for a request while authentication is off: the refusal, or undefined. */
export function crossSiteProblem(req: IncomingMessage): Problem | undefined {
  const host = req.headers.host ?? '';
  if (!isLoopbackHost(host)) {
    return new Problem(
      403,
      'forbidden',
      'Forbidden',
      `without tokens only requests addressed to a loopback name are answered, not to ${JSON.stringify(host)}`,
      [{ field: 'header.host', rule: 'loopback', message: 'must be localhost, 127.0.0.1 or [::1]' }],
    );
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !SAFE_METHODS.has(req.method ?? 'GET') && !isOriginOf(origin, host)) {
    return new Problem(
      403,
      'forbidden',
      'Forbidden',
      `a page of ${origin} may not change anything here: cross-site requests are refused`,
      [{ field: 'header.origin', rule: 'same-origin', message: `must be this service's own origin` }],
    );
  }
  return undefined;
}

function isOriginOf(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false; // "null" (a sandboxed page, a file) or garbage
  }
}

function isLoopbackHost(host: string): boolean {
  const name = host
    .toLowerCase()
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1');
  return name === 'localhost' || name === '::1' || /^127(\.\d{1,3}){3}$/.test(name);
}
