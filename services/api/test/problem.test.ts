import { z } from 'zod';
import { SnapshotId, SnapshotIdParam } from '@snapcat/domain';
import { validationProblem } from '../src/problem';

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
});
