import { readFileSync } from 'node:fs';
import type { Request as ExpressRequest } from 'express';
import { randomUUID } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import {
  GraphQLError,
  GraphQLScalarType,
  Kind,
  BREAK,
  getArgumentValues,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLObjectType,
  type OperationDefinitionNode,
  type GraphQLResolveInfo,
} from 'graphql';
import {
  isAsyncIterable,
  createGraphQLError,
  createPubSub,
  createSchema,
  createYoga,
  filter,
  maskError,
  pipe,
  type Plugin,
  type PubSub,
  Repeater,
} from 'graphql-yoga';
import { z } from 'zod';
import {
  CommandRejected,
  DEFAULT_NAMESPACE,
  EVENT_TYPES,
  JobId,
  Namespace,
  grantsNamespace,
  jobSummaryView,
  snapshotView,
  type JobState,
  type NamespaceGrant,
  type SnapshotState,
  type JobSummaryView,
  type RestoreStrategy,
  type SnapshotView,
  type ClusterView,
} from '@snapcat/domain';
import {
  ClusterRepository,
  JobDeletedError,
  HolderVisibility,
  JobNamespaces,
  jobStream,
  nextFireAt,
  recordedEventView,
} from '@snapcat/application';
import {
  AppendOutcomeUnknownError,
  StreamDeletedError,
  formatPosition,
  readStreamPages,
  type EventStore,
  type Position,
} from '@snapcat/event-store';
import {
  InvalidCursorError,
  decodeCursor,
  encodeCursor,
  matchesSnapshotFilter,
  newestSnapshotsPage,
  stateAt,
  type JobWithNewestSnapshots,
  type Page,
  type ReadModel,
  type SnapshotEventMessage,
  type SnapshotFilter,
  type StoredJobSummary,
  type StoredSnapshot,
} from '@snapcat/read-model';
import { Problem, deletedJobProblem, unavailableProblem } from './problem';
import { wholeReadModel } from './job-list';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import {
  ANONYMOUS,
  isLimited,
  limitKeyOf,
  principalOf,
  grantOf as grantOfRequest,
  requireEveryNamespace,
  visibleNamespaces,
} from './access';
import { accessPlugin } from './graphql-access';
import { GRAPHQL_ENDPOINT } from './graphql-endpoint';
import { CLUSTERS_SPAN_EVERY_NAMESPACE, clusterCommands } from './clusters';
import { requestId } from './metrics';
import { pageBudgetPlugin } from './page-budget';
import type { Caller, UseCases } from './use-cases';
import { SCOPE_IMPLIES, isRedisUnavailableError, type TokenEntry } from '@snapcat/runtime';

export type SnapshotEventsPubSub = PubSub<Record<string, [string, SnapshotEventMessage]>>;

export interface GraphqlDeps {
  /** The commands, as REST runs them (use-cases.ts). */
  useCases: UseCases;
  store: EventStore;
  readModel: ReadModel;
  pubsub: SnapshotEventsPubSub;
  topic: string;
  /** Whether Redis answers: while it does not, a query that failed says why instead of "Unexpected error". */
  readModelAvailable?: () => boolean;
  /**
   * Subscriptions one token (one client address without tokens) may hold open on this process at once
   * (SNAPCAT_MAX_STREAMS_PER_TOKEN); absent or 0: no limit.
   */
  maxStreamsPerToken?: number;
  /** The configured tokens: with some, every operation needs a token whose scopes allow it (access.ts). */
  tokens?: readonly TokenEntry[];
  /** The Flink clusters (as REST's); absent, a repository on `store` without a key (no headers). */
  clusters?: ClusterRepository;
  /** schema/catalog.graphql, located by the entry point (a library's own directory is not the bundle's). */
  schemaFile: string;
}

/** A job as GraphQL sees it: from the read model, or (catalogAsOf) from a state folded from the log. */
interface JobParent {
  /** From the read model the task list is not in the summary; folded (catalogAsOf), it is. */
  view: StoredJobSummary & { tasks?: string[] };
  /** Folded (catalogAsOf): the state, and the snapshots the fold compacted out of it (decision 0035). */
  state?: JobState;
  compacted?: ReadonlyMap<number, SnapshotState>;
  /** Its newest snapshots and deletion time, read with the summary when the query asks for its first page. */
  prefetched?: JobWithNewestSnapshots;
}

type SnapshotArgs = SnapshotFilter & { first: number; after?: string };

const MAX_PAGE = 500;

/**
 * Limits on what one GraphQL document may ask (GraphQL Armor), well above what the schema's real queries need
 * (the README's deepest, catalogAsOf → job → snapshots → edges → node → fields, is 6 deep). Introspection is
 * exempt from depth and cost, and stays on; field suggestions stay on too, as introspection tells as much.
 * Armor's cost multiplies a selection by a literal `first`: at 5,000 a page of the advertised 500 jobs with
 * two fields was refused (8,125); the items a document may ask for, `first` as a literal, a variable or a
 * default, are bounded by `max-requested-items` (page-budget.ts), so the cost limit only needs to stop what
 * that does not price (wide selections, deep ones): 50,000 admits a top-level page of 500 with a dozen fields.
 */
export const GRAPHQL_LIMITS = {
  maxDepth: { n: 10 },
  costLimit: { maxCost: 50_000 },
  maxAliases: { n: 15 },
  maxTokens: { n: 2000 },
  maxDirectives: { n: 20 },
} as const;

/** A snapshot's path as REST's URL gives it: its id as text, read by the same rule (decimal digits). */
const snapshotPathOf = (jobId: string, snapshotId: number) => ({ jobId, snapshotId: String(snapshotId) });

/** The header browsers must send with a "simple" request (GET, or a form content type): CSRF prevention. */
export const CSRF_HEADER = 'x-graphql-csrf';

