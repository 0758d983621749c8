import {
  AckLog,
  CommandRejected,
  Location,
  SavepointSchedule,
  Tasks,
  decodeState,
  discardsOn,
  encodeState,
  internProperties,
  propertiesFor,
  type SnapshotProperties,
} from '../src';
import { Job } from './harness';

// Validation rules of the schemas the API checks commands with, and small pieces of the aggregate.

describe('schemas', () => {
  it.each([
    ['/data/chk', true],
    ['file:///data/chk', true],
    ['s3://bucket/chk', true],
    ['s3a://bucket/chk', true],
    ['hdfs+x.y-z://nn/chk', true],
    ['relative/chk', false],
    ['S3://bucket/chk', false],
    ['3s://bucket/chk', false],
    ['x:/not-a-uri', false],
    ['see s3://bucket', false],
    ['/data/a\u0001b', false],
    ['', false],
  ])('Location %j: %s', (location, ok) => {
    expect(Location.safeParse(location).success).toBe(ok);
  });

  it('a Location’s messages', () => {
    const result = Location.safeParse('relative');
    expect(result.error!.issues[0]!.message).toBe(
      'must be an absolute path or a URI such as file:///data/checkpoints',
    );
  });

  it('task ids must be unique', () => {
    expect(Tasks.safeParse(['a', 'b']).success).toBe(true);
    const result = Tasks.safeParse(['a', 'b', 'a']);
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.message).toBe('task ids must be unique');
  });

  it('a schedule: exactly one of every or cron (the issue on every); tz only with cron (the issue on tz)', () => {
    const issues = (value: unknown) =>
      SavepointSchedule.safeParse(value).error?.issues.map((i) => [i.path.join('.'), i.message]) ?? [];
    expect(issues({ every: 'PT1M' })).toEqual([]);
    expect(issues({ cron: '0 * * * * *', tz: 'Europe/Berlin' })).toEqual([]);
    expect(issues({})).toEqual([['every', 'give exactly one of every or cron']]);
    expect(issues({ every: 'PT1M', cron: '* * * * * *' })).toEqual([
      ['every', 'give exactly one of every or cron'],
    ]);
    expect(issues({ every: 'PT1M', tz: 'UTC' })).toEqual([['tz', 'tz applies to cron schedules only']]);
    expect(issues({ tz: 'UTC' })).toEqual([
      ['every', 'give exactly one of every or cron'],
      ['tz', 'tz applies to cron schedules only'],
    ]);
  });
});

describe('snapshot properties', () => {
  it('the discard flag a termination consults; RUNNING discards nothing', () => {
    const p: SnapshotProperties = {
      forced: false,
      discardSubsumed: false,
      discardFinished: true,
      discardCancelled: false,
      discardFailed: true,
      discardSuspended: true,
    };
    expect(discardsOn(p, 'FINISHED')).toBe(true);
    expect(discardsOn(p, 'CANCELED')).toBe(false);
    expect(discardsOn(p, 'FAILED')).toBe(true);
    expect(discardsOn(p, 'SUSPENDED')).toBe(true);
    expect(discardsOn({ ...p, discardSuspended: false }, 'SUSPENDED')).toBe(false);
    expect(discardsOn({ ...p, discardFinished: true }, 'RUNNING')).toBe(false);
  });

  it('one shared frozen object per combination of flags', () => {
    const a = propertiesFor('CHECKPOINT', 'RETAIN_ON_FAILURE');
    const b = internProperties({ ...a });
    expect(b).toBe(internProperties({ ...a }));
    expect(b).toEqual(a);
    expect(Object.isFrozen(b)).toBe(true);
    expect(internProperties({ ...a, discardSubsumed: !a.discardSubsumed })).not.toBe(b);
  });
});

describe('CommandRejected', () => {
  it('is an Error named CommandRejected, with its code, field and rule', () => {
    const e = new CommandRejected('INVALID', 'name', 'length', 'too long');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('CommandRejected');
    expect(String(e)).toBe('CommandRejected: too long');
    expect([e.code, e.field, e.rule, e.message]).toEqual(['INVALID', 'name', 'length', 'too long']);
  });
});

describe('acknowledgement log', () => {
  it('refuses an acknowledgement on a snapshot that is not pending (the shared empty log)', () => {
    expect(() => AckLog.EMPTY.append(0, 'a', [])).toThrow(
      'acknowledgement appended to a snapshot that is not pending',
    );
  });

  it('keeps the handles of each acknowledgement, an empty list for none', () => {
    const log = AckLog.of([]);
    log.append(0, 'a', []);
    log.append(1, 'b', [{ path: '/x', sizeBytes: 1 }]);
    expect(log.entries(2)).toEqual([
      ['a', []],
      ['b', [{ path: '/x', sizeBytes: 1 }]],
    ]);
    expect(log.has(1, 'b')).toBe(false);
    expect(log.has(2, 'b')).toBe(true);
  });
});

describe('aggregate snapshot codec', () => {
  it('a job reconfigured with other tasks keeps each snapshot’s own task list through the codec', () => {
    const job = new Job().register({ numRetained: 3 });
    const before = job.trigger();
    if (!before.accepted) throw new Error('rejected');
    job.run({
      type: 'ConfigureJob',
      name: 'job',
      tasks: ['a', 'b', 'c'],
      checkpointing: job.state.checkpointing,
      storage: job.state.storage,
    });
    const after = job.trigger();
    if (!after.accepted) throw new Error('rejected');
    const encoded = JSON.parse(JSON.stringify(encodeState(job.state)));
    const [first, second] = encoded.snapshots as { expectedTasks?: string[] }[];
    expect(first!.expectedTasks).toEqual(['a', 'b']);
    expect(second).not.toHaveProperty('expectedTasks');
    const decoded = decodeState(encoded)!;
    expect(decoded.snapshots.get(before.snapshotId)!.expectedTasks).toEqual(['a', 'b']);
    expect(decoded.snapshots.get(after.snapshotId)!.expectedTasks).toBe(decoded.tasks);
    const restored = job.continuedWith(decoded);
    expect(restored.ack(before.snapshotId, 'c')).toEqual({ result: 'UNKNOWN', snapshotStatus: 'PENDING' });
    expect(restored.ack(after.snapshotId, 'c')).toEqual({ result: 'SUCCESS', snapshotStatus: 'PENDING' });
  });
});
