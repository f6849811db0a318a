export { mostPopular, fitMostPopular } from './popular.ts';
export { itemKnn, fitItemKnn, cosineWeights } from './item-knn.ts';
export type { ItemKnnOptions } from './item-knn.ts';
export { ease, fitEase, easeWeights, EASE_LAMBDA, DENSE_MAX_ITEMS } from './ease.ts';
export type { EaseOptions } from './ease.ts';
export { invertSpd, choleskyInPlace } from './cholesky.ts';
export { distinctUserItems, gramMatrix, itemPopularity, popularSubset } from './cooccurrence.ts';
export type { ItemSubset } from './cooccurrence.ts';
