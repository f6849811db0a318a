// The edge's re-rank pipeline (core/domain/rerank.ts), TypeScript reference: what each step does
// to the list. Parity of the WASM kernel with it is test/kernels/rerank-wasm.test.ts.
import { describe, expect, it } from 'vitest';
import { mmr } from '../../core/domain/mmr.ts';
import { normalVariate, sampleBetaInto, Xoshiro128 } from '../../core/domain/random.ts';
import { explorationPool, explorationPosition, placeExploration, rerank, rerankPlan, thompsonWinners } from '../../core/domain/rerank.ts';
import type { RerankInput, RerankOptions } from '../../core/domain/rerank.ts';
import { l2Normalize } from '../../core/domain/vectors.ts';
import { freshSeed } from '../support/random.ts';

const NO_EXPLORE: RerankOptions = { affinityWeight: 0, shownPenalty: 0, lambda: 1, k: 10, exploreShare: 0, seed: 1 };

function slate(coreScore: number[], embeddings: number[], dim: number, extra: Partial<RerankInput> = {}): RerankInput {
  const n = coreScore.length;
  return {
    dim,
    coreScore: Float64Array.from(coreScore),
    embeddings: Float32Array.from(embeddings),
    shown: new Float64Array(n),
    alpha: new Float32Array(n).fill(1),
    beta: new Float32Array(n).fill(1),
    interest: new Float32Array(dim),
    ...extra,
  };
}

/**
 * n unit rows in `clusters` ≤ dim tight clusters, row i in cluster i % clusters: basis vector c plus
 * 0.05·noise per dim, normalised (cosine ≈ 0.9 within a cluster, ≈ 0 across).
 */
function clusteredRows(n: number, dim: number, clusters: number, rng: Xoshiro128): Float32Array {
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * dim, (i + 1) * dim);
    for (let d = 0; d < dim; d++) row[d] = (d === i % clusters ? 1 : 0) + 0.05 * normalVariate(rng);
    l2Normalize(row);
  }
  return out;
}

function meanPairwiseSim(order: Int32Array, e: Float32Array, dim: number): number {
  let sum = 0;
  let pairs = 0;
  for (let a = 0; a < order.length; a++) {
    for (let b = a + 1; b < order.length; b++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += (e[(order[a] as number) * dim + d] as number) * (e[(order[b] as number) * dim + d] as number);
      sum += s;
      pairs++;
    }
  }
  return sum / pairs;
}

describe('rerankPlan', () => {
  it('fills min(k, n) slots and rounds the exploration share of them', () => {
    expect(rerankPlan(100, 20, 0.1)).toEqual({ n: 100, slots: 20, explore: 2 });
    expect(rerankPlan(100, 10, 0.25)).toEqual({ n: 100, slots: 10, explore: 3 }); // 2.5 rounds up
    expect(rerankPlan(5, 8, 0.2)).toEqual({ n: 5, slots: 5, explore: 1 });
    expect(rerankPlan(5, 8, 1)).toEqual({ n: 5, slots: 5, explore: 5 });
    expect(rerankPlan(0, 8, 0.5)).toEqual({ n: 0, slots: 0, explore: 0 });
  });

  it('spreads the exploration positions and never repeats one', () => {
    expect([0, 1].map((j) => explorationPosition(j, 20, 2))).toEqual([6, 13]);
    expect([0, 1, 2].map((j) => explorationPosition(j, 5, 3))).toEqual([1, 2, 3]);
    expect([0, 1, 2, 3].map((j) => explorationPosition(j, 4, 4))).toEqual([0, 1, 2, 3]);
    for (let slots = 1; slots <= 40; slots++) {
      for (let e = 0; e <= slots; e++) {
        const pos = Array.from({ length: e }, (_, j) => explorationPosition(j, slots, e));
        expect(new Set(pos).size).toBe(e);
        expect(pos.every((p) => p >= 0 && p < slots)).toBe(true);
      }
    }
  });
});

