import { GraphQLError, Kind, getOperationAST, type DocumentNode, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { grants, type Scope } from '@snapcat/runtime';
import { DEFAULT_RULE, GRAPHQL_RULES, identityOf, type Identity } from './access';

// GraphQL's half of the access rules, apart from access.ts so that a process loads graphql only with its
// GraphQL endpoint, on the first request to it (decision 0041).

/** The root fields an operation selects, through fragments (`Type.field`, Type the operation's root type). */
export function rootFields(document: DocumentNode, operationName?: string | null): string[] {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return [];
  const type = { query: 'Query', mutation: 'Mutation', subscription: 'Subscription' }[operation.operation];
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d]] : [])),
  );
  const fields = new Set<string>();
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) fields.add(`${type}.${selection.name.value}`);
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return [...fields];
}

const PUBLIC_FIELDS = /\.__(schema|type|typename)$/;

/** The scope an operation needs to its last field: the strongest any of its root fields needs. */
function refusal(identity: Identity | undefined, fields: string[]): GraphQLError | undefined {
  const needed = fields
    .filter((field) => !PUBLIC_FIELDS.test(field))
    .map((field) => (GRAPHQL_RULES as Record<string, Scope>)[field] ?? DEFAULT_RULE);
  if (needed.length === 0) return undefined;
  if (identity === undefined || typeof identity !== 'object') {
    const missing = identity !== 'unknown';
    return new GraphQLError(
      missing ? 'this operation needs a token: send Authorization: Bearer <token>' : 'the token is not valid',
      {
        extensions: {
          code: 'UNAUTHENTICATED',
          http: {
            status: 401,
            headers: {
              'WWW-Authenticate': missing
                ? 'Bearer realm="snapcat"'
                : 'Bearer realm="snapcat", error="invalid_token"',
            },
          },
        },
      },
    );
  }
  const lacking = needed.find((scope) => !grants(identity.scopes, scope));
  if (lacking === undefined) return undefined;
  return new GraphQLError(
    `this operation needs the ${lacking} scope; token ${identity.name} has ${identity.scopes.join(', ')}`,
    { extensions: { code: 'FORBIDDEN', requiredScope: lacking, http: { status: 403 } } },
  );
}

/**
 * GraphQL's half of the access rules: before an operation executes (or subscribes), every root field it
 * selects must be allowed to the caller the access middleware identified; otherwise the whole operation is
 * refused with one error (UNAUTHENTICATED, HTTP 401; FORBIDDEN, HTTP 403) and nothing runs.
 */
export function accessPlugin(enabled: boolean): Plugin {
  if (!enabled) return {};
  const check = ({
    args,
    setResultAndStopExecution,
  }: {
    args: { document: DocumentNode; operationName?: string | null; contextValue: unknown };
    setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
  }) => {
    const req = (args.contextValue as { req?: object }).req;
    const identity = req ? identityOf(req) : undefined;
    const error = refusal(identity, rootFields(args.document, args.operationName));
    if (error) setResultAndStopExecution({ errors: [error] });
  };
  return { onExecute: check, onSubscribe: check } as Plugin;
}
