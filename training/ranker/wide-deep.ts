// The Wide&Deep ranker (Cheng et al. 2016, "Wide & Deep Learning for Recommender Systems").
//
// Deep: embedding bags (user id, item id, item categories (mean), user features (mean)) and the
// standardised point-in-time dense features → Dense(→64) ReLU → Dense(64→32) ReLU → Dense(32→2).
// Wide: a sum bag of the hashed crosses (training/features/point-in-time.ts) of dim 2, added to
// the deep logits; it starts at zero, so early training is the deep part alone. Two logits per
// row: click, and engagement (labels in training/features/ranker-rows.ts). Loss: sigmoid
// cross-entropy per objective, weighted. As in the paper, the wide and deep parts train jointly;
// dense weights take Adam, embedding tables and the wide table sparse Adagrad (the paper uses
// FTRL for the wide part and AdaGrad for the deep; Adagrad's per-coordinate rate is the part of
// FTRL that matters without L1).
//
// Serving score: Σ_o w_o · log σ(z_o), i.e. log(P(click)^w_c · P(engaged)^w_e). A weighted sum of
// log-probabilities ranks like the product of the probabilities (multiplicative fusion), so one
// objective that is near zero vetoes an item, which a sum of probabilities would not do.

import { Xoshiro128 } from '../../core/domain/random.ts';
import type { Dataset } from '../data/dataset.ts';
import { DENSE_INDEX, DENSE_SIZE } from '../features/feature-state.ts';
import type { NetworkInputs, NetworkSpec } from '../models/spec.ts';
import { Dense, EmbeddingBag, Relu, typescriptMatmul } from '../nn/index.ts';
import type { MatmulBackend } from '../nn/index.ts';
import { withLinearSkip } from './blend.ts';
import { InputBuilder, RANKER_INPUTS, RANKER_OUTPUT } from './inputs.ts';
import type { RankerVocabulary, ScoringRows } from './inputs.ts';
import { OBJECTIVES, combineLogits } from './objectives.ts';
import type { ObjectiveWeights } from './objectives.ts';
import type { EpochReport } from './train.ts';

export interface WideAndDeepOptions {
  seed?: number;
  /** Embedding dims: user id, item id, categories, user features. */
  userDim?: number;
  itemDim?: number;
  categoryDim?: number;
  userFeatureDim?: number;
  hidden?: readonly number[];
  /** Adam's rate for the dense layers. */
  learningRate?: number;
  /** Adagrad's rate for the embedding tables and the wide table. */
  sparseLearningRate?: number;
  batchSize?: number;
  maxEpochs?: number;
  /** Epochs without a better validation loss before training stops (the best epoch's weights are kept). */
  patience?: number;
  /** The latest share of the rows (by time) held out for early stopping. */
  validationShare?: number;
  /** How many of the last rows are held out for early stopping, instead of `validationShare` of them. */
  validationRows?: number;
  /** Per row: a factor on its pointwise loss weights (default 1; the listwise click loss of listed rows ignores it). */
  rowWeights?: Float32Array;
  /** Loss weight per objective. */
  lossWeights?: ObjectiveWeights;
  /** Weights of `score` (changeable later through `scoreWeights`). */
  scoreWeights?: ObjectiveWeights;
  /** Share of training rows whose user / item id is replaced by the out-of-vocabulary row, so that row learns a cold-start embedding. */
  idDropout?: number;
  /**
   * Train the click logit with a listwise softmax over each list of rows that share a `group`
   * (a user's candidates), instead of pointwise: ranking within a user is what serving needs.
   */
  listwise?: boolean;
  backend?: MatmulBackend;
  onEpoch?: (epoch: EpochReport) => void;
}

