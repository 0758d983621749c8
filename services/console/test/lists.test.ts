import { MAX_PAGE, readUpTo } from '../src/queries';
import type { Connection } from '../src/queries';

/** A server's connection over `total` rows, answering at most MAX_PAGE a page, as the GraphQL API does. */
function server(total: number) {
  const asked: [number, string | null][] = [];
  const fetchPage = async (first: number, after: string | null): Promise<Connection<number>> => {
    asked.push([first, after]);
    if (first > MAX_PAGE) throw new Error(`first ${first} is over the server's ${MAX_PAGE}`);
    const from = after === null ? 0 : Number(after);
    const rows = Array.from({ length: Math.max(0, Math.min(first, total - from)) }, (_, i) => from + i);
    const end = from + rows.length;
    return {
      edges: rows.map((node) => ({ node })),
      pageInfo: { hasNextPage: end < total, endCursor: rows.length ? String(end) : null },
    };
  };
  return { asked, fetchPage };
}

describe('readUpTo', () => {
  it('reads as many rows as were shown, past the largest page, in pages the server allows', async () => {
    const { asked, fetchPage } = server(1_200);
    const read = await readUpTo(fetchPage, 560, null);
    expect(read.edges.map((e) => e.node)).toEqual(Array.from({ length: 560 }, (_, i) => i));
    expect(read.pageInfo).toEqual({ hasNextPage: true, endCursor: '560' });
    expect(asked).toEqual([
      [500, null],
      [60, '500'],
    ]);
  });

  it('a page the server allows is one request; the end says there is no more', async () => {
    const { asked, fetchPage } = server(30);
    expect((await readUpTo(fetchPage, 100, null)).pageInfo).toEqual({ hasNextPage: false, endCursor: '30' });
    const all = await readUpTo(fetchPage, 900, null);
    expect(all.edges).toHaveLength(30);
    expect(all.pageInfo.hasNextPage).toBe(false);
    expect(asked).toEqual([
      [100, null],
      [500, null],
    ]);
  });
});
