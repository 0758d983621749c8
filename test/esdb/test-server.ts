/**
 * A protocol-level EventStoreDB stand-in for tests: a grpc-js server built from the service definitions
 * that @eventstore/db-client ships, so the real, unmodified client speaks its real wire protocol to it.
 * It implements ServerFeatures.GetSupportedMethods (advertising BatchAppend, so the client appends the
 * way it does against a real server), Streams.BatchAppend, Streams.Append, Streams.Read (a stream or
 * $all, forwards and backwards, from a revision or position, with a count) and the $all subscription
 * (catch-up, then live, with stream-prefix, regex and event-type filters). It refuses appends over
 * MaxAppendSize and can answer as a node that is not ready, too busy, timing out or not the leader.
 * What it follows of the real server (KurrentDB, src/KurrentDB.Core/Services/Transport/Grpc) is cited
 * where it does it; docs/decisions/0004-esdb-protocol-test-server.md sums it up.
 * It is test code only: snapcat's EventStoreDB adapter is verified against it, not against a real server.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { Any } from 'google-protobuf/google/protobuf/any_pb';
import { Empty as ProtobufEmpty } from 'google-protobuf/google/protobuf/empty_pb';
import { StreamsService } from '@eventstore/db-client/generated/streams_grpc_pb';
import { ServerFeaturesService } from '@eventstore/db-client/generated/serverfeatures_grpc_pb';
import { SupportedMethod, SupportedMethods } from '@eventstore/db-client/generated/serverfeatures_pb';
import {
  AppendReq,
  AppendResp,
  BatchAppendReq,
  BatchAppendResp,
  ReadReq,
  ReadResp,
} from '@eventstore/db-client/generated/streams_pb';
import { Status } from '@eventstore/db-client/generated/status_pb';
import {
  AllStreamPosition,
  Empty,
  MaximumAppendSizeExceeded,
  StreamIdentifier,
  Timeout,
  Unknown,
  UUID,
  WrongExpectedVersion,
} from '@eventstore/db-client/generated/shared_pb';

interface StoredEvent {
  id: string;
  streamName: string;
  revision: bigint;
  /** Positions grow by a stride, like EventStoreDB's byte offsets: adapters must not assume a sequence. */
  commit: bigint;
  type: string;
  contentType: string;
  created: bigint;
  data: Uint8Array;
  customMetadata: Uint8Array;
}

const STRIDE = 137n;
/** A position in $all as the server compares them: commit, then prepare. */
type Pos = { commit: bigint; prepare: bigint };
/** KurrentDB `TFPos.HeadOfTf`: before everything (a subscription from the start). */
const HEAD_OF_TF: Pos = { commit: -1n, prepare: -1n };
/** KurrentDB `TFPos.FirstRecordOfTf`. */
const FIRST_RECORD: Pos = { commit: 0n, prepare: 0n };
/**
 * KurrentDB `Enumerator.DefaultReadBatchSize`: a filtered subscription reads $all in pages of at most this
 * many matching events, and it is the search window (events scanned per page) unless the client names one.
 */
const READ_BATCH_SIZE = 32;
/** KurrentDB `ESConsts.CommittedEventsMemCacheLimit`: the recently committed event ids the node keeps. */
export const COMMITTED_EVENTS_CACHE_BYTES = 8 * 1024 * 1024;
const TICKS_PER_MS = 10_000n;
/** The real server's default MaxAppendSize (1 MiB, `--max-append-size`). */
export const DEFAULT_MAX_APPEND_SIZE = 1024 * 1024;
/** The version ServerFeatures reports (the real server reports its own, major.minor.patch). */
const SERVER_VERSION = '24.10.0';

/**
 * How the server refuses a write or read, as a real node does (KurrentDB `RpcExceptions.TryHandleNotHandled`
 * and `Streams.BatchAppend.cs`): `not-ready` (starting, or between elections), `too-busy` (queues full),
 * `not-leader` (a follower asked to write, naming the leader; here the leader is this server itself, so the
 * client's reconnection comes back), `timeout` (a commit or prepare timeout). `unknown` is no refusal but
 * the answer to a write result the server does not expect, which a client must not take for a busy node.
 * Reads are refused only for not-ready and too-busy.
 */
export type Refusal = 'not-ready' | 'too-busy' | 'not-leader' | 'timeout' | 'unknown';

type Expected = { kind: 'any' | 'no_stream' | 'stream_exists' } | { kind: 'revision'; revision: bigint };

/** The expected revision an append's options carry; Append and BatchAppend name the same cases apart. */
function expectedOf(
  kase: number,
  revision: () => string | number,
  cases: { revision: number; noStream: number; streamExists: number },
): Expected {
  switch (kase) {
    case cases.revision:
      return { kind: 'revision', revision: BigInt(revision()) };
    case cases.noStream:
      return { kind: 'no_stream' };
    case cases.streamExists:
      return { kind: 'stream_exists' };
    default:
      return { kind: 'any' };
  }
}

/** The accessors AppendReq.ProposedMessage and BatchAppendReq.ProposedMessage share. */
interface Proposed {
  getId(): UUID | undefined;
  getMetadataMap(): { get(key: string): string | undefined };
  getData_asU8(): Uint8Array;
  getCustomMetadata_asU8(): Uint8Array;
}

