// Exact top K by inner product for many user vectors at once. Scoring one user at a time reads the
// whole item matrix per user (256 MB at 1M items × 64 dims) and runs a scalar loop; here the
// catalog streams through the backend's GEMM in blocks, each block scored against a batch of
// users while it is in cache, and each user's K best are kept in a heap as the blocks go by. The
// result is topK's (training/eval/evaluate.ts) over the same scores: ties to the lower item index.

import { offerTopK, sortTopK } from '../eval/evaluate.ts';
import type { MatmulBackend } from '../nn/index.ts';

/** Items per GEMM block: 2,048 × 64 dims is 512 KiB of item vectors, scored against every query. */
const BLOCK = 2048;

/**
 * For each query (row q of `queries`, [histories.length × dim]), the `k` items of highest
 * ⟨query, item⟩ among the rows of `itemVectors` ([items × dim]), best first, leaving out the
 * items in `histories[q]`.
 */
export function scanTopK(
  backend: MatmulBackend, itemVectors: Float32Array, dim: number,
  queries: Float32Array, histories: readonly ArrayLike<number>[], k: number,
): Int32Array[] {
  const count = histories.length;
  const items = Math.floor(itemVectors.length / dim);
  if (queries.length < count * dim) throw new RangeError(`${count} queries of ${dim} dims need ${count * dim} floats, got ${queries.length}`);
  const kept = Math.max(0, Math.min(k, items));
  const heapScores = new Float32Array(count * kept);
  const heapItems = new Int32Array(count * kept);
  const sizes = new Int32Array(count);
  const scoreViews = Array.from({ length: count }, (_, q) => heapScores.subarray(q * kept, (q + 1) * kept));
  const itemViews = Array.from({ length: count }, (_, q) => heapItems.subarray(q * kept, (q + 1) * kept));
  const excluded = histories.map((h) => new Set(Array.from(h)));
  const block = new Float32Array(count * Math.min(BLOCK, items));
  for (let start = 0; start < items && kept > 0; start += BLOCK) {
    const n = Math.min(BLOCK, items - start);
    backend.gemm(false, true, count, n, dim, 1, queries, itemVectors.subarray(start * dim, (start + n) * dim), 0, block);
    for (let q = 0; q < count; q++) {
      const scores = scoreViews[q] as Float32Array;
      const found = itemViews[q] as Int32Array;
      const skip = excluded[q] as Set<number>;
      let size = sizes[q] ?? 0;
      // Items come in index order, so once the heap is full only a strictly higher score gets in.
      let floor = size < kept ? -Infinity : (scores[0] ?? 0);
      const base = q * n;
      for (let j = 0; j < n; j++) {
        let s = block[base + j] ?? 0;
        if (!(s > floor)) {
          if (size >= kept) continue;
          // Not full yet: −∞ gets in too, and NaN counts as −∞.
          if (s !== s) s = -Infinity;
        }
        const item = start + j;
        if (skip.has(item)) continue;
        size = offerTopK(scores, found, size, kept, s, item);
        if (size === kept) floor = scores[0] ?? 0;
      }
      sizes[q] = size;
    }
  }
  return Array.from({ length: count }, (_, q) => {
    const size = sizes[q] ?? 0;
    sortTopK(scoreViews[q] as Float32Array, itemViews[q] as Int32Array, size);
    return heapItems.slice(q * kept, q * kept + size);
  });
}
