import fc from 'fast-check';
import {
  Command,
  CommandRejected,
  ConfigureJob,
  DEFAULT_NAMESPACE,
  decideBatch,
  evolveSubscriptions,
  fold,
  grantCovers,
  grantsNamespace,
  TaskList,
  initialState,
  subscriptionMatches,
  type JobState,
  type NamespaceGrant,
} from '../src';
import { JOB, T0 } from './harness';
import { propertyRuns } from './property-runs';

// Issue 18, namespaces: a job belongs to one namespace, set at registration and never changed; a caller
// limited to some namespaces neither sees nor touches a job outside them, and cannot register one there.

const NAMESPACES = ['default', 'payments', 'search'] as const;
const configure = (namespace?: string) =>
  ConfigureJob.parse({
    type: 'ConfigureJob',
    jobId: JOB,
    name: 'job',
    ...(namespace === undefined ? {} : { namespace }),
    tasks: ['a'],
    checkpointing: {},
    storage: { checkpointDir: '/data/chk', savepointDir: '/data/sp' },
  });

/** One command of every kind a client sends about an existing job. */
const CLIENT_COMMANDS: Command[] = [
  configure(),
  { type: 'ChangeJobStatus', jobId: JOB, status: 'SUSPENDED' },
  {
    type: 'TriggerSnapshot',
    jobId: JOB,
    kind: 'SAVEPOINT',
    triggerId: 't-1',
    triggerType: 'MANUAL',
    formatType: 'CANONICAL',
  },
  { type: 'AcknowledgeTask', jobId: JOB, snapshotId: 1, taskId: 'a', stateSize: 0, stateHandles: [] },
  { type: 'DeclineTask', jobId: JOB, snapshotId: 1, taskId: 'a' },
  { type: 'PersistSnapshot', jobId: JOB, snapshotId: 1 },
  { type: 'RequestDiscard', jobId: JOB, snapshotId: 1, force: true },
  { type: 'SetSavepointSchedule', jobId: JOB, schedule: { every: 'PT1M' } },
  { type: 'RemoveSavepointSchedule', jobId: JOB },
].map((c) => Command.parse(c));

const registeredIn = (namespace: string): JobState => {
  const { events, state } = decideBatch(initialState(JOB), [configure(namespace)], T0);
  expect(events).toHaveLength(1);
  return state;
};

const arbitraryGrant: fc.Arbitrary<NamespaceGrant> = fc.oneof(
  fc.constant('*' as const),
  fc.subarray([...NAMESPACES], { minLength: 1 }),
);

