// `npm run build`: plain JavaScript under dist/, run with `node --enable-source-maps` (no tsx). esbuild bundles
// each entry point with the workspace libraries (@snapcat/*) inlined and every npm package left external, to be
// required from the production node_modules. See docs/decisions/0013-compiled-build.md.
//
// dist/ mirrors the sources (dist/services/server/src/main.js for services/server/src/main.ts), so that a path
// an entry point builds from its own __dirname (services/server/src/files.ts: ../../../schema/catalog.graphql)
// resolves inside dist/, where the build copies the runtime files. The build fails when:
// - an npm package the bundle requires is not a production dependency of the root package.json (a
//   `npm ci --omit=dev` install would not have it), or is tsx;
// - an inlined library file uses __dirname, __filename or import.meta (it would see the bundle's directory).
// Last, it records what it was built from (tools/build/inputs.mjs), for `npm start` to rebuild when that changes.
// SNAPCAT_DIST_DIR builds elsewhere than dist/ (inside the repository, where the npm packages resolve).
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { ROOT as root, distDir, recordInputs } from './inputs.mjs';

const out = distDir();

export const ENTRY_POINTS = [
  'services/server/src/main.ts',
  'services/workers/src/main.ts',
  'services/projector/src/main.ts',
  'services/cli/src/main.ts',
];
/** Files read at run time, relative to the repository root; copied to the same place under dist/. */
export const RUNTIME_FILES = ['schema/catalog.graphql'];
/**
 * Plain JavaScript files a library starts as worker threads by `require.resolve('./<name>')`: in a bundle that
 * resolves beside the bundle, so each is copied into every entry point's directory under dist/.
 */
export const THREAD_FILES = ['libs/event-store/src/sqlite-writer-thread.cjs'];

const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const productionDependencies = new Set(Object.keys(rootPackage.dependencies ?? {}));
const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);
/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
const packageName = (specifier) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

const problems = [];
const externalNpm = {
  name: 'external-npm-packages',
  setup(esbuild) {
    // Bare specifiers: workspace libraries are bundled from source, everything else stays a require().
    esbuild.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (builtins.has(args.path) || args.path.startsWith('node:'))
        return { path: args.path, external: true };
      const name = packageName(args.path);
      if (name.startsWith('@snapcat/')) return undefined;
      const from = relative(root, args.importer);
      if (name === 'tsx') problems.push(`${from} imports tsx: the compiled build must not need it`);
      else if (!productionDependencies.has(name) && !args.path.startsWith('@types/')) {
        problems.push(`${from} imports ${name}, which is not in package.json "dependencies"`);
      }
      return { path: args.path, external: true };
    });
    // A thread's file (THREAD_FILES) is started, not bundled.
    esbuild.onResolve({ filter: /^\./ }, (args) => {
      if (args.kind !== 'require-resolve') return undefined;
      const file = relative(root, join(args.resolveDir, args.path));
      if (!THREAD_FILES.includes(file))
        problems.push(`${relative(root, args.importer)} resolves ${file}, not in THREAD_FILES`);
      return { path: args.path, external: true };
    });
  },
};

const started = Date.now();
rmSync(out, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ENTRY_POINTS,
  outdir: out,
  outbase: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  // No comments nor indentation in the bundle (stack traces map through the source map): a source V8 keeps
  // for lazy compilation is then ASCII, one byte a character, where one em dash in a kept JSDoc comment made
  // the whole server bundle two bytes a character (1.5 MB of heap instead of 0.6; BENCHMARKS.md #17).
  charset: 'ascii',
  minifyWhitespace: true,
  sourcesContent: false,
  keepNames: true,
  metafile: true,
  logLevel: 'warning',
  plugins: [externalNpm],
});

for (const [output, { entryPoint, inputs }] of Object.entries(result.metafile.outputs)) {
  if (!entryPoint) continue;
  for (const input of Object.keys(inputs)) {
    if (input.includes('node_modules/') || dirname(input) === dirname(entryPoint)) continue;
    const text = readFileSync(join(root, input), 'utf8');
    if (/\b(__dirname|__filename|import\.meta)\b/.test(text.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''))) {
      problems.push(`${input} (in ${output}) uses __dirname/__filename/import.meta, which would name dist/`);
    }
  }
}
if (problems.length > 0) {
  console.error(`npm run build: refused\n${[...new Set(problems)].map((p) => `  ${p}`).join('\n')}`);
  process.exit(1);
}

for (const file of RUNTIME_FILES) {
  mkdirSync(dirname(join(out, file)), { recursive: true });
  cpSync(join(root, file), join(out, file));
}
for (const entry of ENTRY_POINTS) {
  for (const file of THREAD_FILES) cpSync(join(root, file), join(out, dirname(entry), basename(file)));
}
// The web console, bundled afresh where the server's compiled code looks for it (services/server/src/files.ts).
const { buildConsole } = await import('../../services/console/build.mjs');
const consoleBuild = await buildConsole({ outDir: join(out, 'services', 'console', 'dist') });
// The bundles are CommonJS whatever the root package.json's "type" says.
writeFileSync(join(out, 'package.json'), `${JSON.stringify({ type: 'commonjs', private: true }, null, 2)}\n`);

const sources = [...Object.keys(result.metafile.inputs), ...consoleBuild.inputs].filter(
  (file) => !file.includes('node_modules/'),
);
/** A workspace's package.json and tsconfig.json steer how esbuild resolves and compiles its sources. */
const workspaceFiles = [...new Set(sources.map((file) => file.split('/').slice(0, 2).join('/')))]
  .flatMap((workspace) => [`${workspace}/package.json`, `${workspace}/tsconfig.json`])
  .filter((file) => existsSync(join(root, file)));
recordInputs(out, [
  ...sources,
  ...workspaceFiles,
  ...RUNTIME_FILES,
  ...THREAD_FILES,
  'tools/build/build.mjs',
  'tools/build/inputs.mjs',
  'services/console/build.mjs',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.base.json',
]);

const bytes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .map(([file, { bytes }]) => `${relative(root, join(root, file))} ${(bytes / 1024).toFixed(0)} KiB`);
console.log(`npm run build: ${bytes.join(', ')} (${Date.now() - started} ms)`);
