// Against a real Apache Kafka broker (KRaft, single node; `bash scripts/kafka.sh start`, which the
// suite's global setup runs): keyed messages through an idempotent producer keep their per-key
// order through a consumer group, and a group that commits what it processed and restarts resumes
// from the committed offsets without losing or repeating a message.
import { randomUUID } from 'node:crypto';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import type { Admin, Consumer, EachMessagePayload, Message, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092')
  .split(',')
  .map((b) => b.trim())
  .filter((b) => b !== '');

const PARTITIONS = 3;
const KEYS = 50;
/** Messages for the ordering case: 20 per key. */
const ORDER_MESSAGES = 1_000;
/** Restart case: produced before the first consumer, processed by it, produced after it left. */
const RESTART_BEFORE = 600;
const RESTART_PROCESSED_FIRST = 250;
const RESTART_AFTER = 400;
/** Messages per producer.send call; sends are awaited one after another, so key order holds. */
const SEND_CHUNK = 100;
/** How long to keep listening after the expected count arrived, to catch duplicates. */
const SETTLE_MS = 2_000;
const CONSUME_TIMEOUT_MS = 120_000;

const runId = randomUUID().slice(0, 8);
const orderTopic = `kestrel-test-order-${runId}`;
const restartTopic = `kestrel-test-restart-${runId}`;
const orderGroup = `kestrel-test-order-${runId}`;
const restartGroup = `kestrel-test-restart-${runId}`;

const kafka = new Kafka({
  clientId: `kestrel-test-${runId}`,
  brokers: BROKERS,
  logLevel: logLevel.NOTHING,
  connectionTimeout: 5_000,
  requestTimeout: 30_000,
});

let admin: Admin | undefined;
let producer: Producer | undefined;
const openConsumers = new Set<Consumer>();

interface Received {
  partition: number;
  offset: bigint;
  key: string;
  seq: number;
}

/** Message i of a stream: key i % KEYS, and the i-th message of that key has seq floor(i / KEYS). */
function keyedMessage(i: number): Message {
  const key = `user-${i % KEYS}`;
  const seq = Math.floor(i / KEYS);
  return { key, value: JSON.stringify({ key, seq }) };
}

async function produce(topic: string, from: number, to: number): Promise<void> {
  if (producer === undefined) throw new Error('producer not connected');
  for (let start = from; start < to; start += SEND_CHUNK) {
    const messages: Message[] = [];
    for (let i = start; i < Math.min(start + SEND_CHUNK, to); i++) messages.push(keyedMessage(i));
    await producer.send({ topic, acks: -1, messages });
  }
}

function decode({ partition, message }: EachMessagePayload): Received {
  const key = message.key?.toString('utf8');
  const raw = message.value?.toString('utf8');
  if (key === undefined || raw === undefined) throw new Error(`message without key or value at ${partition}/${message.offset}`);
  const parsed: unknown = JSON.parse(raw);
  if (typeof parsed !== 'object' || parsed === null || !('key' in parsed) || !('seq' in parsed)) {
    throw new Error(`unexpected value ${raw}`);
  }
  const { key: valueKey, seq } = parsed;
  if (valueKey !== key || typeof seq !== 'number') throw new Error(`value ${raw} does not match key ${key}`);
  return { partition, offset: BigInt(message.offset), key, seq };
}

/** Per key, the seqs in the order they were received. */
function seqsByKey(received: readonly Received[]): Map<string, number[]> {
  const byKey = new Map<string, number[]>();
  for (const r of received) {
    const seqs = byKey.get(r.key) ?? [];
    seqs.push(r.seq);
    byKey.set(r.key, seqs);
  }
  return byKey;
}

/** The same per-key sequences a stream of `count` keyedMessage()s has: 0, 1, 2, ... for each key. */
function expectedSeqsByKey(count: number): Map<string, number[]> {
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < count; i++) {
    const { key } = keyedMessage(i);
    const k = String(key);
    const seqs = byKey.get(k) ?? [];
    seqs.push(Math.floor(i / KEYS));
    byKey.set(k, seqs);
  }
  return byKey;
}

function sorted(map: Map<string, number[]>): [string, number[]][] {
  return [...map.entries()].sort(([a], [b]) => a.localeCompare(b));
}

async function waitUntil(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function newConsumer(groupId: string): Consumer {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500, retry: { retries: 10 } });
  openConsumers.add(consumer);
  return consumer;
}

async function closeConsumer(consumer: Consumer): Promise<void> {
  await consumer.disconnect();
  openConsumers.delete(consumer);
}

async function highWatermarkTotal(topic: string): Promise<bigint> {
  if (admin === undefined) throw new Error('admin not connected');
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + BigInt(p.high) - BigInt(p.low), 0n);
}