type CommitResult = { ok: true; last: StoredEvent } | { ok: false; current: bigint };

export interface EsdbTestServerOptions {
  /** Answer ServerFeatures (default true), so the client appends with BatchAppend; false: plain Append. */
  serverFeatures?: boolean;
  /** MaxAppendSize in bytes, counted as the real server counts (default 1 MiB). */
  maxAppendSize?: number;
  /** The bytes of the committed-events cache that deduplicates appends with `any` (default 8 MiB). */
  committedEventsCacheBytes?: number;
}

/** The data outlives a stop, so a test can take the server down and bring it back with its events. */
export class TestEventStoreData {
  readonly log: StoredEvent[] = [];
  readonly streams = new Map<string, StoredEvent[]>();
  readonly appended = new EventEmitter().setMaxListeners(0);
  appendCalls = 0;
}

export class EsdbTestServer {
  private server: grpc.Server | undefined;
  port = 0;
  readonly serverFeatures: boolean;
  maxAppendSize: number;
  /** How appends and reads are refused now; undefined: they are served. */
  refusal: Refusal | undefined;
  /** Appends answered so far by each path, so tests can tell which one the client took. */
  readonly calls = { append: 0, batchAppend: 0 };
  /**
   * What subscriptions did: events sent, checkpoints sent, and events a filtered subscription's catch-up
   * read from the log (matching or not), as `ConsideredEventsCount` counts them.
   */
  readonly subscriptions = { events: 0, checkpoints: 0, eventsScanned: 0 };
  private readonly committedEventsCacheBytes: number;
  /** The node's in-memory cache of recently committed event ids; a restart empties it. */
  private committedEvents: CommittedEvents;

  constructor(
    readonly data = new TestEventStoreData(),
    options: EsdbTestServerOptions = {},
  ) {
    this.serverFeatures = options.serverFeatures ?? true;
    this.maxAppendSize = options.maxAppendSize ?? DEFAULT_MAX_APPEND_SIZE;
    this.committedEventsCacheBytes = options.committedEventsCacheBytes ?? COMMITTED_EVENTS_CACHE_BYTES;
    this.committedEvents = new CommittedEvents(this.committedEventsCacheBytes);
  }

  /** Answers as a node that is not ready (true) or serves again (false). */
  setNotReady(notReady: boolean): void {
    this.refusal = notReady ? 'not-ready' : undefined;
  }

  /** Refuses appends (and, for not-ready and too-busy, reads) the given way; undefined serves again. */
  refuse(refusal: Refusal | undefined): void {
    this.refusal = refusal;
  }

  get connectionString(): string {
    return `esdb://127.0.0.1:${this.port}?tls=false`;
  }

  /** Starts on the given port (0: any free one; a restart passes the previous port). */
  async start(port = this.port): Promise<void> {
    const server = new grpc.Server();
    server.addService(StreamsService, {
      append: (
        call: grpc.ServerReadableStream<AppendReq, AppendResp>,
        callback: grpc.sendUnaryData<AppendResp>,
      ) => this.append(call, callback),
      read: (call: grpc.ServerWritableStream<ReadReq, ReadResp>) => this.read(call),
      batchAppend: (call: grpc.ServerDuplexStream<BatchAppendReq, BatchAppendResp>) => this.batchAppend(call),
    } as unknown as grpc.UntypedServiceImplementation);
    // Without ServerFeatures the client gets UNIMPLEMENTED, assumes an old server and uses plain Append.
    if (this.serverFeatures) {
      server.addService(ServerFeaturesService, {
        getSupportedMethods: (
          _call: grpc.ServerUnaryCall<unknown, SupportedMethods>,
          callback: grpc.sendUnaryData<SupportedMethods>,
        ) => callback(null, supportedMethods()),
      } as unknown as grpc.UntypedServiceImplementation);
    }
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    this.server = server;
  }

  /** Stops at once, cutting open calls and subscriptions, as a crashed server would. */
  async stop(): Promise<void> {
    this.server?.forceShutdown();
    this.server = undefined;
    this.committedEvents = new CommittedEvents(this.committedEventsCacheBytes); // process memory
  }

