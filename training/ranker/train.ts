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
  const validRows = Math.floor(rows.length * o.validationShare);
  const trainRows = rows.length - validRows;
  if (trainRows < 1) throw new RangeError(`no training rows: ${rows.length} rows with validationShare ${o.validationShare}`);
  const train = Int32Array.from({ length: trainRows }, (_, k) => k);
  const valid = Int32Array.from({ length: validRows }, (_, k) => trainRows + k);
  model.fitStandardisation(rows, train);
  const adam = new Adam(model.denseParams, { learningRate: o.learningRate });
  const adagrad = new SparseAdagrad(model.sparseParams, { learningRate: o.sparseLearningRate });
  const rng = new Xoshiro128((o.seed ^ 0x5eed) >>> 0);
  const builder = new InputBuilder(model.vocabulary);
  const objectives = OBJECTIVES.length;
  const labels = new Float32Array(o.batchSize * objectives);
  const weights = new Float32Array(o.batchSize * objectives);
  const grad = new Float32Array(o.batchSize * objectives);
  const { users, items } = model.vocabulary;
  const epochs: EpochReport[] = [];
  let best = { loss: Infinity, epoch: -1, values: model.snapshot() };
  for (let epoch = 0; epoch < o.maxEpochs; epoch++) {
    const epochStart = performance.now();
    shuffleInPlace(train, rng);
    let lossSum = 0;
    for (let from = 0; from < trainRows; from += o.batchSize) {
      const to = Math.min(trainRows, from + o.batchSize);
      const batch = to - from;
      const inputs = builder.build(rows, train, from, to);
      if (o.idDropout > 0) dropIds(inputs, batch, users, items, o.idDropout, rng);
      for (let b = 0; b < batch; b++) {
        const r = train[from + b] ?? 0;
        labels[b * 2] = rows.click[r] ?? 0;
        labels[b * 2 + 1] = rows.engagement[r] ?? 0;
        weights[b * 2] = o.lossWeights.click;
        weights[b * 2 + 1] = o.lossWeights.engagement;
      }
      const n = batch * objectives;
      const logits = model.forward(inputs);
      const g = grad.subarray(0, n);
      lossSum += objectives * batch * sigmoidCrossEntropy({ logits, labels: labels.subarray(0, n), weights: weights.subarray(0, n) }, g);
      adam.zeroGrad();
      adagrad.zeroGrad();
      model.backward(g);
      adam.step();
      adagrad.step();
    }
    const evaluation = validRows > 0 ? evaluate(model, rows, valid, o.lossWeights) : { loss: lossSum / trainRows, clickAuc: Number.NaN };
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
function evaluate(model: WideAndDeep, rows: RankerRows, indices: Int32Array, lossWeights: ObjectiveWeights) {
  const logits = model.logits(rows, indices);
  let loss = 0;
  const clickScores = new Float32Array(indices.length);
  const clickLabels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const r = indices[k] ?? 0;
    const zc = logits[2 * k] ?? 0;
    const ze = logits[2 * k + 1] ?? 0;
    const yc = rows.click[r] ?? 0;
    const ye = rows.engagement[r] ?? 0;
    loss -= lossWeights.click * (yc ? logSigmoid(zc) : logSigmoid(-zc));
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
