// One subscription's kafkajs consumer, the same code on the event loop or on a thread of its own
// (kafka-consumer.thread.ts): it hands on each fetched batch of one partition as records (the
// messages' bytes back to back, undecoded) and marks them consumed once `onRecords` resolved.
// Offsets are committed only when asked (`commit`), after the subscriber stored what it got.
// `consumerThread` starts it on the thread and relays records, commits and close across.
import type { Kafka } from 'kafkajs';
import { endWorker, typescriptWorker } from '../threads.ts';
import type { KafkaClientSettings } from './kafka-client.ts';
import type { ConsumerThreadData, FromConsumerThread, ToConsumerThread } from './kafka-consumer.thread.ts';

/** Records of one partition: record i is `bytes[ends[i-1], ends[i])`, at Kafka offset `offsets[i]`. */
export interface PartitionRecords {
  partition: number;
  bytes: Uint8Array;
  ends: Uint32Array;
  offsets: Float64Array;
}

export interface ConsumerSettings {
  topic: string;
  group: string;
  /** Most bytes per fetch, all partitions together (see KafkaBusOptions.fetchMaxBytes). */
  fetchMaxBytes: number;
}

export interface RunningConsumer {
  /** Commits `next` per partition (the offset to resume from). Throws what kafkajs threw. */
  commit(positions: ReadonlyMap<number, number>): Promise<void>;
  close(): Promise<void>;
}

/** A commit or subscribe failure as it crosses threads: kafkajs's `retriable` decides what follows. */
export interface CrossingError {
  message: string;
  name: string;
  retriable: boolean;
}

/** kafkajs's own test for an error its consumer restarts on: retries ran out, or the root cause is retriable. */
export function retriable(error: unknown): boolean {
  let cause = error;
  while (cause instanceof Error && cause.cause !== undefined) cause = cause.cause;
  return (error instanceof Error && error.name === 'KafkaJSNumberOfRetriesExceeded') || (cause as { retriable?: unknown } | undefined)?.retriable === true;
}

export function toCrossing(error: unknown): CrossingError {
  return error instanceof Error
    ? { message: error.message, name: error.name, retriable: retriable(error) }
    : { message: String(error), name: 'Error', retriable: false };
}

export function fromCrossing(error: CrossingError): Error {
  return Object.assign(new Error(error.message), { name: error.name, retriable: error.retriable });
}

/**
 * Starts consuming `topic` in `group` from its committed offsets (the beginning for a new group).
 * A rejection of `onRecords`, or a message it cannot hand on (no value), stops this consumer for
 * good and goes to `onFailure`, leaving those records uncommitted; `onRecords` is not called again.
 */
export async function runConsumer(
  kafka: Kafka, settings: ConsumerSettings, onRecords: (records: PartitionRecords) => Promise<void>, onFailure: (error: unknown) => void,
): Promise<RunningConsumer> {
  const { topic, group, fetchMaxBytes } = settings;
  // While the broker is away kafkajs restarts a failed consumer after its retries: backing off
  // to 5 s between tries keeps an outage from becoming a busy loop of reconnects, and costs at
  // most that much delay once the broker is back.
  const consumer = kafka.consumer({
    groupId: group, maxWaitTimeInMs: 500, maxBytes: fetchMaxBytes, maxBytesPerPartition: Math.min(fetchMaxBytes, 1024 * 1024),
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5_000 },
  });
  let failed = false;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, isRunning, isStale }) => {
        if (failed || !isRunning() || isStale() || batch.messages.length === 0) return;
        try {
          let total = 0;
          for (const m of batch.messages) {
            if (m.value === null) throw new Error(`topic ${topic} partition ${batch.partition} offset ${m.offset}: message without a value`);
            total += m.value.byteLength;
          }
          const bytes = new Uint8Array(total);
          const ends = new Uint32Array(batch.messages.length);
          const offsets = new Float64Array(batch.messages.length);
          let end = 0;
          batch.messages.forEach((m, i) => {
            bytes.set(m.value as Buffer, end);
            end += (m.value as Buffer).byteLength;
            ends[i] = end;
            offsets[i] = Number(m.offset);
          });
          await onRecords({ partition: batch.partition, bytes, ends, offsets });
          resolveOffset((batch.messages.at(-1) as { offset: string }).offset);
        } catch (error) {
          // Stop this consumer; the group's next member resumes from the last commit.
          failed = true;
          onFailure(error);
          setImmediate(() => void consumer.stop().catch(() => undefined));
        }
      },
    });
  } catch (error) {
    await consumer.disconnect().catch(() => undefined);
    throw error;
  }
  return {
    commit: (positions) => consumer.commitOffsets([...positions].map(([partition, next]) => ({ topic, partition, offset: String(next) }))),
    close: () => consumer.disconnect(),
  };
}