  /**
   * Streams.Append, as KurrentDB `Streams.Append.cs`: options first, then the proposed messages; a
   * refusal or an append over MaxAppendSize fails the call with the status and trailers the real server
   * sends (`RpcExceptions`), a wrong expected version is an answer, not an error.
   */
  private append(
    call: grpc.ServerReadableStream<AppendReq, AppendResp>,
    callback: grpc.sendUnaryData<AppendResp>,
  ) {
    let options: AppendReq.Options | undefined;
    const proposed: AppendReq.ProposedMessage[] = [];
    call.on('data', (req: AppendReq) => {
      if (req.hasOptions()) options = req.getOptions();
      else if (req.hasProposedMessage()) proposed.push(req.getProposedMessage()!);
    });
    call.on('error', () => {});
    call.on('end', () => {
      if (!options) return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'no options' });
      // The real server counts as it reads and throws at the first message over the limit; the client
      // sees the same status either way, so this one answers once the request is complete.
      if (appendSize(proposed) > this.maxAppendSize) {
        return callback(maxAppendSizeExceeded(this.maxAppendSize));
      }
      const refused = this.refusal && this.unaryRefusal(this.refusal);
      if (refused) return callback(refused);
      this.data.appendCalls += 1;
      this.calls.append += 1;
      const streamName = nameOf(options.getStreamIdentifier());
      const C = AppendReq.Options.ExpectedStreamRevisionCase;
      const opts = options;
      const expected = expectedOf(opts.getExpectedStreamRevisionCase(), () => opts.getRevision(), {
        revision: C.REVISION,
        noStream: C.NO_STREAM,
        streamExists: C.STREAM_EXISTS,
      });
      const result = this.commit(streamName, expected, proposed);
      const resp = new AppendResp();
      if (result.ok) {
        const ok = new AppendResp.Success();
        ok.setCurrentRevision(result.last.revision.toString());
        const position = new AppendResp.Position();
        position.setCommitPosition(result.last.commit.toString());
        position.setPreparePosition(result.last.commit.toString());
        ok.setPosition(position);
        resp.setSuccess(ok);
        return callback(null, resp);
      }
      const wrong = new AppendResp.WrongExpectedVersion();
      if (result.current >= 0n) wrong.setCurrentRevision(result.current.toString());
      else wrong.setCurrentNoStream(new Empty());
      if (expected.kind === 'revision') wrong.setExpectedRevision(expected.revision.toString());
      else if (expected.kind === 'no_stream') wrong.setExpectedNoStream(new Empty());
      else if (expected.kind === 'stream_exists') wrong.setExpectedStreamExists(new Empty());
      else wrong.setExpectedAny(new Empty());
      resp.setWrongExpectedVersion(wrong);
      callback(null, resp);
    });
  }

  /** The error a unary call (Append, Read) fails with, as KurrentDB `RpcExceptions` builds it. */
  private unaryRefusal(refusal: Refusal): grpc.ServiceError {
    const error = (code: grpc.status, details: string, metadata = new grpc.Metadata()) =>
      Object.assign(new Error(details), { code, details, metadata });
    switch (refusal) {
      case 'not-ready': // RpcExceptions.ServerNotReady
        return error(grpc.status.UNAVAILABLE, 'Server Is Not Ready');
      case 'too-busy': // RpcExceptions.ServerBusy
        return error(grpc.status.UNAVAILABLE, 'Server Is Too Busy');
      case 'timeout': // RpcExceptions.Timeout, for a CommitTimeout/PrepareTimeout/ForwardTimeout result
        return error(grpc.status.ABORTED, 'Operation timed out: Commit timeout.');
      case 'not-leader': // RpcExceptions.LeaderInfo
        return error(grpc.status.NOT_FOUND, 'Leader info available', this.leaderInfo());
      case 'unknown': // RpcExceptions.UnknownError(result), the default of the result switch
        return error(grpc.status.UNKNOWN, 'Unexpected OperationResult: InvalidTransaction');
    }
  }

  /** The trailers naming the leader (`not-leader`, host, port); the leader is this server. */
  private leaderInfo(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set('exception', 'not-leader');
    metadata.set('leader-endpoint-host', '127.0.0.1');
    metadata.set('leader-endpoint-port', String(this.port));
    return metadata;
  }

  /**
   * Streams.BatchAppend, as KurrentDB `Streams.BatchAppend.cs` (BatchAppendWorker): one two-way call
   * carries many appends, each request names its append by correlation id; the first carries the
   * options (stream, expected position, deadline), any may carry proposed messages, and the one marked
   * `is_final` commits. Each append is answered once, by correlation id, with success (current revision
   * and position) or a `google.rpc.Status` error whose details the client unpacks (WrongExpectedVersion,
   * MaximumAppendSizeExceeded, Timeout, ...). Not-ready and too-busy are `NotHandled` answers the server
   * turns into a Status with no code, the message "Server Is Not Ready" / "Server Is Busy" and an empty
   * `google.protobuf.Empty` detail, which the client does not recognise (it throws UnknownError); not
   * leader ends the whole call with the leader-info status, as the server's callback throws it there.
   * Requests without `is_final` wait in `pending`; the real server also times them out after the
   * deadline, which this one does not.
   */
  private batchAppend(call: grpc.ServerDuplexStream<BatchAppendReq, BatchAppendResp>): void {
    const pending = new Map<
      string,
      { streamName: string; expected: Expected; proposed: Proposed[]; size: number }
    >();
    call.on('error', () => {});
    call.on('end', () => call.end());
    call.on('data', (req: BatchAppendReq) => {
      const correlation = req.getCorrelationId();
      const key = uuidOf(correlation);
      const answer = (streamName: string, fill: (resp: BatchAppendResp) => void) => {
        const resp = new BatchAppendResp();
        resp.setCorrelationId(correlation);
        resp.setStreamIdentifier(identifier(streamName));
        fill(resp);
        call.write(resp);
      };
      if (req.hasOptions()) {
        const options = req.getOptions()!;
        const streamName = nameOf(options.getStreamIdentifier());
        const deadline = options.getDeadline();
        if (deadline && deadline.toDate().getTime() <= Date.now()) {
          answer(streamName, (r) =>
            r.setError(status(grpc.status.DEADLINE_EXCEEDED, 'Timeout', timeoutDetail())),
          );
          return;
        }
        if (!pending.has(key)) {
          const C = BatchAppendReq.Options.ExpectedStreamPositionCase;
          const expected = expectedOf(
            options.getExpectedStreamPositionCase(),
            () => options.getStreamPosition(),
            { revision: C.STREAM_POSITION, noStream: C.NO_STREAM, streamExists: C.STREAM_EXISTS },
          );
          pending.set(key, { streamName, expected, proposed: [], size: 0 });
        }
      }
      const write = pending.get(key);
      if (!write) return; // no options first, or already refused: the real server ignores it too
      const messages = req.getProposedMessagesList();
      write.proposed.push(...messages);
      write.size += appendSize(messages);
      if (write.size > this.maxAppendSize) {
        pending.delete(key);
        const detail = new MaximumAppendSizeExceeded();
        detail.setMaxappendsize(this.maxAppendSize);
        answer(write.streamName, (r) =>
          r.setError(
            status(
              grpc.status.INVALID_ARGUMENT,
              'MaximumAppendSizeExceeded',
              pack(detail, 'event_store.client.MaximumAppendSizeExceeded'),
            ),
          ),
        );
        return;
      }
      if (!req.getIsFinal()) return;
      pending.delete(key);
      const refusal = this.refusal;
      if (refusal === 'not-leader') {
        call.emit('error', {
          code: grpc.status.NOT_FOUND,
          details: 'Leader info available',
          metadata: this.leaderInfo(),
        });
        return;
      }
      if (refusal === 'not-ready' || refusal === 'too-busy') {
        const empty = pack(new ProtobufEmpty(), 'google.protobuf.Empty');
        const message = refusal === 'not-ready' ? 'Server Is Not Ready' : 'Server Is Busy';
        answer(write.streamName, (r) => r.setError(status(grpc.status.OK, message, empty)));
        return;
      }
      if (refusal === 'unknown') {
        const unknown = pack(new Unknown(), 'event_store.client.Unknown');
        answer(write.streamName, (r) => r.setError(status(grpc.status.UNKNOWN, 'Unknown', unknown)));
        return;
      }
      if (refusal === 'timeout') {
        answer(write.streamName, (r) =>
          r.setError(status(grpc.status.DEADLINE_EXCEEDED, 'Timeout', timeoutDetail())),
        );
        return;
      }
      this.data.appendCalls += 1;
      this.calls.batchAppend += 1;
      const result = this.commit(write.streamName, write.expected, write.proposed);
      answer(write.streamName, (resp) => {
        if (result.ok) {
          const ok = new BatchAppendResp.Success();
          ok.setCurrentRevision(result.last.revision.toString());
          const position = new AllStreamPosition();
          position.setCommitPosition(result.last.commit.toString());
          position.setPreparePosition(result.last.commit.toString());
          ok.setPosition(position);
          resp.setSuccess(ok);
          return;
        }
        // Google.Rpc.Status.WrongExpectedVersion: code AlreadyExists, message "WrongExpectedVersion".
        const wrong = new WrongExpectedVersion();
        if (result.current >= 0n) wrong.setCurrentStreamRevision(result.current.toString());
        else wrong.setCurrentNoStream(new ProtobufEmpty());
        const expected = write.expected;
        if (expected.kind === 'revision') wrong.setExpectedStreamPosition(expected.revision.toString());
        else if (expected.kind === 'no_stream') wrong.setExpectedNoStream(new ProtobufEmpty());
        else if (expected.kind === 'stream_exists') wrong.setExpectedStreamExists(new ProtobufEmpty());
        else wrong.setExpectedAny(new ProtobufEmpty());
        resp.setError(
          status(
            grpc.status.ALREADY_EXISTS,
            'WrongExpectedVersion',
            pack(wrong, 'event_store.client.WrongExpectedVersion'),
          ),
        );
      });
    });
  }

  private commit(streamName: string, expected: Expected, proposed: Proposed[]): CommitResult {
    const stream = this.data.streams.get(streamName) ?? [];
    const current = BigInt(stream.length) - 1n;
    const ids = proposed.map((m) => uuidOf(m.getId()));

    const decision = this.checkCommit(streamName, stream, expected, ids);
    if (decision.kind === 'wrong-expected-version') return { ok: false, current };
    if (decision.kind === 'idempotent') return { ok: true, last: stream[Number(decision.last)]! };

    const created = BigInt(Date.now()) * TICKS_PER_MS;
    for (const message of proposed) {
      const metadata = message.getMetadataMap();
      const event: StoredEvent = {
        id: uuidOf(message.getId()),
        streamName,
        revision: BigInt(stream.length),
        commit: BigInt(this.data.log.length + 1) * STRIDE,
        type: metadata.get('type') ?? '',
        contentType: metadata.get('content-type') ?? 'application/octet-stream',
        created,
        data: message.getData_asU8(),
        customMetadata: message.getCustomMetadata_asU8(),
      };
      stream.push(event);
      this.data.log.push(event);
      this.committedEvents.put(event.id, streamName, event.revision);
    }
    this.data.streams.set(streamName, stream);
    this.data.appended.emit('appended');
    return { ok: true, last: stream[stream.length - 1]! };
  }

  /**
   * Whether an append is written, a retry of one already written, or refused, as KurrentDB
   * `IndexWriter.CheckCommit` decides (`src/KurrentDB.Core/Services/Storage/ReaderIndex/IndexWriter.cs`)
   * and the storage writer answers (`StorageWriterService.ActOnCommitCheckFailure`):
   * - `any` and `stream_exists` (on a stream that exists): the ids are looked up in the cache of recently
   *   committed events (`_committedEvents`, a `BoundedCache` of `ESConsts.CommittedEventsMemCacheLimit`,
   *   8 MiB, filled as the writer commits, in process memory). Every id found in this stream: the append
   *   was written already (`Idempotent`), success with the last of those events. The first not found: a
   *   new append, written, even if later ids are duplicates. The first found but a later one not:
   *   `CorruptedIdempotency`, answered WrongExpectedVersion. An append older than the cache holds, or from
   *   before a restart, is written again.
   * - an exact revision, or `no_stream` (-1), below the stream's current revision: the ids are compared
   *   with the events in the slots after the expected revision (cache or index: no bound). All equal:
   *   idempotent; the first differs: WrongExpectedVersion (`ConsistencyCheckFailure`); the first equal but
   *   a later one not (or past the end): `CorruptedIdempotency`, WrongExpectedVersion. An empty append
   *   there: WrongExpectedVersion.
   * - an exact revision above the current one: WrongExpectedVersion; equal to it (or `no_stream` on a
   *   stream that does not exist): written, with no look for duplicates.
   * A retry that was written but is not yet replicated (`IdempotentNotReady`) cannot happen on one node.
   */
  private checkCommit(
    streamName: string,
    stream: readonly StoredEvent[],
    expected: Expected,
    ids: readonly string[],
  ): { kind: 'write' | 'wrong-expected-version' } | { kind: 'idempotent'; last: bigint } {
    const current = BigInt(stream.length) - 1n;
    if (expected.kind === 'stream_exists' && current < 0n) return { kind: 'wrong-expected-version' };
    if (expected.kind === 'any' || expected.kind === 'stream_exists') {
      let last: bigint | undefined;
      for (const [i, id] of ids.entries()) {
        const committed = this.committedEvents.get(id);
        if (!committed || committed.streamName !== streamName) {
          return { kind: i === 0 ? 'write' : 'wrong-expected-version' };
        }
        last = committed.revision;
      }
      return last === undefined ? { kind: 'write' } : { kind: 'idempotent', last };
    }
    const revision = expected.kind === 'revision' ? expected.revision : -1n;
    if (revision < current) {
      if (ids.length === 0) return { kind: 'wrong-expected-version' };
      for (const [i, id] of ids.entries()) {
        if (stream[Number(revision) + 1 + i]?.id !== id) return { kind: 'wrong-expected-version' };
      }
      return { kind: 'idempotent', last: revision + BigInt(ids.length) };
    }
    if (revision > current) return { kind: 'wrong-expected-version' };
    return { kind: 'write' };
  }

  private read(call: grpc.ServerWritableStream<ReadReq, ReadResp>): void {
    // Streams.Read answers NotHandled with the same statuses as Append (RpcExceptions.TryHandleNotHandled).
    if (this.refusal === 'not-ready' || this.refusal === 'too-busy') {
      call.emit('error', this.unaryRefusal(this.refusal));
      return;
    }
    const options = call.request.getOptions()!;
    if (options.hasSubscription()) return this.subscribe(call, options);
    const backwards = options.getReadDirection() === ReadReq.Options.ReadDirection.BACKWARDS;
    const count = Number(options.getCount() || '0') || Number.MAX_SAFE_INTEGER;
    let events: StoredEvent[];
    if (options.hasStream()) {
      const s = options.getStream()!;
      const name = nameOf(s.getStreamIdentifier());
      const stream = this.data.streams.get(name);
      if (!stream) {
        const notFound = new ReadResp.StreamNotFound();
        notFound.setStreamIdentifier(identifier(name));
        const resp = new ReadResp();
        resp.setStreamNotFound(notFound);
        call.write(resp);
        call.end();
        return;
      }
      const from = s.hasRevision() ? BigInt(s.getRevision()) : backwards ? BigInt(stream.length - 1) : 0n;
      events = backwards
        ? stream.filter((e) => e.revision <= from).reverse()
        : stream.filter((e) => e.revision >= from);
    } else {
      const all = options.getAll()!;
      const from = all.hasPosition() ? BigInt(all.getPosition()!.getCommitPosition()) : undefined;
      // EventStoreDB: forwards from a position includes the event at it; backwards gives the ones before it.
      events = backwards
        ? this.data.log.filter((e) => from === undefined || e.commit < from).reverse()
        : this.data.log.filter((e) => from === undefined || e.commit >= from);
    }
    for (const event of events.slice(0, count)) call.write(eventResp(event));
    call.end();
  }

  /**
   * The $all subscription: a confirmation, the stored events after the start, CaughtUp, then live ones.
   * Without a filter every event goes out (KurrentDB `Enumerator.AllSubscription`); with one, the events
   * it matches and checkpoints (`filteredSubscription`). Positions compare by commit, then prepare.
   */
  private subscribe(call: grpc.ServerWritableStream<ReadReq, ReadResp>, options: ReadReq.Options): void {
    const matches = filterOf(options);
    const all = options.getAll();
    const log = this.data.log;
    const last = log.at(-1);
    // The confirmation's LastIndexedPosition: the last event's position.
    const end = last ? positionOf(last) : HEAD_OF_TF;
    const at = all?.getPosition();
    const from: Pos = at
      ? { commit: BigInt(at.getCommitPosition()), prepare: BigInt(at.getPreparePosition()) }
      : all?.hasEnd()
        ? end
        : HEAD_OF_TF;
    const confirmation = new ReadResp();
    const confirm = new ReadResp.SubscriptionConfirmation();
    confirm.setSubscriptionId(`sub-${Math.random().toString(16).slice(2)}`);
    confirmation.setConfirmation(confirm);
    call.write(confirmation);
    const send = (event: StoredEvent) => {
      this.subscriptions.events += 1;
      call.write(eventResp(event));
    };
    const caughtUp = () => {
      const resp = new ReadResp();
      resp.setCaughtUp(new ReadResp.CaughtUp());
      call.write(resp);
    };
    const follow = (live: () => void) => {
      this.data.appended.on('appended', live);
      const stop = () => this.data.appended.off('appended', live);
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    };

    if (options.hasFilter()) {
      this.filteredSubscription(call, options.getFilter()!, matches, from, end, send, caughtUp, follow);
      return;
    }
    let after = from;
    let isCaughtUp = false;
    const pump = () => {
      for (let i = firstAtOrAfter(log, after); i < log.length; i += 1) {
        const event = log[i]!;
        if (comparePos(positionOf(event), after) <= 0) continue;
        after = positionOf(event);
        if (matches(event)) send(event);
      }
      if (!isCaughtUp) {
        isCaughtUp = true;
        caughtUp();
      }
    };
    follow(pump);
    pump();
  }

  /** A filtered $all subscription: see FilteredSubscription. */
  private filteredSubscription(
    call: grpc.ServerWritableStream<ReadReq, ReadResp>,
    filter: ReadReq.Options.FilterOptions,
    matches: (e: StoredEvent) => boolean,
    from: Pos,
    end: Pos,
    send: (event: StoredEvent) => void,
    caughtUp: () => void,
    follow: (live: () => void) => void,
  ): void {
    const window = filter.hasMax() ? filter.getMax() : READ_BATCH_SIZE;
    const interval = window * filter.getCheckpointintervalmultiplier();
    if (!(window > 0 && interval > 0)) {
      // The real server throws in the enumerator's constructor (ThrowIfZero); the client never sends it.
      call.emit('error', { code: grpc.status.UNKNOWN, details: 'Exception was thrown by handler.' });
      return;
    }
    const subscription = new FilteredSubscription(this.data.log, matches, window, interval, from, {
      event: send,
      checkpoint: (at) => {
        this.subscriptions.checkpoints += 1;
        const message = new ReadResp.Checkpoint();
        message.setCommitPosition(at.commit.toString());
        message.setPreparePosition(at.prepare.toString());
        const resp = new ReadResp();
        resp.setCheckpoint(message);
        call.write(resp);
      },
      scanned: (events) => (this.subscriptions.eventsScanned += events),
    });
    // SubscribeToLive comes first: the live side counts the events committed after this point.
    if (comparePos(from, end) < 0) subscription.catchUp();
    caughtUp();
    const live = () => subscription.live();
    follow(live);
    live();
  }
}

