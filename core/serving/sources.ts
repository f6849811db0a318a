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
import type { VectorFilter, VectorIndex } from '../retrieval/vector-index.ts';
import type { ServingSnapshot } from './snapshot.ts';

/** One candidate: an item index of the snapshot's dataset and the source's score. */
export interface Scored {
  item: number;
  score: number;
}

/**
 * A source's candidates, best first, as two columns of one length: item indexes of the snapshot's
 * dataset and the source's scores. No object per candidate: a request's sources return ~1,650.
 */
export interface Candidates {
  readonly items: Int32Array;
  readonly scores: Float64Array;
}

const NONE: Candidates = { items: new Int32Array(0), scores: new Float64Array(0) };

/** Candidates as objects (for tests and callers that want them). */
export function scoredOf(candidates: Candidates): Scored[] {
  return Array.from(candidates.items, (item, k) => ({ item, score: candidates.scores[k] ?? 0 }));
}

/**
 * The n best of the (score, item) pairs offered to it (scores not NaN), ties to the lower item: a
 * k-entry heap (offerTopK), read back best first as Candidates.
 */
class TopN {
  private readonly scores: Float64Array;
  private readonly items: Int32Array;
  private size = 0;

  constructor(private readonly n: number) {
    this.scores = new Float64Array(n);
    this.items = new Int32Array(n);
  }

  offer(score: number, item: number): void {
    // Full: a score below the worst kept cannot enter (a tie may, by item order).
    if (this.size === this.n && !(score >= (this.scores[0] ?? -Infinity))) return;
    this.size = offerTopK(this.scores, this.items, this.size, this.n, score, item);
  }

  /** The kept pairs, best first (call once). */
  best(): Candidates {
    sortTopK(this.scores, this.items, this.size);
    return { items: this.items.subarray(0, this.size), scores: this.scores.subarray(0, this.size) };
  }
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
  retrieve(context: RetrievalContext, n: number): Promise<Candidates>;
  /**
   * What the source can answer without the dependency that failed (or is skipped while failing),
   * synchronously from the request's own data; undefined when nothing. Its name goes in the report.
   */
  readonly fallback?: { name: string; retrieve(context: RetrievalContext, n: number): Candidates | undefined };
}

/**
 * The `n` best of `score` over items not excluded (and > −∞), best first, ties to the lower item.
 * `among` limits it to those items (a model's subset of a large catalog).
 *
 * When the items fit in 2^21 and there are not many more of them than `n` (the usual case: 1,000
 * of a few thousand), each (score, item) becomes one float64 that orders like them and the lot
 * goes through the typed array's sort with no comparator (in the serving profile, the two-tower
 * and item-item sources' selections took ~0.39 ms per request this way, ~0.49 with the heap).
 * Otherwise a heap, O(items · log n).
 */
export function topScored(score: Float32Array, n: number, excluded: Uint8Array, among?: Int32Array): Candidates {
  if (n <= 0) return NONE;
  const count = among === undefined ? score.length : among.length;
  if (score.length <= PACKED_ITEMS && count <= Math.max(PACKED_SORT_UP_TO, 4 * n)) return topScoredBySort(score, n, excluded, count, among);
  if (score.length <= PACKED_ITEMS && among === undefined) {
    const above = aboveSampledThreshold(score, n, excluded);
    if (above !== undefined) return topScoredBySort(score, n, excluded, above.length, above);
  }
  const heapScores = new Float32Array(n);
  const top = new Int32Array(n);
  let size = 0;
  // Once the heap is full, most items fall below its worst: one comparison with that score in a
  // local skips them (a tie still goes to offerTopK, which orders ties by item).
  let floor = -Infinity;
  for (let k = 0; k < count; k++) {
    const i = among === undefined ? k : (among[k] ?? 0);
    const raw = score[i] ?? -Infinity;
    if (!(raw >= floor)) continue;
    const s = eligibleScore(score, excluded, i);
    if (s > -Infinity) {
      size = offerTopK(heapScores, top, size, n, s, i);
      if (size === n) floor = heapScores[0] ?? -Infinity;
    }
  }
  sortTopK(heapScores, top, size);
  return { items: top.slice(0, size), scores: Float64Array.from(top.subarray(0, size), (item) => score[item] ?? 0) };
}

