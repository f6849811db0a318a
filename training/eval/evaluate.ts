// The offline evaluator: every recommender (trained model or baseline) scores every item for each
// test user, the items the user saw in training are excluded, and the top K is compared with the
// user's held-out items. Top K is a partial selection (a K-entry heap), never a full sort.

import { MetricAccumulator } from '../../core/domain/metrics.ts';
import type { MetricSummary } from '../../core/domain/metrics.ts';
import { row, userItems } from '../data/dataset.ts';
import { distinctUserItems } from './baselines/cooccurrence.ts';
import type { Dataset } from '../data/dataset.ts';
import type { Split } from './protocols.ts';

/** Anything that scores a user's affinity to every item; models and baselines alike. */
export interface Recommender {
  readonly name: string;
  /**
   * Writes one score per item into `out` (length = item count), higher = better. `history` holds
   * the user's distinct training items, in time order. Train items are excluded by the caller.
   */
  scoreUser(user: number, history: Int32Array, out: Float32Array): void;
  /**
   * Optional, for catalogs too large to score one user at a time: each user's top `k` items, best
   * first, their history excluded: what topK over `scoreUser`'s scores gives (up to float rounding
   * of the scores), for many users at once.
   */
  recommendMany?(users: Int32Array, histories: readonly Int32Array[], k: number): Int32Array[];
}

/** Users per `recommendMany` call in the evaluator. */
const USERS_PER_CALL = 256;

/** Fits a recommender on the training rows of a split. Trained models plug in here. */
export type RecommenderFactory = (dataset: Dataset, trainRows: Int32Array, seed: number) => Promise<Recommender>;

export interface EvaluateOptions {
  k: number;
}

export interface RecommenderResult {
  name: string;
  metrics: MetricSummary;
  /** Seconds spent fitting (only when fitted through `fitAndEvaluate`). */
  fitSeconds?: number;
  /** Seconds spent scoring and ranking every test user. */
  scoreSeconds: number;
}

export interface EvaluationResult {
  k: number;
  /** Users with at least one test item that was not also a train item. */
  users: number;
  items: number;
  trainRows: number;
  testRows: number;
  results: RecommenderResult[];
}

/** Scores every test user with every recommender and averages the metrics @K. */
export function evaluate(
  dataset: Dataset,
  split: Split,
  recommenders: readonly Recommender[],
  options: EvaluateOptions,
): EvaluationResult {
  const { k } = options;
  const itemCount = dataset.itemIds.length;
  const histories = distinctUserItems(dataset, split.train);
  const testItems = userItems(dataset, split.test);
  const users: number[] = [];
  const relevant: Set<number>[] = [];
  for (let u = 0; u < dataset.userIds.length; u++) {
    const seen = new Set(row(histories, u));
    // A test item the user also has in train can never be recommended: it is not held out.
    const held = new Set<number>();
    for (const i of row(testItems, u)) if (!seen.has(i)) held.add(i);
    if (held.size === 0) continue;
    users.push(u);
    relevant.push(held);
  }

  const scores = new Float32Array(itemCount);
  const excluded = new Uint8Array(itemCount);
  const top = new Int32Array(k);
  const heapScores = new Float32Array(k);
  const results: RecommenderResult[] = [];
  for (const recommender of recommenders) {
    const acc = new MetricAccumulator(k, itemCount);
    const t0 = performance.now();
    if (recommender.recommendMany) {
      for (let from = 0; from < users.length; from += USERS_PER_CALL) {
        const batch = Int32Array.from(users.slice(from, from + USERS_PER_CALL));
        const tops = recommender.recommendMany(batch, Array.from(batch, (u) => row(histories, u)), k);
        tops.forEach((items, j) => acc.add(items.subarray(0, k), relevant[from + j] ?? new Set<number>()));
      }
      results.push({ name: recommender.name, metrics: acc.summary(), scoreSeconds: (performance.now() - t0) / 1000 });
      continue;
    }
    users.forEach((u, n) => {
      const history = row(histories, u);
      for (const i of history) excluded[i] = 1;
      scores.fill(0);
      recommender.scoreUser(u, history, scores);
      const count = topK(scores, k, excluded, top, heapScores);
      acc.add(top.subarray(0, count), relevant[n] ?? new Set<number>());
      for (const i of history) excluded[i] = 0;
    });
    results.push({ name: recommender.name, metrics: acc.summary(), scoreSeconds: (performance.now() - t0) / 1000 });
  }
  return { k, users: users.length, items: itemCount, trainRows: split.train.length, testRows: split.test.length, results };
}