/**
 * A filtered $all subscription, as KurrentDB `Enumerator.AllSubscriptionFiltered` (in
 * `src/KurrentDB.Core/Services/Transport/Enumerators/`), the log read as `AllReader`'s
 * `FilteredReadAllEventsForward` reads it (`Services/Storage/ReaderIndex/AllReader.cs`) and live events
 * counted as `SubscriptionsService.ProcessEventCommitted` counts them (`Services/SubscriptionsService.cs`):
 * - the search window is the filter's `max`, or 32 (`DefaultReadBatchSize`) for `count`; the checkpoint
 *   interval is `checkpoint_interval_multiplier` × the window (`Streams.Read.cs`; the client's
 *   `checkpointInterval`, 1 by default: every 32 events);
 * - catch-up reads pages, the first at the start position, or (0, 0) from the start: a page holds at
 *   most 32 matching events and scans at most the window; every event scanned counts, matching or not
 *   (the one at the start position too, which is not sent again). After a page, the checkpoint is the
 *   later of the last event sent and the page's start (if the page scanned anything); it is sent each
 *   time the events scanned reach the interval (the count keeps the remainder), and when a page reaches
 *   the end of the log, before CaughtUp. The next page starts just past the last event scanned, where the
 *   next record begins, prepare 0 (`new TFPos(RecordPostPosition, 0)`): a checkpoint is then no event's
 *   position, but sorts just before the next event's;
 * - live, every event appended after the subscription counts, matching or not; at the interval a
 *   checkpoint at that event's position is sent (after the event, if it matches), the count back at 0;
 * - no checkpoint at or before the previous one, nor before any position (HeadOfTf).
 * A subscription from a position at or past the last event goes live at once, with no checkpoint until
 * the live count reaches the interval. Live events are never dropped here (the real one falls back to
 * catch-up when 32 are waiting), and CaughtUp carries no position.
 */
