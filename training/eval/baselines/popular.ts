// Most-popular: every user gets the items with the most training users (seen ones excluded by
// the evaluator). The floor any personalised model must clear.

import type { Dataset } from '../../data/dataset.ts';
import type { Recommender, RecommenderFactory } from '../evaluate.ts';
import { distinctUserItems, itemPopularity } from './cooccurrence.ts';

export function fitMostPopular(dataset: Dataset, trainRows: Int32Array): Recommender {
  const counts = Float32Array.from(itemPopularity(distinctUserItems(dataset, trainRows), dataset.itemIds.length));
  return { name: 'most-popular', scoreUser: (_user, _history, out) => out.set(counts) };
}

export function mostPopular(): RecommenderFactory {
  return async (dataset, trainRows) => fitMostPopular(dataset, trainRows);
}
