// The main-thread side of the Kafka bus's second producer (kafka-producer.thread.ts): hands a
// publish's odd-partition half to the thread, transferred as bytes, and settles when Kafka
// acknowledged it there.
import type { Message } from 'kafkajs';
import { endWorker, typescriptWorker } from '../threads.ts';
import type { KafkaClientSettings } from './kafka-client.ts';
import { fromCrossing } from './kafka-consumer.ts';
import type { FromProducerThread, ProducerThreadData, ThreadBatch, ToProducerThread } from './kafka-producer.thread.ts';

/** The producer on its own thread (kafka-producer.thread.ts). */
export interface SecondProducer {
  /** Sends `messages`, message i to partition `partitions[i]`; resolves once Kafka acknowledged. */
  send(messages: readonly Message[], partitions: readonly number[]): Promise<void>;
  /** Kafka failed: the thread disconnects and connects afresh on the next send. */
  drop(): void;
  close(): Promise<void>;
  /** The thread ended (it crashed, or was closed): start another. */
  readonly gone: boolean;
}

/** Starts the second producer's thread; it connects on its first send. */
export function producerThread(client: KafkaClientSettings, topic: string): SecondProducer {
  const data: ProducerThreadData = { client, topic };
  const worker = typescriptWorker(new URL('./kafka-producer.thread.ts', import.meta.url), data, 'kestrel-kafka-p');
  const sends = new Map<number, { resolve: () => void; reject: (error: unknown) => void }>();
  let nextId = 0;
  let gone: Error | undefined;
  const fail = (error: Error): void => {
    gone ??= error;
    for (const s of sends.values()) s.reject(error);
    sends.clear();
  };
  worker.on('error', fail);
  const exit = new Promise<void>((resolve) => worker.once('exit', () => {
    fail(new Error('the Kafka producer thread is gone'));
    resolve();
  }));
  let markClosed: () => void = () => undefined;
  const closedByThread = new Promise<void>((resolve) => { markClosed = resolve; });
  worker.on('message', (reply: FromProducerThread) => {
    if (reply.type === 'closed') markClosed();
    if (reply.type !== 'sent') return;
    const s = sends.get(reply.id);
    sends.delete(reply.id);
    if (reply.error === undefined) s?.resolve();
    else s?.reject(fromCrossing(reply.error));
  });
  const post = (message: ToProducerThread, transfer: ArrayBuffer[] = []): void => {
    if (gone === undefined) worker.postMessage(message, transfer);
  };
  return {
    send(messages, partitions) {
      if (gone !== undefined) return Promise.reject(gone);
      let total = 0;
      for (const m of messages) total += Buffer.byteLength(m.value as Buffer | string);
      const bytes = new Uint8Array(total);
      const ends = new Uint32Array(messages.length);
      let end = 0;
      messages.forEach((m, i) => {
        const value = typeof m.value === 'string' ? Buffer.from(m.value) : (m.value as Buffer);
        bytes.set(value, end);
        end += value.byteLength;
        ends[i] = end;
      });
      const batch: ThreadBatch = { keys: messages.map((m) => String(m.key)), partitions: Int32Array.from(partitions), bytes, ends };
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        sends.set(id, { resolve, reject });
        post({ type: 'send', id, batch }, [bytes.buffer, ends.buffer, batch.partitions.buffer as ArrayBuffer]);
      });
    },
    drop: () => post({ type: 'drop' }),
    async close() {
      post({ type: 'close' });
      await endWorker(worker, Promise.race([closedByThread, exit]));
      await exit;
    },
    get gone() {
      return gone !== undefined;
    },
  };
}