class FilteredSubscription {
  /** The event or checkpoint position most recently sent on. */
  private checkpoint: Pos;
  private lastCheckpointSent: Pos | undefined;
  private liveNext: number;
  private liveCount = 0;

  constructor(
    private readonly log: readonly StoredEvent[],
    private readonly matches: (e: StoredEvent) => boolean,
    private readonly window: number,
    private readonly interval: number,
    from: Pos,
    private readonly out: {
      event(event: StoredEvent): void;
      checkpoint(at: Pos): void;
      scanned(events: number): void;
    },
  ) {
    this.checkpoint = from;
    this.liveNext = log.length;
  }

  /** `CatchUp`: pages from the checkpoint to the end of the log, the last followed by a checkpoint. */
  catchUp(): void {
    let scanned = 0;
    let start = comparePos(this.checkpoint, FIRST_RECORD) < 0 ? FIRST_RECORD : this.checkpoint;
    for (;;) {
      const page = this.readPage(start);
      this.out.scanned(page.considered);
      for (const event of page.found) {
        if (comparePos(positionOf(event), this.checkpoint) <= 0) continue;
        this.out.event(event);
        this.checkpoint = positionOf(event);
      }
      if (comparePos(this.checkpoint, start) < 0 && comparePos(start, page.next) < 0) this.checkpoint = start;
      scanned += page.considered;
      if (page.endOfLog) {
        if (comparePos(this.checkpoint, FIRST_RECORD) < 0 && comparePos(FIRST_RECORD, page.next) < 0) {
          this.checkpoint = FIRST_RECORD;
        }
        this.sendCheckpoint(this.checkpoint);
        return;
      }
      if (scanned >= this.interval) {
        scanned %= this.interval;
        this.sendCheckpoint(this.checkpoint);
      }
      start = page.next;
    }
  }

