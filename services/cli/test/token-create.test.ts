import { findToken, loadConfig } from '@snapcat/runtime';
import { runCli } from '../../../test/support/service';

describe('snapcat token create', () => {
  it('prints a new token once and its line; the configuration made of that line accepts the token', async () => {
    const run = await runCli(
      ['token', 'create', '--name', 'ci', '--scope', 'operator', '--namespace', 'payments'],
      {},
    );
    expect(run.status).toBe(0);
    const [token, line, ...rest] = run.stdout.trimEnd().split('\n');
    expect(rest).toEqual([]);
    expect(token).toMatch(/^snapcat_[A-Za-z0-9_-]{43}$/);
    expect(line).toMatch(/^ci:operator:payments:[0-9a-f]{64}$/);
    expect(line).not.toContain(token);
    const config = loadConfig({ SNAPCAT_TOKENS: line });
    expect(findToken(config.tokens, token!)).toMatchObject({
      name: 'ci',
      scopes: ['operator'],
      namespaces: ['payments'],
    });
    expect(findToken(config.tokens, `${token}x`)).toBeUndefined();

    const again = await runCli(
      ['token', 'create', '--name', 'root', '--scope', 'admin', '--namespace', '*'],
      {},
    );
    expect(again.stdout.split('\n')[0]).not.toBe(token);
    expect(again.stdout.split('\n')[1]).toMatch(/^root:admin:\*:[0-9a-f]{64}$/);
  }, 60_000);

  it('refuses a bad scope, a missing name or no namespace with exit 2 and the usage', async () => {
    const bad = await runCli(
      ['token', 'create', '--name', 'ci', '--scope', 'writer', '--namespace', 'payments'],
      {},
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/scope 1 is unknown: use runtime, operator, read, admin/);
    expect(bad.stdout).toBe('');
    const missing = await runCli(['token', 'create', '--scope', 'read'], {});
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/usage: .*\n\s+token create/);
    // No namespace is no token for every namespace: '*' is asked for in so many words.
    const everywhere = await runCli(['token', 'create', '--name', 'ci', '--scope', 'read'], {});
    expect(everywhere.status).toBe(2);
    expect(everywhere.stderr).toMatch(/at least one --namespace \('\*' for every one\)/);
    expect(everywhere.stdout).toBe('');
    const help = await runCli(['token', 'create', '--help'], {});
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/token create --name/);
  }, 60_000);
});
