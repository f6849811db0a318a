// What the item-item baselines share: the binary user × item training matrix X (one entry per
// distinct user-item pair), item popularity, the catalog restricted to the most popular items,
// and the Gram matrix XᵀX over that restriction.

import { row, userItems } from '../../data/dataset.ts';
import type { Recommender } from '../evaluate.ts';
import type { Csr, Dataset } from '../../data/dataset.ts';

/** Per user, the distinct items of `rows`, first occurrence first: the rows of binary X. */
export function distinctUserItems(dataset: Dataset, rows: Int32Array): Csr {
  const csr = userItems(dataset, rows);
  const seen = new Uint8Array(dataset.itemIds.length);
  const offsets = new Int32Array(dataset.userIds.length + 1);
  const indices: number[] = [];
  for (let u = 0; u < dataset.userIds.length; u++) {
    const start = indices.length;
    for (const i of row(csr, u)) {
      if (seen[i] === 0) {
        seen[i] = 1;
        indices.push(i);
      }
    }
    for (let n = start; n < indices.length; n++) seen[indices[n] ?? 0] = 0;
    offsets[u + 1] = indices.length;
  }
  return { offsets, indices: Int32Array.from(indices) };
}

/** Users per item in X. */
export function itemPopularity(x: Csr, itemCount: number): Float64Array {
  const counts = new Float64Array(itemCount);
  for (const i of x.indices) counts[i] = (counts[i] ?? 0) + 1;
  return counts;
}

/** A dense item-item model's catalog: the kept items (most popular first) and global → local. */
export interface ItemSubset {
  items: Int32Array;
  /** Global item index → position in `items`, −1 when not kept. */
  local: Int32Array;
}

/** The `maxItems` most popular items with at least one train user (all of them when fewer). */
export function popularSubset(popularity: Float64Array, maxItems: number): ItemSubset {
  const order: number[] = [];
  for (let i = 0; i < popularity.length; i++) if ((popularity[i] ?? 0) > 0) order.push(i);
  order.sort((a, b) => (popularity[b] ?? 0) - (popularity[a] ?? 0) || a - b);
  const items = Int32Array.from(order.slice(0, maxItems));
  const local = new Int32Array(popularity.length).fill(-1);
  items.forEach((item, n) => (local[item] = n));
  return { items, local };
}

/** Dense XᵀX (row-major, n × n for the n kept items): co-occurrence counts, popularity on the diagonal. */
export function gramMatrix(x: Csr, subset: ItemSubset, users: number): Float64Array {
  const n = subset.items.length;
  const gram = new Float64Array(n * n);
  const kept: number[] = [];
  for (let u = 0; u < users; u++) {
    kept.length = 0;
    for (const i of row(x, u)) {
      const l = subset.local[i] ?? -1;
      if (l >= 0) kept.push(l);
    }
    for (const a of kept) {
      const base = a * n;
      for (const b of kept) gram[base + b] = (gram[base + b] ?? 0) + 1;
    }
  }
  return gram;
}

/**
 * Scores for a dense item-item model: out[j] = Σ_{i ∈ history} W[i][j] over kept items (the
 * product x·W for binary x), −Infinity for items outside the subset. `acc` is n-length scratch.
 */
export function scoreItemItem(
  weights: Float32Array, subset: ItemSubset, history: ArrayLike<number>, out: Float32Array, acc: Float32Array, sums?: RowSums,
): void {
  const n = subset.items.length;
  if (sums === undefined) itemItemSums(weights, subset, history, acc);
  else sums(historyRows(subset, history), acc);
  out.fill(-Infinity);
  for (let j = 0; j < n; j++) out[subset.items[j] ?? 0] = acc[j] ?? 0;
}

/**
 * Computes itemItemSums' acc from the history's rows (positions in the subset, in history order):
 * the same bits, e.g. the WASM `sumRows` kernel over a resident copy of the weights.
 */
export type RowSums = (rows: Int32Array, acc: Float32Array) => void;

/** The history's items that are in the subset, as their positions there, in history order. */
export function historyRows(subset: ItemSubset, history: ArrayLike<number>): Int32Array {
  const rows: number[] = [];
  for (let h = 0; h < history.length; h++) {
    const l = subset.local[history[h] ?? 0] ?? -1;
    if (l >= 0) rows.push(l);
  }
  return Int32Array.from(rows);
}

/** The scores of scoreItemItem over the kept items only: acc[l] for item subset.items[l]. */
export function itemItemSums(weights: Float32Array, subset: ItemSubset, history: ArrayLike<number>, acc: Float32Array): void {
  const n = subset.items.length;
  acc.fill(0);
  // Rows four at a time: one pass over `acc` per four rows instead of per row (2× faster for a
  // history of ~100 items), their sum rounded to float32 once per pass.
  const rows: number[] = [];
  for (let h = 0; h < history.length; h++) {
    const l = subset.local[history[h] ?? 0] ?? -1;
    if (l >= 0) rows.push(l * n);
  }
  let r = 0;
  for (; r + 3 < rows.length; r += 4) {
    const a = rows[r] ?? 0;
    const b = rows[r + 1] ?? 0;
    const c = rows[r + 2] ?? 0;
    const d = rows[r + 3] ?? 0;
    for (let j = 0; j < n; j++) acc[j] = (acc[j] ?? 0) + ((weights[a + j] ?? 0) + (weights[b + j] ?? 0) + (weights[c + j] ?? 0) + (weights[d + j] ?? 0));
  }
  for (; r < rows.length; r++) {
    const a = rows[r] ?? 0;
    for (let j = 0; j < n; j++) acc[j] = (acc[j] ?? 0) + (weights[a + j] ?? 0);
  }
}

/** A dense item-item model (EASE, item-kNN): scores = x·W over the kept items. */
export interface ItemItemModel {
  subset: ItemSubset;
  /** n × n row-major, n = subset.items.length. */
  weights: Float32Array;
}

/** A recommender over an item-item model, exposing the model so it can be exported. */
export function itemItemRecommender(name: string, model: ItemItemModel, sums?: RowSums): Recommender & { itemItem: ItemItemModel } {
  const acc = new Float32Array(model.subset.items.length);
  return {
    name,
    itemItem: model,
    scoreUser: (_user, history, out) => scoreItemItem(model.weights, model.subset, history, out, acc, sums),
  };
}
