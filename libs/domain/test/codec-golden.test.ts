import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  STATE_CODEC_VERSION,
  decodeState,
  encodeState,
  initialState,
  snapshotRecord,
  type EncodedJobState,
} from '../src';
import { FULL_JOB_ID, fullJobState, fullSnapshot } from './full-state';

// Decision 0023: every field of the state survives each copy and the aggregate codec, and the encoding of
// this codec version is pinned by a golden file.

const GOLDEN = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'aggregate');
const goldenState = (version: number): EncodedJobState =>
  JSON.parse(readFileSync(join(GOLDEN, `state.v${version}.json`), 'utf8'));
const throughJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));
/** Its fields by name, to look each up. */
const fieldsOf = (value: object): Record<string, unknown> => ({ ...value });

describe('the full state the codec tests use', () => {
  it('gives every field of a snapshot a value', () => {
    for (const [field, value] of Object.entries(fullSnapshot())) {
      expect({ field, value }).toEqual({ field, value: expect.anything() });
    }
  });

  it('gives every field of a job state a value other than a new job’s', () => {
    const initial = fieldsOf(initialState(FULL_JOB_ID));
    for (const [field, value] of Object.entries(fullJobState())) {
      if (field === 'jobId') continue;
      expect({ field, value }).not.toEqual({ field, value: initial[field] });
    }
  });
});

describe('snapshotRecord', () => {
  it('carries every field of the snapshot', () => {
    const full = fullSnapshot();
    const record = fieldsOf(snapshotRecord(full));
    expect(Object.keys(record).sort()).toEqual(Object.keys(full).sort());
    for (const [field, value] of Object.entries(full)) {
      expect({ field, value: record[field] }).toEqual({ field, value });
    }
  });
});

describe('aggregate codec', () => {
  it('carries every field of the job state through encodeState, JSON and decodeState', () => {
    const full = fullJobState();
    const state = decodeState(throughJson(encodeState(full)));
    expect(state).not.toBeNull();
    const decoded = fieldsOf(state!);
    expect(Object.keys(decoded).sort()).toEqual(Object.keys(full).sort());
    for (const [field, value] of Object.entries(full)) {
      expect({ field, value: decoded[field] }).toEqual({ field, value });
    }
  });

  it(`encodes the full state as its golden file of codec version ${STATE_CODEC_VERSION} says`, () => {
    // Missing: STATE_CODEC_VERSION was bumped; write the new golden file (decision 0023).
    const golden = goldenState(STATE_CODEC_VERSION);
    expect(golden.codecVersion).toBe(STATE_CODEC_VERSION);
    expect(throughJson(encodeState(fullJobState()))).toEqual(golden);
    expect(decodeState(golden)).toEqual(fullJobState());
  });

  it('ignores an encoding of another codec version: the job is folded from its events instead', () => {
    const golden = goldenState(STATE_CODEC_VERSION);
    expect(decodeState({ ...golden, codecVersion: STATE_CODEC_VERSION - 1 })).toBeNull();
    expect(decodeState({ ...golden, codecVersion: STATE_CODEC_VERSION + 1 })).toBeNull();
  });
});
