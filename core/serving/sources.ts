// Retrieval sources (issue 5, "Retrieval"): each narrows the catalog to scored candidates in its own
// way, and the engine runs them side by side under per-source quotas and timeouts. A source that
// throws or runs late is skipped and reported; the others still answer.
//
//   two-tower      ANN over the item embeddings (VectorIndex: embedded HNSW or Milvus) with the
//                  user-tower vector of the user's latest history; filters pushed down to the index
//   item-item      the model's item-item weights (EASE by default) summed over the history
//   co-visitation  time-decayed co-visitation from the interaction table, over the recent history
//   content        TF-IDF overlap of content tokens with the user's recent items
//   trending       time-decayed positives, per requested category when there is one
//   fresh          recently published, little-shown items (cold start)
//   popular        all-time positives (for users with no history)

import { row } from '../../training/data/dataset.ts';
import { scoreItemItem } from '../../training/eval/baselines/cooccurrence.ts';
import { offerTopK, sortTopK } from '../../training/eval/evaluate.ts';
import { descendingKey32, radixSort } from '../domain/radix.ts';
import type { VectorFilter, VectorIndex } from '../retrieval/vector-index.ts';
import type { ServingSnapshot } from './snapshot.ts';

/** One candidate: an item index of the snapshot's dataset and the source's score. */
export interface Scored {
  item: number;
  score: number;
}

export interface RetrievalContext {
  snapshot: ServingSnapshot;
  /** The user's index in the snapshot, or −1 when the snapshot does not know them. */
  user: number;
  /** Distinct positive items, oldest first: the snapshot's and those since. */
  history: Int32Array;
  /** The user-tower vector (absent for users with no history and no id in the model). */
  vector?: Float32Array;
  /** Per item index, 1 when it must not be returned (hidden, deleted, consumed, filtered out). */
  excluded: Uint8Array;
  /** The category filter (category indexes), if any: sources that can restrict by category do. */
  categories?: readonly number[];
  /** The same filters for a vector index, by item id. */
  filter: VectorFilter;
  /** The model's item-item scores of this user's history (z-scored; −∞ where it has none), when computed. */
  itemItemScores?: Float32Array;
  /**
   * The two-tower scores of every item for `vector` (z-scored, so in the order of the inner
   * products), when the request computed them for the whole catalog (up to `exactScoresUpTo` items).
   */
  twoTowerScores?: Float32Array;
  /** The inner products behind `twoTowerScores` (what an index reports as the score), when computed. */
  twoTowerInnerProducts?: Float32Array;
}

export interface RetrievalSource {
  readonly name: string;
  /** Up to `n` candidates, best first, none of them excluded. */
  retrieve(context: RetrievalContext, n: number): Promise<Scored[]>;
}

/**
 * The `n` best of `score` over items not excluded (and > −∞), best first, ties to the lower item.
 * `among` limits it to those items (a model's subset of a large catalog); it must not change after
 * the first call with it (its sorted copy is kept).
 *
 * When there are not many more items than `n` (the usual case: 1,000 of a few thousand), each
 * score becomes a uint32 key that sorts like it and a radix sort orders them all (the two-tower
 * and item-item sources' selections: ~0.3 ms per request with a quicksort of packed keys, ~0.1
 * this way). Otherwise a heap, O(items · log n).
 */
export function topScored(score: Float32Array, n: number, excluded: Uint8Array, among?: Int32Array): Scored[] {
  if (n <= 0) return [];
  const count = among === undefined ? score.length : among.length;
  if (count <= Math.max(SORT_UP_TO, 4 * n)) return topScoredBySort(score, n, excluded, count, among);
  const heapScores = new Float32Array(n);
  const top = new Int32Array(n);
  let size = 0;
  for (let k = 0; k < count; k++) {
    const i = among === undefined ? k : (among[k] ?? 0);
    const s = eligibleScore(score, excluded, i);
    if (s > -Infinity) size = offerTopK(heapScores, top, size, n, s, i);
  }
  sortTopK(heapScores, top, size);
  return Array.from(top.subarray(0, size), (item) => ({ item, score: score[item] ?? 0 }));
}

/** Item i's score if topScored may return it (not excluded, > −∞, not NaN), else −∞: both of its ways use this rule. */
function eligibleScore(score: Float32Array, excluded: Uint8Array, i: number): number {
  const s = score[i] ?? -Infinity;
  return excluded[i] === 1 || !(s > -Infinity) ? -Infinity : s;
}