export function createGraphql(deps: GraphqlDeps) {
  const r = resolving(deps);
  const resolvers = {
    ...scalarResolvers(),
    Query: { ...viewerQuery(r), ...jobQueries(r), ...snapshotQueries(r), ...clusterQueries(r) },
    Mutation: { ...snapshotMutations(r), ...jobMutations(r), ...clusterMutations(r) },
    Subscription: subscriptionResolvers(r),
    Job: jobResolvers(r),
    FlinkCluster: {
      headerNames: (c: ClusterView) => c.headers,
      namespaces: (c: ClusterView) => (c.namespaces === '*' ? ['*'] : c.namespaces),
    },
    Snapshot: {
      id: (s: SnapshotView) => s.snapshotId,
      heldBy: (s: SnapshotView, _: unknown, context: Context) => r.holdersSeen(context, s.heldBy),
      hiddenHolders: (s: SnapshotView, _: unknown, context: Context) => {
        const seen = r.holdersSeen(context, s.heldBy);
        const hidden = (holders: readonly string[]) => s.heldBy.length - holders.length;
        return seen instanceof Promise ? seen.then(hidden) : hidden(seen);
      },
      stateHandles: (s: SnapshotView & { jobId: string }) => r.useCases.stateHandles(s.jobId, s.snapshotId),
    },
  };

  const yoga = createYoga({
    schema: createSchema({ typeDefs: readFileSync(deps.schemaFile, 'utf8'), resolvers }),
    graphqlEndpoint: GRAPHQL_ENDPOINT,
    graphiql: { title: 'snapcat catalog', additionalHeaders: { [CSRF_HEADER]: '1' } },
    // GraphiQL from the package, inlined in the page: yoga's default loads it from a CDN, which an air-gapped
    // operator cannot reach (issue 21). Required on the first page view, not at start: the package is 8.9 MB of
    // JavaScript that every start would parse (BENCHMARKS.md #17).
    renderGraphiQL: async (options) =>
      (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options),
    logging: false,
    // The app's `graphqlBodyLimit` bounds every body before yoga sees it (a declared length, or a chunked body
    // read within the limit). Yoga's own check pipes each body through a TransformStream whose listeners keep
    // the request alive past two young-generation collections: ~5 KB promoted per query (bench/NOTES.md).
    maxRequestBodySize: false,
    plugins: [
      // A browser may send a GET or a form POST to another site without a preflight: such requests must
      // carry a header a page cannot set cross-site without CORS (JSON POSTs, as from GraphiQL, are preflighted).
      useCSRFPrevention({ requestHeaders: [CSRF_HEADER] }),
      EnvelopArmorPlugin({
        ...GRAPHQL_LIMITS,
        maxDepth: { ...GRAPHQL_LIMITS.maxDepth, ignoreIntrospection: true },
        costLimit: { ...GRAPHQL_LIMITS.costLimit, ignoreIntrospection: true },
        blockFieldSuggestion: { enabled: false },
      }),
      accessPlugin((deps.tokens ?? []).length > 0),
      utf8Bodies(),
      pageBudgetPlugin(),
      compiledQueries(),
      recordedMutations(),
    ],
    maskedErrors: {
      // While Redis is unreachable an error is UNAVAILABLE, except a mutation the store recorded, or may have
      // (OUTCOME_UNKNOWN): that one must say so, or a client retries it (a walkthrough's console click, told
      // "unavailable", took two savepoints).
      maskError: (error, message, isDev) =>
        deps.readModelAvailable?.() === false && codeOf(error) !== 'RECORDED' && !mayBeRecorded(error)
          ? redisUnreachableError()
          : (goneError(error) ??
            redisCannotAnswer(error) ??
            storeUnavailableError(error) ??
            maskError(error, message, isDev)),
    },
  });
  return yoga;
}

/**
 * A POSTed document must be UTF-8, as REST bodies must (`requireUtf8`): yoga decodes its own bodies, and bad
 * bytes would reach a mutation's arguments as U+FFFD and be recorded so. The body is read from a clone here
 * (at most GRAPHQL_BODY_LIMIT) and again by yoga's own parser.
 */
function utf8Bodies(): Plugin {
  return {
    async onRequestParse({ request }) {
      if (request.method !== 'POST' || request.body === null) return;
      if (isUtf8(new Uint8Array(await request.clone().arrayBuffer()))) return;
      throw createGraphQLError('the body is not valid UTF-8, which JSON must be', {
        extensions: { http: { status: 400 }, code: 'BAD_REQUEST', field: 'body', rule: 'utf-8' },
      });
    },
  };
}

/**
 * A mutation whose events are recorded answers RECORDED for any error under it: its read back's, and its
 * fields' (a snapshot's state handles, a job's tasks: read after, from the store or Redis). Any other code
 * (UNAVAILABLE, an unexpected error), with data null up to the mutation, would be retried by a client, and
 * record it twice.
 */
function recordedMutations(): Plugin {
  return {
    onExecute({ args }) {
      return {
        onExecuteDone({ result, setResult }) {
          // Read when done: the mutations' resolvers write it as they run.
          const recorded = (args.contextValue as Context | undefined)?.recorded;
          if (!recorded?.size || isAsyncIterable(result) || !result.errors?.length) return;
          const errors = result.errors.map((error) => {
            const key = error.path?.[0];
            const at = typeof key === 'string' ? recorded.get(key) : undefined;
            return at && codeOf(error) !== 'RECORDED' ? recordedNotShown(at, error.path) : error;
          });
          setResult({ ...result, errors });
        },
      };
    },
  };
}

/**
 * Queries run compiled (graphql-jit; decision 0040); mutations and subscriptions keep the standard executor.
 * The plugin is required on the first execution, not at start: 58 ms and 2 MB (ajv, fast-json-stringify) that
 * a start would pay (BENCHMARKS.md #17).
 */
function compiledQueries(): Plugin {
  let jit: Plugin | undefined;
  return {
    onExecute(payload) {
      if (!compilable(payload.args)) return;
      // A document it cannot compile answers with the errors it gave, which the client receives: nothing to
      // log (the plugin's default prints them).
      jit ??= jitPlugin().useGraphQlJit({}, { onError: () => undefined }) as Plugin;
      return jit.onExecute!(payload);
    },
  };
}

// eslint-disable-next-line @typescript-eslint/no-require-imports -- on first use, as said above
const jitPlugin = () => require('@envelop/graphql-jit') as typeof import('@envelop/graphql-jit');

/** Per parsed document (yoga caches them by text): whether it is one query without @skip or @include. */
const singleQueries = new WeakMap<DocumentNode, OperationDefinitionNode | null>();

/**
 * Whether graphql-jit runs this execution: a document of one query, named as the request names it, without
 * @skip or @include. The plugin caches a compiled query per document whatever the operation name (a document
 * of two queries would answer the second with the first's result, after the access check looked at the
 * second), and keeps skip/include conditions on the AST nodes a document shares (a fragment spread under two
 * conditions loses fields: graphql-jit issues 111 and 166).
 */
function compilable({ document, operationName }: ExecutionArgs): boolean {
  let query = singleQueries.get(document);
  if (query === undefined) {
    const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
    const only = operations.length === 1 ? operations[0]! : undefined;
    query = only?.operation === 'query' && !hasSkipOrInclude(document) ? only : null;
    singleQueries.set(document, query);
  }
  // `== null`, not falsy: "" names no operation (yoga refuses it before execution today), where graphql-jit,
  // testing the name as falsy, would run the only one.
  return query !== null && (operationName == null || operationName === query.name?.value);
}

function hasSkipOrInclude(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Directive(node) {
      if (node.name.value !== 'skip' && node.name.value !== 'include') return undefined;
      found = true;
      return BREAK;
    },
  });
  return found;
}

