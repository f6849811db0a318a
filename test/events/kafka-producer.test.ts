// The Kafka bus sends each publish through two producers by default (even partitions from the
// event loop, odd ones from a thread) and through one when asked: either way every event lands in
// the partition kafkajs's DefaultPartitioner (and the Java client) picks for its user, once, in
// the user's order. Real broker (`bash scripts/kafka.sh start`).
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import { openKafkaBus } from '../../core/events/kafka.ts';
import { cleanUpKafkaTest } from '../support/kafka-topics.ts';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()).filter((b) => b !== '');
const run = randomUUID().slice(0, 8);
const root = await mkdtemp(join(tmpdir(), 'kestrel-kafka-producer-'));
const topics: string[] = [];
const kafka = new Kafka({ clientId: 'kestrel-producer-test', brokers, logLevel: logLevel.NOTHING });

afterAll(async () => {
  await cleanUpKafkaTest(brokers, topics, root);
}, 120_000);

/** Every message of `topic` as kafkajs reads it: partition, key and event id, in partition order. */
async function readAll(topic: string, count: number): Promise<{ partition: number; key: string; id: string }[]> {
  const consumer = kafka.consumer({ groupId: `reader-${topic}` });
  const got: { partition: number; key: string; id: string }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let done: () => void = () => undefined;
    const all = new Promise<void>((resolve) => { done = resolve; });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, key: message.key?.toString() ?? '', id: (JSON.parse(message.value?.toString() ?? '{}') as Event).id });
        if (got.length >= count) done();
      },
    });
    await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`read ${got.length} of ${count} messages`)), 60_000))]);
    await new Promise((resolve) => setTimeout(resolve, 500));
  } finally {
    await consumer.disconnect();
  }
  return got;
}

describe.each([
  ['two producers, one on a thread (default)', true],
  ['one producer', false],
])('Kafka bus publishing through %s', (_mode, producerThread) => {
  it('puts every event in its user\'s DefaultPartitioner partition, once, in the user\'s order', { timeout: 120_000 }, async () => {
    const topic = `kestrel-producer-${producerThread ? 'two' : 'one'}-${run}`;
    topics.push(topic);
    const bus = await openKafkaBus({ brokers, topic, partitions: 5, spoolDir: join(root, topic), sendTimeoutMs: 30_000, producerThread });
    const events: Event[] = [];
    try {
      for (let b = 0; b < 4; b++) {
        const batch = Array.from({ length: 250 }, (_, i): Event => {
          const n = b * 250 + i;
          return { id: `${topic}-${n}`, type: 'view', userId: `user-${(n * 7) % 61}-ü`, itemId: `i${n}`, timestamp: n };
        });
        await bus.publish(batch);
        events.push(...batch);
      }
      expect(bus.spooledBytes()).toBe(0);
    } finally {
      await bus.close();
    }
    const got = await readAll(topic, events.length);
    expect(got.map((m) => m.id).sort()).toEqual(events.map((e) => e.id).sort());
    const partitioner = Partitioners.DefaultPartitioner();
    const metadata = Array.from({ length: 5 }, (_, partitionId) => ({ partitionId, leader: 1, partitionErrorCode: 0, replicas: [1], isr: [1] }));
    for (const m of got) {
      expect(m.partition, `${m.id} of ${m.key}`).toBe(partitioner({ topic, partitionMetadata: metadata, message: { key: m.key, value: null } }));
    }
    // Both parities were written (with two producers: both producers), and per user, in order.
    expect(new Set(got.map((m) => m.partition % 2)).size).toBe(2);
    const order = new Map(events.map((e, i) => [e.id, i]));
    const byUser = new Map<string, number[]>();
    for (const m of got) byUser.set(m.key, [...(byUser.get(m.key) ?? []), order.get(m.id) ?? -1]);
    for (const [, seq] of byUser) expect(seq).toEqual([...seq].sort((a, b) => a - b));
  });
});
