// `npm start` and `npm run start:*` run tools/build/run.sh, which runs this script and then `exec node
// --enable-source-maps <dist>/…/main.js` (production mode and two malloc arenas unless the operator says otherwise,
// as in the Dockerfile; decision 0029 for the arenas).
// This script only makes sure the compiled build is there and matches the tree (tools/build/inputs.mjs); it
// builds with tools/build/build.mjs, saying so in one line on stderr, when the build is missing or stale, and
// exits non-zero with the build's own error when that fails. The shell then replaces itself with node on the
// compiled entry point: no process sits between npm and the service, so SIGTERM/SIGINT reach the service and
// its exit code is npm's. <dist> is SNAPCAT_DIST_DIR or dist/ (run.sh says the same).
// See docs/decisions/0013-compiled-build.md; `npm run dev` runs the sources through tsx instead.
import { spawnSync } from 'node:child_process';
import { relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, distDir, staleness } from './inputs.mjs';

const out = distDir();
const reason = staleness(out);
if (reason !== undefined) {
  const where = out.startsWith(`${ROOT}${sep}`) ? relative(ROOT, out) : out;
  process.stderr.write(`npm start: building ${where}/ (${reason}): npm run build\n`);
  // The build's report and errors go to stderr: the service's stdout stays its JSON log lines.
  const build = spawnSync(process.execPath, [fileURLToPath(new URL('build.mjs', import.meta.url))], {
    cwd: ROOT,
    stdio: ['ignore', 2, 2],
  });
  if (build.status !== 0) {
    const how = build.error?.message ?? (build.signal ? `signal ${build.signal}` : `exit ${build.status}`);
    process.stderr.write(`npm start: the build failed (${how}); nothing started\n`);
    process.exit(build.status || 1);
  }
}
