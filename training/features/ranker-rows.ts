// Training rows of the Wide&Deep ranker: (user, item, features as of the row's time, labels).
//
// Rows come from the interactions, in time order:
// * impression: every impression is a row; its labels are what followed it (attribution below).
// * positive: a positive event (weight > 0) that no earlier row of the same (user, item) is still
//   open for (browsing views, untracked surfaces, MovieLens ratings): click label 1.
// * explicit negative: a negative event (weight < 0, dislike/skip) that no open row absorbs: labels 0.
// * sampled: for every row whose click label is 1, `sampledNegatives` items the user had no
//   positive with before t, drawn by popularity (∝ positives before t + 1) or uniformly: labels 0.
//
// Attribution. The dataset carries no requestId, so an event is joined to a row of the same
// (user, item) whose last attributed event is at most `attributionWindowMs` (1 h) earlier: a click
// after an impression lands on the impression's row; add-to-cart, purchase and rating after a click
// land on the click's row. Slates share a timestamp per user, so this is the requestId join up to
// the (rare) same item shown twice within the window.
//
// Labels: click = 1 when any positive event is attributed to the row. engagement = 1 when an
// engaged event is: by default a rating of at least 4, or an event of any other type whose weight
// is at least 4 (add-to-cart, purchase and like under the default weights); see `isEngaged`.
// Labels may look ahead (that is what a label is); the row set and the features never do: whether
// a row exists depends only on events up to its own, and its features only on events before it.

import type { Dataset } from '../data/dataset.ts';
import { Rng } from '../data/prng.ts';
import { DENSE_SIZE, FeatureState } from './feature-state.ts';
import type { FeatureOptions } from './feature-state.ts';
import { WideBuilder } from './point-in-time.ts';
import type { FeatureRows } from './point-in-time.ts';

export const ROW_IMPRESSION = 0;
export const ROW_POSITIVE = 1;
export const ROW_EXPLICIT_NEGATIVE = 2;
export const ROW_SAMPLED = 3;

export const DEFAULT_ATTRIBUTION_WINDOW_MS = 3_600_000;
/** Rating at or above which a rating counts as engagement. */
export const ENGAGED_RATING = 4;
/** Weight at or above which an event of another type counts as engagement. */
export const ENGAGED_WEIGHT = 4;
/** Draws before a sampled negative gives up on finding an item the user has not had. */
const SAMPLE_TRIES = 16;

export type Engagement = (typeName: string, value: number, weight: number) => boolean;

/** Default engagement: rating ≥ 4, or any other type weighted ≥ 4. */
export const isEngaged: Engagement = (typeName, value, weight) =>
  typeName === 'rating' ? value >= ENGAGED_RATING : weight >= ENGAGED_WEIGHT;

export interface RankerRowOptions extends FeatureOptions {
  /** Sampled negatives per clicked row. Default 4 for data without impressions, 1 with. */
  sampledNegatives?: number;
  sampling?: 'popularity' | 'uniform';
  seed?: number;
  attributionWindowMs?: number;
  engagement?: Engagement;
}

export interface RankerRows extends FeatureRows {
  user: Int32Array;
  item: Int32Array;
  timestamp: Float64Array;
  position: Int16Array;
  /** ROW_IMPRESSION, ROW_POSITIVE, ROW_EXPLICIT_NEGATIVE or ROW_SAMPLED. */
  kind: Uint8Array;
  /** The interaction row the row is anchored at (a sampled row: its clicked row's anchor). */
  source: Int32Array;
  click: Uint8Array;
  engagement: Uint8Array;
  /** Optional list id per row (−1: none): rows of one list are ranked against each other (contiguous). */
  group?: Int32Array;
}

interface Anchors {
  source: number[];
  kind: number[];
  click: number[];
  engagement: number[];
}

