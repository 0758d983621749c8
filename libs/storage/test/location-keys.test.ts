import fc from 'fast-check';
import { normaliseLocation } from '@snapcat/domain';
import { LocalSnapshotStorage, LocationRefusedError } from '../src';
import { propertyRuns } from '../../domain/test/property-runs';

/**
 * The catalogue keys a location by normaliseLocation (the registry, the namespace and other-job checks);
 * the storage deletes LocalSnapshotStorage.toPath of the same string. They must name the same path, or a
 * location could pass the checks as one path and delete another.
 */
describe('a file location means one path to the catalogue and to the storage', () => {
  const storage = new LocalSnapshotStorage(['/']);
  const sameOrRefused = (location: string) => {
    let path: string;
    try {
      path = storage.toPath(location);
    } catch (error) {
      if (error instanceof LocationRefusedError) return; // nothing is deleted there
      throw error;
    }
    expect(normaliseLocation(location)).toBe(path);
  };

  it.each([
    ['a fragment', 'file:///data/nsB#/../../../data/nsA/chk', '/data/nsB'],
    ['a query', 'file:///r/job/shared/sst?x=../../other', '/r/job/shared/sst'],
    ['backslashes', 'file:///ns-a/j/x\\..\\..\\..\\ns-b\\job\\shared\\sst', '/ns-b/job/shared/sst'],
    ['a trailing space', 'file:///r/job/shared/sst ', '/r/job/shared/sst'],
    ['a drive letter kept through ..', 'file:///C:/../data', '/C:/data'],
    ['a pipe for a drive letter', 'file:///C|/data', '/C:/data'],
    ['an empty segment before ..', 'file:///data/nsA/x//../../nsB', '/data/nsA/nsB'],
    ['a dot segment escaped beside a malformed escape', 'file:///data/%zz/%2E%2e', '/data'],
    ['Flink’s own form', 'file:/tmp/flink/chk-1/4f1c-0a9e', '/tmp/flink/chk-1/4f1c-0a9e'],
  ])('%s: %s is %s to both', (_what, location, path) => {
    expect(normaliseLocation(location)).toBe(path);
    expect(storage.toPath(location)).toBe(path);
  });

  it('for any file: URI or absolute path the storage accepts', () => {
    const piece = fc.constantFrom(
      ...['a', 'b', 'shared', '.', '..', '%2e', '%2E%2e', '%20', '%25', '%zz', '#', '?', '\\', ' ', ':', '|'],
      ...['C:', '\t', '\n', '//', '~', '@', ';', '%41', 'é', '[', ']', '%5C', '%2F', '\u0000'],
    );
    const path = fc.array(fc.oneof(piece, fc.constant('/')), { maxLength: 14 }).map((p) => p.join(''));
    const prefix = fc.constantFrom('file:', 'file:/', 'file://', 'file:///', 'file://localhost/', '/');
    fc.assert(
      fc.property(prefix, path, (start, rest) => sameOrRefused(start + rest)),
      propertyRuns(),
    );
  });
});
