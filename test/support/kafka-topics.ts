// Tests that make Kafka topics and a temp folder remove both at the end: the topics of `topics`
// the broker still has, then the folder, also when deleting the topics failed.
import { rm } from 'node:fs/promises';
import { Kafka, logLevel } from 'kafkajs';

export async function cleanUpKafkaTest(brokers: string[], topics: Iterable<string>, folder: string): Promise<void> {
  try {
    const admin = new Kafka({ clientId: 'kestrel-test-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const ours = [...topics].filter((t) => existing.has(t));
      if (ours.length > 0) await admin.deleteTopics({ topics: ours, timeout: 60_000 });
    } finally {
      await admin.disconnect();
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
