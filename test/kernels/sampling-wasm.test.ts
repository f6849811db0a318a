import { describe, expect, it } from 'vitest';
import { loadWasmKernels } from '../../core/kernels/wasm.ts';
import type { WasmBuild } from '../../core/kernels/wasm.ts';
import { sampleBetaInto, Xoshiro128 } from '../../core/domain/random.ts';
import { WasmBetaSampler } from '../../wasm/index.ts';
import { freshSeed, mulberry32 } from '../support/random.ts';
import type { Rng } from '../support/random.ts';

/** Random posteriors as the edge sees them: a few tiny shapes (< 1), most in the tens to thousands. */
function randomPosteriors(n: number, rng: Rng): { alpha: Float32Array; beta: Float32Array } {
  const alpha = new Float32Array(n);
  const beta = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const small = rng() < 0.2;
    alpha[i] = small ? 0.01 + rng() : 1 + rng() * 50;
    beta[i] = small ? 0.01 + rng() : 1 + rng() * 2000;
    // Shapes of exactly 1 take the inverse-CDF branch (an unclicked item under the edge's prior).
    const one = rng();
    if (one < 0.15) alpha[i] = 1;
    else if (one < 0.2) beta[i] = 1;
  }
  return { alpha, beta };
}

async function createSampler(build: WasmBuild): Promise<WasmBetaSampler> {
  return new WasmBetaSampler(await loadWasmKernels(build));
}

describe.each<WasmBuild>(['release', 'debug'])('WASM sampleBeta (%s build)', (build) => {
  // Tolerance: none. The kernel mirrors core/domain/random.ts operation for operation with its own
  // log/exp, so the same seed gives the same bits and leaves the PRNG in the same state.
  it.each([1, 7, 500, 20_000])('equals the TypeScript reference bit for bit on %i fresh posteriors', async (n) => {
    const seed = freshSeed();
    const { alpha, beta } = randomPosteriors(n, mulberry32(seed));
    const sampler = await createSampler(build);
    const wasmRng = new Xoshiro128(seed);
    const tsRng = new Xoshiro128(seed);
    const got = sampler.sample(alpha, beta, wasmRng);
    const want = sampleBetaInto(alpha, beta, tsRng, new Float32Array(n));
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (!Object.is(got[i], want[i])) mismatches++;
    expect(mismatches, `seed ${seed}`).toBe(0);
    expect(Array.from(wasmRng.state), `seed ${seed}`).toEqual(Array.from(tsRng.state));
    // And the stream continues in step: a second call (same layout) matches too.
    const again = sampler.sample(alpha, beta, wasmRng, new Float32Array(n));
    expect(Array.from(again)).toEqual(Array.from(sampleBetaInto(alpha, beta, tsRng, new Float32Array(n))));
  });

  it('is reproducible per seed, regrows for more arms and draws in (0, 1) with the right mean', async () => {
    const sampler = await createSampler(build);
    const small = sampler.sample(Float32Array.of(2, 3), Float32Array.of(5, 7), new Xoshiro128(1));
    const n = 50_000;
    const alpha = new Float32Array(n).fill(2);
    const beta = new Float32Array(n).fill(30);
    const draws = sampler.sample(alpha, beta, new Xoshiro128(2));
    expect(Array.from(sampler.sample(Float32Array.of(2, 3), Float32Array.of(5, 7), new Xoshiro128(1)))).toEqual(Array.from(small));
    let sum = 0;
    for (const x of draws) sum += x;
    // Beta(2, 30): mean 1/16, sd ≈ 0.042, so the mean of 50k draws is within 5 SE = 0.00094.
    expect(Math.abs(sum / n - 1 / 16)).toBeLessThan(0.00094);
    expect(draws.every((x) => x > 0 && x < 1)).toBe(true);
  });

  it('rejects shapes that are not positive and finite, naming the arm', async () => {
    const sampler = await createSampler(build);
    expect(() => sampler.sample(Float32Array.of(1, 0), Float32Array.of(1, 1), new Xoshiro128())).toThrow('arm 1 has Beta(0, 1)');
    expect(() => sampler.sample(Float32Array.of(1), Float32Array.of(1, 1), new Xoshiro128())).toThrow('one entry per arm: got 1, 2, 1');
  });
});
