// The kafkajs client of the Kafka bus, made the same way on the event loop and on the bus's
// threads from settings a thread can take (no functions). `connectVia` opens every broker
// connection to one address instead of the one the broker advertises: a tunnel or port-forward
// to a single broker whose advertised listener is not reachable from here (a broker in a
// container or a cluster network), and the way the outage tests cut Kafka off through a proxy.
import { connect } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { Kafka } from 'kafkajs';
import type { ISocketFactory, KafkaConfig } from 'kafkajs';
import { mendKafkaRequestQueue } from './kafka-request-queue.ts';

export interface KafkaClientSettings {
  config: KafkaConfig;
  /** 'host:port' that every connection goes to, whatever address the broker advertises. */
  connectVia?: string;
}

/** `host` and `port` of a 'host:port' address, or an error that says what to write. */
export function parseAddress(address: string, what: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || host === '' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`${what} '${address}' is not host:port (for example 127.0.0.1:19092)`);
  }
  return { host, port };
}

/** Sockets to `address` for every broker; TLS keeps the broker's own name for SNI and checks. */
function socketsVia(address: string): ISocketFactory {
  const { host, port } = parseAddress(address, 'connectVia');
  return ({ host: advertised, ssl, onConnect }) => {
    const socket = ssl
      ? connectTls({ ...(typeof ssl === 'object' ? ssl : {}), host, port, servername: advertised }, onConnect)
      : connect({ host, port }, onConnect);
    socket.setKeepAlive(true, 60_000);
    return socket;
  };
}

export function kafkaClient({ config, connectVia }: KafkaClientSettings): Kafka {
  mendKafkaRequestQueue();
  return new Kafka(connectVia === undefined ? config : { ...config, socketFactory: socketsVia(connectVia) });
}
