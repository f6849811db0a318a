// One subscription's kafkajs consumer, the same code on the event loop or on a thread of its own
// (kafka-consumer.thread.ts): it hands on each fetched batch of one partition as records (the
// messages' bytes back to back, undecoded) and marks them consumed once `onRecords` resolved.
// Offsets are committed only when asked (`commit`), after the subscriber stored what it got.
import type { Kafka } from 'kafkajs';

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
    groupId: group, maxWaitTimeInMs: 500, maxBytes: fetchMaxBytes, maxBytesPerPartition: fetchMaxBytes,
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
