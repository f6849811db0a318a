// The full two-stage model: retrieval (two-tower ANN + item-item co-visitation) narrows the
// catalog to a few hundred candidates per user, and the Wide&Deep ranker orders them.
//
// The ranker must learn from candidates the way it will see them in serving, with retrieval
// scores that were not fitted on the labels it predicts. So the training rows are stacked
// (Wolpert 1992): each user's training positives are cut into a fit fold (80%) and a label fold
// (20%); the retrieval models fit on the fit fold; for every user with label-fold items the
// retrieved candidates become ranker rows, labelled 1 when they are in the label fold, with
// features as of the end of the fit fold. In serving, the user's whole history feeds the same
// models and features.

import { shuffleInPlace, Xoshiro128 } from '../../core/domain/random.ts';
import { row, withRows } from '../data/dataset.ts';
import type { Dataset } from '../data/dataset.ts';
import { distinctUserItems, itemItemRecommender } from '../eval/baselines/cooccurrence.ts';
import type { ItemItemModel } from '../eval/baselines/cooccurrence.ts';
import { fitItemKnn } from '../eval/baselines/item-knn.ts';
import { fitEase } from '../eval/baselines/ease.ts';
import { topK } from '../eval/evaluate.ts';
import type { Recommender } from '../eval/evaluate.ts';
import { randomSplit, temporalSplit } from '../eval/protocols.ts';
import { DENSE_SIZE } from '../features/feature-state.ts';
import { freezeFeatures } from '../features/point-in-time.ts';
import type { FrozenFeatures } from '../features/point-in-time.ts';
import type { MatmulBackend } from '../nn/index.ts';
import { SILENT } from '../progress.ts';
import type { TrainingObserver } from '../progress.ts';
import { chooseBlendWeight } from '../ranker/blend.ts';
import type { BlendChoice } from '../ranker/blend.ts';
import { candidateRows } from '../ranker/inputs.ts';
import type { ServedRows } from '../ranker/served-rows.ts';
import { trainWideAndDeep } from '../ranker/train.ts';
import type { TrainReport } from '../ranker/train.ts';
import { WIDE_AND_DEEP_DEFAULTS } from '../ranker/wide-deep.ts';
import type { WideAndDeep, WideAndDeepOptions } from '../ranker/wide-deep.ts';
import type { TwoTower, TwoTowerConfig } from '../two-tower/model.ts';
import { trainTwoTower } from '../two-tower/train.ts';
import type { TwoTowerResult } from '../two-tower/train.ts';
import { concatRows, engagedItems, impressionRows } from './ranker-parts.ts';
import type { RankerPart } from './ranker-parts.ts';

export interface TwoStageOptions {
  seed: number;
  backend: MatmulBackend;
  /** How the label fold is cut from each user's training rows: a random share, or the latest. */
  holdout?: 'random' | 'temporal';
  /** Share of each user's training positives in the label fold. Default 0.2. */
  holdoutFraction?: number;
  /** Candidates each retrieval source contributes per user. Default 100. */
  candidates?: number;
  /** K of the two-tower's validation NDCG. Default 10. */
  k?: number;
  twoTower?: Partial<TwoTowerConfig>;
  ranker?: WideAndDeepOptions;
  wideBuckets?: number;
  /**
   * The item-item source beside the two-tower: EASE (Steck 2019; dense, for catalogs up to a few
   * thousand items, the most popular ones beyond that) or item-kNN cosine. Default EASE.
   */
  coVisitation?: 'ease' | 'item-knn';
  /**
   * Blend the ranker's click logit with the co-visitation score, weighted by what ranks the
   * ranker's validation lists best (training/ranker/blend.ts; 0 when the blend does not help
   * there). Default true.
   */
  blend?: boolean;
  /**
   * Rows of served impressions with the features as logged (training/ranker/served-rows.ts), built
   * with the same `wideBuckets`: they train the ranker beside the stacked rows, each with loss
   * weight `weight` (default 1, as a stacked row), and never fall in its early-stopping slice.
   */
  served?: Pick<ServedRows, 'rows' | 'click' | 'engagement'> & { weight?: number };
  observer?: TrainingObserver;
}

