// The VectorIndex contract against a real Milvus 2.3 standalone server (`bash scripts/milvus.sh
// start`, which the node project's global setup runs), one collection per case, dropped at the end.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openMilvusIndex } from '../../core/retrieval/milvus-index.ts';
import type { MilvusVectorIndex } from '../../core/retrieval/milvus-index.ts';
import type { VectorIndex } from '../../core/retrieval/vector-index.ts';
import { runVectorIndexContract } from './vector-index.case.ts';

const ADDRESS = process.env.MILVUS_ADDRESS ?? '127.0.0.1:19530';
const run = randomUUID().replaceAll('-', '').slice(0, 12);
const opened = new Map<VectorIndex, MilvusVectorIndex>();

runVectorIndexContract({
  name: 'Milvus (real server)',
  newIndex: async (name, dim) => {
    const index = await openMilvusIndex({ address: ADDRESS, collection: `kestrel_contract_${run}_${name}`, dim, timeoutMs: 120_000 });
    opened.set(index, index);
    return index;
  },
  dispose: async (index) => {
    await opened.get(index)?.drop();
  },
  // The index build on two shared cores is the slow part.
  recallItems: 20_000,
});

describe('Milvus: an existing collection', () => {
  it('reopens with the same dim and refuses another dim', async () => {
    const collection = `kestrel_contract_${run}_reopen`;
    const first = await openMilvusIndex({ address: ADDRESS, collection, dim: 8 });
    try {
      await first.upsert([{ id: 'a', vector: new Float32Array([1, 0, 0, 0, 0, 0, 0, 0]) }]);
      const second = await openMilvusIndex({ address: ADDRESS, collection, dim: 8 });
      expect((await second.search(new Float32Array([1, 0, 0, 0, 0, 0, 0, 0]), 3)).map((h) => h.id)).toEqual(['a']);
      await second.close();
      await expect(openMilvusIndex({ address: ADDRESS, collection, dim: 9 })).rejects.toThrow(/holds 8-d vectors.*9-d/);
    } finally {
      await first.drop();
    }
  }, 120_000);

  it('flushes an upsert of rows it already holds without waiting for the replaced ones', async () => {
    // Over Milvus's 1,024-row floor for indexed segments, so flush waits for an indexed segment.
    const n = 1_500;
    const collection = `kestrel_contract_${run}_reupsert`;
    const index = await openMilvusIndex({ address: ADDRESS, collection, dim: 4 });
    try {
      const items = (shift: number) => Array.from({ length: n }, (_, i) => ({
        id: `i${i}`, vector: Float32Array.from([1, (i % 7) / 7, shift, (i % 3) / 3]),
      }));
      await index.upsert(items(0));
      await index.flush();
      // The same ids again (a restart syncing every item): the index's row count holds both copies
      // until compaction, the query node only the new one. This used to wait out the 10 min deadline.
      const started = Date.now();
      await index.upsert(items(0.5));
      await index.flush();
      expect(Date.now() - started).toBeLessThan(120_000);
      expect((await index.stats()).count).toBe(n);
      const [top] = await index.search(Float32Array.from([0, 0, 1, 0]), 1);
      expect(top?.score).toBeCloseTo(0.5, 5);
    } finally {
      await index.drop();
    }
  }, 180_000);
});
