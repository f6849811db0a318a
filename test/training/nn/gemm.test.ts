import { describe, expect, it } from 'vitest';
import { createWasmMatmul } from '../../../core/kernels/wasm.ts';
import type { WasmBuild } from '../../../core/kernels/wasm.ts';
import { typescriptMatmul } from '../../../training/nn/index.ts';
import type { MatmulBackend } from '../../../training/nn/index.ts';
import { freshSeed } from '../../support/random.ts';
import { errorRelativeToTerms, GEMM_SIZES, gemmTermScale, randomNormal, referenceGemm, relativeError, TRANSPOSES, Xoshiro128 } from './support.ts';

/** float32 accumulation over ≤ 300 terms (sliced into depth blocks in WASM) against float64, relative to the terms' size. */
const TOLERANCE = 1e-5;

async function backends(): Promise<[string, MatmulBackend][]> {
  const builds: WasmBuild[] = ['release', 'debug'];
  const wasm = await Promise.all(builds.map(async (b): Promise<[string, MatmulBackend]> => [`wasm ${b}`, await createWasmMatmul(b)]));
  return [['typescript', typescriptMatmul], ...wasm];
}

describe('gemm: every backend against a float64 reference', async () => {
  const all = await backends();
  describe.each(all)('%s', (_name, backend) => {
    it.each(TRANSPOSES)('transA=%s transB=%s, odd sizes, alpha and beta', (transA, transB) => {
      const seed = freshSeed();
      const rng = new Xoshiro128(seed);
      for (const [m, n, k] of GEMM_SIZES) {
        for (const [alpha, beta] of [[1, 0], [0.5, 1], [-2, 0.25]] as const) {
          const a = randomNormal(m * k, rng);
          const b = randomNormal(k * n, rng);
          const c = randomNormal(m * n, rng);
          const expected = referenceGemm(transA, transB, m, n, k, alpha, a, b, beta, c);
          const scale = gemmTermScale(transA, transB, m, n, k, alpha, a, b, beta, c);
          if (beta === 0) c.fill(Number.NaN); // beta = 0 must not read C
          backend.gemm(transA, transB, m, n, k, alpha, a, b, beta, c);
          expect(errorRelativeToTerms(c, expected, scale), `seed ${seed}, ${m}×${n}×${k}, alpha ${alpha}, beta ${beta}`).toBeLessThanOrEqual(TOLERANCE);
        }
      }
    });
  });

  it('the WASM kernel agrees with the TypeScript one and reuses its memory across shapes', async () => {
    const seed = freshSeed();
    const rng = new Xoshiro128(seed);
    const wasm = await createWasmMatmul();
    for (const [m, n, k] of [[200, 100, 50], [7, 3, 2], [256, 128, 128]] as const) {
      const a = randomNormal(m * k, rng);
      const b = randomNormal(k * n, rng);
      const fromWasm = new Float32Array(m * n);
      const fromTs = new Float32Array(m * n);
      wasm.gemm(false, false, m, n, k, 1, a, b, 0, fromWasm);
      typescriptMatmul.gemm(false, false, m, n, k, 1, a, b, 0, fromTs);
      expect(relativeError(fromWasm, fromTs), `seed ${seed}`).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('says which array is too short', async () => {
    const wasm = await createWasmMatmul();
    expect(() => wasm.gemm(false, false, 2, 2, 2, 1, new Float32Array(3), new Float32Array(4), 0, new Float32Array(4)))
      .toThrow('needs A ≥ 4, B ≥ 4, C ≥ 4 floats; got 3, 4, 4');
  });
});