/**
 * The items of `score` at or above a threshold that at least `n` eligible items reach, found from
 * a strided sample: a superset of the top n, about 1.5 n long. Two passes that mostly compare,
 * where a heap of n would take every item above its worst through a sift. Undefined when the
 * sample's guess leaves fewer than n (the caller then takes the heap).
 */
function aboveSampledThreshold(score: Float32Array, n: number, excluded: Uint8Array): Int32Array | undefined {
  const total = score.length;
  const stride = Math.max(1, Math.floor(total / SAMPLE_SIZE));
  // Negated, so that the partial ascending sort below puts the best first.
  const sample = new Float64Array(Math.ceil(total / stride));
  let sampled = 0;
  for (let i = 0; i < total; i += stride) {
    const s = eligibleScore(score, excluded, i);
    if (s > -Infinity) sample[sampled++] = -s;
  }
  // The sample's rank that n of `total` would have, with a margin for the sample's error.
  const rank = Math.ceil((n * sampled * SAMPLE_MARGIN) / total) + 8;
  if (rank >= sampled) return undefined;
  const threshold = -(sortKeys(sample.subarray(0, sampled), rank + 1)[rank] ?? Infinity);
  let out = new Int32Array(Math.ceil(n * SAMPLE_MARGIN * 1.5) + 64);
  let size = 0;
  for (let i = 0; i < total; i++) {
    if (!((score[i] ?? -Infinity) >= threshold) || excluded[i] === 1) continue;
    if (size === out.length) {
      const grown = new Int32Array(out.length * 2);
      grown.set(out);
      out = grown;
    }
    out[size++] = i;
  }
  return size >= n ? out.subarray(0, size) : undefined;
}

/** Items sampled to guess topScored's threshold. */
const SAMPLE_SIZE = 2_048;
/** The threshold is guessed at this many times n's share of the sample. */
const SAMPLE_MARGIN = 1.5;

/** Item i's score if topScored may return it (not excluded, > −∞, not NaN), else −∞: both of its ways use this rule. */
function eligibleScore(score: Float32Array, excluded: Uint8Array, i: number): number {
  const s = score[i] ?? -Infinity;
  return excluded[i] === 1 || !(s > -Infinity) ? -Infinity : s;
}

/** Item indexes below 2^21 leave 32 bits of a float64's 53 for the score's order. */
const PACKED_ITEMS = 2 ** 21;
/** Up to this many items (or 4 n) a full sort beats the heap. */
const PACKED_SORT_UP_TO = 16_384;

let sharedKeys = new Float64Array(0);
/** Up to this many keys (512 KB) the shared array is kept. */
const SHARED_KEYS = 1 << 16;

/**
 * Room for `count` packed keys, shared by every call: each fills and sorts them and is done with
 * them before it returns. A fresh ~13 KB array per list (two lists a request) was memory outside
 * V8's heap, which under load brings on full collections.
 */
function keyScratch(count: number): Float64Array {
  if (count > SHARED_KEYS) return new Float64Array(count);
  if (sharedKeys.length < count) sharedKeys = new Float64Array(Math.min(SHARED_KEYS, Math.max(count, 2 * sharedKeys.length)));
  return sharedKeys.subarray(0, count);
}

/** A Float32Array's bits, to make keys from without converting each score. */
function bitsOf(scores: Float32Array): Uint32Array {
  return new Uint32Array(scores.buffer, scores.byteOffset, scores.length);
}

/**
 * The float64 that sorts (score descending, then item ascending) for the bits of a float32 score
 * that is not NaN: (2^32 − 1 − order) · 2^21 + item, where order maps the bits to a uint32 that
 * sorts like the score (sign bit flipped for ≥ 0, all bits for < 0); −0 is +0.
 */
