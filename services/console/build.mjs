// The web console (issue 21): bundles src/main.tsx (Preact + uPlot, and the stylesheets it imports) with esbuild
// into content-hashed files under dist/assets/, and writes dist/index.html naming them. `npm ci` runs it through
// the root package's `prepare` (tools/build/prepare.mjs); `npm run build` runs it into dist/services/console/dist.
// The page has no inline script or style: the API serves it with `script-src 'self'` (services/api/src/console.ts).
//
//   node services/console/build.mjs    → services/console/dist, and one line with the sizes
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_OUT_DIR = join(here, 'dist');

/** The page: the hashed stylesheet and module script, by absolute path (the API serves them at /assets/). */
const page = ({ js, css }) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="color-scheme" content="light dark" />
    <meta name="referrer" content="no-referrer" />
    <title>snapcat console</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${css}" />
    <script type="module" src="${js}"></script>
  </head>
  <body>
    <div id="app"></div>
    <noscript>The snapcat console needs JavaScript. The REST API is at /api/v1 and GraphQL at /graphql.</noscript>
  </body>
</html>
`;

/**
 * Builds the console into `outDir` (emptied first). Resolves to what dist/build.json holds: the asset URLs
 * and their sizes, raw and gzipped; and `inputs`, the files it read, relative to the repository root.
 */
export async function buildConsole({ outDir = DEFAULT_OUT_DIR, minify = true } = {}) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    absWorkingDir: here,
    entryPoints: [join(here, 'src', 'main.tsx')],
    outdir: outDir,
    entryNames: 'assets/[name]-[hash]',
    assetNames: 'assets/[name]-[hash]',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => join(here, file));
  const asset = (extension) => {
    const file = outputs.find((f) => f.endsWith(extension));
    if (!file) throw new Error(`console build: no ${extension} output`);
    const bytes = readFileSync(file);
    return {
      file: `/${relative(outDir, file).split(sep).join('/')}`,
      bytes: bytes.length,
      gzipBytes: gzipSync(bytes, { level: 9 }).length,
    };
  };
  const manifest = { js: asset('.js'), css: asset('.css') };
  writeFileSync(join(outDir, 'index.html'), page({ js: manifest.js.file, css: manifest.css.file }));
  writeFileSync(join(outDir, 'build.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const root = join(here, '..', '..');
  const inputs = Object.keys(result.metafile.inputs).map((file) =>
    relative(root, join(here, file)).split(sep).join('/'),
  );
  return { ...manifest, inputs };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = Date.now();
  const { js, css } = await buildConsole();
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const size = (a) => `${a.file} ${kib(a.bytes)} (${kib(a.gzipBytes)} gzip)`;
  console.log(
    `console: ${size(js)}, ${size(css)} in ${relative(process.cwd(), DEFAULT_OUT_DIR) || '.'} (${Date.now() - started} ms)`,
  );
}