export interface TwoStageModel {
  twoTower: TwoTower;
  ranker: WideAndDeep;
  /** Stage one over every training row: what serving runs. */
  generator: CandidateGenerator;
  /** Candidates per retrieval source. */
  candidates: number;
  coVisitation: 'ease' | 'item-knn';
  /** Features frozen at the end of the training rows: what serving computes. */
  features: FrozenFeatures;
  /** The two-tower alone, and the full pipeline, as evaluator recommenders. */
  retrieval: Recommender;
  pipeline: Recommender;
  /** Ranker rows in all, and how many of them came from logged impressions. */
  report: { twoTower: TwoTowerResult; ranker: TrainReport; blend?: BlendChoice; rankerRows: number; impressionRows: number; servedRows: number; positives: number; seconds: number };
}

const DEFAULT_CANDIDATES = 100;
const DEFAULT_WIDE_BUCKETS = 1 << 18;

/**
 * Trains the two-tower model and the ranker on `trainRows`: positives train both stages, logged
 * impressions (when the rows have them) add point-in-time ranker rows.
 */
export function trainTwoStage(dataset: Dataset, trainRows: Int32Array, options: TwoStageOptions): TwoStageModel {
  const t0 = performance.now();
  const observer = options.observer ?? SILENT;
  const positives = trainRows.filter((r) => (dataset.interactions.weight[r] ?? 0) > 0);
  const fraction = options.holdoutFraction ?? 0.2;
  const folds = options.holdout === 'temporal'
    ? temporalSplit(dataset, { rows: positives, testFraction: fraction })
    : randomSplit(dataset, { rows: positives, testFraction: fraction, seed: options.seed ^ 0x0f01d });
  const candidates = options.candidates ?? DEFAULT_CANDIDATES;
  const wideBuckets = options.wideBuckets ?? DEFAULT_WIDE_BUCKETS;

  // Stage 1 on the fit fold, stopped early on the label fold.
  const twoTower = trainTwoTower(dataset, folds.train, {
    backend: options.backend,
    config: { seed: options.seed, ...options.twoTower },
    validation: { rows: folds.test, k: options.k ?? 10 },
    observer,
  });
  const coVisitation = options.coVisitation ?? 'ease';
  const fitCoVisitation = fitItemItem(dataset, folds.train, coVisitation);
  const fitSources = new CandidateGenerator(twoTower.model.embedItems(), twoTower.model.config.dim, fitCoVisitation);
  const fitFeatures = fitSources.features(withRows(dataset, folds.train), wideBuckets);
  const userVector = (u: number, history: Int32Array) => twoTower.model.embedUsers(Int32Array.of(u), [history]);

  // Ranker rows: each label-fold user's candidates, users in a seeded random order so that the
  // trainer's early-stopping slice (its last rows) is a random tenth of the users.
  const labels = distinctUserItems(dataset, folds.test);
  const history = distinctUserItems(dataset, folds.train);
  const users: number[] = [];
  for (let u = 0; u < dataset.userIds.length; u++) if (row(labels, u).length > 0) users.push(u);
  shuffleInPlace(users, new Xoshiro128(options.seed ^ 0x7a9e));
  const parts: RankerPart[] = [];
  const engaged = engagedItems(dataset, folds.test);
  for (const u of users) {
    const items = fitSources.retrieve(u, row(history, u), userVector(u, row(history, u)), candidates);
    const positive = new Set(row(labels, u));
    const rows = candidateRows(fitFeatures, u, items);
    const click = new Uint8Array(items.length);
    const engagement = new Uint8Array(items.length);
    items.forEach((i, k) => {
      click[k] = positive.has(i) ? 1 : 0;
      engagement[k] = engaged.has(u * dataset.itemIds.length + i) ? 1 : 0;
    });
    parts.push({ rows, click, engagement, list: true });
  }
  // Impressions that were not clicked are the negatives the issue's serving logs give (Cheng
  // 2016): rows anchored at label-period events, with point-in-time features and the fit-fold
  // models' scores of the history before each event. Placed first, so the early-stopping slice
  // (the last rows) stays candidate rows, the distribution serving ranks.
  const logged = impressionRows(withRows(dataset, trainRows), folds, fitSources, userVector, wideBuckets, options.seed);
  if (logged) parts.unshift(logged);
  // Served rows first of all: the early-stopping slice stays the share of the other rows it is
  // without them (the stacked lists), so served rows change what trains, not how it is judged.
  const served = options.served && options.served.rows.length > 0 ? options.served : undefined;
  if (served) parts.unshift(served);
  const rankerRows = concatRows(parts);
  const servedRows = served?.rows.length ?? 0;
  const share = options.ranker?.validationShare ?? WIDE_AND_DEEP_DEFAULTS.validationShare;
  const servedWeight = served?.weight ?? 1;
  if (!(servedWeight >= 0) || !Number.isFinite(servedWeight)) throw new RangeError(`the served rows' weight must be a finite number >= 0, got ${servedWeight}`);
  const ranker = trainWideAndDeep(dataset, rankerRows, wideBuckets, {
    backend: options.backend,
    seed: options.seed,
    ...(served ? { validationRows: Math.floor((rankerRows.length - servedRows) * share) } : {}),
    ...(served && servedWeight !== 1 ? { rowWeights: new Float32Array(rankerRows.length).fill(servedWeight, 0, servedRows).fill(1, servedRows) } : {}),
    ...options.ranker,
    onEpoch: (e) => observer.epochEnd('ranker', `epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(4)}, validation loss ${e.validLoss.toFixed(4)}, click AUC ${e.validClickAuc.toFixed(4)} (${(e.ms / 1000).toFixed(1)}s)`),
  });
  // The blend weight from the same validation lists that stopped the ranker (never the caller's test rows).
  let blend: BlendChoice | undefined;
  if (options.blend ?? true) {
    const from = ranker.report.trainRows;
    const valid = Int32Array.from({ length: rankerRows.length - from }, (_, j) => from + j);
    const logits = ranker.model.logits(rankerRows, valid);
    blend = chooseBlendWeight(rankerRows, from, rankerRows.length, logits, ranker.model.blend.feature, DENSE_SIZE, ranker.model.scoreWeights, options.k ?? 10);
    ranker.model.blend.weight = blend.weight;
    observer.epochEnd('ranker', `blend with the co-visitation score: weight ${blend.weight} (validation NDCG@${options.k ?? 10} ${Object.entries(blend.validNdcg).map(([w, v]) => `${w}: ${v.toFixed(4)}`).join(', ')}; ${blend.lists} lists)`);
  }

  // Serving: the same models over every training row.
  const generator = new CandidateGenerator(twoTower.model.embedItems(), twoTower.model.config.dim, fitItemItem(dataset, positives, coVisitation));
  const features = generator.features(withRows(dataset, positives), wideBuckets);
  const pipeline: Recommender = {
    name: 'two-tower + ranker',
    scoreUser(user, userHistory, out) {
      out.fill(-Infinity);
      const items = generator.retrieve(user, userHistory, userVector(user, userHistory), candidates);
      if (items.length === 0) return;
      const scores = ranker.model.score(candidateRows(features, user, items));
      items.forEach((i, k) => (out[i] = scores[k] ?? -Infinity));
    },
  };
  const retrieval: Recommender = {
    name: 'two-tower',
    scoreUser(user, userHistory, out) {
      generator.twoTowerScores(userVector(user, userHistory), out);
    },
  };
  return {
    twoTower: twoTower.model, ranker: ranker.model, generator, features, retrieval, pipeline, candidates, coVisitation,
    report: { twoTower, ranker: ranker.report, ...(blend ? { blend } : {}), rankerRows: rankerRows.length, impressionRows: logged?.rows.length ?? 0, servedRows, positives: positives.length, seconds: (performance.now() - t0) / 1000 },
  };
}