function packedKey(bits: number, item: number): number {
  const b = bits === 0x80000000 ? 0 : bits;
  return (b >= 0x80000000 ? b : 0x7fffffff - b) * PACKED_ITEMS + item;
}

/** The item of a packed key (a division and a floor: a float64 `%` is a call into the runtime). */
function itemOf(key: number): number {
  return key - Math.floor(key / PACKED_ITEMS) * PACKED_ITEMS;
}

/**
 * Every index of `scores`, best score first, ties in index order, NaNs last (in index order): the
 * ranker's order of its candidates. Packed keys and the native sort as in topScored (up to 2^21
 * indexes; a comparator sort beyond).
 */
export function descendingOrder(scores: Float32Array): Int32Array {
  const n = scores.length;
  const order = new Int32Array(n);
  const nans: number[] = [];
  let size = 0;
  if (n <= PACKED_ITEMS) {
    const keys = keyScratch(n);
    const bits = bitsOf(scores);
    for (let k = 0; k < n; k++) {
      const s = scores[k] ?? 0;
      if (s === s) keys[size++] = packedKey(bits[k] ?? 0, k);
      else nans.push(k);
    }
    const sorted = sortKeys(keys.subarray(0, size));
    for (let k = 0; k < size; k++) order[k] = itemOf(sorted[k] ?? 0);
  } else {
    for (let k = 0; k < n; k++) {
      const s = scores[k] ?? 0;
      if (s === s) order[size++] = k;
      else nans.push(k);
    }
    order.subarray(0, size).sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || a - b);
  }
  order.set(nans, size);
  return order;
}

/**
 * Sorts packed keys (exact float64 integers, no NaN, no −0) ascending in place and returns them
 * (any float64s but NaN come out in order too: topScored's sample is negated scores).
 * A quicksort on the typed array itself: V8's own `Float64Array#sort` boxes every element to
 * compare it and took ~140 µs for 1,682 keys where this takes ~60. Median-of-three pivots,
 * insertion sort below 16 keys, and past 2·log₂(n) levels the native sort (introsort's guard).
 *
 * With `first` < keys.length, only the first `first` positions are sorted (they hold the `first`
 * smallest keys, in order); the rest hold the others in no order. A partition that lies wholly
 * past `first` is left as it is: O(n + first · log first) instead of O(n log n).
 */
export function sortKeys(keys: Float64Array, first = keys.length): Float64Array {
  quicksort(keys, 0, keys.length, 2 * Math.ceil(Math.log2(keys.length + 1)), first);
  return keys;
}

