// `kestrel train` end to end: load the data, hold out each user's latest interactions for
// validation, train both stages, measure them and the baselines on the held-out interactions,
// write the model directory with its report, stage it in the registry and promote it only if it
// beats the current model on validation NDCG@10. With `served`, the ranker also trains on the
// served-features log joined with the events that came back (training/ranker/served-rows.ts),
// up to each user's validation period; the validation protocol is the same either way.

import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { openRegistry, writeModelDir } from '../../core/models/index.ts';
import type { PromotionDecision } from '../../core/models/index.ts';
import type { Dataset } from '../data/dataset.ts';
import { loadSource } from '../data/training-source.ts';
import type { LoadReport } from '../data/load.ts';
import { fitMostPopular } from '../eval/baselines/popular.ts';
import { evaluate } from '../eval/evaluate.ts';
import { temporalSplit } from '../eval/protocols.ts';
import { learningCurveSvg, reportFromEvaluation, reportJson, reportMarkdown } from '../eval/report.ts';
import type { EvaluationReport, LearningCurve } from '../eval/report.ts';
import { SILENT } from '../progress.ts';
import type { TrainingObserver } from '../progress.ts';
import { loadServedRows } from '../ranker/served-rows.ts';
import type { ServedRows, ServedRowsReport } from '../ranker/served-rows.ts';
import { twoStageContents } from './model-dir.ts';
import type { TrainingSource } from './model-dir.ts';
import { trainTwoStage } from './two-stage.ts';
import type { TwoStageModel, TwoStageOptions } from './two-stage.ts';

export const VALIDATION_METRIC = 'ndcg@10';
const K = 10;
const VALIDATION_FRACTION = 0.1;
const WIDE_BUCKETS = 1 << 18;

export interface TrainRunOptions {
  /** Registry root (versions/, current.json). */
  out: string;
  seed?: number;
  epochs?: number;
  candidates?: number;
  /** Stage without trying to promote. */
  noPromote?: boolean;
  /**
   * Also train the ranker on this data folder's served-features log, joined with its events
   * (`kestrel served-join`), each row with loss weight `weight` (default 1).
   */
  served?: { dataDir: string; weight?: number; windowMs?: number };
  observer?: TrainingObserver;
  log?: (line: string) => void;
}

export interface TrainRunResult {
  load: LoadReport;
  version: string;
  decision?: PromotionDecision;
  report: EvaluationReport;
  /** What the served-features log gave the ranker, when `served` was asked for. */
  served?: ServedRowsReport;
  seconds: { load: number; train: number; total: number };
}

export function validationProtocol(candidates: number): string {
  return `temporal holdout: each user's latest ${VALIDATION_FRACTION * 100}% of positives; top ${K} over all items, seen excluded; two-stage with ${candidates} candidates per source`;
}

