import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { processGroup } from './support/service';
import { until } from './support/wait';

// processGroup is what the start and signal tests use to say "no process left": it must list what still runs in
// a group and nothing that has only not been reaped yet.
describe('processGroup (the test helper behind "no process left")', () => {
  it('lists the live processes of a group and leaves out a zombie that its parent has not reaped', async () => {
    // The shell starts `true` in the background, then execs into `sleep`, which never waits for children: `true`
    // exits and stays a zombie of the group for as long as `sleep` runs.
    const child = spawn('sh', ['-c', 'true & exec sleep 30'], { detached: true, stdio: 'ignore' });
    const group = child.pid!;
    try {
      await until(
        async () => {
          const zombies = zombiesOf(group);
          return zombies.length === 1 ? zombies : undefined;
        },
        5000,
        'the background process of the group becoming a zombie',
      );
      expect(processGroup(group).map((p) => p.command)).toEqual(['sleep 30']);
      expect(processGroup(group)[0]!.rssBytes).toBeGreaterThan(0);
    } finally {
      process.kill(-group, 'SIGKILL');
    }
  });
});

/** The group's processes in state Z, read straight from /proc (independently of processGroup). */
function zombiesOf(group: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const fields = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return fields[0] === 'Z' && Number(fields[2]) === group;
      } catch {
        return false;
      }
    })
    .map(Number);
}
