// Training of the Wide&Deep ranker: joint training of the wide and deep parts (Cheng 2016) on the
// point-in-time rows of training/features/ranker-rows.ts, with early stopping on the latest rows.

import { shuffleInPlace, Xoshiro128 } from '../../core/domain/random.ts';
import type { Dataset } from '../data/dataset.ts';
import type { RankerRows } from '../features/ranker-rows.ts';
import type { NetworkInputs } from '../models/spec.ts';
import { Adam, SparseAdagrad, sigmoidCrossEntropy } from '../nn/index.ts';
import { InputBuilder, RANKER_INPUTS } from './inputs.ts';
import { OBJECTIVES, logSigmoid, rocAuc } from './objectives.ts';
import type { ObjectiveWeights } from './objectives.ts';
import { WideAndDeep, resolveOptions } from './wide-deep.ts';
import type { WideAndDeepOptions } from './wide-deep.ts';

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  validLoss: number;
  /** ROC AUC of the click logit on the validation rows. */
  validClickAuc: number;
  ms: number;
}

export interface TrainReport {
  epochs: EpochReport[];
  bestEpoch: number;
  trainRows: number;
  validRows: number;
  ms: number;
}

/**
 * Trains on `rows` (in time order, e.g. from `buildRankerRows` with the same `wideBuckets`): the
 * last `validationShare` of them is the early-stopping slice; the best epoch's weights are kept.
 */
