import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseDawnDevice, requestDawnDevice } from '../../../core/gpu/dawn.ts';
import { WgslMatmul } from '../../../core/gpu/matmul.ts';
import { freshSeed } from '../../support/random.ts';
import { GEMM_SIZES, randomNormal, referenceGemm, relativeError, TRANSPOSES, Xoshiro128 } from './support.ts';

/** float32 accumulation over ≤ 300 terms against float64 (as the WASM and TypeScript backends). */
const TOLERANCE = 1e-5;

describe('WGSL gemm on Dawn against a float64 reference', () => {
  let matmul: WgslMatmul;

  beforeAll(async () => {
    const { device } = await requestDawnDevice();
    matmul = await WgslMatmul.create(device);
  });

  afterAll(async () => {
    matmul.destroy();
    await releaseDawnDevice();
  });

  it.each(TRANSPOSES)('transA=%s transB=%s, odd sizes, alpha and beta', async (transA, transB) => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    for (const [m, n, k] of [...GEMM_SIZES, [70, 45, 0] as [number, number, number]]) {
      for (const [alpha, beta] of [[1, 0], [-2, 0.25]] as const) {
        const a = randomNormal(m * k, rng);
        const b = randomNormal(k * n, rng);
        const c = randomNormal(m * n, rng);
        const expected = referenceGemm(transA, transB, m, n, k, alpha, a, b, beta, c);
        if (beta === 0) c.fill(Number.NaN); // beta = 0 must not read C
        await matmul.gemm(transA, transB, m, n, k, alpha, a, b, beta, c);
        const message = `seed ${seed}, ${m}×${n}×${k}, alpha ${alpha}, beta ${beta}`;
        if (k === 0 && beta === 0) expect(c.every((v) => v === 0), message).toBe(true);
        else expect(relativeError(c, expected), message).toBeLessThanOrEqual(TOLERANCE);
      }
    }
  });
});