function quicksort(a: Float64Array, lo: number, hi: number, depth: number, first: number): void {
  while (hi - lo > 16 && lo < first) {
    if (depth-- <= 0) {
      a.subarray(lo, hi).sort();
      return;
    }
    const x = a[lo] ?? 0;
    const y = a[(lo + hi) >>> 1] ?? 0;
    const z = a[hi - 1] ?? 0;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi - 1;
    while (i <= j) {
      while ((a[i] ?? 0) < pivot) i++;
      while ((a[j] ?? 0) > pivot) j--;
      if (i <= j) {
        const t = a[i] ?? 0;
        a[i] = a[j] ?? 0;
        a[j] = t;
        i++;
        j--;
      }
    }
    // Keys at i and after are not needed when they all lie past `first`.
    if (i >= first) {
      hi = j + 1;
      continue;
    }
    // The smaller side by recursion, the larger by the loop: the stack stays O(log n).
    if (j + 1 - lo < hi - i) {
      quicksort(a, lo, j + 1, depth, first);
      lo = i;
    } else {
      quicksort(a, i, hi, depth, first);
      hi = j + 1;
    }
  }
  if (lo >= first) return;
  for (let i = lo + 1; i < hi; i++) {
    const v = a[i] ?? 0;
    let j = i - 1;
    while (j >= lo && (a[j] ?? 0) > v) {
      a[j + 1] = a[j] ?? 0;
      j--;
    }
    a[j + 1] = v;
  }
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
 * topScored by sorting packed keys (packedKey): ascending keys are descending scores, then
 * ascending items; every key is an exact float64 integer < 2^53.
 */
function topScoredBySort(score: Float32Array, n: number, excluded: Uint8Array, count: number, among?: Int32Array): Candidates {
  const keys = keyScratch(count);
  const bits = bitsOf(score);
  let size = 0;
  for (let k = 0; k < count; k++) {
    const i = among === undefined ? k : (among[k] ?? 0);
    const s = eligibleScore(score, excluded, i);
    if (s > -Infinity) keys[size++] = packedKey(bits[i] ?? 0, i);
  }
  const count2 = Math.min(n, size);
  const sorted = sortKeys(keys.subarray(0, size), count2);
  const items = new Int32Array(count2);
  const scores = new Float64Array(count2);
  for (let k = 0; k < count2; k++) {
    const item = itemOf(sorted[k] ?? 0);
    items[k] = item;
    scores[k] = score[item] ?? 0;
  }
  return { items, scores };
}

/** The first n of `list` (already best first) not excluded, with their scores. */
function fromList(list: Int32Array, score: ArrayLike<number>, n: number, excluded: Uint8Array): Candidates {
  const items = new Int32Array(Math.min(n, list.length));
  const scores = new Float64Array(items.length);
  let size = 0;
  for (let k = 0; k < list.length && size < items.length; k++) {
    const i = list[k] ?? 0;
    if (excluded[i] === 1) continue;
    items[size] = i;
    scores[size++] = score[i] ?? 0;
  }
  return size === items.length ? { items, scores } : { items: items.subarray(0, size), scores: scores.subarray(0, size) };
}

/**
 * Two-tower ANN through the vector index. With the embedded index, a request that already scored
 * every item (`twoTowerScores`, catalogs up to `exactScoresUpTo`) takes its exact top n instead of
 * walking the graph: the graph holds the same snapshot embeddings, so the answer is the one an
 * exact index would give (recall 1), and a heap over the scores costs less than a walk with
 * ef ≥ n (the source's stage: 1.0 ms against 2.9 for n = 1,000 of ml-100k's 1,682 items). Milvus
 * is always asked: a user who configured it gets its search, filters pushed down.
 */
/**
 * The two-tower source's answer from the request's scores of every item, when it has them (a
 * catalog of up to `exactScoresUpTo` items): the exact top `n` with their inner products, what an
 * index search would give at recall 1. Undefined without those scores.
 */
export function exactTwoTower(context: RetrievalContext, n: number): Candidates | undefined {
  const { snapshot, twoTowerScores, vector } = context;
  if (twoTowerScores === undefined || vector === undefined) return undefined;
  if (n <= 0) return NONE;
  const { embeddings, dim } = snapshot;
  const top = topScored(twoTowerScores, n, context.excluded);
  // Inner products as the index would report them; the z-scores only order.
  const products = context.twoTowerInnerProducts;
  const { items, scores } = top;
  for (let k = 0; k < items.length; k++) {
    const item = items[k] ?? 0;
    if (products !== undefined) {
      scores[k] = products[item] ?? 0;
      continue;
    }
    let s = 0;
    for (let d = 0, o = item * dim; d < dim; d++) s += (vector[d] as number) * (embeddings[o + d] as number);
    scores[k] = s;
  }
  return top;
}

export function twoTowerSource(index: VectorIndex): RetrievalSource {
  return {
    name: 'two-tower',
    // The vector index failing (Milvus away): the request's exact scores give the same list.
    fallback: { name: 'exact scores of every item', retrieve: exactTwoTower },
    async retrieve(context, n) {
      if (context.vector === undefined || n <= 0) return NONE;
      if (index.kind === 'hnsw') {
        const exact = exactTwoTower(context, n);
        if (exact !== undefined) return exact;
      }
      const { snapshot } = context;
      const { dataset } = snapshot;
      const hits = await index.search(context.vector, n, context.filter);
      const items = new Int32Array(hits.length);
      const scores = new Float64Array(hits.length);
      let size = 0;
      for (const hit of hits) {
        const i = dataset.itemIndex.get(hit.id);
        if (i === undefined || context.excluded[i] === 1) continue;
        items[size] = i;
        scores[size++] = hit.score;
      }
      return { items: items.subarray(0, size), scores: scores.subarray(0, size) };
    },
  };
}

export const itemItemSource: RetrievalSource = {
  name: 'item-item',
  async retrieve(context, n) {
    const { snapshot, history } = context;
    if (history.length === 0) return NONE;
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
    const touched = scratchTouched(snapshot.signals.coVisitation, snapshot.dataset.itemIds.length);
    let count = 0;
    if (n <= 0) return NONE;
    for (let k = 0; k < Math.min(RECENT_ITEMS, history.length); k++) {
      const h = history[history.length - 1 - k] ?? 0;
      const recency = 1 / (1 + k / 5);
      for (let e = neighbours.offsets[h] ?? 0; e < (neighbours.offsets[h + 1] ?? 0); e++) {
        const j = neighbours.indices[e] ?? 0;
        if (context.excluded[j] === 1) continue;
        if (seen[j] === 0) {
          seen[j] = 1;
          touched[count++] = j;
        }
        sums[j] = (sums[j] ?? 0) + recency * (weights[e] ?? 0);
      }
    }
    // The n best, then the scratch zeroed again.
    const top = new TopN(n);
    for (let k = 0; k < count; k++) {
      const j = touched[k] ?? 0;
      top.offer(sums[j] ?? 0, j);
      sums[j] = 0;
      seen[j] = 0;
    }
    return top.best();
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
    if (n <= 0) return NONE;
    const sums = scratchSums(snapshot.signals.content, dataset.itemIds.length);
    const touched = scratchTouched(snapshot.signals.content, dataset.itemIds.length);
    let count = 0;
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
        if (before === 0) touched[count++] = i;
        sums[i] = before + w * (norm[i] ?? 0);
      }
    }
    const top = new TopN(n);
    for (let k = 0; k < count; k++) {
      const i = touched[k] ?? 0;
      top.offer(sums[i] ?? 0, i);
      sums[i] = 0;
    }
    return top.best();
  },
};