/** Up to this many items (or 4 n) sorting them all beats the heap. */
const SORT_UP_TO = 16_384;

/** The float32 scores' bits, for descendingKey32. */
function bitsOf(scores: Float32Array): Uint32Array {
  return new Uint32Array(scores.buffer, scores.byteOffset, scores.length);
}

/**
 * Every index of `scores`, best score first, ties in index order, NaNs last (in index order): the
 * ranker's order of its candidates.
 */
export function descendingOrder(scores: Float32Array): Int32Array {
  const n = scores.length;
  const bits = bitsOf(scores);
  const keys = new Uint32Array(n);
  const order = new Int32Array(n);
  const nans: number[] = [];
  let size = 0;
  for (let k = 0; k < n; k++) {
    const s = scores[k] ?? 0;
    if (s === s) {
      keys[size] = descendingKey32(bits[k] ?? 0);
      order[size++] = k;
    } else {
      nans.push(k);
    }
  }
  radixSort(keys, order, size);
  order.set(nans, size);
  return order;
}

/**
 * The first `k` of `descendingOrder(scores)`. Far fewer than the scores (the ranker keeps 4 n of
 * ~1,000) go through a k-entry heap, O(n log k), instead of sorting them all.
 */
export function descendingTop(scores: Float32Array, k: number): Int32Array {
  const n = scores.length;
  const count = Math.max(0, Math.min(k, n));
  if (count * 4 > n) return descendingOrder(scores).slice(0, count);
  const heapScores = new Float32Array(count);
  const top = new Int32Array(count);
  let size = 0;
  for (let i = 0; i < n; i++) {
    const s = scores[i] ?? 0;
    if (s === s) size = offerTopK(heapScores, top, size, count, s, i);
  }
  sortTopK(heapScores, top, size);
  // Fewer numbers than k: the NaNs follow, in index order.
  for (let i = 0; i < n && size < count; i++) if (Number.isNaN(scores[i])) top[size++] = i;
  return top;
}

/**
 * topScored by sorting: the eligible items in ascending order with their scores' descending keys,
 * radix-sorted; the sort is stable, so equal scores stay in item order. `among` is read in
 * ascending order (its sorted copy is made once per array and kept).
 */
function topScoredBySort(score: Float32Array, n: number, excluded: Uint8Array, count: number, among?: Int32Array): Scored[] {
  const bits = bitsOf(score);
  const list = among === undefined ? undefined : ascendingOf(among);
  const keys = new Uint32Array(count);
  const items = new Int32Array(count);
  let size = 0;
  for (let k = 0; k < count; k++) {
    const i = list === undefined ? k : (list[k] ?? 0);
    const s = eligibleScore(score, excluded, i);
    if (s > -Infinity) {
      keys[size] = descendingKey32(bits[i] ?? 0);
      items[size++] = i;
    }
  }
  radixSort(keys, items, size);
  const out: Scored[] = new Array(Math.min(n, size));
  for (let k = 0; k < out.length; k++) {
    const item = items[k] ?? 0;
    out[k] = { item, score: score[item] ?? 0 };
  }
  return out;
}

const ascendingCopies = new WeakMap<Int32Array, Int32Array>();

/** `items` in ascending order: itself when it already is, else a sorted copy kept for the next call. */
function ascendingOf(items: Int32Array): Int32Array {
  let sorted = ascendingCopies.get(items);
  if (sorted === undefined) {
    let ascending = true;
    for (let k = 1; k < items.length && ascending; k++) ascending = (items[k - 1] ?? 0) <= (items[k] ?? 0);
    sorted = ascending ? items : items.slice().sort();
    ascendingCopies.set(items, sorted);
  }
  return sorted;
}

function fromList(items: Int32Array, score: ArrayLike<number>, n: number, excluded: Uint8Array): Scored[] {
  const out: Scored[] = [];
  for (let k = 0; k < items.length && out.length < n; k++) {
    const i = items[k] ?? 0;
    if (excluded[i] !== 1) out.push({ item: i, score: score[i] ?? 0 });
  }
  return out;
}

/**
 * Two-tower ANN through the vector index. With the embedded index, a request that already scored
 * every item (`twoTowerScores`, catalogs up to `exactScoresUpTo`) takes its exact top n instead of
 * walking the graph: the graph holds the same snapshot embeddings, so the answer is the one an
 * exact index would give (recall 1), and a heap over the scores costs less than a walk with
 * ef ≥ n (the source's stage: 1.0 ms against 2.9 for n = 1,000 of ml-100k's 1,682 items). Milvus
 * is always asked: a user who configured it gets its search, filters pushed down.
 */
