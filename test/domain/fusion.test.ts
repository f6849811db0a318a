import { describe, expect, it } from 'vitest';
import { fusedOf, quotaMerge, reciprocalRankFusion, reciprocalRankFusionOf } from '../../core/domain/fusion.ts';
import type { FusedCandidate, SourceList } from '../../core/domain/fusion.ts';
import { freshSeed, mulberry32 } from '../support/random.ts';

/** RRF as first written, one object per item in a Map: what the typed-array version must equal. */
function objectRrf(lists: readonly SourceList<number>[], k: number, weights: Record<string, number>): FusedCandidate<number>[] {
  const byItem = new Map<number, FusedCandidate<number>>();
  for (const { source, candidates } of lists) {
    const w = weights[source] ?? 1;
    candidates.forEach(({ item, score }, r) => {
      let fused = byItem.get(item);
      if (fused === undefined) {
        fused = { item, score: 0, sources: [], sourceScores: {} };
        byItem.set(item, fused);
      }
      if (source in fused.sourceScores) return;
      fused.sources.push(source);
      fused.sourceScores[source] = score;
      fused.score += w / (k + r + 1);
    });
  }
  return [...byItem.values()].sort((a, b) => b.score - a.score);
}

function list(source: string, items: string[]): SourceList {
  return { source, candidates: items.map((item, i) => ({ item, score: 10 - i })) };
}

describe('reciprocalRankFusion', () => {
  it('sums w / (k + rank) over the sources that list an item, best first', () => {
    const fused = reciprocalRankFusion([list('ann', ['a', 'b', 'c']), list('covis', ['c', 'a'])], { k: 1 });
    // a: 1/2 + 1/3; c: 1/4 + 1/2; b: 1/3.
    expect(fused.map((f) => f.item)).toEqual(['a', 'c', 'b']);
    expect(fused[0]?.score).toBeCloseTo(1 / 2 + 1 / 3, 12);
    expect(fused[1]?.score).toBeCloseTo(1 / 4 + 1 / 2, 12);
    expect(fused[2]?.score).toBeCloseTo(1 / 3, 12);
    expect(fused[1]?.sources).toEqual(['ann', 'covis']);
    expect(fused[1]?.sourceScores).toEqual({ ann: 8, covis: 10 });
    expect(fused[2]?.sources).toEqual(['ann']);
  });

  it('uses k = 60 by default and applies per-source weights (unnamed sources weigh 1)', () => {
    const fused = reciprocalRankFusion([list('ann', ['a']), list('trending', ['b']), list('fresh', ['c'])], {
      weights: { trending: 2, fresh: 0 },
    });
    expect(fused.map((f) => [f.item, f.score])).toEqual([['b', 2 / 61], ['a', 1 / 61], ['c', 0]]);
  });

  it('breaks ties by first appearance and counts an item listed twice by one source once', () => {
    const fused = reciprocalRankFusion([list('x', ['p', 'q', 'p']), list('y', ['q', 'p'])], { k: 10 });
    // p: 1/11 + 1/12, q: 1/12 + 1/11: tied; p appeared first.
    expect(fused.map((f) => f.item)).toEqual(['p', 'q']);
    expect(fused[0]?.score).toBeCloseTo(1 / 11 + 1 / 12, 12);
    expect(fused[0]?.sourceScores).toEqual({ x: 10, y: 9 });
  });

  it('handles no lists and empty lists', () => {
    expect(reciprocalRankFusion([])).toEqual([]);
    expect(reciprocalRankFusion([list('a', [])])).toEqual([]);
  });

  it('gives, in typed arrays, the items, scores and candidates of the object version on random lists', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const names = ['two-tower', 'item-item', 'co-visitation', 'content', 'trending', 'fresh'];
    const lists = names.map((source) => ({
      source,
      // Repeats within a list, and scores on a few values (ties across items).
      candidates: Array.from({ length: Math.floor(rng() * 400) }, () => ({ item: Math.floor(rng() * 500), score: Math.floor(rng() * 5) / 4 })),
    }));
    const weights = { 'two-tower': 1, 'co-visitation': 0.7, content: 0.5, fresh: 0 };
    const want = objectRrf(lists, 60, weights);
    const got = reciprocalRankFusionOf(lists, { k: 60, weights });
    expect(got.items, `seed ${seed}`).toEqual(want.map((f) => f.item));
    expect(Array.from(got.scores), `seed ${seed}`).toEqual(want.map((f) => f.score));
    expect(want.map((_, rank) => got.candidate(rank)), `seed ${seed}`).toEqual(want);
    expect(reciprocalRankFusion(lists, { k: 60, weights }), `seed ${seed}`).toEqual(want);
    expect(() => got.candidate(want.length)).toThrow(/outside/);
    // The same lists as columns (the core's: Int32Array items, Float64Array scores), some as objects.
    const mixed = lists.map(({ source, candidates }, s) => (s % 2 === 0
      ? { source, items: Int32Array.from(candidates, (c) => c.item), scores: Float64Array.from(candidates, (c) => c.score) }
      : { source, candidates }));
    const columns = reciprocalRankFusionOf<number>(mixed, { k: 60, weights });
    expect(columns.items, `seed ${seed}`).toEqual(want.map((f) => f.item));
    expect(Array.from(columns.scores), `seed ${seed}`).toEqual(want.map((f) => f.score));
    expect(want.map((_, rank) => columns.candidate(rank)), `seed ${seed}`).toEqual(want);
    // Numbers that are not small item indexes (large, fractional, negative) take the Map's way: the same answer.
    const odd = lists.map(({ source, candidates }) => ({
      source, candidates: candidates.map(({ item, score }) => ({ item: item % 3 === 0 ? 2 ** 30 + item : item % 3 === 1 ? item + 0.5 : -item, score })),
    }));
    const oddWant = objectRrf(odd, 60, weights);
    const oddGot = reciprocalRankFusionOf(odd, { k: 60, weights });
    expect(oddGot.items, `seed ${seed}`).toEqual(oddWant.map((f) => f.item));
    expect(oddWant.map((_, rank) => oddGot.candidate(rank)), `seed ${seed}`).toEqual(oddWant);
  });

  it('rejects a bad k, a negative weight and a repeated source, saying what to fix', () => {
    expect(() => reciprocalRankFusion([], { k: 0 })).toThrow(/k must be a positive/);
    expect(() => reciprocalRankFusion([list('a', ['x'])], { weights: { a: -1 } })).toThrow(/weight of source 'a'/);
    expect(() => reciprocalRankFusion([list('a', ['x']), list('a', ['y'])])).toThrow(/source 'a' appears twice/);
    expect(() => reciprocalRankFusionOf([{ source: 'a', items: Int32Array.of(1, 2), scores: Float64Array.of(1) }])).toThrow(/'a' has 2 items and 1 scores/);
  });
});

