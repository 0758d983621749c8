// jest's globalSetup: the services the tests start run the compiled build, as `npm start` runs them, so it is
// made current first (tools/build/start.mjs: built when missing or stale, well under a second with esbuild).
// Started from the sources through tsx instead, each start cost a second or more of transpiling, 64 starts and
// more a run, on a suite that must stay under 20 minutes on two cores.
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

module.exports = function buildOnce() {
  const root = join(__dirname, '..', '..');
  const env = { ...process.env };
  delete env.SNAPCAT_DIST_DIR; // dist/, where startService looks unless a test says otherwise
  const built = spawnSync(process.execPath, [join(root, 'tools', 'build', 'start.mjs')], {
    cwd: root,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (built.status !== 0) throw new Error(`the compiled build failed (exit ${built.status}): npm run build`);
};