describe('rerank (TypeScript reference)', () => {
  // Items 0 and 1 point along x, item 2 along y, item 3 between.
  const EMB = [1, 0, 1, 0, 0, 1, 0.6, 0.8];
  const CORE = [1, 0.95, 0.9, 0.5];

  it('with no affinity, penalty, diversity or exploration is the core-score order', () => {
    const { order, explored } = rerank(slate(CORE, EMB, 2), NO_EXPLORE);
    expect(Array.from(order)).toEqual([0, 1, 2, 3]);
    expect(Array.from(explored)).toEqual([0, 0, 0, 0]);
  });

  it('moves an item similar to the session interest up when affinityWeight > 0', () => {
    const input = slate(CORE, EMB, 2, { interest: Float32Array.of(0, 1) });
    expect(Array.from(rerank(input, NO_EXPLORE).order)).toEqual([0, 1, 2, 3]);
    // relevance 1, 0.95, 1.4, 0.9: item 2 (along the interest) first; item 3 (cosine 0.8) gains 0.4, not enough.
    expect(Array.from(rerank(input, { ...NO_EXPLORE, affinityWeight: 0.5 }).order)).toEqual([2, 0, 1, 3]);
    // Stronger affinity: item 3 (cosine 0.8 with the interest) passes both x items too.
    expect(Array.from(rerank(input, { ...NO_EXPLORE, affinityWeight: 2 }).order)).toEqual([2, 3, 0, 1]);
  });

  it('leaves the order alone when the interest vector is all zeros', () => {
    const input = slate(CORE, EMB, 2);
    expect(Array.from(rerank(input, { ...NO_EXPLORE, affinityWeight: 5 }).order)).toEqual([0, 1, 2, 3]);
  });

  it('pushes already-shown items down by shownPenalty per showing', () => {
    const input = slate(CORE, EMB, 2, { shown: Float64Array.of(2, 0, 0, 0) });
    expect(Array.from(rerank(input, NO_EXPLORE).order)).toEqual([0, 1, 2, 3]);
    // relevance 1 − 2·0.04 = 0.92: below item 1 (0.95), above item 2 (0.9).
    expect(Array.from(rerank(input, { ...NO_EXPLORE, shownPenalty: 0.04 }).order)).toEqual([1, 0, 2, 3]);
    // 1 − 2·0.3 = 0.4: last.
    expect(Array.from(rerank(input, { ...NO_EXPLORE, shownPenalty: 0.3 }).order)).toEqual([1, 2, 3, 0]);
  });

  it('is mmr() on the adjusted relevance when nothing explores', () => {
    const input = slate(CORE, EMB, 2, { interest: Float32Array.of(0.6, 0.8), shown: Float64Array.of(0, 1, 0, 0) });
    const options = { ...NO_EXPLORE, affinityWeight: 0.3, shownPenalty: 0.1, lambda: 0.5 };
    // dot(e_i, interest) in float64 of the float32 values, as step 1 defines it.
    const [x, y] = [Math.fround(0.6), Math.fround(0.8)];
    const relevance = [1 + 0.3 * x, 0.95 + 0.3 * x - 0.1, 0.9 + 0.3 * y, 0.5 + 0.3 * (x * x + y * y)];
    expect(Array.from(rerank(input, options).order)).toEqual(mmr(relevance, input.embeddings, { lambda: 0.5, k: 4, dim: 2 }));
  });

  it('raises intra-list diversity on clustered embeddings (MMR)', () => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const n = 200;
    const dim = 32;
    const embeddings = clusteredRows(n, dim, 5, rng);
    // Cluster 0 holds the most relevant items: relevance order alone shows only that cluster.
    const coreScore = Float64Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 1 : 0) + rng.next());
    const input = slate([], [], dim, { coreScore, embeddings, shown: new Float64Array(n), alpha: new Float32Array(n).fill(1), beta: new Float32Array(n).fill(1) });
    const k = 10;
    const plain = rerank(input, { ...NO_EXPLORE, k });
    const diverse = rerank(input, { ...NO_EXPLORE, k, lambda: 0.5 });
    const simPlain = meanPairwiseSim(plain.order, embeddings, dim);
    const simDiverse = meanPairwiseSim(diverse.order, embeddings, dim);
    expect(simDiverse, `seed ${seed}: ${simDiverse} vs ${simPlain}`).toBeLessThan(simPlain - 0.3);
    expect(new Set(Array.from(plain.order, (i) => i % 5)).size).toBe(1);
    expect(new Set(Array.from(diverse.order, (i) => i % 5)).size, `seed ${seed}`).toBe(5);
  });

  it('fills exactly round(exploreShare · k) slots by exploration, at floor((j + 1)·k / (e + 1))', () => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const n = 40;
    const dim = 8;
    const embeddings = clusteredRows(n, dim, 4, rng);
    const input = slate([], [], dim, {
      coreScore: Float64Array.from({ length: n }, () => rng.next()),
      embeddings,
      shown: new Float64Array(n),
      alpha: Float32Array.from({ length: n }, () => 1 + 10 * rng.next()),
      beta: Float32Array.from({ length: n }, () => 1 + 100 * rng.next()),
      interest: new Float32Array(dim),
    });
    const expected: [number, number, number[]][] = [
      [10, 0, []],
      [10, 0.1, [5]],
      [10, 0.2, [3, 6]],
      [5, 0.5, [1, 2, 3]],
      [20, 0.1, [6, 13]],
      [6, 1, [0, 1, 2, 3, 4, 5]],
      [50, 0.2, [4, 8, 13, 17, 22, 26, 31, 35]], // k > n: 40 slots, 8 explore
    ];
    for (const [k, exploreShare, positions] of expected) {
      const options = { affinityWeight: 0, shownPenalty: 0, lambda: 0.6, k, exploreShare, seed };
      const { order, explored } = rerank(input, options);
      const slots = Math.min(k, n);
      const at = `k ${k}, share ${exploreShare}, seed ${seed}`;
      expect(order.length, at).toBe(slots);
      expect(Array.from(explored).flatMap((x, p) => (x === 1 ? [p] : [])), at).toEqual(positions);
      expect(new Set(order).size, at).toBe(slots);
      // The other positions are MMR's picks in pick order.
      const picks = mmr(Array.from(input.coreScore), embeddings, { lambda: 0.6, k: slots - positions.length, dim });
      expect(Array.from(order).filter((_, p) => explored[p] === 0), at).toEqual(picks);
      // The explored ones are the highest Beta draws among the rest, best first.
      const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !picks.includes(i));
      const theta = sampleBetaInto(
        Float32Array.from(rest, (i) => input.alpha[i] as number),
        Float32Array.from(rest, (i) => input.beta[i] as number),
        new Xoshiro128(seed),
        new Float32Array(rest.length),
      );
      const byTheta = rest.map((i, c) => [i, theta[c] as number] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
      expect(Array.from(order).filter((_, p) => explored[p] === 1), at).toEqual(byTheta.slice(0, positions.length).map(([i]) => i));
    }
  });

  it('explores items with better Beta posteriors more often, over many seeds (Thompson sampling)', () => {
    const base = freshSeed();
    const n = 12;
    const dim = 4;
    // Items 0 and 1 win MMR's two slots; items 2..11 compete for the one exploration slot with
    // posteriors Beta(i − 1, 30): the posterior mean rises with the index.
    const input = slate([], [], dim, {
      coreScore: Float64Array.from({ length: n }, (_, i) => (i < 2 ? 10 - i : 0)),
      embeddings: clusteredRows(n, dim, 3, new Xoshiro128(base)),
      shown: new Float64Array(n),
      alpha: Float32Array.from({ length: n }, (_, i) => Math.max(1, i - 1)),
      beta: new Float32Array(n).fill(30),
      interest: new Float32Array(dim),
    });
    const counts = new Array<number>(n).fill(0);
    const runs = 2000;
    for (let s = 0; s < runs; s++) {
      const { order, explored } = rerank(input, { affinityWeight: 0, shownPenalty: 0, lambda: 1, k: 3, exploreShare: 1 / 3, seed: base + s });
      expect(Array.from(explored)).toEqual([0, 1, 0]);
      expect([order[0], order[2]]).toEqual([0, 1]);
      counts[order[1] as number] = (counts[order[1] as number] as number) + 1;
    }
    const at = `seeds ${base}..${base + runs - 1}: ${counts.join(' ')}`;
    expect(counts[11] as number, at).toBeGreaterThan(counts[6] as number);
    expect(counts[6] as number, at).toBeGreaterThan(counts[2] as number);
    // The best three posteriors take most of the slot, but the best one does not take it all.
    expect((counts[9] as number) + (counts[10] as number) + (counts[11] as number), at).toBeGreaterThan(runs / 2);
    expect(counts[11] as number, at).toBeLessThan(0.9 * runs);
  });

  it('draws groups of Beta(1, β) candidates by order statistics with the law of one draw per candidate', () => {
    // Step 3a draws only the best few of a group; step 3b, and this naive reference, one per
    // candidate. Over many seeds each candidate must win as often either way.
    const base = freshSeed();
    const runs = 6000;
    const explore = 3;
    const sum = (c: number[], from: number, to: number): number => c.slice(from, to).reduce((a, b) => a + b, 0);
    let seed = base;
    const scenarios: { shapes: [number, number][]; classes: [number, number][] }[] = [
      {
        shapes: [
          ...Array.from({ length: 30 }, (): [number, number] => [1, 30]), // a big group of unclicked items
          [3, 40], [2, 10], [0.5, 5], [6, 30], // others, one draw each
          ...Array.from({ length: 5 }, (): [number, number] => [1, 8]), // a small group, more optimistic
          [1, 30.5], // a group of one
        ],
        classes: [[0, 30], [30, 31], [31, 32], [32, 33], [33, 34], [34, 39], [39, 40]],
      },
      // A group no bigger than the exploration slots: every one of its order statistics counts.
      { shapes: [[1, 4], [2, 8], [1, 4], [2, 8], [2, 8], [1, 4], [2, 8], [2, 8], [2, 8]], classes: [[0, 1], [2, 3], [5, 6], [1, 2], [3, 5], [6, 9]] },
    ];
    for (const { shapes, classes } of scenarios) {
      const n = shapes.length;
      const alpha = Float32Array.from(shapes, ([a]) => a);
      const beta = Float32Array.from(shapes, ([, b]) => b);
      const pool = explorationPool([], n, alpha, beta);
      const grouped = new Array<number>(n).fill(0);
      const naive = new Array<number>(n).fill(0);
      const theta = new Float32Array(n);
      const from = seed;
      for (let s = 0; s < runs; s++) {
        const winners = thompsonWinners(pool, explore, seed++);
        expect(new Set(winners).size).toBe(explore);
        for (const i of winners) grouped[i] = (grouped[i] as number) + 1;
        sampleBetaInto(alpha, beta, new Xoshiro128(seed++), theta);
        const best = Array.from(theta, (t, i) => [t, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, explore);
        for (const [, i] of best) naive[i] = (naive[i] as number) + 1;
      }
      const at = `${n} candidates, seeds ${from}..${seed - 1}`;
      // Per class of candidates, the count of wins agrees within 4.5 standard errors of the
      // difference of two binomial counts.
      for (const [lo, hi] of classes) {
        const g = sum(grouped, lo, hi);
        const r = sum(naive, lo, hi);
        const p = (g + r) / (2 * runs * (hi - lo));
        const se = Math.sqrt(2 * runs * (hi - lo) * p * (1 - p));
        expect(Math.abs(g - r), `${at}: candidates ${lo}..${hi - 1} won ${g} times grouped, ${r} naive`).toBeLessThan(4.5 * se + 5);
      }
    }
    // Within the first scenario's big group, every member is as likely as another (the winners are
    // chosen uniformly): 29 degrees of freedom, P(χ² > 64) < 0.0002.
    const pool = explorationPool([], 30, new Float32Array(30).fill(1), new Float32Array(30).fill(30));
    expect(pool.groups.map((g) => [g.beta, g.members.length])).toEqual([[30, 30]]);
    const counts = new Array<number>(30).fill(0);
    for (let s = 0; s < runs; s++) for (const i of thompsonWinners(pool, explore, seed++)) counts[i] = (counts[i] as number) + 1;
    const mean = (runs * explore) / 30;
    const chi2 = counts.reduce((a, c) => a + (c - mean) ** 2 / mean, 0);
    expect(chi2, `seeds up to ${seed - 1}: ${counts.join(' ')}`).toBeLessThan(64);
  });

  it('returns every candidate once when k exceeds them, and nothing for k = 0', () => {
    const input = slate(CORE, EMB, 2);
    const { order, explored } = rerank(input, { ...NO_EXPLORE, k: 9, exploreShare: 0.5, lambda: 0.5 });
    expect(Array.from(order).sort()).toEqual([0, 1, 2, 3]);
    expect(explored.reduce((a, b) => a + b, 0)).toBe(2);
    expect(rerank(input, { ...NO_EXPLORE, k: 0 }).order.length).toBe(0);
  });

  it('says what to fix when an input is wrong', () => {
    const input = slate(CORE, EMB, 2);
    expect(() => rerank({ ...input, embeddings: new Float32Array(7) }, NO_EXPLORE)).toThrow('embeddings has 7 values, expected 8 (4 candidates × 2 dims)');
    expect(() => rerank({ ...input, shown: Float64Array.of(0, -1, 0, 0) }, NO_EXPLORE)).toThrow('candidate 1 was shown -1 times');
    expect(() => rerank({ ...input, beta: Float32Array.of(1, 1, Number.POSITIVE_INFINITY, 1) }, NO_EXPLORE)).toThrow('candidate 2 has Beta(1, Infinity)');
    expect(() => rerank({ ...input, coreScore: Float64Array.of(1, Number.NaN, 0, 0) }, NO_EXPLORE)).toThrow('candidate 1 has relevance NaN');
    expect(() => rerank(input, { ...NO_EXPLORE, exploreShare: 1.5 })).toThrow('exploreShare must be in [0, 1]');
    expect(() => rerank(input, { ...NO_EXPLORE, k: 2.5 })).toThrow('k must be a non-negative integer');
    expect(() => rerank(input, { ...NO_EXPLORE, seed: 0.5 })).toThrow('seed must be an integer');
    // Picks kept from another plan (other k or share) are refused, not silently misplaced.
    const plan = rerankPlan(4, 3, 0.34);
    expect(() => placeExploration([0, 1], plan, input.alpha, input.beta, 1)).not.toThrow();
    expect(() => placeExploration([0, 1, 2], plan, input.alpha, input.beta, 1)).toThrow('picks has 3 values, expected 2 (3 slots, 1 of them explored)');
  });
});
