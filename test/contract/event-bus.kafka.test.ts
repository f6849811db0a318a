// The EventBus contract against a real Kafka broker (`bash scripts/kafka.sh start`, which the
// node project's global setup runs), one topic per case and run, deleted at the end.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { openKafkaBus } from '../../core/events/kafka.ts';
import { cleanUpKafkaTest } from '../support/kafka-topics.ts';
import { runEventBusContract } from './event-bus.case.ts';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()).filter((b) => b !== '');
const root = await mkdtemp(join(tmpdir(), 'kestrel-kafka-bus-'));
const topics = new Set<string>();
const errors: unknown[] = [];

afterAll(async () => {
  // The broker was up throughout: no send failed over to the spool.
  expect(errors).toEqual([]);
  await cleanUpKafkaTest(brokers, topics, root);
}, 120_000);

runEventBusContract({
  name: 'Kafka (kafkajs, real broker)',
  newBus: (storage) => {
    const topic = `kestrel-contract-${storage}`;
    topics.add(topic);
    return openKafkaBus({
      brokers,
      topic,
      partitions: 3,
      clientId: 'kestrel-contract',
      spoolDir: join(root, storage),
      // The broker is up for this suite: a batch should never need the spool, so a slow ack
      // on this loaded machine is waited for rather than spooled.
      sendTimeoutMs: 30_000,
      onError: (error) => errors.push(error),
    });
  },
});
