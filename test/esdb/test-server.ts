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
import { randomUUID } from 'node:crypto';
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
  DeleteReq,
  DeleteResp,
  ReadReq,
  ReadResp,
  TombstoneReq,
  TombstoneResp,
} from '@eventstore/db-client/generated/streams_pb';
import { Status } from '@eventstore/db-client/generated/status_pb';
import {
  AccessDenied,
  AllStreamPosition,
  Empty,
  MaximumAppendSizeExceeded,
  StreamDeleted,
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
 * client's reconnection comes back), `timeout` (a commit or prepare timeout, nothing written),
 * `timeout-after-commit` (the same answer for a write that was committed all the same, as a commit timeout
 * may be: KurrentDB's `CommitTimeout` says only that the acknowledgements came late), `silent-after-commit`
 * (a write committed and never answered: a node that crashes, or a network cut, before its answer; a test
 * cuts the connection). `unknown` is no refusal but
 * the answer to a write result the server does not expect, which a client must not take for a busy node.
 * Reads are refused only for not-ready and too-busy.
 */
export type Refusal =
  | 'not-ready'
  | 'too-busy'
  | 'not-leader'
  | 'timeout'
  | 'timeout-after-commit'
  | 'silent-after-commit'
  | 'unknown';

/** Makes each message written on `call` go out `ms` after the one before it. */
function paceWrites(call: grpc.ServerWritableStream<ReadReq, ReadResp>, ms: number): void {
  const write = call.write.bind(call);
  let queue = Promise.resolve();
  call.write = (message: ReadResp) => {
    queue = queue
      .then(() => new Promise((resolve) => setTimeout(resolve, ms)))
      .then(() => {
        if (!call.cancelled && !call.destroyed) write(message);
      });
    return true;
  };
}

/** Refusals that let the write be committed first. */
const AFTER_COMMIT = new Set<Refusal | undefined>(['timeout-after-commit', 'silent-after-commit']);

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

/** `deleted`: the stream is hard-deleted, or soft-deleted and the append expected it to exist. */
type CommitResult = { ok: true; last: StoredEvent } | { ok: false; current: bigint; deleted?: true };

export interface EsdbTestServerOptions {
  /** Answer ServerFeatures (default true), so the client appends with BatchAppend; false: plain Append. */
  serverFeatures?: boolean;
  /** MaxAppendSize in bytes, counted as the real server counts (default 1 MiB). */
  maxAppendSize?: number;
  /** The bytes of the committed-events cache that deduplicates appends with `any` (default 8 MiB). */
  committedEventsCacheBytes?: number;
  /**
   * A secure node, as a real one runs by default: a TLS listener with a certificate from a private CA
   * (`server.caFile`), and KurrentDB's authentication and default access control (see `authorize`).
   * Default false: an `--insecure` node, plain HTTP/2, no authentication.
   */
  secure?: boolean;
  /** The user the connection string logs in as, on a secure node (default `admin`). */
  user?: string;
}

export interface TestEventStoreDataOptions {
  /**
   * What a fresh node holds before any client writes (default true): its epoch, users, default ACL and
   * projections registry, in `$` streams at the start of `$all` (see `seedSystemEvents`).
   */
  systemEvents?: boolean;
  /**
   * Run the standard projections `$by_category` and `$by_event_type` (default true), as a node started
   * with `--run-projections=All --start-standard-projections=true`: each event appended to a stream
   * that is not a system stream is followed in `$all` by `$>` link events in `$ce-<category>` and
   * `$et-<type>`.
   */
  standardProjections?: boolean;
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
  readonly standardProjections: boolean;

  constructor(options: TestEventStoreDataOptions = {}) {
    this.standardProjections = options.standardProjections ?? true;
    if (options.systemEvents ?? true) seedSystemEvents(this);
  }

  /**
   * Writes an event at the end of a stream and of the log: a client's append (its id, metadata and time),
   * or one the server writes itself (metadata, tombstones, links, system events).
   */
  write(
    streamName: string,
    type: string,
    data: string | Uint8Array,
    options: {
      id?: string;
      revision?: bigint;
      contentType?: string;
      created?: bigint;
      customMetadata?: Uint8Array;
    } = {},
  ): StoredEvent {
    const stream = this.streams.get(streamName) ?? [];
    const event: StoredEvent = {
      id: options.id ?? randomUUID(),
      streamName,
      revision: options.revision ?? lastRevision(stream) + 1n,
      commit: BigInt(this.log.length + 1) * STRIDE,
      type,
      contentType: options.contentType ?? 'application/json',
      created: options.created ?? BigInt(Date.now()) * TICKS_PER_MS,
      data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
      customMetadata: options.customMetadata ?? new Uint8Array(),
    };
    stream.push(event);
    this.log.push(event);
    this.streams.set(streamName, stream);
    return event;
  }

  /**
   * The metadata in force for a stream: the newest `$metadata` event of its metastream `$$<stream>`
   * (SystemStreams.MetastreamOf). A metastream itself keeps one event (the server's metastream metadata,
   * `MetaStreamMaxCount` = 1). Unreadable metadata counts as none, as `StreamMetadata.FromJsonBytes`
   * failing does in the index writer.
   */
  metadataOf(streamName: string): StreamMetadata {
    if (streamName.startsWith('$$')) return { maxCount: 1n, raw: {} };
    const event = this.streams.get(`$$${streamName}`)?.at(-1);
    if (!event) return { raw: {} };
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(Buffer.from(event.data).toString('utf8')) as Record<string, unknown>;
    } catch {
      return { raw: {} };
    }
    const revision = (v: unknown) => (typeof v === 'number' ? revisionOf(v) : undefined);
    const maxAge = raw[SystemMetadata.MaxAge];
    return {
      raw,
      maxCount: revision(raw[SystemMetadata.MaxCount]),
      maxAge: typeof maxAge === 'number' ? maxAge : undefined,
      tb: revision(raw[SystemMetadata.TruncateBefore]),
    };
  }

  /** Writes a stream's metadata as the server does its own (soft delete, undelete): a `$metadata` event. */
  writeMetadata(streamName: string, raw: Record<string, unknown>): StoredEvent {
    // JSON.stringify cannot write a bigint: `$tb` of a soft delete is long.MaxValue, written as a number.
    const json = JSON.stringify(raw, (_k, v: unknown) => (typeof v === 'bigint' ? `#${v}#` : v));
    return this.write(`$$${streamName}`, SystemEventTypes.StreamMetadata, json.replace(/"#(\d+)#"/g, '$1'));
  }

  /**
   * `$by_category` and `$by_event_type` (KurrentDB docs, server/features/streams.md, "Streams created by
   * system projections"): a link (`$>`, data `<revision>@<stream>`) to each new event of a user stream,
   * in `$ce-<the stream name up to its first dash>` and `$et-<event type>`.
   */
  project(events: StoredEvent[]): void {
    if (!this.standardProjections) return;
    for (const event of events) {
      if (event.streamName.startsWith('$') || event.type.startsWith('$')) continue;
      const link = `${event.revision}@${event.streamName}`;
      const category = event.streamName.split('-')[0]!;
      this.write(`$ce-${category}`, SystemEventTypes.LinkTo, link, {
        contentType: 'application/octet-stream',
      });
      this.write(`$et-${event.type}`, SystemEventTypes.LinkTo, link, {
        contentType: 'application/octet-stream',
      });
    }
  }
}

/** EventNumber.DeletedStream (long.MaxValue): a tombstone's revision, and the `$tb` of a soft delete. */
export const DELETED_STREAM = 2n ** 63n - 1n;

/** SystemEventTypes and SystemMetadata (KurrentDB `src/KurrentDB.Core/Services/SystemNames.cs`). */
export const SystemEventTypes = {
  StreamDeleted: '$streamDeleted',
  StreamMetadata: '$metadata',
  LinkTo: '$>',
  Settings: '$settings',
  EpochInformation: '$epoch-information',
} as const;
const SystemMetadata = { MaxAge: '$maxAge', MaxCount: '$maxCount', TruncateBefore: '$tb' } as const;

interface StreamMetadata {
  maxCount?: bigint;
  /** Seconds. */
  maxAge?: number;
  tb?: bigint;
  raw: Record<string, unknown>;
}

/** A revision read from metadata JSON: long.MaxValue does not survive a double, anything that large is it. */
const revisionOf = (value: number): bigint =>
  value >= Number(DELETED_STREAM) ? DELETED_STREAM : BigInt(Math.trunc(value));

/** The revision of a stream's last event (a tombstone's is DELETED_STREAM); -1 when it has none. */
function lastRevision(stream: StoredEvent[] | undefined): bigint {
  return stream?.at(-1)?.revision ?? -1n;
}

/**
 * What a fresh node writes before any client (stand-ins, with their real stream names and event types):
 * the epoch (`$epoch-information`, SystemStreams.EpochInformationStream), the default users (`$users`
 * listing them, `$user-admin` and `$user-ops` holding them), the default ACL (`$settings`), and the
 * projections registry (`$projections-$all`: `$ProjectionsInitialized`, then `$ProjectionCreated` per
 * standard projection; docs server/features/streams.md, "Projections events and streams").
 */
function seedSystemEvents(data: TestEventStoreData): void {
  const json = (value: unknown) => JSON.stringify(value);
  data.write(
    '$epoch-information',
    SystemEventTypes.EpochInformation,
    json({ epochNumber: 0, epochPosition: 0, epochId: randomUUID(), leaderInstanceId: randomUUID() }),
  );
  for (const login of ['admin', 'ops']) {
    data.write('$users', '$User', login, { contentType: 'application/octet-stream' });
    data.write(
      `$user-${login}`,
      '$user',
      json({ loginName: login, fullName: login, groups: [`$${login}s`], disabled: false }),
    );
  }
  const acl = (who: string) => ({ $r: who, $w: who, $d: who, $mr: who, $mw: who });
  data.write(
    '$settings',
    SystemEventTypes.Settings,
    json({ $userStreamAcl: acl('$all'), $systemStreamAcl: acl('$admins') }),
  );
  data.write('$projections-$all', '$ProjectionsInitialized', json({}));
  for (const name of [
    '$streams',
    '$stream_by_category',
    '$by_category',
    '$by_event_type',
    '$by_correlation_id',
  ]) {
    data.write('$projections-$all', '$ProjectionCreated', name, { contentType: 'application/octet-stream' });
  }
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
  /** Appends answered with a refusal that wrote nothing (`refuse`), over either path. */
  refusedAppends = 0;
  /**
   * Each message of a $all subscription goes out this long after the one before: a node scanning a large log
   * between them (a filtered catch-up sends a checkpoint every so many events scanned, and nothing else).
   */
  subscriptionPaceMs = 0;
  /**
   * What subscriptions did: events sent, checkpoints sent, and events a filtered subscription's catch-up
   * read from the log (matching or not), as `ConsideredEventsCount` counts them.
   */
  readonly subscriptions = { events: 0, checkpoints: 0, eventsScanned: 0 };
  /**
   * Every event Streams.Read wrote to a client, a read's or a subscription's, and their data and metadata
   * bytes: what a reader downloaded.
   */
  readonly sent = { events: 0, bytes: 0 };
  private readonly committedEventsCacheBytes: number;
  /** The node's in-memory cache of recently committed event ids; a restart empties it. */
  private committedEvents: CommittedEvents;
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
   * a stream whose name does not start with `$`, and its metadata (`$mr`, `$mw`, in `$$<stream>`). `$all`
   * is every authenticated user, as the default is (docs `security/acl.md`, "Default ACL").
   */
  userStreamAcl: { read: string[]; write: string[]; metadataRead: string[]; metadataWrite: string[] } = {
    read: ['$all'],
    write: ['$all'],
    metadataRead: ['$all'],
    metadataWrite: ['$all'],
  };
  /** Stream operations refused so far, by user (`(anonymous)` without credentials); bad logins as `refusedLogins`. */
  readonly denied: { user: string; operation: string; stream: string }[] = [];
  refusedLogins = 0;

  constructor(
    readonly data = new TestEventStoreData(),
    options: EsdbTestServerOptions = {},
  ) {
    this.serverFeatures = options.serverFeatures ?? true;
    this.maxAppendSize = options.maxAppendSize ?? DEFAULT_MAX_APPEND_SIZE;
    this.committedEventsCacheBytes = options.committedEventsCacheBytes ?? COMMITTED_EVENTS_CACHE_BYTES;
    this.committedEvents = new CommittedEvents(this.committedEventsCacheBytes);
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
      delete: (
        call: grpc.ServerUnaryCall<DeleteReq, DeleteResp>,
        callback: grpc.sendUnaryData<DeleteResp>,
      ) => {
        const refused = this.refuseDeletion(call);
        return refused ? callback(refused) : this.delete(call.request.getOptions()!, false, callback);
      },
      tombstone: (
        call: grpc.ServerUnaryCall<TombstoneReq, TombstoneResp>,
        callback: grpc.sendUnaryData<TombstoneResp>,
      ) => {
        const refused = this.refuseDeletion(call);
        return refused ? callback(refused) : this.delete(call.request.getOptions()!, true, callback);
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
      // `$$<stream>` holds the stream's metadata, governed by the stream's ACL ($mr/$mw), not as a system stream.
      const metadataOf = stream.startsWith('$$') ? stream.slice(2) : undefined;
      const right =
        metadataOf === undefined ? operation : operation === 'read' ? 'metadataRead' : 'metadataWrite';
      const roles = (metadataOf ?? stream).startsWith('$') ? ['$admins'] : this.userStreamAcl[right];
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

  /**
   * Streams.Delete and Streams.Tombstone check `DeleteOperation` on the stream (`Streams.Delete.cs`,
   * `Streams.Tombstone.cs`); the default ACL grants delete to the same roles as write.
   */
  private refuseDeletion(
    call: grpc.ServerUnaryCall<DeleteReq | TombstoneReq, unknown>,
  ): grpc.ServiceError | undefined {
    const stream = nameOf(call.request.getOptions()!.getStreamIdentifier());
    return this.authenticate(call.metadata) ?? this.authorize(call.metadata, { operation: 'write', stream });
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
      const refused = AFTER_COMMIT.has(this.refusal)
        ? undefined
        : this.refusal && this.unaryRefusal(this.refusal);
      if (refused) {
        this.refusedAppends += 1;
        return callback(refused);
      }
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
      if (this.refusal === 'timeout-after-commit') return callback(this.unaryRefusal('timeout'));
      if (this.refusal === 'silent-after-commit') return;
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
      if (result.deleted) return callback(streamDeletedError(streamName));
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
      case 'timeout-after-commit':
      case 'silent-after-commit':
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
      if (refusal && !AFTER_COMMIT.has(refusal)) this.refusedAppends += 1;
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
      if (refusal === 'silent-after-commit') return;
      if (refusal === 'timeout-after-commit') {
        answer(write.streamName, (r) =>
          r.setError(status(grpc.status.DEADLINE_EXCEEDED, 'Timeout', timeoutDetail())),
        );
        return;
      }
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
        if (result.deleted) {
          // Google.Rpc.Status.StreamDeleted: code NotFound, message "StreamDeleted", the stream in the detail.
          const detail = new StreamDeleted();
          detail.setStreamIdentifier(identifier(write.streamName));
          const packed = pack(detail, 'event_store.client.StreamDeleted');
          resp.setError(status(grpc.status.NOT_FOUND, 'StreamDeleted', packed));
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
    const verdict = this.checkCommit(streamName, expected);
    const { current } = verdict;
    if (verdict.decision === 'deleted') return { ok: false, current, deleted: true };
    const ids = proposed.map((m) => uuidOf(m.getId()));

    const duplicate = verdict.softDeleted
      ? 'write'
      : this.checkIdempotence(streamName, stream, expected, ids);
    if (typeof duplicate === 'object') return { ok: true, last: stream[Number(duplicate.last)]! };
    if (duplicate === 'corrupted' || verdict.decision === 'wrong') return { ok: false, current };

    // Writing a soft-deleted stream's metadata undeletes the stream too (`softUndeleteMetastream`).
    const original = streamName.startsWith('$$') ? streamName.slice(2) : undefined;
    const undeleteOriginal = original !== undefined && this.data.metadataOf(original).tb === DELETED_STREAM;
    const created = BigInt(Date.now()) * TICKS_PER_MS;
    const written: StoredEvent[] = [];
    for (const message of proposed) {
      const metadata = message.getMetadataMap();
      const event = this.data.write(streamName, metadata.get('type') ?? '', message.getData_asU8(), {
        id: uuidOf(message.getId()),
        revision: current + 1n + BigInt(written.length),
        contentType: metadata.get('content-type') ?? 'application/octet-stream',
        created,
        customMetadata: message.getCustomMetadata_asU8(),
      });
      written.push(event);
      this.committedEvents.put(event.id, streamName, event.revision);
    }
    // StorageWriterService: appending to a soft-deleted stream recreates it, its earlier events truncated
    // (`SoftUndeleteStream`: the metadata again, with `$tb` = the revision the new events start at).
    if (verdict.softDeleted) {
      this.data.writeMetadata(streamName, { ...this.data.metadataOf(streamName).raw, $tb: current + 1n });
    }
    if (undeleteOriginal) {
      const tb = lastRevision(this.data.streams.get(original)) + 1n;
      this.data.writeMetadata(original, { ...this.data.metadataOf(original).raw, $tb: tb });
    }
    this.data.project(written);
    this.data.appended.emit('appended');
    return { ok: true, last: written.at(-1) ?? stream[stream.length - 1]! };
  }

  /**
   * Whether a write with this expected revision may go ahead, as KurrentDB `IndexWriter.CheckCommit`
   * decides (idempotence aside): a hard-deleted stream refuses every write (Deleted); a soft-deleted one
   * refuses `stream_exists` (Deleted) but takes `no_stream`, which recreates it; `stream_exists` also
   * holds for a stream that has only metadata.
   */
  private checkCommit(
    streamName: string,
    expected: Expected,
  ): { decision: 'ok' | 'wrong' | 'deleted'; current: bigint; softDeleted: boolean } {
    const current = lastRevision(this.data.streams.get(streamName));
    const softDeleted = this.data.metadataOf(streamName).tb === DELETED_STREAM;
    const verdict = (decision: 'ok' | 'wrong' | 'deleted') => ({ decision, current, softDeleted });
    if (current === DELETED_STREAM) return verdict('deleted');
    switch (expected.kind) {
      case 'any':
        return verdict('ok');
      case 'stream_exists':
        if (softDeleted) return verdict('deleted');
        return verdict(current >= 0n || this.data.streams.has(`$$${streamName}`) ? 'ok' : 'wrong');
      case 'no_stream':
        return verdict(current < 0n || softDeleted ? 'ok' : 'wrong');
      case 'revision':
        return verdict(expected.revision === current ? 'ok' : 'wrong');
    }
  }

  /**
   * Streams.Delete and Streams.Tombstone, as KurrentDB `Streams.Delete.cs` and `StorageWriterService`
   * (`WriteDelete`) do them. A soft delete writes `{"$tb": long.MaxValue}` as the stream's metadata
   * (replacing what it had): reads find no stream, and an append recreates it. A hard delete writes a
   * `$streamDeleted` tombstone into the stream itself, revision long.MaxValue, empty data: `$all` shows
   * it, reads and writes then fail with StreamDeleted (`RpcExceptions.StreamDeleted`). A soft delete of
   * a stream that never existed, or a wrong expected revision, fails with `RpcExceptions.WrongExpectedVersion`.
   */
  private delete(
    options: DeleteReq.Options | TombstoneReq.Options,
    hard: boolean,
    callback: grpc.sendUnaryData<DeleteResp | TombstoneResp>,
  ): void {
    const refused = this.refusal && this.unaryRefusal(this.refusal);
    if (refused) return callback(refused);
    const streamName = nameOf(options.getStreamIdentifier());
    const C = DeleteReq.Options.ExpectedStreamRevisionCase; // TombstoneReq numbers its cases the same
    const expected = expectedOf(options.getExpectedStreamRevisionCase(), () => options.getRevision(), {
      revision: C.REVISION,
      noStream: C.NO_STREAM,
      streamExists: C.STREAM_EXISTS,
    });
    const { decision, current } = this.checkCommit(streamName, expected);
    if (decision === 'deleted') return callback(streamDeletedError(streamName));
    const neverExisted = current < 0n && !this.data.streams.has(`$$${streamName}`);
    if (decision === 'wrong' || (!hard && neverExisted)) {
      return callback(wrongExpectedVersionError(streamName, expected, current));
    }
    const event = hard
      ? this.data.write(streamName, SystemEventTypes.StreamDeleted, '', {
          revision: DELETED_STREAM,
          contentType: 'application/octet-stream',
        })
      : this.data.writeMetadata(streamName, { $tb: DELETED_STREAM });
    this.data.appended.emit('appended');
    const resp = hard ? new TombstoneResp() : new DeleteResp();
    const position = hard ? new TombstoneResp.Position() : new DeleteResp.Position();
    position.setCommitPosition(event.commit.toString());
    position.setPreparePosition(event.commit.toString());
    (resp as DeleteResp).setPosition(position as DeleteResp.Position);
    callback(null, resp);
  }

  /**
   * Whether an append is a retry of one already written, as KurrentDB `IndexWriter.CheckCommit` decides
   * (`src/KurrentDB.Core/Services/Storage/ReaderIndex/IndexWriter.cs`) and the storage writer answers
   * (`StorageWriterService.ActOnCommitCheckFailure`); the expected-revision check (`checkCommit`) decides
   * the rest:
   * - `any` and `stream_exists`: the ids are looked up in the cache of recently committed events
   *   (`_committedEvents`, a `BoundedCache` of `ESConsts.CommittedEventsMemCacheLimit`, 8 MiB, filled as
   *   the writer commits, in process memory). Every id found in this stream: the append was written
   *   already (`Idempotent`), success with the last of those events. The first not found: a new append,
   *   written, even if later ids are duplicates. The first found but a later one not:
   *   `CorruptedIdempotency`, answered WrongExpectedVersion. An append older than the cache holds, or from
   *   before a restart, is written again.
   * - an exact revision, or `no_stream` (-1), below the stream's current revision: the ids are compared
   *   with the events in the slots after the expected revision (cache or index: no bound). All equal:
   *   idempotent; the first differs (or none given): a wrong expected version (`ConsistencyCheckFailure`);
   *   the first equal but a later one not (or past the end): `CorruptedIdempotency`, WrongExpectedVersion.
   * - at or above the current revision: no look for duplicates.
   * A retry that was written but is not yet replicated (`IdempotentNotReady`) cannot happen on one node.
   */
  private checkIdempotence(
    streamName: string,
    stream: readonly StoredEvent[],
    expected: Expected,
    ids: readonly string[],
  ): 'write' | 'corrupted' | { last: bigint } {
    if (expected.kind === 'any' || expected.kind === 'stream_exists') {
      let last: bigint | undefined;
      for (const [i, id] of ids.entries()) {
        const committed = this.committedEvents.get(id);
        if (!committed || committed.streamName !== streamName) return i === 0 ? 'write' : 'corrupted';
        last = committed.revision;
      }
      return last === undefined ? 'write' : { last };
    }
    const revision = expected.kind === 'revision' ? expected.revision : -1n;
    if (revision >= BigInt(stream.length) - 1n || ids.length === 0) return 'write';
    for (const [i, id] of ids.entries()) {
      if (stream[Number(revision) + 1 + i]?.id !== id) return i === 0 ? 'write' : 'corrupted';
    }
    return { last: revision + BigInt(ids.length) };
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
      const stream = this.visibleEvents(name);
      if (stream === 'deleted') {
        call.emit('error', streamDeletedError(name));
        return;
      }
      if (!stream) {
        const notFound = new ReadResp.StreamNotFound();
        notFound.setStreamIdentifier(identifier(name));
        const resp = new ReadResp();
        resp.setStreamNotFound(notFound);
        call.write(resp);
        call.end();
        return;
      }
      const last = lastRevision(this.data.streams.get(name));
      const from = s.hasRevision() ? BigInt(s.getRevision()) : backwards ? last : 0n;
      events = backwards
        ? stream.filter((e) => e.revision <= from).reverse()
        : stream.filter((e) => e.revision >= from);
    } else {
      const all = options.getAll()!;
      const from = all.hasPosition() ? BigInt(all.getPosition()!.getCommitPosition()) : undefined;
      // `$all` bypasses the index: deleted, truncated and tombstone events stay in it until a scavenge
      // (docs server/features/streams.md, "Deleting streams and events"), so no metadata applies here.
      // EventStoreDB: forwards from a position includes the event at it; backwards gives the ones before it.
      events = backwards
        ? this.data.log.filter((e) => from === undefined || e.commit < from).reverse()
        : this.data.log.filter((e) => from === undefined || e.commit >= from);
    }
    for (const event of events.slice(0, count)) this.sendEvent(call, event);
    call.end();
  }

  private sendEvent(call: grpc.ServerWritableStream<ReadReq, ReadResp>, event: StoredEvent): void {
    this.sent.events += 1;
    this.sent.bytes += event.data.byteLength + event.customMetadata.byteLength;
    call.write(eventResp(event));
  }

  /**
   * A stream's events as a read sees them (KurrentDB `IndexReader.ReadStreamEventsForward/Backward`):
   * 'deleted' after a tombstone; undefined when there is none or it is soft-deleted (`$tb` = long.MaxValue,
   * read as StreamNotFound); otherwise without those before `$tb`, beyond the newest `$maxCount`, or older
   * than `$maxAge` seconds.
   */
  private visibleEvents(name: string): StoredEvent[] | 'deleted' | undefined {
    const stream = this.data.streams.get(name);
    const last = lastRevision(stream);
    if (last === DELETED_STREAM) return 'deleted';
    const meta = this.data.metadataOf(name);
    if (!stream || meta.tb === DELETED_STREAM) return undefined;
    let min = 0n;
    if (meta.maxCount !== undefined) min = last - meta.maxCount + 1n;
    if (meta.tb !== undefined && meta.tb > min) min = meta.tb;
    const oldest =
      meta.maxAge === undefined ? undefined : BigInt(Date.now() - meta.maxAge * 1000) * TICKS_PER_MS;
    return stream.filter((e) => e.revision >= min && (oldest === undefined || e.created >= oldest));
  }

  /**
   * The $all subscription: a confirmation, the stored events after the start, CaughtUp, then live ones.
   * Without a filter every event goes out (KurrentDB `Enumerator.AllSubscription`); with one, the events
   * it matches and checkpoints (`filteredSubscription`). Positions compare by commit, then prepare.
   */
  private subscribe(call: grpc.ServerWritableStream<ReadReq, ReadResp>, options: ReadReq.Options): void {
    if (this.subscriptionPaceMs > 0) paceWrites(call, this.subscriptionPaceMs);
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
      this.sendEvent(call, event);
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
    method(streams, 'delete'),
    method(streams, 'tombstone'),
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

/** RpcExceptions.StreamDeleted: FAILED_PRECONDITION, the stream named in the trailers. */
function streamDeletedError(streamName: string): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  metadata.set('exception', 'stream-deleted');
  metadata.set('stream-name', streamName);
  const details = `Event stream '${streamName}' is deleted.`;
  return Object.assign(new Error(details), { code: grpc.status.FAILED_PRECONDITION, details, metadata });
}

/** RpcExceptions.WrongExpectedVersion("Delete", ...): versions as the server's longs (-1 none, -2 any, -4 exists). */
function wrongExpectedVersionError(
  streamName: string,
  expected: Expected,
  actual: bigint,
): grpc.ServiceError {
  const long = { any: -2n, no_stream: -1n, stream_exists: -4n };
  const expectedVersion = expected.kind === 'revision' ? expected.revision : long[expected.kind];
  const metadata = new grpc.Metadata();
  metadata.set('exception', 'wrong-expected-version');
  metadata.set('stream-name', streamName);
  metadata.set('expected-version', expectedVersion.toString());
  metadata.set('actual-version', actual.toString());
  const details =
    `Delete failed due to WrongExpectedVersion. Stream: ${streamName}, ` +
    `Expected version: ${expectedVersion}, Actual version: ${actual}`;
  return Object.assign(new Error(details), { code: grpc.status.FAILED_PRECONDITION, details, metadata });
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
