import { z } from 'zod';

/**
 * Namespaces (issue 18): a job belongs to one, set at registration and never changed; a token may act in
 * some namespaces, or in all (`*`). A namespace is a DNS label, as Kubernetes namespaces are, so the names
 * platform teams already use fit.
 */
export const NAMESPACE_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const Namespace = z.string().regex(NAMESPACE_PATTERN, {
  error: 'must be a lowercase name of 1-63 letters, digits and -, starting and ending with a letter or digit',
});

/** Where a job without a namespace lives: every job registered before namespaces existed. */
export const DEFAULT_NAMESPACE = 'default';

/** The namespaces a caller may act in: `*` for all (the workers, and callers while authentication is off). */
export type NamespaceGrant = '*' | readonly string[];
export const NamespaceGrantSchema = z.union([z.literal('*'), z.array(Namespace).min(1)], {
  error: 'must be "*" (every namespace) or a list of namespace names',
});

/** Whether a caller holding `grant` may see or act on what lies in `namespace`. */
export const grantsNamespace = (grant: NamespaceGrant, namespace: string): boolean =>
  grant === '*' || grant.includes(namespace);

/** Whether `grant` holds every namespace of `namespaces` (what a webhook subscription covers, say). */
export const grantCovers = (grant: NamespaceGrant, namespaces: NamespaceGrant): boolean =>
  grant === '*' || (namespaces !== '*' && namespaces.every((ns) => grantsNamespace(grant, ns)));