/** What the resolvers share: the API's parts, the caller's view of namespaces, the cluster commands. */
function resolving(deps: GraphqlDeps) {
  // Issue 18: a job outside the caller's namespaces reads as one that does not exist.
  const namespaces = new JobNamespaces(deps.store);
  const holders = new HolderVisibility(namespaces);
  return {
    ...deps,
    /** Decision 0045: the holders of a snapshot the caller may see, and a hold event as it may read it. */
    holdersSeen: (context: Context, heldBy: readonly string[]) => holders.visibleOf(grantOf(context), heldBy),
    eventFor: <E extends { type: string }>(context: Context, event: E) =>
      holders.event(grantOf(context), event),
    visible: (context: Context, jobId: string) =>
      namespaces.visible(grantOf(context), jobIdArgument(jobId, 'jobId')),
    clusters: clusterCommands(deps.clusters ?? new ClusterRepository(deps.store)),
  };
}
type Resolving = ReturnType<typeof resolving>;

/** A job id argument: a Flink JobID, else BAD_USER_INPUT naming the argument (not an answer of no job). */
function jobIdArgument(value: string, field: string): string {
  if (JobId.safeParse(value).success) return value;
  throw new GraphQLError(`${field} must be a Flink JobID: 32 lowercase hexadecimal characters`, {
    extensions: { code: 'BAD_USER_INPUT', field, rule: 'job-id' },
  });
}

/** A namespace argument: a namespace's name, else BAD_USER_INPUT naming it, as REST's `query.namespace`. */
function namespaceArgument(value: string | null | undefined, field: string): string | undefined {
  if (value === null || value === undefined || Namespace.safeParse(value).success) return value ?? undefined;
  throw new GraphQLError(`${field} must be a namespace: lowercase letters, digits and -`, {
    extensions: { code: 'BAD_USER_INPUT', field, rule: 'namespace' },
  });
}

/** A snapshot id argument: positive, else BAD_USER_INPUT naming it (not an answer of no snapshot), as REST. */
function snapshotIdArgument<T extends number | null | undefined>(value: T, field: string): T {
  if (value === null || value === undefined || value >= 1) return value;
  throw new GraphQLError(`${field} must be a positive integer: snapshot ids start at 1`, {
    extensions: { code: 'BAD_USER_INPUT', field, rule: 'positive' },
  });
}

/**
 * A subscription's event types: each one a job event's type. An unknown one (a typo) would stream nothing,
 * forever, without a word (a walkthrough); it is refused as bad input, naming the types there are.
 */
function requireEventTypes(types: readonly string[] | undefined): void {
  const unknown = types?.find((type) => !(EVENT_TYPES as readonly string[]).includes(type));
  if (unknown === undefined) return;
  throw new GraphQLError(
    `types: ${JSON.stringify(unknown)} is not an event type (one of ${EVENT_TYPES.join(', ')})`,
    {
      extensions: { code: 'BAD_USER_INPUT', field: 'types', rule: 'event-type' },
    },
  );
}

/** The scalars: DateTime (ISO-8601 in, ISO-8601 out), Long (a bigint as a number), JSON. */
function scalarResolvers() {
  return {
    DateTime: new GraphQLScalarType({
      name: 'DateTime',
      serialize: (v) => (typeof v === 'number' ? new Date(v).toISOString() : v),
      parseValue: (v) => parseDate(v),
      // An invalid literal throws: returning null would make it the value null (a silently dropped argument).
      parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : undefined),
    }),
    Long: new GraphQLScalarType({
      name: 'Long',
      serialize: (v) => (typeof v === 'bigint' ? Number(v) : v),
      parseValue: (v) => parseLong(v, 'variable'),
      parseLiteral: (ast) => parseLong(ast.kind === Kind.INT ? Number(ast.value) : undefined, 'literal'),
    }),
    JSON: new GraphQLScalarType({ name: 'JSON', serialize: (v) => v, parseValue: (v) => v }),
  };
}

/** Who the caller is: its token's name, scopes and namespaces. */
function viewerQuery(r: Resolving) {
  const { tokens } = r;
  return {
    viewer: (_: unknown, _args: unknown, context: Context) => {
      const principal = (context.req && principalOf(context.req)) ?? ANONYMOUS;
      return {
        name: principal.name,
        scopes: [...new Set(principal.scopes.flatMap((scope) => SCOPE_IMPLIES[scope]))],
        namespaces: principal.namespaces === '*' ? null : principal.namespaces,
        authenticationEnabled: (tokens ?? []).length > 0,
      };
    },
  };
}

/**
 * Resolves once the read model is whole (`wholeReadModel`); UNAVAILABLE otherwise, as REST's 503: a read model
 * catching up with the log answers a fragment of the catalogue, and an existing job as none.
 */
async function whole(readModel: ReadModel): Promise<void> {
  try {
    await wholeReadModel(readModel);
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    throw new GraphQLError(error.detail, { extensions: { code: 'UNAVAILABLE', ...error.extra } });
  }
}

/** The jobs, from the read model: one, or a page of them in the caller's namespaces. */
function jobQueries(r: Resolving) {
  const { readModel } = r;
  return {
    job: async (_: unknown, { id }: { id: string }, context: Context, info: GraphQLResolveInfo) => {
      const jobId = jobIdArgument(id, 'id');
      await whole(readModel);
      return liveJob(readModel, jobId, context, newestSnapshotsAsked(info));
    },
    jobs: async (
      _: unknown,
      args: { status?: JobSummaryView['status']; namespace?: string; first: number; after?: string },
      context: Context,
    ) => {
      const size = pageSize(args.first);
      if (args.after) decode(args.after, 'job');
      const filter = {
        status: args.status ?? undefined,
        namespaces: visibleNamespaces(grantOf(context), namespaceArgument(args.namespace, 'namespace')),
      };
      await whole(readModel);
      const page = await readModel.jobs(filter, size, args.after ?? undefined);
      return {
        edges: page.items.map((view) => ({ node: { view }, cursor: encodeCursor('job', view.jobId) })),
        pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
      };
    },
  };
}

