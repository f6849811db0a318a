// In-batch sampled softmax for a two-tower model: each query's positive is its own row's item and
// the other rows' items are its negatives (Covington 2016's sampled softmax, with the batch as the
// sample). Items in a batch are drawn in proportion to their frequency, so popular items appear as
// negatives too often; subtracting log Q(item) from its logit corrects the sampling bias
// (Yi et al. 2019, "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations").
import type { MatmulBackend } from './backend.ts';

export interface InBatchSoftmaxInput {
  /** Query-tower outputs U [batch × dim]. */
  queries: Float32Array;
  /** Item-tower outputs V [batch × dim]; row i is the positive of query i. */
  items: Float32Array;
  batch: number;
  dim: number;
  /** Item id of each row, to find duplicates of a row's positive among its negatives. */
  itemIds: Int32Array;
  /** log Q of each row's item: the log of its probability of being sampled into a batch. */
  logQ?: Float32Array;
  /** Divides the dot products; < 1 sharpens the softmax (0.05–0.2 is typical for unit vectors). */
  temperature: number;
  /** Per-row weight of the loss (default 1). */
  weights?: Float32Array;
}

/**
 * logits[i, j] = ⟨u_i, v_j⟩ / temperature − logQ[j]; loss = (1/batch) Σ_i w_i ·
 * (logsumexp_j logits[i, j] − logits[i, i]). After `forward`, `dQueries` and `dItems` hold the
 * gradients wrt U and V.
 *
 * Duplicates: when row j ≠ i carries the same item as row i, logits[i, j] is masked out (−∞).
 * Otherwise the query would be pushed away from its own positive, and the two copies' gradients
 * would cancel; masking keeps one positive per row, as TFRS's `remove_accidental_hits` does.
 */
export class InBatchSoftmax {
  /** dLoss/dU [batch × dim], valid after forward. */
  dQueries = new Float32Array(0);
  /** dLoss/dV [batch × dim], valid after forward. */
  dItems = new Float32Array(0);
  /** Logits, then dLoss/dlogits, [batch × batch]. */
  private logits = new Float32Array(0);
  private noLogQ = new Float32Array(0);
  private copies = new Int32Array(0);

  constructor(private readonly backend: MatmulBackend) {}

  forward(input: InBatchSoftmaxInput): number {
    const { queries, items, batch, dim, itemIds, logQ, temperature, weights } = input;
    if (queries.length !== batch * dim || items.length !== batch * dim) {
      throw new RangeError(`queries and items must be batch ${batch} × dim ${dim}; got ${queries.length} and ${items.length}`);
    }
    if (itemIds.length !== batch) throw new RangeError(`itemIds has ${itemIds.length} entries for a batch of ${batch}`);
    if (logQ !== undefined && logQ.length !== batch) throw new RangeError(`logQ has ${logQ.length} entries for a batch of ${batch}`);
    if (weights !== undefined && weights.length !== batch) throw new RangeError(`weights has ${weights.length} entries for a batch of ${batch}`);
    if (!(temperature > 0)) throw new RangeError(`temperature must be positive, got ${temperature}`);
    if (this.logits.length !== batch * batch) this.logits = new Float32Array(batch * batch);
    if (this.dQueries.length !== batch * dim) {
      this.dQueries = new Float32Array(batch * dim);
      this.dItems = new Float32Array(batch * dim);
    }
    const s = this.logits;
    const invT = 1 / temperature;
    this.backend.gemm(false, true, batch, batch, dim, invT, queries, items, 0, s);

    const rows = this.backend.inBatchSoftmaxRows;
    const total = rows ? rows(s, batch, itemIds, logQ, weights) : this.softmaxRows(s, batch, itemIds, logQ, weights);
    // logits = U·Vᵀ/T, so dU = dS·V/T and dV = dSᵀ·U/T (logQ is a constant).
    this.backend.gemm(false, false, batch, dim, batch, invT, s, items, 0, this.dQueries);
    this.backend.gemm(true, false, batch, dim, batch, invT, s, queries, 0, this.dItems);
    return total / batch;
  }

  /** The TypeScript row passes: see `InBatchSoftmaxRows` in backend.ts. */
  private softmaxRows(s: Float32Array, batch: number, itemIds: Int32Array, logQ: Float32Array | undefined, weights: Float32Array | undefined): number {
    if (this.noLogQ.length !== batch) this.noLogQ = new Float32Array(batch);
    // s − 0 is s exactly, so a missing logQ is a row of zeros and the loop below has no branch on it.
    const q = logQ ?? this.noLogQ;
    const copies = this.copiesOfOwnItem(itemIds, batch);
    let total = 0;
    for (let i = 0; i < batch; i++) {
      const row = i * batch;
      const own = itemIds[i] as number;
      let max = -Infinity;
      if (copies[i] === 1) {
        for (let j = 0; j < batch; j++) {
          const z = (s[row + j] as number) - (q[j] as number);
          s[row + j] = z;
          if (z > max) max = z;
        }
      } else {
        for (let j = 0; j < batch; j++) {
          const z = j !== i && itemIds[j] === own ? -Infinity : (s[row + j] as number) - (q[j] as number);
          s[row + j] = z;
          if (z > max) max = z;
        }
      }
      // One exp per entry: keep exp(z − max) in place, then scale by 1/sum for the softmax.
      const ownLogit = s[row + i] as number;
      let sum = 0;
      for (let j = row; j < row + batch; j++) {
        const e = Math.exp((s[j] as number) - max);
        s[j] = e;
        sum += e;
      }
      const lse = max + Math.log(sum);
      const w = weights === undefined ? 1 : (weights[i] as number);
      total += w * (lse - ownLogit);
      // dLoss/dlogits[i, j] = w_i/batch · (softmax_ij − [i = j]); masked entries get exp(−∞) = 0.
      const scale = w / batch;
      const norm = scale / sum;
      for (let j = row; j < row + batch; j++) s[j] = (s[j] as number) * norm;
      s[row + i] = (s[row + i] as number) - scale;
    }
    return total;
  }

  /** Per row, how many rows of the batch carry its item (1 when the row has no duplicate to mask). */
  private copiesOfOwnItem(itemIds: Int32Array, batch: number): Int32Array {
    if (this.copies.length !== batch) this.copies = new Int32Array(batch);
    const counts = new Map<number, number>();
    for (let i = 0; i < batch; i++) {
      const id = itemIds[i] as number;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (let i = 0; i < batch; i++) this.copies[i] = counts.get(itemIds[i] as number) ?? 1;
    return this.copies;
  }
}
