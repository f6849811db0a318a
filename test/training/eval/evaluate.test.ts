import { describe, expect, it } from 'vitest';
import { Xoshiro128 } from '../../../core/domain/random.ts';
import { buildDataset, positiveRows } from '../../../training/data/dataset.ts';
import type { Dataset } from '../../../training/data/dataset.ts';
import { ease, itemKnn, mostPopular } from '../../../training/eval/baselines/index.ts';
import { evaluate, fitAndEvaluate, topK } from '../../../training/eval/evaluate.ts';
import type { Recommender } from '../../../training/eval/evaluate.ts';
import { randomSplit } from '../../../training/eval/protocols.ts';
import { buildWorld } from '../../../training/data/synthetic.ts';
import { syntheticEvents } from '../../../training/data/sessions.ts';
import { clicks } from './fixtures.ts';

function item(d: Dataset, id: string): number {
  const i = d.itemIndex.get(id);
  if (i === undefined) throw new Error(`no item ${id}`);
  return i;
}

describe('topK', () => {
  it('equals a full sort (score descending, lower index on ties), skipping excluded items', () => {
    const rng = new Xoshiro128(3);
    for (const [n, k] of [[50, 10], [10, 10], [7, 12], [1000, 1], [300, 37]] as const) {
      const scores = Float32Array.from({ length: n }, () => Math.floor(rng.next() * 20)); // many ties
      const excluded = Uint8Array.from({ length: n }, () => (rng.next() < 0.2 ? 1 : 0));
      const expected = [...scores.keys()].filter((i) => excluded[i] === 0)
        .sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || a - b).slice(0, k);
      const out = new Int32Array(k);
      const count = topK(scores, k, excluded, out, new Float32Array(k));
      expect(count).toBe(expected.length);
      expect([...out.subarray(0, count)]).toEqual(expected);
    }
  });

  it('ranks NaN as −Infinity, below every number', () => {
    const out = new Int32Array(2);
    const count = topK(Float32Array.from([Number.NaN, -5, 1]), 2, new Uint8Array(3), out, new Float32Array(2));
    expect(count).toBe(2);
    expect([...out]).toEqual([2, 1]);
  });
});

describe('evaluate', () => {
  // Rows in time order; u3 has no test row and must be skipped.
  const d = clicks([
    ['u1', 'a'], ['u1', 'b'], ['u2', 'a'], ['u3', 'c'], ['u1', 'c'], ['u2', 'd'], ['u2', 'b'],
  ]);
  const split = { train: Int32Array.from([0, 1, 2, 3]), test: Int32Array.from([4, 5, 6]) };
  /** Scores items by a fixed preference a > b > c > d. */
  const fixed: Recommender = {
    name: 'fixed',
    scoreUser: (_u, _history, out) => {
      for (const [id, s] of [['a', 4], ['b', 3], ['c', 2], ['d', 1]] as const) out[item(d, id)] = s;
    },
  };

  it('excludes train items, skips users without test items and averages the rest', () => {
    const result = evaluate(d, split, [fixed], { k: 1 });
    expect(result.users).toBe(2);
    const [r] = result.results;
    // u1 trained on a, b → top 1 = c: a hit, the only one. u2 trained on a → top 1 = b: one of two.
    expect(r?.metrics).toMatchObject({ precision: 1, recall: 0.75, ndcg: 1, map: 0.75, hitRate: 1, users: 2 });
    expect(r?.metrics.coverage).toBeCloseTo(2 / 4, 12); // c and b
    const at2 = evaluate(d, split, [fixed], { k: 2 }).results[0]?.metrics;
    // u1: [c, d] vs {c}: P 0.5, R 1. u2: [b, c] vs {d, b}: P 0.5, R 0.5, AP (1/1)/2.
    expect(at2?.precision).toBeCloseTo(0.5, 12);
    expect(at2?.recall).toBeCloseTo(0.75, 12);
    expect(at2?.map).toBeCloseTo((1 + 0.5) / 2, 12);
  });

  it('passes each user their distinct train items as history', () => {
    const seen: string[] = [];
    const spy: Recommender = { name: 'spy', scoreUser: (u, history) => seen.push(`${u}:${[...history].join(',')}`) };
    evaluate(d, split, [spy], { k: 1 });
    expect(seen).toEqual([`0:${item(d, 'a')},${item(d, 'b')}`, `1:${item(d, 'a')}`]);
  });

  it('ranks the baselines sensibly on generated data: EASE and item-kNN beat most-popular', async () => {
    // Clustered tastes (the project's synthetic generator), so co-occurrence carries signal.
    const world = buildWorld({ users: 150, items: 120, events: 8000, clusters: 4, seed: 9 });
    const generated = buildDataset({ events: syntheticEvents(world) });
    const split = randomSplit(generated, { seed: 1 });
    const result = await fitAndEvaluate(generated, split, [mostPopular(), itemKnn(), ease({ lambda: 10 })], { k: 5, seed: 1 });
    expect(result.results.map((r) => r.name)).toEqual(['most-popular', 'item-knn', 'ease(λ=10)']);
    for (const r of result.results) {
      expect(r.fitSeconds).toBeGreaterThanOrEqual(0);
      expect(r.metrics.users).toBe(result.users);
      expect(r.metrics.ndcg).toBeGreaterThanOrEqual(0);
      expect(r.metrics.ndcg).toBeLessThanOrEqual(1);
    }
    expect(result.trainRows + result.testRows).toBe(positiveRows(generated).length);
    const [popular, knn, easeResult] = result.results.map((r) => r.metrics.ndcg);
    expect(knn).toBeGreaterThan(popular ?? 1);
    expect(easeResult).toBeGreaterThan(popular ?? 1);
  });
});
