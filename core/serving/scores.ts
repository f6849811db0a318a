// The model's catalog-wide scores without scanning the catalog. The ranker was trained on
// two-tower scores z-scored over every item the user has not interacted with (two-stage.ts
// `standardise`); serving needs the same mean and standard deviation, but a dot product with
// every item costs O(items · dim) per request, too much for a catalog of millions. The first two
// moments of the item embeddings, S1 = Σ v and S2 = Σ v vᵀ, computed once per snapshot, give them
// in O(dim²): Σ u·v = u·S1 and Σ (u·v)² = uᵀ S2 u; the history's own scores are then taken out,
// which makes the result the same statistic `standardise` computes, up to float rounding.

export interface EmbeddingMoments {
  dim: number;
  count: number;
  /** Σ v over the items, [dim]. */
  sum: Float64Array;
  /** Σ v vᵀ over the items, [dim × dim] row-major (symmetric). */
  second: Float64Array;
}

/** The moments of `count` rows of `embeddings` ([count × dim] row-major). O(count · dim²). */
export function embeddingMoments(embeddings: Float32Array, dim: number): EmbeddingMoments {
  const count = Math.floor(embeddings.length / dim);
  const sum = new Float64Array(dim);
  const second = new Float64Array(dim * dim);
  for (let i = 0; i < count; i++) {
    const base = i * dim;
    for (let a = 0; a < dim; a++) {
      const va = embeddings[base + a] ?? 0;
      sum[a] = (sum[a] ?? 0) + va;
      if (va === 0) continue;
      // Upper triangle only; mirrored below.
      for (let b = a; b < dim; b++) second[a * dim + b] = (second[a * dim + b] ?? 0) + va * (embeddings[base + b] ?? 0);
    }
  }
  for (let a = 0; a < dim; a++) for (let b = 0; b < a; b++) second[a * dim + b] = second[b * dim + a] ?? 0;
  return { dim, count, sum, second };
}

export function dot(u: Float32Array, embeddings: Float32Array, item: number, dim: number): number {
  let s = 0;
  const base = item * dim;
  for (let d = 0; d < dim; d++) s += (u[d] ?? 0) * (embeddings[base + d] ?? 0);
  return s;
}

/**
 * Mean and population standard deviation of u·v over every item except `history` (distinct item
 * indexes): what `standardise` in training/pipeline/two-stage.ts computes by scanning (std 1
 * when it would be 0).
 */
export function scoreStats(moments: EmbeddingMoments, u: Float32Array, embeddings: Float32Array, history: ArrayLike<number>): { mean: number; std: number } {
  const { dim, sum, second } = moments;
  let first = 0;
  let quad = 0;
  for (let a = 0; a < dim; a++) {
    const ua = u[a] ?? 0;
    first += ua * (sum[a] ?? 0);
    let row = 0;
    for (let b = 0; b < dim; b++) row += (second[a * dim + b] ?? 0) * (u[b] ?? 0);
    quad += ua * row;
  }
  let n = moments.count;
  for (let k = 0; k < history.length; k++) {
    const item = history[k] ?? 0;
    if (item < 0 || item >= moments.count) continue;
    const s = dot(u, embeddings, item, dim);
    first -= s;
    quad -= s * s;
    n--;
  }
  const mean = n > 0 ? first / n : 0;
  const std = Math.sqrt(Math.max(n > 0 ? quad / n - mean * mean : 0, 0)) || 1;
  return { mean, std };
}
