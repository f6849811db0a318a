// Parity of the WASM re-rank kernel (wasm/assembly/rerank.ts via `WasmReranker`) with the
// TypeScript reference (core/domain/rerank.ts) on fresh random slates. Tolerance: none. Both sides
// run the same float64 operations in the same order and the same seeded Beta draws, so the order
// and the explored flags must be identical; any difference is a bug in one of them.
import { describe, expect, it } from 'vitest';
import { loadWasmKernels } from '../../core/kernels/wasm.ts';
import type { WasmBuild } from '../../core/kernels/wasm.ts';
import { rerank } from '../../core/domain/rerank.ts';
import type { RerankInput, RerankOptions } from '../../core/domain/rerank.ts';
import { WasmReranker } from '../../wasm/index.ts';
import { freshSeed, mulberry32, randomUnitVectors } from '../support/random.ts';
import type { Rng } from '../support/random.ts';

/**
 * A slate as the edge sees one: unit embeddings, core scores (on a coarse grid half the time, so
 * relevance ties and the tie rules are exercised), a few already-shown items, posteriors from
 * tiny shapes (< 1) to thousands, and a unit interest vector.
 */
function randomSlate(n: number, dim: number, rng: Rng): RerankInput {
  const coarse = rng() < 0.5;
  const coreScore = Float64Array.from({ length: n }, () => (coarse ? Math.round(rng() * 8) / 8 : rng() * 4 - 2));
  const shown = Float64Array.from({ length: n }, () => (rng() < 0.1 ? 1 + Math.floor(rng() * 3) : 0));
  const alpha = new Float32Array(n);
  const beta = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const small = rng() < 0.1;
    alpha[i] = small ? 0.05 + rng() : 1 + rng() * 40;
    beta[i] = small ? 0.05 + rng() : 1 + rng() * 1500;
    // An unclicked item under the edge's prior: α exactly 1 (the inverse-CDF draw).
    if (rng() < 0.3) alpha[i] = 1;
  }
  return { dim, coreScore, embeddings: randomUnitVectors(n, dim, rng), shown, alpha, beta, interest: randomUnitVectors(1, dim, rng) };
}

type Case = [string, (n: number) => Omit<RerankOptions, 'seed'>, zeroInterest?: boolean];

const CASES: Case[] = [
  ['default mix', () => ({ affinityWeight: 0.5, shownPenalty: 0.2, lambda: 0.5, k: 20, exploreShare: 0.2 })],
  ['pure relevance, no exploration', () => ({ affinityWeight: 1, shownPenalty: 0.5, lambda: 1, k: 20, exploreShare: 0 })],
  ['all exploration', () => ({ affinityWeight: 0.5, shownPenalty: 0.2, lambda: 0.5, k: 20, exploreShare: 1 })],
  ['k > n', (n) => ({ affinityWeight: 0.3, shownPenalty: 0.1, lambda: 0.7, k: n + 3, exploreShare: 0.2 })],
  ['all-zero interest', () => ({ affinityWeight: 2, shownPenalty: 0.2, lambda: 0.5, k: 20, exploreShare: 0.2 }), true],
  ['strong diversity', () => ({ affinityWeight: 0.5, shownPenalty: 0, lambda: 0.1, k: 50, exploreShare: 0.1 })],
];

const SIZES: [number, number][] = [1, 7, 500, 2000].flatMap((n) => [3, 32, 64].map((dim): [number, number] => [n, dim]));

