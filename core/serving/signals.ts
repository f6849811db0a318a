// What the non-model retrieval sources read, computed once per snapshot from the interaction
// table: time-decayed item-to-item co-visitation, a TF-IDF content index, trending (time-decayed
// positives, overall and per category), fresh items and plain popularity.
//
// Time is measured against the snapshot's clock (its latest event), not the wall clock: a catalog
// replayed from old data (MovieLens is from 1998) still has a "recent" past, and decays compare
// items with each other, which a common factor does not change.

import type { Csr, Dataset } from '../../training/data/dataset.ts';
import { row } from '../../training/data/dataset.ts';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export interface SignalOptions {
  /** Half-life of a co-visitation's weight. Default 30 days. */
  coVisitationHalfLifeMs?: number;
  /** Each positive is paired with this many of the user's previous positives. Default 5. */
  coVisitationWindow?: number;
  /** Neighbours kept per item. Default 50. */
  coVisitationNeighbours?: number;
  /** Half-life of the trending counts. Default 1 day. */
  trendingHalfLifeMs?: number;
  /** Items published within this long before the clock are fresh. Default 14 days. */
  freshWindowMs?: number;
  /** Length of the precomputed trending, popular and fresh lists. Default 1,000. */
  listLength?: number;
  /** Content tokens carried by more than this share of the catalog are not indexed (no signal, long posting lists). Default 0.2. */
  maxTokenShare?: number;
}

/** Per item, its strongest co-visited items, best first, with cosine-normalised weights. */
export interface CoVisitation {
  neighbours: Csr;
  weights: Float32Array;
}

export interface ContentIndex {
  /** Per token, the items carrying it (an inverted index). Tokens over `maxTokenShare` are empty. */
  postings: Csr;
  idf: Float32Array;
  /** Per item, 1 / sqrt(indexed tokens), so long descriptions do not win by length. */
  norm: Float32Array;
}

/** A precomputed ranking: items best first and a score per item index. */
export interface RankedList {
  items: Int32Array;
  score: Float64Array;
}

export interface Signals {
  /** The snapshot's clock: one millisecond after its latest event (epoch ms). */
  clock: number;
  coVisitation: CoVisitation;
  content: ContentIndex;
  /** Time-decayed positives: `score` per item, `items` overall, `byCategory` per category index. */
  trending: RankedList & { byCategory: Int32Array[] };
  /** Positives per item (all time), overall and per category. */
  popular: RankedList & { byCategory: Int32Array[] };
  /** Items published recently (or never interacted with, when the catalog has no publish times), newest first; score in (0, 1]. */
  fresh: RankedList;
  /** Logged impressions per item: a fresh item shown often has had its chance. */
  impressions: Float64Array;
}

export function buildSignals(dataset: Dataset, positives: Int32Array, clock: number, options: SignalOptions = {}): Signals {
  const listLength = options.listLength ?? 1000;
  const trendingScore = decayedCounts(dataset, positives, clock, options.trendingHalfLifeMs ?? DAY_MS);
  const popularScore = new Float64Array(dataset.itemIds.length);
  for (const r of positives) {
    const i = dataset.interactions.item[r] ?? 0;
    popularScore[i] = (popularScore[i] ?? 0) + 1;
  }
  const impressions = impressionCounts(dataset);
  return {
    clock,
    coVisitation: coVisitationGraph(dataset, positives, clock, options),
    content: contentIndex(dataset, options.maxTokenShare ?? 0.2),
    // Ties (items whose decayed counts are all but gone) go to the all-time most popular.
    trending: { ...rankBy(trendingScore, listLength, popularScore), byCategory: perCategory(dataset, trendingScore, listLength, popularScore) },
    popular: { ...rankBy(popularScore, listLength), byCategory: perCategory(dataset, popularScore, listLength) },
    fresh: freshItems(dataset, popularScore, impressions, clock, options.freshWindowMs ?? 14 * DAY_MS, listLength),
    impressions,
  };
}

/** Float64: a count decayed over months (2^-150 and less) would underflow float32 to 0. */
function decayedCounts(dataset: Dataset, positives: Int32Array, clock: number, halfLifeMs: number): Float64Array {
  const out = new Float64Array(dataset.itemIds.length);
  const { item, timestamp } = dataset.interactions;
  for (const r of positives) {
    const i = item[r] ?? 0;
    out[i] = (out[i] ?? 0) + 2 ** (-Math.max(0, clock - (timestamp[r] ?? clock)) / halfLifeMs);
  }
  return out;
}

function impressionCounts(dataset: Dataset): Float64Array {
  const out = new Float64Array(dataset.itemIds.length);
  const impression = dataset.eventTypes.findIndex((t) => t.name === 'impression');
  if (impression < 0) return out;
  const { type, item, length } = dataset.interactions;
  for (let r = 0; r < length; r++) {
    if (type[r] !== impression) continue;
    const i = item[r] ?? 0;
    out[i] = (out[i] ?? 0) + 1;
  }
  return out;
}

/** Items with a positive score (or tie-break), best first (ties: higher `tieBreak`, then lower index), at most `limit`. */
export function rankBy(score: Float64Array, limit: number, tieBreak?: Float64Array): RankedList {
  const order: number[] = [];
  for (let i = 0; i < score.length; i++) if ((score[i] ?? 0) > 0 || (tieBreak?.[i] ?? 0) > 0) order.push(i);
  order.sort(byScore(score, tieBreak));
  return { items: Int32Array.from(order.slice(0, limit)), score };
}

function byScore(score: Float64Array, tieBreak?: Float64Array): (a: number, b: number) => number {
  return (a, b) => (score[b] ?? 0) - (score[a] ?? 0) || (tieBreak ? (tieBreak[b] ?? 0) - (tieBreak[a] ?? 0) : 0) || a - b;
}

