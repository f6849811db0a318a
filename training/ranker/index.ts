export { InputBuilder, RANKER_INPUTS, RANKER_OUTPUT, candidateRows } from './inputs.ts';
export type { RankerVocabulary, ScoringRows } from './inputs.ts';
export { OBJECTIVES, combineLogits, logSigmoid, rocAuc } from './objectives.ts';
export type { Objective, ObjectiveWeights } from './objectives.ts';
export { trainWideAndDeep } from './train.ts';
export type { EpochReport, TrainReport } from './train.ts';
export { WIDE_AND_DEEP_DEFAULTS, WideAndDeep } from './wide-deep.ts';
export type { WideAndDeepOptions } from './wide-deep.ts';
