// The ranker's network inputs for a batch of rows, in the layout of training/models/spec.ts: the
// same `NetworkInputs` feed training, `WideAndDeep.logits` and `forwardNetwork(toSpec())`, and
// name the ONNX inputs of ranker.onnx. Dense features go in raw: the model standardises them
// itself, and its spec folds the standardisation into the first layer.

import type { Csr } from '../data/dataset.ts';
import { DENSE_SIZE } from '../features/feature-state.ts';
import { WideBuilder } from '../features/point-in-time.ts';
import type { FrozenFeatures } from '../features/point-in-time.ts';
import type { NetworkInputs } from '../models/spec.ts';

/** Input names of ranker.onnx. */
export const RANKER_INPUTS = {
  user: 'user',
  item: 'item',
  categories: 'item_categories',
  userFeatures: 'user_features',
  wide: 'wide',
  dense: 'features',
} as const;
export const RANKER_OUTPUT = 'logits';

/** What scoring needs per row: ids, raw dense features and wide ids. `RankerRows` is one. */
export interface ScoringRows {
  length: number;
  user: Int32Array;
  item: Int32Array;
  /** [length × DENSE_SIZE] raw (unstandardised) dense features. */
  dense: Float32Array;
  wideOffsets: Int32Array;
  wideIds: Int32Array;
}

/** The vocabulary sizes and content CSRs the inputs are built from (the training dataset's). */
export interface RankerVocabulary {
  users: number;
  items: number;
  categories: number;
  userFeatures: number;
  itemCategories: Csr;
  userFeatureRows: Csr;
}

type Bag = NetworkInputs['bags'][string];

/** Reusable buffers for one batch size, so a training step allocates nothing. */
export class InputBuilder {
  private readonly buffers = new Map<string, { ids: Int32Array; mask: Float32Array }>();
  private dense = new Float32Array(0);

  constructor(private readonly vocabulary: RankerVocabulary) {}

  private bag(name: string, batch: number, length: number): Bag {
    const size = batch * length;
    let buffer = this.buffers.get(name);
    if (!buffer || buffer.ids.length < size) {
      buffer = { ids: new Int32Array(size), mask: new Float32Array(size) };
      this.buffers.set(name, buffer);
    }
    const ids = buffer.ids.subarray(0, size).fill(0);
    const mask = buffer.mask.subarray(0, size).fill(0);
    return { ids, mask, length };
  }

  /** The inputs of rows `indices[from .. to)` of `rows`. Unknown user or item indexes go to the last (out-of-vocabulary) row. */
  build(rows: ScoringRows, indices: ArrayLike<number>, from: number, to: number): NetworkInputs {
    const v = this.vocabulary;
    const batch = to - from;
    let catLength = 1;
    let featureLength = 1;
    let wideLength = 1;
    for (let k = from; k < to; k++) {
      const r = indices[k] ?? 0;
      const item = rows.item[r] ?? 0;
      const user = rows.user[r] ?? 0;
      if (item < v.items) catLength = Math.max(catLength, span(v.itemCategories, item));
      if (user < v.users) featureLength = Math.max(featureLength, span(v.userFeatureRows, user));
      wideLength = Math.max(wideLength, (rows.wideOffsets[r + 1] ?? 0) - (rows.wideOffsets[r] ?? 0));
    }
    const user = this.bag(RANKER_INPUTS.user, batch, 1);
    const item = this.bag(RANKER_INPUTS.item, batch, 1);
    const categories = this.bag(RANKER_INPUTS.categories, batch, catLength);
    const userFeatures = this.bag(RANKER_INPUTS.userFeatures, batch, featureLength);
    const wide = this.bag(RANKER_INPUTS.wide, batch, wideLength);
    if (this.dense.length < batch * DENSE_SIZE) this.dense = new Float32Array(batch * DENSE_SIZE);
    const dense = this.dense.subarray(0, batch * DENSE_SIZE);
    for (let b = 0; b < batch; b++) {
      const r = indices[from + b] ?? 0;
      const u = rows.user[r] ?? 0;
      const i = rows.item[r] ?? 0;
      const knownUser = u >= 0 && u < v.users;
      const knownItem = i >= 0 && i < v.items;
      user.ids[b] = knownUser ? u : v.users;
      user.mask[b] = 1;
      item.ids[b] = knownItem ? i : v.items;
      item.mask[b] = 1;
      if (knownItem) fill(categories, b, v.itemCategories, i);
      if (knownUser) fill(userFeatures, b, v.userFeatureRows, u);
      const w0 = rows.wideOffsets[r] ?? 0;
      const w1 = rows.wideOffsets[r + 1] ?? 0;
      for (let k = w0; k < w1; k++) {
        wide.ids[b * wideLength + k - w0] = rows.wideIds[k] ?? 0;
        wide.mask[b * wideLength + k - w0] = 1;
      }
      for (let j = 0; j < DENSE_SIZE; j++) dense[b * DENSE_SIZE + j] = rows.dense[r * DENSE_SIZE + j] ?? 0;
    }
    return {
      batch,
      bags: {
        [RANKER_INPUTS.user]: user,
        [RANKER_INPUTS.item]: item,
        [RANKER_INPUTS.categories]: categories,
        [RANKER_INPUTS.userFeatures]: userFeatures,
        [RANKER_INPUTS.wide]: wide,
      },
      dense,
    };
  }
}

function span(csr: Csr, r: number): number {
  return (csr.offsets[r + 1] ?? 0) - (csr.offsets[r] ?? 0);
}

function fill(bag: Bag, b: number, csr: Csr, r: number): void {
  const from = csr.offsets[r] ?? 0;
  const to = csr.offsets[r + 1] ?? 0;
  for (let k = from; k < to; k++) {
    bag.ids[b * bag.length + k - from] = csr.indices[k] ?? 0;
    bag.mask[b * bag.length + k - from] = 1;
  }
}

/**
 * Scoring rows for serving: `items` for one user, featurised by the frozen state (position
 * unknown unless given), ready for `WideAndDeep.score`.
 */
export function candidateRows(frozen: FrozenFeatures, user: number, items: ArrayLike<number>, position = -1): ScoringRows {
  const n = items.length;
  const dense = new Float32Array(n * DENSE_SIZE);
  const wide = new WideBuilder(n);
  const itemArray = new Int32Array(n);
  for (let k = 0; k < n; k++) itemArray[k] = items[k] ?? 0;
  frozen.rows(user, itemArray, dense, wide, position);
  return { length: n, user: new Int32Array(n).fill(user), item: itemArray, dense, ...wide.build() };
}
