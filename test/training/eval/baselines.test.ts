import { describe, expect, it } from 'vitest';
import { Xoshiro128 } from '../../../core/domain/random.ts';
import { positiveRows } from '../../../training/data/dataset.ts';
import type { Dataset } from '../../../training/data/dataset.ts';
import {
  cosineWeights, distinctUserItems, easeWeights, fitEase, fitItemKnn, fitMostPopular, gramMatrix, invertSpd, itemPopularity, popularSubset,
} from '../../../training/eval/baselines/index.ts';
import { clicks, randomRatings } from './fixtures.ts';

/** Reference inverse: Gauss–Jordan with partial pivoting, float64. */
function gaussJordanInverse(a: Float64Array, n: number): Float64Array {
  const m = Array.from({ length: n }, (_, i) => [...a.subarray(i * n, i * n + n), ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]?.[c] ?? 0) > Math.abs(m[p]?.[c] ?? 0)) p = r;
    const pivotRow = m[p] ?? [];
    m[p] = m[c] ?? [];
    m[c] = pivotRow;
    const d = pivotRow[c] ?? 1;
    for (let j = 0; j < 2 * n; j++) pivotRow[j] = (pivotRow[j] ?? 0) / d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const rowR = m[r] ?? [];
      const f = rowR[c] ?? 0;
      for (let j = 0; j < 2 * n; j++) rowR[j] = (rowR[j] ?? 0) - f * (pivotRow[j] ?? 0);
    }
  }
  return Float64Array.from(m.flatMap((r) => r.slice(n)));
}

function item(d: Dataset, id: string): number {
  const i = d.itemIndex.get(id);
  if (i === undefined) throw new Error(`no item ${id}`);
  return i;
}

describe('invertSpd (float64 Cholesky)', () => {
  it('matches a Gauss–Jordan inverse on random SPD matrices within 1e-9', () => {
    const rng = new Xoshiro128(11);
    for (const n of [1, 2, 7, 33, 150]) {
      const g = new Float64Array(n * n);
      const rows = 2 * n;
      const x = Float64Array.from({ length: rows * n }, () => rng.next() - 0.5);
      for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) g[i * n + j] = (g[i * n + j] ?? 0) + (x[r * n + i] ?? 0) * (x[r * n + j] ?? 0);
      for (let i = 0; i < n; i++) g[i * n + i] = (g[i * n + i] ?? 0) + 0.1;
      const expected = gaussJordanInverse(g, n);
      const got = invertSpd(g.slice(), n);
      for (let i = 0; i < n * n; i++) expect(Math.abs((got[i] ?? 0) - (expected[i] ?? 0))).toBeLessThan(1e-9 * Math.max(1, Math.abs(expected[i] ?? 0)));
    }
  });

  it('says what to do with a matrix that is not positive definite', () => {
    expect(() => invertSpd(Float64Array.from([1, 2, 2, 1]), 2)).toThrow(/not positive definite.*regularisation/);
  });
});

describe('EASE (Steck 2019)', () => {
  it('B = I − P·diag(1/diag P) with P = (XᵀX + λI)⁻¹, on a hand-checkable 2-item case', () => {
    // Gram [[2, 1], [1, 2]], λ = 1: G + λI = [[3, 1], [1, 3]], P = [[3, −1], [−1, 3]] / 8,
    // so B[0][1] = −P[0][1] / P[1][1] = 1/3, B[1][0] = 1/3, diagonal 0.
    const b = easeWeights(Float64Array.from([2, 1, 1, 2]), 2, 1);
    expect(b[0]).toBe(0);
    expect(b[3]).toBe(0);
    expect(b[1]).toBeCloseTo(1 / 3, 12);
    expect(b[2]).toBeCloseTo(1 / 3, 12);
  });

  it('matches the closed form through a Gauss–Jordan inverse on a generated dataset', () => {
    const d = randomRatings(40, 12, 10, 5);
    const rows = positiveRows(d);
    const x = distinctUserItems(d, rows);
    const subset = popularSubset(itemPopularity(x, d.itemIds.length), 1000);
    const n = subset.items.length;
    const lambda = 3;
    const gram = gramMatrix(x, subset, d.userIds.length);
    const regularised = gram.slice();
    for (let i = 0; i < n; i++) regularised[i * n + i] = (regularised[i * n + i] ?? 0) + lambda;
    const p = gaussJordanInverse(regularised, n);
    const b = easeWeights(gram.slice(), n, lambda);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const expected = i === j ? 0 : -(p[i * n + j] ?? 0) / (p[j * n + j] ?? 1);
        expect(Math.abs((b[i * n + j] ?? 0) - expected)).toBeLessThan(1e-10);
      }
    }
    // The recommender scores x·B and leaves items outside the kept subset at −Infinity.
    const model = fitEase(d, rows, { lambda, maxItems: 4 });
    const out = new Float32Array(d.itemIds.length);
    model.scoreUser(0, new Int32Array([subset.items[0] ?? 0]), out);
    expect(out.filter((s) => s === -Infinity).length).toBe(d.itemIds.length - 4);
  });
});

describe('item-kNN (cosine)', () => {
  // u1 {a, b}, u2 {a, b, c}, u3 {c}: |a| = |b| = |c| = 2, a·b = 2, a·c = b·c = 1.
  const d = clicks([['u1', 'a'], ['u1', 'b'], ['u2', 'a'], ['u2', 'b'], ['u2', 'c'], ['u3', 'c']]);
  const [a, b, c] = [item(d, 'a'), item(d, 'b'), item(d, 'c')];

  it('scores by summed cosine similarity to the history', () => {
    const model = fitItemKnn(d, positiveRows(d));
    const out = new Float32Array(3);
    model.scoreUser(0, new Int32Array([a]), out);
    expect(out[b]).toBeCloseTo(1, 6); // 2 / √(2·2)
    expect(out[c]).toBeCloseTo(0.5, 6); // 1 / √(2·2)
    expect(out[a]).toBe(0); // no self-similarity
    model.scoreUser(2, new Int32Array([a, c]), out);
    expect(out[b]).toBeCloseTo(1.5, 6);
  });

  it('keeps only the top neighbours of each item (ties to the lower index)', () => {
    const x = distinctUserItems(d, positiveRows(d));
    const subset = popularSubset(itemPopularity(x, 3), 3);
    const w = cosineWeights(gramMatrix(x, subset, 3), 3, 1);
    const la = subset.local[a] ?? 0;
    const lb = subset.local[b] ?? 0;
    const lc = subset.local[c] ?? 0;
    expect(w[la * 3 + lb]).toBeCloseTo(1, 6);
    expect(w[la * 3 + lc]).toBe(0);
    expect([...w.subarray(lc * 3, lc * 3 + 3)].filter((v) => v > 0)).toHaveLength(1);
  });
});

describe('most-popular', () => {
  it('scores items by the number of train users', () => {
    const d = clicks([['u1', 'a'], ['u2', 'a'], ['u2', 'a'], ['u3', 'b']]);
    const out = new Float32Array(2);
    fitMostPopular(d, positiveRows(d)).scoreUser(0, new Int32Array(0), out);
    expect(out[item(d, 'a')]).toBe(2); // u2's repeat counts once
    expect(out[item(d, 'b')]).toBe(1);
  });
});
