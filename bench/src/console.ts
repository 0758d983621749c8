/**
 * #15: the web console's weight and first load (issue 21). The bundle's gzip size beside that of the two
 * libraries it is built on (Preact and uPlot alone, bundled and gzipped the same way in the same run); the
 * first load in headless Chromium beside the same browser loading a bare HTML page from a bare express
 * server (bench/src/baseline-server.ts, `GET /page`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { launchOffline } from '../../test/support/browser';
import { REPO_ROOT } from '../../test/support/service';

export interface ConsoleLoad {
  /** Gzipped bytes of the console's JavaScript and CSS, and of Preact + uPlot alone. */
  bundleGzip: number;
  librariesGzip: number;
  /** Medians (ms): first contentful paint, and until the jobs table shows every job (first meaningful paint). */
  paint: number;
  jobsShown: number;
  /** The bare page's first contentful paint (ms). */
  baselinePaint: number;
}

/** The libraries alone, as the console's build bundles them (minified, browser, gzip). */
async function librariesGzip(): Promise<number> {
  const result = await build({
    stdin: {
      contents:
        "import { h, render } from 'preact'; import uPlot from 'uplot'; render(h('p', null, String(uPlot)), document.body);",
      resolveDir: REPO_ROOT,
      loader: 'js',
    },
    bundle: true,
    minify: true,
    write: false,
    format: 'esm',
    target: 'es2020',
  });
  return gzipSync(result.outputFiles[0]!.contents).length;
}

export async function benchConsoleLoad(
  consoleUrl: string,
  baselineUrl: string,
  jobs: number,
  runs: number,
): Promise<ConsoleLoad> {
  const built = JSON.parse(
    readFileSync(join(REPO_ROOT, 'services', 'console', 'dist', 'build.json'), 'utf8'),
  ) as {
    js: { gzipBytes: number };
    css: { gzipBytes: number };
  };
  const browser = await launchOffline();
  const paints: number[] = [];
  const shown: number[] = [];
  const baseline: number[] = [];
  // A string, not a function: tsx wraps named inner functions in a helper the page does not have.
  const firstPaint = `new Promise((resolve) => {
    const seen = () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime;
    const poll = () => (seen() === undefined ? requestAnimationFrame(poll) : resolve(seen()));
    poll();
  })`;
  try {
    for (let run = 0; run < runs; run += 1) {
      // A new context each time: nothing cached, as on an operator's first visit.
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      await page.goto(`${baselineUrl}/page`);
      baseline.push(await page.evaluate<number>(firstPaint));
      await page.goto(`${consoleUrl}/`);
      await page.waitForFunction(
        (n) => document.querySelectorAll('table[data-testid="jobs"] tbody tr[data-job-id]').length === n,
        jobs,
        { polling: 'raf' },
      );
      shown.push(await page.evaluate(() => performance.now()));
      paints.push(await page.evaluate<number>(firstPaint));
      await context.close();
    }
    if (browser.external.length > 0)
      throw new Error(`the console reached outside: ${browser.external.join(', ')}`);
  } finally {
    await browser.browser.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return {
    bundleGzip: built.js.gzipBytes + built.css.gzipBytes,
    librariesGzip: await librariesGzip(),
    paint: median(paints),
    jobsShown: median(shown),
    baselinePaint: median(baseline),
  };
}
