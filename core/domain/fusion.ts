// Fusion of the candidate lists that several retrieval sources (ANN, co-visitation, content,
// trending, fresh) return for one request, into one de-duplicated list for the ranker.
//
// * Reciprocal rank fusion (Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms
//   Condorcet and individual Rank Learning Methods", SIGIR 2009): score = Σ_s w_s / (k + rank_s).
//   It uses ranks only, so sources whose scores live on different scales (cosine, counts,
//   recency) mix without calibration; k = 60 is the paper's value.
// * Quota merge: round-robin over the sources with a cap per source, for when each source must be
//   guaranteed (and limited to) a share of the candidates, whatever the others score.
// Pure: no runtime imports.

import { NEW_ARRAYS } from './arrays.ts';
import type { ArraySource } from './arrays.ts';

/**
 * One candidate of one source's list; lists are best first. `K` is the item's key: its id, or a
 * dense index (the core fuses item indexes: no string per candidate).
 */
export interface SourceCandidate<K = string> {
  item: K;
  score: number;
}

export interface SourceList<K = string> {
  source: string;
  candidates: readonly SourceCandidate<K>[];
}

/**
 * A source's list as two columns of one length, best first: no object per candidate (the core's
 * lists: item indexes in an Int32Array, scores in a Float64Array).
 */
export interface SourceColumns<K = string> {
  source: string;
  items: ArrayLike<K>;
  scores: ArrayLike<number>;
}

function columnsOf<K>(list: SourceList<K> | SourceColumns<K>): SourceColumns<K> {
  if (!('candidates' in list)) {
    if (list.items.length !== list.scores.length) {
      throw new RangeError(`source '${list.source}' has ${list.items.length} items and ${list.scores.length} scores; give one score per item`);
    }
    return list;
  }
  const { candidates } = list;
  return { source: list.source, items: candidates.map((c) => c.item), scores: candidates.map((c) => c.score) };
}

export interface FusedCandidate<K = string> {
  item: K;
  score: number;
  /** Every source whose list holds the item, in the order of `lists`. */
  sources: string[];
  /** Each of those sources' own score for the item (its best-ranked entry when listed twice). */
  sourceScores: Record<string, number>;
}

/** The RRF constant of Cormack et al. 2009: damps the weight of the very top ranks. */
export const RRF_DEFAULT_K = 60;

export interface RrfOptions {
  /** Rank damping constant, > 0; default RRF_DEFAULT_K = 60. */
  k?: number;
  /** Weight per source, ≥ 0; a source not named weighs 1. */
  weights?: Readonly<Record<string, number>>;
  /**
   * Where the fusion's arrays come from (its answer holds them): the core's per-request scratch
   * (core/serving/scratch.ts). Default: new arrays.
   */
  arrays?: ArraySource;
}

function checkDistinctSources(lists: readonly { source: string }[]): void {
  const seen = new Set<string>();
  for (const { source } of lists) {
    if (seen.has(source)) throw new RangeError(`source '${source}' appears twice in the lists to fuse; concatenate its candidates into one list first`);
    seen.add(source);
  }
}

/** Adds `source` to a fused candidate unless the source already listed it (higher up). */
function recordSource<K>(fused: FusedCandidate<K>, source: string, score: number): boolean {
  // `sources` holds the same names as `sourceScores`' keys, a few at most: a faster test.
  if (fused.sources.includes(source)) return false;
  fused.sources.push(source);
  fused.sourceScores[source] = score;
  return true;
}

function newFused<K>(item: K): FusedCandidate<K> {
  return { item, score: 0, sources: [], sourceScores: {} };
}

/**
 * A fusion's answer without an object per item, for callers that need the candidate objects of a
 * few items only (the core ranks 1,000 fused items and explains the 20 it returns).
 */
export interface Fused<K = string> {
  /** Distinct items, best first. */
  readonly items: readonly K[];
  /** Fusion score of each, in `items` order. */
  readonly scores: Float64Array;
  /** The FusedCandidate of `items[rank]`, built when asked for. */
  candidate(rank: number): FusedCandidate<K>;
}

/**
 * Reciprocal rank fusion: score(item) = Σ over the sources that list it of w_s / (k + rank_s),
 * rank counted from 1 in each list (an item a source lists twice counts at its better rank).
 * Returns every distinct item, best first; equal scores keep the order of first appearance when
 * reading `lists` in order, each list best first.
 */
export function reciprocalRankFusion<K = string>(lists: readonly SourceList<K>[], options: RrfOptions = {}): FusedCandidate<K>[] {
  const fused = reciprocalRankFusionOf(lists, options);
  return fused.items.map((_, rank) => fused.candidate(rank));
}

