// Trains the two-tower model on a dataset's positive interactions: shuffled mini-batches, in-batch
// softmax with logQ correction (Yi 2019), Adam on the dense layers and sparse Adagrad on the
// embedding tables, early stopping on a validation slice's NDCG@K.

import { shuffleInPlace, Xoshiro128 } from '../../core/domain/random.ts';
import { row } from '../data/dataset.ts';
import type { Csr, Dataset } from '../data/dataset.ts';
import { evaluate } from '../eval/evaluate.ts';
import type { Recommender } from '../eval/evaluate.ts';
import { Adam, InBatchSoftmax, LazyAdam } from '../nn/index.ts';
import type { MatmulBackend } from '../nn/index.ts';
import { SILENT } from '../progress.ts';
import type { TrainingObserver } from '../progress.ts';
import { scanTopK } from './catalog-scan.ts';
import { ItemInputs, UserInputs } from './inputs.ts';
import { DEFAULT_TWO_TOWER, knownFromRows, TwoTower } from './model.ts';
import type { TwoTowerConfig } from './model.ts';

export interface TrainTwoTowerOptions {
  config?: Partial<TwoTowerConfig>;
  backend: MatmulBackend;
  /** Held-out positive rows: NDCG@k on them picks the best epoch and stops training early. */
  validation?: { rows: Int32Array; k: number };
  observer?: TrainingObserver;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  /** NDCG@k on the validation rows, when there are any. */
  validation?: number;
  seconds: number;
}

export interface TwoTowerResult {
  model: TwoTower;
  curve: EpochRecord[];
  bestEpoch: number;
  seconds: number;
  examples: number;
  /** Training examples per second (forward, backward and update; validation excluded). */
  examplesPerSecond: number;
}

const MODEL = 'two-tower';
/** In-batch negatives need company: below this the softmax has too few items to contrast. */
const MIN_BATCH = 8;
const MIN_EXAMPLES = 2 * MIN_BATCH;

export function trainTwoTower(dataset: Dataset, trainRows: Int32Array, options: TrainTwoTowerOptions): TwoTowerResult {
  const config: TwoTowerConfig = { ...DEFAULT_TWO_TOWER, ...options.config };
  const observer = options.observer ?? SILENT;
  const { interactions } = dataset;
  const positives = trainRows.filter((r) => (interactions.weight[r] ?? 0) > 0);
  const model = new TwoTower(dataset, config, options.backend, knownFromRows(dataset, positives));
  const histories = perUserItems(dataset, positives);
  const logQ = itemLogQ(dataset, positives);

  const rng = new Xoshiro128(config.seed ^ 0x5eed);
  if (positives.length < MIN_EXAMPLES) {
    throw new Error(`${positives.length} positive interactions to train on; the two-tower model needs at least ${MIN_EXAMPLES} (check the event types' weights: only weight > 0 counts)`);
  }
  // A small dataset trains on smaller batches (at least 4 per epoch) rather than not at all.
  const B = Math.min(config.batch, Math.max(MIN_BATCH, 2 ** Math.floor(Math.log2(positives.length / 4))));
  const dense = new Adam([...model.user.denseParams, ...model.item.denseParams], { learningRate: config.learningRate });
  const sparse = new LazyAdam([...model.user.sparseParams, ...model.item.sparseParams], { learningRate: config.sparseLearningRate });
  const loss = new InBatchSoftmax(options.backend);
  const userInputs = new UserInputs(dataset, model.inputs, B);
  const itemInputs = new ItemInputs(dataset, model.inputs, B);
  const users = new Int32Array(B);
  const items = new Int32Array(B);
  const useId = new Uint8Array(B);
  const batchLogQ = new Float32Array(B);
  const sampled: number[][] = Array.from({ length: B }, () => []);

  const order = Int32Array.from(positives);
  const steps = Math.floor(order.length / B);
  const curve: EpochRecord[] = [];
  let best = -Infinity;
  let bestEpoch = 0;
  let bestSpecs = model.toSpecs();
  let trainMs = 0;
  const t0 = performance.now();
  for (let epoch = 1; epoch <= config.epochs; epoch++) {
    const e0 = performance.now();
    shuffleInPlace(order, rng);
    let sum = 0;
    for (let step = 0; step < steps; step++) {
      for (let b = 0; b < B; b++) {
        const r = order[step * B + b] ?? 0;
        const u = interactions.user[r] ?? 0;
        const i = interactions.item[r] ?? 0;
        users[b] = u;
        items[b] = i;
        useId[b] = rng.next() < config.userIdDropout ? 0 : 1;
        batchLogQ[b] = config.logQWeight * (logQ[i] ?? 0);
        sampleHistory(row(histories, u), i, config.historyLength, rng, sampled[b] ?? []);
      }
      const u = model.user.forward(userInputs.fill(users, sampled, useId));
      const v = model.item.forward(itemInputs.fill(items, undefined, rng, config.itemIdDropout));
      sum += loss.forward({ queries: u, items: v, batch: B, dim: config.dim, itemIds: items, logQ: batchLogQ, temperature: config.temperature });
      model.user.zeroGrad();
      model.item.zeroGrad();
      model.user.backward(loss.dQueries);
      model.item.backward(loss.dItems);
      dense.step();
      sparse.step();
      observer.progress(MODEL, epoch, config.epochs, (step + 1) * B, steps * B, sum / (step + 1));
    }
    trainMs += performance.now() - e0;
    const record: EpochRecord = { epoch, loss: sum / steps, seconds: (performance.now() - e0) / 1000 };
    if (options.validation && options.validation.rows.length > 0) {
      const { k, rows } = options.validation;
      const result = evaluate(dataset, { train: positives, test: rows }, [twoTowerRecommender(model)], { k });
      record.validation = result.results[0]?.metrics.ndcg ?? 0;
    }
    curve.push(record);
    const score = record.validation ?? -record.loss;
    observer.epochEnd(MODEL, `epoch ${epoch}: loss ${record.loss.toFixed(4)}${record.validation === undefined ? '' : `, validation NDCG@${options.validation?.k} ${record.validation.toFixed(4)}`} (${record.seconds.toFixed(1)}s)`);
    if (score > best) {
      best = score;
      bestEpoch = epoch;
      bestSpecs = model.toSpecs();
    } else if (epoch - bestEpoch >= config.patience) {
      break;
    }
  }
  restore(model, bestSpecs);
  const examples = steps * B * curve.length;
  return {
    model, curve, bestEpoch,
    seconds: (performance.now() - t0) / 1000,
    examples,
    examplesPerSecond: examples / Math.max(trainMs / 1000, 1e-9),
  };
}

