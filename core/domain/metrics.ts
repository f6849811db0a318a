// Offline ranking metrics @K for one ranked list against a set of relevant items, and a streaming
// mean over users. Definitions follow Microsoft Recommenders' `recommenders/evaluation/
// python_evaluation.py` (binary relevance), so numbers compare with their MovieLens benchmark:
// * precision@K = hits in the top K / K (K even when the list is shorter: Spark's definition);
// * recall@K    = hits in the top K / |relevant|;
// * NDCG@K      = Σ_hits 1/log(1 + rank) / Σ_{r ≤ min(K, |relevant|)} 1/log(1 + r) (the log base
//   cancels; they default to ln, we use log2);
// * MAP@K       = Σ_hits (hits so far / rank) / |relevant|: their `map` (named `map_at_k` before
//   1.2, and the MAP their benchmark table reports), not their newer `map_at_k`, which divides
//   by min(K, |relevant|);
// * hit rate@K  = 1 when the top K holds any relevant item.
// Users are averaged with equal weight. Pure: no runtime imports.

export interface RankingMetrics {
  precision: number;
  recall: number;
  ndcg: number;
  map: number;
  hitRate: number;
}

/** Means over users, with the catalog coverage of everything recommended. */
export interface MetricSummary extends RankingMetrics {
  k: number;
  /** Users scored (those with at least one relevant item). */
  users: number;
  /** Distinct items recommended in any top K / catalog size. */
  coverage: number;
}

/** Membership test for relevant items: a Set, or anything with `has`. */
export interface RelevantItems {
  has(item: number): boolean;
  readonly size: number;
}

/** 1 / log2(1 + rank) for rank = 1..n, cached because every user asks for the same ones. */
const discounts: number[] = [];
function discount(rank: number): number {
  for (let r = discounts.length + 1; r <= rank; r++) discounts.push(1 / Math.log2(1 + r));
  return discounts[rank - 1] ?? 0;
}

/** All five metrics in one pass over the top K of `ranked` (best first). Empty `relevant`: all 0. */
export function rankingMetrics(ranked: ArrayLike<number>, relevant: RelevantItems, k: number): RankingMetrics {
  if (!(k >= 1)) throw new RangeError(`k is ${k}; it must be at least 1`);
  const n = Math.min(k, ranked.length);
  const total = relevant.size;
  if (total === 0) return { precision: 0, recall: 0, ndcg: 0, map: 0, hitRate: 0 };
  let hits = 0;
  let dcg = 0;
  let ap = 0;
  for (let r = 1; r <= n; r++) {
    if (!relevant.has(ranked[r - 1] ?? -1)) continue;
    hits++;
    dcg += discount(r);
    ap += hits / r;
  }
  let idcg = 0;
  for (let r = 1, m = Math.min(k, total); r <= m; r++) idcg += discount(r);
  return {
    precision: hits / k,
    recall: hits / total,
    ndcg: dcg / idcg,
    map: ap / total,
    hitRate: hits > 0 ? 1 : 0,
  };
}

export function precisionAtK(ranked: ArrayLike<number>, relevant: RelevantItems, k: number): number {
  return rankingMetrics(ranked, relevant, k).precision;
}

export function recallAtK(ranked: ArrayLike<number>, relevant: RelevantItems, k: number): number {
  return rankingMetrics(ranked, relevant, k).recall;
}

export function ndcgAtK(ranked: ArrayLike<number>, relevant: RelevantItems, k: number): number {
  return rankingMetrics(ranked, relevant, k).ndcg;
}

export function mapAtK(ranked: ArrayLike<number>, relevant: RelevantItems, k: number): number {
  return rankingMetrics(ranked, relevant, k).map;
}

export function hitRateAtK(ranked: ArrayLike<number>, relevant: RelevantItems, k: number): number {
  return rankingMetrics(ranked, relevant, k).hitRate;
}

/** Streams users in and keeps the running sums; `summary()` gives the means and coverage. */
export class MetricAccumulator {
  private readonly recommended: Uint8Array;
  private distinct = 0;
  private users = 0;
  private readonly sums: RankingMetrics = { precision: 0, recall: 0, ndcg: 0, map: 0, hitRate: 0 };

  constructor(readonly k: number, readonly catalogSize: number) {
    if (!(k >= 1)) throw new RangeError(`k is ${k}; it must be at least 1`);
    this.recommended = new Uint8Array(catalogSize);
  }

  /** Adds one user's ranked list (item indexes in [0, catalogSize)). A user with nothing relevant is skipped. */
  add(ranked: ArrayLike<number>, relevant: RelevantItems): void {
    if (relevant.size === 0) return;
    const m = rankingMetrics(ranked, relevant, this.k);
    this.users++;
    this.sums.precision += m.precision;
    this.sums.recall += m.recall;
    this.sums.ndcg += m.ndcg;
    this.sums.map += m.map;
    this.sums.hitRate += m.hitRate;
    for (let r = 0, n = Math.min(this.k, ranked.length); r < n; r++) {
      const item = ranked[r] ?? -1;
      if (item >= 0 && item < this.catalogSize && this.recommended[item] === 0) {
        this.recommended[item] = 1;
        this.distinct++;
      }
    }
  }

  summary(): MetricSummary {
    const n = this.users || 1;
    return {
      k: this.k,
      users: this.users,
      precision: this.sums.precision / n,
      recall: this.sums.recall / n,
      ndcg: this.sums.ndcg / n,
      map: this.sums.map / n,
      hitRate: this.sums.hitRate / n,
      coverage: this.catalogSize > 0 ? this.distinct / this.catalogSize : 0,
    };
  }
}
