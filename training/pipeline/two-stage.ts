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
import { dot, embeddingMoments, scoreStats } from '../../core/serving/scores.ts';
import type { EmbeddingMoments } from '../../core/serving/scores.ts';
import { distinctUserItems, itemItemRecommender, itemItemSums } from '../eval/baselines/cooccurrence.ts';
import type { ItemItemModel, RowSums } from '../eval/baselines/cooccurrence.ts';
import { fitItemKnn } from '../eval/baselines/item-knn.ts';
import { fitEase } from '../eval/baselines/ease.ts';
import { offerTopK, sortTopK, topK } from '../eval/evaluate.ts';
import type { Recommender } from '../eval/evaluate.ts';
import { randomSplit, temporalSplit } from '../eval/protocols.ts';
import { DENSE_SIZE } from '../features/feature-state.ts';
import { freezeFeatures } from '../features/point-in-time.ts';
import type { FrozenFeatures } from '../features/point-in-time.ts';
import { typescriptMatmul } from '../nn/index.ts';
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
import { scanTopK } from '../two-tower/catalog-scan.ts';
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
  const fitSources = new CandidateGenerator(twoTower.model.embedItems(), twoTower.model.config.dim, fitCoVisitation, options.backend);
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
  const retrieved = retrieveInBatches(fitSources, twoTower.model, users, (u) => row(history, u), candidates);
  for (const [j, u] of users.entries()) {
    const { items, tt, cv } = retrieved[j] ?? { items: new Int32Array(0), tt: new Float32Array(0), cv: new Float32Array(0) };
    fitSources.setScores(u, items, tt, cv);
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
  const generator = new CandidateGenerator(twoTower.model.embedItems(), twoTower.model.config.dim, fitItemItem(dataset, positives, coVisitation), options.backend);
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
    recommendMany(users, histories, k) {
      const retrievedNow = retrieveInBatches(generator, twoTower.model, Array.from(users), (_, j) => histories[j] ?? new Int32Array(0), candidates);
      return retrievedNow.map(({ items, tt, cv }, j) => {
        if (items.length === 0) return items;
        const user = users[j] ?? 0;
        generator.setScores(user, items, tt, cv);
        const scores = ranker.model.score(candidateRows(features, user, items));
        // topK's order: score, then the lower item index.
        const order = Array.from(items.keys()).sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || (items[a] ?? 0) - (items[b] ?? 0));
        return Int32Array.from(order.slice(0, k), (o) => items[o] ?? 0);
      });
    },
  };
  const retrieval: Recommender = {
    name: 'two-tower',
    scoreUser(user, userHistory, out) {
      generator.twoTowerScores(userVector(user, userHistory), out);
    },
    recommendMany: (users, histories, k) => scanTopK(options.backend, generator.itemVectors, generator.dim, twoTower.model.embedUsers(users, histories), histories, k),
  };
  return {
    twoTower: twoTower.model, ranker: ranker.model, generator, features, retrieval, pipeline, candidates, coVisitation,
    report: { twoTower, ranker: ranker.report, ...(blend ? { blend } : {}), rankerRows: rankerRows.length, impressionRows: logged?.rows.length ?? 0, servedRows, positives: positives.length, seconds: (performance.now() - t0) / 1000 },
  };
}

/** Users per batch of `retrieveMany`: the catalog is read once per batch. */
const RETRIEVE_BATCH = 256;

