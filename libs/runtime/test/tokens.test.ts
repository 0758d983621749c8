import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  SCOPES,
  bearerToken,
  findToken,
  grants,
  hashToken,
  loadConfig,
  newToken,
  parseTokenList,
  tokenLine,
  type Scope,
} from '../src';

const hex = (token: string) => hashToken(token).toString('hex');

describe('token rules', () => {
  it('scopes: admin ⊇ operator ⊇ runtime, and every scope reads', () => {
    const table: Record<Scope, Scope[]> = {
      admin: ['admin', 'operator', 'runtime', 'read'],
      operator: ['operator', 'runtime', 'read'],
      runtime: ['runtime', 'read'],
      read: ['read'],
    };
    for (const held of SCOPES) {
      for (const needed of SCOPES) {
        expect([held, needed, grants([held], needed)]).toEqual([held, needed, table[held].includes(needed)]);
      }
    }
    expect(grants(['read', 'runtime'], 'runtime')).toBe(true);
    expect(grants([], 'read')).toBe(false);
  });

  it('parses lines separated by newlines or commas, skipping blanks and comments', () => {
    const text = `# ci\nci:operator:payments+billing:${hex('a')}\n\nreader:read:*:${hex('b')},root:admin+read:*:${hex('c')}`;
    const tokens = parseTokenList(text);
    expect(tokens.map((t) => [t.name, t.scopes, t.namespaces])).toEqual([
      ['ci', ['operator'], ['payments', 'billing']],
      ['reader', ['read'], '*'],
      ['root', ['admin', 'read'], '*'],
    ]);
  });

  it.each([
    ['ci:operator:payments', 'format'],
    [`c i:operator:*:${hex('a')}`, 'name'],
    [`ci:writer:*:${hex('a')}`, 'scope'],
    [`ci:read+:*:${hex('a')}`, 'scope'],
    [`ci:read:Pay_ments:${hex('a')}`, 'namespace'],
    [`ci:read:*:${hex('a').toUpperCase()}`, 'sha256'],
    ['ci:read:*:abc', 'sha256'],
  ])('refuses %s (rule %s), naming the line, never a field of it', (line, rule) => {
    expect(() => parseTokenList(`# first\n${line}`)).toThrow(`line 2: `);
    expect(() => parseTokenList(`# first\n${line}`)).toThrow(`(rule ${rule})`);
    const message = (() => {
      try {
        parseTokenList(`# first\n${line}`);
      } catch (error) {
        return (error as Error).message;
      }
    })();
    for (const field of line.split(':').filter((f) => f.length > 2)) expect(message).not.toContain(field);
  });

  it('refuses a name or a hash used twice, naming the lines, not the name', () => {
    const twice = `# first\nsecret-name:read:*:${hex('x')}\nsecret-name:read:*:${hex('y')}`;
    expect(() => parseTokenList(twice)).toThrow("line 3: the name is line 2's too (rule unique-name)");
    expect(() => parseTokenList(twice)).not.toThrow('secret-name');
    expect(() => parseTokenList(`a:read:*:${hex('x')}\nb:read:*:${hex('x')}`)).toThrow('rule unique-hash');
  });

  it('finds the entry of a token by its hash; an unknown token finds none', () => {
    const one = newToken();
    const two = newToken();
    expect(one).toMatch(/^snapcat_[A-Za-z0-9_-]{43}$/);
    expect(one).not.toBe(two);
    const tokens = parseTokenList(
      [
        tokenLine({ name: 'one', scopes: ['read'], namespaces: '*' }, one),
        tokenLine({ name: 'two', scopes: ['runtime'], namespaces: ['a'] }, two),
      ].join('\n'),
    );
    expect(findToken(tokens, one)?.name).toBe('one');
    expect(findToken(tokens, two)?.name).toBe('two');
    expect(findToken(tokens, `${one}x`)).toBeUndefined();
    expect(findToken([], one)).toBeUndefined();
  });

  it('reads a bearer token from the Authorization header', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe('SNAPCAT_TOKENS, SNAPCAT_HOST and SNAPCAT_RATE_LIMIT in the configuration', () => {
  const line = `ci:operator:payments:${hex('secret-token')}`;

  it('no tokens: authentication off, 127.0.0.1 by default; with tokens 0.0.0.0', () => {
    expect(loadConfig({})).toMatchObject({ tokens: [], host: '127.0.0.1' });
    const config = loadConfig({ SNAPCAT_TOKENS: line });
    expect(config.host).toBe('0.0.0.0');
    expect(config.tokens.map((t) => t.name)).toEqual(['ci']);
  });

  it('refuses a non-loopback SNAPCAT_HOST without tokens, saying how to make one', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.5']) {
      expect(() => loadConfig({ SNAPCAT_HOST: host })).toThrow(ConfigError);
      expect(() => loadConfig({ SNAPCAT_HOST: host })).toThrow(/npx snapcat token create/);
    }
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) {
      expect(loadConfig({ SNAPCAT_HOST: host }).host).toBe(host);
    }
    expect(loadConfig({ SNAPCAT_HOST: '0.0.0.0', SNAPCAT_TOKENS: line }).host).toBe('0.0.0.0');
    // A workers-only process serves no HTTP.
    expect(loadConfig({ SNAPCAT_HOST: '0.0.0.0', SNAPCAT_ROLE: 'workers' }).role).toBe('workers');
  });

  it('reads a file of lines; a bad line is named by number and rule, never echoed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-tokens-'));
    try {
      const file = join(dir, 'tokens');
      writeFileSync(file, `# tokens\n${line}\n`);
      expect(loadConfig({ SNAPCAT_TOKENS: file }).tokens).toHaveLength(1);
      const bad = `reader:read:*:${hex('other')}:extra`;
      writeFileSync(file, `# tokens\n${line}\n${bad}\n`);
      let message = '';
      try {
        loadConfig({ SNAPCAT_TOKENS: file });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message;
      }
      expect(message).toMatch(/SNAPCAT_TOKENS \(file .*\): line 3: .*rule format/);
      expect(message).not.toContain(hex('other'));
      expect(() => loadConfig({ SNAPCAT_TOKENS: join(dir, 'missing') })).toThrow(/names no existing file/);
      // A token pasted where its configuration line belongs is never echoed (it would reach the logs).
      const pasted = newToken();
      expect(() => loadConfig({ SNAPCAT_TOKENS: pasted })).toThrow(/the value is not shown/);
      expect(() => loadConfig({ SNAPCAT_TOKENS: pasted })).not.toThrow(new RegExp(pasted.slice(-12)));
      writeFileSync(file, '# nothing\n');
      expect(() => loadConfig({ SNAPCAT_TOKENS: file })).toThrow(/names no token/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SNAPCAT_RATE_LIMIT: 10,000/s by default, 0 turns it off, negative is refused', () => {
    expect(loadConfig({}).rateLimit).toBe(10_000);
    expect(loadConfig({ SNAPCAT_RATE_LIMIT: '0' }).rateLimit).toBe(0);
    expect(() => loadConfig({ SNAPCAT_RATE_LIMIT: '-1' })).toThrow(/SNAPCAT_RATE_LIMIT/);
  });
});