/**
 * Stage one over one set of training rows: two-tower dot products with every item vector, and an
 * item-item co-visitation model over the user's history. The user vector comes from outside (the
 * TS tower in training, the ONNX user tower in serving), so both paths share everything else.
 * Scores of the user last retrieved for are kept, z-scored, for the ranker's features.
 */
export class CandidateGenerator {
  readonly tt: Float32Array;
  readonly cv: Float32Array;
  private readonly excluded: Uint8Array;
  private readonly top: Int32Array;
  private readonly heap: Float32Array;
  private readonly coVisitationScorer: Recommender;
  private current = -1;

  constructor(readonly itemVectors: Float32Array, readonly dim: number, readonly coVisitation: ItemItemModel) {
    const n = itemVectors.length / dim;
    this.coVisitationScorer = itemItemRecommender('co-visitation', coVisitation);
    this.tt = new Float32Array(n);
    this.cv = new Float32Array(n);
    this.excluded = new Uint8Array(n);
    this.top = new Int32Array(n);
    this.heap = new Float32Array(n);
  }

  /** Raw two-tower scores of every item for a user vector. */
  twoTowerScores(userVector: Float32Array, out: Float32Array = this.tt): Float32Array {
    const { dim, itemVectors: v } = this;
    for (let i = 0; i < out.length; i++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += (userVector[d] ?? 0) * (v[i * dim + d] ?? 0);
      out[i] = s;
    }
    return out;
  }