/**
 * A consumer on a thread of its own (kafka-consumer.thread.ts): it fetches and decodes there,
 * and the records come here, transferred, for `onRecords`; a failure of `onRecords` or of the
 * consumer after it started goes to `onError`.
 */
export function consumerThread(
  client: KafkaClientSettings, settings: ConsumerSettings, onRecords: (records: PartitionRecords) => Promise<void>, onError: (error: unknown) => void,
): Promise<RunningConsumer> {
  const data: ConsumerThreadData = { client, settings };
  const worker = typescriptWorker(new URL('./kafka-consumer.thread.ts', import.meta.url), data, 'kestrel-kafka-c');
  const commits = new Map<number, { resolve: () => void; reject: (error: unknown) => void }>();
  let nextCommit = 0;
  let running = false;
  let exited = false;
  const exit = new Promise<void>((resolve) => worker.once('exit', () => {
    exited = true;
    for (const c of commits.values()) c.reject(new Error(`the Kafka consumer thread of group '${settings.group}' is gone`));
    commits.clear();
    resolve();
  }));
  const send = (message: ToConsumerThread): void => {
    if (!exited) worker.postMessage(message);
  };
  let markClosed: () => void = () => undefined;
  const closedByThread = new Promise<void>((resolve) => { markClosed = resolve; });
  return new Promise<RunningConsumer>((resolve, reject) => {
    worker.on('error', (error) => {
      if (running) onError(error);
      else reject(error);
    });
    void exit.then(() => {
      if (!running) reject(new Error(`the Kafka consumer thread of group '${settings.group}' exited before it consumed`));
    });
    worker.on('message', (message: FromConsumerThread) => {
      if (message.type === 'records') {
        // On this thread, a failed handler is reported here (runConsumer reports its own).
        onRecords(message.records).then(
          () => send({ type: 'handled', id: message.id, failed: false }),
          (error: unknown) => {
            onError(error);
            send({ type: 'handled', id: message.id, failed: true });
          },
        );
      } else if (message.type === 'committed') {
        const c = commits.get(message.id);
        commits.delete(message.id);
        if (message.error === undefined) c?.resolve();
        else c?.reject(fromCrossing(message.error));
      } else if (message.type === 'failed') {
        if (running) onError(fromCrossing(message.error));
        else reject(fromCrossing(message.error));
      } else if (message.type === 'closed') {
        markClosed();
      } else if (message.type === 'running') {
        running = true;
        resolve({
          commit: (positions) => new Promise<void>((resolveCommit, rejectCommit) => {
            if (exited) {
              rejectCommit(new Error(`the Kafka consumer of group '${settings.group}' is closed`));
              return;
            }
            const id = nextCommit++;
            commits.set(id, { resolve: resolveCommit, reject: rejectCommit });
            send({ type: 'commit', id, positions: [...positions] });
          }),
          async close() {
            send({ type: 'close' });
            await endWorker(worker, Promise.race([closedByThread, exit]));
            await exit;
          },
        });
      }
    });
  });
}
