// Stage one for many users at once (the catalog scan through GEMM, retrieveMany, zScores and the
// evaluator's recommendMany path) gives what the one-user-at-a-time full scans give.
import { describe, expect, it } from 'vitest';
import { createWasmMatmul } from '../../core/kernels/wasm.ts';
import { popularSubset } from '../../training/eval/baselines/cooccurrence.ts';
import type { ItemItemModel } from '../../training/eval/baselines/cooccurrence.ts';
import { evaluate, topK } from '../../training/eval/evaluate.ts';
import type { Recommender } from '../../training/eval/evaluate.ts';
import { typescriptMatmul } from '../../training/nn/index.ts';
import type { MatmulBackend } from '../../training/nn/index.ts';
import { CandidateGenerator } from '../../training/pipeline/two-stage.ts';
import { scanTopK } from '../../training/two-tower/catalog-scan.ts';
import { randomSplit } from '../../training/eval/protocols.ts';
import { positiveRows } from '../../training/data/dataset.ts';
import { randomRatings } from './eval/fixtures.ts';
import { freshSeed, mulberry32, randomUnitVectors } from '../support/random.ts';

/** Item indexes of the top k of full-catalog dot products, history excluded: the reference. */
function exactTop(items: Float32Array, dim: number, query: Float32Array, history: ArrayLike<number>, k: number): number[] {
  const n = items.length / dim;
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += (query[d] ?? 0) * (items[i * dim + d] ?? 0);
    scores[i] = s;
  }
  const excluded = new Uint8Array(n);
  for (let h = 0; h < history.length; h++) excluded[history[h] ?? 0] = 1;
  const top = new Int32Array(k);
  const count = topK(scores, k, excluded, top, new Float32Array(k));
  return Array.from(top.subarray(0, count));
}

function randomHistories(count: number, items: number, rng: () => number): Int32Array[] {
  return Array.from({ length: count }, () => Int32Array.from({ length: Math.floor(rng() * 30) }, () => Math.floor(rng() * items)));
}

/** A dense item-item model over `kept` random items of `items`, random weights. */
function randomItemItem(items: number, kept: number, rng: () => number): ItemItemModel {
  const popularity = Float64Array.from({ length: items }, () => Math.floor(rng() * 50));
  const subset = popularSubset(popularity, kept);
  const n = subset.items.length;
  return { subset, weights: Float32Array.from({ length: n * n }, () => rng() - 0.5) };
}

describe('scanTopK', async () => {
  const backends: MatmulBackend[] = [typescriptMatmul, await createWasmMatmul()];
  for (const backend of backends) {
    it(`(${backend.name}) finds each query's exact top k, history excluded, across several blocks`, () => {
      const seed = freshSeed();
      const rng = mulberry32(seed);
      const dim = 16;
      const n = 5000; // three blocks, the last one partial
      const items = randomUnitVectors(n, dim, rng);
      const queries = randomUnitVectors(40, dim, rng);
      const histories = randomHistories(40, n, rng);
      // The true top items of some queries go into their history: the scan must skip them.
      histories[0] = Int32Array.from(exactTop(items, dim, queries.subarray(0, dim), [], 5));
      const got = scanTopK(backend, items, dim, queries, histories, 25);
      got.forEach((top, q) => {
        const want = exactTop(items, dim, queries.subarray(q * dim, (q + 1) * dim), histories[q] ?? [], 25);
        expect(Array.from(top), `seed ${seed}, query ${q}`).toEqual(want);
      });
    });
  }

  it('breaks ties to the lower item index, counts NaN as −∞, and returns fewer when the catalog runs out', () => {
    const dim = 4;
    // Items 0..5: two pairs of equal scores, one NaN, one −∞.
    const rows = [[1, 0, 0, 0], [2, 0, 0, 0], [2, 0, 0, 0], [Number.NaN, 0, 0, 0], [1, 0, 0, 0], [-Infinity, 0, 0, 0]];
    const items = Float32Array.from(rows.flat());
    const query = Float32Array.of(1, 0, 0, 0);
    expect(Array.from(scanTopK(typescriptMatmul, items, dim, query, [[]], 3)[0] ?? [])).toEqual([1, 2, 0]);
    expect(Array.from(scanTopK(typescriptMatmul, items, dim, query, [[2]], 3)[0] ?? [])).toEqual([1, 0, 4]);
    // Everything but the excluded: six items, one excluded, NaN and −∞ last (NaN is item 3, −∞ item 5).
    expect(Array.from(scanTopK(typescriptMatmul, items, dim, query, [[0]], 10)[0] ?? [])).toEqual([1, 2, 4, 3, 5]);
    expect(scanTopK(typescriptMatmul, items, dim, query, [[]], 0)[0]?.length).toBe(0);
  });
});

