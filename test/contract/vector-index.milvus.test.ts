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
});