/** A job's snapshots and events: from the read model, from the log (history), or as of a time. */
function snapshotQueries(r: Resolving) {
  const { useCases, store, readModel, visible } = r;
  return {
    snapshot: async (_: unknown, { jobId, id }: { jobId: string; id: number }, context: Context) => {
      if (!(await visible(context, jobId))) return null;
      const snapshotId = snapshotIdArgument(id, 'id');
      await whole(readModel);
      return readModel.snapshot(jobId, snapshotId);
    },
    snapshots: async (
      _: unknown,
      a: SnapshotFilter & { jobId: string; first: number; after?: string },
      context: Context,
    ) => {
      if (!(await visible(context, a.jobId))) return emptyPage(a.first);
      await whole(readModel);
      return snapshotsPage(readModel, a.jobId, filterOf(a), a.first, a.after ?? undefined);
    },
    catalog: async (_: unknown, a: { jobId: string; first: number; after?: string }, context: Context) => {
      if (!(await visible(context, a.jobId))) return emptyPage(a.first);
      await whole(readModel);
      return snapshotsPage(readModel, a.jobId, { statuses: ['COMPLETED'] }, a.first, a.after ?? undefined);
    },
    history: async (_: unknown, a: HistoryArgs, context: Context) => {
      snapshotIdArgument(a.snapshotId, 'snapshotId');
      return (await visible(context, a.jobId))
        ? history(store, a, (event) => r.eventFor(context, event))
        : emptyPage(a.first);
    },
    catalogAsOf: async (_: unknown, { jobId, at }: { jobId: string; at: number }, context: Context) => {
      if (!(await visible(context, jobId))) return null;
      // The snapshots the fold compacts out of the state (decision 0035) are listed too, as its counts count them.
      const compacted = new Map<number, SnapshotState>();
      const { state, revision } = await stateAt(store, jobId, { at }, (s) => compacted.set(s.snapshotId, s));
      if (!state.registered) return null;
      const catalog = [...state.completed]
        .reverse()
        .map((id) => ({ jobId, ...snapshotView(state.snapshots.get(id)!) }));
      const job = { view: jobSummaryView(state), state, compacted };
      return { at, events: Number(revision + 1n), job, catalog };
    },
    restorePlan: async (
      _: unknown,
      a: { jobId: string; strategy: RestoreStrategy; maxAge?: string | null },
      context: Context,
    ) => {
      if (!(await visible(context, a.jobId))) return null;
      try {
        const { plan, state } = await useCases.restorePlan(a.jobId, a.strategy, a.maxAge ?? undefined);
        if (!state.registered) return null;
        const chosen = plan.snapshotId === null ? undefined : state.snapshots.get(plan.snapshotId);
        return {
          strategy: plan.strategy,
          ok: plan.ok,
          reason: plan.reason,
          snapshot: chosen ? { jobId: a.jobId, ...snapshotView(chosen) } : null,
          restorePath: plan.ok ? plan.restorePath : null,
          claimMode: plan.ok ? plan.claimMode : null,
          refusal: plan.ok ? null : plan.refusal,
          completedAt: plan.ok ? plan.completedAt : null,
          versionWarning: plan.ok ? plan.versionWarning : null,
        };
      } catch (error) {
        throw asGraphqlError(error);
      }
    },
  };
}

/** The Flink clusters (a token of every namespace). */
function clusterQueries(r: Resolving) {
  const { clusters } = r;
  return {
    clusters: (_: unknown, _args: unknown, context: Context) => onClusters(context, () => clusters.list()),
    cluster: (_: unknown, { name }: { name: string }, context: Context) =>
      onClusters(context, async () => {
        try {
          return await clusters.get({ name });
        } catch (error) {
          if (error instanceof Problem && error.status === 404) return null;
          throw error;
        }
      }),
  };
}

/** Snapshots triggered, persisted, imported, discarded, restored from; each answers once the read model shows it. */
function snapshotMutations(r: Resolving) {
  const { useCases, readModel } = r;
  return {
    triggerSnapshot: async (
      _: unknown,
      {
        jobId,
        ...body
      }: {
        jobId: string;
        kind: string;
        triggerId?: string;
        targetDirectory?: string;
        checkpointType?: string;
        jobVersion?: string;
        flinkVersion?: string;
        terminate?: { drain?: boolean };
      },
      context: Context,
      info: GraphQLResolveInfo,
    ) => {
      return execute(readModel, useCases.trigger, { context, info }, { jobId }, body, ({ reply }) =>
        readModel.snapshot(jobId, reply.snapshotId),
      );
    },
    persistSnapshot: async (
      _: unknown,
      { jobId, snapshotId, ...body }: { jobId: string; snapshotId: number; targetDirectory?: string },
      context: Context,
      info: GraphQLResolveInfo,
    ) => {
      return execute(
        readModel,
        useCases.persist,
        { context, info },
        snapshotPathOf(jobId, snapshotId),
        body,
        () => readModel.snapshot(jobId, snapshotId),
      );
    },
    importSnapshot: async (
      _: unknown,
      { jobId, ...body }: { jobId: string; externalPath: string; kind: string; formatType?: string },
      context: Context,
      info: GraphQLResolveInfo,
    ) => {
      return execute(readModel, useCases.importSnapshot, { context, info }, { jobId }, body, ({ reply }) =>
        readModel.snapshot(jobId, reply.snapshotId),
      );
    },
    discardSnapshot: async (
      _: unknown,
      { jobId, snapshotId, ...body }: { jobId: string; snapshotId: number; reason?: string; force?: boolean },
      context: Context,
      info: GraphQLResolveInfo,
    ) => {
      return execute(
        readModel,
        useCases.discard,
        { context, info },
        snapshotPathOf(jobId, snapshotId),
        body,
        () => readModel.snapshot(jobId, snapshotId),
      );
    },
    restoreSnapshot: async (
      _: unknown,
      { jobId, ...body }: { jobId: string } & Record<string, unknown>,
      context: Context,
      info: GraphQLResolveInfo,
    ) => {
      return execute(readModel, useCases.restore, { context, info }, { jobId }, body, async () => {
        const job = await liveJob(readModel, jobId, context);
        return job && restoreOf(readModel, job);
      });
    },
  };
}

/** A job's status and savepoint schedule. */
function jobMutations(r: Resolving) {
  const { useCases, readModel } = r;
  return {
    setJobStatus: async (
      _: unknown,
      { jobId, status }: { jobId: string; status: string },
      context: Context,
      info: GraphQLResolveInfo,
    ) => {
      return execute(readModel, useCases.changeStatus, { context, info }, { jobId }, { status }, () =>
        liveJob(readModel, jobId, context),
      );
    },
    setSavepointSchedule: async (
      _: unknown,
      { jobId, schedule }: { jobId: string; schedule: Record<string, unknown> },
      context: Context,
      info: GraphQLResolveInfo,
    ) => {
      return execute(readModel, useCases.setSchedule, { context, info }, { jobId }, schedule, async () => {
        const view = await readModel.job(jobId);
        return view && scheduleView(view);
      });
    },
    removeSavepointSchedule: async (
      _: unknown,
      { jobId }: { jobId: string },
      context: Context,
      info: GraphQLResolveInfo,
    ) =>
      execute(
        readModel,
        useCases.removeSchedule,
        { context, info },
        { jobId },
        {},
        ({ reply }) => reply.changed,
      ),
  };
}

