// Maximal Marginal Relevance (Carbonell & Goldstein, "The Use of MMR, Diversity-Based Reranking
// for Reordering Documents and Producing Summaries", SIGIR 1998): greedy re-ranking that trades
// relevance against redundancy with what is already picked,
//     next = argmax_{i ∉ S} λ·rel(i) − (1 − λ)·max_{j ∈ S} sim(i, j).
// The TypeScript reference the WASM kernel is tested against, and the edge's fallback.

export interface MmrOptions {
  /** Relevance weight in [0, 1]: 1 = pure relevance order, 0 = pure novelty after the first pick. */
  lambda: number;
  /** How many candidates to pick; more than there are candidates picks them all. */
  k: number;
  /** Embedding dimension: `embeddings` holds n rows of `dim` values. */
  dim: number;
}

/**
 * Greedy MMR. Picks min(k, n) of the n candidates and returns their indexes in pick order.
 *
 * * Relevance is min-max normalised to [0, 1] over the candidates first (all equal → all 0), so
 *   λ means the same whatever scale the ranker's scores have, and the similarity term (an inner
 *   product, in [−1, 1] for unit vectors) is commensurate with it.
 * * sim(i, j) = inner product of rows i and j of `embeddings` ([n × dim], row-major); callers pass
 *   L2-normalised rows so it is the cosine. max over an empty S is 0: the first pick is the most
 *   relevant candidate for every λ.
 * * Ties go to the more relevant candidate, then the lower index.
 *
 * O(k·n·dim) time: after each pick one pass updates an incremental max-sim per candidate.
 */
export function mmr(relevance: Float32Array | readonly number[], embeddings: Float32Array, options: MmrOptions): number[] {
  const { lambda, k, dim } = options;
  const n = relevance.length;
  if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`MMR lambda must be in [0, 1] (1 = pure relevance), got ${lambda}`);
  if (!(Number.isInteger(k) && k >= 0)) throw new RangeError(`MMR k must be a non-negative integer, got ${k}`);
  if (!(Number.isInteger(dim) && dim > 0)) throw new RangeError(`MMR dim must be a positive integer, got ${dim}`);
  if (embeddings.length !== n * dim) {
    throw new RangeError(`MMR embeddings hold ${embeddings.length} values, expected ${n} candidates × ${dim} dims = ${n * dim}`);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const r = relevance[i] as number;
    if (!Number.isFinite(r)) throw new RangeError(`MMR relevance of candidate ${i} must be finite, got ${r}`);
    if (r < lo) lo = r;
    if (r > hi) hi = r;
  }
  const rel = new Float64Array(n);
  if (hi > lo) for (let i = 0; i < n; i++) rel[i] = ((relevance[i] as number) - lo) / (hi - lo);

  const picks: number[] = [];
  const count = Math.min(k, n);
  if (count === 0) return picks;
  const picked = new Uint8Array(n);
  const maxSim = new Float64Array(n);
  for (let step = 0; step < count; step++) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < n; i++) {
      if (picked[i] === 1) continue;
      const ri = rel[i] as number;
      // With S empty the redundancy term is 0 for every λ, so the first pick is by relevance.
      const score = step === 0 ? ri : lambda * ri - (1 - lambda) * (maxSim[i] as number);
      if (score > bestScore || (score === bestScore && ri > (rel[best] as number))) {
        best = i;
        bestScore = score;
      }
    }
    picked[best] = 1;
    picks.push(best);
    if (step + 1 === count) break;
    const row = best * dim;
    for (let i = 0; i < n; i++) {
      if (picked[i] === 1) continue;
      let dot = 0;
      for (let d = 0, o = i * dim; d < dim; d++) dot += (embeddings[o + d] as number) * (embeddings[row + d] as number);
      if (step === 0 || dot > (maxSim[i] as number)) maxSim[i] = dot;
    }
  }
  return picks;
}
