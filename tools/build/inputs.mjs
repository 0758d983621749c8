// What a build of dist/ was made from, and whether the tree still matches it (docs/decisions/0013-compiled-build.md).
//
// tools/build/build.mjs records, last of all, every file the build read (each bundle's workspace sources from
// esbuild's metafile, the web console's, the runtime files, the build scripts, the workspaces' package.json, the root
// package.json and the lockfile) with the SHA-256 of its content, in <dist>/build-inputs.json. tools/build/start.mjs
// (`npm start`) rebuilds when that record is missing (no build, or one that did not finish) or when any recorded
// file is gone or its content differs. Content, not mtimes: git sets a checked-out file's mtime to the checkout's
// time and cp/tar/rsync -a keep old ones, so an mtime says neither that a file changed nor that it did not.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RECORD = 'build-inputs.json';

/** Where the build writes and `npm start` runs from: SNAPCAT_DIST_DIR (relative to the repository root), or dist/. */
export const distDir = (env = process.env) => resolve(ROOT, env.SNAPCAT_DIST_DIR || 'dist');

const hash = (file) =>
  createHash('sha256')
    .update(readFileSync(join(ROOT, file)))
    .digest('hex');

/** Writes the record of `files` (relative to the repository root) into `out`. */
export function recordInputs(out, files) {
  const inputs = Object.fromEntries([...new Set(files)].sort().map((file) => [file, hash(file)]));
  writeFileSync(join(out, RECORD), `${JSON.stringify({ inputs }, null, 2)}\n`);
}

/** Why the build in `out` does not match the tree (a short phrase), or undefined when it does. */
export function staleness(out) {
  const record = join(out, RECORD);
  if (!existsSync(record)) return 'no complete build yet';
  const { inputs } = JSON.parse(readFileSync(record, 'utf8'));
  for (const [file, digest] of Object.entries(inputs)) {
    if (!existsSync(join(ROOT, file))) return `${file} is gone since the last build`;
    if (hash(file) !== digest) return `${file} changed since the last build`;
  }
  return undefined;
}
