// The ranker's click logit blended with a retrieval score: z_click + β · s, where s is a raw dense
// feature (the co-visitation source's z-score: EASE by default), a linear blend of two models'
// scores as in the Netflix Prize ensembles. The ranker sees s as a feature, but it is fitted to
// stacked lists (retrieval fitted on 80% of the rows); a blend keeps more of what the strongest
// source, refitted on all rows for serving, ranks right. β is chosen by the pipeline on the
// ranker's own validation lists (never on evaluation data), from a fixed grid that includes 0, so
// a blend that does not help there is not used.

import { rankingMetrics } from '../../core/domain/metrics.ts';
import type { RankerRows } from '../features/ranker-rows.ts';
import type { DenseLayerSpec } from '../models/spec.ts';
import { combineLogits, OBJECTIVES } from './objectives.ts';
import type { ObjectiveWeights } from './objectives.ts';

/** Candidate weights β, on the scale of the raw z-scored retrieval score against the click logit. */
export const BLEND_GRID = [0, 0.125, 0.25, 0.5, 1, 2, 4] as const;

export interface BlendChoice {
  /** The chosen β. */
  weight: number;
  /** Mean NDCG@k over the validation lists, per β of the grid. */
  validNdcg: Record<string, number>;
  lists: number;
}

/**
 * The β of `grid` with the best mean NDCG@k over the lists (rows sharing a `group` ≥ 0) among
 * `rows[from, to)`; ties go to the smaller β. `logits` are the ranker's [n × 2] logits of those
 * rows, without any blend; `feature` is the index of the blended dense feature.
 */
export function chooseBlendWeight(
  rows: Pick<RankerRows, 'click' | 'group' | 'dense'>, from: number, to: number, logits: Float32Array, feature: number, denseSize: number,
  scoreWeights: ObjectiveWeights, k: number, grid: readonly number[] = BLEND_GRID,
): BlendChoice {
  const group = rows.group;
  const sums = grid.map(() => 0);
  let lists = 0;
  const blended = new Float32Array(logits.length);
  let start = from;
  while (start < to) {
    const g = group?.[start] ?? -1;
    let end = start + 1;
    if (g >= 0) while (end < to && group?.[end] === g) end++;
    const relevant = new Set<number>();
    for (let r = start; r < end; r++) if ((rows.click[r] ?? 0) > 0) relevant.add(r);
    if (g >= 0 && relevant.size > 0) {
      lists++;
      grid.forEach((beta, b) => {
        const n = end - start;
        const part = blended.subarray(0, n * OBJECTIVES.length);
        for (let j = 0; j < n; j++) {
          const r = start + j;
          const at = (r - from) * OBJECTIVES.length;
          part[2 * j] = (logits[at] ?? 0) + beta * (rows.dense[r * denseSize + feature] ?? 0);
          part[2 * j + 1] = logits[at + 1] ?? 0;
        }
        const scores = combineLogits(part, scoreWeights);
        const ranked = Array.from({ length: n }, (_, j) => start + j).sort((a, c) => (scores[c - start] ?? 0) - (scores[a - start] ?? 0) || a - c);
        sums[b] = (sums[b] ?? 0) + rankingMetrics(ranked, relevant, k).ndcg;
      });
    }
    start = end;
  }
  const validNdcg: Record<string, number> = {};
  let best = 0;
  grid.forEach((beta, b) => {
    validNdcg[String(beta)] = lists > 0 ? (sums[b] ?? 0) / lists : Number.NaN;
    if ((sums[b] ?? 0) > (sums[best] ?? 0)) best = b;
  });
  return { weight: lists > 0 ? (grid[best] ?? 0) : 0, validNdcg, lists };
}

/**
 * Dense layers (ReLU between them, none after the last) that compute the given ones plus
 * `weight · x[input]` on output `output`, exactly: the first layer gains two units relu(x) and
 * relu(−x), every later hidden layer two units that carry them on (non-negative, so ReLU leaves
 * them alone), and the last layer adds weight · (relu(x) − relu(−x)) = weight · x. So the blend
 * lives in ranker.onnx and every runtime that serves it (ONNX, WASM, WGSL) scores the same.
 */
export function withLinearSkip(layers: readonly DenseLayerSpec[], input: number, output: number, weight: number): DenseLayerSpec[] {
  if (weight === 0 || layers.length === 0) return [...layers];
  const last = layers.length - 1;
  return layers.map((layer, l) => {
    const carriedIn = l > 0 ? 2 : 0;
    const carriedOut = l < last ? 2 : 0;
    const inputs = layer.inputs + carriedIn;
    const outputs = layer.outputs + carriedOut;
    const w = new Float32Array(inputs * outputs);
    for (let i = 0; i < layer.inputs; i++) w.set(layer.weight.subarray(i * layer.outputs, (i + 1) * layer.outputs), i * outputs);
    const bias = new Float32Array(outputs);
    bias.set(layer.bias);
    if (layers.length === 1) {
      w[input * outputs + output] = (w[input * outputs + output] ?? 0) + weight;
    } else if (l === 0) {
      w[input * outputs + layer.outputs] = 1;
      w[input * outputs + layer.outputs + 1] = -1;
    } else if (l < last) {
      w[layer.inputs * outputs + layer.outputs] = 1;
      w[(layer.inputs + 1) * outputs + layer.outputs + 1] = 1;
    } else {
      w[layer.inputs * outputs + output] = weight;
      w[(layer.inputs + 1) * outputs + output] = -weight;
    }
    return { inputs, outputs, weight: w, bias, activation: layer.activation };
  });
}
