import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import { Problem } from './problem';

/**
 * The web console (issue 21): static files that services/console/build.mjs bundles at install time (`npm ci`
 * runs it through `prepare`). It holds no data: the page reads and acts through /graphql with the token the
 * operator enters, so serving it needs no token. The entry point says where the build is (services/console/dist,
 * or dist/services/console/dist in the compiled build, where tools/build/build.mjs copies it).
 */

/** The page's policy: its own scripts and styles only, talking to its own origin only, never framed. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  // uPlot positions its legend and cursor through style attributes.
  "style-src 'self' 'unsafe-inline'",
  "script-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

/**
 * What the page is told of access control before it asks anything: with tokens configured, that it needs one
 * (it then shows its token form at once, rather than ask for the viewer and be answered 401). No secret: any
 * request without a token would be told as much.
 */
export const AUTHENTICATION_META = '<meta name="snapcat-authentication" content="token" />';

/** Whether the console is built where this process looks for it. */
export const consoleBuilt = (dir: string) => existsSync(join(dir, 'index.html'));

/**
 * `GET /` (the page, revalidated on every load, so that a new build is picked up) and `GET /assets/*` (named
 * by their content's hash: cached for a year, immutable; an unknown one falls through to the app's 404).
 * Without a build, `/` says how to make one (503). With `authentication`, the page carries AUTHENTICATION_META.
 */
export function consoleRoutes(dir: string, { authentication = false } = {}): express.Router {
  const router = express.Router();
  const secure: express.RequestHandler = (_req, res, next) => {
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    next();
  };
  router.get('/', secure, (_req, res) => {
    let page: string;
    try {
      page = readFileSync(join(dir, 'index.html'), 'utf8');
    } catch {
      throw new Problem(
        503,
        'console-not-built',
        'Console not built',
        `the web console is not built in ${dir}: run \`npm run build:console\` (npm ci runs it)`,
      );
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(authentication ? page.replace(/<head>/i, `$&${AUTHENTICATION_META}`) : page);
  });
  router.use(
    '/assets',
    secure,
    express.static(join(dir, 'assets'), {
      immutable: true,
      maxAge: '365d',
      index: false,
      redirect: false,
    }),
  );
  return router;
}
