// The ranker's two objectives and how they combine into one ranking score, plus the ROC AUC the
// early stopping and the tests read.

export const OBJECTIVES = ['click', 'engagement'] as const;
export type Objective = (typeof OBJECTIVES)[number];
export type ObjectiveWeights = Record<Objective, number>;

/** Σ_o w_o · log σ(z_o) per row of [n × 2] logits, into `out` when given (n long), else a new array. */
export function combineLogits(logits: Float32Array, weights: ObjectiveWeights, out: Float32Array = new Float32Array(logits.length / OBJECTIVES.length)): Float32Array {
  const n = logits.length / OBJECTIVES.length;
  if (out.length !== n) throw new RangeError(`combineLogits writes ${n} scores, got room for ${out.length}`);
  for (let r = 0; r < n; r++) {
    out[r] = weights.click * logSigmoid(logits[2 * r] ?? 0) + weights.engagement * logSigmoid(logits[2 * r + 1] ?? 0);
  }
  return out;
}

/** log σ(z) = −softplus(−z), stable on both sides. */
export function logSigmoid(z: number): number {
  return -(Math.max(-z, 0) + Math.log1p(Math.exp(-Math.abs(z))));
}

/** ROC AUC by the rank-sum (Mann–Whitney U) formula, ties counted half. NaN without both classes. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const order = Int32Array.from({ length: n }, (_, k) => k).sort((a, b) => (scores[a] ?? 0) - (scores[b] ?? 0));
  let positives = 0;
  let rankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start;
    while (end < n && scores[order[end] ?? 0] === scores[order[start] ?? 0]) end++;
    const rank = (start + end + 1) / 2; // mean 1-based rank of the tie group
    for (let k = start; k < end; k++) {
      if ((labels[order[k] ?? 0] ?? 0) > 0) {
        positives++;
        rankSum += rank;
      }
    }
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