/**
 * `reciprocalRankFusion` in typed arrays: per distinct item (a slot, in order of first appearance)
 * its score and, per source, whether the source lists it and the score it gave.
 * The same additions in the same order, so the same scores and order as the objects' version.
 */
export function reciprocalRankFusionOf<K = string>(given: readonly (SourceList<K> | SourceColumns<K>)[], options: RrfOptions = {}): Fused<K> {
  const k = options.k ?? RRF_DEFAULT_K;
  if (!(k > 0 && k < Infinity)) throw new RangeError(`RRF k must be a positive finite number, got ${k}`);
  checkDistinctSources(given);
  const lists = given.map(columnsOf);
  const weights = options.weights ?? {};
  const arrays = options.arrays ?? NEW_ARRAYS;
  const sources = lists.length;
  const most = lists.reduce((n, l) => n + l.items.length, 0);
  // Item indexes (the core's lists) find their slot in a typed array; other keys in a Map.
  const dense = denseSlots(lists, arrays);
  const slotOf = dense === undefined ? new Map<K, number>() : undefined;
  const slotItems: K[] = [];
  const slotScore = arrays.float64('fusion.slotScore', most);
  // Per slot and source, 1 + the rank where the source first lists the item (0: not listed); its
  // score is read from the list when a candidate is built.
  const listedAt = arrays.int32('fusion.listedAt', most * sources);
  for (let s = 0; s < sources; s++) {
    const { source, items: listItems } = lists[s] as SourceColumns<K>;
    const w = Object.prototype.hasOwnProperty.call(weights, source) ? (weights[source] as number) : 1;
    if (!(w >= 0 && w < Infinity)) throw new RangeError(`RRF weight of source '${source}' must be a finite number >= 0, got ${w}`);
    for (let r = 0; r < listItems.length; r++) {
      const item = listItems[r] as K;
      let slot = dense === undefined ? slotOf?.get(item) : (dense[item as number] ?? 0) - 1;
      if (slot === undefined || slot < 0) {
        slot = slotItems.length;
        if (dense === undefined) slotOf?.set(item, slot);
        else dense[item as number] = slot + 1;
        slotItems.push(item);
      }
      const at = slot * sources + s;
      // A source counts an item once, at its better (first) rank.
      if (listedAt[at] !== 0) continue;
      listedAt[at] = r + 1;
      slotScore[slot] = (slotScore[slot] as number) + w / (k + r + 1);
    }
  }
  // Best first; equal scores in slot order, which is the order of first appearance.
  // Plain loops, no iterators: ~1,500 items per request in the core.
  const count = slotItems.length;
  const order = arrays.int32('fusion.order', count);
  for (let i = 0; i < count; i++) order[i] = i;
  sortSlots(order, slotScore, 0, count, 2 * Math.ceil(Math.log2(count + 1)));
  const scores = arrays.float64('fusion.scores', count);
  const items = new Array<K>(count);
  for (let rank = 0; rank < count; rank++) {
    const slot = order[rank] as number;
    scores[rank] = slotScore[slot] as number;
    items[rank] = slotItems[slot] as K;
  }
  return {
    items,
    scores,
    candidate(rank: number): FusedCandidate<K> {
      const slot = order[rank];
      if (slot === undefined) throw new RangeError(`rank ${rank} is outside 0..${order.length - 1}`);
      const fused = newFused(slotItems[slot] as K);
      fused.score = slotScore[slot] as number;
      lists.forEach(({ source, scores: listScores }, s) => {
        const at = listedAt[slot * sources + s] as number;
        if (at !== 0) recordSource(fused, source, listScores[at - 1] as number);
      });
      return fused;
    },
  };
}

/** Slots of items up to this index go in a typed array (larger ones in a Map). */
const DENSE_SLOT_ITEMS = 1 << 24;

/** 1 + the slot index per item, all 0 (none yet), when every item of the lists is an integer in [0, DENSE_SLOT_ITEMS); else undefined. */
function denseSlots<K>(lists: readonly SourceColumns<K>[], arrays: ArraySource): Int32Array | undefined {
  let max = -1;
  for (const { items } of lists) {
    for (let r = 0; r < items.length; r++) {
      const item = items[r];
      if (typeof item !== 'number' || !Number.isInteger(item) || item < 0 || item >= DENSE_SLOT_ITEMS) return undefined;
      if (item > max) max = item;
    }
  }
  return arrays.int32('fusion.slotOfItem', max + 1);
}

/** Whether slot a goes before slot b: the higher score, then the earlier slot. */
function before(score: Float64Array, a: number, b: number): boolean {
  const sa = score[a] as number;
  const sb = score[b] as number;
  return sa > sb || (sa === sb && a < b);
}