/** The Flink clusters registered, changed, removed (a token of every namespace). */
function clusterMutations(r: Resolving) {
  const { clusters } = r;
  return {
    setCluster: (
      _: unknown,
      a: {
        name: string;
        restUrl: string;
        headers?: { name: string; value: string }[] | null;
        namespaces?: string[] | null;
      },
      context: Context,
    ) =>
      onClusters(context, async () => {
        const body: Record<string, unknown> = { restUrl: a.restUrl };
        if (a.headers) body.headers = headerRecord(a.headers);
        // ["*"] is every namespace, as the REST field's "*"; a list mixing it with names is refused as REST
        // refuses it (it was read as every namespace: a review).
        if (a.namespaces)
          body.namespaces = a.namespaces.length === 1 && a.namespaces[0] === '*' ? '*' : a.namespaces;
        return (await clusters.put({ name: a.name }, body)).cluster;
      }),
    removeCluster: (_: unknown, { name }: { name: string }, context: Context) =>
      onClusters(context, async () => {
        await clusters.remove({ name });
        return true;
      }),
  };
}

const redisUnreachableError = (why = 'Redis is unreachable') =>
  new GraphQLError(`the read model is unavailable: ${why} (REST commands keep working)`, {
    extensions: { code: 'UNAVAILABLE' },
  });

/** How often an open subscription checks that Redis still answers (whileRedisAnswers). */
export const SUBSCRIPTION_REDIS_CHECK_MS = 1000;

/**
 * The events of `source` while Redis answers. On a Redis gone away a subscription stays open and says nothing
 * (its pubsub misses what is published meanwhile), and a client takes it for live: it ends with UNAVAILABLE
 * instead (checked every SUBSCRIPTION_REDIS_CHECK_MS), and a new one is refused until Redis is back; a client
 * that reconnects then reads again what it may have missed.
 */
function whileRedisAnswers<T>(source: AsyncIterable<T>, available: () => boolean): AsyncIterable<T> {
  if (!available()) throw redisUnreachableError();
  return new Repeater<T>(async (push, stop) => {
    const iterator = source[Symbol.asyncIterator]();
    const check = setInterval(() => {
      if (!available()) stop(redisUnreachableError());
    }, SUBSCRIPTION_REDIS_CHECK_MS);
    void stop.then(() => {
      clearInterval(check);
      void iterator.return?.();
    });
    for (;;) {
      const next = await Promise.race([iterator.next(), stop]);
      if (!next || next.done) break;
      await push(next.value);
    }
    stop();
  });
}

/** Snapshot events as they are projected, for the jobs the caller may see. */
function subscriptionResolvers(r: Resolving) {
  const { pubsub, topic, visible, readModelAvailable = () => true } = r;
  const streams = new OpenStreams(r.maxStreamsPerToken ?? 0);
  return {
    snapshotEvents: {
      // Checked per event, not once: a job may be registered (in some namespace) after the subscription.
      subscribe: (_: unknown, a: { jobId: string; types?: string[] }, context: Context) => {
        const jobId = jobIdArgument(a.jobId, 'jobId');
        requireEventTypes(a.types);
        return streams.held(holderOf(context), () =>
          whileRedisAnswers(
            pipe(
              pubsub.subscribe(topic, jobId),
              filter(
                async (m: SnapshotEventMessage) =>
                  (!a.types || a.types.includes(m.type)) && (await visible(context, a.jobId)),
              ),
            ),
            readModelAvailable,
          ),
        );
      },
      resolve: async (m: SnapshotEventMessage, _: unknown, context: Context) => ({
        ...m,
        data: await r.eventFor(context, m.data),
      }),
    },
  };
}

/** Who holds a subscription open: as the rate limit counts, the token, or the address with no tokens. */
const holderOf = (context: Context): string => (context.req && limitKeyOf(context.req)) ?? 'ip:';

/**
 * The subscriptions each holder keeps open on this process, at most `limit` (0: no limit): the request rate
 * limit counts a stream once, however long it stays open, and each holds a Redis subscription and a socket.
 * One more is refused with TOO_MANY_REQUESTS (HTTP 429) naming the limit; a stream counts until it ends,
 * whichever side ends it.
 */
class OpenStreams {
  private readonly open = new Map<string, number>();

  constructor(private readonly limit: number) {}

  held<T>(holder: string, start: () => AsyncIterable<T>): AsyncIterableIterator<T> {
    const count = this.open.get(holder) ?? 0;
    if (this.limit > 0 && count >= this.limit) {
      throw new GraphQLError(
        `too many open subscriptions: ${count} of ${this.limit} (SNAPCAT_MAX_STREAMS_PER_TOKEN) on this server; close one first`,
        { extensions: { code: 'TOO_MANY_REQUESTS', http: { status: 429 } } },
      );
    }
    // Opened before it is counted: a start that throws leaves no count behind.
    const source = start()[Symbol.asyncIterator]();
    this.open.set(holder, count + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.open.get(holder) ?? 1) - 1;
      if (left > 0) this.open.set(holder, left);
      else this.open.delete(holder);
    };
    // An iterator of its own, not an async generator: one returned before its first `next` never runs its
    // body, and its `finally` would never release the count.
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        try {
          const step = await source.next();
          if (step.done) release();
          return step;
        } catch (error) {
          release();
          throw error;
        }
      },
      async return(value?: unknown) {
        release();
        return (await source.return?.(value)) ?? { done: true, value: undefined };
      },
      async throw(error?: unknown) {
        release();
        if (source.throw) return source.throw(error);
        throw error;
      },
    };
  }
}

