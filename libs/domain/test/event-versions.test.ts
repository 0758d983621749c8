import { z } from 'zod';
import {
  SCHEMA_VERSION_KEY,
  UnreadableEventError,
  currentSchemaVersion,
  readDomainEvent,
  readEvent,
  schemaVersionOf,
  upcast,
  versionedMetadata,
  newerSchemaVersion,
  type UpcasterRegistry,
} from '../src';

const JOB = '0123456789abcdef0123456789abcdef';
const AT = '2026-11-24T10:00:00.000Z';

/**
 * A made-up history, to test the mechanism (snapcat's own are at most at version 2): v1 `path`, v2
 * renamed it `location`, v3 added `bytes` (0 before it was recorded).
 */
const HISTORY: UpcasterRegistry = {
  Moved: [({ path, ...rest }) => ({ ...rest, location: path }), (data) => ({ ...data, bytes: 0 })],
};
const Moved = z.strictObject({ type: z.literal('Moved'), location: z.string(), bytes: z.number() });
const stored = (data: unknown, metadata: Record<string, unknown> = {}) => ({ type: 'Moved', data, metadata });

describe('event schema versions', () => {
  it('a type without upcasters is at version 1; one with N steps at N + 1', () => {
    expect(currentSchemaVersion('JobRegistered')).toBe(1);
    expect(currentSchemaVersion('Moved', HISTORY)).toBe(3);
  });

  it('an event without a version in its metadata is version 1 (written before versions)', () => {
    expect(schemaVersionOf('Moved', {})).toBe(1);
    expect(schemaVersionOf('Moved', { [SCHEMA_VERSION_KEY]: 2 })).toBe(2);
  });

  it.each([0, -1, 1.5, '2', null])('refuses a schema version of %p', (version) => {
    expect(() => schemaVersionOf('Moved', { [SCHEMA_VERSION_KEY]: version })).toThrow(UnreadableEventError);
  });

  it('upcasts from any version through every later step, in order', () => {
    const v3 = { type: 'Moved', location: '/a', bytes: 0 };
    expect(upcast('Moved', 1, { type: 'Moved', path: '/a' }, HISTORY)).toEqual(v3);
    expect(upcast('Moved', 2, { type: 'Moved', location: '/a' }, HISTORY)).toEqual(v3);
    expect(upcast('Moved', 3, { type: 'Moved', location: '/a', bytes: 7 }, HISTORY)).toEqual({
      ...v3,
      bytes: 7,
    });
  });

  it('names the version of an event a newer snapcat wrote: one above its type’s current one, and only that', () => {
    const at = (schemaVersion: unknown) => ({
      type: 'Moved',
      metadata: { [SCHEMA_VERSION_KEY]: schemaVersion },
    });
    expect(newerSchemaVersion(at(4), HISTORY)).toBe(4);
    expect(newerSchemaVersion(at(3), HISTORY)).toBeUndefined();
    expect(newerSchemaVersion(at(1), HISTORY)).toBeUndefined();
    expect(newerSchemaVersion({ type: 'Moved', metadata: {} }, HISTORY)).toBeUndefined(); // before versions
    expect(newerSchemaVersion(at('4'), HISTORY)).toBeUndefined(); // not a version: readEvent says why
    expect(newerSchemaVersion({ type: 'SnapshotTriggered', metadata: { [SCHEMA_VERSION_KEY]: 3 } })).toBe(3);
  });

  it('an unreadable event says whether a newer snapcat wrote it, or it does not fit its version', () => {
    expect(new UnreadableEventError('SnapshotTriggered', 3, 'newer').writtenByNewer).toBe(true);
    expect(new UnreadableEventError('SnapshotTriggered', 2, 'bad shape').writtenByNewer).toBe(false);
    expect(new UnreadableEventError('SnapshotTriggered', '3', 'not a version').writtenByNewer).toBe(false);
  });

  it('refuses an event of a version newer than it knows (written by a newer snapcat)', () => {
    expect(() => upcast('Moved', 4, {}, HISTORY)).toThrow(/reads up to version 3/);
    expect(() => upcast('JobRegistered', 2, {})).toThrow(UnreadableEventError);
  });

  it('readEvent upcasts then validates, naming the field that does not fit', () => {
    expect(readEvent(Moved, stored({ type: 'Moved', path: '/a' }), HISTORY)).toEqual({
      type: 'Moved',
      location: '/a',
      bytes: 0,
    });
    // Stored as version 3 but of version 1's shape: not upcast, so invalid.
    expect(() =>
      readEvent(Moved, stored({ type: 'Moved', path: '/a' }, { schemaVersion: 3 }), HISTORY),
    ).toThrow(/Moved \(schema version 3\): location/);
  });

  describe('readDomainEvent', () => {
    const status = { type: 'JobStatusChanged', jobId: JOB, occurredAt: AT, from: 'RUNNING', to: 'FAILING' };

    it('gives an event at its current version as stored (validated when it was decided)', () => {
      const data = { ...status };
      expect(readDomainEvent({ type: data.type, data, metadata: { schemaVersion: 1 } })).toBe(data);
      expect(readDomainEvent({ type: data.type, data, metadata: {} })).toBe(data);
    });

    it('parses in full an event that is not shaped as one: the error names the field', () => {
      const data = { ...status, jobId: 42 };
      expect(() => readDomainEvent({ type: data.type, data, metadata: {} })).toThrow(/jobId/);
      expect(() => readDomainEvent({ type: 'SomethingElse', data: status, metadata: {} })).toThrow(
        UnreadableEventError,
      );
    });

    it('refuses a job event of a version this snapcat does not know', () => {
      expect(() =>
        readDomainEvent({ type: status.type, data: status, metadata: { schemaVersion: 2 } }),
      ).toThrow(/reads up to version 1/);
    });
  });

  describe('versionedMetadata', () => {
    it('adds the current version to the writer metadata, leaving it as it was', () => {
      const writer = { $correlationId: 'req-1', actor: 'ops' };
      expect(versionedMetadata('JobRegistered', writer)).toEqual({ ...writer, schemaVersion: 1 });
      expect(writer).toEqual({ $correlationId: 'req-1', actor: 'ops' });
      expect(versionedMetadata('ClusterRemoved')).toEqual({ schemaVersion: 1 });
    });

    it('gives the events of one command one metadata object per version, as before versions', () => {
      const writer = { actor: 'ops' };
      expect(versionedMetadata('SnapshotCompleted', writer)).toBe(
        versionedMetadata('TaskAcknowledged', writer),
      );
      expect(versionedMetadata('SnapshotTriggered', writer)).toEqual({ actor: 'ops', schemaVersion: 2 });
      expect(versionedMetadata('SnapshotTriggered', writer)).toBe(
        versionedMetadata('SnapshotTriggered', writer),
      );
    });
  });
});