export async function trainAndRegister(source: TrainingSource, options: TrainRunOptions): Promise<TrainRunResult> {
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  const { dataset, report: load } = await loadSource(source);
  const tLoad = performance.now();
  const split = temporalSplit(dataset, { testFraction: VALIDATION_FRACTION });
  // Everything before each user's validation period trains, impressions and negatives included.
  const validationFrom = validationStarts(dataset, split.test);
  const trainRows = rowsBefore(dataset, validationFrom);
  if (split.train.length === 0) throw new Error('no positive interactions to train on: check the event types and their weights');
  log(`training on ${split.train.length.toLocaleString('en-US')} positives of ${dataset.userIds.length.toLocaleString('en-US')} users and ${dataset.itemIds.length.toLocaleString('en-US')} items; validating on ${split.test.length.toLocaleString('en-US')}`);
  let served: ServedRows | undefined;
  if (options.served) {
    served = await loadServedRows(dataset, {
      dataDir: options.served.dataDir, windowMs: options.served.windowMs, eventTypes: source.eventTypes,
      wideBuckets: WIDE_BUCKETS, heldOutFrom: validationFrom,
    });
    log(`served-features log: ${served.report.used.toLocaleString('en-US')} of ${served.report.read.toLocaleString('en-US')} served rows train the ranker`);
  }
  const trainOptions: TwoStageOptions = {
    seed: options.seed ?? 1,
    backend: await createWasmMatmul(),
    holdout: 'temporal',
    wideBuckets: WIDE_BUCKETS,
    observer: options.observer ?? SILENT,
    ...(options.candidates ? { candidates: options.candidates } : {}),
    ...(options.epochs ? { twoTower: { epochs: options.epochs } } : {}),
    ...(served ? { served: { ...served, ...(options.served?.weight === undefined ? {} : { weight: options.served.weight }) } } : {}),
  };
  const model = trainTwoStage(dataset, trainRows, trainOptions);
  const tTrain = performance.now();
  const report = validationReport(dataset, split, model, served?.report);
  const pipelineRow = report.rows.find((r) => r.name === model.pipeline.name);
  const metrics: Record<string, number> = {};
  for (const r of report.rows) {
    const prefix = r.name === model.pipeline.name ? '' : `${r.name}:`;
    metrics[`${prefix}ndcg@${K}`] = r.metrics.ndcg;
    metrics[`${prefix}recall@${K}`] = r.metrics.recall;
    metrics[`${prefix}precision@${K}`] = r.metrics.precision;
  }
  if (!pipelineRow) throw new Error('the pipeline was not evaluated');

  const registry = await openRegistry(options.out);
  const staging = await mkdtemp(join(options.out, '.staging-'));
  let version: string;
  try {
    const contents = twoStageContents(model, dataset, {
      metrics, protocol: validationProtocol(model.candidates), source, wideBuckets: WIDE_BUCKETS,
    });
    const encoder = new TextEncoder();
    contents.extraFiles = {
      ...contents.extraFiles,
      'report.json': encoder.encode(reportJson(report)),
      'report.md': encoder.encode(reportMarkdown(report)),
      'learning-curves.svg': encoder.encode(learningCurveSvg(report.curves ?? [], { title: 'two-tower training', xLabel: 'epoch' })),
    };
    await writeModelDir(staging, contents);
    version = await registry.stage(staging);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const decision = options.noPromote ? undefined : await registry.promote(version, { metric: VALIDATION_METRIC, higherIsBetter: true });
  const tEnd = performance.now();
  return {
    load, version, report,
    ...(decision ? { decision } : {}),
    ...(served ? { served: served.report } : {}),
    seconds: { load: (tLoad - t0) / 1000, train: (tTrain - tLoad) / 1000, total: (tEnd - t0) / 1000 },
  };
}

/** Per user: the time of their first held-out row (Infinity for users with none held out). */
function validationStarts(dataset: Dataset, heldOut: Int32Array): Float64Array {
  const { user, timestamp } = dataset.interactions;
  const from = new Float64Array(dataset.userIds.length).fill(Infinity);
  for (const r of heldOut) {
    const u = user[r] ?? 0;
    from[u] = Math.min(from[u] ?? Infinity, timestamp[r] ?? Infinity);
  }
  return from;
}

/** Every row of each user strictly before their validation period. */
function rowsBefore(dataset: Dataset, from: Float64Array): Int32Array {
  const { user, timestamp, length } = dataset.interactions;
  const out: number[] = [];
  for (let r = 0; r < length; r++) if ((timestamp[r] ?? 0) < (from[user[r] ?? 0] ?? Infinity)) out.push(r);
  return Int32Array.from(out);
}

/** The pipeline, the two-tower alone and most-popular on the validation rows, with the learning curves. */
function validationReport(dataset: Dataset, split: { train: Int32Array; test: Int32Array }, model: TwoStageModel, served?: ServedRowsReport): EvaluationReport {
  const result = evaluate(dataset, split, [model.pipeline, model.retrieval, fitMostPopular(dataset, split.train)], { k: K });
  const curve = model.report.twoTower.curve;
  const curves: LearningCurve[] = [
    { name: 'training loss', points: curve.map((e) => ({ epoch: e.epoch, value: e.loss })), axis: 'left' },
    { name: `label-fold NDCG@${K}`, points: curve.filter((e) => e.validation !== undefined).map((e) => ({ epoch: e.epoch, value: e.validation ?? 0 })), axis: 'right' },
  ];
  return reportFromEvaluation(result, {
    protocol: validationProtocol(model.candidates),
    curves,
    notes: {
      'two-tower best epoch': model.report.twoTower.bestEpoch,
      'two-tower examples/s': Math.round(model.report.twoTower.examplesPerSecond),
      'ranker rows': model.report.rankerRows,
      ...(served ? servedNotes(served) : {}),
      'training seconds': Math.round(model.report.seconds * 10) / 10,
    },
  });
}

/** The report's notes on the served rows: how many trained the ranker, and why the others did not. */
function servedNotes(served: ServedRowsReport): Record<string, number> {
  const { skipped } = served;
  return {
    'served rows read': served.read,
    'served rows used': served.used,
    'served rows used, clicked': served.clicked,
    'served rows skipped, other dense features': skipped.featureNames,
    'served rows skipped, no ranker features': skipped.unranked,
    'served rows skipped, non-finite values': skipped.badValues,
    'served rows skipped, item not in the data': skipped.unknownItem,
    'served rows skipped, validation period': skipped.heldOut,
  };
}