describe('namespaces', () => {
  it('R55 a job outside the grant answers every command as a job that does not exist would (but is not registered again), and nothing is written', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...NAMESPACES),
        arbitraryGrant,
        fc.option(fc.constantFrom(...NAMESPACES)),
        (namespace, grant, asked) => {
          const state = registeredIn(namespace);
          const inside = grant === '*' || grant.includes(namespace);
          for (const command of [...CLIENT_COMMANDS, configure(asked ?? undefined)]) {
            const { outcomes, events } = decideBatch(state, [command], T0 + 1, [grant]);
            const outcome = outcomes[0]!;
            if (inside) {
              if (!outcome.ok) expect(outcome.error.rule).not.toBe('job-exists');
              continue;
            }
            expect(events).toEqual([]);
            // What the same caller hears for an id no namespace has: a refusal word for word, else NOT_FOUND.
            const absent = decideBatch(initialState(JOB), [command], T0 + 1, [grant]).outcomes[0]!;
            const heard = (o: typeof outcome) => (o.ok ? 'ok' : [o.error.code, o.error.message]);
            expect(heard(outcome)).toEqual(
              absent.ok ? ['NOT_FOUND', `job ${JOB} is not registered`] : heard(absent),
            );
          }
        },
      ),
      propertyRuns(),
    );
  });

  it('R55 registering in a namespace outside the grant is FORBIDDEN; inside, the job is there', () => {
    fc.assert(
      fc.property(fc.option(fc.constantFrom(...NAMESPACES)), arbitraryGrant, (asked, grant) => {
        const namespace = asked ?? DEFAULT_NAMESPACE;
        const { outcomes, state, events } = decideBatch(
          initialState(JOB),
          [configure(asked ?? undefined)],
          T0,
          [grant],
        );
        if (grant === '*' || grant.includes(namespace)) {
          expect(state.namespace).toBe(namespace);
          expect(events).toMatchObject([{ type: 'JobRegistered', namespace }]);
        } else {
          expect(events).toEqual([]);
          const error = outcomes[0]!.ok ? undefined : outcomes[0]!.error;
          expect(error).toMatchObject({ code: 'FORBIDDEN', field: 'namespace', rule: 'namespace-granted' });
        }
      }),
      propertyRuns(),
    );
  });

  it('R55 in one batch, a job registered by one caller is out of reach of a caller of another namespace', () => {
    const trigger = CLIENT_COMMANDS[2]!;
    const { outcomes, events } = decideBatch(initialState(JOB), [configure('payments'), trigger], T0, [
      ['payments'],
      ['search'],
    ]);
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual(['ok', 'NOT_FOUND']);
    expect(events.map((e) => e.type)).toEqual(['JobRegistered']);
  });

  it('R54 a namespace never changes: naming another is a CONFLICT, leaving it out keeps it', () => {
    const state = registeredIn('payments');
    const moved = decideBatch(state, [configure('search')], T0 + 1).outcomes[0]!;
    expect(moved.ok ? 'ok' : moved.error).toBeInstanceOf(CommandRejected);
    expect(moved.ok ? 'ok' : [moved.error.code, moved.error.field, moved.error.rule]).toEqual([
      'CONFLICT',
      'namespace',
      'immutable',
    ]);
    expect(moved.ok ? 'ok' : moved.error.message).toBe(
      `job ${JOB} is in namespace payments; a job's namespace never changes`,
    );
    const kept = decideBatch(state, [configure()], T0 + 1);
    expect(kept.outcomes[0]!.ok).toBe(true);
    expect(kept.state.namespace).toBe('payments');
    // Naming the job's own namespace is no move: accepted, and nothing changed.
    const same = decideBatch(state, [configure('payments')], T0 + 1);
    expect(same.outcomes[0]).toEqual({ ok: true, reply: { created: false, changed: false }, events: [] });
    expect(same.events).toEqual([]);
  });

  it('R55 a registration outside the grant is refused naming the namespace asked for and those granted', () => {
    const { outcomes, events } = decideBatch(initialState(JOB), [configure('search')], T0, [
      ['payments', 'default'],
    ]);
    expect(events).toEqual([]);
    const error = outcomes[0]!.ok ? undefined : outcomes[0]!.error;
    expect(error).toMatchObject({ code: 'FORBIDDEN', field: 'namespace', rule: 'namespace-granted' });
    expect(error?.message).toBe('this token may not act in namespace search (it may in payments, default)');
  });

  it('R54 a job registered before namespaces existed (no namespace in its event) is in default', () => {
    const state = fold(initialState(JOB), [
      {
        type: 'JobRegistered',
        jobId: JOB,
        occurredAt: new Date(T0).toISOString(),
        name: 'old',
        tasks: ['a'],
        status: 'RUNNING',
        checkpointing: configure().checkpointing,
        storage: configure().storage,
      },
    ]);
    expect(state.namespace).toBe(DEFAULT_NAMESPACE);
  });

  it("R56 a webhook subscription gets only its namespaces' jobs' events, and is seen only by who holds them all", () => {
    const created = (namespaces?: NamespaceGrant) =>
      evolveSubscriptions(new Map(), {
        type: 'WebhookSubscriptionCreated',
        subscriptionId: 'wh_1',
        occurredAt: new Date(T0).toISOString(),
        url: 'https://example.com/hook',
        eventTypes: [],
        jobIds: [],
        description: '',
        ...(namespaces === undefined ? {} : { namespaces: namespaces as string[] }),
        secret: { v: 1, iv: 'a', tag: 'b', data: 'c' },
      }).get('wh_1')!;
    const limited = created(['payments']);
    const event = { type: 'SnapshotCompleted', jobId: JOB };
    expect(subscriptionMatches(limited, event, 'payments')).toBe(true);
    expect(subscriptionMatches(limited, event, 'search')).toBe(false);
    expect(subscriptionMatches(limited, event, undefined)).toBe(false);
    const everywhere = created();
    expect(everywhere.namespaces).toBe('*');
    expect(subscriptionMatches(everywhere, event, 'search')).toBe(true);
    expect(grantCovers(['payments', 'search'], limited.namespaces)).toBe(true);
    expect(grantCovers(['search'], limited.namespaces)).toBe(false);
    expect(grantCovers(['payments'], everywhere.namespaces)).toBe(false);
    expect(grantCovers('*', everywhere.namespaces)).toBe(true);
  });
});

describe('grants, case by case', () => {
  it('`*` grants every namespace; a list only its own', () => {
    expect(grantsNamespace('*', 'team-a')).toBe(true);
    expect(grantsNamespace(['team-a'], 'team-a')).toBe(true);
    expect(grantsNamespace(['team-a'], 'team-b')).toBe(false);
  });

  it('a grant covers a list when it holds every namespace of it, not some', () => {
    expect(grantCovers(['team-a', 'team-b'], ['team-a', 'team-b'])).toBe(true);
    expect(grantCovers(['team-a'], ['team-a', 'team-b'])).toBe(false);
    expect(grantCovers(['team-a'], '*')).toBe(false);
    expect(grantCovers('*', '*')).toBe(true);
  });

  it('a job’s task ids are unique', () => {
    expect(TaskList.safeParse(['a', 'b']).success).toBe(true);
    expect(TaskList.safeParse(['a', 'a']).success).toBe(false);
    expect(TaskList.safeParse([]).success).toBe(true);
  });
});
