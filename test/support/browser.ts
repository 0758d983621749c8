import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it), or SNAPCAT_CHROMIUM. */
export const CHROMIUM = process.env.SNAPCAT_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Headless Chromium as on an air-gapped machine: no background networking, no component updates, and every
 * request to a host other than the service's refused and recorded, so a test can assert that the page never
 * reached for the internet (a CDN, fonts, telemetry).
 */
export async function launchOffline(): Promise<{
  browser: Browser;
  newContext(options?: Parameters<Browser['newContext']>[0]): Promise<BrowserContext>;
  /** The requests that went (or tried to go) anywhere but 127.0.0.1. */
  external: string[];
}> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set SNAPCAT_CHROMIUM`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
  const external: string[] = [];
  return {
    browser,
    external,
    async newContext(options) {
      const context = await browser.newContext(options);
      await context.route('**/*', (route) => {
        const url = new URL(route.request().url());
        if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'blob:') {
          return route.continue();
        }
        external.push(route.request().url());
        return route.abort('internetdisconnected');
      });
      return context;
    },
  };
}
