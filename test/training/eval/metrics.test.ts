import { describe, expect, it } from 'vitest';
import { hitRateAtK, mapAtK, MetricAccumulator, ndcgAtK, precisionAtK, rankingMetrics, recallAtK } from '../../../core/domain/metrics.ts';

const log2 = Math.log2;

describe('ranking metrics (Microsoft Recommenders definitions, binary relevance)', () => {
  // Hits at ranks 2 and 5; 3 relevant items, one (9) never recommended.
  const ranked = [1, 2, 3, 4, 5];
  const relevant = new Set([2, 5, 9]);

  it('computes P, R, NDCG, MAP and hit rate @5 on a hand-worked list', () => {
    expect(precisionAtK(ranked, relevant, 5)).toBeCloseTo(2 / 5, 12);
    expect(recallAtK(ranked, relevant, 5)).toBeCloseTo(2 / 3, 12);
    const dcg = 1 / log2(3) + 1 / log2(6);
    const idcg = 1 + 1 / log2(3) + 1 / log2(4); // min(K, |relevant|) = 3 ideal hits
    expect(ndcgAtK(ranked, relevant, 5)).toBeCloseTo(dcg / idcg, 12);
    expect(ndcgAtK(ranked, relevant, 5)).toBeCloseTo(0.477623, 5);
    // Recommenders' `map`: precision at each hit, summed, over |relevant| (not min(K, |relevant|)).
    expect(mapAtK(ranked, relevant, 5)).toBeCloseTo((1 / 2 + 2 / 5) / 3, 12);
    expect(hitRateAtK(ranked, relevant, 5)).toBe(1);
  });

  it('cuts at K', () => {
    const m = rankingMetrics(ranked, relevant, 3);
    expect(m.precision).toBeCloseTo(1 / 3, 12);
    expect(m.recall).toBeCloseTo(1 / 3, 12);
    expect(m.ndcg).toBeCloseTo(1 / log2(3) / (1 + 1 / log2(3) + 1 / log2(4)), 12);
    expect(m.map).toBeCloseTo(1 / 2 / 3, 12);
  });

  it('divides precision by K even when the list is shorter, and caps the ideal DCG at |relevant|', () => {
    const m = rankingMetrics([7], new Set([7]), 10);
    expect(m).toEqual({ precision: 0.1, recall: 1, ndcg: 1, map: 1, hitRate: 1 });
  });

  it('gives zeros for no hits and for an empty relevant set', () => {
    expect(rankingMetrics([1, 2], new Set([3]), 2)).toEqual({ precision: 0, recall: 0, ndcg: 0, map: 0, hitRate: 0 });
    expect(rankingMetrics([1, 2], new Set(), 2)).toEqual({ precision: 0, recall: 0, ndcg: 0, map: 0, hitRate: 0 });
  });

  it('refuses K below 1', () => {
    expect(() => rankingMetrics([1], new Set([1]), 0)).toThrow(/at least 1/);
  });
});

describe('MetricAccumulator', () => {
  it('averages users with equal weight, skips users with nothing relevant, and measures coverage', () => {
    const acc = new MetricAccumulator(2, 10);
    acc.add([0, 1], new Set([0])); // P 0.5, R 1, NDCG 1, MAP 1, hit 1
    acc.add([1, 2], new Set([5, 6])); // all 0
    acc.add([8, 9], new Set()); // skipped: no relevant items, not counted in coverage either
    const s = acc.summary();
    expect(s.users).toBe(2);
    expect(s.k).toBe(2);
    expect(s.precision).toBeCloseTo(0.25, 12);
    expect(s.recall).toBeCloseTo(0.5, 12);
    expect(s.ndcg).toBeCloseTo(0.5, 12);
    expect(s.map).toBeCloseTo(0.5, 12);
    expect(s.hitRate).toBeCloseTo(0.5, 12);
    expect(s.coverage).toBeCloseTo(3 / 10, 12); // items 0, 1, 2
  });

  it('reports zeros with no users', () => {
    expect(new MetricAccumulator(5, 3).summary()).toMatchObject({ users: 0, ndcg: 0, coverage: 0 });
  });
});
