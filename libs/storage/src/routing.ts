import {
  LocationRefusedError,
  type DeletionRequest,
  type RootClaim,
  type SnapshotStorage,
  type StateFileRefusal,
  type StoredFile,
} from './port';
import { S3_SCHEME } from './s3';

/**
 * Local roots and s3:// roots side by side (`SNAPCAT_STORAGE_ROOTS` may list both): each location goes to
 * the storage of its scheme, and a request that names both is split between them.
 */
export class RoutingSnapshotStorage implements SnapshotStorage {
  constructor(
    private readonly local: SnapshotStorage | undefined,
    private readonly s3: SnapshotStorage | undefined,
  ) {
    if (!local && !s3) throw new Error('at least one storage root is required');
  }

  async measure(request: DeletionRequest): Promise<number> {
    let bytes = 0;
    for (const [storage, part] of this.split(request)) bytes += await storage.measure(part);
    return bytes;
  }

  async remove(request: DeletionRequest): Promise<number> {
    let bytes = 0;
    for (const [storage, part] of this.split(request)) bytes += await storage.remove(part);
    return bytes;
  }

  async deletionCaveats(): Promise<string[]> {
    return (await this.s3?.deletionCaveats?.()) ?? [];
  }

  holdsFiles(location: string): Promise<boolean> {
    return this.storageOf(location).holdsFiles(location);
  }

  writeManifest(directory: string, manifest: unknown): Promise<string> {
    return this.storageOf(directory).writeManifest(directory, manifest);
  }

  spelledWithinRoots(location: string): boolean {
    const storage = S3_SCHEME.test(location) ? this.s3 : this.local;
    return storage ? storage.spelledWithinRoots(location) : false;
  }

  async whyNotStateFile(location: string): Promise<StateFileRefusal | undefined> {
    const storage = S3_SCHEME.test(location) ? this.s3 : this.local;
    if (storage) return storage.whyNotStateFile(location);
    return { rule: 'within-storage-roots', message: 'must lie inside the configured storage roots' };
  }

  async isWithinRoots(location: string): Promise<boolean> {
    const storage = S3_SCHEME.test(location) ? this.s3 : this.local;
    return storage ? storage.isWithinRoots(location) : false;
  }

  async *listFiles(under?: string): AsyncGenerator<StoredFile> {
    if (under !== undefined) return yield* this.storageOf(under).listFiles(under);
    for (const storage of [this.local, this.s3]) if (storage) yield* storage.listFiles();
  }

  async claimRoots(catalogue: string, options?: { evenIfNotEmpty?: boolean }): Promise<RootClaim[]> {
    const parts = [this.local, this.s3].filter((storage) => storage !== undefined);
    return (await Promise.all(parts.map((storage) => storage.claimRoots(catalogue, options)))).flat();
  }

  claimIn(directory: string): Promise<RootClaim | undefined> {
    return this.storageOf(directory).claimIn(directory);
  }

  private storageOf(location: string): SnapshotStorage {
    const s3 = S3_SCHEME.test(location);
    const storage = s3 ? this.s3 : this.local;
    if (!storage) {
      throw new LocationRefusedError(location, `no ${s3 ? 's3://' : 'local'} storage root is configured`);
    }
    return storage;
  }

  /** The request's parts by storage (kept locations go to every part: they only ever narrow a deletion). */
  private split(request: DeletionRequest): [SnapshotStorage, DeletionRequest][] {
    const parts = new Map<SnapshotStorage, DeletionRequest>();
    const part = (location: string) => {
      const storage = this.storageOf(location);
      let found = parts.get(storage);
      if (!found) {
        found = { locations: [], stateHandles: [], keep: request.keep ?? [] };
        parts.set(storage, found);
      }
      return found;
    };
    for (const location of request.locations) part(location).locations.push(location);
    for (const handle of request.stateHandles) part(handle.path).stateHandles.push(handle);
    return [...parts];
  }
}