  /**
   * `AllReader.FilteredReadAllEventsForward` from `start`: at most 32 matching events, at most the window
   * scanned; `next` is just past the last event scanned; the end of the log once it tried to read past it.
   */
  private readPage(start: Pos) {
    let index = firstAtOrAfter(this.log, start);
    let next = start;
    let considered = 0;
    let endOfLog = false;
    const found: StoredEvent[] = [];
    while (found.length < READ_BATCH_SIZE && considered < this.window) {
      if (index >= this.log.length) {
        endOfLog = true;
        break;
      }
      const event = this.log[index++]!;
      considered += 1;
      if (this.matches(event)) found.push(event);
      next = { commit: event.commit + STRIDE, prepare: 0n };
    }
    return { found, considered, next, endOfLog };
  }

  /** `GoLive` over `ProcessEventCommitted`: each new event, if it matches, then its count to a checkpoint. */
  live(): void {
    for (; this.liveNext < this.log.length; this.liveNext += 1) {
      const event = this.log[this.liveNext]!;
      const at = positionOf(event);
      if (this.matches(event) && comparePos(at, this.checkpoint) > 0) {
        this.out.event(event);
        this.checkpoint = at;
      }
      this.liveCount += 1;
      if (this.liveCount < this.interval) continue;
      this.liveCount = 0;
      if (comparePos(at, this.checkpoint) >= 0) {
        this.sendCheckpoint(at);
        this.checkpoint = at;
      }
    }
  }