describe('fusedOf', () => {
  it('reads a list of fused candidates as items, scores and candidates', () => {
    const merged = quotaMerge([list('ann', ['a1', 'a2']), list('trending', ['t1'])], { quotas: {} });
    const fused = fusedOf(merged);
    expect(fused.items).toEqual(['a1', 't1', 'a2']);
    expect(Array.from(fused.scores)).toEqual([1, 1 / 2, 1 / 3]);
    expect(fused.candidate(1)).toBe(merged[1]);
    expect(() => fused.candidate(3)).toThrow(/outside/);
  });
});

describe('quotaMerge', () => {
  it('takes round-robin in lists order, each source up to its quota', () => {
    const merged = quotaMerge([list('ann', ['a1', 'a2', 'a3', 'a4']), list('trending', ['t1', 't2', 't3'])], {
      quotas: { ann: 3, trending: 1 },
    });
    expect(merged.map((m) => m.item)).toEqual(['a1', 't1', 'a2', 'a3']);
    expect(merged.map((m) => m.score)).toEqual([1, 1 / 2, 1 / 3, 1 / 4]);
  });

  it('treats a missing quota as unlimited and stops at total', () => {
    const lists = [list('ann', ['a1', 'a2', 'a3']), list('fresh', ['f1', 'f2', 'f3'])];
    expect(quotaMerge(lists, { quotas: { ann: 1 } }).map((m) => m.item)).toEqual(['a1', 'f1', 'f2', 'f3']);
    expect(quotaMerge(lists, { quotas: {}, total: 3 }).map((m) => m.item)).toEqual(['a1', 'f1', 'a2']);
    expect(quotaMerge(lists, { quotas: { ann: 0, fresh: 0 } })).toEqual([]);
  });

  it('skips items already taken without using quota, and records every source that lists an item', () => {
    const merged = quotaMerge([list('ann', ['x', 'y', 'z']), list('covis', ['x', 'w', 'y'])], {
      quotas: { ann: 2, covis: 1 },
    });
    // ann takes x; covis skips x (taken) and takes w; ann takes y; covis is at its quota.
    expect(merged.map((m) => m.item)).toEqual(['x', 'w', 'y']);
    expect(merged[0]?.sources).toEqual(['ann', 'covis']);
    expect(merged[0]?.sourceScores).toEqual({ ann: 10, covis: 10 });
    expect(merged[1]?.sources).toEqual(['covis']);
    // covis lists y too (rank 3), though its turn never reached it.
    expect(merged[2]?.sources).toEqual(['ann', 'covis']);
    expect(merged[2]?.sourceScores).toEqual({ ann: 9, covis: 8 });
  });

  it('de-duplicates within one source and keeps going when one source runs dry', () => {
    const merged = quotaMerge([list('a', ['p', 'p', 'q']), list('b', [])], { quotas: {} });
    expect(merged.map((m) => m.item)).toEqual(['p', 'q']);
  });

  it('rejects negative or fractional quotas and totals', () => {
    expect(() => quotaMerge([list('a', ['x'])], { quotas: { a: -1 } })).toThrow(/quota of source 'a' must be a non-negative integer/);
    expect(() => quotaMerge([list('a', ['x'])], { quotas: {}, total: 1.5 })).toThrow(/total must be a non-negative integer/);
  });
});