/**
 * Sorts order[lo, hi) best first (score descending, then slot ascending) in place: a quicksort with
 * the comparison inline, ~3× a comparator sort's speed on the core's ~1,650 slots. Insertion sort
 * below 16; past `depth` levels the comparator sort (introsort's guard).
 */
function sortSlots(order: Int32Array, score: Float64Array, lo: number, hi: number, depth: number): void {
  while (hi - lo > 16) {
    if (depth-- <= 0) {
      order.subarray(lo, hi).sort((a, b) => (before(score, a, b) ? -1 : before(score, b, a) ? 1 : 0));
      return;
    }
    const x = order[lo] as number;
    const y = order[(lo + hi) >>> 1] as number;
    const z = order[hi - 1] as number;
    const pivot = before(score, x, y) ? (before(score, y, z) ? y : before(score, x, z) ? z : x) : before(score, x, z) ? x : before(score, y, z) ? z : y;
    let i = lo;
    let j = hi - 1;
    while (i <= j) {
      while (before(score, order[i] as number, pivot)) i++;
      while (before(score, pivot, order[j] as number)) j--;
      if (i <= j) {
        const t = order[i] as number;
        order[i] = order[j] as number;
        order[j] = t;
        i++;
        j--;
      }
    }
    if (j + 1 - lo < hi - i) {
      sortSlots(order, score, lo, j + 1, depth);
      lo = i;
    } else {
      sortSlots(order, score, i, hi, depth);
      hi = j + 1;
    }
  }
  for (let i = lo + 1; i < hi; i++) {
    const v = order[i] as number;
    let j = i - 1;
    while (j >= lo && before(score, v, order[j] as number)) {
      order[j + 1] = order[j] as number;
      j--;
    }
    order[j + 1] = v;
  }
}

/** A list of fused candidates as a `Fused` (quotaMerge's answer, for callers that take either). */
export function fusedOf<K>(candidates: readonly FusedCandidate<K>[]): Fused<K> {
  return {
    items: candidates.map((c) => c.item),
    scores: Float64Array.from(candidates, (c) => c.score),
    candidate: (rank) => {
      const c = candidates[rank];
      if (c === undefined) throw new RangeError(`rank ${rank} is outside 0..${candidates.length - 1}`);
      return c;
    },
  };
}

export interface QuotaOptions {
  /** Most distinct items taken from each source; a source not named is unlimited. */
  quotas: Readonly<Record<string, number>>;
  /** Length of the merged list; default: until every source is exhausted or at its quota. */
  total?: number;
}

function checkCount(name: string, v: number): void {
  if (!(Number.isInteger(v) && v >= 0) && v !== Infinity) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
}

/**
 * Round-robin merge with a quota per source. Each round visits the sources in `lists` order and
 * takes each one's next item not already taken (an item already taken by an earlier source does
 * not use up this source's quota), while that source is under its quota; rounds repeat until
 * `total` items are taken or no source can give more. score = 1 / (rank in the merged list), rank
 * from 1. `sources` names every source whose list holds the item, including sources whose turn
 * never reached it, so explanations show all the evidence.
 */
export function quotaMerge<K = string>(lists: readonly SourceList<K>[], options: QuotaOptions): FusedCandidate<K>[] {
  const { quotas } = options;
  const total = options.total ?? Infinity;
  checkCount('quotaMerge total', total);
  checkDistinctSources(lists);
  const limit = lists.map(({ source }) => {
    const q = Object.prototype.hasOwnProperty.call(quotas, source) ? (quotas[source] as number) : Infinity;
    checkCount(`quota of source '${source}'`, q);
    return q;
  });
  const cursor = new Int32Array(lists.length);
  const taken = new Int32Array(lists.length);
  const byItem = new Map<K, FusedCandidate<K>>();
  const merged: FusedCandidate<K>[] = [];
  let progress = true;
  while (merged.length < total && progress) {
    progress = false;
    for (let s = 0; s < lists.length && merged.length < total; s++) {
      if ((taken[s] as number) >= (limit[s] as number)) continue;
      const { candidates } = lists[s] as SourceList<K>;
      let c = cursor[s] as number;
      while (c < candidates.length && byItem.has((candidates[c] as SourceCandidate<K>).item)) c++;
      if (c < candidates.length) {
        const fused = newFused((candidates[c] as SourceCandidate<K>).item);
        fused.score = 1 / (merged.length + 1);
        byItem.set(fused.item, fused);
        merged.push(fused);
        taken[s] = (taken[s] as number) + 1;
        c++;
        progress = true;
      }
      cursor[s] = c;
    }
  }
  // Attribute every source that lists a taken item, in `lists` order, with its best-ranked score.
  for (const { source, candidates } of lists) {
    for (const { item, score } of candidates) {
      const fused = byItem.get(item);
      if (fused !== undefined) recordSource(fused, source, score);
    }
  }
  return merged;
}
