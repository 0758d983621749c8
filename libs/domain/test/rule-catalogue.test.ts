import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * docs/domain.md lists the domain's rules as `**R<n>**`; a test names the rules it checks at the start of
 * its title (`it('R12 ...')`, `it('R30, R47 ...')`, `it.each(...)('R46 ...')`). Every rule has a test, and
 * every id a test names is a rule.
 */
const DOC = join(__dirname, '../../../docs/domain.md');
const TESTS = __dirname;

const ruleIds = (doc: string): string[] => [...doc.matchAll(/\*\*R(\d+)\*\*/g)].map((m) => `R${m[1]}`);

/** The ids at the start of the test titles of one file: a string argument opening with `R<n>`. */
const titleIds = (source: string): string[] =>
  [...source.matchAll(/\(\s*['"`]((?:R\d+(?:, | and | ))+)/g)].flatMap((m) =>
    [...m[1]!.matchAll(/R\d+/g)].map((id) => id[0]),
  );

describe('rule catalogue (docs/domain.md)', () => {
  const ids = ruleIds(readFileSync(DOC, 'utf8'));
  const named = new Map<string, string[]>();
  // This file's own examples below are not tests of rules.
  const files = readdirSync(TESTS).filter((f) => f.endsWith('.test.ts') && f !== 'rule-catalogue.test.ts');
  for (const file of files) {
    for (const id of titleIds(readFileSync(join(TESTS, file), 'utf8'))) {
      named.set(id, [...(named.get(id) ?? []), file]);
    }
  }

  it('lists rules R1, R2, ... each once, in order', () => {
    expect(ids.length).toBeGreaterThan(0);
    expect(ids).toEqual(ids.map((_, i) => `R${i + 1}`));
  });

  it('every rule is named by at least one test', () => {
    expect(ids.filter((id) => !named.has(id))).toEqual([]);
  });

  it('every rule a test names is in docs/domain.md', () => {
    const known = new Set(ids);
    expect([...named].filter(([id]) => !known.has(id))).toEqual([]);
  });

  it('reads ids from test titles, and from nothing else', () => {
    expect(titleIds(`it('R3 a', () => {}); it.each([1])('R30, R47 b', f); it('Rx', f); x('R')`)).toEqual([
      'R3',
      'R30',
      'R47',
    ]);
    expect(titleIds("it(`R51 records at most ${n}`, f); describe('rules R1', f)")).toEqual(['R51']);
  });
});
