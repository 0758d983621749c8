import { randomUUID } from 'node:crypto';
import {
  decodeState,
  encodeState,
  versionedMetadata,
  type EncodedJobState,
  type JobState,
} from '@snapcat/domain';
import { newEventId, type EventStore, type RecordedEvent } from '@snapcat/event-store';
import { aggregateStream } from './streams';

// Decision 0003. An aggregate snapshot is one `AggregateSnapshot` event, unless the store limits an append
// (EventStoreDB's MaxAppendSize) and the encoded state is over it: then its JSON text is cut into
// `AggregateSnapshotPart` events, appended one after another, each expecting the revision the one before
// got, so the parts of one snapshot are consecutive in the stream. A reader takes a snapshot only when it
// finds all its parts; a part without the rest (a write cut short, or still going on) is passed over.

const SNAPSHOT = 'AggregateSnapshot';
const PART = 'AggregateSnapshotPart';
/** At most this many parts: beyond, the snapshot is skipped (the job loads from its events, and slower). */
export const MAX_AGGREGATE_SNAPSHOT_PARTS = 16;
/**
 * The events a job's side stream keeps (its `$maxCount`): a cold start needs the newest whole snapshot, a
 * reader of an older revision (the projector reloading, `stateAt`) one at or below it, else it folds. Two
 * snapshots of the most parts, so that the newest whole one is always kept even after a write cut short.
 */
export const AGGREGATE_STREAM_MAX_COUNT = 2 * MAX_AGGREGATE_SNAPSHOT_PARTS;
/** What an entry of the aggregate weighs in JSON at the least (a one-letter task id: `"a",`). */
const MIN_ENTRY_BYTES = 4;
/** Room for the part's own fields and its event type, counted by the store with the text. */
const PART_OVERHEAD = 1024;
/** How many events a reader looks at, newest first, for a complete snapshot at or below its revision. */
const MAX_LOOKED = 40;

interface AggregateSnapshot {
  revision: string;
  state: EncodedJobState;
}

interface AggregateSnapshotPart {
  /** The snapshot the part belongs to (one id for all its parts). */
  snapshot: string;
  revision: string;
  part: number;
  parts: number;
  /** A slice of the encoded state's JSON text; the parts' slices joined in order are the whole. */
  text: string;
}

/** The aggregate is more than the store takes in MAX_AGGREGATE_SNAPSHOT_PARTS appends: not written. */
export class AggregateSnapshotTooLargeError extends Error {
  constructor(
    readonly jobId: string,
    /** The encoded state's size, when it was encoded (not when its entries alone rule it out). */
    readonly bytes: number | undefined,
    readonly maxAppendBytes: number,
  ) {
    super(
      `job ${jobId}: aggregate snapshot skipped, ` +
        (bytes === undefined ? 'its entries alone weigh' : `${bytes} bytes,`) +
        ` more than ${MAX_AGGREGATE_SNAPSHOT_PARTS} appends of ${maxAppendBytes} bytes; the job loads from its events`,
    );
    this.name = 'AggregateSnapshotTooLargeError';
  }
}

/**
 * Writes the job's state at `revision` to its aggregate stream; answers how many events it took (1, or its
 * parts). The state is encoded before the first await, so later changes to the writer do not leak in.
 * `weight` (entries the state holds) rules out a hopeless snapshot without encoding it.
 */
export async function writeAggregateSnapshot(
  store: EventStore,
  jobId: string,
  revision: bigint,
  state: JobState,
  weight: number,
): Promise<number> {
  const stream = aggregateStream(jobId);
  const limit = store.maxAppendBytes;
  if (limit !== undefined && weight * MIN_ENTRY_BYTES > MAX_AGGREGATE_SNAPSHOT_PARTS * limit) {
    throw new AggregateSnapshotTooLargeError(jobId, undefined, limit);
  }
  const data: AggregateSnapshot = { revision: revision.toString(), state: encodeState(state) };
  // The envelope's version; what the state means is versioned apart, by its codecVersion (decision 0023).
  const metadata = versionedMetadata(SNAPSHOT);
  const single = () => store.append(stream, [{ id: newEventId(), type: SNAPSHOT, data, metadata }], 'any');
  if (limit === undefined) return single().then(() => 1);
  let text: string;
  try {
    text = JSON.stringify(data.state);
  } catch (error) {
    // V8 cannot hold a string this long (~512 MB): far over any number of appends.
    if (error instanceof RangeError) throw new AggregateSnapshotTooLargeError(jobId, undefined, limit);
    throw error;
  }
  const bytes = Buffer.byteLength(text);
  if (bytes + PART_OVERHEAD <= limit) return single().then(() => 1);
  const slices = sliceJson(text, limit - PART_OVERHEAD);
  if (slices.length > MAX_AGGREGATE_SNAPSHOT_PARTS)
    throw new AggregateSnapshotTooLargeError(jobId, bytes, limit);
  const snapshot = randomUUID();
  let expected: 'any' | bigint = 'any';
  for (const [part, slice] of slices.entries()) {
    const partData: AggregateSnapshotPart = {
      snapshot,
      revision: data.revision,
      part,
      parts: slices.length,
      text: slice,
    };
    const result = await store.append(
      stream,
      [{ id: newEventId(), type: PART, data: partData, metadata: versionedMetadata(PART) }],
      expected,
    );
    expected = result.nextExpectedRevision;
  }
  return slices.length;
}

