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
  type UpcasterRegistry,
} from '../src';

const JOB = '0123456789abcdef0123456789abcdef';
const AT = '2026-11-24T10:00:00.000Z';

/**
 * A made-up history, to test the mechanism (snapcat's own events are all at version 1): v1 `path`, v2
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

    it('gives the events of one command one metadata object, as before versions', () => {
      const writer = { actor: 'ops' };
      expect(versionedMetadata('SnapshotTriggered', writer)).toBe(
        versionedMetadata('TaskAcknowledged', writer),
      );
    });
  });
});