describe('CandidateGenerator for many users', async () => {
  const wasm = await createWasmMatmul();

  it('retrieveMany chooses what retrieve chooses, with the same z-scores', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const dim = 16;
    const n = 3000;
    const items = randomUnitVectors(n, dim, rng);
    const generator = new CandidateGenerator(items, dim, randomItemItem(n, 400, rng), wasm);
    const histories = randomHistories(12, n, rng);
    // Some histories inside the item-item subset, so that its sums are not all zero.
    histories[1] = generator.coVisitation.subset.items.slice(0, 20);
    const vectors = randomUnitVectors(12, dim, rng);
    const many = generator.retrieveMany(histories, vectors, 30);
    histories.forEach((history, q) => {
      const vector = vectors.subarray(q * dim, (q + 1) * dim);
      const want = generator.retrieve(q, history, vector, 30);
      const got = many[q];
      expect(got, `seed ${seed}, user ${q}`).toBeDefined();
      if (!got) return;
      expect(Array.from(got.items), `seed ${seed}, user ${q}`).toEqual(want);
      got.items.forEach((item, k) => {
        expect(got.tt[k], `seed ${seed}, user ${q}, item ${item} tt`).toBeCloseTo(generator.tt[item] ?? Number.NaN, 4);
        const cv = generator.cv[item] ?? Number.NaN;
        if (Number.isFinite(cv)) expect(got.cv[k], `seed ${seed}, user ${q}, item ${item} cv`).toBeCloseTo(cv, 4);
        else expect(got.cv[k]).toBe(cv);
      });
    });
  });

  it('zScores gives every item the z-scores retrieve leaves in tt and cv, duplicates in the history counted once', () => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const dim = 8;
    const n = 1500;
    const items = randomUnitVectors(n, dim, rng);
    const generator = new CandidateGenerator(items, dim, randomItemItem(n, 200, rng));
    const subsetItems = Array.from(generator.coVisitation.subset.items.slice(0, 10));
    const history = [...subsetItems, subsetItems[0] ?? 0, 7, 7];
    const vector = randomUnitVectors(1, dim, rng);
    const scores = generator.zScores(history, vector);
    generator.retrieve(0, [...new Set(history)], vector, 0);
    for (let i = 0; i < n; i++) {
      expect(scores.tt(i), `seed ${seed}, item ${i} tt`).toBeCloseTo(generator.tt[i] ?? Number.NaN, 4);
      const cv = generator.cv[i] ?? Number.NaN;
      if (Number.isFinite(cv)) expect(scores.cv(i), `seed ${seed}, item ${i} cv`).toBeCloseTo(cv, 4);
      else expect(scores.cv(i)).toBe(-Infinity);
    }
  });
});

describe('the evaluator with recommendMany', () => {
  it('gives the metrics of scoring each user, and uses recommendMany when a recommender has it', () => {
    const seed = freshSeed();
    const dataset = randomRatings(300, 400, 40, seed);
    const split = randomSplit(dataset, { rows: positiveRows(dataset), testFraction: 0.2, seed });
    const rng = mulberry32(seed);
    const dim = 8;
    const items = randomUnitVectors(dataset.itemIds.length, dim, rng);
    const users = randomUnitVectors(dataset.userIds.length, dim, rng);
    const scoring: Recommender = {
      name: 'dot',
      scoreUser(user, _history, out) {
        for (let i = 0; i < out.length; i++) {
          let s = 0;
          for (let d = 0; d < dim; d++) s += (users[user * dim + d] ?? 0) * (items[i * dim + d] ?? 0);
          out[i] = s;
        }
      },
    };
    let calls = 0;
    const batched: Recommender = {
      ...scoring,
      name: 'dot, batched',
      recommendMany(ids, histories, k) {
        calls++;
        const queries = new Float32Array(ids.length * dim);
        ids.forEach((u, j) => queries.set(users.subarray(u * dim, (u + 1) * dim), j * dim));
        return scanTopK(typescriptMatmul, items, dim, queries, histories, k);
      },
    };
    const result = evaluate(dataset, split, [scoring, batched], { k: 10 });
    expect(calls, `seed ${seed}`).toBeGreaterThan(0);
    expect(result.results[1]?.metrics, `seed ${seed}`).toEqual(result.results[0]?.metrics);
  });
});
