// EASE, "Embarrassingly Shallow Autoencoders for Sparse Data" (Steck, WWW 2019): an item-item
// weight matrix with a zero diagonal in closed form, B = I − P·diag(1/diag(P)) with
// P = (XᵀX + λI)⁻¹, i.e. B[i][j] = −P[i][j] / P[j][j] off the diagonal; scores = x·B.
// The inverse is a float64 Cholesky (cholesky.ts). It is dense in the catalog, so catalogs larger
// than `maxItems` keep only their most popular items (the rest score −Infinity).

import type { Dataset } from '../../data/dataset.ts';
import type { Recommender, RecommenderFactory } from '../evaluate.ts';
import { invertSpd } from './cholesky.ts';
import { distinctUserItems, gramMatrix, itemItemRecommender, itemPopularity, popularSubset } from './cooccurrence.ts';
import type { ItemItemModel } from './cooccurrence.ts';

export interface EaseOptions {
  /** L2 weight λ. Default 500: tuned on ml-100k, random 75/25 protocol (see bench/suites/quality.ts). */
  lambda?: number;
  /** Largest catalog kept (most popular first). 4096 items: a 134 MB float64 Gram matrix and a few n³/2 flops. */
  maxItems?: number;
}

export const EASE_LAMBDA = 500;
export const DENSE_MAX_ITEMS = 4096;

/** The closed-form B (n × n, row-major, float64) from a Gram matrix XᵀX. `gram` is consumed. */
export function easeWeights(gram: Float64Array, n: number, lambda: number): Float64Array {
  for (let i = 0; i < n; i++) gram[i * n + i] = (gram[i * n + i] ?? 0) + lambda;
  const p = invertSpd(gram, n);
  const b = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const d = p[j * n + j] ?? 1;
    for (let i = 0; i < n; i++) b[i * n + j] = i === j ? 0 : -(p[i * n + j] ?? 0) / d;
  }
  return b;
}

export function fitEase(dataset: Dataset, trainRows: Int32Array, options: EaseOptions = {}): Recommender & { itemItem: ItemItemModel } {
  const lambda = options.lambda ?? EASE_LAMBDA;
  const x = distinctUserItems(dataset, trainRows);
  const subset = popularSubset(itemPopularity(x, dataset.itemIds.length), options.maxItems ?? DENSE_MAX_ITEMS);
  const n = subset.items.length;
  const weights = Float32Array.from(easeWeights(gramMatrix(x, subset, dataset.userIds.length), n, lambda));
  return itemItemRecommender(`ease(λ=${lambda})`, { subset, weights });
}

export function ease(options: EaseOptions = {}): RecommenderFactory {
  return async (dataset, trainRows) => fitEase(dataset, trainRows, options);
}
