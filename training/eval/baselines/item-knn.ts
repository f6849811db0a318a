// Item-based k-nearest-neighbours (Sarwar et al. 2001; Deshpande & Karypis 2004): cosine
// similarity between the items' binary user columns, sim(i, j) = |Uᵢ ∩ Uⱼ| / √(|Uᵢ|·|Uⱼ|), each
// item keeping its `neighbors` most similar items; a user's score for j sums sim(i, j) over the
// items i in their history. Dense in the catalog, so it shares EASE's `maxItems` restriction.

import type { Dataset } from '../../data/dataset.ts';
import { topK } from '../evaluate.ts';
import type { Recommender, RecommenderFactory } from '../evaluate.ts';
import { distinctUserItems, gramMatrix, itemItemRecommender, itemPopularity, popularSubset } from './cooccurrence.ts';
import type { ItemItemModel } from './cooccurrence.ts';
import { DENSE_MAX_ITEMS } from './ease.ts';

export interface ItemKnnOptions {
  /** Neighbours kept per item; default every item (no truncation). */
  neighbors?: number;
  maxItems?: number;
}

/** Cosine similarities (n × n, float32, zero diagonal) from a Gram matrix, each row cut to its top `neighbors`. */
export function cosineWeights(gram: Float64Array, n: number, neighbors = n): Float32Array {
  const w = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    const di = gram[i * n + i] ?? 0;
    for (let j = 0; j < n; j++) {
      const dj = gram[j * n + j] ?? 0;
      if (i !== j && di > 0 && dj > 0) w[i * n + j] = (gram[i * n + j] ?? 0) / Math.sqrt(di * dj);
    }
  }
  if (neighbors < n - 1) {
    const keep = Math.max(0, neighbors);
    const excluded = new Uint8Array(n);
    const top = new Int32Array(keep);
    const scratch = new Float32Array(keep);
    const kept = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const r = w.subarray(i * n, i * n + n);
      excluded[i] = 1;
      const count = topK(r, keep, excluded, top, scratch);
      excluded[i] = 0;
      kept.fill(0);
      for (let t = 0; t < count; t++) kept[top[t] ?? 0] = r[top[t] ?? 0] ?? 0;
      r.set(kept);
    }
  }
  return w;
}

export function fitItemKnn(dataset: Dataset, trainRows: Int32Array, options: ItemKnnOptions = {}): Recommender & { itemItem: ItemItemModel } {
  const x = distinctUserItems(dataset, trainRows);
  const subset = popularSubset(itemPopularity(x, dataset.itemIds.length), options.maxItems ?? DENSE_MAX_ITEMS);
  const n = subset.items.length;
  const weights = cosineWeights(gramMatrix(x, subset, dataset.userIds.length), n, options.neighbors ?? n);
  return itemItemRecommender(options.neighbors === undefined ? 'item-knn' : `item-knn(k=${options.neighbors})`, { subset, weights });
}

export function itemKnn(options: ItemKnnOptions = {}): RecommenderFactory {
  return async (dataset, trainRows) => fitItemKnn(dataset, trainRows, options);
}