describe.each<WasmBuild>(['release', 'debug'])('WASM rerank (%s build)', (build) => {
  it.each(CASES)('equals the TypeScript reference exactly on fresh slates: %s', async (name, makeOptions, zeroInterest) => {
    // One instance across all sizes: its layout grows and shrinks between calls.
    const reranker = new WasmReranker(await loadWasmKernels(build));
    const seeds: string[] = [];
    for (const [n, dim] of SIZES) {
      const seed = freshSeed();
      const input = randomSlate(n, dim, mulberry32(seed));
      if (zeroInterest === true) input.interest.fill(0);
      const options = { ...makeOptions(n), seed };
      const got = reranker.rerank(input, options);
      const want = rerank(input, options);
      const where = `seed ${seed}, n ${n}, dim ${dim}`;
      seeds.push(`${n}×${dim}: ${seed}`);
      expect(Array.from(got.order), where).toEqual(Array.from(want.order));
      expect(Array.from(got.explored), where).toEqual(Array.from(want.explored));
      // The edge's split: MMR picks once (kept per slate and session), exploration per request.
      const picks = reranker.picks(input, options);
      for (const requestSeed of [seed, seed + 1]) {
        const split = reranker.explore(picks, input, { ...options, seed: requestSeed });
        const whole = rerank(input, { ...options, seed: requestSeed });
        expect(Array.from(split.order), `${where}, request seed ${requestSeed}`).toEqual(Array.from(whole.order));
        expect(Array.from(split.explored), `${where}, request seed ${requestSeed}`).toEqual(Array.from(whole.explored));
      }
      // The same picks with other posteriors (new arrays, as the bandit hands out after a read): the
      // candidates explore keeps per picks array must follow them, not stay at the first ones.
      const moved = { ...input, alpha: Float32Array.from(input.alpha, (a, i) => (i % 2 === 0 ? a * 50 : a)), beta: Float32Array.from(input.beta).reverse() };
      const split = reranker.explore(picks, moved, options);
      const whole = rerank(moved, options);
      expect(Array.from(split.order), `${where}, new posteriors`).toEqual(Array.from(whole.order));
      expect(Array.from(split.explored), `${where}, new posteriors`).toEqual(Array.from(whole.explored));
    }
    console.info(`rerank parity (${build}, ${name}) seeds, n×dim: ${seeds.join(', ')}`);
  });

  it('is reproducible per seed, and the seed moves only the explored slots', async () => {
    const seed = freshSeed();
    const reranker = new WasmReranker(await loadWasmKernels(build));
    const input = randomSlate(300, 32, mulberry32(seed));
    const options = { affinityWeight: 0.5, shownPenalty: 0.2, lambda: 0.5, k: 20, exploreShare: 0.2, seed };
    const a = reranker.rerank(input, options);
    expect(Array.from(reranker.rerank(input, options).order), `seed ${seed}`).toEqual(Array.from(a.order));
    const others = [1, 2, 3, 4, 5].map((d) => reranker.rerank(input, { ...options, seed: seed + d }));
    for (const b of others) {
      expect(Array.from(b.explored)).toEqual(Array.from(a.explored));
      for (let p = 0; p < a.order.length; p++) if (a.explored[p] === 0) expect(b.order[p], `seed ${seed}`).toBe(a.order[p]);
    }
    // 296 candidates left to draw from: five other seeds all exploring the same 4 is not plausible.
    expect(others.some((b) => Array.from(b.order).join() !== Array.from(a.order).join()), `seed ${seed}`).toBe(true);
  });

  it('rejects what the reference rejects, with the same words', async () => {
    const reranker = new WasmReranker(await loadWasmKernels(build));
    const input = randomSlate(5, 4, mulberry32(1));
    const options = { affinityWeight: 1, shownPenalty: 0.1, lambda: 0.5, k: 3, exploreShare: 0.3, seed: 1 };
    const bad = { ...input, embeddings: input.embeddings.slice() };
    bad.embeddings[2 * 4 + 1] = Number.NaN;
    expect(() => rerank(bad, options)).toThrow('candidate 2 has relevance NaN');
    expect(() => reranker.rerank(bad, options)).toThrow('candidate 2 has relevance NaN');
    const badAlpha = { ...input, alpha: Float32Array.of(1, 1, 1, 0, 1) };
    expect(() => reranker.rerank(badAlpha, options)).toThrow('candidate 3 has Beta(0,');
    expect(() => reranker.rerank({ ...input, interest: new Float32Array(3) }, options)).toThrow('interest has 3 values, expected 4');
    expect(() => reranker.rerank(input, { ...options, lambda: 2 })).toThrow('lambda must be in [0, 1]');
    // explore, with kept picks: posteriors it has not seen are checked, and picks must fit the plan.
    const picks = reranker.picks(input, options);
    expect(() => reranker.explore(picks, badAlpha, options)).toThrow('candidate 3 has Beta(0,');
    expect(() => reranker.explore(picks.subarray(1), input, options)).toThrow('picks has 1 values, expected 2');
    expect(() => reranker.explore(picks, input, { ...options, seed: 0.5 })).toThrow('seed must be an integer');
    // And it still works after a rejected call.
    expect(Array.from(reranker.rerank(input, options).order)).toEqual(Array.from(rerank(input, options).order));
  });
});
