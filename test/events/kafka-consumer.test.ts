// A Kafka subscription's consumer runs on a thread of its own by default, and on the event loop
// when asked (or when the kafkajs settings hold a function): both hand over the same deliveries,
// name a message that is not an Event by topic, partition and offset, and stop, reporting the
// error, when the handler fails. Real broker (`bash scripts/kafka.sh start`).
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Event } from '../../core/domain/event.ts';
import type { Delivery } from '../../core/events/bus.ts';
import { openKafkaBus } from '../../core/events/kafka.ts';
import type { KafkaBus } from '../../core/events/kafka.ts';
import { cleanUpKafkaTest } from '../support/kafka-topics.ts';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()).filter((b) => b !== '');
const run = randomUUID().slice(0, 8);
const root = await mkdtemp(join(tmpdir(), 'kestrel-kafka-consumer-'));
const topics: string[] = [];

afterAll(async () => {
  await cleanUpKafkaTest(brokers, topics, root);
}, 120_000);

async function until(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each([
  ['on its own thread (default)', true],
  ['on the event loop', false],
])('Kafka subscription, consumer %s', (mode, consumerThread) => {
  const name = consumerThread ? 'thread' : 'loop';
  const errors: unknown[] = [];
  let n = 0;
  async function openBus(): Promise<{ bus: KafkaBus; topic: string }> {
    const topic = `kestrel-consumer-${name}-${n++}-${run}`;
    topics.push(topic);
    const bus = await openKafkaBus({
      brokers, topic, partitions: 2, spoolDir: join(root, `${name}-${n}`), sendTimeoutMs: 30_000, consumerThread,
      onError: (error) => errors.push(error),
    });
    return { bus, topic };
  }

  it('delivers each event with its partition and offset, decoded on read, and resumes after a commit', { timeout: 120_000 }, async () => {
    const { bus } = await openBus();
    try {
      const events: Event[] = Array.from({ length: 300 }, (_, i) => ({
        id: `${mode}-${i}`, type: 'view', userId: `u${i % 7}`, itemId: `i${i}`, timestamp: i, context: { n: i, mode },
      }));
      await bus.publish(events);
      const got: Delivery[] = [];
      const sub = await bus.subscribe({
        group: 'first',
        onBatch: async (batch) => {
          got.push(...batch);
          await sub.commit(batch);
        },
      });
      await until(() => got.length >= events.length, 'all 300 events delivered');
      await sub.close();
      expect(new Set(got.map((d) => d.partition)).size).toBe(2);
      expect(got.map((d) => d.event).sort((a, b) => a.timestamp - b.timestamp)).toEqual(events);
      for (const d of got) expect(d.next).toBe(d.offset + 1);
      // Per user, the order they were published in.
      for (let u = 0; u < 7; u++) {
        const ids = got.filter((d) => d.event.userId === `u${u}`).map((d) => d.event.timestamp);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
      }

      // The same group again: everything was committed, so only what comes later arrives.
      const later: Delivery[] = [];
      const again = await bus.subscribe({ group: 'first', onBatch: async (batch) => { later.push(...batch); } });
      await bus.publish([{ id: `${mode}-late`, type: 'click', userId: 'u1', itemId: 'i1', timestamp: 1_000 }]);
      await until(() => later.length >= 1, 'the later event delivered');
      await new Promise((resolve) => setTimeout(resolve, 500));
      await again.close();
      expect(later.map((d) => d.event.id)).toEqual([`${mode}-late`]);
      expect(errors).toEqual([]);
    } finally {
      await bus.close();
    }
  });

  it('names a message that is not an Event by topic, partition and offset, and stops on the handler\'s failure', { timeout: 120_000 }, async () => {
    const { bus, topic } = await openBus();
    errors.length = 0;
    const producer = new Kafka({ clientId: 'kestrel-consumer-test', brokers, logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      await bus.publish([{ id: `${mode}-ok`, type: 'view', userId: 'u1', itemId: 'i1', timestamp: 1 }]);
      // Same key, so the same partition, after the good one.
      await producer.send({ topic, messages: [{ key: 'u1', value: '{"id":"x","note":"no type, user or item"}' }] });
      await bus.publish([{ id: `${mode}-after`, type: 'view', userId: 'u1', itemId: 'i2', timestamp: 2 }]);
      const handled: string[] = [];
      let calls = 0;
      const sub = await bus.subscribe({
        group: 'strict',
        onBatch: async (batch) => {
          calls++;
          for (const d of batch) handled.push(d.event.id);
        },
      });
      await until(() => errors.length > 0, 'the bad message reported');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await sub.close();
      expect(String(errors[0])).toMatch(new RegExp(`topic ${topic} partition \\d offset 1: payload is not an Event`));
      // The good event before it was handled; nothing after the failure was handed over.
      expect(handled).toEqual([`${mode}-ok`]);
      expect(errors).toHaveLength(1);
      expect(calls).toBeLessThanOrEqual(2);
    } finally {
      await producer.disconnect();
      await bus.close();
    }
  });
});
