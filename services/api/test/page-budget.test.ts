import { readFileSync } from 'node:fs';
import { buildSchema, parse } from 'graphql';
import { SCHEMA_FILE } from './files';
import { requestedItems } from '../src/page-budget';

const schema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8'));
const items = (query: string, variables: Record<string, unknown> = {}, operationName?: string) =>
  requestedItems(schema, parse(query), operationName, variables);

describe('requestedItems: the list items an operation may return', () => {
  it('multiplies first along the nesting, from literals, variables and the schema defaults', () => {
    expect(items('{ jobs(first: 10) { edges { node { id } } } }')).toBe(10);
    expect(
      items('{ jobs(first: 10) { edges { node { snapshots(first: 30) { edges { cursor } } } } } }'),
    ).toBe(10 + 10 * 30);
    expect(items('query($n: Int) { jobs(first: $n) { edges { cursor } } }', { n: 7 })).toBe(7);
    // Left out: the argument's default (jobs 20, history 100).
    expect(items('{ jobs { edges { node { snapshots { edges { cursor } } } } } }')).toBe(20 + 20 * 20);
    expect(items('{ history(jobId: "x") { edges { cursor } } }')).toBe(100);
    // Fields without `first` neither count nor multiply.
    expect(items('{ job(id: "x") { tasks latestSavepoint { id } } }')).toBe(0);
  });

  it('follows fragments, inline and named, and the operation asked for', () => {
    const query = `
      query A($n: Int) { jobs(first: $n) { edges { node { ...Snaps } } } }
      query B { job(id: "x") { ... on Job { snapshots(first: 5) { edges { cursor } } } } }
      fragment Snaps on Job { snapshots(first: 4) { edges { node { id } } } }`;
    expect(items(query, { n: 3 }, 'A')).toBe(3 + 3 * 4);
    expect(items(query, {}, 'B')).toBe(5);
  });
});
