// Tests that make Kafka topics delete them at the end: those of `topics` the broker still has.
import { Kafka, logLevel } from 'kafkajs';

export async function deleteTopics(brokers: string[], topics: Iterable<string>): Promise<void> {
  const admin = new Kafka({ clientId: 'kestrel-test-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const ours = [...topics].filter((t) => existing.has(t));
    if (ours.length > 0) await admin.deleteTopics({ topics: ours, timeout: 60_000 });
  } finally {
    await admin.disconnect();
  }
}