/** Pass 1: which interactions anchor a row, and the labels attributed to each (see the header). */
function anchorRows(dataset: Dataset, windowMs: number, engaged: Engagement): Anchors {
  const { interactions, eventTypes, itemIds } = dataset;
  const impression = eventTypes.findIndex((t) => t.name === 'impression');
  const anchors: Anchors = { source: [], kind: [], click: [], engagement: [] };
  /** (user × items + item) → [anchor number, time of its last attributed event]. */
  const open = new Map<number, [number, number]>();
  const add = (r: number, kind: number, click: number, engagement: number, key: number, t: number) => {
    open.set(key, [anchors.source.length, t]);
    anchors.source.push(r);
    anchors.kind.push(kind);
    anchors.click.push(click);
    anchors.engagement.push(engagement);
  };
  for (let r = 0; r < interactions.length; r++) {
    const type = interactions.type[r] ?? 0;
    const weight = interactions.weight[r] ?? 0;
    const key = (interactions.user[r] ?? 0) * itemIds.length + (interactions.item[r] ?? 0);
    const t = interactions.timestamp[r] ?? 0;
    if (type === impression) {
      add(r, ROW_IMPRESSION, 0, 0, key, t);
      continue;
    }
    if (weight === 0) continue;
    const entry = open.get(key);
    // A positive after an explicit negative (a skip, then a click) opens a row of its own.
    const joins = entry !== undefined && t - entry[1] <= windowMs && !(weight > 0 && anchors.kind[entry[0]] === ROW_EXPLICIT_NEGATIVE);
    const attributed = joins ? entry : undefined;
    const name = eventTypes[type]?.name ?? '';
    const isEngagement = weight > 0 && engaged(name, interactions.value[r] ?? Number.NaN, weight) ? 1 : 0;
    if (attributed) {
      attributed[1] = t;
      if (weight > 0) {
        anchors.click[attributed[0]] = 1;
        if (isEngagement) anchors.engagement[attributed[0]] = 1;
      }
    } else if (weight > 0) {
      add(r, ROW_POSITIVE, 1, isEngagement, key, t);
    } else {
      add(r, ROW_EXPLICIT_NEGATIVE, 0, 0, key, t);
    }
  }
  return anchors;
}

/** Builds the ranker's training rows with point-in-time features (pass 2: one walk over time). */
export function buildRankerRows(dataset: Dataset, options: RankerRowOptions = {}): RankerRows {
  const { interactions, eventTypes, itemIds } = dataset;
  const impression = eventTypes.findIndex((t) => t.name === 'impression');
  let hasImpressions = false;
  for (let r = 0; r < interactions.length && !hasImpressions; r++) hasImpressions = interactions.type[r] === impression;
  const k = options.sampledNegatives ?? (hasImpressions ? 1 : 4);
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`sampledNegatives must be a non-negative integer, got ${k}`);
  const anchors = anchorRows(dataset, options.attributionWindowMs ?? DEFAULT_ATTRIBUTION_WINDOW_MS, options.engagement ?? isEngaged);
  let clicked = 0;
  for (const c of anchors.click) clicked += c;
  const capacity = anchors.source.length + k * (itemIds.length > 1 ? clicked : 0);
  const out = {
    user: new Int32Array(capacity), item: new Int32Array(capacity), timestamp: new Float64Array(capacity),
    position: new Int16Array(capacity), kind: new Uint8Array(capacity), source: new Int32Array(capacity),
    click: new Uint8Array(capacity), engagement: new Uint8Array(capacity), dense: new Float32Array(capacity * DENSE_SIZE),
  };
  const wide = new WideBuilder();
  const state = new FeatureState(dataset, options);
  const rng = new Rng(options.seed ?? 0, 'ranker-negatives');
  const uniform = options.sampling === 'uniform';
  let n = 0;
  const emit = (u: number, i: number, t: number, p: number, kind: number, source: number, click: number, engagement: number) => {
    out.user[n] = u;
    out.item[n] = i;
    out.timestamp[n] = t;
    out.position[n] = p;
    out.kind[n] = kind;
    out.source[n] = source;
    out.click[n] = click;
    out.engagement[n] = engagement;
    state.dense(u, i, t, p, out.dense, n * DENSE_SIZE);
    wide.pushRow(state, u, i, p);
    n++;
  };
  let a = 0;
  while (a < anchors.source.length) {
    const first = anchors.source[a] ?? 0;
    const t = interactions.timestamp[first] ?? 0;
    state.advanceTo(t);
    for (; a < anchors.source.length && interactions.timestamp[anchors.source[a] ?? 0] === t; a++) {
      const r = anchors.source[a] ?? 0;
      const u = interactions.user[r] ?? 0;
      const i = interactions.item[r] ?? 0;
      const click = anchors.click[a] ?? 0;
      emit(u, i, t, interactions.position[r] ?? -1, anchors.kind[a] ?? 0, r, click, anchors.engagement[a] ?? 0);
      if (click === 0 || itemIds.length < 2) continue;
      for (let s = 0; s < k; s++) {
        let j = i;
        for (let tries = 0; tries < SAMPLE_TRIES && (j === i || state.hasSeen(u, j)); tries++) {
          j = uniform ? rng.int(itemIds.length) : state.sampleByPopularity(rng.next());
        }
        if (j !== i && !state.hasSeen(u, j)) emit(u, j, t, -1, ROW_SAMPLED, r, 0, 0);
      }
    }
  }
  const cut = <T extends { slice(from: number, to: number): T }>(x: T, width = 1): T => x.slice(0, n * width);
  return {
    length: n,
    user: cut(out.user), item: cut(out.item), timestamp: cut(out.timestamp), position: cut(out.position),
    kind: cut(out.kind), source: cut(out.source), click: cut(out.click), engagement: cut(out.engagement),
    dense: cut(out.dense, DENSE_SIZE),
    ...wide.build(),
  };
}