/** A job's fields: from its read-model summary, or from its folded state (catalogAsOf). */
function jobResolvers(r: Resolving) {
  const { readModel } = r;
  return {
    id: (j: JobParent) => j.view.jobId,
    name: (j: JobParent) => j.view.name,
    namespace: (j: JobParent) => j.view.namespace ?? DEFAULT_NAMESPACE,
    status: (j: JobParent) => j.view.status,
    // A job folded from its stream (catalogAsOf) was read, so it was not deleted.
    deleted: async (j: JobParent) => !j.state && (await deletedAtOf(readModel, j)) !== null,
    deletedAt: (j: JobParent) => (j.state ? null : deletedAtOf(readModel, j)),
    tasks: (j: JobParent) => j.view.tasks ?? readModel.tasks(j.view.jobId),
    checkpointing: (j: JobParent) => j.view.checkpointing,
    storage: (j: JobParent) => j.view.storage,
    source: (j: JobParent) => j.view.source ?? null,
    warnings: (j: JobParent) => j.view.warnings ?? [],
    flinkRestore: async (j: JobParent) => {
      const restore = j.view.flinkRestore;
      return restore && { ...restore, snapshot: await snapshotOf(readModel, j, restore.snapshotId) };
    },
    jobVersion: (j: JobParent) => j.view.jobVersion ?? null,
    flinkVersion: (j: JobParent) => j.view.flinkVersion ?? null,
    counts: (j: JobParent) => j.view.counts,
    referencedStateSize: (j: JobParent) => j.view.referencedStateSize ?? null,
    referencedFiles: (j: JobParent) => j.view.referencedFiles ?? null,
    consecutiveFailures: (j: JobParent) => j.view.consecutiveFailures,
    registeredAt: (j: JobParent) => j.view.registeredAt,
    updatedAt: (j: JobParent) => j.view.updatedAt,
    latestCompletedCheckpoint: (j: JobParent) => snapshotOf(readModel, j, j.view.latestCompletedCheckpointId),
    latestSavepoint: (j: JobParent) => snapshotOf(readModel, j, j.view.latestSavepointId),
    restorePoint: async (j: JobParent) => {
      const point = j.view.restorePoint;
      if (!point) return null;
      const snapshot = await snapshotOf(readModel, j, point.snapshotId);
      return snapshot ? { snapshot, reason: point.reason } : null;
    },
    latestRestore: (j: JobParent) => restoreOf(readModel, j),
    schedule: (j: JobParent) => scheduleView(j.view),
    snapshots: (j: JobParent, a: SnapshotArgs) =>
      prefetchedPage(j, a) ??
      snapshotsPage(readModel, j.view.jobId, filterOf(a), a.first, a.after ?? undefined, j),
  };
}

/** Runs a cluster command as REST does: for a token of every namespace, its problems as GraphQL errors. */
async function onClusters<R>(context: Context, run: () => Promise<R>): Promise<R> {
  try {
    if (context.req) requireEveryNamespace(context.req, CLUSTERS_SPAN_EVERY_NAMESPACE);
    return await run();
  } catch (error) {
    throw asGraphqlError(error);
  }
}

/** A snapshot of the job: from its folded state (catalogAsOf), else from the read model. */
async function snapshotOf(
  readModel: ReadModel,
  job: JobParent,
  id: number | null | undefined,
): Promise<StoredSnapshot | null> {
  if (id === null || id === undefined) return null;
  if (job.state) {
    const s = job.state.snapshots.get(id);
    return s ? { jobId: job.view.jobId, ...snapshotView(s) } : null;
  }
  return job.prefetched?.newest.find((s) => s.snapshotId === id) ?? readModel.snapshot(job.view.jobId, id);
}

/** When the job's stream was hard-deleted: as read with the job, else from the read model. */
function deletedAtOf(readModel: ReadModel, job: JobParent): Promise<string | null> | string | null {
  return job.prefetched ? job.prefetched.deletedAt : readModel.deletedAt(job.view.jobId);
}

/** The job's newest restore (R62), with the snapshot it restored from. */
async function restoreOf(readModel: ReadModel, job: JobParent) {
  const restore = job.view.latestRestore;
  return restore && { ...restore, snapshot: await snapshotOf(readModel, job, restore.snapshotId) };
}

/**
 * The job from the read model; null when it does not exist or lies outside the caller's namespaces. With
 * `newestAsked`, its newest snapshots come in the same round trip (the first page the query asks for).
 */
async function liveJob(
  readModel: ReadModel,
  jobId: string,
  context: Context,
  newestAsked = 0,
): Promise<JobParent | null> {
  let job: JobParent | null;
  if (newestAsked > 0) {
    const prefetched = await readModel.jobWithNewestSnapshots(jobId, newestAsked);
    job = prefetched && { view: prefetched.summary, prefetched };
  } else {
    const view = await readModel.job(jobId);
    job = view && { view };
  }
  return job && grantsNamespace(grantOf(context), job.view.namespace ?? DEFAULT_NAMESPACE) ? job : null;
}

/**
 * How many of the job's newest snapshots to read with it: the largest `first` among the query's `snapshots`
 * fields of the job that are unfiltered and start from the newest; 0 for none. Fields inside fragments are
 * not looked at: they read their page apart, as any filtered or later page does.
 */
function newestSnapshotsAsked(info: GraphQLResolveInfo): number {
  const field = (info.schema.getType('Job') as GraphQLObjectType).getFields().snapshots!;
  let most = 0;
  for (const node of info.fieldNodes) {
    for (const selection of node.selectionSet?.selections ?? []) {
      if (selection.kind !== Kind.FIELD || selection.name.value !== 'snapshots') continue;
      const a = getArgumentValues(field, selection, info.variableValues) as unknown as SnapshotArgs;
      if (startsUnfiltered(a) && isPageSize(a.first)) most = Math.max(most, a.first);
    }
  }
  return most;
}

/** Whether a `snapshots` field asks for the first page of every snapshot (the one read with the job). */
const startsUnfiltered = (a: SnapshotArgs) => !a.after && Object.keys(filterOf(a)).length === 0;

/** The page out of the snapshots read with the job, when it holds it; undefined to read it apart. */
function prefetchedPage(job: JobParent, a: SnapshotArgs) {
  if (!job.prefetched || !startsUnfiltered(a)) return undefined;
  const page = newestSnapshotsPage(job.prefetched, pageSize(a.first));
  return page && snapshotConnection(page);
}

/** The page of a job the caller may not see: as empty as one of a job that does not exist. */
function emptyPage(first: number) {
  pageSize(first);
  return { edges: [], pageInfo: { hasNextPage: false, endCursor: null } };
}

/** A page of the job's snapshots, newest first: from its folded state and what the fold compacted (catalogAsOf), else the read model. */
async function snapshotsPage(
  readModel: ReadModel,
  jobId: string,
  filterArgs: SnapshotFilter,
  first: number,
  after: string | undefined,
  folded?: Pick<JobParent, 'state' | 'compacted'>,
) {
  const size = pageSize(first);
  const state = folded?.state;
  if (state) {
    const left = [...(folded.compacted?.values() ?? [])].filter((s) => !state.snapshots.has(s.snapshotId));
    const all = [...state.snapshots.values(), ...left]
      .sort((a, b) => b.snapshotId - a.snapshotId)
      .map((s) => ({ jobId, ...snapshotView(s) }))
      .filter((s) => matchesSnapshotFilter(s, filterArgs));
    const start = after ? all.findIndex((s) => s.snapshotId < Number(decode(after, 'snapshot'))) : 0;
    const rest = start < 0 ? [] : all.slice(start);
    return connection(rest.slice(0, size + 1), size, (s) => encodeCursor('snapshot', String(s.snapshotId)));
  }
  if (after) decode(after, 'snapshot');
  return snapshotConnection(await readModel.snapshots(jobId, filterArgs, size, after ?? undefined));
}

