// `npm ci` / `npm install` run this (the root package's `prepare`): it bundles the web console
// (services/console/build.mjs) into services/console/dist, which the API serves at `/` when it runs from the
// sources (`npm run dev`), then builds dist/ (tools/build/build.mjs, about 2 s), which `npm start` runs.
//
// Two installs have nothing to build from, and say so instead of failing: a production install
// (`npm ci --omit=dev`: no esbuild, Preact or uPlot), and the Dockerfile's install from the package manifests
// alone (no sources yet); there the image's build stage runs `npm run build`. A build that fails fails the install.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(root, 'services', 'console', 'build.mjs');
const build = join(root, 'tools', 'build', 'build.mjs');
const require = createRequire(join(root, 'package.json'));
const resolvable = (name) => {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
};

if (![script, build].every((file) => existsSync(file))) {
  console.log(
    'prepare: no sources here (an install from the manifests alone): neither the console nor dist/ built',
  );
} else if (!['esbuild', 'preact', 'uplot'].every(resolvable)) {
  console.log('prepare: a production install (no devDependencies): neither the console nor dist/ built');
} else {
  const { buildConsole } = await import(pathToFileURL(script).href);
  await buildConsole();
  await import(pathToFileURL(build).href);
}