export const WIDE_AND_DEEP_DEFAULTS = {
  seed: 0, userDim: 16, itemDim: 16, categoryDim: 8, userFeatureDim: 8, hidden: [64, 32],
  learningRate: 0.002, sparseLearningRate: 0.05, batchSize: 512, maxEpochs: 6, patience: 1,
  validationShare: 0.1, idDropout: 0.02, listwise: false,
  lossWeights: { click: 1, engagement: 1 }, scoreWeights: { click: 1, engagement: 1 },
};
/** The options with defaults filled in (an option given as undefined takes its default). */
export function resolveOptions(options: WideAndDeepOptions) {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as WideAndDeepOptions;
  return { ...WIDE_AND_DEEP_DEFAULTS, ...given };
}

/** Standard deviation below which a dense feature is treated as constant (scaled by 1). */
const MIN_STD = 1e-6;

export class WideAndDeep {
  readonly vocabulary: RankerVocabulary;
  scoreWeights: ObjectiveWeights;
  private readonly bags: { name: string; bag: EmbeddingBag }[];
  private readonly wide: EmbeddingBag;
  private readonly layers: Dense[];
  private readonly relus: Relu[];
  /** Concatenated first-layer input [batch × width] and its gradient split back per bag. */
  private joined = new Float32Array(0);
  private readonly bagGrads: Float32Array[] = [];
  private readonly inputs: InputBuilder;
  /** Per dense feature: mean and std over the training rows. */
  readonly mean = new Float32Array(DENSE_SIZE);
  readonly std = new Float32Array(DENSE_SIZE).fill(1);
  /**
   * The click logit plus `weight` × the raw dense feature `feature` (./blend.ts): 0 while
   * training, set afterwards from the validation lists. Serving gets it inside ranker.onnx.
   */
  blend = { feature: DENSE_INDEX.coVisitationScore, weight: 0 };

  constructor(vocabulary: RankerVocabulary, wideBuckets: number, options: WideAndDeepOptions = {}) {
    const o = resolveOptions(options);
    this.vocabulary = vocabulary;
    this.scoreWeights = { ...o.scoreWeights };
    const rng = new Xoshiro128(o.seed);
    const backend = o.backend ?? typescriptMatmul;
    const bag = (name: string, rows: number, dim: number) => ({ name, bag: new EmbeddingBag({ rows, dim, pooling: 'mean', rng, backend }) });
    // One extra row for ids outside the vocabulary (new users and items at serving time).
    this.bags = [
      bag(RANKER_INPUTS.user, vocabulary.users + 1, o.userDim),
      bag(RANKER_INPUTS.item, vocabulary.items + 1, o.itemDim),
      bag(RANKER_INPUTS.categories, Math.max(1, vocabulary.categories), o.categoryDim),
      bag(RANKER_INPUTS.userFeatures, Math.max(1, vocabulary.userFeatures), o.userFeatureDim),
    ];
    this.wide = new EmbeddingBag({ rows: wideBuckets, dim: OBJECTIVES.length, pooling: 'sum', rng, backend, initStd: 0 });
    const widths = [this.bags.reduce<number>((w, b) => w + b.bag.dim, DENSE_SIZE), ...o.hidden, OBJECTIVES.length];
    this.layers = [];
    for (let l = 0; l + 1 < widths.length; l++) {
      const last = l + 2 === widths.length;
      this.layers.push(new Dense({ inputs: widths[l] ?? 1, outputs: widths[l + 1] ?? 1, rng, backend, init: last ? 'glorot' : 'he' }));
    }
    this.relus = o.hidden.map(() => new Relu());
    this.inputs = new InputBuilder(vocabulary);
  }

  /** The vocabulary of a dataset: sizes and the content CSRs the inputs read. */
  static vocabularyOf(dataset: Dataset): RankerVocabulary {
    return {
      users: dataset.userIds.length,
      items: dataset.itemIds.length,
      categories: dataset.categoryNames.length,
      userFeatures: dataset.userFeatureNames.length,
      itemCategories: dataset.itemCategories,
      userFeatureRows: dataset.userFeatures,
    };
  }

  get denseParams() {
    return this.layers.flatMap((l) => l.params);
  }