  /** `SendCheckpointToSubscription`, then `MoveNextAsync`'s check that it is past the last one sent. */
  private sendCheckpoint(at: Pos): void {
    if (comparePos(at, HEAD_OF_TF) === 0) return;
    if (this.lastCheckpointSent && comparePos(at, this.lastCheckpointSent) <= 0) return;
    this.lastCheckpointSent = at;
    this.out.checkpoint(at);
  }
}

/**
 * KurrentDB's committed-events cache (`BoundedCache<Guid, EventInfo>` in `IndexWriter`): event id to
 * stream and revision, first in first out, bounded by the bytes it counts per entry (16 + 4 + a pointer,
 * plus the stream name as `MemSizer.SizeOf` counts a .NET string), evicting the oldest entries while over
 * the limit before it adds one. A duplicate id is queued and counted again but keeps its first entry.
 */
class CommittedEvents {
  private readonly entries = new Map<string, { streamName: string; revision: bigint }>();
  private readonly queue: string[] = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(id: string): { streamName: string; revision: bigint } | undefined {
    return this.entries.get(id);
  }

  put(id: string, streamName: string, revision: bigint): void {
    while (this.bytes > this.maxBytes && this.head < this.queue.length) {
      const oldest = this.queue[this.head++]!;
      const entry = this.entries.get(oldest);
      if (entry) {
        this.bytes -= entrySize(entry.streamName);
        this.entries.delete(oldest);
      }
    }
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.bytes += entrySize(streamName);
    this.queue.push(id);
    if (!this.entries.has(id)) this.entries.set(id, { streamName, revision });
  }
}

/** `16 + 4 + IntPtr.Size + MemSizer.SizeOf(streamName)`, a string being `(20 + 2 × length + 1)` rounded up to 8. */
function entrySize(streamName: string): number {
  const string = streamName.length === 0 ? 0 : Math.ceil((20 + 2 * streamName.length + 1) / 8) * 8;
  return 16 + 4 + 8 + string;
}

