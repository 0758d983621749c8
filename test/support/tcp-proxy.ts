import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a port of its own, standing for an address between a client and a real server: a DNS name
 * moved to another node (`target`), a network that drops every connection at once (`dropAll`) and refuses
 * new ones for a while (`refusing`), or one that drops every packet (`blackhole`: connections stay open,
 * nothing goes through).
 */
export class TcpProxy {
  /** When each connection was accepted (ms since the epoch). */
  readonly accepted: number[] = [];
  /** While set, a new connection is closed as soon as it is accepted. */
  refusing = false;
  /** While set, nothing is forwarded either way (and new connections are accepted). */
  blackhole = false;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  constructor(public target: number) {
    this.server = createServer((client) => {
      if (this.refusing) return void client.destroy();
      this.accepted.push(Date.now());
      const upstream = connect(this.target, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => (socket === client ? upstream : client).destroy());
        socket.on('close', () => {
          this.sockets.delete(socket);
          (socket === client ? upstream : client).destroy();
        });
      }
      const forward = (from: Socket, to: Socket) =>
        from.on('data', (chunk: Buffer) => void (this.blackhole || to.write(chunk)));
      forward(client, upstream);
      forward(upstream, client);
    });
  }
  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port)),
    );
  }
  /** Cuts every open connection, as a network failure or a crashed node does. */
  dropAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }
  close(): Promise<void> {
    this.dropAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