export function trainWideAndDeep(
  dataset: Dataset, rows: RankerRows, wideBuckets: number, options: WideAndDeepOptions = {},
): { model: WideAndDeep; report: TrainReport } {
  const o = resolveOptions(options);
  const started = performance.now();
  const model = new WideAndDeep(WideAndDeep.vocabularyOf(dataset), wideBuckets, options);
  let widest = -1;
  for (let k = 0; k < (rows.wideOffsets[rows.length] ?? 0); k++) widest = Math.max(widest, rows.wideIds[k] ?? 0);
  if (widest >= wideBuckets) {
    throw new RangeError(`the rows hold wide id ${widest}, but the model has ${wideBuckets} wide buckets: build the rows with the same wideBuckets`);
  }
  const held = o.validationRows ?? Math.floor(rows.length * o.validationShare);
  if (!Number.isInteger(held) || held < 0 || held > rows.length) throw new RangeError(`validationRows must be an integer from 0 to the ${rows.length} rows, got ${held}`);
  const rowWeights = o.rowWeights;
  if (rowWeights !== undefined && rowWeights.length !== rows.length) throw new RangeError(`rowWeights has ${rowWeights.length} weights for ${rows.length} rows`);
  let trainRows = rows.length - held;
  // Never cut a list in two: the validation slice starts where a list starts.
  while (o.listwise && rows.group && trainRows > 0 && trainRows < rows.length && (rows.group[trainRows] ?? -1) >= 0 && rows.group[trainRows] === rows.group[trainRows - 1]) trainRows++;
  const validRows = rows.length - trainRows;
  if (trainRows < 1) throw new RangeError(`no training rows: ${rows.length} rows with validationShare ${o.validationShare}`);
  const train = Int32Array.from({ length: trainRows }, (_, k) => k);
  const valid = Int32Array.from({ length: validRows }, (_, k) => trainRows + k);
  model.fitStandardisation(rows, train);
  const adam = new Adam(model.denseParams, { learningRate: o.learningRate });
  const adagrad = new SparseAdagrad(model.sparseParams, { learningRate: o.sparseLearningRate });
  const rng = new Xoshiro128((o.seed ^ 0x5eed) >>> 0);
  const builder = new InputBuilder(model.vocabulary);
  const objectives = OBJECTIVES.length;
  // A listwise batch holds whole lists, so it may exceed batchSize: the buffers grow to fit.
  const buffers = { labels: new Float32Array(0), weights: new Float32Array(0), grad: new Float32Array(0) };
  const ensure = (size: number) => {
    if (buffers.labels.length >= size) return;
    buffers.labels = new Float32Array(size);
    buffers.weights = new Float32Array(size);
    buffers.grad = new Float32Array(size);
  };
  const group = rows.group ?? new Int32Array(rows.length).fill(-1);
  const listwise = o.listwise && rows.group !== undefined;
  const { users, items } = model.vocabulary;
  const epochs: EpochReport[] = [];
  let best = { loss: Infinity, epoch: -1, values: model.snapshot() };
  for (let epoch = 0; epoch < o.maxEpochs; epoch++) {
    const epochStart = performance.now();
    const order = listwise ? listBatches(train, group, rng) : (shuffleInPlace(train, rng), train);
    let lossSum = 0;
    const starts = listwise ? batchStarts(order, group, o.batchSize) : rangeStarts(trainRows, o.batchSize);
    for (let s = 0; s + 1 < starts.length; s++) {
      const from = starts[s] ?? 0;
      const to = starts[s + 1] ?? 0;
      const batch = to - from;
      ensure(batch * objectives);
      const labels = buffers.labels;
      const weights = buffers.weights;
      const grad = buffers.grad;
      const inputs = builder.build(rows, order, from, to);
      if (o.idDropout > 0) dropIds(inputs, batch, users, items, o.idDropout, rng);
      for (let b = 0; b < batch; b++) {
        const r = order[from + b] ?? 0;
        const w = rowWeights?.[r] ?? 1;
        labels[b * 2] = rows.click[r] ?? 0;
        labels[b * 2 + 1] = rows.engagement[r] ?? 0;
        // A listed row's click logit is trained by the listwise loss below instead.
        weights[b * 2] = listwise && (group[r] ?? -1) >= 0 ? 0 : o.lossWeights.click * w;
        weights[b * 2 + 1] = o.lossWeights.engagement * w;
      }
      const n = batch * objectives;
      const logits = model.forward(inputs);
      const g = grad.subarray(0, n);
      lossSum += objectives * batch * sigmoidCrossEntropy({ logits, labels: labels.subarray(0, n), weights: weights.subarray(0, n) }, g);
      if (listwise) lossSum += listwiseClick(logits, rows.click, order, group, from, to, o.lossWeights.click, g) * batch;
      adam.zeroGrad();
      adagrad.zeroGrad();
      model.backward(g);
      adam.step();
      adagrad.step();
    }
    const evaluation = validRows > 0 ? evaluate(model, rows, valid, o.lossWeights, listwise ? group : undefined) : { loss: lossSum / trainRows, clickAuc: Number.NaN };
    const report: EpochReport = {
      epoch, trainLoss: lossSum / trainRows, validLoss: evaluation.loss, validClickAuc: evaluation.clickAuc,
      ms: performance.now() - epochStart,
    };
    epochs.push(report);
    o.onEpoch?.(report);
    if (report.validLoss < best.loss) best = { loss: report.validLoss, epoch, values: model.snapshot() };
    else if (epoch - best.epoch > o.patience - 1) break;
  }
  model.restore(best.values);
  return { model, report: { epochs, bestEpoch: best.epoch, trainRows, validRows, ms: performance.now() - started } };
}

/** Mean weighted log-loss (per row, summed over objectives) and click AUC on the given rows. */
function evaluate(model: WideAndDeep, rows: RankerRows, indices: Int32Array, lossWeights: ObjectiveWeights, group?: Int32Array) {
  const logits = model.logits(rows, indices);
  let loss = 0;
  if (group) {
    // Listed rows: their click loss is the listwise one; the rest stay pointwise below.
    const scratch = new Float32Array(logits.length);
    loss += listwiseClick(logits, rows.click, indices, group, 0, indices.length, lossWeights.click, scratch) * indices.length;
  }
  const clickScores = new Float32Array(indices.length);
  const clickLabels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const r = indices[k] ?? 0;
    const zc = logits[2 * k] ?? 0;
    const ze = logits[2 * k + 1] ?? 0;
    const yc = rows.click[r] ?? 0;
    const ye = rows.engagement[r] ?? 0;
    if (!group || (group[r] ?? -1) < 0) loss -= lossWeights.click * (yc ? logSigmoid(zc) : logSigmoid(-zc));
    loss -= lossWeights.engagement * (ye ? logSigmoid(ze) : logSigmoid(-ze));
    clickScores[k] = zc;
    clickLabels[k] = yc;
  }
  return { loss: loss / Math.max(indices.length, 1), clickAuc: rocAuc(clickScores, clickLabels) };
}


