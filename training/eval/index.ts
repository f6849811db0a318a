export { evaluate, fitAndEvaluate, topK } from './evaluate.ts';
export type { EvaluateOptions, EvaluationResult, Recommender, RecommenderFactory, RecommenderResult } from './evaluate.ts';
export { randomSplit, temporalSplit, RANDOM_TEST_FRACTION, TEMPORAL_TEST_FRACTION } from './protocols.ts';
export type { RandomSplitOptions, Split, TemporalSplitOptions } from './protocols.ts';
export { learningCurveSvg, markdownTable, meanRows, METRIC_COLUMNS, reportFromEvaluation, reportJson, reportMarkdown } from './report.ts';
export type { ChartOptions, CurvePoint, EvaluationReport, LearningCurve, ReportRow } from './report.ts';
export { writeReportFiles } from './report-files.ts';
export type { ReportFiles } from './report-files.ts';
export * from './baselines/index.ts';