function snapshotConnection(page: Page<StoredSnapshot>) {
  return {
    edges: page.items.map((node) => ({ node, cursor: encodeCursor('snapshot', String(node.snapshotId)) })),
    pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
  };
}

/**
 * Runs a use case (the one REST runs: same validation, same rules) and answers what `answer` reads back once
 * the read model shows its events (read your own writes). The arguments are its path and body; GraphQL's
 * absent ones dropped. Once events are recorded, any failure to show them (the wait, or the read back: Redis
 * busy, failing over) is RECORDED, never an error a client would retry.
 */
async function execute<R extends { position?: Position }, A>(
  readModel: ReadModel,
  run: (caller: Caller, path: unknown, body: unknown) => Promise<R>,
  { context, info }: { context: Context; info: GraphQLResolveInfo },
  path: Record<string, unknown>,
  body: Record<string, unknown>,
  answer: (result: R) => Promise<A> | A,
): Promise<A> {
  const caller = callerOf(context);
  let result: R;
  try {
    result = await run(caller, path, present(body));
  } catch (error) {
    // A hard-deleted job is GONE only to a caller of every namespace, as REST answers (deletedJobProblem).
    if (error instanceof JobDeletedError && isLimited(caller.principal))
      throw asGraphqlError(deletedJobProblem(error, true, false));
    throw asGraphqlError(error);
  }
  // Recorded from here on, whatever fails after (`recordedMutations`).
  if (result.position) (context.recorded ??= new Map()).set(info.path.key as string, result.position);
  const shown = result.position
    ? await readModel.waitFor(result.position).catch(() => false) // Redis unreachable: not shown either
    : true;
  if (!shown) throw recordedNotShown(result.position!);
  // Nothing recorded (already so): answered from a read model that may be catching up with the log, which
  // would answer the job as none (a review: INTERNAL_SERVER_ERROR during a rebuild).
  if (!result.position) await whole(readModel);
  try {
    return await answer(result);
  } catch (error) {
    if (result.position) throw recordedNotShown(result.position);
    throw error;
  }
}

/** An error saying the store may have recorded the mutation's events (decision 0050). */
const mayBeRecorded = (error: unknown) =>
  (error instanceof GraphQLError ? error.originalError : error) instanceof AppendOutcomeUnknownError;

/** The `extensions.code` of a GraphQL error, or of the one a resolver threw that yoga wrapped. */
function codeOf(error: unknown): unknown {
  const own = error instanceof GraphQLError ? error.extensions?.code : undefined;
  const original = error instanceof GraphQLError ? error.originalError : undefined;
  return own ?? (original instanceof GraphQLError ? original.extensions?.code : undefined);
}

/**
 * A mutation whose events are stored (durable, as REST's 2xx) but which the read model did not show within
 * its wait (the projector stopped or catching up, Redis unreachable): said as such (code RECORDED, with the
 * position), not as an unexpected error a client would answer by sending it again (a walkthrough's retried
 * trigger took a second savepoint).
 */
function recordedNotShown(position: Position, path?: readonly (string | number)[]): GraphQLError {
  return new GraphQLError(
    `recorded (event store position ${formatPosition(position)}), but the read model has not shown it yet ` +
      '(its projector is behind or stopped, or Redis is unreachable): do not send it again; read it later, ' +
      'or through REST, which answers from the event store',
    { ...(path ? { path } : {}), extensions: { code: 'RECORDED', position: formatPosition(position) } },
  );
}

/** A job's savepoint schedule as GraphQL shows it: with the next slot it fires at. */
function scheduleView(view: StoredJobSummary) {
  return (
    view.schedule && {
      ...view.schedule,
      nextFireAt: nextFireAt(view.schedule, Date.now()),
      lastSlotAt: view.lastSlotAt,
    }
  );
}

/** What yoga passes resolvers: the express request among it (mounted as express middleware). */
interface Context {
  req?: ExpressRequest;
  /** The mutations of this request whose events are recorded, by response key, with their position. */
  recorded?: Map<string, Position>;
}

/** The namespaces of the caller's token (`*` while authentication is off). */
function grantOf(context: Context): NamespaceGrant {
  return context.req ? grantOfRequest(context.req) : '*';
}

/** Who runs a mutation: its request id (as REST's) and token. */
function callerOf(context: Context): Caller {
  const req = context.req;
  return req ? { requestId: requestId(req), principal: principalOf(req) } : { requestId: randomUUID() };
}

/** The arguments GraphQL was given: absent and null ones left out, as a REST body leaves them out. */
function present(args: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined && v !== null));
}

/** GraphQL's list of headers as REST's object; a name given twice is refused, not overwritten. */
function headerRecord(headers: { name: string; value: string }[]): Record<string, string> {
  const record: Record<string, string> = Object.create(null);
  for (const { name, value } of headers) {
    if (Object.hasOwn(record, name)) {
      throw new Problem(400, 'invalid-request', 'Invalid request', `headers: ${name} is given twice`, [
        { field: `body.headers.${name}`, rule: 'unique', message: 'names a header already given' },
      ]);
    }
    record[name] = value;
  }
  return record;
}

interface HistoryArgs {
  jobId: string;
  snapshotId?: number;
  types?: string[];
  from?: number;
  to?: number;
  first: number;
  after?: string;
  newestFirst?: boolean | null;
}

/**
 * The job's events from the event store, filtered; the cursor is the stream revision. Oldest first, or newest
 * first (read backwards: a job of 40,000 events showed its oldest 50, and none of what it did lately).
 */
async function history(
  store: EventStore,
  a: HistoryArgs,
  asRead: <E extends { type: string }>(event: E) => Promise<E>,
) {
  const size = pageSize(a.first);
  const newest = a.newestFirst === true;
  const after = a.after ? BigInt(decode(a.after, 'revision')) : undefined;
  const found: { node: object; cursor: string }[] = [];
  if (newest && after === 0n) return connection(found, size); // nothing is older than the first event
  const fromRevision = after === undefined ? (newest ? undefined : 0n) : newest ? after - 1n : after + 1n;
  const pages = readStreamPages(store, jobStream(a.jobId), {
    ...(newest ? { direction: 'backwards' as const } : {}),
    ...(fromRevision === undefined ? {} : { fromRevision }),
  });
  for await (const page of pages) {
    for (const recorded of page) {
      const node = recordedEventView(recorded);
      const at = Date.parse(node.occurredAt);
      // The log's order ends the window: past `to` oldest first, before `from` newest first.
      if (!newest && a.to !== undefined && a.to !== null && at > a.to) return connection(found, size);
      if (newest && a.from !== undefined && a.from !== null && at < a.from) return connection(found, size);
      if (a.to !== undefined && a.to !== null && at > a.to) continue;
      if (a.from !== undefined && a.from !== null && at < a.from) continue;
      if (a.types && !a.types.includes(node.type)) continue;
      if (a.snapshotId !== undefined && a.snapshotId !== null && node.snapshotId !== a.snapshotId) continue;
      const data = await asRead(node.data);
      found.push({ cursor: encodeCursor('revision', recorded.revision.toString()), node: { ...node, data } });
      if (found.length > size) return connection(found, size);
    }
  }
  return connection(found, size);
}

