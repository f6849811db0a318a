// The second producer of the Kafka bus (kafka.ts): an idempotent kafkajs producer on this thread
// that sends the half of each publish bound for odd partitions, while the event loop's producer
// sends the even half. kafkajs encodes ~10 µs a message on the thread that sends it, so the two
// halves are encoded side by side instead of one after the other. Each partition always goes
// through the same producer, so each user's events keep their order.
import { parentPort, workerData } from 'node:worker_threads';
import type { Message, Producer } from 'kafkajs';
import { kafkaClient } from './kafka-client.ts';
import type { KafkaClientSettings } from './kafka-client.ts';
import { toCrossing } from './kafka-consumer.ts';
import type { CrossingError } from './kafka-consumer.ts';

export interface ProducerThreadData {
  client: KafkaClientSettings;
  topic: string;
}

/** Messages of one send: message i has key `keys[i]`, partition `partitions[i]`, value `bytes[ends[i-1], ends[i])`. */
export interface ThreadBatch {
  keys: string[];
  partitions: Int32Array;
  bytes: Uint8Array;
  ends: Uint32Array;
}

export type ToProducerThread =
  | { type: 'send'; id: number; batch: ThreadBatch }
  /** Kafka failed: disconnect, and connect afresh on the next send. */
  | { type: 'drop' }
  | { type: 'close' };

export type FromProducerThread = { type: 'sent'; id: number; error?: CrossingError } | { type: 'closed' };

const port = parentPort;
if (port === null) throw new Error('kafka-producer.thread.ts runs as a worker thread: publish through openKafkaBus()');
const { client, topic } = workerData as ProducerThreadData;
const kafka = kafkaClient(client);
const post = (message: FromProducerThread): void => port.postMessage(message);

let producer: Promise<Producer> | undefined;
function connected(): Promise<Producer> {
  producer ??= (async () => {
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 } });
    try {
      await p.connect();
      return p;
    } catch (error) {
      void p.disconnect().catch(() => undefined);
      throw error;
    }
  })();
  const attempt = producer;
  // A failed connect is tried again by the next send.
  attempt.catch(() => {
    if (producer === attempt) producer = undefined;
  });
  return attempt;
}

function drop(): Promise<void> {
  const p = producer;
  producer = undefined;
  return p === undefined ? Promise.resolve() : p.then((x) => x.disconnect(), () => undefined).catch(() => undefined);
}

function messagesOf({ keys, partitions, bytes, ends }: ThreadBatch): Message[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const messages: Message[] = new Array(keys.length);
  let start = 0;
  for (let i = 0; i < keys.length; i++) {
    const end = ends[i] as number;
    messages[i] = { key: keys[i] as string, value: buffer.subarray(start, end), partition: partitions[i] as number };
    start = end;
  }
  return messages;
}

port.on('message', (message: ToProducerThread) => {
  if (message.type === 'send') {
    connected()
      .then((p) => p.send({ topic, acks: -1, messages: messagesOf(message.batch) }))
      .then(() => post({ type: 'sent', id: message.id }), (error: unknown) => post({ type: 'sent', id: message.id, error: toCrossing(error) }));
  } else if (message.type === 'drop') {
    void drop();
  } else {
    void drop().finally(() => {
      post({ type: 'closed' });
      port.close();
    });
  }
});
