import type { SnapshotStorage } from '@snapcat/storage';
import { Problem } from './problem';

/** Refuses a directory outside the storage roots: nothing outside them may ever be written or deleted. */
export async function requireWithinRoots(
  storage: SnapshotStorage,
  location: string | undefined,
  field: string,
): Promise<void> {
  if (location === undefined || (await storage.isWithinRoots(location))) return;
  throw new Problem(
    400,
    'invalid-request',
    'Invalid request',
    `${field}: must lie inside the storage roots`,
    [{ field, rule: 'within-storage-roots', message: 'must lie inside the configured storage roots' }],
  );
}