function connection<T extends { cursor: string }>(
  items: T[],
  size: number,
): {
  edges: T[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
};
function connection<T>(
  items: T[],
  size: number,
  cursor: (item: T) => string,
): { edges: { node: T; cursor: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
function connection<T>(items: T[], size: number, cursor?: (item: T) => string) {
  const edges = cursor
    ? items.map((node) => ({ node, cursor: cursor(node) }))
    : (items as unknown as { cursor: string }[]);
  const kept = edges.slice(0, size);
  return {
    edges: kept,
    pageInfo: { hasNextPage: edges.length > size, endCursor: kept.at(-1)?.cursor ?? null },
  };
}

const isPageSize = (first: number) => Number.isInteger(first) && first >= 1 && first <= MAX_PAGE;

function pageSize(first: number): number {
  if (!isPageSize(first)) {
    throw new GraphQLError(`first must be between 1 and ${MAX_PAGE}`, {
      extensions: { code: 'BAD_USER_INPUT', field: 'first', rule: 'range' },
    });
  }
  return first;
}

function decode(cursor: string, kind: string): string {
  if (kind === 'revision') {
    const text = Buffer.from(cursor, 'base64url').toString('utf8');
    if (/^revision:\d{1,18}$/.test(text)) return text.slice('revision:'.length);
  } else {
    try {
      return decodeCursor(cursor, kind);
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
    }
  }
  throw new GraphQLError(`invalid cursor ${cursor}`, {
    extensions: { code: 'BAD_USER_INPUT', field: 'after', rule: 'cursor' },
  });
}

function filterOf(a: SnapshotFilter): SnapshotFilter {
  return {
    ...(a.kinds ? { kinds: a.kinds } : {}),
    ...(a.statuses ? { statuses: a.statuses } : {}),
    ...(a.persisted !== undefined && a.persisted !== null ? { persisted: a.persisted } : {}),
    ...(a.triggerTypes ? { triggerTypes: a.triggerTypes } : {}),
    ...(a.jobVersion !== undefined && a.jobVersion !== null ? { jobVersion: a.jobVersion } : {}),
    ...(a.flinkVersion !== undefined && a.flinkVersion !== null ? { flinkVersion: a.flinkVersion } : {}),
  };
}

const IsoInstant = z.iso.datetime({ offset: true });
function parseDate(value: unknown): number {
  if (typeof value !== 'string' || !IsoInstant.safeParse(value).success) {
    throw new GraphQLError('must be an ISO-8601 date-time such as 2026-01-01T00:00:00Z', {
      extensions: { code: 'BAD_USER_INPUT', rule: 'date-time' },
    });
  }
  return Date.parse(value);
}

/** A Long argument: an integer JSON number a double holds exactly; nothing is coerced (`true`, `"0x10"`, 1.5). */
function parseLong(value: unknown, from: 'variable' | 'literal'): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  const rule = `must be an integer between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`;
  // A literal's plain Error: validation names the type and the value (a GraphQLError is reported as is). A
  // variable's must be a GraphQLError, which yoga does not mask as an internal error; it names the variable.
  if (from === 'literal') throw new Error(rule);
  throw new GraphQLError(rule, { extensions: { code: 'BAD_USER_INPUT', rule: 'integer' } });
}

const PROBLEM_CODES: Record<number, string> = {
  400: 'BAD_USER_INPUT',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
};

/**
 * A use case's failure as a GraphQL error: the same rule as REST's problem, the field named as GraphQL's
 * argument (`kind`, not `body.kind`), the problem's extra members (a refused trigger's `reason`) kept.
 */
function asGraphqlError(error: unknown): unknown {
  if (error instanceof CommandRejected) {
    return new GraphQLError(error.message, {
      extensions: { code: error.code, field: error.field, rule: error.rule },
    });
  }
  if (error instanceof Problem) {
    const first = error.errors[0];
    const field = first?.field.replace(/^(body|path|query)\./, '');
    // REST's detail names the field where REST has it (`body.targetDirectory: …`); GraphQL's, the argument.
    const message = first && field ? error.detail.split(first.field).join(field) : error.detail;
    return new GraphQLError(message, {
      extensions: {
        ...error.extra,
        code: PROBLEM_CODES[error.status] ?? error.slug,
        field,
        rule: first?.rule,
      },
    });
  }
  return error;
}

/**
 * A read of a job whose stream was hard-deleted (history, catalogAsOf): the job is gone, said as such
 * (code GONE, as REST's 410) rather than masked as an unexpected error.
 */
function goneError(error: unknown): GraphQLError | undefined {
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (!(original instanceof JobDeletedError || original instanceof StreamDeletedError)) return undefined;
  return new GraphQLError(original.message, {
    extensions: { code: 'GONE', field: 'jobId', rule: 'deleted' },
  });
}

/** Redis failing over, loading or out of memory mid-request (decision 0048): UNAVAILABLE, as REST's 503. */
function redisCannotAnswer(error: unknown): GraphQLError | undefined {
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (!isRedisUnavailableError(original)) return undefined;
  return redisUnreachableError(`Redis cannot answer (${(original as Error).message})`);
}

/**
 * What REST answers with a 503 (`unavailableProblem`): the event store unreachable, full or refusing snapcat's
 * credentials, an event of the log this snapcat cannot read (a newer one wrote it): UNAVAILABLE, with the same
 * words and the problem's members (nothing was recorded; a client may retry). An append the store did not
 * confirm is OUTCOME_UNKNOWN (it may be recorded: read before retrying).
 */
function storeUnavailableError(error: unknown): GraphQLError | undefined {
  const original = error instanceof GraphQLError ? error.originalError : error;
  const problem = original === undefined ? undefined : unavailableProblem(original)?.problem;
  if (!problem) return undefined;
  const code = problem.slug === 'outcome-unknown' ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE';
  return new GraphQLError(problem.detail, { extensions: { code, ...problem.extra } });
}

/** The pubsub of snapshot events; with a Redis event target it spans processes. */
export function createSnapshotEventsPubSub(eventTarget?: unknown): SnapshotEventsPubSub {
  return createPubSub(eventTarget ? { eventTarget: eventTarget as never } : {}) as SnapshotEventsPubSub;
}