/**
 * Per-item scratch of a source, one per snapshot signal (`owner`), zero between requests: a source
 * runs synchronously, so requests never share it at once.
 */
const sumScratch = new WeakMap<object, Float64Array>();
const seenScratch = new WeakMap<object, Uint8Array>();
const touchedScratch = new WeakMap<object, Int32Array>();

function scratchOf<T extends Float64Array | Uint8Array | Int32Array>(cache: WeakMap<object, T>, owner: object, items: number, make: (items: number) => T): T {
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

/** Room for the items a source touched, each once (what is past its count is stale). */
function scratchTouched(owner: object, items: number): Int32Array {
  return scratchOf(touchedScratch, owner, items, (n) => new Int32Array(n));
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

function byCategoryOrAll(context: RetrievalContext, all: Int32Array, byCategory: readonly Int32Array[], score: ArrayLike<number>, n: number): Candidates {
  if (context.categories === undefined || context.categories.length === 0) return fromList(all, score, n, context.excluded);
  if (n <= 0) return NONE;
  // Each category's first n, merged: the n best of them (ties to the lower item), an item once.
  const merged = new Set<number>();
  const top = new TopN(n);
  for (const c of context.categories) {
    const { items } = fromList(byCategory[c] ?? new Int32Array(0), score, n, context.excluded);
    for (const item of items) {
      if (merged.has(item)) continue;
      merged.add(item);
      top.offer(score[item] ?? 0, item);
    }
  }
  return top.best();
}

/** Rejects with a message naming the source when `work` outlasts `ms`. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