/** Replaces a share of user and item ids by their out-of-vocabulary rows (cold-start training). */
function dropIds(inputs: NetworkInputs, batch: number, users: number, items: number, share: number, rng: Xoshiro128): void {
  const user = inputs.bags[RANKER_INPUTS.user];
  const item = inputs.bags[RANKER_INPUTS.item];
  for (let b = 0; b < batch; b++) {
    if (user && rng.next() < share) user.ids[b] = users;
    if (item && rng.next() < share) item.ids[b] = items;
  }
}

/** Batch boundaries 0, size, 2·size, …, n. */
function rangeStarts(n: number, size: number): number[] {
  const out: number[] = [];
  for (let from = 0; from < n; from += size) out.push(from);
  out.push(n);
  return out;
}

/**
 * The training rows in a shuffled order that keeps each list (rows of one group, contiguous in
 * `rows`) together; rows of no list (group −1) are single units. Lists in random order.
 */
function listBatches(train: Int32Array, group: Int32Array, rng: Xoshiro128): Int32Array {
  const units: [number, number][] = [];
  let k = 0;
  while (k < train.length) {
    const g = group[train[k] ?? 0] ?? -1;
    let end = k + 1;
    if (g >= 0) while (end < train.length && group[train[end] ?? 0] === g) end++;
    units.push([k, end]);
    k = end;
  }
  const order = Int32Array.from(units.keys());
  shuffleInPlace(order, rng);
  const out = new Int32Array(train.length);
  let at = 0;
  for (const u of order) {
    const [a, b] = units[u] ?? [0, 0];
    out.set(train.subarray(a, b), at);
    at += b - a;
  }
  return out;
}

/** Batch boundaries of about `size` rows that never split a list. */
function batchStarts(order: Int32Array, group: Int32Array, size: number): number[] {
  const out = [0];
  let from = 0;
  while (from < order.length) {
    let to = Math.min(order.length, from + size);
    const g = group[order[to - 1] ?? 0] ?? -1;
    if (g >= 0) while (to < order.length && group[order[to] ?? 0] === g) to++;
    out.push(to);
    from = to;
  }
  return out;
}

/**
 * Listwise softmax cross-entropy of the click logits within each list (ListNet's top-one
 * probability, Cao et al. 2007): loss = −Σ_pos log softmax(z)_pos / n_pos per list, averaged over
 * the batch's rows like the pointwise loss; lists without a positive contribute nothing. Adds
 * the gradient into `grad[2·k]` and returns the mean loss per row of [from, to).
 */
export function listwiseClick(
  logits: Float32Array, click: Uint8Array, order: Int32Array, group: Int32Array,
  from: number, to: number, weight: number, grad: Float32Array,
): number {
  const n = to - from;
  let total = 0;
  let k = 0;
  while (k < n) {
    const g = group[order[from + k] ?? 0] ?? -1;
    if (g < 0) {
      k++;
      continue;
    }
    let end = k + 1;
    while (end < n && group[order[from + end] ?? 0] === g) end++;
    let max = -Infinity;
    let positives = 0;
    for (let j = k; j < end; j++) {
      max = Math.max(max, logits[2 * j] ?? 0);
      positives += click[order[from + j] ?? 0] ?? 0;
    }
    if (positives > 0) {
      let sum = 0;
      for (let j = k; j < end; j++) sum += Math.exp((logits[2 * j] ?? 0) - max);
      const lse = max + Math.log(sum);
      for (let j = k; j < end; j++) {
        const y = (click[order[from + j] ?? 0] ?? 0) / positives;
        const z = logits[2 * j] ?? 0;
        total -= weight * y * (z - lse);
        grad[2 * j] = (grad[2 * j] ?? 0) + (weight * (Math.exp(z - lse) - y)) / n;
      }
    }
    k = end;
  }
  return total / Math.max(n, 1);
}