  get sparseParams() {
    return [...this.bags.map((b) => b.bag.table), this.wide.table];
  }

  /** Logits [batch × 2] of one batch of inputs (raw dense features). The buffer is reused by the next call. */
  forward(inputs: NetworkInputs): Float32Array {
    const { batch } = inputs;
    const parts: Float32Array[] = [];
    const widths: number[] = [];
    for (const { name, bag } of this.bags) {
      const input = inputs.bags[name];
      if (!input) throw new RangeError(`no input for bag '${name}'`);
      parts.push(bag.forward(input.ids, input.mask, batch, input.length));
      widths.push(bag.dim);
    }
    let x = this.concat(parts, widths, inputs.dense, batch);
    this.layers.forEach((layer, l) => {
      x = layer.forward(x, batch);
      const relu = this.relus[l];
      if (relu) x = relu.forward(x);
    });
    const wideInput = inputs.bags[RANKER_INPUTS.wide];
    if (!wideInput) throw new RangeError(`no input for the wide bag '${RANKER_INPUTS.wide}'`);
    const wide = this.wide.forward(wideInput.ids, wideInput.mask, batch, wideInput.length);
    for (let k = 0; k < x.length; k++) x[k] = (x[k] ?? 0) + (wide[k] ?? 0);
    const { feature, weight } = this.blend;
    if (weight !== 0 && inputs.dense) {
      for (let b = 0; b < batch; b++) x[b * OBJECTIVES.length] = (x[b * OBJECTIVES.length] ?? 0) + weight * (inputs.dense[b * DENSE_SIZE + feature] ?? 0);
    }
    return x;
  }

