import {
  GraphQLError,
  Kind,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isObjectType,
  valueFromAST,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** The most list items one operation may ask for (see requestedItems). */
export const MAX_REQUESTED_ITEMS = 10_000;

/**
 * How many list items an operation may return at most: each field with a `first` argument asks for `first`
 * items per item of the lists around it, so `jobs(first: 100) { … snapshots(first: 100) }` asks for
 * 100 + 100 × 100. GraphQL Armor's cost limit multiplies only a literal `first`, as it runs before the
 * variables are known: with `first: $n`, or a schema default, a nested query went unpriced. This counts
 * after the variables are known, taking `first` from the literal, the variable (or the variable's default),
 * or the argument's default.
 */
export function requestedItems(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
): number {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return 0;
  // The variables as execution sees them: a variable the request leaves out takes its default (`$n: Int = 500`).
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {});
  const values = coerced.coerced ?? variables ?? {};
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions)
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const root = schema.getRootType(operation.operation);
  const count = (
    set: SelectionSetNode,
    type: GraphQLNamedType | undefined,
    around: number,
    seen: string[],
  ) => {
    let items = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const field = isObjectType(type) ? type.getFields()[selection.name.value] : undefined;
        if (!field || !selection.selectionSet) continue;
        const firstArg = field.args.find((a) => a.name === 'first');
        let per = 1;
        if (firstArg) {
          const given = selection.arguments?.find((a) => a.name.value === 'first');
          const value = given ? valueFromAST(given.value, firstArg.type, values) : firstArg.defaultValue;
          per = typeof value === 'number' && value > 0 ? value : 1;
          items += around * per;
        }
        items += count(selection.selectionSet, getNamedType(field.type), around * per, seen);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : type;
        items += count(selection.selectionSet, on, around, seen);
      } else {
        const fragment = fragments.get(selection.name.value);
        // A fragment that spreads itself is invalid GraphQL (validation refuses it first); never loop on one.
        if (!fragment || seen.includes(fragment.name.value)) continue;
        const on = schema.getType(fragment.typeCondition.name.value);
        items += count(fragment.selectionSet, on, around, [...seen, fragment.name.value]);
      }
    }
    return items;
  };
  return root ? count(operation.selectionSet, root, 1, []) : 0;
}

/** Refuses, before it runs, an operation that asks for more than MAX_REQUESTED_ITEMS list items. */
export function pageBudgetPlugin(max = MAX_REQUESTED_ITEMS): Plugin {
  const check = ({
    args,
    setResultAndStopExecution,
  }: {
    args: {
      schema: GraphQLSchema;
      document: DocumentNode;
      operationName?: string | null;
      variableValues?: Record<string, unknown> | null;
    };
    setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
  }) => {
    const items = requestedItems(args.schema, args.document, args.operationName, args.variableValues);
    if (items <= max) return;
    setResultAndStopExecution({
      errors: [
        new GraphQLError(
          `the operation asks for up to ${items} list items (each first multiplied by the lists around it); at most ${max}: ask for smaller pages`,
          { extensions: { code: 'BAD_USER_INPUT', rule: 'max-requested-items', max, requested: items } },
        ),
      ],
    });
  };
  return { onExecute: check, onSubscribe: check } as Plugin;
}