describe('what an unreadable event says', () => {
  const registered = {
    type: 'JobStatusChanged',
    jobId: JOB,
    occurredAt: AT,
    from: 'CREATED',
    to: 'RUNNING',
  };
  const read =
    (type: string, data: unknown, metadata: Record<string, unknown> = {}) =>
    () =>
      readDomainEvent({ type, data, metadata });
  const message = (run: () => unknown): string => {
    try {
      run();
    } catch (error) {
      expect(error).toBeInstanceOf(UnreadableEventError);
      expect((error as Error).name).toBe('UnreadableEventError');
      return (error as Error).message;
    }
    throw new Error('read without an error');
  };

  it('a current event passes the quick check only when it is an object of the type it is stored under', () => {
    expect(readDomainEvent({ type: 'JobStatusChanged', data: registered, metadata: {} })).toBe(registered);
    expect(message(read('JobStatusChanged', null))).toMatch(
      /^event JobStatusChanged \(schema version 1\): data: /,
    );
    expect(message(read('JobStatusChanged', 'text'))).toMatch(
      /^event JobStatusChanged \(schema version 1\): data: /,
    );
    expect(message(read('JobRegistered', registered))).toBe(
      'event JobRegistered (schema version 1): its data is of type JobStatusChanged',
    );
    expect(() => read('JobStatusChanged', { ...registered, occurredAt: Date.parse(AT) })()).toThrow(
      /^event JobStatusChanged \(schema version 1\): occurredAt: /,
    );
  });

  it('names the field at fault by its path, and a version that is no positive integer', () => {
    const { jobId: _jobId, ...withoutJob } = registered;
    expect(message(read('JobStatusChanged', withoutJob))).toMatch(
      /^event JobStatusChanged \(schema version 1\): jobId: /,
    );
    const Nested = z.strictObject({ type: z.literal('Nested'), inner: z.strictObject({ x: z.number() }) });
    expect(
      message(() =>
        readEvent(Nested, { type: 'Nested', data: { type: 'Nested', inner: { x: 'a' } }, metadata: {} }),
      ),
    ).toMatch(/^event Nested \(schema version 1\): inner\.x: /);
    expect(message(read('JobStatusChanged', registered, { [SCHEMA_VERSION_KEY]: 0 }))).toBe(
      'event JobStatusChanged (schema version 0): its schema version is not a positive integer',
    );
  });
});
