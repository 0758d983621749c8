/** Storage layout (docs/domain.md R14): <checkpointDir>/<jobId>/chk-<id>, <savepointDir>/<jobId>/savepoint-<id>-<suffix>. */
export function checkpointPath(checkpointDir: string, jobId: string, snapshotId: number): string {
  return `${trimSlash(checkpointDir)}/${jobId}/chk-${snapshotId}`;
}

export function savepointPath(savepointDir: string, jobId: string, snapshotId: number, seed: string): string {
  return `${trimSlash(savepointDir)}/${jobId}/savepoint-${snapshotId}-${suffix(seed)}`;
}

function trimSlash(dir: string): string {
  return dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
}

/** 12 hex characters derived from the seed (FNV-1a, 64 bit): deterministic, so replay gives the same path. */
function suffix(seed: string): string {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < seed.length; i += 1) {
    hash ^= BigInt(seed.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, '0').slice(0, 12);
}
