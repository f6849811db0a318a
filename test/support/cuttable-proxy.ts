// A TCP proxy to a Kafka broker that a test can cut and restore, so Kafka "goes away" without
// stopping the shared broker. The Kafka bus reaches the broker only through it when given
// `connectVia: proxy.address` (on every thread of the bus): every connection, whatever host the
// broker's metadata advertises, goes to the proxy, which forwards it to the one broker it was made for.
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export class CuttableProxy {
  up = true;
  port = 0;
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;

  constructor(readonly host: string, readonly upstreamPort: number) {
    this.#server = createServer((client) => {
      if (!this.up) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: this.host, port: this.upstreamPort });
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  /** A proxy to the first broker of `KAFKA_BROKERS` (default 127.0.0.1:9092). */
  static forTestBroker(): CuttableProxy {
    const broker = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')[0]?.trim() ?? '127.0.0.1:9092';
    const [host = '127.0.0.1', port = '9092'] = broker.split(':');
    return new CuttableProxy(host, Number(port));
  }

  /** Starts listening on a free loopback port and returns it. */
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this.port;
  }

  /** For the bus's `connectVia`: every connection goes to the proxy, whatever broker address it was told. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Drops every open connection; new ones are reset until `restore()`. */
  cut(): void {
    this.up = false;
    for (const s of this.#sockets) s.destroy();
  }

  restore(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