export function twoTowerSource(index: VectorIndex): RetrievalSource {
  return {
    name: 'two-tower',
    async retrieve(context, n) {
      if (context.vector === undefined || n <= 0) return [];
      const { snapshot, twoTowerScores, vector } = context;
      if (index.kind === 'hnsw' && twoTowerScores !== undefined) {
        const { embeddings, dim } = snapshot;
        const top = topScored(twoTowerScores, n, context.excluded);
        // Inner products as the index would report them; the z-scores only order.
        const products = context.twoTowerInnerProducts;
        if (products !== undefined) {
          for (const s of top) s.score = products[s.item] ?? 0;
          return top;
        }
        return top.map(({ item }) => {
          let s = 0;
          for (let d = 0, o = item * dim; d < dim; d++) s += (vector[d] as number) * (embeddings[o + d] as number);
          return { item, score: s };
        });
      }
      const { dataset } = snapshot;
      const hits = await index.search(context.vector, n, context.filter);
      const out: Scored[] = [];
      for (const hit of hits) {
        const i = dataset.itemIndex.get(hit.id);
        if (i !== undefined && context.excluded[i] !== 1) out.push({ item: i, score: hit.score });
      }
      return out;
    },
  };
}

export const itemItemSource: RetrievalSource = {
  name: 'item-item',
  async retrieve(context, n) {
    const { snapshot, history } = context;
    if (history.length === 0) return [];
    const model = snapshot.generator.coVisitation;
    let scores = context.itemItemScores;
    if (scores === undefined) {
      scores = new Float32Array(snapshot.dataset.itemIds.length);
      scoreItemItem(model.weights, model.subset, history, scores, new Float32Array(model.subset.items.length));
    }
    // Items outside the model's subset score −∞: only the subset can be chosen.
    return topScored(scores, n, context.excluded, model.subset.items);
  },
};

/** Recent history items weigh more: the k-th most recent counts 1 / (1 + k / 5). */
const RECENT_ITEMS = 20;

export const coVisitationSource: RetrievalSource = {
  name: 'co-visitation',
  async retrieve(context, n) {
    const { snapshot, history } = context;
    const { neighbours, weights } = snapshot.signals.coVisitation;
    // Sums in a dense scratch array (a Map boxed every sum), the items touched in a list.
    const sums = scratchSums(snapshot.signals.coVisitation, snapshot.dataset.itemIds.length);
    const seen = scratchSeen(snapshot.signals.coVisitation, snapshot.dataset.itemIds.length);
    const touched: number[] = [];
    for (let k = 0; k < Math.min(RECENT_ITEMS, history.length); k++) {
      const h = history[history.length - 1 - k] ?? 0;
      const recency = 1 / (1 + k / 5);
      for (let e = neighbours.offsets[h] ?? 0; e < (neighbours.offsets[h + 1] ?? 0); e++) {
        const j = neighbours.indices[e] ?? 0;
        if (context.excluded[j] === 1) continue;
        if (seen[j] === 0) {
          seen[j] = 1;
          touched.push(j);
        }
        sums[j] = (sums[j] ?? 0) + recency * (weights[e] ?? 0);
      }
    }
    const out = touched.map((item) => ({ item, score: sums[item] ?? 0 }));
    for (const j of touched) {
      sums[j] = 0;
      seen[j] = 0;
    }
    return bestFirst(out, n);
  },
};

const CONTENT_ITEMS = 10;
/** Postings the content source reads per request at most (ml-100k's whole index is far fewer). */
const CONTENT_POSTINGS = 50_000;