  /** The union of each source's top `n` items the user has not interacted with (`history`). */
  retrieve(user: number, history: ArrayLike<number>, userVector: Float32Array, n: number): number[] {
    this.twoTowerScores(userVector);
    this.coVisitationScorer.scoreUser(user, Int32Array.from(history), this.cv);
    this.current = user;
    this.excluded.fill(0);
    for (let k = 0; k < history.length; k++) this.excluded[history[k] ?? 0] = 1;
    standardise(this.tt, this.excluded);
    standardise(this.cv, this.excluded);
    const chosen = new Set<number>();
    for (const scores of [this.tt, this.cv]) {
      const count = topK(scores, n, this.excluded, this.top, this.heap);
      for (let k = 0; k < count; k++) chosen.add(this.top[k] ?? 0);
    }
    return [...chosen];
  }

  /**
   * Makes a user's scores current again from copies of `tt` and `cv` taken after `retrieve`: a
   * server handling several requests at once keeps each request's copies across its awaits.
   */
  restore(user: number, tt: Float32Array, cv: Float32Array): void {
    this.tt.set(tt);
    this.cv.set(cv);
    this.current = user;
  }

  /**
   * Makes `user` current with scores for some items only (z-scored `tt` and `cv` per item of
   * `items`): a server that computes them for its candidates alone, not for the whole catalog.
   */
  setScores(user: number, items: ArrayLike<number>, tt: ArrayLike<number>, cv: ArrayLike<number>): void {
    for (let k = 0; k < items.length; k++) {
      const i = items[k] ?? 0;
      this.tt[i] = tt[k] ?? 0;
      this.cv[i] = cv[k] ?? 0;
    }
    this.current = user;
  }

  /** Ranker features frozen at the end of `dataset`, reading this generator's scores of the current user. */
  features(dataset: Dataset, wideBuckets: number): FrozenFeatures {
    const read = (scores: Float32Array) => (user: number, item: number): number => {
      if (user !== this.current) throw new Error(`retrieval scores are for user ${this.current}, not ${user}: call retrieve() first`);
      // A source that cannot score an item (co-visitation of an item nobody in the fold saw) says −∞: no evidence, 0.
      const v = scores[item] ?? 0;
      return Number.isFinite(v) ? v : 0;
    };
    return freezeFeatures(dataset, { externalScore: read(this.tt), coVisitationScore: read(this.cv), wideBuckets });
  }
}

/**
 * Scores as z-scores over the items the user could be shown: raw dot products and co-visitation
 * sums differ in scale from user to user (a long history sums more), and the ranker is pointwise,
 * so it needs scores that mean the same for everyone. Unscorable items (−∞) stay −∞.
 */
function standardise(scores: Float32Array, excluded: Uint8Array): void {
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i] ?? 0;
    if (excluded[i] === 1 || !Number.isFinite(v)) continue;
    n++;
    sum += v;
    sq += v * v;
  }
  const mean = n > 0 ? sum / n : 0;
  const std = Math.sqrt(Math.max(n > 0 ? sq / n - mean * mean : 0, 0)) || 1;
  for (let i = 0; i < scores.length; i++) scores[i] = ((scores[i] ?? 0) - mean) / std;
}

function fitItemItem(dataset: Dataset, rows: Int32Array, kind: 'ease' | 'item-knn'): ItemItemModel {
  return (kind === 'ease' ? fitEase(dataset, rows) : fitItemKnn(dataset, rows)).itemItem;
}
