// Program descriptor for shaders/matmul.wgsl. Runtime-free, like score.ts.
import type { ComputeProgram, ProgramBinding } from './score.ts';

/** Invocations per workgroup side; each computes 4×4 outputs, so a workgroup covers 32×32 of C. */
export const MATMUL_TILE = 8;
/** Outputs per invocation side. */
export const MATMUL_BLOCK = 4;
/** Bytes of the `Params` uniform buffer: m, n, k (u32), alpha, beta (f32) = 20, rounded up to 16s. */
export const MATMUL_PARAMS_BYTES = 32;
/**
 * Below this many multiply-adds keep a product on the WASM kernel: each WebGPU call pays uploads,
 * a submit and a readback (0.8 ms measured for a 4×4×4 product on SwiftShader), time in which the
 * WASM kernel (10–25 GFLOP/s) does ~10^7 multiply-adds. On SwiftShader itself, a CPU emulation
 * that ran this shader at 0.35 GFLOP/s, WASM is faster at every size.
 */
export const MATMUL_GPU_MIN_MACS = 1 << 24;

export const MATMUL_BINDINGS: readonly ProgramBinding[] = [
  { binding: 0, name: 'params', type: 'uniform' },
  { binding: 1, name: 'a', type: 'read-only-storage' },
  { binding: 2, name: 'b', type: 'read-only-storage' },
  { binding: 3, name: 'c', type: 'storage' },
];

const SOURCE = new URL('./matmul.wgsl', import.meta.url);

/** The program for one transpose combination (a pipeline constant each, see matmul.wgsl). */
export function matmulProgram(transA: boolean, transB: boolean): ComputeProgram {
  const ops = `${transA ? 't' : 'n'}${transB ? 't' : 'n'}`;
  return {
    key: `matmul/gemm/${ops}/tile${MATMUL_TILE}`,
    label: `kestrel.matmul.gemm_${ops}`,
    source: SOURCE,
    entryPoint: 'gemm',
    workgroupSize: MATMUL_TILE * MATMUL_TILE,
    constants: { TILE: MATMUL_TILE, TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0 },
    bindings: MATMUL_BINDINGS,
  };
}
