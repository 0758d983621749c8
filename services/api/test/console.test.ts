import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { parseTokenList, tokenLine } from '@snapcat/runtime';
import { CONSOLE_CSP } from '../src/console';
import { JOB, apiFixture } from './fixture';

// How the API serves the web console's build (services/api/src/console.ts); the page itself is tested in a
// real browser by test/console.test.ts.
describe('the web console is served at / from its build', () => {
  const build = mkdtempSync(join(tmpdir(), 'snapcat-console-'));
  mkdirSync(join(build, 'assets'));
  writeFileSync(
    join(build, 'index.html'),
    '<!doctype html><html><head><script src="/assets/app-ABCD1234.js"></script></head></html>',
  );
  writeFileSync(join(build, 'assets', 'app-ABCD1234.js'), 'console.log(1)');
  // Authentication on: the page and its assets need no token (they hold no data), the API still does.
  const tokens = parseTokenList(
    tokenLine({ name: 'ops', scopes: ['read'], namespaces: '*' }, 'a'.repeat(40)),
  );
  const fx = apiFixture({ consoleDir: build, tokens });
  const http = request(fx.app);
  afterAll(async () => {
    await fx.close();
    rmSync(build, { recursive: true, force: true });
  });

  it('GET /: the page, revalidated on every load, under a policy that allows its own origin only', async () => {
    const res = await http.get('/').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('/assets/app-ABCD1234.js');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("connect-src 'self'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('GET /: the page says that it needs a token (so it asks for one before anything else), and only then', async () => {
    expect((await http.get('/').expect(200)).text).toContain(
      '<head><meta name="snapcat-authentication" content="token" /><script',
    );
    const open = apiFixture({ consoleDir: build });
    try {
      expect((await request(open.app).get('/').expect(200)).text).not.toContain('snapcat-authentication');
    } finally {
      await open.close();
    }
  });

  it('hashed assets: cached for a year and immutable; an unknown one is a 404 problem', async () => {
    const res = await http.get('/assets/app-ABCD1234.js').expect(200);
    expect(res.headers['content-type']).toMatch(/javascript/);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const missing = await http.get('/assets/app-00000000.js').expect(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    // Not below the assets: outside the console's public paths, so it needs a token like any other route.
    await http.get('/assets/../index.html').expect(401);
  });

  it('the API behind it still needs a token', async () => {
    await http.get(`/api/v1/jobs/${JOB}`).expect(401);
    await http
      .get(`/api/v1/jobs/${JOB}`)
      .set('authorization', `Bearer ${'a'.repeat(40)}`)
      .expect(404);
  });

  it('without a build, / says how to make one (503 problem)', async () => {
    const bare = apiFixture({ consoleDir: join(build, 'absent') });
    try {
      const res = await request(bare.app).get('/').expect(503);
      expect(res.body).toMatchObject({ status: 503, title: 'Console not built' });
      expect(res.body.detail).toContain('npm run build:console');
    } finally {
      await bare.close();
    }
  });
});