export const contentSource: RetrievalSource = {
  name: 'content',
  async retrieve(context, n) {
    const { snapshot, history } = context;
    const { dataset } = snapshot;
    const { postings, idf, norm } = snapshot.signals.content;
    // The profile: idf-weighted tokens of the recent items, then each item's overlap with it.
    const profile = new Map<number, number>();
    for (let k = 0; k < Math.min(CONTENT_ITEMS, history.length); k++) {
      const h = history[history.length - 1 - k] ?? 0;
      for (const t of row(dataset.itemFeatures, h)) {
        const w = idf[t] ?? 0;
        if (w > 0) profile.set(t, (profile.get(t) ?? 0) + w);
      }
    }
    // Posting lists of a large catalog run to hundreds of thousands of items: the sums go into a
    // dense scratch array (every term is > 0, so 0 means untouched) and a heap keeps the top n.
    // The strongest tokens first, and at most CONTENT_POSTINGS postings read, a token's list
    // whole or not at all: in a catalog of millions a common token's list alone is tens of
    // thousands of items, each adding little.
    const sums = scratchSums(snapshot.signals.content, dataset.itemIds.length);
    const touched: number[] = [];
    const { offsets, indices } = postings;
    const tokens = Array.from(profile, ([t, weight]) => ({ t, w: weight * (idf[t] ?? 0) })).sort((a, b) => b.w - a.w || a.t - b.t);
    let budget = CONTENT_POSTINGS;
    for (const { t, w } of tokens) {
      const from = offsets[t] ?? 0;
      const to = offsets[t + 1] ?? 0;
      if (to - from > budget) continue;
      budget -= to - from;
      for (let e = from; e < to; e++) {
        const i = indices[e] ?? 0;
        if (context.excluded[i] === 1) continue;
        const before = sums[i] ?? 0;
        if (before === 0) touched.push(i);
        sums[i] = before + w * (norm[i] ?? 0);
      }
    }
    const heapScores = new Float64Array(n);
    const heapItems = new Int32Array(n);
    let size = 0;
    for (const i of touched) size = offerTopK(heapScores, heapItems, size, n, sums[i] ?? 0, i);
    sortTopK(heapScores, heapItems, size);
    const out = Array.from(heapItems.subarray(0, size), (item) => ({ item, score: sums[item] ?? 0 }));
    for (const i of touched) sums[i] = 0;
    return out;
  },
};

/**
 * Per-item scratch of a source, one per snapshot signal (`owner`), zero between requests: a source
 * runs synchronously, so requests never share it at once.
 */
const sumScratch = new WeakMap<object, Float64Array>();
const seenScratch = new WeakMap<object, Uint8Array>();

function scratchOf<T extends Float64Array | Uint8Array>(cache: WeakMap<object, T>, owner: object, items: number, make: (items: number) => T): T {
  let scratch = cache.get(owner);
  if (scratch === undefined || scratch.length < items) {
    scratch = make(items);
    cache.set(owner, scratch);
  }
  return scratch;
}

function scratchSums(owner: object, items: number): Float64Array {
  return scratchOf(sumScratch, owner, items, (n) => new Float64Array(n));
}

function scratchSeen(owner: object, items: number): Uint8Array {
  return scratchOf(seenScratch, owner, items, (n) => new Uint8Array(n));
}

export const trendingSource: RetrievalSource = {
  name: 'trending',
  async retrieve(context, n) {
    const { trending } = context.snapshot.signals;
    return byCategoryOrAll(context, trending.items, trending.byCategory, trending.score, n);
  },
};

export const popularSource: RetrievalSource = {
  name: 'popular',
  async retrieve(context, n) {
    const { popular } = context.snapshot.signals;
    return byCategoryOrAll(context, popular.items, popular.byCategory, popular.score, n);
  },
};

export const freshSource: RetrievalSource = {
  name: 'fresh',
  async retrieve(context, n) {
    const { fresh } = context.snapshot.signals;
    return fromList(fresh.items, fresh.score, n, context.excluded);
  },
};

function byCategoryOrAll(context: RetrievalContext, all: Int32Array, byCategory: readonly Int32Array[], score: ArrayLike<number>, n: number): Scored[] {
  if (context.categories === undefined || context.categories.length === 0) return fromList(all, score, n, context.excluded);
  const merged = new Map<number, number>();
  for (const c of context.categories) {
    for (const s of fromList(byCategory[c] ?? new Int32Array(0), score, n, context.excluded)) merged.set(s.item, s.score);
  }
  return bestOf(merged, n);
}

function bestOf(scores: Map<number, number>, n: number): Scored[] {
  const out: Scored[] = [];
  scores.forEach((score, item) => out.push({ item, score }));
  return bestFirst(out, n);
}

/** The n best, best first, ties to the lower item (the comparator returns −1/1: no boxed difference). */
function bestFirst(scored: Scored[], n: number): Scored[] {
  return scored.sort((a, b) => (a.score > b.score ? -1 : a.score < b.score ? 1 : a.item - b.item)).slice(0, n);
}

/** Rejects with a message naming the source when `work` outlasts `ms`. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
