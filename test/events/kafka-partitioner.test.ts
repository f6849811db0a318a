// The Kafka bus picks each user's partition with its own murmur2; it must pick what kafkajs's
// DefaultPartitioner (and so the Java client) picks, or a user's events would move partitions
// between Kafka producers and lose their order.
import { createRequire } from 'node:module';
import { Partitioners } from 'kafkajs';
import type { PartitionerArgs } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KeyPartitioner, murmur2 } from '../../core/events/kafka-partitioner.ts';
import { freshSeed, mulberry32 } from '../support/random.ts';
import type { Rng } from '../support/random.ts';

/** kafkajs's own murmur2 (the one its DefaultPartitioner uses), for the full 32-bit hash. */
const kafkajsMurmur2 = createRequire(import.meta.url)('kafkajs/src/producer/partitioners/default/murmur2') as (key: Buffer | string) => number;

const ALPHABETS = [
  'abcdefghijklmnopqrstuvwxyz0123456789-_',
  'aé€𝄞中文ß', // 1-, 2-, 3- and 4-byte UTF-8
];

function randomKey(rng: Rng): string {
  const alphabet = [...(ALPHABETS[Math.floor(rng() * ALPHABETS.length)] as string)];
  const length = Math.floor(rng() * 40);
  let key = '';
  for (let i = 0; i < length; i++) key += alphabet[Math.floor(rng() * alphabet.length)];
  return key;
}

const metadata = (n: number): PartitionerArgs['partitionMetadata'] =>
  Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 1, partitionErrorCode: 0, replicas: [1], isr: [1] }));

describe('KeyPartitioner', () => {
  it('hashes every key as kafkajs does: every length mod 4, multi-byte UTF-8, Buffers', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'user-42', 'ü', '𝄞', ...Array.from({ length: 2_000 }, () => randomKey(rng))];
    for (const key of keys) {
      expect(murmur2(key), `seed ${seed}, key ${JSON.stringify(key)}`).toBe(kafkajsMurmur2(key));
      expect(murmur2(Buffer.from(key)), `seed ${seed}, key ${JSON.stringify(key)} as a Buffer`).toBe(kafkajsMurmur2(Buffer.from(key)));
    }
    // A long key after short ones: the scratch space grows.
    const long = 'x€'.repeat(500);
    expect(murmur2(long)).toBe(kafkajsMurmur2(long));
  });

  it('chooses the partition DefaultPartitioner chooses, for any partition count', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const ours = KeyPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    for (let i = 0; i < 2_000; i++) {
      const args: PartitionerArgs = { topic: 'events', partitionMetadata: metadata(1 + Math.floor(rng() * 64)), message: { key: randomKey(rng), value: 'v' } };
      expect(ours(args), `seed ${seed}, ${JSON.stringify(args.message.key)} over ${args.partitionMetadata.length}`).toBe(theirs(args));
    }
  });

  it('keeps a partition the message names, and spreads messages without a key', () => {
    const ours = KeyPartitioner();
    expect(ours({ topic: 'events', partitionMetadata: metadata(6), message: { key: 'user-1', value: 'v', partition: 4 } })).toBe(4);
    const chosen = new Set(Array.from({ length: 60 }, () => ours({ topic: 'events', partitionMetadata: metadata(6), message: { value: 'v' } })));
    expect(chosen.size).toBe(6);
  });
});
