import { describe, expect, it } from 'vitest';
import { createWasmScorer } from '../../core/kernels/wasm.ts';
import type { WasmBuild } from '../../core/kernels/wasm.ts';
import { freshSeed, mulberry32, randomUnitVectors, scoreError } from '../support/random.ts';

/** float32 accumulation over 64 terms against a float64 reference. */
const TOLERANCE = 1e-5;

describe.each<WasmBuild>(['release', 'debug'])('WASM SIMD scoreDot (%s build)', (build) => {
  // Sizes straddle the 4-item register block and the 4-lane SIMD width; dims include SIMD tails.
  it.each([
    [1, 64],
    [3, 64],
    [1001, 64],
    [100_003, 64],
    [257, 33],
    [50, 3],
  ])('matches the float64 reference for %i items of dim %i', async (n, dim) => {
    const seed = freshSeed();
    const rng = mulberry32(seed);
    const items = randomUnitVectors(n, dim, rng);
    const query = randomUnitVectors(1, dim, rng);
    const scorer = await createWasmScorer(build);
    scorer.setItems(items, dim);
    const out = scorer.score(query);
    expect(out.length).toBe(n);
    expect(scoreError(out, query, items, dim), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
  });

  it('keeps items resident across queries and regrows for a larger catalog', async () => {
    const rng = mulberry32(freshSeed());
    const scorer = await createWasmScorer(build);
    const small = randomUnitVectors(10, 8, rng);
    scorer.setItems(small, 8);
    const big = randomUnitVectors(20_000, 16, rng);
    scorer.setItems(big, 16);
    for (let r = 0; r < 3; r++) {
      const query = randomUnitVectors(1, 16, rng);
      expect(scoreError(scorer.score(query), query, big, 16)).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('rejects a query whose dimension does not match the items, saying both', async () => {
    const scorer = await createWasmScorer(build);
    scorer.setItems(new Float32Array(64 * 4), 64);
    expect(() => scorer.score(new Float32Array(32))).toThrow('query has 32 dims, the items have 64');
    expect(() => scorer.setItems(new Float32Array(10), 4)).toThrow('not a multiple of dim 4');
  });
});
