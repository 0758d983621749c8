/**
 * A protocol-level EventStoreDB stand-in for tests: a grpc-js server built from the service definitions
 * that @eventstore/db-client ships, so the real, unmodified client speaks its real wire protocol to it.
 * It implements Streams.Append, Streams.Read (a stream or $all, forwards and backwards, from a revision
 * or position, with a count) and the $all subscription (catch-up, then live, with stream-prefix, regex
 * and event-type filters). ServerFeatures is left unimplemented, so the client uses plain Append.
 * It is test code only: snapcat's EventStoreDB adapter is verified against it, not against a real server.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { StreamsService } from '@eventstore/db-client/generated/streams_grpc_pb';
import { AppendReq, AppendResp, ReadReq, ReadResp } from '@eventstore/db-client/generated/streams_pb';
import { Empty, StreamIdentifier, UUID } from '@eventstore/db-client/generated/shared_pb';

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

  constructor(readonly data = new TestEventStoreData()) {}

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
    } as unknown as grpc.UntypedServiceImplementation);
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
  }

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
      this.data.appendCalls += 1;
      callback(null, this.commit(options, proposed));
    });
  }

  private commit(options: AppendReq.Options, proposed: AppendReq.ProposedMessage[]): AppendResp {
    const streamName = Buffer.from(options.getStreamIdentifier()!.getStreamName_asU8()).toString('utf8');
    const stream = this.data.streams.get(streamName) ?? [];
    const current = BigInt(stream.length) - 1n;
    const resp = new AppendResp();
    const ids = proposed.map((m) => uuidOf(m.getId()));

    // Idempotence: the same event ids again, in order, succeed without being written twice.
    const firstIndex = ids.length ? stream.findIndex((e) => e.id === ids[0]) : -1;
    if (firstIndex >= 0 && ids.every((id, i) => stream[firstIndex + i]?.id === id)) {
      return success(resp, stream[firstIndex + ids.length - 1]!);
    }

    const C = AppendReq.Options.ExpectedStreamRevisionCase;
    const expectedCase = options.getExpectedStreamRevisionCase();
    const ok =
      expectedCase === C.ANY ||
      (expectedCase === C.NO_STREAM && current < 0n) ||
      (expectedCase === C.STREAM_EXISTS && current >= 0n) ||
      (expectedCase === C.REVISION && BigInt(options.getRevision()) === current);
    if (!ok) {
      const wrong = new AppendResp.WrongExpectedVersion();
      if (current >= 0n) wrong.setCurrentRevision(current.toString());
      else wrong.setCurrentNoStream(new Empty());
      if (expectedCase === C.REVISION) wrong.setExpectedRevision(options.getRevision());
      else if (expectedCase === C.NO_STREAM) wrong.setExpectedNoStream(new Empty());
      else if (expectedCase === C.STREAM_EXISTS) wrong.setExpectedStreamExists(new Empty());
      else wrong.setExpectedAny(new Empty());
      resp.setWrongExpectedVersion(wrong);
      return resp;
    }

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
    return success(resp, stream[stream.length - 1]!);
  }

  private read(call: grpc.ServerWritableStream<ReadReq, ReadResp>): void {
    const options = call.request.getOptions()!;
    if (options.hasSubscription()) return this.subscribe(call, options);
    const backwards = options.getReadDirection() === ReadReq.Options.ReadDirection.BACKWARDS;
    const count = Number(options.getCount() || '0') || Number.MAX_SAFE_INTEGER;
    let events: StoredEvent[];
    if (options.hasStream()) {
      const s = options.getStream()!;
      const name = Buffer.from(s.getStreamIdentifier()!.getStreamName_asU8()).toString('utf8');
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

function success(resp: AppendResp, last: StoredEvent): AppendResp {
  const ok = new AppendResp.Success();
  ok.setCurrentRevision(last.revision.toString());
  const position = new AppendResp.Position();
  position.setCommitPosition(last.commit.toString());
  position.setPreparePosition(last.commit.toString());
  ok.setPosition(position);
  resp.setSuccess(ok);
  return resp;
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
