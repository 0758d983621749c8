// `npm ci` / `npm install` run this (the root package's `prepare`): it bundles the web console
// (services/console/build.mjs) into services/console/dist, which the API serves at `/`.
//
// Two installs have nothing to build from, and say so instead of failing: a production install
// (`npm ci --omit=dev`: no esbuild, Preact or uPlot), and the Dockerfile's install from the package manifests
// alone (no sources yet); there the image's build stage bundles the console with `npm run build`.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(root, 'services', 'console', 'build.mjs');
const require = createRequire(join(root, 'package.json'));
const resolvable = (name) => {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
};

if (!existsSync(script)) {
  console.log('prepare: no console sources here (an install from the manifests alone): console not built');
} else if (!['esbuild', 'preact', 'uplot'].every(resolvable)) {
  console.log('prepare: a production install (no devDependencies): console not built');
} else {
  const { buildConsole } = await import(pathToFileURL(script).href);
  await buildConsole();
}