describe('Kafka (kafkajs against a real broker)', () => {
  beforeAll(async () => {
    admin = kafka.admin();
    await admin.connect();
    const created = await admin.createTopics({
      waitForLeaders: true,
      timeout: 60_000,
      topics: [orderTopic, restartTopic].map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
    });
    expect(created).toBe(true);
    const { topics } = await admin.fetchTopicMetadata({ topics: [orderTopic, restartTopic] });
    for (const t of topics) expect(t.partitions).toHaveLength(PARTITIONS);

    producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
  }, 120_000);

  afterAll(async () => {
    for (const consumer of openConsumers) await consumer.disconnect().catch(() => undefined);
    await producer?.disconnect();
    if (admin !== undefined) {
      try {
        await admin.deleteGroups([orderGroup, restartGroup]).catch(() => undefined);
        await admin.deleteTopics({ topics: [orderTopic, restartTopic], timeout: 60_000 });
        const remaining = await admin.listTopics();
        expect(remaining).not.toContain(orderTopic);
        expect(remaining).not.toContain(restartTopic);
      } finally {
        await admin.disconnect();
      }
    }
  }, 120_000);

  it('delivers 1,000 keyed messages to a consumer group, each once, in per-key order', { timeout: 240_000 }, async () => {
    await produce(orderTopic, 0, ORDER_MESSAGES);
    // The idempotent producer wrote every message exactly once.
    expect(await highWatermarkTotal(orderTopic)).toBe(BigInt(ORDER_MESSAGES));

    const received: Received[] = [];
    const consumer = newConsumer(orderGroup);
    await consumer.connect();
    await consumer.subscribe({ topic: orderTopic, fromBeginning: true });
    await consumer.run({
      eachMessage: async (payload) => {
        received.push(decode(payload));
      },
    });
    await waitUntil(
      () => received.length >= ORDER_MESSAGES,
      CONSUME_TIMEOUT_MS,
      () => `${ORDER_MESSAGES} messages (got ${received.length})`,
    );
    await sleep(SETTLE_MS);
    await closeConsumer(consumer);

    expect(received).toHaveLength(ORDER_MESSAGES);
    // Every key lives on one partition, and within a key the seqs arrive as 0, 1, 2, ...
    const partitionsOfKey = new Map<string, Set<number>>();
    for (const r of received) partitionsOfKey.set(r.key, (partitionsOfKey.get(r.key) ?? new Set<number>()).add(r.partition));
    for (const [key, parts] of partitionsOfKey) expect(parts.size, `partitions of ${key}`).toBe(1);
    expect(sorted(seqsByKey(received))).toEqual(sorted(expectedSeqsByKey(ORDER_MESSAGES)));
    // The keys spread over more than one partition.
    expect(new Set(received.map((r) => r.partition)).size).toBeGreaterThan(1);
  });

  it('resumes a restarted group from its committed offsets: nothing lost, nothing repeated', { timeout: 300_000 }, async () => {
    if (admin === undefined) throw new Error('admin not connected');
    await produce(restartTopic, 0, RESTART_BEFORE);

    // First consumer: processes RESTART_PROCESSED_FIRST messages, ignores everything after them (it
    // is "about to crash"), commits exactly what it processed and leaves the group.
    const first: Received[] = [];
    const consumerA = newConsumer(restartGroup);
    await consumerA.connect();
    await consumerA.subscribe({ topic: restartTopic, fromBeginning: true });
    await consumerA.run({
      autoCommit: false,
      eachMessage: async (payload) => {
        if (first.length < RESTART_PROCESSED_FIRST) first.push(decode(payload));
      },
    });
    await waitUntil(
      () => first.length >= RESTART_PROCESSED_FIRST,
      CONSUME_TIMEOUT_MS,
      () => `the first consumer to process ${RESTART_PROCESSED_FIRST} messages (got ${first.length})`,
    );
    consumerA.pause([{ topic: restartTopic }]);
    // Messages reach a partition's handler in offset order, so what was processed is a prefix of
    // each partition: commit one past the last processed offset.
    const commitOffsets = new Map<number, bigint>();
    for (const r of first) {
      const next = r.offset + 1n;
      if ((commitOffsets.get(r.partition) ?? -1n) < next) commitOffsets.set(r.partition, next);
    }
    await consumerA.commitOffsets(
      [...commitOffsets].map(([partition, offset]) => ({ topic: restartTopic, partition, offset: offset.toString() })),
    );
    await closeConsumer(consumerA);

    const [committed] = await admin.fetchOffsets({ groupId: restartGroup, topics: [restartTopic] });
    const committedByPartition = new Map<number, bigint>(
      (committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]),
    );
    for (let partition = 0; partition < PARTITIONS; partition++) {
      // kafkajs reports -1 for a partition without a committed offset.
      expect(committedByPartition.get(partition), `committed offset of partition ${partition}`).toBe(
        commitOffsets.get(partition) ?? -1n,
      );
    }

    // More messages arrive while the group has no member.
    await produce(restartTopic, RESTART_BEFORE, RESTART_BEFORE + RESTART_AFTER);
    const total = RESTART_BEFORE + RESTART_AFTER;
    expect(await highWatermarkTotal(restartTopic)).toBe(BigInt(total));

    // Second consumer, same group: resumes where the first one committed.
    const second: Received[] = [];
    const consumerB = newConsumer(restartGroup);
    await consumerB.connect();
    await consumerB.subscribe({ topic: restartTopic, fromBeginning: true });
    await consumerB.run({
      autoCommit: false,
      eachMessage: async (payload) => {
        second.push(decode(payload));
      },
    });
    const expectedSecond = total - RESTART_PROCESSED_FIRST;
    await waitUntil(
      () => second.length >= expectedSecond,
      CONSUME_TIMEOUT_MS,
      () => `the second consumer to process ${expectedSecond} messages (got ${second.length})`,
    );
    await sleep(SETTLE_MS);
    await closeConsumer(consumerB);

    // It started each partition exactly at the committed offset (or at the beginning where the
    // first consumer had committed nothing).
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const firstOffset = second.find((r) => r.partition === partition)?.offset;
      expect(firstOffset, `first offset the second consumer saw on partition ${partition}`).toBe(
        commitOffsets.get(partition) ?? 0n,
      );
    }
    // Nothing lost, nothing seen twice: the two consumers together saw every message once, and
    // each key's messages in order across the restart.
    expect(second).toHaveLength(expectedSecond);
    const seen = new Set([...first, ...second].map((r) => `${r.partition}/${r.offset}`));
    expect(seen.size).toBe(total);
    expect(sorted(seqsByKey([...first, ...second]))).toEqual(sorted(expectedSeqsByKey(total)));
  });
});
