// POST /v1/events with the Kafka bus: the API publishes to a real broker (started by the node
// project's global setup, or KAFKA_BROKERS), the projector consumes it into SQLite.
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { event, openTestCore, range } from './harness.ts';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const topicBase = `kestrel-api-test-${process.pid}-${Date.now()}`;
const topics: string[] = [];

afterAll(async () => {
  const admin = new Kafka({ clientId: 'kestrel-api-test-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics, timeout: 30_000 }).catch(() => undefined);
  await admin.disconnect();
});

// Batches prepared on the event loop, and on an ingest thread (which hands Kafka the encoded records).
describe.each([0, 1])('POST /v1/events on the Kafka bus, %i ingest threads', (ingestThreads) => {
  it('publishes through Kafka, the projector stores each event once, /readyz is ready', async () => {
    const topic = `${topicBase}-${ingestThreads}`;
    topics.push(topic);
    const core = await openTestCore({ kafka: { brokers, topic }, ingestThreads });
    try {
      const batch = await core.call('POST', '/v1/events', { events: range(500, (i) => event(i, `u${i % 20}`, `i${i % 30}`)) });
      expect(batch.status).toBe(200);
      expect(await batch.json()).toMatchObject({ accepted: 500, duplicate: 0, rejected: 0 });
      expect((await core.call('POST', '/v1/events', event('single', 'u1', 'i1'))).status).toBe(200);
      await expect.poll(() => core.runtime.catalog.interactions.count(), { timeout: 30_000, interval: 100 }).toBe(501);

      const again = await core.call('POST', '/v1/events', { events: [event(1, 'u1', 'i1'), event('new', 'u2', 'i2')] });
      expect(await again.json()).toMatchObject({ accepted: 1, duplicate: 1 });
      await expect.poll(() => core.runtime.catalog.interactions.count(), { timeout: 30_000, interval: 100 }).toBe(502);
      expect(await core.runtime.catalog.interactions.userEvents('u2', { limit: 1000 })).toHaveLength(26);

      const ready = await core.call('GET', '/readyz');
      expect(ready.status).toBe(200);
      // Two of the three batches went through the thread when there was one (the single event does not).
      expect(core.runtime.services.ingest?.prepared ?? 0).toBe(ingestThreads === 0 ? 0 : 2);
    } finally {
      await core.close();
    }
  }, 90_000);
});