/** `generator.retrieveMany` over `users` in batches, each user's vector from the two-tower's user tower. */
function retrieveInBatches(
  generator: CandidateGenerator, twoTower: TwoTower, users: readonly number[], historyOf: (user: number, at: number) => Int32Array, n: number,
): { items: Int32Array; tt: Float32Array; cv: Float32Array }[] {
  const out: { items: Int32Array; tt: Float32Array; cv: Float32Array }[] = [];
  for (let from = 0; from < users.length; from += RETRIEVE_BATCH) {
    const batch = Int32Array.from(users.slice(from, from + RETRIEVE_BATCH));
    const histories = Array.from(batch, (u, j) => historyOf(u, from + j));
    out.push(...generator.retrieveMany(histories, twoTower.embedUsers(batch, histories), n));
  }
  return out;
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
  /** The two-tower inner products of the last `retrieve`, before z-scoring (`tt`). */
  readonly innerProducts: Float32Array;
  /** Scores every item for a query into `out` in place of the TypeScript loop (`useScorer`). */
  private scorer: ((query: Float32Array, out: Float32Array) => void) | undefined;
  private readonly excluded: Uint8Array;
  /** `retrieve`'s distinct history items (reused between calls). */
  private distinct = new Int32Array(64);
  private readonly top: Int32Array;
  private readonly heap: Float32Array;
  private coVisitationScorer: Recommender;
  private current = -1;

  private moments: EmbeddingMoments | undefined;
  /** The item-item model's kept items, as positions in its subset, in item index order (topK's tie order). */
  private readonly subsetByIndex: Int32Array;
  /** The item-item model's kept items, in item index order. */
  private readonly subsetItems: Int32Array;

  /** `backend` runs `retrieveMany`'s catalog scan (default: the TypeScript GEMM). */
  constructor(readonly itemVectors: Float32Array, readonly dim: number, readonly coVisitation: ItemItemModel, private readonly backend: MatmulBackend = typescriptMatmul) {
    const n = itemVectors.length / dim;
    const { subset } = coVisitation;
    this.subsetByIndex = Int32Array.from(subset.items.keys()).sort((a, b) => (subset.items[a] ?? 0) - (subset.items[b] ?? 0));
    this.subsetItems = Int32Array.from(this.subsetByIndex, (l) => subset.items[l] ?? 0);
    this.coVisitationScorer = itemItemRecommender('co-visitation', coVisitation);
    this.tt = new Float32Array(n);
    this.innerProducts = new Float32Array(n);
    this.cv = new Float32Array(n);
    this.excluded = new Uint8Array(n);
    this.top = new Int32Array(n);
    this.heap = new Float32Array(n);
  }

  /**
   * Scores the catalog with `scorer` (serving: the WASM SIMD kernel holding these item vectors,
   * ~10× the TypeScript loop) instead of the loop below. Its float32 sums may differ from the
   * loop's in the last bits.
   */
  useScorer(scorer: (query: Float32Array, out: Float32Array) => void): void {
    this.scorer = scorer;
  }

  /** Sums the item-item rows with `sums` (serving: the WASM kernel over resident weights, the same bits) instead of TypeScript. */
  useRowSums(sums: RowSums): void {
    this.coVisitationScorer = itemItemRecommender('co-visitation', this.coVisitation, sums);
  }

  /** Raw two-tower scores of every item for a user vector. */
  twoTowerScores(userVector: Float32Array, out: Float32Array = this.tt): Float32Array {
    const { dim, itemVectors: v } = this;
    if (this.scorer !== undefined && out.length === v.length / dim) {
      this.scorer(userVector, out);
      return out;
    }
    // Four partial sums: independent adds the CPU overlaps (~25% faster than one chain at dim 64).
    for (let i = 0, o = 0; i < out.length; i++, o += dim) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let d = 0;
      for (; d + 3 < dim; d += 4) {
        s0 += (userVector[d] ?? 0) * (v[o + d] ?? 0);
        s1 += (userVector[d + 1] ?? 0) * (v[o + d + 1] ?? 0);
        s2 += (userVector[d + 2] ?? 0) * (v[o + d + 2] ?? 0);
        s3 += (userVector[d + 3] ?? 0) * (v[o + d + 3] ?? 0);
      }
      for (; d < dim; d++) s0 += (userVector[d] ?? 0) * (v[o + d] ?? 0);
      out[i] = s0 + s1 + s2 + s3;
    }
    return out;
  }

  /**
   * The union of each source's top `n` items the user has not interacted with (`history`). An
   * item repeated in `history` counts once in the item-item sums, as in `zScores` and serving.
   */
  retrieve(user: number, history: ArrayLike<number>, userVector: Float32Array, n: number): number[] {
    this.twoTowerScores(userVector);
    this.innerProducts.set(this.tt);
    // The history's distinct items in order of first appearance (what a Set of them iterates),
    // found with the exclusion marks, which end up on every history item as before.
    this.excluded.fill(0);
    if (this.distinct.length < history.length) this.distinct = new Int32Array(Math.max(history.length, 2 * this.distinct.length));
    let distinct = 0;
    for (let k = 0; k < history.length; k++) {
      const item = history[k] ?? 0;
      if (this.excluded[item] === 1) continue;
      this.excluded[item] = 1;
      this.distinct[distinct++] = item;
    }
    this.coVisitationScorer.scoreUser(user, this.distinct.subarray(0, distinct), this.cv);
    this.current = user;
    standardise(this.tt, this.excluded);
    // Only the item-item model's items have a score (−∞ elsewhere, which z-scoring keeps): the
    // same values as standardise over the catalog, in the same order, without reading the rest.
    standardise(this.cv, this.excluded, this.subsetItems);
    const chosen = new Set<number>();
    // Serving asks for the scores alone (n = 0): no top lists to build.
    if (n <= 0) return [];
    for (const scores of [this.tt, this.cv]) {
      const count = topK(scores, n, this.excluded, this.top, this.heap);
      for (let k = 0; k < count; k++) chosen.add(this.top[k] ?? 0);
    }
    return [...chosen];
  }

  /**
   * A user's z-scored stage-one scores as `retrieve` computes them, without scanning the catalog
   * (as serving does for a large one, core/serving/engine.ts): the two-tower mean and deviation
   * over the items outside `history` from the embedding moments (core/serving/scores.ts), and
   * the item-item sums over the model's subset alone. `tt(item)` and `cv(item)` then give the
   * z-scores of any item (cv −∞ outside the subset, as `retrieve` leaves it). An item repeated
   * in `history` counts once, as in serving's history. `moments`: those of `itemVectors` when the
   * caller has them (computed on first use otherwise, O(items · dim²)).
   */
  zScores(history: ArrayLike<number>, userVector: Float32Array, moments?: EmbeddingMoments): { tt(item: number): number; cv(item: number): number } {
    const seen = new Set<number>();
    for (let k = 0; k < history.length; k++) seen.add(history[k] ?? 0);
    this.moments ??= moments ?? embeddingMoments(this.itemVectors, this.dim);
    const { mean, std } = scoreStats(this.moments, userVector, this.itemVectors, [...seen]);
    const { subset, weights } = this.coVisitation;
    const sums = new Float32Array(subset.items.length);
    itemItemSums(weights, subset, [...seen], sums);
    // Z-scored over the subset's items outside the history, as `retrieve` does over the catalog (−∞ elsewhere).
    const inHistory = new Uint8Array(sums.length);
    for (const item of seen) {
      const l = subset.local[item] ?? -1;
      if (l >= 0) inHistory[l] = 1;
    }
    standardise(sums, inHistory);
    const { itemVectors, dim } = this;
    return {
      tt: (item) => (dot(userVector, itemVectors, item, dim) - mean) / std,
      cv: (item) => {
        const l = subset.local[item] ?? -1;
        return l < 0 ? -Infinity : (sums[l] ?? 0);
      },
    };
  }

  /**
   * `retrieve` for many users at once, for catalogs too large to score one user at a time: each
   * source's top `n` (the two-tower's through the catalog scan, the item-item's over its subset),
   * and the z-scores of the chosen items, ready for `setScores`. `vectors` is [users × dim].
   */
  retrieveMany(histories: readonly ArrayLike<number>[], vectors: Float32Array, n: number): { items: Int32Array; tt: Float32Array; cv: Float32Array }[] {
    const { dim } = this;
    const twoTower = scanTopK(this.backend, this.itemVectors, dim, vectors, histories, n);
    const { subset } = this.coVisitation;
    const heapScores = new Float32Array(Math.max(n, 0));
    const heapItems = new Int32Array(Math.max(n, 0));
    return histories.map((history, q) => {
      const scores = this.zScores(history, vectors.subarray(q * dim, (q + 1) * dim));
      const seen = new Set<number>();
      for (let k = 0; k < history.length; k++) seen.add(history[k] ?? 0);
      let size = 0;
      for (const l of this.subsetByIndex) {
        const item = subset.items[l] ?? 0;
        if (seen.has(item)) continue;
        const s = scores.cv(item);
        size = offerTopK(heapScores, heapItems, size, n, s === s ? s : -Infinity, item);
      }
      sortTopK(heapScores, heapItems, size);
      const chosen = new Set<number>(twoTower[q]);
      for (let k = 0; k < size; k++) chosen.add(heapItems[k] ?? 0);
      const items = Int32Array.from(chosen);
      return { items, tt: Float32Array.from(items, (i) => scores.tt(i)), cv: Float32Array.from(items, (i) => scores.cv(i)) };
    });
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
 * so it needs scores that mean the same for everyone. Unscorable items (−∞) stay −∞. With
 * `items` (ascending), only those can hold finite scores: the rest is neither read nor written,
 * and the values are those of the whole pass (the same sums, in the same order).
 */
function standardise(scores: Float32Array, excluded: Uint8Array, items?: Int32Array): void {
  let n = 0;
  let sum = 0;
  let sq = 0;
  // Serving runs this on every item per request: indexes in range (no `?? 0`), and v − v ≠ 0 for
  // "not finite" (∞ − ∞ and NaN − NaN are NaN): ~25% faster over 100,000 items, the same values.
  const count = items === undefined ? scores.length : items.length;
  for (let k = 0; k < count; k++) {
    const i = items === undefined ? k : (items[k] as number);
    const v = scores[i] as number;
    if (v - v !== 0 || excluded[i] === 1) continue;
    n++;
    sum += v;
    sq += v * v;
  }
  const mean = n > 0 ? sum / n : 0;
  const std = Math.sqrt(Math.max(n > 0 ? sq / n - mean * mean : 0, 0)) || 1;
  for (let k = 0; k < count; k++) {
    const i = items === undefined ? k : (items[k] as number);
    scores[i] = ((scores[i] as number) - mean) / std;
  }
}

function fitItemItem(dataset: Dataset, rows: Int32Array, kind: 'ease' | 'item-knn'): ItemItemModel {
  return (kind === 'ease' ? fitEase(dataset, rows) : fitItemKnn(dataset, rows)).itemItem;
}
