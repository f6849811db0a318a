// The ranker's training table, assembled from parts: the stacked candidate lists, the
// point-in-time rows of logged impressions, and the served rows (training/ranker/served-rows.ts).

import type { Dataset } from '../data/dataset.ts';
import { DENSE_SIZE } from '../features/feature-state.ts';
import { buildRankerRows, ROW_SAMPLED } from '../features/ranker-rows.ts';
import type { RankerRows } from '../features/ranker-rows.ts';
import type { ScoringRows } from '../ranker/inputs.ts';
import type { CandidateGenerator } from './two-stage.ts';

/** Points in users' histories whose scores `impressionRows` keeps at once. */
const CACHED_HISTORIES = 4096;

/** One part of the table: scoring rows and their labels; `list` marks a user's candidate list. */
export interface RankerPart {
  rows: ScoringRows;
  click: Uint8Array;
  engagement: Uint8Array;
  list?: boolean;
}

/**
 * Point-in-time rows of a dataset's logged impressions (clicked or not) in each user's label
 * period, or undefined when the data has no impressions (ratings, as in MovieLens).
 */
export function impressionRows(
  dataset: Dataset,
  folds: { train: Int32Array; test: Int32Array },
  sources: CandidateGenerator,
  userVector: (user: number, history: Int32Array) => Float32Array,
  wideBuckets: number,
  seed: number,
): { rows: ScoringRows; click: Uint8Array; engagement: Uint8Array } | undefined {
  const impression = dataset.eventTypes.findIndex((t) => t.name === 'impression');
  const { interactions } = dataset;
  let any = false;
  for (let r = 0; r < interactions.length && !any; r++) any = interactions.type[r] === impression;
  if (impression < 0 || !any) return undefined;
  // Each user's label period starts at their first label-fold event.
  const from = new Float64Array(dataset.userIds.length).fill(Infinity);
  for (const r of folds.test) {
    const u = interactions.user[r] ?? 0;
    from[u] = Math.min(from[u] ?? Infinity, interactions.timestamp[r] ?? Infinity);
  }
  // Scores of the history before t, z-scored over the catalog like candidate rows, without
  // scanning it (CandidateGenerator.zScores); kept per (user, history length) for the rows at that
  // point, a bounded cache since rows come user by user.
  const cache = new Map<string, { tt(item: number): number; cv(item: number): number }>();
  const scores = (user: number, history: readonly number[]) => {
    const key = `${user}:${history.length}`;
    let hit = cache.get(key);
    if (!hit) {
      // Distinct items, first occurrence first: the history serving keeps (core/serving/engine.ts).
      const h = Int32Array.from(new Set(history));
      if (cache.size >= CACHED_HISTORIES) cache.clear();
      hit = sources.zScores(h, userVector(user, h));
      cache.set(key, hit);
    }
    return hit;
  };
  const finite = (v: number) => (Number.isFinite(v) ? v : 0);
  const rows = buildRankerRows(dataset, {
    seed, wideBuckets,
    externalScore: (user, item, history) => finite(scores(user, history).tt(item)),
    coVisitationScore: (user, item, history) => finite(scores(user, history).cv(item)),
  });
  const keep: number[] = [];
  for (let k = 0; k < rows.length; k++) if ((rows.timestamp[k] ?? 0) >= (from[rows.user[k] ?? 0] ?? Infinity)) keep.push(k);
  if (keep.length === 0) return undefined;
  return selectRows(rows, keep);
}

function selectRows(rows: RankerRows, keep: readonly number[]): { rows: ScoringRows; click: Uint8Array; engagement: Uint8Array } {
  const n = keep.length;
  const dense = new Float32Array(n * DENSE_SIZE);
  const wideOffsets = new Int32Array(n + 1);
  const wideIds: number[] = [];
  keep.forEach((k, j) => {
    dense.set(rows.dense.subarray(k * DENSE_SIZE, (k + 1) * DENSE_SIZE), j * DENSE_SIZE);
    for (let w = rows.wideOffsets[k] ?? 0; w < (rows.wideOffsets[k + 1] ?? 0); w++) wideIds.push(rows.wideIds[w] ?? 0);
    wideOffsets[j + 1] = wideIds.length;
  });
  const pick = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
    const out = make(n);
    keep.forEach((k, j) => (out[j] = a[k] ?? 0));
    return out;
  };
  return {
    rows: {
      length: n, user: pick(rows.user, (m) => new Int32Array(m)), item: pick(rows.item, (m) => new Int32Array(m)),
      dense, wideOffsets, wideIds: Int32Array.from(wideIds),
    },
    click: pick(rows.click, (m) => new Uint8Array(m)),
    engagement: pick(rows.engagement, (m) => new Uint8Array(m)),
  };
}

/** (user · items + item) keys of label rows that count as engagement: a rating of 4 or more, or a strong event type. */
export function engagedItems(dataset: Dataset, rows: Int32Array): Set<number> {
  const { interactions, eventTypes, itemIds } = dataset;
  const out = new Set<number>();
  for (const r of rows) {
    const type = eventTypes[interactions.type[r] ?? 0]?.name;
    const value = interactions.value[r] ?? Number.NaN;
    const strong = type === 'rating' ? value >= 4 : (interactions.weight[r] ?? 0) >= 4;
    if (strong) out.add((interactions.user[r] ?? 0) * itemIds.length + (interactions.item[r] ?? 0));
  }
  return out;
}

/** One table of ranker rows; each part that is a user's candidate list (`list`) gets its own group id. */
export function concatRows(parts: readonly RankerPart[]): RankerRows {
  const length = parts.reduce((s, p) => s + p.rows.length, 0);
  const wideTotal = parts.reduce((s, p) => s + (p.rows.wideOffsets[p.rows.length] ?? 0), 0);
  const out: RankerRows = {
    length,
    user: new Int32Array(length), item: new Int32Array(length), timestamp: new Float64Array(length),
    position: new Int16Array(length).fill(-1), kind: new Uint8Array(length).fill(ROW_SAMPLED), source: new Int32Array(length).fill(-1),
    click: new Uint8Array(length), engagement: new Uint8Array(length), group: new Int32Array(length).fill(-1),
    dense: new Float32Array(length * DENSE_SIZE), wideOffsets: new Int32Array(length + 1), wideIds: new Int32Array(wideTotal),
  };
  let at = 0;
  let wideAt = 0;
  for (const [index, p] of parts.entries()) {
    const n = p.rows.length;
    if (p.list) out.group?.fill(index, at, at + n);
    out.user.set(p.rows.user, at);
    out.item.set(p.rows.item, at);
    out.click.set(p.click, at);
    out.engagement.set(p.engagement, at);
    out.dense.set(p.rows.dense, at * DENSE_SIZE);
    for (let k = 0; k < n; k++) out.wideOffsets[at + k + 1] = wideAt + (p.rows.wideOffsets[k + 1] ?? 0);
    out.wideIds.set(p.rows.wideIds.subarray(0, p.rows.wideOffsets[n] ?? 0), wideAt);
    wideAt += p.rows.wideOffsets[n] ?? 0;
    at += n;
  }
  return out;
}