/** Fits each factory on the split's train rows (timed), then evaluates them all together. */
export async function fitAndEvaluate(
  dataset: Dataset,
  split: Split,
  factories: readonly RecommenderFactory[],
  options: EvaluateOptions & { seed: number },
): Promise<EvaluationResult> {
  const fitted: Recommender[] = [];
  const fitSeconds: number[] = [];
  for (const factory of factories) {
    const t0 = performance.now();
    fitted.push(await factory(dataset, split.train, options.seed));
    fitSeconds.push((performance.now() - t0) / 1000);
  }
  const result = evaluate(dataset, split, fitted, options);
  result.results.forEach((r, i) => (r.fitSeconds = fitSeconds[i]));
  return result;
}

/**
 * The indexes of the K highest scores among items with `excluded[i] === 0`, best first, into
 * `out`; returns how many were found (fewer than K when the catalog runs out). Ties go to the
 * lower item index; NaN counts as −Infinity. A K-entry min-heap: O(n log K), no full sort.
 * `heapScores` is scratch of length ≥ K.
 */
export function topK(scores: Float32Array, k: number, excluded: Uint8Array, out: Int32Array, heapScores: Float32Array): number {
  let size = 0;
  for (let i = 0; i < scores.length; i++) {
    if (excluded[i] === 1) continue;
    const raw = scores[i] ?? 0;
    size = offerTopK(heapScores, out, size, k, raw === raw ? raw : -Infinity, i);
  }
  sortTopK(heapScores, out, size);
  return size;
}

/** topK's order: a is worse than b when its score is lower, or equal with a higher item index. */
const worse = (sa: number, ia: number, sb: number, ib: number): boolean => sa < sb || (sa === sb && ia > ib);

/**
 * Offers item `i` with score `s` (not NaN) to a K-entry min-heap of `size` entries in
 * `heapScores`/`items` (root = the worst kept), keeping the K best in topK's order whatever order
 * the items come in; returns the new size. `sortTopK` then puts them best first.
 */
export function offerTopK(heapScores: Float32Array | Float64Array, items: Int32Array, size: number, k: number, s: number, i: number): number {
  if (size < k) {
    // Sift up.
    let at = size;
    while (at > 0) {
      const p = (at - 1) >> 1;
      if (!worse(s, i, heapScores[p] ?? 0, items[p] ?? 0)) break;
      heapScores[at] = heapScores[p] ?? 0;
      items[at] = items[p] ?? 0;
      at = p;
    }
    heapScores[at] = s;
    items[at] = i;
    return size + 1;
  }
  if (k > 0 && worse(heapScores[0] ?? 0, items[0] ?? 0, s, i)) {
    heapScores[0] = s;
    items[0] = i;
    siftDown(heapScores, items, size, 0);
  }
  return size;
}

/** Turns a heap from `offerTopK` into its items best first (and their scores beside them), in place. */
export function sortTopK(heapScores: Float32Array | Float64Array, items: Int32Array, size: number): void {
  // Pop worst-first into the tail: the array ends best-first.
  for (let end = size - 1; end > 0; end--) {
    const s = heapScores[0] ?? 0;
    const it = items[0] ?? 0;
    heapScores[0] = heapScores[end] ?? 0;
    items[0] = items[end] ?? 0;
    siftDown(heapScores, items, end, 0);
    heapScores[end] = s;
    items[end] = it;
  }
}

function siftDown(heapScores: Float32Array | Float64Array, items: Int32Array, size: number, at: number): void {
  const s = heapScores[at] ?? 0;
  const it = items[at] ?? 0;
  for (;;) {
    const l = 2 * at + 1;
    if (l >= size) break;
    const r = l + 1;
    let c = l;
    if (r < size && worse(heapScores[r] ?? 0, items[r] ?? 0, heapScores[l] ?? 0, items[l] ?? 0)) c = r;
    const sc = heapScores[c] ?? 0;
    const ic = items[c] ?? 0;
    if (!worse(sc, ic, s, it)) break;
    heapScores[at] = sc;
    items[at] = ic;
    at = c;
  }
  heapScores[at] = s;
  items[at] = it;
}
