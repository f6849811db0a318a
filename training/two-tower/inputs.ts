// Builds the bag inputs of the two towers (the `NetworkInputs` of training/models/spec.ts) from a
// dataset: the same code feeds training batches, the evaluator and the exported models' callers,
// so what the model sees in training is what it sees in serving.

import type { Csr, Dataset } from '../data/dataset.ts';
import type { NetworkInputs } from '../models/spec.ts';
import type { Xoshiro128 } from '../../core/domain/random.ts';

/** Sizes of the towers' inputs; stored in the manifest so serving builds the same inputs. */
export interface TowerInputSpec {
  users: number;
  items: number;
  userFeatures: number;
  itemFeatures: number;
  /** Most history items pooled into the user vector (the most recent ones at serving time). */
  historyLength: number;
  /** Most content ids per item / attribute ids per user (longer lists are cut). */
  itemFeatureLength: number;
  userFeatureLength: number;
}

export const BAG = {
  userId: 'user_id',
  history: 'user_history',
  userFeatures: 'user_features',
  itemId: 'item_id',
  itemFeatures: 'item_features',
} as const;

export function towerInputSpec(dataset: Dataset, historyLength: number): TowerInputSpec {
  return {
    users: dataset.userIds.length,
    items: dataset.itemIds.length,
    userFeatures: dataset.userFeatureNames.length,
    itemFeatures: dataset.itemFeatureNames.length,
    historyLength,
    itemFeatureLength: Math.max(1, maxRow(dataset.itemFeatures)),
    userFeatureLength: Math.max(1, maxRow(dataset.userFeatures)),
  };
}

function maxRow(csr: Csr): number {
  let m = 0;
  for (let r = 0; r + 1 < csr.offsets.length; r++) m = Math.max(m, (csr.offsets[r + 1] ?? 0) - (csr.offsets[r] ?? 0));
  return m;
}

/** A padded bag: `ids`/`mask` are [batch × length]; unused slots have id 0 and mask 0. */
export class PaddedBag {
  readonly ids: Int32Array;
  readonly mask: Float32Array;

  constructor(readonly batch: number, readonly length: number) {
    this.ids = new Int32Array(batch * length);
    this.mask = new Float32Array(batch * length);
  }

  clear(): void {
    this.ids.fill(0);
    this.mask.fill(0);
  }

  /**
   * Puts `ids` (cut to the bag length) in row `r`, skipping ids ≥ `rows`: features a trained model
   * has no row for (new since it was trained) are left out rather than read out of range.
   */
  setRow(r: number, ids: ArrayLike<number>, rows = Infinity): void {
    const at = r * this.length;
    let j = 0;
    for (let k = 0; k < ids.length && j < this.length; k++) {
      const id = ids[k] ?? 0;
      if (id >= rows) continue;
      this.ids[at + j] = id;
      this.mask[at + j] = 1;
      j++;
    }
  }

  setOne(r: number, id: number): void {
    this.ids[r * this.length] = id;
    this.mask[r * this.length] = 1;
  }

  view(): { ids: Int32Array; mask: Float32Array; length: number } {
    return { ids: this.ids, mask: this.mask, length: this.length };
  }
}

/**
 * Item tower inputs. The id table has one extra row (`items`), the out-of-vocabulary id: an item
 * unseen in training, or one whose id is dropped (rate `idDropout`) so the tower also learns to
 * embed items from content alone (cold start).
 */
export class ItemInputs {
  readonly id: PaddedBag;
  readonly features: PaddedBag;

  constructor(private readonly dataset: Dataset, readonly spec: TowerInputSpec, batch: number) {
    this.id = new PaddedBag(batch, 1);
    this.features = new PaddedBag(batch, spec.itemFeatureLength);
  }

  fill(items: ArrayLike<number>, knownItems?: Uint8Array, rng?: Xoshiro128, idDropout = 0): NetworkInputs {
    this.id.clear();
    this.features.clear();
    const { offsets, indices } = this.dataset.itemFeatures;
    for (let r = 0; r < items.length; r++) {
      const item = items[r] ?? 0;
      const known = knownItems === undefined || knownItems[item] === 1;
      const drop = rng !== undefined && idDropout > 0 && rng.next() < idDropout;
      this.id.setOne(r, known && !drop && item < this.spec.items ? item : this.spec.items);
      this.features.setRow(r, indices.subarray(offsets[item] ?? 0, offsets[item + 1] ?? 0), this.spec.itemFeatures);
    }
    return { batch: items.length, bags: { [BAG.itemId]: this.id.view(), [BAG.itemFeatures]: this.features.view() } };
  }
}

/** User tower inputs: user id (extra OOV row `users`), pooled history items, user attributes. */
export class UserInputs {
  readonly id: PaddedBag;
  readonly history: PaddedBag;
  readonly features: PaddedBag;

  constructor(private readonly dataset: Dataset, readonly spec: TowerInputSpec, batch: number) {
    this.id = new PaddedBag(batch, 1);
    this.history = new PaddedBag(batch, spec.historyLength);
    this.features = new PaddedBag(batch, spec.userFeatureLength);
  }

  /**
   * Row r = user `users[r]` with history `histories[r]` (item indexes; the last `historyLength` are
   * used). `useId[r] = 0` feeds the OOV user id instead (a user the model has not trained on).
   */
  fill(users: ArrayLike<number>, histories: readonly ArrayLike<number>[], useId?: Uint8Array): NetworkInputs {
    this.id.clear();
    this.history.clear();
    this.features.clear();
    const { offsets, indices } = this.dataset.userFeatures;
    const L = this.spec.historyLength;
    for (let r = 0; r < users.length; r++) {
      const user = users[r] ?? 0;
      const known = (useId === undefined || useId[r] === 1) && user < this.spec.users;
      this.id.setOne(r, known ? user : this.spec.users);
      const h = histories[r] ?? [];
      const start = Math.max(0, h.length - L);
      const recent: number[] = [];
      for (let j = start; j < h.length; j++) recent.push(h[j] ?? 0);
      this.history.setRow(r, recent, this.spec.items);
      if (user < this.dataset.userIds.length) this.features.setRow(r, indices.subarray(offsets[user] ?? 0, offsets[user + 1] ?? 0), this.spec.userFeatures);
    }
    return {
      batch: users.length,
      bags: { [BAG.userId]: this.id.view(), [BAG.history]: this.history.view(), [BAG.userFeatures]: this.features.view() },
    };
  }
}
