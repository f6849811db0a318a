export { CROSS_ITEM_POSITION, CROSS_USER_CATEGORY, CROSS_USER_FEATURE_CATEGORY, crossHash, positionBucket } from './crosses.ts';
export {
  DAY_MS, DEFAULT_RECENT_HALF_LIFE_MS, DEFAULT_WIDE_BUCKETS, DENSE_FEATURES, DENSE_INDEX, DENSE_SIZE, FeatureState,
} from './feature-state.ts';
export type { DenseFeatureName, ExternalScore, FeatureOptions } from './feature-state.ts';
export { WideBuilder, freezeFeatures, pointInTimeFeatures } from './point-in-time.ts';
export type { FeatureRows, FrozenFeatures } from './point-in-time.ts';
export {
  DEFAULT_ATTRIBUTION_WINDOW_MS, ENGAGED_RATING, ENGAGED_WEIGHT, ROW_EXPLICIT_NEGATIVE, ROW_IMPRESSION, ROW_POSITIVE,
  ROW_SAMPLED, buildRankerRows, isEngaged,
} from './ranker-rows.ts';
export type { Engagement, RankerRowOptions, RankerRows } from './ranker-rows.ts';
