import { Progress } from '../src/progress';

describe('progress of a long read on stderr', () => {
  it('a line per interval with events, rate and percent of the total, and a last one at 100%', () => {
    const lines: string[] = [];
    const progress = new Progress('replay', 400, 0, (line) => lines.push(line));
    progress.update(1000, 100);
    progress.update(2000, 300);
    progress.finish();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^replay: 1000 events, \d+ events\/s, 25% done\n$/);
    expect(lines[1]).toMatch(/^replay: 2000 events, \d+ events\/s, 75% done\n$/);
    expect(lines[2]).toMatch(/^replay: 2000 events, \d+ events\/s, 100% done\n$/);
  });

  it('at most one line per interval while it runs', () => {
    const lines: string[] = [];
    const progress = new Progress('audit verify', 10, 60_000, (line) => lines.push(line));
    for (let i = 1; i <= 10; i++) progress.update(i * 100, i);
    expect(lines).toEqual([]);
    progress.finish();
    expect(lines).toEqual([expect.stringMatching(/^audit verify: 1000 events, .* 100% done\n$/)]);
  });

  it('an empty log is 100% done at once', () => {
    const lines: string[] = [];
    new Progress('replay', 0, 0, (line) => lines.push(line)).finish();
    expect(lines[0]).toMatch(/0 events, 0 events\/s, 100% done/);
  });
});
