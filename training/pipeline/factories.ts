// The two-stage model as evaluator factories: one training per split serves two rows of a report,
// the full pipeline and its two-tower alone (whose fit time is counted in the pipeline's row).

import type { RecommenderFactory } from '../eval/evaluate.ts';
import { trainTwoStage } from './two-stage.ts';
import type { TwoStageModel, TwoStageOptions } from './two-stage.ts';

export function twoStageFactories(options: Omit<TwoStageOptions, 'seed'>, onTrained?: (model: TwoStageModel) => void): RecommenderFactory[] {
  let last: { rows: Int32Array; seed: number; model: TwoStageModel } | undefined;
  const fit = (dataset: Parameters<RecommenderFactory>[0], rows: Int32Array, seed: number): TwoStageModel => {
    if (last && last.rows === rows && last.seed === seed) return last.model;
    const model = trainTwoStage(dataset, rows, { ...options, seed });
    last = { rows, seed, model };
    onTrained?.(model);
    return model;
  };
  return [
    async (dataset, rows, seed) => fit(dataset, rows, seed).pipeline,
    async (dataset, rows, seed) => fit(dataset, rows, seed).retrieval,
  ];
}
