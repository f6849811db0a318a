// Program descriptors for shaders/wide-deep.wgsl: the four kernels of a NetworkSpec's forward pass
// (bag pooling, dense-input copy, fused dense layer, l2 rows). Runtime-free, like score.ts: the host
// (core/ranking/webgpu-ranker.ts) reads the WGSL file and owns every buffer.
import type { ComputeProgram, ProgramBinding } from './score.ts';

/** Invocations per workgroup of the 1-D kernels (pool_bag, copy_dense, l2_rows). */
export const WIDE_DEEP_WORKGROUP_SIZE = 64;
/** dense_layer: invocations per workgroup side; each computes 4×4 outputs, so a workgroup covers 32×32. */
export const WIDE_DEEP_TILE = 8;
/** dense_layer: outputs per invocation side. */
export const WIDE_DEEP_BLOCK = 4;
/** Bytes of the `Params` uniform: nine u32 = 36, rounded up to 16s. */
export const WIDE_DEEP_PARAMS_BYTES = 48;

/** Bits of Params.flags (see wide-deep.wgsl). */
export const WIDE_DEEP_FLAGS = { mean: 1, accumulate: 2, relu: 4 } as const;

/** Field order of the `Params` struct, as u32 slots. */
export const WIDE_DEEP_PARAMS = [
  'batch', 'length', 'dim', 'outputs', 'idsOffset', 'valuesOffset', 'outStride', 'outOffset', 'flags',
] as const;
export type WideDeepParams = Record<(typeof WIDE_DEEP_PARAMS)[number], number>;

/** Packs one dispatch's parameters into `target` (u32 view of WIDE_DEEP_PARAMS_BYTES) at `at`. */
export function packWideDeepParams(target: Uint32Array, at: number, p: WideDeepParams): void {
  WIDE_DEEP_PARAMS.forEach((field, i) => {
    target[at + i] = p[field];
  });
}

const PARAMS: ProgramBinding = { binding: 0, name: 'params', type: 'uniform' };
const OUT: ProgramBinding = { binding: 4, name: 'out', type: 'storage' };

export const POOL_BAG_BINDINGS: readonly ProgramBinding[] = [
  PARAMS,
  { binding: 1, name: 'ids', type: 'read-only-storage' },
  { binding: 2, name: 'values', type: 'read-only-storage' },
  { binding: 3, name: 'table', type: 'read-only-storage' },
  OUT,
];
export const COPY_DENSE_BINDINGS: readonly ProgramBinding[] = [
  PARAMS,
  { binding: 2, name: 'values', type: 'read-only-storage' },
  OUT,
];
export const DENSE_LAYER_BINDINGS: readonly ProgramBinding[] = [
  PARAMS,
  { binding: 5, name: 'x', type: 'read-only-storage' },
  { binding: 6, name: 'weight', type: 'read-only-storage' },
  { binding: 7, name: 'bias', type: 'read-only-storage' },
  { binding: 8, name: 'y', type: 'storage' },
];
export const L2_ROWS_BINDINGS: readonly ProgramBinding[] = [PARAMS, OUT];

const SOURCE = new URL('./wide-deep.wgsl', import.meta.url);

function linear(entryPoint: string, bindings: readonly ProgramBinding[]): ComputeProgram {
  return {
    key: `wide-deep/${entryPoint}/wg${WIDE_DEEP_WORKGROUP_SIZE}`,
    label: `kestrel.wide-deep.${entryPoint}`,
    source: SOURCE,
    entryPoint,
    workgroupSize: WIDE_DEEP_WORKGROUP_SIZE,
    constants: { WORKGROUP_SIZE: WIDE_DEEP_WORKGROUP_SIZE },
    bindings,
  };
}

export const POOL_BAG = linear('pool_bag', POOL_BAG_BINDINGS);
export const COPY_DENSE = linear('copy_dense', COPY_DENSE_BINDINGS);
export const L2_ROWS = linear('l2_rows', L2_ROWS_BINDINGS);
export const DENSE_LAYER: ComputeProgram = {
  key: `wide-deep/dense_layer/tile${WIDE_DEEP_TILE}`,
  label: 'kestrel.wide-deep.dense_layer',
  source: SOURCE,
  entryPoint: 'dense_layer',
  workgroupSize: WIDE_DEEP_TILE * WIDE_DEEP_TILE,
  constants: { TILE: WIDE_DEEP_TILE },
  bindings: DENSE_LAYER_BINDINGS,
};
