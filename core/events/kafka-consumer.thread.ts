// The thread behind a Kafka subscription (kafka.ts): runs the kafkajs consumer here, so fetching
// and decoding Kafka's answers stays off the event loop that serves requests, and posts each
// batch's records (bytes, transferred) to the subscribing thread, which runs the handler and
// answers; commits and close come the other way.
import { parentPort, workerData } from 'node:worker_threads';
import { kafkaClient } from './kafka-client.ts';
import type { KafkaClientSettings } from './kafka-client.ts';
import { lowerThisThreadPriority } from '../threads.ts';
import { runConsumer, toCrossing } from './kafka-consumer.ts';
import type { ConsumerSettings, CrossingError, PartitionRecords } from './kafka-consumer.ts';

export interface ConsumerThreadData {
  client: KafkaClientSettings;
  settings: ConsumerSettings;
}

/** From the subscribing thread. */
export type ToConsumerThread =
  | { type: 'handled'; id: number; failed: boolean }
  | { type: 'commit'; id: number; positions: [number, number][] }
  | { type: 'close' };

/** To the subscribing thread. */
export type FromConsumerThread =
  | { type: 'running' }
  | { type: 'records'; id: number; records: PartitionRecords }
  | { type: 'committed'; id: number; error?: CrossingError }
  | { type: 'failed'; error: CrossingError }
  | { type: 'closed' };

/** The handler's own rejection: the subscribing thread has reported it already. */
const REPORTED = new Error('the subscription handler failed');

const port = parentPort;
if (port === null) throw new Error('kafka-consumer.thread.ts runs as a worker thread: subscribe through openKafkaBus()');
const { client, settings } = workerData as ConsumerThreadData;
lowerThisThreadPriority();
const post = (message: FromConsumerThread, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

const waiting = new Map<number, (failed: boolean) => void>();
let nextId = 0;
const onRecords = (records: PartitionRecords): Promise<void> => new Promise((resolve, reject) => {
  const id = nextId++;
  waiting.set(id, (failed) => (failed ? reject(REPORTED) : resolve()));
  post({ type: 'records', id, records }, [records.bytes.buffer as ArrayBuffer, records.ends.buffer as ArrayBuffer, records.offsets.buffer as ArrayBuffer]);
});
const onFailure = (error: unknown): void => {
  if (error !== REPORTED) post({ type: 'failed', error: toCrossing(error) });
};

try {
  const consumer = await runConsumer(kafkaClient(client), settings, onRecords, onFailure);
  port.on('message', (message: ToConsumerThread) => {
    if (message.type === 'handled') {
      const settle = waiting.get(message.id);
      waiting.delete(message.id);
      settle?.(message.failed);
    } else if (message.type === 'commit') {
      consumer.commit(new Map(message.positions)).then(
        () => post({ type: 'committed', id: message.id }),
        (error: unknown) => post({ type: 'committed', id: message.id, error: toCrossing(error) }),
      );
    } else {
      // As on the event loop, disconnecting waits for a batch in flight: its handler finishes
      // (commit included) on the subscribing thread first.
      consumer.close().catch(() => undefined).finally(() => {
        post({ type: 'closed' });
        port.close();
      });
    }
  });
  post({ type: 'running' });
} catch (error) {
  post({ type: 'failed', error: toCrossing(error) });
  port.close();
}