function comparePos(a: Pos, b: Pos): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

/** An event's position in $all: its record's, commit and prepare alike (an implicitly committed write). */
function positionOf(event: StoredEvent): Pos {
  return { commit: event.commit, prepare: event.commit };
}

/** The index of the first event of the log at or after `at` (the log's length if none). */
function firstAtOrAfter(log: readonly StoredEvent[], at: Pos): number {
  let low = 0;
  let high = log.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (comparePos(positionOf(log[mid]!), at) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

function filterOf(options: ReadReq.Options): (e: StoredEvent) => boolean {
  if (!options.hasFilter()) return () => true;
  const filter = options.getFilter()!;
  const expression = filter.hasStreamIdentifier() ? filter.getStreamIdentifier()! : filter.getEventType()!;
  const field = (e: StoredEvent) => (filter.hasStreamIdentifier() ? e.streamName : e.type);
  const prefixes = expression.getPrefixList();
  const regex = expression.getRegex() ? new RegExp(expression.getRegex()) : undefined;
  return (e) =>
    (prefixes.length ? prefixes.some((p) => field(e).startsWith(p)) : true) &&
    (!regex || regex.test(field(e)));
}

/**
 * ServerFeatures.GetSupportedMethods, as KurrentDB `ServerFeatures.cs`: every client method, service and
 * method names lower-cased, with the features the real server lists for them.
 */
function supportedMethods(): SupportedMethods {
  const method = (service: string, name: string, features: string[] = []) => {
    const m = new SupportedMethod();
    m.setServiceName(service);
    m.setMethodName(name);
    m.setFeaturesList(features);
    return m;
  };
  const streams = 'event_store.client.streams.streams';
  const result = new SupportedMethods();
  result.setEventStoreServerVersion(SERVER_VERSION);
  result.setMethodsList([
    method(streams, 'read', ['position', 'events']),
    method(streams, 'append'),
    method(streams, 'batchappend', ['deadline_duration']),
    method('event_store.client.server_features.serverfeatures', 'getsupportedmethods'),
  ]);
  return result;
}

/**
 * The size the real server counts an append by: per event, data + metadata + twice the type's length
 * (KurrentDB `Event.SizeOnDisk`, summed in `Streams.Append.cs` and `ClientWriteRequest.AddEvents`).
 */
function appendSize(proposed: Proposed[]): number {
  return proposed.reduce(
    (sum, m) =>
      sum +
      m.getData_asU8().length +
      m.getCustomMetadata_asU8().length +
      2 * (m.getMetadataMap().get('type') ?? '').length,
    0,
  );
}

/** RpcExceptions.MaxAppendSizeExceeded: INVALID_ARGUMENT, with the limit in the trailers. */
function maxAppendSizeExceeded(max: number): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  metadata.set('exception', 'maximum-append-size-exceeded');
  metadata.set('maximum-append-size', String(max));
  const details = `Maximum Append Size of ${max} Exceeded.`;
  return Object.assign(new Error(details), { code: grpc.status.INVALID_ARGUMENT, details, metadata });
}

function status(code: grpc.status, message: string, details: Any): Status {
  const s = new Status();
  s.setCode(code as unknown as ReturnType<Status['getCode']>);
  s.setMessage(message);
  s.setDetails(details);
  return s;
}

function pack(message: { serializeBinary(): Uint8Array }, typeName: string): Any {
  const any = new Any();
  any.pack(message.serializeBinary(), typeName);
  return any;
}

function timeoutDetail(): Any {
  return pack(new Timeout(), 'event_store.client.Timeout');
}

function nameOf(id: StreamIdentifier | undefined): string {
  return Buffer.from(id!.getStreamName_asU8()).toString('utf8');
}

function eventResp(event: StoredEvent): ReadResp {
  const record = new ReadResp.ReadEvent.RecordedEvent();
  const id = new UUID();
  id.setString(event.id);
  record.setId(id);
  record.setStreamIdentifier(identifier(event.streamName));
  record.setStreamRevision(event.revision.toString());
  record.setCommitPosition(event.commit.toString());
  record.setPreparePosition(event.commit.toString());
  const metadata = record.getMetadataMap();
  metadata.set('type', event.type);
  metadata.set('content-type', event.contentType);
  metadata.set('created', event.created.toString());
  record.setData(event.data);
  record.setCustomMetadata(event.customMetadata);
  const read = new ReadResp.ReadEvent();
  read.setEvent(record);
  read.setCommitPosition(event.commit.toString());
  const resp = new ReadResp();
  resp.setEvent(read);
  return resp;
}

function identifier(name: string): StreamIdentifier {
  const id = new StreamIdentifier();
  id.setStreamName(Buffer.from(name, 'utf8'));
  return id;
}

function uuidOf(uuid: UUID | undefined): string {
  if (!uuid) throw new Error('event without id');
  if (uuid.hasString()) return uuid.getString();
  const s = uuid.getStructured()!;
  const hex = (n: string) => BigInt.asUintN(64, BigInt(n)).toString(16).padStart(16, '0');
  const h = hex(s.getMostSignificantBits()) + hex(s.getLeastSignificantBits());
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