function perCategory(dataset: Dataset, score: Float64Array, limit: number, tieBreak?: Float64Array): Int32Array[] {
  const lists: number[][] = dataset.categoryNames.map(() => []);
  const { offsets, indices } = dataset.itemCategories;
  for (let i = 0; i < dataset.itemIds.length; i++) {
    if (!((score[i] ?? 0) > 0 || (tieBreak?.[i] ?? 0) > 0)) continue;
    for (let k = offsets[i] ?? 0; k < (offsets[i + 1] ?? 0); k++) lists[indices[k] ?? 0]?.push(i);
  }
  return lists.map((items) => {
    items.sort(byScore(score, tieBreak));
    return Int32Array.from(items.slice(0, limit));
  });
}

/**
 * Fresh items: published within `windowMs` before the clock, scored by recency and by how little
 * they have been shown (1 / (1 + impressions / 100)). A catalog without publish times has no
 * notion of new, so its items with no positives yet stand in (cold start), all scored alike.
 */
function freshItems(dataset: Dataset, positives: Float64Array, impressions: Float64Array, clock: number, windowMs: number, limit: number): RankedList {
  const { itemPublishedAt } = dataset;
  const score = new Float64Array(dataset.itemIds.length);
  let anyPublished = false;
  for (let i = 0; i < score.length; i++) if (Number.isFinite(itemPublishedAt[i] ?? Number.NaN)) anyPublished = true;
  for (let i = 0; i < score.length; i++) {
    const exposure = 1 / (1 + (impressions[i] ?? 0) / 100);
    if (anyPublished) {
      const age = clock - (itemPublishedAt[i] ?? Number.NaN);
      if (age >= -DAY_MS && age <= windowMs) score[i] = exposure * (1 - Math.max(0, age) / (2 * windowMs));
    } else if ((positives[i] ?? 0) === 0) {
      score[i] = exposure;
    }
  }
  return rankBy(score, limit);
}

/**
 * Co-visitation from the interaction table: each positive is paired with the same user's previous
 * `window` positives, weighted by 2^(−age / half-life) of the later one; an item's row keeps its
 * strongest `neighbours`, normalised by √(total_i · total_j) so popular items do not co-occur with
 * everything.
 */
function coVisitationGraph(dataset: Dataset, positives: Int32Array, clock: number, options: SignalOptions): CoVisitation {
  const halfLife = options.coVisitationHalfLifeMs ?? 30 * DAY_MS;
  const window = options.coVisitationWindow ?? 5;
  const keep = options.coVisitationNeighbours ?? 50;
  const n = dataset.itemIds.length;
  const { user, item, timestamp } = dataset.interactions;
  const pairs = new Map<number, number>();
  const total = new Float64Array(n);
  const recent: number[][] = [];
  for (const r of positives) {
    const u = user[r] ?? 0;
    const i = item[r] ?? 0;
    const w = 2 ** (-Math.max(0, clock - (timestamp[r] ?? clock)) / halfLife);
    const previous = (recent[u] ??= []);
    for (const j of previous) {
      if (j === i) continue;
      pairs.set(i * n + j, (pairs.get(i * n + j) ?? 0) + w);
      pairs.set(j * n + i, (pairs.get(j * n + i) ?? 0) + w);
      total[i] = (total[i] ?? 0) + w;
      total[j] = (total[j] ?? 0) + w;
    }
    previous.push(i);
    if (previous.length > window) previous.shift();
  }
  const rows: { j: number; w: number }[][] = Array.from({ length: n }, () => []);
  for (const [key, w] of pairs) {
    const i = Math.floor(key / n);
    const j = key - i * n;
    rows[i]?.push({ j, w: w / Math.sqrt((total[i] ?? 1) * (total[j] ?? 1)) });
  }
  const offsets = new Int32Array(n + 1);
  const indices: number[] = [];
  const weights: number[] = [];
  for (let i = 0; i < n; i++) {
    const list = (rows[i] ?? []).sort((a, b) => b.w - a.w || a.j - b.j).slice(0, keep);
    for (const { j, w } of list) {
      indices.push(j);
      weights.push(w);
    }
    offsets[i + 1] = indices.length;
  }
  return { neighbours: { offsets, indices: Int32Array.from(indices) }, weights: Float32Array.from(weights) };
}

function contentIndex(dataset: Dataset, maxShare: number): ContentIndex {
  const { itemFeatures, itemFeatureNames, itemIds } = dataset;
  const tokens = itemFeatureNames.length;
  const n = itemIds.length;
  const df = new Int32Array(tokens);
  for (const t of itemFeatures.indices) df[t] = (df[t] ?? 0) + 1;
  const limit = Math.max(1, Math.floor(maxShare * n));
  const idf = new Float32Array(tokens);
  for (let t = 0; t < tokens; t++) idf[t] = (df[t] ?? 0) > 0 && (df[t] ?? 0) <= limit ? Math.log(n / (df[t] ?? 1)) : 0;
  const offsets = new Int32Array(tokens + 1);
  for (let t = 0; t < tokens; t++) offsets[t + 1] = (offsets[t] ?? 0) + ((idf[t] ?? 0) > 0 ? (df[t] ?? 0) : 0);
  const fill = offsets.slice(0, -1);
  const indices = new Int32Array(offsets[tokens] ?? 0);
  const norm = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let count = 0;
    for (const t of row(itemFeatures, i)) {
      if (!((idf[t] ?? 0) > 0)) continue;
      indices[fill[t] ?? 0] = i;
      fill[t] = (fill[t] ?? 0) + 1;
      count++;
    }
    norm[i] = count > 0 ? 1 / Math.sqrt(count) : 0;
  }
  return { postings: { offsets, indices }, idf, norm };
}
