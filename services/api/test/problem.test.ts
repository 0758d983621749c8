import { z } from 'zod';
import {
  CommandRejected,
  Location,
  SavepointSchedule,
  SnapshotId,
  SnapshotIdParam,
  Tasks,
} from '@snapcat/domain';
import { Problem, rejectedInBody, validationProblem } from '../src/problem';

describe('validationProblem', () => {
  it('names a field once per rule: a snapshot id past 2^53 fails zod’s int() and max() alike', () => {
    const path = z.strictObject({ snapshotId: SnapshotIdParam });
    const input = { snapshotId: '99999999999999999999' };
    const problem = validationProblem(path.safeParse(input).error!, 'path', input);
    expect(problem.errors).toEqual([
      { field: 'path.snapshotId', rule: 'maximum', message: expect.any(String) },
    ]);
    const body = z.strictObject({ snapshotId: SnapshotId });
    const big = { snapshotId: 1e20 };
    expect(validationProblem(body.safeParse(big).error!, 'body', big).errors).toHaveLength(1);
  });

  it('keeps different rules of one field, and the same rule of different fields', () => {
    const schema = z.strictObject({ a: z.string().min(3).regex(/^x/), b: z.string().min(3) });
    const input = { a: 'y', b: 'y' };
    const problem = validationProblem(schema.safeParse(input).error!, 'body', input);
    expect(problem.errors.map(({ field, rule }) => `${field} ${rule}`)).toEqual([
      'body.a min-length',
      'body.a format-regex',
      'body.b min-length',
    ]);
  });

  it('a refinement names its rule, never `custom`', () => {
    const rules = (schema: z.ZodType, input: unknown) =>
      validationProblem(schema.safeParse(input).error!, 'body', input).errors.map(
        (e) => `${e.field} ${e.rule}`,
      );
    expect(rules(SavepointSchedule, { every: 'PT0S' })).toEqual(['body.every minimum']);
    expect(rules(SavepointSchedule, { every: 'P' })).toEqual(['body.every iso-duration']);
    expect(rules(SavepointSchedule, { every: 'PT1M', cron: '* * * * *' })).toEqual([
      'body.every every-or-cron',
    ]);
    expect(rules(SavepointSchedule, { every: 'PT1M', tz: 'UTC' })).toEqual(['body.tz tz-with-cron']);
    expect(rules(Tasks, ['a', 'a'])).toEqual(['body unique']);
    expect(rules(Location, 'rel/dir')).toEqual(['body absolute-location']);
  });
});

describe('a rejection of the request as a whole', () => {
  it('names `body` (one webhook subscription too many), not `body.body`', () => {
    const rejected = new CommandRejected('CONFLICT', 'body', 'max-subscriptions', 'too many subscriptions');
    const problem = rejectedInBody(rejected, 'body') as Problem;
    expect(problem).toBeInstanceOf(Problem);
    expect(problem.status).toBe(409);
    expect(problem.errors).toEqual([
      { field: 'body', rule: 'max-subscriptions', message: 'too many subscriptions' },
    ]);
  });
});