/**
 * Scores every item for a user: ⟨user vector, item vector⟩ over the whole catalog; many users'
 * top K at once through the model's GEMM backend (catalog-scan.ts).
 */
export function twoTowerRecommender(model: TwoTower, name = MODEL): Recommender & { itemVectors: Float32Array } {
  const itemVectors = model.embedItems();
  const dim = model.config.dim;
  return {
    name,
    itemVectors,
    recommendMany: (users, histories, k) => scanTopK(model.backend, itemVectors, dim, model.embedUsers(users, histories), histories, k),
    scoreUser(user, history, out) {
      const u = model.embedUsers(Int32Array.of(user), [history]);
      for (let i = 0; i < out.length; i++) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += (u[d] ?? 0) * (itemVectors[i * dim + d] ?? 0);
        out[i] = s;
      }
    },
  };
}

/** Per user, the items of their positive training rows, oldest first. */
function perUserItems(dataset: Dataset, rows: Int32Array): Csr {
  const lists: number[][] = Array.from({ length: dataset.userIds.length }, () => []);
  const sorted = Int32Array.from(rows).sort();
  for (const r of sorted) lists[dataset.interactions.user[r] ?? 0]?.push(dataset.interactions.item[r] ?? 0);
  const offsets = new Int32Array(lists.length + 1);
  lists.forEach((l, u) => (offsets[u + 1] = (offsets[u] ?? 0) + l.length));
  return { offsets, indices: Int32Array.from(lists.flat()) };
}

/** log of each item's share of the training positives: its chance to be drawn into a batch (Yi 2019). */
function itemLogQ(dataset: Dataset, rows: Int32Array): Float32Array {
  const counts = new Float64Array(dataset.itemIds.length);
  for (const r of rows) {
    const i = dataset.interactions.item[r] ?? 0;
    counts[i] = (counts[i] ?? 0) + 1;
  }
  const out = new Float32Array(counts.length);
  for (let i = 0; i < counts.length; i++) out[i] = Math.log(Math.max(counts[i] ?? 0, 1) / Math.max(rows.length, 1));
  return out;
}

/**
 * The history an example sees: the user's other training items (never the target itself, or the
 * model would learn to find the item in its own input), at most `length` of them, drawn at random
 * when there are more so that each epoch sees a different subset.
 */
function sampleHistory(items: Int32Array, target: number, length: number, rng: Xoshiro128, out: number[]): void {
  out.length = 0;
  for (const i of items) if (i !== target) out.push(i);
  // Partial Fisher-Yates: the first `length` entries become a uniform sample.
  if (out.length > length) {
    for (let j = 0; j < length; j++) {
      const k = j + rng.nextInt(out.length - j);
      const t = out[j] ?? 0;
      out[j] = out[k] ?? 0;
      out[k] = t;
    }
    out.length = length;
  }
}


/** Puts the best epoch's weights back into the model. */
function restore(model: TwoTower, specs: { user: ReturnType<TwoTower['user']['toSpec']>; item: ReturnType<TwoTower['item']['toSpec']> }): void {
  for (const [net, spec] of [[model.user, specs.user], [model.item, specs.item]] as const) {
    net.bags.forEach((bag, i) => bag.table.value.set(spec.bags[i]?.table ?? bag.table.value));
    net.layers.forEach((layer, i) => {
      const s = spec.layers[i];
      if (!s) return;
      layer.weight.value.set(s.weight);
      layer.bias.value.set(s.bias);
    });
  }
}