  /** Backpropagates dLoss/dlogits through the last `forward`, accumulating every gradient. */
  backward(dLogits: Float32Array): void {
    this.wide.backward(dLogits);
    let d = dLogits;
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const layer = this.layers[l];
      if (!layer) continue;
      d = layer.backward(d, true);
      const relu = this.relus[l - 1];
      if (relu) d = relu.backward(d);
    }
    const width = this.layers[0]?.inputs ?? 0;
    const batch = d.length / Math.max(width, 1);
    let offset = 0;
    this.bags.forEach(({ bag }, k) => {
      const dim = bag.dim;
      let g = this.bagGrads[k];
      if (!g || g.length !== batch * dim) this.bagGrads[k] = g = new Float32Array(batch * dim);
      for (let b = 0; b < batch; b++) {
        const src = b * width + offset;
        for (let j = 0; j < dim; j++) g[b * dim + j] = d[src + j] ?? 0;
      }
      bag.backward(g);
      offset += dim;
    });
  }

  /**
   * parts [batch × width_p] side by side, then the standardised dense features, in a buffer the
   * model owns (no per-row views: they cost a garbage-collected object each).
   */
  private concat(parts: readonly Float32Array[], widths: readonly number[], raw: Float32Array | undefined, batch: number): Float32Array {
    const total = widths.reduce((w, x) => w + x, DENSE_SIZE);
    if (this.joined.length !== batch * total) this.joined = new Float32Array(batch * total);
    const out = this.joined;
    let offset = 0;
    parts.forEach((part, p) => {
      const width = widths[p] ?? 0;
      for (let b = 0; b < batch; b++) {
        const dst = b * total + offset;
        const src = b * width;
        for (let j = 0; j < width; j++) out[dst + j] = part[src + j] ?? 0;
      }
      offset += width;
    });
    const { mean, std } = this;
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < DENSE_SIZE; j++) {
        out[b * total + offset + j] = ((raw?.[b * DENSE_SIZE + j] ?? 0) - (mean[j] ?? 0)) / (std[j] ?? 1);
      }
    }
    return out;
  }

  /** Sets the standardisation from the rows' dense features (training rows only). */
  fitStandardisation(rows: { dense: Float32Array }, indices: ArrayLike<number>): void {
    const sum = new Float64Array(DENSE_SIZE);
    const sq = new Float64Array(DENSE_SIZE);
    for (let k = 0; k < indices.length; k++) {
      const r = indices[k] ?? 0;
      for (let j = 0; j < DENSE_SIZE; j++) {
        const v = rows.dense[r * DENSE_SIZE + j] ?? 0;
        sum[j] = (sum[j] ?? 0) + v;
        sq[j] = (sq[j] ?? 0) + v * v;
      }
    }
    const n = Math.max(indices.length, 1);
    for (let j = 0; j < DENSE_SIZE; j++) {
      const mean = (sum[j] ?? 0) / n;
      const std = Math.sqrt(Math.max(0, (sq[j] ?? 0) / n - mean * mean));
      this.mean[j] = mean;
      this.std[j] = std > MIN_STD ? std : 1;
    }
  }

  /** The two logits [n × 2] (click, engagement) of rows `indices` (default: all rows). */
  logits(rows: ScoringRows, indices?: ArrayLike<number>, batchSize = WIDE_AND_DEEP_DEFAULTS.batchSize): Float32Array {
    const order = indices ?? Int32Array.from({ length: rows.length }, (_, k) => k);
    const out = new Float32Array(order.length * OBJECTIVES.length);
    for (let from = 0; from < order.length; from += batchSize) {
      const to = Math.min(order.length, from + batchSize);
      out.set(this.forward(this.inputs.build(rows, order, from, to)), from * OBJECTIVES.length);
    }
    return out;
  }

  /** Σ_o w_o · log σ(z_o) per row: the ranking score (see the header). */
  score(rows: ScoringRows, indices?: ArrayLike<number>, weights: ObjectiveWeights = this.scoreWeights): Float32Array {
    return combineLogits(this.logits(rows, indices), weights);
  }

  /** Copies of every parameter's values, to restore the best epoch. */
  snapshot(): Float32Array[] {
    return [...this.denseParams.map((p) => p.value.slice()), ...this.sparseParams.map((p) => p.value.slice())];
  }

  restore(values: readonly Float32Array[]): void {
    const targets = [...this.denseParams.map((p) => p.value), ...this.sparseParams.map((p) => p.value)];
    targets.forEach((t, k) => {
      const v = values[k];
      if (v) t.set(v);
    });
  }

  /**
   * The serving network. Inputs are the raw dense features: the standardisation is folded into the
   * first layer (rows of W for dense input j scaled by 1/std_j, and b −= Σ_j mean_j/std_j · W_j),
   * so ranker.onnx needs no preprocessing beyond `candidateRows`. Output: the two logits
   * (click, engagement), combined by `combineLogits` on the caller's side; the blend is folded in
   * as an exact linear path through the hidden layers (`withLinearSkip`).
   */
  toSpec(): NetworkSpec {
    const layers = this.layers.map((layer, l) => layer.toSpec(l < this.relus.length ? 'relu' : 'none'));
    const first = layers[0];
    const offset = this.bags.reduce((w, b) => w + b.bag.dim, 0);
    if (first) {
      for (let j = 0; j < DENSE_SIZE; j++) {
        const mean = this.mean[j] ?? 0;
        const std = this.std[j] ?? 1;
        const row = (offset + j) * first.outputs;
        for (let o = 0; o < first.outputs; o++) {
          const w = (first.weight[row + o] ?? 0) / std;
          first.weight[row + o] = w;
          first.bias[o] = (first.bias[o] ?? 0) - mean * w;
        }
      }
    }
    return {
      bags: this.bags.map(({ name, bag }) => bag.toSpec(name)),
      dense: { name: RANKER_INPUTS.dense, size: DENSE_SIZE },
      layers: withLinearSkip(layers, offset + this.blend.feature, 0, this.blend.weight),
      wide: this.wide.toSpec(RANKER_INPUTS.wide),
      output: 'none',
      outputName: RANKER_OUTPUT,
    };
  }
}