/** Cuts `text` into slices each at most `budget` bytes once written as a JSON string (quotes escaped). */
function sliceJson(text: string, budget: number): string[] {
  const slices: string[] = [];
  for (let start = 0; start < text.length;) {
    let end = Math.min(text.length, start + budget);
    for (;;) {
      const written = Buffer.byteLength(JSON.stringify(text.slice(start, end)));
      if (written <= budget) break;
      end = start + Math.max(1, Math.floor(((end - start) * budget) / written) - 16);
    }
    slices.push(text.slice(start, end));
    start = end;
  }
  return slices;
}

/**
 * The newest complete aggregate snapshot of the job (at or below `atOrBelow` when given), decoded; undefined
 * when there is none, or when the newest complete one is of another codec version (and `atOrBelow` is not
 * given: the caller then folds the job from its first event, as it would have to from an older one too).
 * Reads the stream backwards, `page` events at a time (a writer wants the newest: 1).
 */
export async function readAggregateSnapshot(
  store: EventStore,
  jobId: string,
  atOrBelow?: bigint,
  page = atOrBelow === undefined ? 1 : 20,
): Promise<{ revision: bigint; state: JobState } | undefined> {
  const events = new Backwards(store, aggregateStream(jobId), page);
  for (let looked = 0; looked < MAX_LOOKED; looked += 1) {
    const [newest] = await events.take(1);
    if (!newest) return undefined;
    let found: AggregateSnapshot | undefined;
    if (newest.type !== PART) found = newest.data as AggregateSnapshot;
    else {
      const last = newest.data as AggregateSnapshotPart;
      // A part that is not the last is left by a write cut short (or still going on): passed over.
      if (last.part === last.parts - 1) found = joinParts(await events.take(last.parts - 1), last);
    }
    if (found && (atOrBelow === undefined || BigInt(found.revision) <= atOrBelow)) {
      const state = decodeState(found.state);
      if (state) return { revision: BigInt(found.revision), state };
      if (atOrBelow === undefined) return undefined;
    }
  }
  return undefined;
}

/** The snapshot whose last part is `last`, when `earlier` (newest first) are its other parts. */
function joinParts(earlier: RecordedEvent[], last: AggregateSnapshotPart): AggregateSnapshot | undefined {
  const parts = [
    ...earlier.reverse().map((e) => (e.type === PART ? (e.data as AggregateSnapshotPart) : undefined)),
    last,
  ];
  const complete = parts.every(
    (p, i) => p?.snapshot === last.snapshot && p.part === i && p.parts === last.parts,
  );
  if (!complete) return undefined;
  return {
    revision: last.revision,
    state: JSON.parse(parts.map((p) => p!.text).join('')) as EncodedJobState,
  };
}

/** A stream read backwards on demand: `take(n)` answers its next `n` events (fewer at its start). */
class Backwards {
  private buffer: RecordedEvent[] = [];
  private from: bigint | undefined; // undefined: the stream's end
  private done = false;

  constructor(
    private readonly store: EventStore,
    private readonly stream: string,
    private readonly page: number,
  ) {}

  async take(n: number): Promise<RecordedEvent[]> {
    while (this.buffer.length < n && !this.done) {
      const maxCount = Math.max(this.page, n - this.buffer.length);
      const read = await this.store.readStream(this.stream, {
        direction: 'backwards',
        fromRevision: this.from,
        maxCount,
      });
      this.buffer.push(...read);
      const oldest = read.at(-1);
      if (read.length < maxCount || !oldest || oldest.revision === 0n) this.done = true;
      else this.from = oldest.revision - 1n;
    }
    return this.buffer.splice(0, n);
  }
}
