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
import { GossipService } from '@eventstore/db-client/generated/gossip_grpc_pb';
import { ClusterInfo, EndPoint, MemberInfo } from '@eventstore/db-client/generated/gossip_pb';
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
  AccessDenied,
  AllStreamPosition,
  Empty,
  MaximumAppendSizeExceeded,
  StreamIdentifier,
  Timeout,
  Unknown,
  UUID,
  WrongExpectedVersion,
} from '@eventstore/db-client/generated/shared_pb';
import { testCertificates } from './tls';

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
  /**
   * A secure node, as a real one runs by default: a TLS listener with a certificate from a private CA
   * (`server.caFile`), and KurrentDB's authentication and default access control (see `authorize`).
   * Default false: an `--insecure` node, plain HTTP/2, no authentication.
   */
  secure?: boolean;
  /** The user the connection string logs in as, on a secure node (default `admin`). */
  user?: string;
}

/** A user of a secure node: its password and groups (roles). */
export interface TestUser {
  password: string;
  groups: string[];
}

/** A stream operation the test server authorises, with the stream it is on (`$all` for the log). */
export type StreamAccess = { operation: 'read' | 'write'; stream: string };

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
  readonly secure: boolean;
  /** The user the connection string names (secure nodes). */
  user: string;
  /**
   * A secure node's users: KurrentDB's two defaults (`admin` in `$admins`, `ops` in `$ops`, both with the
   * password `changeit`). Tests may add users or change groups while the server runs.
   */
  readonly users = new Map<string, TestUser>([
    ['admin', { password: 'changeit', groups: ['$admins'] }],
    ['ops', { password: 'changeit', groups: ['$ops'] }],
  ]);
  /**
   * The default ACL of user streams (the `$userStreamAcl` of `$settings`): the roles that may read and write
   * a stream whose name does not start with `$`. `$all` is every authenticated user, as the default is.
   */
  userStreamAcl: { read: string[]; write: string[] } = { read: ['$all'], write: ['$all'] };
  /** Stream operations refused so far, by user (`(anonymous)` without credentials); bad logins as `refusedLogins`. */
  readonly denied: { user: string; operation: string; stream: string }[] = [];
  refusedLogins = 0;

  constructor(
    readonly data = new TestEventStoreData(),
    options: EsdbTestServerOptions = {},
  ) {
    this.serverFeatures = options.serverFeatures ?? true;
    this.maxAppendSize = options.maxAppendSize ?? DEFAULT_MAX_APPEND_SIZE;
    this.secure = options.secure ?? false;
    this.user = options.user ?? 'admin';
  }

  /** The CA certificate a client must trust (`tlsCAFile`) to reach a secure node. */
  get caFile(): string {
    return testCertificates().caFile;
  }

  /** Answers as a node that is not ready (true) or serves again (false). */
  setNotReady(notReady: boolean): void {
    this.refusal = notReady ? 'not-ready' : undefined;
  }

  /** Refuses appends (and, for not-ready and too-busy, reads) the given way; undefined serves again. */
  refuse(refusal: Refusal | undefined): void {
    this.refusal = refusal;
  }

  /**
   * How a client reaches this node: `esdb://127.0.0.1:<port>?tls=false` when insecure; when secure, over TLS
   * trusting the test CA, logged in as `user` (`esdb://admin:changeit@127.0.0.1:<port>?tls=true&tlsCAFile=…`).
   */
  get connectionString(): string {
    return this.connectionStringAs(this.user);
  }

  /** The connection string of a secure node for another user, or with another password (a wrong one). */
  connectionStringAs(user: string, password = this.users.get(user)?.password ?? ''): string {
    if (!this.secure) return `esdb://127.0.0.1:${this.port}?tls=false`;
    const credentials = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
    const caFile = encodeURIComponent(this.caFile).replace(/%2F/g, '/');
    return `esdb://${credentials}@127.0.0.1:${this.port}?tls=true&tlsCAFile=${caFile}`;
  }

  /** Starts on the given port (0: any free one; a restart passes the previous port). */
  async start(port = this.port): Promise<void> {
    const server = new grpc.Server();
    // A secure node authenticates every call before it reaches a handler (a bad login never gets further);
    // the stream operations are then authorised where the handler knows the stream.
    server.addService(StreamsService, {
      append: (
        call: grpc.ServerReadableStream<AppendReq, AppendResp>,
        callback: grpc.sendUnaryData<AppendResp>,
      ) => {
        const refused = this.authenticate(call.metadata);
        return refused ? callback(refused) : this.append(call, callback);
      },
      read: (call: grpc.ServerWritableStream<ReadReq, ReadResp>) => {
        const options = call.request.getOptions();
        const stream = options?.hasStream() ? nameOf(options.getStream()!.getStreamIdentifier()) : '$all';
        const refused =
          this.authenticate(call.metadata) ?? this.authorize(call.metadata, { operation: 'read', stream });
        if (refused) return void call.emit('error', refused);
        this.read(call);
      },
      batchAppend: (call: grpc.ServerDuplexStream<BatchAppendReq, BatchAppendResp>) => {
        const refused = this.authenticate(call.metadata);
        if (refused) return void call.emit('error', refused);
        this.batchAppend(call);
      },
    } as unknown as grpc.UntypedServiceImplementation);
    // Without ServerFeatures the client gets UNIMPLEMENTED, assumes an old server and uses plain Append.
    if (this.serverFeatures) {
      server.addService(ServerFeaturesService, {
        getSupportedMethods: (
          call: grpc.ServerUnaryCall<unknown, SupportedMethods>,
          callback: grpc.sendUnaryData<SupportedMethods>,
        ) => callback(this.authenticate(call.metadata) ?? null, supportedMethods()),
      } as unknown as grpc.UntypedServiceImplementation);
    }
    // Gossip.Read, for `esdb+discover://` (and several hosts in `esdb://`): a one-node cluster whose leader is
    // this server. Anonymous, as KurrentDB's OverrideAnonymousEndpointAccessForGossip allows by default.
    server.addService(GossipService, {
      read: (_call: grpc.ServerUnaryCall<unknown, ClusterInfo>, callback: grpc.sendUnaryData<ClusterInfo>) =>
        callback(null, this.clusterInfo()),
    } as unknown as grpc.UntypedServiceImplementation);
    const credentials = this.secure
      ? grpc.ServerCredentials.createSsl(
          null,
          [{ private_key: testCertificates().nodeKey, cert_chain: testCertificates().nodeCert }],
          false,
        )
      : grpc.ServerCredentials.createInsecure();
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, credentials, (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    this.server = server;
  }

  /** The gossip of a one-node cluster: this server, alive, leader, at 127.0.0.1:<port>. */
  private clusterInfo(): ClusterInfo {
    const member = new MemberInfo();
    const id = new UUID();
    id.setString('00000000-0000-4000-8000-000000000001');
    member.setInstanceId(id);
    member.setTimeStamp(String(BigInt(Date.now()) * TICKS_PER_MS));
    member.setState(MemberInfo.VNodeState.LEADER);
    member.setIsAlive(true);
    const endpoint = new EndPoint();
    endpoint.setAddress('127.0.0.1');
    endpoint.setPort(this.port);
    member.setHttpEndPoint(endpoint);
    const info = new ClusterInfo();
    info.setMembersList([member]);
    return info;
  }

  /**
   * Who a call logs in as, as KurrentDB's AuthenticationMiddleware finds it (`Transport/Http`): no
   * `authorization` header is the anonymous user; `Basic` credentials of a known user with the right password
   * are that user; anything else is answered HTTP 401 before any handler runs, which a gRPC client sees as
   * UNAUTHENTICATED "Received HTTP status code 401" (grpc-js maps the HTTP status). An insecure node has no
   * authentication at all: everyone is allowed everything.
   */
  private principal(metadata: grpc.Metadata): { name: string; groups: string[] } | 'anonymous' | 'refused' {
    const header = metadata.get('authorization')[0];
    if (header === undefined) return 'anonymous';
    const basic = /^Basic (.+)$/.exec(String(header));
    const decoded = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const name = decoded.slice(0, colon);
    const user = colon > 0 ? this.users.get(name) : undefined;
    if (!user || user.password !== decoded.slice(colon + 1)) return 'refused';
    return { name, groups: user.groups };
  }

  /** UNAUTHENTICATED for a bad login on a secure node (counted in `refusedLogins`); undefined otherwise. */
  private authenticate(metadata: grpc.Metadata): grpc.ServiceError | undefined {
    if (!this.secure || this.principal(metadata) !== 'refused') return undefined;
    this.refusedLogins += 1;
    const details = 'Received HTTP status code 401';
    return Object.assign(new Error(details), {
      code: grpc.status.UNAUTHENTICATED,
      details,
      metadata: new grpc.Metadata(),
    });
  }

  /**
   * Whether the caller may do this on a secure node, as KurrentDB's default access control decides
   * (docs `security/user-authorization.md`, "Default ACL"; `Streams.Read.cs` checks `ReadOperation` on the
   * stream or on `$all`, `Streams.Append.cs` and the BatchAppend worker `WriteOperation` on the stream):
   * `$admins` may do everything; `$all` and the other `$` streams are system streams, whose default ACL
   * (`$systemStreamAcl`) is `$admins` only; user streams follow `userStreamAcl` (by default every
   * authenticated user); the anonymous user may touch no stream (AllowAnonymousStreamAccess is false by
   * default since EventStoreDB 23.10). Refused: PERMISSION_DENIED "Access Denied" with the
   * `exception: access-denied` trailer (`RpcExceptions.AccessDenied`), which the client throws as
   * AccessDeniedError. Refusals are recorded in `denied`.
   */
  authorize(metadata: grpc.Metadata, { operation, stream }: StreamAccess): grpc.ServiceError | undefined {
    if (!this.secure) return undefined;
    const principal = this.principal(metadata);
    if (principal === 'refused') return this.authenticate(metadata);
    if (principal !== 'anonymous') {
      const { name, groups } = principal;
      if (groups.includes('$admins')) return undefined;
      const roles = stream.startsWith('$') ? ['$admins'] : this.userStreamAcl[operation];
      if (roles.some((role) => role === '$all' || role === name || groups.includes(role))) return undefined;
    }
    this.denied.push({ user: principal === 'anonymous' ? '(anonymous)' : principal.name, operation, stream });
    const trailers = new grpc.Metadata();
    trailers.set('exception', 'access-denied');
    const details = 'Access Denied';
    return Object.assign(new Error(details), {
      code: grpc.status.PERMISSION_DENIED,
      details,
      metadata: trailers,
    });
  }

  /** Stops at once, cutting open calls and subscriptions, as a crashed server would. */
  async stop(): Promise<void> {
    this.server?.forceShutdown();
    this.server = undefined;
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
      // Streams.Append.cs checks WriteOperation on the stream once the options are read, before the events.
      const denied = this.authorize(call.metadata, {
        operation: 'write',
        stream: nameOf(options.getStreamIdentifier()),
      });
      if (denied) return callback(denied);
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
        // The BatchAppend worker checks WriteOperation when an append's options arrive and answers a
        // refusal by correlation id: `Status.AccessDenied` (PERMISSION_DENIED, an AccessDenied detail).
        if (this.authorize(call.metadata, { operation: 'write', stream: streamName })) {
          const detail = pack(new AccessDenied(), 'event_store.client.AccessDenied');
          answer(streamName, (r) =>
            r.setError(status(grpc.status.PERMISSION_DENIED, 'Access Denied', detail)),
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

    // Idempotence: the same event ids again, in order, succeed without being written twice.
    const firstIndex = ids.length ? stream.findIndex((e) => e.id === ids[0]) : -1;
    if (firstIndex >= 0 && ids.every((id, i) => stream[firstIndex + i]?.id === id)) {
      return { ok: true, last: stream[firstIndex + ids.length - 1]! };
    }

    const ok =
      expected.kind === 'any' ||
      (expected.kind === 'no_stream' && current < 0n) ||
      (expected.kind === 'stream_exists' && current >= 0n) ||
      (expected.kind === 'revision' && expected.revision === current);
    if (!ok) return { ok: false, current };

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
    }
    this.data.streams.set(streamName, stream);
    this.data.appended.emit('appended');
    return { ok: true, last: stream[stream.length - 1]! };
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

  private subscribe(call: grpc.ServerWritableStream<ReadReq, ReadResp>, options: ReadReq.Options): void {
    const matches = filterOf(options);
    const all = options.getAll();
    let after = all?.hasPosition() ? BigInt(all.getPosition()!.getCommitPosition()) : -1n;
    if (all?.hasEnd()) after = this.data.log.at(-1)?.commit ?? -1n;
    const confirmation = new ReadResp();
    const confirm = new ReadResp.SubscriptionConfirmation();
    confirm.setSubscriptionId(`sub-${Math.random().toString(16).slice(2)}`);
    confirmation.setConfirmation(confirm);
    call.write(confirmation);

    let caughtUp = false;
    const pump = () => {
      for (const event of this.data.log) {
        if (event.commit <= after) continue;
        after = event.commit;
        if (matches(event)) call.write(eventResp(event));
      }
      if (!caughtUp) {
        caughtUp = true;
        const resp = new ReadResp();
        resp.setCaughtUp(new ReadResp.CaughtUp());
        call.write(resp);
      }
    };
    this.data.appended.on('appended', pump);
    const stop = () => this.data.appended.off('appended', pump);
    call.on('cancelled', stop);
    call.on('close', stop);
    call.on('error', stop);
    pump();
  }
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
