// The two-tower retrieval model (Covington 2016; Yi 2019). User tower: user-id embedding + the mean
// of the user's recent items' embeddings + the mean of the user's attribute embeddings → MLP → unit
// vector. Item tower: item-id embedding + the mean of its content features' embeddings → MLP →
// unit vector. Trained with an in-batch softmax whose logits are corrected by log Q(item).

import { Xoshiro128 } from '../../core/domain/random.ts';
import type { Dataset } from '../data/dataset.ts';
import { row } from '../data/dataset.ts';
import { Network } from '../models/network.ts';
import type { NetworkSpec } from '../models/spec.ts';
import type { MatmulBackend } from '../nn/index.ts';
import { BAG, ItemInputs, UserInputs, towerInputSpec } from './inputs.ts';
import type { TowerInputSpec } from './inputs.ts';

export interface TwoTowerConfig {
  /** Output embedding size of both towers. */
  dim: number;
  idDim: number;
  historyDim: number;
  itemFeatureDim: number;
  userFeatureDim: number;
  hidden: number;
  historyLength: number;
  temperature: number;
  /**
   * Weight of the logQ correction (Yi 2019): 1 removes the in-batch sampler's popularity bias
   * entirely, 0 keeps it. Accuracy metrics reward some popularity, so the default is in between.
   */
  logQWeight: number;
  batch: number;
  epochs: number;
  /** Epochs without a better validation score before training stops. */
  patience: number;
  learningRate: number;
  sparseLearningRate: number;
  /** Share of training examples whose item id is replaced by the OOV id (cold-start training). */
  itemIdDropout: number;
  /** Share of training examples whose user id is replaced by the OOV id (new users). */
  userIdDropout: number;
  seed: number;
}

export const DEFAULT_TWO_TOWER: TwoTowerConfig = {
  dim: 64,
  idDim: 32,
  historyDim: 64,
  itemFeatureDim: 32,
  userFeatureDim: 16,
  hidden: 128,
  historyLength: 100,
  temperature: 0.15,
  logQWeight: 1,
  batch: 512,
  epochs: 30,
  patience: 3,
  learningRate: 1e-3,
  sparseLearningRate: 2e-3,
  itemIdDropout: 0.1,
  userIdDropout: 0.1,
  seed: 1,
};

export class TwoTower {
  readonly user: Network;
  readonly item: Network;
  readonly inputs: TowerInputSpec;
  /** Items that had training interactions: the others are embedded with the OOV id (content only). */
  readonly knownItems: Uint8Array;
  readonly knownUsers: Uint8Array;

  constructor(readonly dataset: Dataset, readonly config: TwoTowerConfig, readonly backend: MatmulBackend, known: { items: Uint8Array; users: Uint8Array }) {
    const rng = new Xoshiro128(config.seed);
    this.inputs = towerInputSpec(dataset, config.historyLength);
    const s = this.inputs;
    this.knownItems = known.items;
    this.knownUsers = known.users;
    this.user = new Network({
      bags: [
        { name: BAG.userId, rows: s.users + 1, dim: config.idDim, mode: 'mean' },
        { name: BAG.history, rows: Math.max(1, s.items), dim: config.historyDim, mode: 'mean' },
        { name: BAG.userFeatures, rows: Math.max(1, s.userFeatures), dim: config.userFeatureDim, mode: 'mean' },
      ],
      hidden: [config.hidden],
      outputs: config.dim,
      output: 'l2',
      outputName: 'user_embedding',
    }, rng, backend);
    this.item = new Network({
      bags: [
        { name: BAG.itemId, rows: s.items + 1, dim: config.idDim, mode: 'mean' },
        { name: BAG.itemFeatures, rows: Math.max(1, s.itemFeatures), dim: config.itemFeatureDim, mode: 'mean' },
      ],
      hidden: [config.hidden],
      outputs: config.dim,
      output: 'l2',
      outputName: 'item_embedding',
    }, rng, backend);
  }

  /** Unit vectors of every item [items × dim]; items without training data get their content-only vector. */
  embedItems(batch = 1024): Float32Array {
    const n = this.inputs.items;
    const out = new Float32Array(n * this.config.dim);
    const inputs = new ItemInputs(this.dataset, this.inputs, batch);
    const ids = new Int32Array(batch);
    for (let start = 0; start < n; start += batch) {
      const size = Math.min(batch, n - start);
      for (let r = 0; r < size; r++) ids[r] = start + r;
      const view = ids.subarray(0, size);
      const small = size === batch ? inputs : new ItemInputs(this.dataset, this.inputs, size);
      const y = this.item.forward(small.fill(view, this.knownItems));
      out.set(y.subarray(0, size * this.config.dim), start * this.config.dim);
    }
    return out;
  }

  /** Unit vectors of users given their histories (item indexes, oldest first). */
  embedUsers(users: Int32Array, histories: readonly ArrayLike<number>[]): Float32Array {
    const inputs = new UserInputs(this.dataset, this.inputs, users.length);
    const useId = new Uint8Array(users.length);
    users.forEach((u, r) => (useId[r] = this.knownUsers[u] ?? 0));
    return this.user.forward(inputs.fill(users, histories, useId)).slice();
  }

  toSpecs(): { user: NetworkSpec; item: NetworkSpec } {
    return { user: this.user.toSpec(), item: this.item.toSpec() };
  }
}

/** Users' and items' training positives, as the model's "known" masks and per-user item lists. */
export function knownFromRows(dataset: Dataset, rows: Int32Array): { items: Uint8Array; users: Uint8Array } {
  const items = new Uint8Array(dataset.itemIds.length);
  const users = new Uint8Array(dataset.userIds.length);
  for (const r of rows) {
    items[dataset.interactions.item[r] ?? 0] = 1;
    users[dataset.interactions.user[r] ?? 0] = 1;
  }
  return { items, users };
}

