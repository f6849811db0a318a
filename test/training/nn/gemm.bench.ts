// `KESTREL_NO_INFRA=1 npx vitest bench --run --project node test/training/nn/gemm.bench.ts`: GEMM throughput of
// each backend at a training-sized product. GFLOP/s = 2·m·n·k · (ops/s) / 1e9; 512×128×128 is
// 16.8 MFLOP per call, so 1000 ops/s is 16.8 GFLOP/s.
import { bench, describe } from 'vitest';
import { createWasmMatmul } from '../../../core/kernels/wasm.ts';
import { typescriptMatmul } from '../../../training/nn/index.ts';
import { randomNormal, Xoshiro128 } from './support.ts';

const [M, N, K] = [512, 128, 128];
const rng = new Xoshiro128(1);
const a = randomNormal(M * K, rng);
const b = randomNormal(K * N, rng);
const c = new Float32Array(M * N);
const wasm = await createWasmMatmul();

for (const [transA, transB] of [[false, false], [false, true], [true, false]] as const) {
  describe(`${M}×${N}×${K} transA=${transA} transB=${transB}`, () => {
    bench('wasm-simd', () => wasm.gemm(transA, transB, M, N, K, 1, a, b, 0, c), { time: 1000 });
    bench('typescript', () => typescriptMatmul.gemm(transA, transB, M, N, K, 1, a, b, 0, c), { time: 1000 });
  });
}
